//! `vakt decode`: frames in (one per line), one JSON object out per frame. For anyone debugging a
//! panel or a receiver: every header field, the CRC/length/encryption verdicts, the events with
//! their catalogue class, and the answer vakt would give. The JSON fields are documented in
//! README.md ("vakt decode output") and kept stable: later tooling reads them.
//!
//! The answer comes from [`vakt_protocol::dc09::receive`], the same decision the gateway makes,
//! with the account taken as configured with the given key and quirks.

use bytes::BytesMut;
use serde_json::{json, Map, Value};
use vakt_protocol::catalogue::AddressKind;
use vakt_protocol::contact_id::{parse_dc05, ContactId};
use vakt_protocol::dc09::{
    self, encode_ack, encode_duh, encode_encrypted_ack, encode_nak, Accepted, Cleartext, Content,
    CrcFormat, Key, Policy, Quirks, Timestamp, TimestampField, Window,
};
use vakt_protocol::event::{sia_events, Event, Payload};
use vakt_protocol::sia_dcs::parse_sia_data;
use vakt_protocol::surgard::{self, Packet, SerialOptions};
use vakt_protocol::{lossy_text, Reply};

use crate::escape::escape;

/// The input formats `vakt decode` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SIA DC-09 frame.
    Dc09,
    /// Raw 16-digit Contact ID (DC-05).
    ContactId,
    /// Sur-Gard / Bosch receiver packet (DC4-terminated).
    Surgard,
    /// Ademco 685 Contact ID line.
    Ademco685,
}

impl Format {
    /// The name used in `--format` and in the output's `format` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dc09 => "dc09",
            Self::ContactId => "contact_id",
            Self::Surgard => "surgard",
            Self::Ademco685 => "ademco685",
        }
    }
}

/// How to read the frames.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Key for encrypted DC-09 frames.
    pub key: Option<Key>,
    /// DC-09 vendor quirks.
    pub quirks: Quirks,
    /// Receiver clock (Unix seconds) for the timestamp window.
    pub now_unix: i64,
    /// Do not check the window on plain frames.
    pub no_plain_timestamp_check: bool,
    /// Serial packet options.
    pub serial: SerialOptions,
}

/// Tells the formats apart by shape: DC-09 has its token quote at offset 9 (or 7, binary CRC);
/// receiver packets end in DC4; 16 Contact ID digits are DC-05; six space-separated fields with
/// `18` third are Ademco 685; a receiver protocol character starts a Sur-Gard packet.
pub fn detect(input: &[u8]) -> Format {
    let t: &[u8] = input.trim_ascii_start();
    let hex4 = t.len() >= 9 && t[..4].iter().all(u8::is_ascii_hexdigit) && t[8] == b'"';
    let binary = t.len() >= 7 && t[6] == b'"' && t[2] == b'0';
    if hex4 || binary {
        return Format::Dc09;
    }
    if input.last() == Some(&surgard::DC4) {
        return Format::Surgard;
    }
    let trimmed = input.trim_ascii();
    if trimmed.len() == 16
        && trimmed
            .iter()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
    {
        return Format::ContactId;
    }
    let fields: Vec<&[u8]> = trimmed
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .collect();
    if fields.len() == 6 && matches!(fields[2], b"18" | b"98") {
        return Format::Ademco685;
    }
    if matches!(trimmed.first(), Some(b'5' | b'S' | b'0' | b'1' | b'a')) {
        return Format::Surgard;
    }
    Format::Dc09
}

/// Decodes one input line (escapes already resolved) to its JSON report.
pub fn decode_line(input: &[u8], opts: &Options) -> Value {
    let format = opts.format.unwrap_or_else(|| detect(input));
    let mut out = match format {
        Format::Dc09 if input.first() == Some(&b'"') => {
            // A bare body (`"ADM-CID"0001L0#…[…]`): frame it with its CRC and length, so a
            // frame can be written by hand and sent as printed in `frame`.
            let framed = frame_body(input);
            let mut out = decode_dc09(&framed, opts);
            out.insert("frame".into(), json!(escape(&framed)));
            out
        }
        Format::Dc09 => decode_dc09(&as_dc09_frame(input), opts),
        Format::ContactId => decode_contact_id(input),
        Format::Surgard => decode_surgard(input, opts),
        Format::Ademco685 => decode_ademco685(input),
    };
    out.insert("format".into(), json!(format.name()));
    out.insert("input".into(), json!(escape(input)));
    // Fixed key order: format, input, ok, then the rest.
    let mut ordered = Map::new();
    for k in ["format", "input", "ok"] {
        if let Some(v) = out.remove(k) {
            ordered.insert(k.into(), v);
        }
    }
    ordered.extend(out);
    Value::Object(ordered)
}

