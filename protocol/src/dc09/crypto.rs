//! DC-09 encryption (PROTOCOLS.md §2): AES-128/192/256-CBC, zero IV, no cipher padding; the
//! message carries its own random pad before the first `|` so the plaintext is whole blocks.

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes::{Aes128, Aes192, Aes256};
use std::fmt;

use crate::dc09::frame::{parse_cleartext, Cleartext};
use crate::dc09::timestamp::TimestampField;
use crate::error::{FrameError, KeyError};

const IV: [u8; 16] = [0; 16];

/// An AES key of 16, 24 or 32 bytes. `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; 32],
    len: u8,
}

impl Key {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if !matches!(bytes.len(), 16 | 24 | 32) {
            return Err(KeyError::BadLength(bytes.len()));
        }
        let mut k = [0u8; 32];
        k[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            bytes: k,
            len: bytes.len() as u8,
        })
    }

    /// A key written as 32, 48 or 64 hex digits (siadc09, DC09Gen style).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() % 2 != 0 || text.len() > 64 {
            return Err(if text.len() % 2 != 0 {
                KeyError::BadHex
            } else {
                KeyError::BadLength(text.len() / 2)
            });
        }
        let mut buf = [0u8; 32];
        let out = &mut buf[..text.len() / 2];
        faster_hex::hex_decode(text.as_bytes(), out).map_err(|_| KeyError::BadHex)?;
        Self::from_bytes(out)
    }

    /// A key whose 16, 24 or 32 ASCII characters are the key bytes (pysiaalarm, Ajax style).
    pub fn from_ascii(text: &str) -> Result<Self, KeyError> {
        Self::from_bytes(text.as_bytes())
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// 128, 192 or 256.
    pub fn bits(&self) -> usize {
        usize::from(self.len) * 8
    }

    fn decrypt_blocks(&self, buf: &mut [u8]) -> Result<(), FrameError> {
        let k = self.as_bytes();
        // Lengths are whole blocks (checked by the caller) and the key length was checked at
        // construction, so these cannot fail; errors map to DecryptFailed rather than a panic.
        let r = match self.len {
            16 => cbc::Decryptor::<Aes128>::new_from_slices(k, &IV)
                .map_err(drop)
                .and_then(|d| {
                    d.decrypt_padded_mut::<NoPadding>(buf)
                        .map(drop)
                        .map_err(drop)
                }),
            24 => cbc::Decryptor::<Aes192>::new_from_slices(k, &IV)
                .map_err(drop)
                .and_then(|d| {
                    d.decrypt_padded_mut::<NoPadding>(buf)
                        .map(drop)
                        .map_err(drop)
                }),
            _ => cbc::Decryptor::<Aes256>::new_from_slices(k, &IV)
                .map_err(drop)
                .and_then(|d| {
                    d.decrypt_padded_mut::<NoPadding>(buf)
                        .map(drop)
                        .map_err(drop)
                }),
        };
        r.map_err(|()| FrameError::DecryptFailed)
    }

    fn encrypt_blocks(&self, buf: &mut [u8]) {
        let k = self.as_bytes();
        let n = buf.len();
        // As above: whole blocks and a valid key length are guaranteed by construction.
        let _ = match self.len {
            16 => cbc::Encryptor::<Aes128>::new_from_slices(k, &IV)
                .map(|e| e.encrypt_padded_mut::<NoPadding>(buf, n).map(drop)),
            24 => cbc::Encryptor::<Aes192>::new_from_slices(k, &IV)
                .map(|e| e.encrypt_padded_mut::<NoPadding>(buf, n).map(drop)),
            _ => cbc::Encryptor::<Aes256>::new_from_slices(k, &IV)
                .map(|e| e.encrypt_padded_mut::<NoPadding>(buf, n).map(drop)),
        };
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key([redacted], {} bits)", self.bits())
    }
}

