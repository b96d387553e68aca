//! SIA DC-03 data as carried in DC-09 `SIA-DCS` frames and Sur-Gard SIA packets
//! (PROTOCOLS.md §4).
//!
//! The data is blocks separated by `|`; a block starts with a function code (`N` new event, `O`
//! old event, `L` listen-in, `A` ASCII text, …). An event block holds packets separated by `/`,
//! each a modifier (two lowercase letters + value: `ri` area, `id` user, `ti` time, `da` date,
//! …, applying to the events that follow) or an event (two uppercase letters + address, then
//! optional `^text^` and `*…` trailer). Panels also run modifiers and events together without
//! `/` (`Nri0000pi0006da10-26-18ti09:50:24UT0000^…^`); both forms are read.

use crate::catalogue::{self, AddressKind, Class, Kind, SiaCode};
use crate::error::PayloadError;
use crate::parse::lossy_text;
use crate::short::Short;

/// The function of an event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `N`: new event.
    New,
    /// `O`: old event (already reported, status).
    Old,
    /// `L`: listen-in requested, with events.
    ListenIn,
}

impl Function {
    /// The block's function character.
    pub fn as_char(&self) -> char {
        match self {
            Self::New => 'N',
            Self::Old => 'O',
            Self::ListenIn => 'L',
        }
    }
}

/// The modifiers in force when an event was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Modifiers<'a> {
    /// `ri`: area (partition).
    pub area: Option<Short>,
    /// `^text^` after `ri`: the area's name.
    pub area_text: Option<&'a [u8]>,
    /// `id`: user or subscriber number.
    pub user: Option<Short>,
    /// `ti`: time, `hh:mm` (DC-03) or `hh:mm:ss` (seen in the wild).
    pub time: Option<Short>,
    /// `da`: date `MM-DD-YY`.
    pub date: Option<Short>,
    /// Other modifiers (`pi`, `ai`, `ph`, `lv`, `va`, `pt`, `rg`, `ss`, …), up to three kept:
    /// name and value.
    pub other: [Option<([u8; 2], Short)>; 3],
}

impl Modifiers<'_> {
    fn set(&mut self, name: [u8; 2], value: Short) {
        match &name {
            b"ri" => self.area = Some(value),
            b"id" => self.user = Some(value),
            b"ti" => self.time = Some(value),
            b"da" => self.date = Some(value),
            _ => {
                let slot = self
                    .other
                    .iter_mut()
                    .find(|s| s.is_none_or(|(n, _)| n == name));
                if let Some(slot) = slot {
                    *slot = Some((name, value));
                }
            }
        }
    }

    /// The other modifiers that are set, as (name, value).
    pub fn others(&self) -> impl Iterator<Item = (&str, Short)> + '_ {
        self.other
            .iter()
            .flatten()
            .map(|(n, v)| (std::str::from_utf8(n).unwrap_or_default(), *v))
    }
}

/// One SIA event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SiaEvent<'a> {
    /// The block it came in.
    pub function: Function,
    /// Two-letter event code.
    pub code: Short,
    /// The address (zone, user, area or door, by code), as received.
    pub address: Option<Short>,
    /// `^text^` after the address (e.g. the zone name).
    pub text: Option<&'a [u8]>,
    /// `*…` trailer (units value or extended text), raw.
    pub trailer: Option<&'a [u8]>,
    /// Text of an `A` block that follows the event's block.
    pub ascii: Option<&'a [u8]>,
    /// Modifiers in force.
    pub modifiers: Modifiers<'a>,
}

/// What the catalogue (or, failing it, the code-family pattern) says about one SIA code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meaning {
    /// The catalogue entry, if the code is listed.
    pub entry: Option<&'static SiaCode>,
    /// Class (`Unknown` if neither listed nor patterned).
    pub class: Class,
    /// Kind of alarm or subject.
    pub kind: Option<Kind>,
    /// What the address identifies (zone unless listed otherwise).
    pub address: AddressKind,
}

