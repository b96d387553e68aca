//! Ademco Contact ID (SIA DC-05), PROTOCOLS.md §3: inside DC-09 as `ADM-CID` data
//! (`#acct|QXYZ GG CCC`) and as raw 16-digit strings `AAAA MT Q XYZ GG CCC S` with a mod-15
//! check digit. Contact ID never uses the digit `A`: it stands for 0 (DTMF value 10) and is
//! normalised to `0` on input.

use crate::catalogue::{self, CidCode, Class};
use crate::error::{ContactIdError, PayloadError};
use crate::short::Short;

/// The event qualifier (§3.1, §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// `1` / `E`: new event, or opening (disarm).
    New,
    /// `3` / `R`: restore, or closing (arm).
    Restore,
    /// `6` / `P`: previously reported condition still present.
    Previous,
}

impl Qualifier {
    /// From the digit `1`, `3` or `6`.
    pub fn from_digit(b: u8) -> Option<Self> {
        match b {
            b'1' => Some(Self::New),
            b'3' => Some(Self::Restore),
            b'6' => Some(Self::Previous),
            _ => None,
        }
    }

    /// From the receiver-output letter `E`, `R` or `P` (§5.1).
    pub fn from_letter(b: u8) -> Option<Self> {
        match b {
            b'E' => Some(Self::New),
            b'R' => Some(Self::Restore),
            b'P' => Some(Self::Previous),
            _ => None,
        }
    }

    /// The digit form.
    pub fn digit(&self) -> u8 {
        match self {
            Self::New => b'1',
            Self::Restore => b'3',
            Self::Previous => b'6',
        }
    }

    /// The letter form.
    pub fn letter(&self) -> u8 {
        match self {
            Self::New => b'E',
            Self::Restore => b'R',
            Self::Previous => b'P',
        }
    }
}

/// One Contact ID event: qualifier, code, group (partition) and zone or user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactId {
    /// The account block in front of `|` (ADM-CID), or the subscriber digits (DC-05).
    pub account: Option<Short>,
    /// Event qualifier.
    pub qualifier: Qualifier,
    /// The three-digit event code `XYZ`.
    pub code: Short,
    /// The two-digit group / partition `GG` (`00` = none).
    pub group: Short,
    /// The three-digit zone or user `CCC` (which one: see the catalogue).
    pub zone_or_user: Short,
}

impl ContactId {
    /// The event code as a number, when it is decimal.
    pub fn code_number(&self) -> Option<u16> {
        let &[x, y, z] = self.code.as_bytes() else {
            return None;
        };
        let d = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
        Some(d(x)? * 100 + d(y)? * 10 + d(z)?)
    }

    /// The catalogue entry, if the code is known.
    pub fn catalogue(&self) -> Option<&'static CidCode> {
        self.code_number().and_then(catalogue::contact_id)
    }

    /// The class: for open/close codes the qualifier decides (1 opening, 3 closing).
    pub fn class(&self) -> Class {
        self.catalogue()
            .map_or(Class::Unknown, |c| c.class(self.qualifier.digit()))
    }
}

fn is_cid_digit(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

fn normalise(b: u8) -> u8 {
    if b == b'A' {
        b'0'
    } else {
        b
    }
}

fn cid_field(b: &[u8]) -> Option<Short> {
    if !b.iter().all(|&c| is_cid_digit(c)) {
        return None;
    }
    let s = Short::new(b)?;
    Some(if b.contains(&b'A') {
        s.map(normalise)
    } else {
        s
    })
}

/// Reads an `ADM-CID` data block: `[#]acct|QXYZ GG CCC`, the account block and its `#` optional.
pub fn parse_adm_cid(data: &[u8]) -> Result<ContactId, PayloadError> {
    if data.is_empty() {
        return Err(PayloadError::Empty);
    }
    let (account, body) = match data.iter().position(|&b| b == b'|') {
        Some(bar) => {
            let block = &data[..bar];
            let block = block.strip_prefix(b"#").unwrap_or(block);
            let ok = (3..=16).contains(&block.len()) && block.iter().all(u8::is_ascii_hexdigit);
            (
                Some(
                    Short::new(block)
                        .filter(|_| ok)
                        .ok_or(PayloadError::BadAccount)?,
                ),
                &data[bar + 1..],
            )
        }
        None => (None, data),
    };
    let [q, x, y, z, b' ', g1, g2, b' ', c1, c2, c3] = *body else {
        return Err(PayloadError::BadContactId);
    };
    let qualifier = Qualifier::from_digit(q).ok_or(PayloadError::BadQualifier(char::from(q)))?;
    let code = cid_field(&[x, y, z]).ok_or(PayloadError::BadContactId)?;
    let group = cid_field(&[g1, g2]).ok_or(PayloadError::BadContactId)?;
    let zone_or_user = cid_field(&[c1, c2, c3]).ok_or(PayloadError::BadContactId)?;
    Ok(ContactId {
        account,
        qualifier,
        code,
        group,
        zone_or_user,
    })
}

/// A raw 16-digit Contact ID message (DC-05).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dc05 {
    /// The event (its `account` is the 4 subscriber digits).
    pub event: ContactId,
    /// Message type: `18` or `98`.
    pub message_type: Short,
    /// The check digit as sent.
    pub checksum: u8,
}