/// `\n` + CRC + length + body + `\r`, in the standard dialect.
fn frame_body(body: &[u8]) -> Vec<u8> {
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let crc = vakt_protocol::crc::crc16_arc(body);
    let mut f = format!("\n{crc:04X}{:04X}", body.len()).into_bytes();
    f.extend_from_slice(body);
    f.push(b'\r');
    f
}

/// A line copied from a log often lacks the LF and CR around a DC-09 frame: add them.
fn as_dc09_frame(input: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(input.len() + 2);
    if input.first() != Some(&b'\n') {
        f.push(b'\n');
    }
    f.extend_from_slice(input);
    let end = f.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    if f[..end].last() != Some(&b'\r') {
        f.insert(end, b'\r');
    }
    f
}

fn failure(out: &mut Map<String, Value>, kind: &str, reason: String) {
    out.insert("ok".into(), json!(false));
    out.insert("error".into(), json!({ "kind": kind, "reason": reason }));
}

fn hex4(v: u16) -> String {
    format!("{v:04X}")
}

fn decode_dc09(raw: &[u8], opts: &Options) -> Map<String, Value> {
    let mut out = Map::new();
    let q = opts.quirks;
    let envelope = match dc09::split_envelope(raw) {
        Ok(e) => e,
        Err(e) => {
            out.insert("response".into(), json!("none"));
            failure(&mut out, e.kind(), e.to_string());
            return out;
        }
    };
    let crc_format = match envelope.crc_format {
        CrcFormat::Hex => "hex",
        CrcFormat::Binary => "binary",
    };
    let crc = envelope.crc_computed(&q);
    let len = envelope.length_computed(&q);
    out.insert("crc".into(), json!({ "format": crc_format, "declared": hex4(envelope.crc_declared), "computed": hex4(crc), "valid": crc == envelope.crc_declared }));
    out.insert("length".into(), json!({ "declared": hex4(envelope.length_declared), "computed": format!("{len:04X}"), "valid": len == usize::from(envelope.length_declared) }));

    // Header and data for display, read even when CRC or length are wrong.
    let mut shown_clear = None;
    let mut buf = Vec::new();
    match dc09::lex_header(envelope.body) {
        Ok((token, echo, _)) => {
            let mut header = json!({ "token": token.kind.as_str(), "encrypted": token.encrypted, "echo": escape(echo) });
            if let Ok((h, content)) = dc09::parse_body(envelope.body, &q) {
                header["sequence"] = json!(h.sequence);
                header["receiver"] = json!(h.receiver);
                header["prefix"] = json!(h.prefix);
                header["account"] = json!(h.account);
                match content {
                    Content::Clear(c) => shown_clear = Some(c),
                    Content::Encrypted(hex) => {
                        let mut enc = json!({ "ciphertext_bytes": hex.len() / 2, "key_bits": opts.key.as_ref().map(Key::bits) });
                        if let Some(key) = &opts.key {
                            match dc09::decrypt(hex, key, &mut buf) {
                                Ok(c) => {
                                    enc["pad_length"] = json!(c.pad.len());
                                    enc["decrypted"] = json!(true);
                                    shown_clear = Some(c);
                                }
                                Err(e) => {
                                    enc["decrypted"] = json!(false);
                                    enc["decrypt_error"] = json!(e.kind());
                                }
                            }
                        }
                        out.insert("encryption".into(), enc);
                    }
                }
            }
            out.insert("header".into(), header);
        }
        Err(_) => {
            out.insert("header".into(), Value::Null);
        }
    }
    if let Some(c) = &shown_clear {
        cleartext_json(c, opts.now_unix, &mut out);
    }

    let policy = Policy {
        quirks: q,
        key: opts.key.as_ref(),
        encryption_required: false,
        window: Window::default(),
        check_plain_timestamps: !opts.no_plain_timestamp_check,
    };
    let mut rbuf = Vec::new();
    match dc09::receive(raw, opts.now_unix, &mut rbuf, |_| Some(policy)) {
        Ok(accepted) => {
            let (name, frame) = ack(&accepted, opts);
            out.insert("ok".into(), json!(true));
            out.insert("response".into(), json!(name));
            out.insert("response_frame".into(), json!(escape(&frame)));
            payload_json(&accepted.payload, &mut out);
        }
        Err(rejected) => {
            let now = Timestamp::from_unix(opts.now_unix);
            let mut frame = BytesMut::new();
            let name = match (rejected.reply, rejected.echo) {
                (Reply::Nak, _) => {
                    encode_nak(now, rejected.dialect, &mut frame);
                    "NAK"
                }
                (Reply::Duh, Some(echo)) => {
                    encode_duh(echo, rejected.dialect, &mut frame);
                    "DUH"
                }
                _ => "none",
            };
            out.insert("response".into(), json!(name));
            if !frame.is_empty() {
                out.insert("response_frame".into(), json!(escape(&frame)));
            }
            failure(&mut out, rejected.error.kind(), rejected.error.to_string());
            // Still show what the data says, when it can be read.
            if let (Some(c), Some(token)) = (
                &shown_clear,
                dc09::lex_header(envelope.body).ok().map(|t| t.0),
            ) {
                if let Ok(p) = vakt_protocol::event::decode_payload(token.kind, c.data) {
                    payload_json(&p, &mut out);
                }
            }
        }
    }
    out
}

