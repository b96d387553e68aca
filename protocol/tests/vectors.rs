//! Every vector in `../shared/vectors/*.json` decodes as its file says: header fields, CRC and
//! length verdicts, decrypted data, payload fields, the response, and the exact answer bytes.
//! Invalid vectors must fail for the stated reason.

mod common;

use bytes::BytesMut;
use common::{bytes, load, s};
use serde_json::Value;
use tokio_util::codec::Decoder;
use vakt_protocol::codec::{Item, JunkReason, SerialCodec, SerialFraming};
use vakt_protocol::contact_id::{digit_sum, parse_dc05, Qualifier};
use vakt_protocol::dc09::{
    self, encode_ack, Content, CrcFormat, Key, Policy, Quirks, Timestamp, TimestampField, TokenKind,
};
use vakt_protocol::error::{ContactIdError, FrameError, SerialError};
use vakt_protocol::event::Payload;
use vakt_protocol::surgard::{self, Packet, SerialOptions};
use vakt_protocol::{lossy_text, Error, Reply};

/// What the receiver answers, as the files write it.
fn response_name(r: &Result<dc09::Accepted<'_>, dc09::Rejected<'_>>) -> &'static str {
    match r {
        Ok(a) if a.encrypted => "*ACK",
        Ok(_) => "ACK",
        Err(e) => match e.reply {
            Reply::None => "none",
            Reply::Nak => "NAK",
            Reply::Duh => "DUH",
        },
    }
}

fn key_of(exp: &Value) -> Option<Key> {
    if exp.get("key_known") == Some(&Value::Bool(false)) {
        return s(exp, "key_tried_ascii").map(|k| Key::from_ascii(k).expect("valid key"));
    }
    s(exp, "key_hex").map(|k| Key::from_hex(k).expect("valid key"))
}

/// The receiver clock the file asks for; where it gives none, the frame is meant fresh: the
/// clock is the frame's own timestamp (or any time, for frames without one).
fn clock(exp: &Value, raw: &[u8]) -> i64 {
    if let Some(c) = s(exp, "clock_utc_for_ack") {
        return Timestamp::parse(c.as_bytes()).expect("clock").unix();
    }
    let own = raw
        .iter()
        .rposition(|&b| b == b'_')
        .and_then(|u| Timestamp::parse(raw.get(u + 1..raw.len() - 1)?));
    own.map_or(0, |t| t.unix())
}

/// The quirks an account must have configured to read this frame as the file intends.
fn quirks_for(exp: &Value, with_quirk: bool) -> Quirks {
    Quirks {
        binary_crc: s(exp, "crc_format") == Some("binary2"),
        cr_in_crc: with_quirk && s(exp, "quirk") == Some("eldes_crc_and_length_include_cr"),
        ..Quirks::default()
    }
}

fn receive<'a>(
    raw: &'a [u8],
    now: i64,
    buf: &'a mut Vec<u8>,
    quirks: Quirks,
    key: Option<&Key>,
) -> Result<dc09::Accepted<'a>, dc09::Rejected<'a>> {
    let policy = Policy {
        quirks,
        key,
        check_plain_timestamps: true,
        ..Policy::default()
    };
    dc09::receive(raw, now, buf, |_| Some(policy))
}