impl SiaEvent<'_> {
    /// Everything the catalogue says about this event's code, from one lookup.
    pub fn meaning(&self) -> Meaning {
        let code = self.code.as_bytes();
        match catalogue::sia_bytes(code) {
            Some(c) => Meaning {
                entry: Some(c),
                class: c.class,
                kind: c.kind,
                address: c.address,
            },
            None => {
                let (class, kind) =
                    catalogue::sia_pattern_bytes(code).unwrap_or((Class::Unknown, None));
                Meaning {
                    entry: None,
                    class,
                    kind,
                    address: AddressKind::Zone,
                }
            }
        }
    }

    /// The catalogue entry, if the code is known.
    pub fn catalogue(&self) -> Option<&'static SiaCode> {
        catalogue::sia_bytes(self.code.as_bytes())
    }

    /// Class, from the catalogue or else the code-family pattern; `Unknown` otherwise.
    pub fn class(&self) -> Class {
        self.meaning().class
    }

    /// Kind of alarm or subject.
    pub fn kind(&self) -> Option<Kind> {
        self.meaning().kind
    }

    /// What the address identifies.
    pub fn address_kind(&self) -> AddressKind {
        self.meaning().address
    }

    /// The user: the address of a user-class code, else the `id` modifier.
    pub fn user(&self) -> Option<Short> {
        self.user_for(self.address_kind())
    }

    /// The user, given the address kind already looked up.
    pub fn user_for(&self, address: AddressKind) -> Option<Short> {
        match address {
            AddressKind::User => self.address.or(self.modifiers.user),
            _ => self.modifiers.user,
        }
    }
}

/// A whole SIA data group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiaData<'a> {
    /// The account block, if present.
    pub account: Option<Short>,
    /// True when the account block was written without `#` (PROSEC, OPAX, §1.7).
    pub account_without_hash: bool,
    /// Events in order.
    pub events: Vec<SiaEvent<'a>>,
    /// `A` blocks that did not follow an event block (a text-only message).
    pub texts: Vec<&'a [u8]>,
    /// Listen-in seconds from an `L` packet inside an event block (`…/L90`).
    pub listen_in: Option<Short>,
    /// Blocks with other functions (environmental, extended, video, control, …), kept raw.
    pub other_blocks: Vec<&'a [u8]>,
}

/// Reads a SIA-DCS data block (what sits between `[` and `]`).
pub fn parse_sia_data(data: &[u8]) -> Result<SiaData<'_>, PayloadError> {
    if data.is_empty() {
        return Err(PayloadError::Empty);
    }
    let mut out = SiaData::default();
    let mut blocks = data.split(|&b| b == b'|').peekable();
    let first = blocks.peek().copied().unwrap_or_default();
    let more = data.contains(&b'|');
    if let Some(acct) = first.strip_prefix(b"#") {
        out.account = Some(account(acct)?);
        blocks.next();
    } else if more
        && (first.is_empty()
            || (3..=16).contains(&first.len()) && first.iter().all(u8::is_ascii_hexdigit))
    {
        if !first.is_empty() {
            out.account = Some(account(first)?);
            out.account_without_hash = true;
        }
        blocks.next();
    }
    let mut last_event_block = None;
    for block in blocks {
        let Some((&f, body)) = block.split_first() else {
            continue;
        };
        let function = match f {
            b'N' => Some(Function::New),
            b'O' => Some(Function::Old),
            b'L' => Some(Function::ListenIn),
            _ => None,
        };
        match (function, f) {
            (Some(function), _) => {
                let start = out.events.len();
                read_event_block(function, body, &mut out)?;
                last_event_block = Some(start..out.events.len());
            }
            (None, b'A') => match last_event_block.take().filter(|r| !r.is_empty()) {
                Some(range) => out.events[range]
                    .iter_mut()
                    .for_each(|e| e.ascii = Some(body)),
                None => out.texts.push(body),
            },
            (
                None,
                b'E' | b'X' | b'V' | b'v' | b'I' | b'C' | b'P' | b'@' | b'?' | b'&' | b'0'..=b'9',
            ) => {
                out.other_blocks.push(block);
                last_event_block = None;
            }
            (None, other) => return Err(PayloadError::UnknownFunction(char::from(other))),
        }
    }
    if out.events.is_empty() && out.texts.is_empty() && out.other_blocks.is_empty() {
        return Err(PayloadError::Empty);
    }
    Ok(out)
}