fn ack(accepted: &Accepted<'_>, opts: &Options) -> (&'static str, BytesMut) {
    let mut frame = BytesMut::new();
    match (accepted.encrypted, &opts.key) {
        (true, Some(key)) => {
            let now = Timestamp::from_unix(opts.now_unix);
            encode_encrypted_ack(
                &accepted.header,
                key,
                now,
                rand::random(),
                accepted.dialect,
                &mut frame,
            );
            ("*ACK", frame)
        }
        _ => {
            encode_ack(&accepted.header, accepted.dialect, &mut frame);
            ("ACK", frame)
        }
    }
}

fn cleartext_json(c: &Cleartext<'_>, now_unix: i64, out: &mut Map<String, Value>) {
    out.insert("data".into(), json!(lossy_text(c.data)));
    let xdata: Vec<Value> = c
        .xdata
        .iter()
        .map(|x| json!({ "id": char::from(x.id).to_string(), "kind": x.kind().name(), "value": lossy_text(x.value) }))
        .collect();
    out.insert("xdata".into(), json!(xdata));
    let (ts, valid) = match c.timestamp {
        TimestampField::Absent => (Value::Null, Value::Null),
        TimestampField::Valid(t) => (json!(t.to_string()), json!(true)),
        TimestampField::Invalid(t) => (json!(lossy_text(t)), json!(false)),
    };
    out.insert("timestamp".into(), ts);
    out.insert("timestamp_valid".into(), valid);
    if let TimestampField::Valid(t) = c.timestamp {
        out.insert("timestamp_offset_secs".into(), json!(now_unix - t.unix()));
    }
}

fn payload_json(p: &Payload<'_>, out: &mut Map<String, Value>) {
    let (payload, events) = match p {
        Payload::ContactId(c) => (cid_payload("ADM-CID", c), vec![Event::from(c)]),
        Payload::Sia(d) => (sia_payload(d), sia_events(d)),
        Payload::Null => (json!({ "format": "NULL" }), p.events()),
        Payload::Unsupported => (Value::Null, Vec::new()),
    };
    out.insert("payload".into(), payload);
    out.insert(
        "events".into(),
        json!(events.iter().map(event_json).collect::<Vec<_>>()),
    );
}

fn cid_payload(format: &str, c: &ContactId) -> Value {
    json!({
        "format": format,
        "account_block": c.account.map(|a| a.to_string()),
        "qualifier": char::from(c.qualifier.digit()).to_string(),
        "event_code": c.code.as_str(),
        "group": c.group.as_str(),
        "zone_or_user": c.zone_or_user.as_str(),
    })
}

fn sia_payload(d: &vakt_protocol::sia_dcs::SiaData<'_>) -> Value {
    json!({
        "format": "SIA-DCS",
        "account_block": d.account.map(|a| a.to_string()),
        "account_block_missing_hash": d.account_without_hash,
        "listen_in": d.listen_in.map(|l| l.to_string()),
    })
}

