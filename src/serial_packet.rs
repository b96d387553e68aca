//! One serial packet (Sur-Gard / Bosch automation output, or a raw Contact ID line) into the
//! rows the writer stores, in the same shape as the DC-09 events carrying the same content, so
//! the API, the duplicate-free log and the automation output treat them alike.

use vakt_protocol::contact_id::ContactId;
use vakt_protocol::error::SerialError;
use vakt_protocol::event::{sia_events, Event};
use vakt_protocol::sia_dcs::parse_sia_data;
use vakt_protocol::surgard::{parse_contact_id_line, parse_packet, Packet, SerialOptions};
use vakt_protocol::{lossy_text, Short};

use crate::config::SerialFormat;
use crate::pipeline::event_row;
use crate::store::EventRow;

/// What a packet is.
#[derive(Debug)]
pub enum Parsed {
    /// Events to store before the ACK.
    Events(Vec<EventRow>),
    /// The receiver's heartbeat: ACK at once, nothing stored.
    Heartbeat,
}

/// Reads `packet` (without its terminator). `base` carries the origin fields (listener, peer,
/// receive time, frame reference, raw bytes).
pub fn parse(
    packet: &[u8],
    format: SerialFormat,
    opts: &SerialOptions,
    base: &EventRow,
) -> Result<Parsed, SerialError> {
    match format {
        SerialFormat::Surgard => match parse_packet(packet, opts)? {
            Packet::Heartbeat { .. } => Ok(Parsed::Heartbeat),
            Packet::ContactId {
                receiver,
                line,
                event,
                ..
            } => Ok(Parsed::Events(contact_id_rows(
                &event,
                Some(receiver),
                Some(line),
                base,
            ))),
            Packet::Sia {
                receiver,
                line,
                data,
                ..
            } => sia_rows(data, Some(receiver), Some(line), base).map(Parsed::Events),
        },
        SerialFormat::ContactId => {
            let dc05 = parse_contact_id_line(packet)?;
            Ok(Parsed::Events(contact_id_rows(
                &dc05.event,
                None,
                None,
                base,
            )))
        }
    }
}

/// The data block the event would have had as `ADM-CID` (`#acct|QXYZ GG CCC`), stored so that
/// readers of `data` (the automation output among them) need one form only.
pub fn adm_cid_data(e: &ContactId) -> String {
    format!(
        "#{}|{}{} {} {}",
        e.account.map(|a| a.as_str().to_owned()).unwrap_or_default(),
        char::from(e.qualifier.digit()),
        e.code.as_str(),
        e.group.as_str(),
        e.zone_or_user.as_str(),
    )
}

fn header(base: &EventRow, token: &str, receiver: Option<Short>, line: Option<Short>) -> EventRow {
    let mut b = base.clone();
    b.token = token.to_owned();
    b.outcome = "ack";
    b.receiver = receiver.map(|r| r.as_str().to_owned());
    b.prefix = line.map(|l| l.as_str().to_owned());
    b
}

fn contact_id_rows(
    e: &ContactId,
    receiver: Option<Short>,
    line: Option<Short>,
    base: &EventRow,
) -> Vec<EventRow> {
    let mut b = header(base, "ADM-CID", receiver, line);
    b.account = e
        .account
        .map(|a| a.as_str().to_ascii_uppercase())
        .unwrap_or_default();
    b.data = Some(adm_cid_data(e));
    vec![event_row(&b, 0, &Event::from(e))]
}

fn sia_rows(
    data: &[u8],
    receiver: Option<Short>,
    line: Option<Short>,
    base: &EventRow,
) -> Result<Vec<EventRow>, SerialError> {
    let d = parse_sia_data(data)?;
    let mut b = header(base, "SIA-DCS", receiver, line);
    b.account = d
        .account
        .map(|a| a.as_str().to_ascii_uppercase())
        .unwrap_or_default();
    b.data = Some(lossy_text(data));
    Ok(sia_events(&d)
        .iter()
        .enumerate()
        .map(|(i, e)| event_row(&b, i, e))
        .collect())
}

/// The event vakt stores for a serial line of its own: `YC` (communication fail) when the
/// receiver stops talking, `YK` (restored) when it talks again. The account is `@` and the
/// listener's name in upper case (as accounts are), which no panel account can be; the data block is a SIA block for account
/// `0000`, so the automation output forwards it like any other SIA event.
pub fn line_event(base: &EventRow, failed: bool) -> EventRow {
    let data = if failed { "#0000|NYC" } else { "#0000|NYK" };
    let d = parse_sia_data(data.as_bytes()).expect("a fixed, valid SIA block");
    let mut b = header(base, "SIA-DCS", None, None);
    b.account = format!("@{}", base.listener.to_ascii_uppercase());
    b.data = Some(data.to_owned());
    b.raw = data.as_bytes().to_vec();
    let events = sia_events(&d);
    event_row(&b, 0, &events[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> EventRow {
        EventRow {
            listener: "mlr2".into(),
            transport: "serial",
            ..EventRow::default()
        }
    }

    #[test]
    fn surgard_contact_id_becomes_an_adm_cid_row() {
        let p = parse(
            b"5011 181234E13001003",
            SerialFormat::Surgard,
            &SerialOptions::default(),
            &base(),
        )
        .unwrap();
        let Parsed::Events(rows) = p else {
            panic!("not events")
        };
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.account, "1234");
        assert_eq!(r.token, "ADM-CID");
        assert_eq!(r.code.as_deref(), Some("130"));
        assert_eq!(r.class, "alarm");
        assert_eq!(r.data.as_deref(), Some("#1234|1130 01 003"));
        assert_eq!(r.receiver.as_deref(), Some("01"));
        assert_eq!(r.prefix.as_deref(), Some("1"));
    }

    #[test]
    fn surgard_sia_keeps_every_event_and_the_block() {
        let p = parse(
            b"S011[#1234|Nri1/BA501/BR502]",
            SerialFormat::Surgard,
            &SerialOptions::default(),
            &base(),
        )
        .unwrap();
        let Parsed::Events(rows) = p else {
            panic!("not events")
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].code.as_deref(), Some("BR"));
        assert_eq!(rows[1].seq_in_frame, 1);
        assert_eq!(rows[0].data.as_deref(), Some("#1234|Nri1/BA501/BR502"));
    }

    #[test]
    fn heartbeat_and_errors() {
        let o = SerialOptions::default();
        assert!(matches!(
            parse(b"1011           @    ", SerialFormat::Surgard, &o, &base()),
            Ok(Parsed::Heartbeat)
        ));
        assert!(parse(b"5011 18123", SerialFormat::Surgard, &o, &base()).is_err());
        // A raw Contact ID line whose check digit is wrong.
        assert!(parse(b"1234181130010030", SerialFormat::ContactId, &o, &base()).is_err());
    }

    #[test]
    fn line_events_are_sia_communication_fail_and_restore() {
        let f = line_event(&base(), true);
        assert_eq!(f.account, "@MLR2");
        assert_eq!(f.code.as_deref(), Some("YC"));
        let r = line_event(&base(), false);
        assert_eq!(r.code.as_deref(), Some("YK"));
    }
}