fn account(b: &[u8]) -> Result<Short, PayloadError> {
    let ok = (3..=16).contains(&b.len()) && b.iter().all(u8::is_ascii_hexdigit);
    Short::new(b).filter(|_| ok).ok_or(PayloadError::BadAccount)
}

fn short(b: &[u8]) -> Result<Short, PayloadError> {
    Short::new(b).ok_or(PayloadError::FieldTooLong)
}

/// Scans one event block. Modifiers persist across the packets of the block.
fn read_event_block<'a>(
    function: Function,
    s: &'a [u8],
    out: &mut SiaData<'a>,
) -> Result<(), PayloadError> {
    let mut mods = Modifiers::default();
    let mut p = 0;
    let at = |p: usize| s.get(p).copied();
    let bad = |p: usize| PayloadError::BadSiaPacket {
        packet: lossy_text(s),
        at: p,
    };
    while p < s.len() {
        let c = s[p];
        let c2 = at(p + 1);
        if c == b'/' {
            p += 1;
        } else if c.is_ascii_lowercase() && c2.is_some_and(|b| b.is_ascii_lowercase()) {
            let name = [c, s[p + 1]];
            p += 2;
            let v0 = p;
            while at(p).is_some_and(|b| b.is_ascii_digit() || matches!(b, b':' | b'.' | b'-')) {
                p += 1;
            }
            mods.set(name, short(&s[v0..p])?);
            if at(p) == Some(b'^') {
                let (text, next) = caret_text(s, p)?;
                if &name == b"ri" {
                    mods.area_text = Some(text);
                }
                p = next;
            }
        } else if c == b'L' && c2.is_some_and(|b| b.is_ascii_digit()) {
            let v0 = p + 1;
            p = v0;
            while at(p).is_some_and(|b| b.is_ascii_digit()) {
                p += 1;
            }
            out.listen_in = Some(short(&s[v0..p])?);
        } else if c.is_ascii_uppercase() && c2.is_some_and(|b| b.is_ascii_uppercase()) {
            let code = short(&s[p..p + 2])?;
            p += 2;
            let a0 = p;
            while let Some(b) = at(p) {
                let hex_letter = (b'A'..=b'F').contains(&b)
                    && !at(p + 1).is_some_and(|n| n.is_ascii_uppercase());
                if b.is_ascii_digit() || matches!(b, b':' | b'-') || hex_letter {
                    p += 1;
                } else {
                    break;
                }
            }
            let address = if p > a0 {
                Some(short(&s[a0..p])?)
            } else {
                None
            };
            let mut text = None;
            if at(p) == Some(b'^') {
                let (t, next) = caret_text(s, p)?;
                text = Some(t);
                p = next;
            }
            let mut trailer = None;
            if at(p) == Some(b'*') {
                let end = s[p..]
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(s.len(), |e| p + e);
                trailer = Some(&s[p + 1..end]);
                p = end;
            }
            out.events.push(SiaEvent {
                function,
                code,
                address,
                text,
                trailer,
                ascii: None,
                modifiers: mods,
            });
        } else {
            return Err(bad(p));
        }
    }
    Ok(())
}

