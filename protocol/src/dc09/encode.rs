//! DC-09 encoders: responses (ACK, `*ACK`, NAK, DUH, RSP, PROTOCOLS.md §1.11) and whole request
//! frames (for tests, property checks and the load generator). Every frame is written in the
//! dialect of the panel it answers: a quirk frame is answered with the same CRC/length rules.

use bytes::{BufMut, BytesMut};

use crate::crc::{crc16_arc, crc16_arc_concat};
use crate::dc09::crypto::{encrypt_hex, Key};
use crate::dc09::frame::{Dialect, Header, TokenKind};
use crate::dc09::timestamp::Timestamp;
use crate::dc09::xdata::XData;

/// Writes one frame: `LF`, CRC and length placeholders, the body the caller appends, then fills
/// CRC and length and appends `CR`. No intermediate buffer: the body is written in place.
struct FrameWriter<'o> {
    out: &'o mut BytesMut,
    start: usize,
    dialect: Dialect,
}

impl<'o> FrameWriter<'o> {
    fn begin(out: &'o mut BytesMut, dialect: Dialect) -> Self {
        let start = out.len();
        out.put_u8(b'\n');
        out.put_slice(if dialect.binary_crc { b"\0\0" } else { b"0000" });
        out.put_slice(b"0000");
        Self {
            out,
            start,
            dialect,
        }
    }

    fn body_start(&self) -> usize {
        self.start + if self.dialect.binary_crc { 7 } else { 9 }
    }

    fn finish(self) {
        let body_start = self.body_start();
        let body = &self.out[body_start..];
        let (crc, len) = if self.dialect.cr_in_crc {
            (crc16_arc_concat(body, b"\r"), body.len() + 1)
        } else {
            (crc16_arc(body), body.len())
        };
        let len_at = body_start - 4;
        // The length field has 3 hex digits; callers keep bodies within MAX_BODY.
        write_hex(&mut self.out[len_at..body_start], len.min(0xFFF) as u16);
        let crc_at = self.start + 1;
        if self.dialect.binary_crc {
            self.out[crc_at..crc_at + 2].copy_from_slice(&crc.to_be_bytes());
        } else {
            write_hex(&mut self.out[crc_at..crc_at + 4], crc);
        }
        self.out.put_u8(b'\r');
    }
}

fn write_hex(dst: &mut [u8], v: u16) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for (i, d) in dst.iter_mut().rev().enumerate() {
        *d = DIGITS[usize::from((v >> (4 * i)) & 0xF)];
    }
}

fn put_token(out: &mut BytesMut, encrypted: bool, token: &str) {
    out.put_u8(b'"');
    if encrypted {
        out.put_u8(b'*');
    }
    out.put_slice(token.as_bytes());
    out.put_u8(b'"');
}

/// `"ACK"` echoing sequence, receiver, prefix and account exactly as received, then `[]`.
pub fn encode_ack(header: &Header<'_>, dialect: Dialect, out: &mut BytesMut) {
    encode_echo_reply("ACK", header.echo, dialect, out);
}

/// `"DUH"` + echo + `[]`. `echo` is the header text as received (see
/// [`lex_header`](crate::dc09::lex_header)), so a frame whose fields are malformed can still be
/// answered. Never encrypted (§1.11).
pub fn encode_duh(echo: &[u8], dialect: Dialect, out: &mut BytesMut) {
    encode_echo_reply("DUH", echo, dialect, out);
}

fn encode_echo_reply(token: &str, echo: &[u8], dialect: Dialect, out: &mut BytesMut) {
    let w = FrameWriter::begin(out, dialect);
    put_token(w.out, false, token);
    w.out.put_slice(echo);
    w.out.put_slice(b"[]");
    w.finish();
}

/// `"*ACK"` + echo + `[` + hex(AES(pad `|` `]` `_`receiver time)), the answer to an encrypted
/// frame. `pad_seed` must be fresh random bytes for every answer.
pub fn encode_encrypted_ack(
    header: &Header<'_>,
    key: &Key,
    now: Timestamp,
    pad_seed: [u8; 16],
    dialect: Dialect,
    out: &mut BytesMut,
) {
    let w = FrameWriter::begin(out, dialect);
    put_token(w.out, true, "ACK");
    w.out.put_slice(header.echo);
    w.out.put_u8(b'[');
    let mut section = Vec::with_capacity(1 + 1 + Timestamp::LEN);
    section.extend_from_slice(b"]_");
    now.write(&mut section);
    let mut hex = Vec::with_capacity(64);
    encrypt_hex(&section, key, pad_seed, &mut hex);
    w.out.put_slice(&hex);
    w.finish();
}

