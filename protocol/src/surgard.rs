//! Serial receiver output (PROTOCOLS.md §5), both directions: vakt reads it from receivers and
//! writes it to existing automation software.
//!
//! - Sur-Gard MLR2 family, packets ending in DC4 (0x14): Contact ID `5RRL␠18AAAAQXYZGGCCC`,
//!   SIA `SRRL[#acct|…]`, internal status `0RRL[…]`, heartbeat `1RRL` + 11 spaces + `@` + 4
//!   spaces. The line field is 1 digit on MLR2/MLR2E and 3+ on MLR2000/System III/5: read as
//!   the digits before the next fixed field, checked against the configured width if any.
//! - Bosch D6600 `a` (Contact ID: `aRRL␠AAAA18QXYZGGCCC`) and `S` (same shape as Sur-Gard SIA).
//! - Ademco 685 Contact ID lines `RG␠AAAA␠18␠QXYZ␠GG␠FCCC` (framed LF … CR, not DC4).
//! - Raw 16-digit Contact ID lines (see [`crate::contact_id`]).
//!
//! Each packet is answered ACK (0x06) or NAK (0x15).

use bytes::{BufMut, BytesMut};

use crate::catalogue::AddressKind;
use crate::contact_id::{parse_dc05, ContactId, Dc05, Qualifier};
use crate::error::SerialError;
use crate::short::Short;

/// Acknowledge, sent after each packet is stored.
pub const ACK: u8 = 0x06;
/// Negative acknowledge: the receiver sends the packet again.
pub const NAK: u8 = 0x15;
/// Packet terminator of Sur-Gard and Bosch output.
pub const DC4: u8 = 0x14;

/// Receiver-specific reading options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialOptions {
    /// Digits of the line field: 1 (MLR2/MLR2E), 3 (MLR2000, System III/5), … `None` reads any
    /// width.
    pub line_digits: Option<u8>,
    /// Digits of the account in Contact ID packets (4 on MLR2E).
    pub account_digits: u8,
}

impl Default for SerialOptions {
    fn default() -> Self {
        Self {
            line_digits: None,
            account_digits: 4,
        }
    }
}

/// One packet from a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A Contact ID event (Sur-Gard protocol 5, Bosch `a`, Ademco 685, raw DC-05).
    ContactId {
        /// Receiver number.
        receiver: Short,
        /// Line (line card) number; for Ademco 685, the receiver group.
        line: Short,
        /// The event, account included.
        event: ContactId,
        /// Ademco 685 says whether CCC is a zone (`C`) or a user (`U`).
        address_kind: Option<AddressKind>,
    },
    /// SIA data (Sur-Gard `S`, Bosch `S`, Sur-Gard internal status `0`).
    Sia {
        /// The protocol character (`S` or `0`).
        protocol: u8,
        /// Receiver number.
        receiver: Short,
        /// Line number.
        line: Short,
        /// The DC-03 data between the brackets.
        data: &'a [u8],
    },
    /// Receiver heartbeat.
    Heartbeat {
        /// Receiver number.
        receiver: Short,
        /// Line number (`0`s on most receivers).
        line: Short,
    },
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn header(b: &[u8], opts: &SerialOptions) -> Result<(Short, Short), SerialError> {
    if b.len() < 3 || !digits(&b[..2]) || !digits(&b[2..]) || b.len() - 2 > 9 {
        return Err(SerialError::BadHeader);
    }
    if opts
        .line_digits
        .is_some_and(|w| usize::from(w) != b.len() - 2)
    {
        return Err(SerialError::BadHeader);
    }
    Ok((
        Short::new(&b[..2]).ok_or(SerialError::BadHeader)?,
        Short::new(&b[2..]).ok_or(SerialError::BadHeader)?,
    ))
}

fn qualifier(b: u8) -> Result<Qualifier, SerialError> {
    Qualifier::from_letter(b)
        .or_else(|| Qualifier::from_digit(b))
        .ok_or(SerialError::BadQualifier(char::from(b)))
}

fn cid_digits(name: &'static str, b: &[u8]) -> Result<Short, SerialError> {
    let ok = b
        .iter()
        .all(|&c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c));
    Short::new(b)
        .filter(|_| ok)
        .map(|s| s.map(|c| if c == b'A' { b'0' } else { c }))
        .ok_or(SerialError::BadField(name))
}

/// `QXYZGGCCC` (9 bytes) into an event.
fn cid_body(account: Short, b: &[u8]) -> Result<ContactId, SerialError> {
    Ok(ContactId {
        account: Some(account),
        qualifier: qualifier(b[0])?,
        code: cid_digits("event code", &b[1..4])?,
        group: cid_digits("group", &b[4..6])?,
        zone_or_user: cid_digits("zone/user", &b[6..9])?,
    })
}