fn check_header(where_: &str, raw: &[u8], exp: &Value) {
    let env = dc09::split_envelope(raw).unwrap_or_else(|e| panic!("{where_}: envelope: {e}"));
    let q = quirks_for(exp, false);
    if let Some(declared) = s(exp, "crc_declared") {
        let want = declared.trim_start_matches("binary ");
        assert_eq!(
            format!("{:04X}", env.crc_declared),
            want,
            "{where_}: crc_declared"
        );
        assert_eq!(
            env.crc_format == CrcFormat::Binary,
            declared.starts_with("binary"),
            "{where_}: crc format"
        );
    }
    if let Some(valid) = exp.get("crc_valid").and_then(Value::as_bool) {
        assert_eq!(
            env.crc_computed(&q) == env.crc_declared,
            valid,
            "{where_}: crc_valid"
        );
    }
    if let Some(computed) = s(exp, "crc_computed") {
        assert_eq!(
            format!("{:04X}", env.crc_computed(&q)),
            computed,
            "{where_}: crc_computed"
        );
    }
    if let Some(valid) = exp.get("length_valid").and_then(Value::as_bool) {
        assert_eq!(
            env.length_computed(&q) == usize::from(env.length_declared),
            valid,
            "{where_}: length_valid"
        );
    }
    if let Some(computed) = s(exp, "length_computed") {
        assert_eq!(
            format!("{:04X}", env.length_computed(&q)),
            computed,
            "{where_}: length_computed"
        );
    }
    if let Some(declared) = s(exp, "length_declared") {
        assert_eq!(
            format!("{:04X}", env.length_declared),
            declared,
            "{where_}: length_declared"
        );
    }
    if exp.get("quirk").is_some() {
        let eldes = quirks_for(exp, true);
        assert_eq!(
            env.verify(&eldes),
            Ok(()),
            "{where_}: valid with the ELDES quirk"
        );
    }
    let (token, _, _) = dc09::lex_header(env.body).unwrap_or_else(|e| panic!("{where_}: lex: {e}"));
    let token_text = format!(
        "{}{}",
        if token.encrypted { "*" } else { "" },
        token.kind.as_str()
    );
    assert_eq!(
        Some(token_text.as_str()),
        s(exp, "id_token"),
        "{where_}: id_token"
    );
    // Read the fields leniently (hex sequence allowed) so a frame rejected for its sequence still
    // shows the rest of its header; a header with no account cannot be read at all.
    let lenient = Quirks {
        hex_sequence: true,
        ..q
    };
    match dc09::parse_body(env.body, &lenient) {
        Ok((h, _)) => {
            for (key, got) in [
                ("sequence", Some(h.sequence)),
                ("receiver", h.receiver),
                ("prefix", Some(h.prefix)),
                ("account", h.account),
            ] {
                if let Some(want) = exp.get(key) {
                    assert_eq!(got, want.as_str(), "{where_}: {key}");
                }
            }
            if let Some(enc) = exp.get("encrypted").and_then(Value::as_bool) {
                assert_eq!(h.token.encrypted, enc, "{where_}: encrypted");
            }
        }
        Err(e) => {
            assert_eq!(
                exp.get("account"),
                Some(&Value::Null),
                "{where_}: header unreadable ({e}) though the file gives an account"
            );
            assert_eq!(e, FrameError::BadAccount, "{where_}");
        }
    }
}

fn check_data(where_: &str, raw: &[u8], exp: &Value) {
    let q = Quirks {
        hex_sequence: true,
        ..quirks_for(exp, true)
    };
    let env = dc09::split_envelope(raw).expect("envelope");
    let Ok((_, content)) = dc09::parse_body(env.body, &q) else {
        return;
    };
    let mut buf = Vec::new();
    let clear = match content {
        Content::Clear(c) => c,
        Content::Encrypted(hex) => match key_of(exp) {
            Some(key) => match dc09::decrypt(hex, &key, &mut buf) {
                Ok(c) => {
                    assert_ne!(
                        exp.get("decrypt_ok"),
                        Some(&Value::Bool(false)),
                        "{where_}: a wrong key decrypted"
                    );
                    if let Some(n) = exp
                        .get("pad_length")
                        .or(exp.get("pad_len"))
                        .and_then(Value::as_u64)
                    {
                        assert_eq!(c.pad.len() as u64, n, "{where_}: pad length");
                    }
                    if let Some(pad) = s(exp, "pad") {
                        assert_eq!(lossy_text(c.pad), pad, "{where_}: pad");
                    }
                    c
                }
                Err(e) => {
                    let expected_failure = exp.get("decrypt_ok") == Some(&Value::Bool(false))
                        || exp.get("decrypt_ok_with_tried_key") == Some(&Value::Bool(false))
                        || exp.get("length_valid") == Some(&Value::Bool(false));
                    assert!(expected_failure, "{where_}: decrypt failed: {e}");
                    return;
                }
            },
            None => return,
        },
    };
    if let Some(data) = s(exp, "data") {
        assert_eq!(lossy_text(clear.data), data, "{where_}: data");
    }
    if let Some(xdata) = exp.get("xdata").and_then(Value::as_array) {
        assert_eq!(clear.xdata.len(), xdata.len(), "{where_}: xdata");
    }
    if let Some(ts) = exp.get("timestamp") {
        let got = match clear.timestamp {
            TimestampField::Absent => None,
            TimestampField::Valid(t) => Some(t.to_string()),
            TimestampField::Invalid(t) => Some(lossy_text(t)),
        };
        assert_eq!(got.as_deref(), ts.as_str(), "{where_}: timestamp");
    }
    if let Some(p) = exp.get("payload").filter(|p| p.is_object()) {
        check_payload(where_, q, &clear, p);
    }
}

