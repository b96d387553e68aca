//! [`Event`]: one shape for every event vakt receives, whatever the format, and
//! [`decode_payload`], which turns a DC-09 data block into them by token.

use crate::catalogue::{self, AddressKind, Class, Kind};
use crate::contact_id::{parse_adm_cid, ContactId, Qualifier};
use crate::dc09::TokenKind;
use crate::error::PayloadError;
use crate::short::Short;
use crate::sia_dcs::{parse_sia_data, SiaData, SiaEvent};

/// The code system an event is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Contact ID (`ADM-CID`, DC-05, Sur-Gard protocol 5).
    ContactId,
    /// SIA DC-03 (`SIA-DCS`, Sur-Gard SIA).
    Sia,
    /// A supervision heartbeat (no code).
    Heartbeat,
}

impl Scheme {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ContactId => "contact_id",
            Self::Sia => "sia",
            Self::Heartbeat => "heartbeat",
        }
    }

    /// The scheme whose [`Scheme::name`] this is (as read back from storage).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::ContactId, Self::Sia, Self::Heartbeat]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// One event, normalised across formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event<'a> {
    /// Code system.
    pub scheme: Scheme,
    /// The code as received (`131`, `BA`); empty for text-only messages and heartbeats.
    pub code: Short,
    /// Contact ID qualifier.
    pub qualifier: Option<Qualifier>,
    /// Operator class (unknown codes: [`Class::Unknown`]).
    pub class: Class,
    /// Kind of alarm or subject.
    pub kind: Option<Kind>,
    /// Catalogue meaning, when known.
    pub meaning: Option<&'static str>,
    /// Account from the data block, when it carried one.
    pub account: Option<Short>,
    /// Partition / area / group, when given (`00` Contact ID group means none).
    pub partition: Option<Short>,
    /// The address as received (zone, user, area or door number).
    pub address: Option<Short>,
    /// What `address` identifies.
    pub address_kind: AddressKind,
    /// Zone, when the address is one.
    pub zone: Option<Short>,
    /// User, from the address of a user-class code or a SIA `id` modifier.
    pub user: Option<Short>,
    /// Free text: SIA `^text^`, following `A` block, or a text-only message.
    pub text: Option<&'a [u8]>,
    /// SIA `ti` / `da` modifiers (panel-local time of the event).
    pub time: Option<Short>,
    /// SIA `da` modifier.
    pub date: Option<Short>,
}

impl Event<'_> {
    /// The SIA code for a Contact ID event, or the Contact ID code and qualifier digit for a SIA
    /// event (as text, e.g. `1110`), from the catalogue mapping.
    pub fn mapped_code(&self) -> Option<String> {
        match (self.scheme, self.qualifier) {
            (Scheme::ContactId, Some(q)) => self
                .code
                .parse()
                .ok()
                .and_then(catalogue::contact_id)
                .and_then(|c| c.to_sia(q.digit()))
                .map(str::to_owned),
            (Scheme::Sia, _) => catalogue::sia_to_contact_id(&self.code)
                .map(|(c, q)| format!("{}{c:03}", char::from(q))),
            _ => None,
        }
    }
}

impl From<&ContactId> for Event<'static> {
    fn from(c: &ContactId) -> Self {
        let cat = c.catalogue();
        let class = cat.map_or(Class::Unknown, |x| x.class(c.qualifier.digit()));
        let address_kind = cat.map_or(AddressKind::Zone, |x| x.address);
        let address = (c.zone_or_user != "000").then_some(c.zone_or_user);
        Event {
            scheme: Scheme::ContactId,
            code: c.code,
            qualifier: Some(c.qualifier),
            class,
            kind: cat.and_then(|x| x.kind),
            meaning: cat.map(|x| x.meaning),
            account: c.account,
            partition: (c.group != "00").then_some(c.group),
            address,
            address_kind,
            zone: address.filter(|_| address_kind == AddressKind::Zone),
            user: address.filter(|_| address_kind == AddressKind::User),
            text: None,
            time: None,
            date: None,
        }
    }
}

impl<'a> Event<'a> {
    /// Normalises one SIA event; `account` is the data group's account block.
    pub fn from_sia(e: &SiaEvent<'a>, account: Option<Short>) -> Self {
        let address_kind = e.address_kind();
        let partition = e
            .modifiers
            .area
            .or(e.address.filter(|_| address_kind == AddressKind::Area));
        Event {
            scheme: Scheme::Sia,
            code: e.code,
            qualifier: None,
            class: e.class(),
            kind: e.kind(),
            meaning: e.catalogue().map(|c| c.meaning),
            account,
            partition,
            address: e.address,
            address_kind,
            zone: e.address.filter(|_| address_kind == AddressKind::Zone),
            user: e.user(),
            text: e.text.or(e.ascii).or(e.trailer),
            time: e.modifiers.time,
            date: e.modifiers.date,
        }
    }