/// One event as JSON; the field set is the same for every format.
pub fn event_json(e: &Event<'_>) -> Value {
    let s = |v: Option<vakt_protocol::Short>| v.map(|x| x.to_string());
    json!({
        "scheme": e.scheme.name(),
        "code": e.code.as_str(),
        "qualifier": e.qualifier.map(|q| char::from(q.digit()).to_string()),
        "class": e.class.name(),
        "kind": e.kind.map(|k| k.name()),
        "meaning": e.meaning,
        "account": s(e.account),
        "partition": s(e.partition),
        "zone": s(e.zone),
        "user": s(e.user),
        "address": s(e.address),
        "address_kind": e.address_kind.name(),
        "text": e.text.map(lossy_text),
        "time": s(e.time),
        "date": s(e.date),
        "mapped_code": e.mapped_code(),
    })
}

fn decode_contact_id(input: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    let t = input.trim_ascii();
    if let Some(sum) = vakt_protocol::contact_id::digit_sum(t) {
        out.insert("checksum".into(), json!({ "declared": t.last().map(|&c| char::from(c).to_string()), "digit_sum": sum, "valid": sum % 15 == 0 && t.len() == 16 }));
    }
    match parse_dc05(input) {
        Ok(d) => {
            out.insert("ok".into(), json!(true));
            out.insert("response".into(), json!("ACK"));
            out.insert("message_type".into(), json!(d.message_type.as_str()));
            out.insert(
                "account".into(),
                json!(d.event.account.map(|a| a.to_string())),
            );
            out.insert("payload".into(), cid_payload("DC-05", &d.event));
            out.insert("events".into(), json!([event_json(&Event::from(&d.event))]));
        }
        Err(e) => {
            out.insert("response".into(), json!("NAK"));
            failure(&mut out, e.kind(), e.to_string());
        }
    }
    out
}

fn decode_surgard(input: &[u8], opts: &Options) -> Map<String, Value> {
    let mut out = Map::new();
    let packet = input.strip_suffix(&[surgard::DC4]).unwrap_or(input);
    match surgard::parse_packet(packet, &opts.serial) {
        Ok(p) => serial_packet_json(&p, &mut out),
        Err(e) => {
            out.insert("response".into(), json!("NAK"));
            failure(&mut out, e.kind(), e.to_string());
        }
    }
    out
}

fn decode_ademco685(input: &[u8]) -> Map<String, Value> {
    let mut out = Map::new();
    match surgard::parse_ademco685(input) {
        Ok(p) => serial_packet_json(&p, &mut out),
        Err(e) => {
            out.insert("response".into(), json!("NAK"));
            failure(&mut out, e.kind(), e.to_string());
        }
    }
    out
}

fn serial_packet_json(p: &Packet<'_>, out: &mut Map<String, Value>) {
    out.insert("ok".into(), json!(true));
    out.insert("response".into(), json!("ACK"));
    match p {
        Packet::ContactId {
            receiver,
            line,
            event,
            address_kind,
        } => {
            out.insert("protocol".into(), json!("contact_id"));
            out.insert("receiver".into(), json!(receiver.as_str()));
            out.insert("line".into(), json!(line.as_str()));
            out.insert(
                "account".into(),
                json!(event.account.map(|a| a.to_string())),
            );
            out.insert("payload".into(), cid_payload("CID", event));
            let mut e = Event::from(event);
            if let Some(kind) = address_kind {
                // Ademco 685 states whether CCC is a zone or a user; it overrides the catalogue.
                e.address_kind = *kind;
                e.zone = e.address.filter(|_| *kind == AddressKind::Zone);
                e.user = e.address.filter(|_| *kind == AddressKind::User);
            }
            out.insert("events".into(), json!([event_json(&e)]));
        }
        Packet::Sia {
            protocol,
            receiver,
            line,
            data,
        } => {
            out.insert(
                "protocol".into(),
                json!(if *protocol == b'0' { "status" } else { "sia" }),
            );
            out.insert("receiver".into(), json!(receiver.as_str()));
            out.insert("line".into(), json!(line.as_str()));
            out.insert("data".into(), json!(lossy_text(data)));
            if let Ok(d) = parse_sia_data(data) {
                out.insert("account".into(), json!(d.account.map(|a| a.to_string())));
                out.insert("payload".into(), sia_payload(&d));
                out.insert(
                    "events".into(),
                    json!(sia_events(&d).iter().map(event_json).collect::<Vec<_>>()),
                );
            }
        }
        Packet::Heartbeat { receiver, line } => {
            out.insert("protocol".into(), json!("heartbeat"));
            out.insert("receiver".into(), json!(receiver.as_str()));
            out.insert("line".into(), json!(line.as_str()));
            out.insert("events".into(), json!([event_json(&Event::heartbeat())]));
        }
    }
}