/// Reads one Sur-Gard or Bosch packet (the bytes before DC4).
pub fn parse_packet<'a>(p: &'a [u8], opts: &SerialOptions) -> Result<Packet<'a>, SerialError> {
    let Some(&proto) = p.first() else {
        return Err(SerialError::Empty);
    };
    match proto {
        b'5' | b'a' => contact_id_packet(proto, p, opts),
        b'S' | b'0' => sia_packet(proto, p, opts),
        b'1' if p.contains(&b'@') => heartbeat(p, opts),
        other => Err(SerialError::UnsupportedProtocol(char::from(other))),
    }
}

fn contact_id_packet<'a>(
    proto: u8,
    p: &'a [u8],
    opts: &SerialOptions,
) -> Result<Packet<'a>, SerialError> {
    let space = p
        .iter()
        .position(|&b| b == b' ')
        .ok_or(SerialError::BadHeader)?;
    let (receiver, line) = header(&p[1..space], opts)?;
    let body = &p[space + 1..];
    let acct = usize::from(opts.account_digits);
    if body.len() != 2 + acct + 9 {
        return Err(SerialError::BadLength);
    }
    // Sur-Gard writes `18` before the account, Bosch after it.
    let (mt, account, rest) = if proto == b'5' {
        (&body[..2], &body[2..2 + acct], &body[2 + acct..])
    } else {
        (&body[acct..acct + 2], &body[..acct], &body[acct + 2..])
    };
    if mt != b"18" && mt != b"98" {
        return Err(SerialError::BadMessageType);
    }
    let account = cid_digits("account", account)?;
    Ok(Packet::ContactId {
        receiver,
        line,
        event: cid_body(account, rest)?,
        address_kind: None,
    })
}

fn sia_packet<'a>(proto: u8, p: &'a [u8], opts: &SerialOptions) -> Result<Packet<'a>, SerialError> {
    let open = p
        .iter()
        .position(|&b| b == b'[')
        .ok_or(SerialError::BadField("SIA data"))?;
    if p.last() != Some(&b']') || open + 1 > p.len() - 1 {
        return Err(SerialError::BadField("SIA data"));
    }
    let head: Vec<u8> = p[1..open].iter().copied().filter(|&b| b != b' ').collect();
    let (receiver, line) = header(&head, opts)?;
    let data = &p[open + 1..p.len() - 1];
    crate::sia_dcs::parse_sia_data(data)?;
    Ok(Packet::Sia {
        protocol: proto,
        receiver,
        line,
        data,
    })
}

fn heartbeat<'a>(p: &'a [u8], opts: &SerialOptions) -> Result<Packet<'a>, SerialError> {
    let end = p
        .iter()
        .position(|&b| b == b' ')
        .ok_or(SerialError::BadHeader)?;
    let (receiver, line) = header(&p[1..end], opts)?;
    let tail = &p[end..];
    let at = tail
        .iter()
        .position(|&b| b == b'@')
        .ok_or(SerialError::BadField("heartbeat"))?;
    if !tail.iter().enumerate().all(|(i, &b)| b == b' ' || i == at) {
        return Err(SerialError::BadField("heartbeat"));
    }
    Ok(Packet::Heartbeat { receiver, line })
}

/// Reads an Ademco 685 Contact ID line `RG AAAA 18 QXYZ GG FCCC` (without LF and CR).
pub fn parse_ademco685(line: &[u8]) -> Result<Packet<'_>, SerialError> {
    let fields: Vec<&[u8]> = line
        .trim_ascii()
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .collect();
    let [rg, acct, mt, qxyz, gg, fccc] = fields[..] else {
        return Err(SerialError::BadLength);
    };
    if rg.len() != 2 || !digits(rg) {
        return Err(SerialError::BadHeader);
    }
    if mt != b"18" && mt != b"98" {
        return Err(SerialError::BadMessageType);
    }
    if qxyz.len() != 4 || gg.len() != 2 || fccc.len() != 4 {
        return Err(SerialError::BadLength);
    }
    let address_kind = match fccc[0] {
        b'C' => AddressKind::Zone,
        b'U' => AddressKind::User,
        _ => return Err(SerialError::BadField("C/U flag")),
    };
    let mut body = [0u8; 9];
    body[..4].copy_from_slice(qxyz);
    body[4..6].copy_from_slice(gg);
    body[6..].copy_from_slice(&fccc[1..]);
    let account = cid_digits("account", acct)?;
    Ok(Packet::ContactId {
        receiver: Short::new(&rg[..1]).ok_or(SerialError::BadHeader)?,
        line: Short::new(&rg[1..]).ok_or(SerialError::BadHeader)?,
        event: cid_body(account, &body)?,
        address_kind: Some(address_kind),
    })
}