    /// A text-only SIA message, or a block vakt keeps raw: stored as information.
    fn sia_text(text: &'a [u8], class: Class, account: Option<Short>) -> Self {
        Event {
            scheme: Scheme::Sia,
            code: Short::EMPTY,
            qualifier: None,
            class,
            kind: None,
            meaning: Some(if class == Class::Info {
                "text message"
            } else {
                "unrecognised block"
            }),
            account,
            partition: None,
            address: None,
            address_kind: AddressKind::None,
            zone: None,
            user: None,
            text: Some(text),
            time: None,
            date: None,
        }
    }

    /// A supervision heartbeat.
    pub fn heartbeat() -> Self {
        Event {
            scheme: Scheme::Heartbeat,
            code: Short::EMPTY,
            qualifier: None,
            class: Class::LinkTest,
            kind: None,
            meaning: Some("link test"),
            account: None,
            partition: None,
            address: None,
            address_kind: AddressKind::None,
            zone: None,
            user: None,
            text: None,
            time: None,
            date: None,
        }
    }
}

/// A decoded DC-09 data block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    /// `ADM-CID`.
    ContactId(ContactId),
    /// `SIA-DCS`.
    Sia(SiaData<'a>),
    /// `NULL`: supervision; any data is ignored (one panel sends a dummy CID body, §1.12).
    Null,
    /// A token vakt does not process (DUH).
    Unsupported,
}

/// Decodes a data block by token. Empty data is an error except for `NULL`.
pub fn decode_payload<'a>(
    token: TokenKind<'_>,
    data: &'a [u8],
) -> Result<Payload<'a>, PayloadError> {
    match token {
        TokenKind::AdmCid => parse_adm_cid(data).map(Payload::ContactId),
        TokenKind::SiaDcs => parse_sia_data(data).map(Payload::Sia),
        TokenKind::Null => Ok(Payload::Null),
        _ => Ok(Payload::Unsupported),
    }
}

impl<'a> Payload<'a> {
    /// The events, in order; a heartbeat for `NULL`; none for unsupported tokens.
    pub fn events(&self) -> Vec<Event<'a>> {
        match self {
            Self::ContactId(c) => vec![Event::from(c)],
            Self::Sia(d) => sia_events(d),
            Self::Null => vec![Event::heartbeat()],
            Self::Unsupported => Vec::new(),
        }
    }
}

/// Every event of a SIA data group: its events, then text-only and raw blocks as information.
pub fn sia_events<'a>(d: &SiaData<'a>) -> Vec<Event<'a>> {
    let mut out = Vec::with_capacity(d.events.len().max(1));
    out.extend(d.events.iter().map(|e| Event::from_sia(e, d.account)));
    out.extend(
        d.texts
            .iter()
            .map(|t| Event::sia_text(t, Class::Info, d.account)),
    );
    out.extend(
        d.other_blocks
            .iter()
            .map(|b| Event::sia_text(b, Class::Unknown, d.account)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_id_user_and_zone_by_code() {
        let p = decode_payload(TokenKind::AdmCid, b"#3456|1407 00 001").expect("valid");
        let e = p.events()[0];
        assert_eq!(
            (e.class, e.user.map(|u| u.to_string()), e.zone),
            (Class::Opening, Some("001".into()), None)
        );
        assert_eq!(e.mapped_code().as_deref(), Some("OQ"));
        let p = decode_payload(TokenKind::AdmCid, b"#1234|1131 01 015").expect("valid");
        let e = p.events()[0];
        assert_eq!(
            (
                e.class,
                e.kind,
                e.zone.map(|z| z.to_string()),
                e.partition.map(|z| z.to_string())
            ),
            (
                Class::Alarm,
                Some(Kind::Burglary),
                Some("015".into()),
                Some("01".into())
            )
        );
    }

    #[test]
    fn sia_events_and_text_only() {
        let p = decode_payload(TokenKind::SiaDcs, b"#1234|NBR3|ABACK DOOR").expect("valid");
        let e = p.events()[0];
        assert_eq!((e.class, e.text), (Class::Restore, Some(&b"BACK DOOR"[..])));
        assert_eq!(
            e.mapped_code().as_deref(),
            None,
            "BR has no Contact ID mapping in the table"
        );
        let p = decode_payload(TokenKind::SiaDcs, b"#1234|AHELLO").expect("valid");
        assert_eq!(p.events()[0].class, Class::Info);
        assert_eq!(
            decode_payload(TokenKind::Null, b"#0000|0000 00 000").map(|p| p.events()[0].class),
            Ok(Class::LinkTest)
        );
    }
}
