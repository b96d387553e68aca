//! Byte strings as people type them: `\n`, `\r`, `\t`, `\0`, `\\`, `\xHH` and `\uHHHH` (up to
//! 0xFF, as in the JSON test vectors) in, and the same escapes out for anything unprintable.

use std::fmt::Write as _;

/// Replaces escapes in `line` with the bytes they stand for. Unknown escapes stay as written.
pub fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'\\' || i + 1 >= line.len() {
            out.push(line[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match line[i + 1] {
            b'n' => (Some(b'\n'), 2),
            b'r' => (Some(b'\r'), 2),
            b't' => (Some(b'\t'), 2),
            b'0' => (Some(0), 2),
            b'\\' => (Some(b'\\'), 2),
            b'x' => (hex_byte(line.get(i + 2..i + 4)), 4),
            b'u' => (
                line.get(i + 2..i + 4)
                    .filter(|p| p == b"00")
                    .and(hex_byte(line.get(i + 4..i + 6))),
                6,
            ),
            _ => (None, 1),
        };
        match byte {
            Some(b) => {
                out.push(b);
                i += used;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    out
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let d = std::str::from_utf8(digits?).ok()?;
    u8::from_str_radix(d, 16).ok()
}

/// Printable ASCII as is; `\n`, `\r`, `\\` and `\xHH` for everything else.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 8);
    escape_into(&mut s, bytes);
    s
}

/// [`escape`], appended to `out`.
pub fn escape_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7E => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let raw = b"\n\xC5[002A\"NULL\"\x14\\\r";
        assert_eq!(unescape(escape(raw).as_bytes()), raw);
        assert_eq!(
            unescape(br"5011 181234E12101001\u0014"),
            b"5011 181234E12101001\x14"
        );
        assert_eq!(unescape(br"bad \q \x1"), br"bad \q \x1");
    }
}