fn check_payload(where_: &str, _q: Quirks, clear: &dc09::Cleartext<'_>, p: &Value) {
    let format = s(p, "format").expect("payload format");
    let token = match format {
        "ADM-CID" => TokenKind::AdmCid,
        "SIA-DCS" => TokenKind::SiaDcs,
        _ => TokenKind::Null,
    };
    let payload = vakt_protocol::event::decode_payload(token, clear.data)
        .unwrap_or_else(|e| panic!("{where_}: payload: {e}"));
    let events = payload.events();
    match &payload {
        Payload::ContactId(c) => {
            assert_eq!(
                c.account.map(|a| a.to_string()).as_deref(),
                s(p, "account_block"),
                "{where_}: account_block"
            );
            assert_eq!(
                Some(char::from(c.qualifier.digit()).to_string().as_str()),
                s(p, "qualifier"),
                "{where_}"
            );
            assert_eq!(Some(c.code.as_str()), s(p, "event_code"), "{where_}");
            assert_eq!(Some(c.group.as_str()), s(p, "group"), "{where_}");
            assert_eq!(
                Some(c.zone_or_user.as_str()),
                s(p, "zone_or_user"),
                "{where_}"
            );
        }
        Payload::Sia(d) => {
            assert_eq!(
                d.account.map(|a| a.to_string()).as_deref(),
                s(p, "account_block"),
                "{where_}: account_block"
            );
            if let Some(missing) = p.get("account_block_missing_hash").and_then(Value::as_bool) {
                assert_eq!(d.account_without_hash, missing, "{where_}");
            }
            if let Some(code) = s(p, "code") {
                let e = &d.events[0];
                assert_eq!(e.code.as_str(), code, "{where_}: code");
                assert_eq!(
                    e.address.map(|a| a.to_string()),
                    p.get("address").and_then(Value::as_str).map(str::to_owned),
                    "{where_}: address"
                );
                assert_eq!(
                    Some(char::from(e.function.as_char() as u8).to_string().as_str()),
                    s(p, "function"),
                    "{where_}"
                );
                if let Some(ri) = p.get("ri") {
                    assert_eq!(
                        e.modifiers.area.map(|a| a.to_string()).as_deref(),
                        ri.as_str(),
                        "{where_}: ri"
                    );
                }
                if let Some(text) = s(p, "text") {
                    assert_eq!(
                        e.text.map(lossy_text).as_deref(),
                        Some(text),
                        "{where_}: text"
                    );
                }
                if let Some(user) = s(p, "user") {
                    assert_eq!(
                        e.user().map(|u| u.to_string()).as_deref(),
                        Some(user),
                        "{where_}: user"
                    );
                }
                if let Some(ascii) = s(p, "ascii_block") {
                    assert_eq!(
                        e.ascii.map(lossy_text).as_deref(),
                        Some(ascii),
                        "{where_}: ascii block"
                    );
                }
            }
            if let Some(blocks) = p.get("blocks").and_then(Value::as_array) {
                let data = lossy_text(clear.data);
                let after_account: Vec<&str> = data.split('|').skip(1).collect();
                let want: Vec<&str> = blocks.iter().filter_map(Value::as_str).collect();
                assert_eq!(after_account, want, "{where_}: blocks");
            }
        }
        Payload::Null => assert_eq!(format, "NULL", "{where_}"),
        Payload::Unsupported => panic!("{where_}: unsupported payload"),
    }
    if let Some(class) = s(p, "class") {
        // The files describe the class in words ("opening (disarm)", "restore (phone line)",
        // "system (power up)"); the first word names our class, "system" and "link" aside.
        let want = class.split([' ', '(']).next().unwrap_or_default();
        let got = events[0].class.name();
        let same = got == want
            || (want == "system" && got == "info")
            || (want == "link" && got == "link_test");
        assert!(same, "{where_}: class {got} for {class:?}");
    }
}