/// `"NAK"0000R0L0A0[]_<receiver time>`: never encrypted, fixed fields, the receiver's clock so
/// the panel can correct its own (§1.11).
pub fn encode_nak(now: Timestamp, dialect: Dialect, out: &mut BytesMut) {
    let w = FrameWriter::begin(out, dialect);
    w.out.put_slice(b"\"NAK\"0000R0L0A0[]_");
    w.out.put_slice(&now.to_bytes());
    w.finish();
}

/// `"RSP"` + echo + `[data]` + x-data: a response carrying data back (key change, programming).
pub fn encode_rsp(
    echo: &[u8],
    data: &[u8],
    xdata: &[XData<'_>],
    dialect: Dialect,
    out: &mut BytesMut,
) {
    let w = FrameWriter::begin(out, dialect);
    put_token(w.out, false, "RSP");
    w.out.put_slice(echo);
    w.out.put_u8(b'[');
    put_section(w.out, data, xdata, None);
    w.finish();
}

/// What follows `[`: `data]`, the x-data blocks and `_timestamp` (the part that gets encrypted).
fn put_section(
    out: &mut impl BufMut,
    data: &[u8],
    xdata: &[XData<'_>],
    timestamp: Option<Timestamp>,
) {
    out.put_slice(data);
    out.put_u8(b']');
    for x in xdata {
        out.put_u8(b'[');
        out.put_u8(x.id);
        out.put_slice(x.value);
        out.put_u8(b']');
    }
    if let Some(ts) = timestamp {
        out.put_u8(b'_');
        out.put_slice(&ts.to_bytes());
    }
}

/// A request frame, as a panel would send it.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The token (without `*`; encryption is chosen by passing a key to [`encode_message`]).
    pub token: TokenKind<'a>,
    /// Sequence number text (normally 4 decimal digits).
    pub sequence: &'a str,
    /// Receiver number (hex text), if any.
    pub receiver: Option<&'a str>,
    /// Account prefix (hex text).
    pub prefix: &'a str,
    /// Account (hex text).
    pub account: &'a str,
    /// The data block (without brackets).
    pub data: &'a [u8],
    /// Extended data blocks.
    pub xdata: &'a [XData<'a>],
    /// Message time (mandatory when encrypted).
    pub timestamp: Option<Timestamp>,
}