/// `^text^` starting at `s[p] == '^'`: the text and the index after the closing `^`.
fn caret_text(s: &[u8], p: usize) -> Result<(&[u8], usize), PayloadError> {
    let len = s[p + 1..]
        .iter()
        .position(|&b| b == b'^')
        .ok_or(PayloadError::UnterminatedText)?;
    Ok((&s[p + 1..p + 1 + len], p + 2 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (code, address, area, user) of each event.
    type Row = (String, Option<String>, Option<String>, Option<String>);

    fn events(data: &str) -> Vec<Row> {
        parse_sia_data(data.as_bytes())
            .expect("valid")
            .events
            .iter()
            .map(|e| {
                (
                    e.code.to_string(),
                    e.address.map(|a| a.to_string()),
                    e.modifiers.area.map(|a| a.to_string()),
                    e.user().map(|u| u.to_string()),
                )
            })
            .collect()
    }

    fn ev(
        code: &str,
        addr: Option<&str>,
        area: Option<&str>,
        user: Option<&str>,
    ) -> (String, Option<String>, Option<String>, Option<String>) {
        (
            code.into(),
            addr.map(Into::into),
            area.map(Into::into),
            user.map(Into::into),
        )
    }

    #[test]
    fn modifiers_apply_to_following_events() {
        assert_eq!(
            events("#1234|Nda04-22-94ti16:02:15/id22/CL/PA31"),
            vec![
                ev("CL", None, None, Some("22")),
                ev("PA", Some("31"), None, Some("22"))
            ]
        );
        assert_eq!(
            events("#AAA|Nri0/RP0000"),
            vec![ev("RP", Some("0000"), Some("0"), None)]
        );
        assert_eq!(
            events("#123456|Nri1CL0^VX FRONTE       ^"),
            vec![ev("CL", Some("0"), Some("1"), Some("0"))]
        );
    }

    #[test]
    fn run_together_modifiers_and_names() {
        let d = parse_sia_data(b"#12345|Nri0000pi0006da10-26-18ti09:50:24UT0000^$PR,A/B^")
            .expect("valid");
        let e = &d.events[0];
        assert_eq!(
            (e.code, e.address.map(|a| a.to_string())),
            (Short::new(b"UT").unwrap(), Some("0000".into()))
        );
        assert_eq!(e.text, Some(&b"$PR,A/B"[..]));
        assert_eq!(
            e.modifiers
                .others()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>(),
            vec!["pi=0006"]
        );
        let d = parse_sia_data(b"#1234|Nri2^HOUSE^FA12^KITCHEN^").expect("valid");
        assert_eq!(d.events[0].modifiers.area_text, Some(&b"HOUSE"[..]));
        assert_eq!(d.events[0].text, Some(&b"KITCHEN"[..]));
        assert_eq!(
            events("#1234|Nti12:34:56RP"),
            vec![ev("RP", None, None, None)]
        );
    }

    #[test]
    fn accounts_text_blocks_and_listen_in() {
        let d = parse_sia_data(b"3044|NOP1").expect("valid");
        assert!(d.account_without_hash);
        assert_eq!(d.events[0].user().map(|u| u.to_string()), Some("1".into()));
        let d = parse_sia_data(b"#1234|NRR|Atest").expect("valid");
        assert_eq!(d.events[0].ascii, Some(&b"test"[..]));
        let d = parse_sia_data(b"#1234|AHELLO").expect("valid");
        assert_eq!((d.events.len(), d.texts), (0, vec![&b"HELLO"[..]]));
        let d = parse_sia_data(b"#1234|Nri1BA01/L90").expect("valid");
        assert_eq!(d.listen_in.map(|l| l.to_string()), Some("90".into()));
        assert_eq!(parse_sia_data(b"|Nri1/CL501").map(|d| d.account), Ok(None));
        assert_eq!(
            events("Nri1/WA000"),
            vec![ev("WA", Some("000"), Some("1"), None)]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse_sia_data(b""), Err(PayloadError::Empty));
        assert_eq!(
            parse_sia_data(b"#1234|Nri1^open"),
            Err(PayloadError::UnterminatedText)
        );
        assert!(matches!(
            parse_sia_data(b"#1234|N!!"),
            Err(PayloadError::BadSiaPacket { at: 0, .. })
        ));
        assert_eq!(
            parse_sia_data(b"#1234|Z99"),
            Err(PayloadError::UnknownFunction('Z'))
        );
        assert_eq!(parse_sia_data(b"#12|NBA1"), Err(PayloadError::BadAccount));
    }
}