fn check_response(where_: &str, raw: &[u8], exp: &Value) {
    let now = clock(exp, raw);
    let key = key_of(exp);
    let mut buf = Vec::new();
    let quirks = quirks_for(exp, false);
    let r = receive(raw, now, &mut buf, quirks, key.as_ref());
    let want = match (s(exp, "response"), s(exp, "response_policy")) {
        (Some(r), _) => r.split(' ').next().unwrap_or(r).to_owned(),
        // "open" policy in the file: vakt reads these blocks fully, so it stores and ACKs them
        // (a DUH would make the panel drop the event for good).
        (None, Some(_)) => "ACK".to_owned(),
        (None, None) => panic!("{where_}: no response"),
    };
    assert_eq!(
        response_name(&r),
        want,
        "{where_}: response ({:?})",
        r.as_ref().err().map(|e| e.error.to_string())
    );
    if let (Ok(a), Some(ack)) = (&r, s(exp, "ack_frame")) {
        let mut out = BytesMut::new();
        encode_ack(&a.header, a.dialect, &mut out);
        assert_eq!(lossy_text(&out), ack, "{where_}: ack_frame");
    }
    if let Some(want) = s(exp, "response_with_quirk") {
        let mut buf = Vec::new();
        let r = receive(raw, now, &mut buf, quirks_for(exp, true), key.as_ref());
        assert_eq!(response_name(&r), want, "{where_}: response with quirk");
        let a = r.expect("accepted with quirk");
        let mut out = BytesMut::new();
        encode_ack(&a.header, a.dialect, &mut out);
        assert_eq!(
            Some(lossy_text(&out).as_str()),
            s(exp, "ack_frame_with_quirk"),
            "{where_}: ack with quirk"
        );
    }
    for st in exp
        .get("stale_checks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let at = Timestamp::parse(s(st, "clock_utc").expect("clock").as_bytes())
            .expect("clock")
            .unix();
        let mut buf = Vec::new();
        let r = receive(raw, at, &mut buf, quirks, key.as_ref());
        assert_eq!(
            response_name(&r),
            s(st, "response").expect("response"),
            "{where_}: stale check at {at}"
        );
        if let Err(e) = &r {
            assert!(
                matches!(e.error, Error::Frame(FrameError::Stale { .. })),
                "{where_}: {}",
                e.error
            );
        }
    }
}

fn check_dc09_file(name: &str) -> usize {
    let file = load(name);
    let vectors = file["vectors"].as_array().expect("vectors");
    for (i, v) in vectors.iter().enumerate() {
        let where_ = format!("{name}[{i}]");
        let raw = bytes(s(v, "raw").expect("raw"));
        let exp = &v["expect"];
        check_header(&where_, &raw, exp);
        check_data(&where_, &raw, exp);
        check_response(&where_, &raw, exp);
        let accepted = {
            let mut buf = Vec::new();
            receive(
                &raw,
                clock(exp, &raw),
                &mut buf,
                quirks_for(exp, false),
                key_of(exp).as_ref(),
            )
            .is_ok()
        };
        let valid = v["valid"].as_bool().expect("valid");
        // A frame the file calls invalid is never acknowledged; one it calls valid is, unless it
        // is a response (NAK) or a frame vakt cannot process (DUH), which are valid frames too.
        if !valid {
            assert!(!accepted, "{where_}: invalid frame accepted");
        }
    }
    for sc in file
        .get("scenarios")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (i, step) in sc["steps"].as_array().expect("steps").iter().enumerate() {
            let where_ = format!("{name} scenario {} step {i}", s(sc, "name").unwrap_or("?"));
            let raw = bytes(s(step, "raw").expect("raw"));
            check_response(&where_, &raw, step);
        }
    }
    vectors.len()
}

#[test]
fn dc09_plain_vectors() {
    assert!(check_dc09_file("dc09_plain.json") >= 30);
}

#[test]
fn dc09_encrypted_vectors() {
    assert!(check_dc09_file("dc09_encrypted.json") >= 7);
}

#[test]
fn dc09spt_transmitter_frames() {
    assert!(check_dc09_file("dc09spt_frames.json") >= 22);
}

#[test]
fn hex_sequence_frame_is_duh_by_default_and_acked_with_the_quirk() {
    let raw = b"\n4AB40027\"ADM-CID\"000AL0#1234[#1234|1110 00 003]\r";
    let mut buf = Vec::new();
    let r = receive(raw, 0, &mut buf, Quirks::default(), None);
    let e = r.expect_err("strict receiver rejects 000A");
    assert_eq!((e.reply, e.echo), (Reply::Duh, Some(&b"000AL0#1234"[..])));
    let mut buf = Vec::new();
    let a = receive(
        raw,
        0,
        &mut buf,
        Quirks {
            hex_sequence: true,
            ..Quirks::default()
        },
        None,
    )
    .expect("quirk accepts");
    let mut out = BytesMut::new();
    encode_ack(&a.header, a.dialect, &mut out);
    assert_eq!(&out[..], b"\n30C30012\"ACK\"000AL0#1234[]\r");
}