/// Value of a Contact ID digit: `0` and `A` are worth 10, `B`–`F` 11–15.
fn digit_value(b: u8) -> Option<u32> {
    match b {
        b'0' | b'A' => Some(10),
        b'1'..=b'9' => Some(u32::from(b - b'0')),
        b'B'..=b'F' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

/// Sum of digit values (every valid message sums to a multiple of 15).
pub fn digit_sum(digits: &[u8]) -> Option<u32> {
    digits.iter().map(|&b| digit_value(b)).sum()
}

/// The check digit for the first 15 digits: 15 − (sum mod 15), value 10 written `0`, 11–15
/// `B`–`F`, and 15 written `F` (§3.1).
pub fn check_digit(first15: &[u8]) -> Option<u8> {
    let s = 15 - digit_sum(first15)? % 15;
    Some(match s {
        10 => b'0',
        1..=9 => b'0' + s as u8,
        _ => b'A' + (s - 10) as u8,
    })
}

/// Verifies and reads a 16-digit Contact ID string (surrounding whitespace ignored).
pub fn parse_dc05(raw: &[u8]) -> Result<Dc05, ContactIdError> {
    let raw = raw.trim_ascii();
    if raw.len() != 16 {
        return Err(ContactIdError::BadLength { len: raw.len() });
    }
    if let Some(&bad) = raw.iter().find(|&&b| !is_cid_digit(b)) {
        return Err(ContactIdError::BadDigit(char::from(bad)));
    }
    let n = |r: std::ops::Range<usize>| Short::new(&raw[r]).map(|s| s.map(normalise));
    let message_type = n(4..6).ok_or(ContactIdError::BadLength { len: raw.len() })?;
    if message_type != "18" && message_type != "98" {
        return Err(ContactIdError::BadMessageType(message_type.to_string()));
    }
    let qualifier =
        Qualifier::from_digit(raw[6]).ok_or(ContactIdError::BadQualifier(char::from(raw[6])))?;
    let sum = digit_sum(raw).unwrap_or(0);
    if sum % 15 != 0 {
        return Err(ContactIdError::Checksum { sum });
    }
    let field = |r| n(r).ok_or(ContactIdError::BadLength { len: 16 });
    let event = ContactId {
        account: Some(field(0..4)?),
        qualifier,
        code: field(7..10)?,
        group: field(10..12)?,
        zone_or_user: field(12..15)?,
    };
    Ok(Dc05 {
        event,
        message_type,
        checksum: raw[15],
    })
}

/// Writes a 16-digit Contact ID string with its check digit. Fields must be Contact ID digits of
/// the right widths (4, 3, 2, 3); `None` otherwise.
pub fn encode_dc05(
    account: &str,
    message_type: &str,
    qualifier: Qualifier,
    code: &str,
    group: &str,
    zone: &str,
) -> Option<[u8; 16]> {
    let widths = [
        (account, 4),
        (message_type, 2),
        (code, 3),
        (group, 2),
        (zone, 3),
    ];
    if widths
        .iter()
        .any(|(s, w)| s.len() != *w || !s.bytes().all(is_cid_digit))
    {
        return None;
    }
    let mut out = [0u8; 16];
    let mut at = 0;
    for part in [
        account.as_bytes(),
        message_type.as_bytes(),
        &[qualifier.digit()],
        code.as_bytes(),
        group.as_bytes(),
        zone.as_bytes(),
    ] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    out[15] = check_digit(&out[..15])?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adm_cid_with_and_without_account_block() {
        let c = parse_adm_cid(b"#4F39|3401 01 057").expect("valid");
        assert_eq!(c.account.map(|a| a.to_string()), Some("4F39".into()));
        assert_eq!(
            (c.qualifier, c.code, c.group, c.zone_or_user),
            (
                Qualifier::Restore,
                Short::new(b"401").unwrap(),
                Short::new(b"01").unwrap(),
                Short::new(b"057").unwrap()
            )
        );
        assert_eq!(c.class(), Class::Closing);
        assert_eq!(parse_adm_cid(b"1602 00 001").map(|c| c.account), Ok(None));
        assert_eq!(
            parse_adm_cid(b"3044|1602 00 001").map(|c| c.class()),
            Ok(Class::Test)
        );
    }

    #[test]
    fn adm_cid_errors() {
        assert_eq!(parse_adm_cid(b""), Err(PayloadError::Empty));
        assert_eq!(
            parse_adm_cid(b"#1234|2130 01 001"),
            Err(PayloadError::BadQualifier('2'))
        );
        assert_eq!(
            parse_adm_cid(b"#1234|1130 01 01"),
            Err(PayloadError::BadContactId)
        );
        assert_eq!(
            parse_adm_cid(b"#12|1130 01 001"),
            Err(PayloadError::BadAccount)
        );
    }

    #[test]
    fn dc05_check_digit_worked_examples() {
        assert_eq!(check_digit(b"123418113101015"), Some(b'8'));
        let d = parse_dc05(b"6556183402A1015D").expect("valid");
        assert_eq!(d.event.group, "01");
        assert_eq!(
            encode_dc05("1234", "18", Qualifier::New, "131", "01", "015")
                .as_ref()
                .map(|b| &b[..]),
            Some(&b"1234181131010158"[..])
        );
    }
}