/// Writes `msg` as a complete frame; encrypted with `key` and the pad from `pad_seed` when a key
/// is given.
pub fn encode_message(
    msg: &Message<'_>,
    encryption: Option<(&Key, [u8; 16])>,
    dialect: Dialect,
    out: &mut BytesMut,
) {
    let w = FrameWriter::begin(out, dialect);
    put_token(w.out, encryption.is_some(), msg.token.as_str());
    w.out.put_slice(msg.sequence.as_bytes());
    if let Some(r) = msg.receiver {
        w.out.put_u8(b'R');
        w.out.put_slice(r.as_bytes());
    }
    w.out.put_u8(b'L');
    w.out.put_slice(msg.prefix.as_bytes());
    w.out.put_u8(b'#');
    w.out.put_slice(msg.account.as_bytes());
    w.out.put_u8(b'[');
    match encryption {
        None => put_section(w.out, msg.data, msg.xdata, msg.timestamp),
        Some((key, pad_seed)) => {
            let mut section = Vec::with_capacity(msg.data.len() + 2 + Timestamp::LEN);
            put_section(&mut section, msg.data, msg.xdata, msg.timestamp);
            let mut hex = Vec::with_capacity(section.len() * 2 + 64);
            encrypt_hex(&section, key, pad_seed, &mut hex);
            w.out.put_slice(&hex);
        }
    }
    w.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dc09::frame::{parse_frame, Content, Quirks};

    fn header_of(raw: &[u8], q: &Quirks) -> BytesMut {
        let f = parse_frame(raw, q).expect("valid");
        let mut out = BytesMut::new();
        encode_ack(&f.header, q.reply_dialect(), &mut out);
        out
    }

    #[test]
    fn ack_echoes_fields_exactly() {
        let ack = header_of(
            b"\nB0970029\"NULL\"0000L000#0809[]_21:00:01,02-20-2024\r",
            &Quirks::default(),
        );
        assert_eq!(&ack[..], b"\nA5420014\"ACK\"0000L000#0809[]\r");
    }

    #[test]
    fn eldes_is_answered_standard_unless_asked_for_its_dialect() {
        let raw = b"\nF19A002B\"ADM-CID\"0056L9999#9999[#9999|1900 00 001]\r";
        let q = Quirks {
            cr_in_crc: true,
            ..Quirks::default()
        };
        assert_eq!(
            &header_of(raw, &q)[..],
            b"\nF4A00015\"ACK\"0056L9999#9999[]\r"
        );
        let q = Quirks {
            answer_in_dialect: true,
            ..q
        };
        assert_eq!(
            &header_of(raw, &q)[..],
            b"\nBD350016\"ACK\"0056L9999#9999[]\r"
        );
    }

    #[test]
    fn binary_crc_dialect_round_trips() {
        let q = Quirks {
            binary_crc: true,
            answer_in_dialect: true,
            ..Quirks::default()
        };
        let ack = header_of(
            b"\n\xC5\x5B002A\"NULL\"0000R8L0#41213[]_21:00:10,02-20-2024\r",
            &q,
        );
        let back = parse_frame(&ack, &q).expect("binary answer parses in the same dialect");
        assert_eq!(back.envelope.crc_format, crate::dc09::CrcFormat::Binary);
    }

    #[test]
    fn nak_has_fixed_fields_and_receiver_time() {
        let mut out = BytesMut::new();
        let now = Timestamp::parse(b"16:20:01,09-24-2025").expect("valid");
        encode_nak(now, Dialect::STANDARD, &mut out);
        assert_eq!(
            &out[..],
            b"\nE4410025\"NAK\"0000R0L0A0[]_16:20:01,09-24-2025\r"
        );
    }

    #[test]
    fn encrypted_message_and_ack_open_with_the_key() {
        let key = Key::from_ascii("0123456789ABCDEF").expect("valid");
        let ts = Timestamp::parse(b"13:55:26,11-24-2026").expect("valid");
        let xdata = [XData {
            id: b'M',
            value: b"0026B9E4268B",
        }];
        let msg = Message {
            token: TokenKind::SiaDcs,
            sequence: "0042",
            receiver: Some("12"),
            prefix: "0",
            account: "5678",
            data: b"#5678|NBA7",
            xdata: &xdata,
            timestamp: Some(ts),
        };
        let mut out = BytesMut::new();
        encode_message(&msg, Some((&key, [0x33; 16])), Dialect::STANDARD, &mut out);
        let f = parse_frame(&out, &Quirks::default()).expect("valid frame");
        assert!(f.header.token.encrypted);
        let Content::Encrypted(hex) = f.content else {
            panic!("encrypted content expected")
        };
        let mut buf = Vec::new();
        let clear = crate::dc09::crypto::decrypt(hex, &key, &mut buf).expect("opens");
        assert_eq!(clear.data, b"#5678|NBA7");
        assert_eq!(clear.xdata, xdata.to_vec());
        assert_eq!(clear.timestamp.valid(), Some(ts));

        let mut ack = BytesMut::new();
        encode_encrypted_ack(&f.header, &key, ts, [0x44; 16], Dialect::STANDARD, &mut ack);
        let a = parse_frame(&ack, &Quirks::default()).expect("valid ack");
        assert_eq!(a.header.token.kind, TokenKind::Ack);
        assert!(a.header.token.encrypted);
        assert_eq!(a.header.echo, b"0042R12L0#5678");
        let Content::Encrypted(hex) = a.content else {
            panic!("encrypted ack expected")
        };
        let clear = crate::dc09::crypto::decrypt(hex, &key, &mut buf).expect("ack opens");
        assert_eq!(clear.data, b"");
        assert_eq!(clear.timestamp.valid(), Some(ts));
    }
}