#[test]
fn contact_id_vectors() {
    let file = load("contact_id.json");
    for (i, v) in file["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .enumerate()
    {
        let where_ = format!("contact_id.json[{i}]");
        let raw = s(v, "raw").expect("raw").as_bytes();
        let exp = &v["expect"];
        let sum = digit_sum(raw).expect("digits");
        assert_eq!(
            sum % 15 == 0,
            exp["checksum_valid"].as_bool().expect("checksum_valid"),
            "{where_}"
        );
        if let Some(want) = exp.get("digit_sum").and_then(Value::as_u64) {
            assert_eq!(u64::from(sum), want, "{where_}: digit sum");
        }
        match (parse_dc05(raw), v["valid"].as_bool().expect("valid")) {
            (Ok(d), true) => {
                let e = d.event;
                assert_eq!(
                    e.account.map(|a| a.to_string()).as_deref(),
                    s(exp, "account"),
                    "{where_}"
                );
                assert_eq!(
                    Some(d.message_type.as_str()),
                    s(exp, "message_type"),
                    "{where_}"
                );
                assert_eq!(
                    Some(char::from(e.qualifier.digit()).to_string().as_str()),
                    s(exp, "qualifier"),
                    "{where_}"
                );
                assert_eq!(Some(e.code.as_str()), s(exp, "event_code"), "{where_}");
                // The group is normalised (A means 0): "A1" in the file is group 01.
                assert_eq!(
                    e.group.as_str(),
                    s(exp, "group").expect("group").replace('A', "0"),
                    "{where_}"
                );
                assert_eq!(
                    Some(e.zone_or_user.as_str()),
                    s(exp, "zone_or_user"),
                    "{where_}"
                );
                assert_eq!(
                    Some(char::from(d.checksum).to_string().as_str()),
                    s(exp, "checksum"),
                    "{where_}"
                );
            }
            (Err(err), false) => {
                let want = s(exp, "error").unwrap_or("bad_checksum");
                assert_eq!(err.kind(), want, "{where_}: {err}");
                if want == "bad_checksum" {
                    assert!(matches!(err, ContactIdError::Checksum { .. }));
                }
            }
            (r, valid) => panic!("{where_}: expected valid={valid}, got {r:?}"),
        }
    }
}

#[test]
fn surgard_serial_vectors() {
    let file = load("surgard_serial.json");
    let opts = SerialOptions::default();
    for (i, v) in file["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .enumerate()
    {
        let where_ = format!("surgard_serial.json[{i}]");
        let raw = bytes(s(v, "raw").expect("raw"));
        let exp = &v["expect"];
        let valid = v["valid"].as_bool().expect("valid");
        if s(exp, "protocol").is_some_and(|p| p.starts_with("Ademco 685")) {
            let Ok(Packet::ContactId {
                receiver,
                line,
                event,
                address_kind,
            }) = surgard::parse_ademco685(&raw)
            else {
                panic!("{where_}: 685")
            };
            assert_eq!(
                (receiver.as_str(), line.as_str()),
                (
                    s(exp, "receiver").expect("r"),
                    s(exp, "group_rcvr").expect("g")
                ),
                "{where_}"
            );
            assert_eq!(
                event.account.map(|a| a.to_string()).as_deref(),
                s(exp, "account"),
                "{where_}"
            );
            assert_eq!(
                (
                    event.code.as_str(),
                    event.group.as_str(),
                    event.zone_or_user.as_str()
                ),
                ("131", "01", "015"),
                "{where_}"
            );
            assert_eq!(
                address_kind,
                Some(vakt_protocol::catalogue::AddressKind::Zone),
                "{where_}"
            );
            continue;
        }
        // Frame through the serial codec, as the gateway will.
        let mut codec = SerialCodec::new(SerialFraming::Dc4, 256);
        let mut buf = BytesMut::from(&raw[..]);
        let item = codec.decode(&mut buf).expect("codec never errors");
        if s(exp, "error") == Some("missing_terminator") {
            assert_eq!(item, None, "{where_}: must wait for DC4");
            let eof = codec.decode_eof(&mut buf).expect("codec never errors");
            assert_eq!(
                eof,
                Some(Item::Junk {
                    len: raw.len(),
                    reason: JunkReason::Truncated
                }),
                "{where_}"
            );
            continue;
        }
        let Some(Item::Frame(packet)) = item else {
            panic!("{where_}: no packet: {item:?}")
        };
        let parsed = surgard::parse_packet(&packet, &opts);
        if !valid {
            assert_eq!(parsed.map(|_| ()), Err(SerialError::BadLength), "{where_}");
            continue;
        }
        match parsed.unwrap_or_else(|e| panic!("{where_}: {e}")) {
            Packet::ContactId {
                receiver,
                line,
                event,
                ..
            } => {
                if let Some(r) = s(exp, "receiver") {
                    assert_eq!(receiver.as_str(), r, "{where_}");
                }
                if let Some(l) = s(exp, "line") {
                    assert_eq!(line.as_str(), l, "{where_}");
                }
                assert_eq!(
                    event.account.map(|a| a.to_string()).as_deref(),
                    s(exp, "account"),
                    "{where_}"
                );
                assert_eq!(
                    Some(char::from(event.qualifier.letter()).to_string().as_str()),
                    s(exp, "qualifier"),
                    "{where_}"
                );
                if let Some(q) = s(exp, "cid_qualifier") {
                    assert_eq!(
                        char::from(event.qualifier.digit()).to_string(),
                        q,
                        "{where_}"
                    );
                }
                assert_eq!(Some(event.code.as_str()), s(exp, "event_code"), "{where_}");
                assert_eq!(Some(event.group.as_str()), s(exp, "group"), "{where_}");
                assert_eq!(
                    Some(event.zone_or_user.as_str()),
                    s(exp, "zone_or_user"),
                    "{where_}"
                );
                assert!(matches!(
                    event.qualifier,
                    Qualifier::New | Qualifier::Restore | Qualifier::Previous
                ));
            }
            Packet::Sia {
                receiver,
                line,
                data,
                ..
            } => {
                assert_eq!(
                    (receiver.as_str(), line.as_str()),
                    (s(exp, "receiver").expect("r"), s(exp, "line").expect("l")),
                    "{where_}"
                );
                let d = vakt_protocol::sia_dcs::parse_sia_data(data).expect("sia");
                assert_eq!(
                    d.account.map(|a| a.to_string()).as_deref(),
                    s(exp, "account"),
                    "{where_}"
                );
                if let Some(code) = s(exp, "code") {
                    assert_eq!(d.events[0].code.as_str(), code, "{where_}");
                    assert_eq!(
                        d.events[0].address.map(|a| a.to_string()).as_deref(),
                        s(exp, "zone"),
                        "{where_}"
                    );
                    assert_eq!(
                        d.events[0].modifiers.area.map(|a| a.to_string()).as_deref(),
                        s(exp, "ri"),
                        "{where_}"
                    );
                }
                if let Some(mods) = exp.get("modifiers") {
                    let m = d.events[0].modifiers;
                    assert_eq!(
                        m.date.map(|x| x.to_string()).as_deref(),
                        s(mods, "da"),
                        "{where_}"
                    );
                    assert_eq!(
                        m.time.map(|x| x.to_string()).as_deref(),
                        s(mods, "ti"),
                        "{where_}"
                    );
                    assert_eq!(
                        m.user.map(|x| x.to_string()).as_deref(),
                        s(mods, "id"),
                        "{where_}"
                    );
                }
                for (e, want) in d.events.iter().zip(
                    exp.get("events")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                ) {
                    assert_eq!(Some(e.code.as_str()), s(want, "code"), "{where_}");
                    if let Some(addr) = want.get("address") {
                        assert_eq!(
                            e.address.map(|a| a.to_string()).as_deref(),
                            addr.as_str(),
                            "{where_}"
                        );
                    }
                    if let Some(user) = s(want, "user") {
                        assert_eq!(
                            e.user().map(|u| u.to_string()).as_deref(),
                            Some(user),
                            "{where_}"
                        );
                    }
                }
            }
            Packet::Heartbeat { receiver, line } => {
                assert_eq!(exp.get("heartbeat"), Some(&Value::Bool(true)), "{where_}");
                assert_eq!(
                    (receiver.as_str(), line.as_str()),
                    (s(exp, "receiver").expect("r"), s(exp, "line").expect("l")),
                    "{where_}"
                );
            }
        }
    }
}