/// Reads a raw 16-digit Contact ID line.
pub fn parse_contact_id_line(line: &[u8]) -> Result<Dc05, SerialError> {
    Ok(parse_dc05(line)?)
}

fn put_header(out: &mut BytesMut, proto: u8, receiver: &str, line: &str) {
    out.put_u8(proto);
    out.put_slice(receiver.as_bytes());
    out.put_slice(line.as_bytes());
}

/// Writes a Sur-Gard protocol 5 Contact ID packet `5RRL␠18AAAAQXYZGGCCC` + DC4. `line` is written
/// as given (its width is the receiver model's).
pub fn encode_contact_id(
    receiver: &str,
    line: &str,
    account: &str,
    event: &ContactId,
    out: &mut BytesMut,
) {
    put_header(out, b'5', receiver, line);
    out.put_slice(b" 18");
    out.put_slice(account.as_bytes());
    out.put_u8(event.qualifier.letter());
    out.put_slice(event.code.as_bytes());
    out.put_slice(event.group.as_bytes());
    out.put_slice(event.zone_or_user.as_bytes());
    out.put_u8(DC4);
}

/// Writes a Sur-Gard SIA packet `SRRL[data]` + DC4.
pub fn encode_sia(receiver: &str, line: &str, data: &[u8], out: &mut BytesMut) {
    put_header(out, b'S', receiver, line);
    out.put_u8(b'[');
    out.put_slice(data);
    out.put_u8(b']');
    out.put_u8(DC4);
}

/// Writes a heartbeat `1RRL` + 11 spaces + `@` + 4 spaces + DC4.
pub fn encode_heartbeat(receiver: &str, line: &str, out: &mut BytesMut) {
    put_header(out, b'1', receiver, line);
    out.put_slice(b"           @    ");
    out.put_u8(DC4);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_id_packet_both_widths_and_bosch() {
        let o = SerialOptions::default();
        let Ok(Packet::ContactId {
            receiver,
            line,
            event,
            ..
        }) = parse_packet(b"5011 181234E12101001", &o)
        else {
            panic!("valid")
        };
        assert_eq!(
            (
                receiver.as_str(),
                line.as_str(),
                event.code.as_str(),
                event.qualifier
            ),
            ("01", "1", "121", Qualifier::New)
        );
        let Ok(Packet::ContactId { line, .. }) = parse_packet(b"5011234 181234R13101015", &o)
        else {
            panic!("valid")
        };
        assert_eq!(line, "1234");
        let strict = SerialOptions {
            line_digits: Some(3),
            ..o
        };
        assert_eq!(
            parse_packet(b"5011 181234E12101001", &strict),
            Err(SerialError::BadHeader)
        );
        let Ok(Packet::ContactId { event, .. }) = parse_packet(b"a011 123418113101015", &o) else {
            panic!("bosch valid")
        };
        assert_eq!(event.qualifier, Qualifier::New);
    }

    #[test]
    fn errors() {
        let o = SerialOptions::default();
        assert_eq!(
            parse_packet(b"5011 181234E1210100", &o),
            Err(SerialError::BadLength)
        );
        assert_eq!(
            parse_packet(b"5011 171234E12101001", &o),
            Err(SerialError::BadMessageType)
        );
        assert_eq!(
            parse_packet(b"5011 181234X12101001", &o),
            Err(SerialError::BadQualifier('X'))
        );
        assert_eq!(
            parse_packet(b"Z011", &o),
            Err(SerialError::UnsupportedProtocol('Z'))
        );
        assert_eq!(parse_packet(b"", &o), Err(SerialError::Empty));
    }

    #[test]
    fn encoders_round_trip() {
        let o = SerialOptions::default();
        let event = ContactId {
            account: None,
            qualifier: Qualifier::Restore,
            code: Short::new(b"401").unwrap(),
            group: Short::new(b"02").unwrap(),
            zone_or_user: Short::new(b"007").unwrap(),
        };
        let mut out = BytesMut::new();
        encode_contact_id("01", "001", "4F39", &event, &mut out);
        assert_eq!(&out[..], b"501001 184F39R40102007\x14");
        let Ok(Packet::ContactId { event: back, .. }) = parse_packet(&out[..out.len() - 1], &o)
        else {
            panic!("parses")
        };
        assert_eq!((back.code, back.qualifier), (event.code, event.qualifier));
        out.clear();
        encode_heartbeat("01", "1", &mut out);
        assert_eq!(&out[..], b"1011           @    \x14");
    }
}