/// Decrypts hex ciphertext into `buf` and reads it: pad up to the first `|` (or up to `]` when
/// no `|` comes first, as `*NULL` often has), then `data]`, x-data and the mandatory timestamp.
/// A wrong key yields [`FrameError::DecryptFailed`], never garbage events.
pub fn decrypt<'b>(
    ciphertext_hex: &[u8],
    key: &Key,
    buf: &'b mut Vec<u8>,
) -> Result<Cleartext<'b>, FrameError> {
    if ciphertext_hex.is_empty() || ciphertext_hex.len() % 32 != 0 {
        return Err(FrameError::BadCiphertext);
    }
    buf.clear();
    buf.resize(ciphertext_hex.len() / 2, 0);
    // The only hex check of the ciphertext: parsing checked just its length.
    faster_hex::hex_decode(ciphertext_hex, buf).map_err(|_| FrameError::BadCiphertext)?;
    key.decrypt_blocks(buf)?;
    let plain: &'b [u8] = buf;
    let cut = plain
        .iter()
        .position(|&b| b == b'|' || b == b']')
        .ok_or(FrameError::DecryptFailed)?;
    let (pad, section) = if plain[cut] == b'|' {
        (&plain[..cut], &plain[cut + 1..])
    } else {
        (&plain[..cut], &plain[cut..])
    };
    let clear = parse_cleartext(section, pad).map_err(|_| FrameError::DecryptFailed)?;
    match clear.timestamp {
        TimestampField::Valid(_) => Ok(clear),
        TimestampField::Absent => Err(FrameError::MissingTimestamp),
        TimestampField::Invalid(t) => Err(FrameError::BadTimestamp {
            text: String::from_utf8_lossy(t).into_owned(),
        }),
    }
}

/// Encrypts `pad | section` and appends the ciphertext as uppercase hex to `out`.
///
/// `section` is what follows the pad's `|` (`data]` + x-data + `_timestamp`). The pad is 1–16
/// bytes, as many as make whole blocks; its bytes come from `pad_seed` (the caller supplies
/// randomness: this crate has no RNG), with `|`, `[` and `]` replaced since a pad may not hold
/// them (§2).
pub fn encrypt_hex(section: &[u8], key: &Key, pad_seed: [u8; 16], out: &mut Vec<u8>) {
    let pad_len = 16 - (1 + section.len()) % 16;
    let mut plain = Vec::with_capacity(pad_len + 1 + section.len());
    plain.extend(pad_seed[..pad_len].iter().map(|&b| {
        if matches!(b, b'|' | b'[' | b']') {
            b ^ 0x80
        } else {
            b
        }
    }));
    plain.push(b'|');
    plain.extend_from_slice(section);
    key.encrypt_blocks(&mut plain);
    push_hex_upper(&plain, out);
}

fn push_hex_upper(bytes: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + bytes.len() * 2, 0);
    // The destination is exactly twice the source, the one condition under which this fails.
    let _ = faster_hex::hex_encode_upper(bytes, &mut out[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms_and_redaction() {
        let a = Key::from_ascii("0123456789ABCDEF").expect("16 ascii");
        let h = Key::from_hex("30313233343536373839414243444546").expect("32 hex");
        assert_eq!(a, h);
        assert_eq!(format!("{a:?}"), "Key([redacted], 128 bits)");
        assert_eq!(Key::from_ascii("short"), Err(KeyError::BadLength(5)));
        assert_eq!(Key::from_hex("zz"), Err(KeyError::BadHex));
    }

    #[test]
    fn round_trip_every_key_size_and_section_length() {
        for key in [
            Key::from_bytes(&[7; 16]),
            Key::from_bytes(&[8; 24]),
            Key::from_bytes(&[9; 32]),
        ] {
            let key = key.expect("valid size");
            for n in 0..40 {
                let data = vec![b'x'; n];
                let mut section = data.clone();
                section.extend_from_slice(b"]_07:50:26,10-26-2018");
                let mut hex = Vec::new();
                encrypt_hex(&section, &key, [b'|'; 16], &mut hex);
                let mut buf = Vec::new();
                let clear = decrypt(&hex, &key, &mut buf).expect("round trip");
                assert_eq!(clear.data, &data[..]);
                assert!(!clear.pad.is_empty() && clear.pad.len() <= 16);
                assert!(!clear.pad.contains(&b'|'));
            }
        }
    }

    #[test]
    fn wrong_key_is_detected() {
        let key = Key::from_bytes(&[1; 16]).expect("valid");
        let mut hex = Vec::new();
        encrypt_hex(
            b"#1234|NBA1]_07:50:26,10-26-2018",
            &key,
            [0x41; 16],
            &mut hex,
        );
        let wrong = Key::from_bytes(&[2; 16]).expect("valid");
        assert_eq!(
            decrypt(&hex, &wrong, &mut Vec::new()).map(|_| ()),
            Err(FrameError::DecryptFailed)
        );
    }
}
