//! Property tests: build → parse round trips for every frame kind and payload, encrypt → decrypt
//! with every key size, no panic on arbitrary bytes, no ACK for a corrupted frame, and framing
//! that does not depend on how the stream is cut into reads.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;
use vakt_protocol::codec::{Dc09Codec, Item, SerialCodec, SerialFraming};
use vakt_protocol::contact_id::{encode_dc05, parse_adm_cid, parse_dc05, ContactId, Qualifier};
use vakt_protocol::dc09::{
    self, encode_message, Content, Dialect, Key, Message, Policy, Quirks, Timestamp, TokenKind,
    XData,
};
use vakt_protocol::sia_dcs::parse_sia_data;
use vakt_protocol::surgard::{self, Packet, SerialOptions};
use vakt_protocol::Short;

fn hex(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9A-F]{{{min},{max}}}")).expect("regex")
}

fn token() -> impl Strategy<Value = TokenKind<'static>> {
    prop_oneof![
        Just(TokenKind::SiaDcs),
        Just(TokenKind::AdmCid),
        Just(TokenKind::Null),
        Just(TokenKind::Other("SIA-PUL"))
    ]
}

/// Data-block text: printable ASCII without the brackets.
fn data() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -Z\\\\^-~]{0,60}").expect("regex")
}

fn xdata() -> impl Strategy<Value = Vec<(u8, String)>> {
    proptest::collection::vec(
        (
            b'A'..=b'Z',
            proptest::string::string_regex("[ -Z\\\\^-~]{0,20}").expect("regex"),
        ),
        0..3,
    )
}

fn timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    proptest::option::of((0i64..4_102_444_800).prop_map(Timestamp::from_unix))
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![Just(16usize), Just(24), Just(32)]
        .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n))
        .prop_map(|b| Key::from_bytes(&b).expect("valid size"))
}

fn dialect() -> impl Strategy<Value = Dialect> {
    (any::<bool>(), any::<bool>()).prop_map(|(binary_crc, cr_in_crc)| Dialect {
        binary_crc,
        cr_in_crc,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn dc09_message_round_trips(
        token in token(), seq in "[0-9]{4}", receiver in proptest::option::of(hex(1, 6)), prefix in hex(1, 6),
        account in hex(3, 16), data in data(), xdata in xdata(), ts in timestamp(),
        encryption in proptest::option::of((key(), any::<[u8; 16]>())), dialect in dialect(),
    ) {
        // An encrypted frame always carries a timestamp (mandatory, §1.10).
        let ts = if encryption.is_some() { ts.or(Some(Timestamp::from_unix(0))) } else { ts };
        let xd: Vec<XData<'_>> = xdata.iter().map(|(id, v)| XData { id: *id, value: v.as_bytes() }).collect();
        let msg = Message { token, sequence: &seq, receiver: receiver.as_deref(), prefix: &prefix, account: &account, data: data.as_bytes(), xdata: &xd, timestamp: ts };
        let mut out = BytesMut::new();
        encode_message(&msg, encryption.as_ref().map(|(k, pad)| (k, *pad)), dialect, &mut out);
        let quirks = Quirks { binary_crc: dialect.binary_crc, cr_in_crc: dialect.cr_in_crc, ..Quirks::default() };
        let f = dc09::parse_frame(&out, &quirks).expect("own frame parses");
        prop_assert_eq!(f.header.token.kind, token);
        prop_assert_eq!(f.header.token.encrypted, encryption.is_some());
        prop_assert_eq!(f.header.sequence, seq.as_str());
        prop_assert_eq!(f.header.receiver, receiver.as_deref());
        prop_assert_eq!(f.header.prefix, prefix.as_str());
        prop_assert_eq!(f.header.account, Some(account.as_str()));
        let mut buf = Vec::new();
        let clear = match (f.content, &encryption) {
            (Content::Clear(c), None) => c,
            (Content::Encrypted(hex), Some((k, _))) => dc09::decrypt(hex, k, &mut buf).expect("own key opens"),
            _ => return Err(TestCaseError::fail("encryption mismatch")),
        };
        prop_assert_eq!(clear.data, data.as_bytes());
        prop_assert_eq!(&clear.xdata, &xd);
        prop_assert_eq!(clear.timestamp.valid(), ts);
    }

    #[test]
    fn a_corrupted_byte_is_never_acknowledged(
        account in hex(3, 16), data in "[0-9A-F ]{0,30}", at in any::<prop::sample::Index>(), flip in 1u8..=255,
    ) {
        let msg = Message { token: TokenKind::AdmCid, sequence: "0001", receiver: None, prefix: "0", account: &account, data: data.as_bytes(), xdata: &[], timestamp: None };
        let mut out = BytesMut::new();
        encode_message(&msg, None, Dialect::STANDARD, &mut out);
        let i = at.index(out.len());
        out[i] ^= flip;
        let mut buf = Vec::new();
        let r = dc09::receive(&out, 0, &mut buf, |_| Some(Policy::default()));
        prop_assert!(r.is_err(), "corrupted byte {} accepted", i);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..300), quirks in (any::<bool>(), any::<bool>(), any::<bool>())) {
        let q = Quirks { binary_crc: quirks.0, cr_in_crc: quirks.1, hex_sequence: quirks.2, ..Quirks::default() };
        let _ = dc09::parse_frame(&raw, &q);
        let _ = dc09::parse_body(&raw, &q);
        let key = Key::from_bytes(&[7; 16]).expect("valid");
        let mut buf = Vec::new();
        let _ = dc09::receive(&raw, 0, &mut buf, |_| Some(Policy { quirks: q, key: Some(&key), ..Policy::default() }));
        let _ = dc09::decrypt(&raw, &key, &mut buf);
        let _ = parse_sia_data(&raw);
        let _ = parse_adm_cid(&raw);
        let _ = parse_dc05(&raw);
        let _ = surgard::parse_packet(&raw, &SerialOptions::default());
        let _ = surgard::parse_ademco685(&raw);
    }

    #[test]
    fn arbitrary_frame_shaped_input_never_panics(body in "[\"*A-Z0-9#LR\\[\\]|_:,\\-^/ a-z]{0,80}") {
        let mut raw = b"\n00000000".to_vec();
        raw.extend_from_slice(body.as_bytes());
        raw.push(b'\r');
        let _ = dc09::parse_body(body.as_bytes(), &Quirks { hex_sequence: true, ..Quirks::default() });
        let mut buf = Vec::new();
        let _ = dc09::receive(&raw, 0, &mut buf, |_| Some(Policy::default()));
        let _ = parse_sia_data(body.as_bytes());
    }

    #[test]
    fn adm_cid_round_trips(account in proptest::option::of(hex(3, 16)), hash in any::<bool>(), q in prop_oneof![Just(Qualifier::New), Just(Qualifier::Restore), Just(Qualifier::Previous)],
                           code in "[0-9B-F]{3}", group in "[0-9B-F]{2}", zone in "[0-9B-F]{3}") {
        let mut text = String::new();
        if let Some(a) = &account {
            text.push_str(if hash { "#" } else { "" });
            text.push_str(a);
            text.push('|');
        }
        text.push_str(&format!("{}{code} {group} {zone}", char::from(q.digit())));
        let c = parse_adm_cid(text.as_bytes()).expect("valid");
        prop_assert_eq!(c.account.map(|a| a.to_string()), account);
        prop_assert_eq!((c.qualifier, c.code.as_str(), c.group.as_str(), c.zone_or_user.as_str()), (q, code.as_str(), group.as_str(), zone.as_str()));
    }

    #[test]
    fn dc05_round_trips_and_any_digit_change_is_caught(account in "[1-9B-F]{4}", q in prop_oneof![Just(Qualifier::New), Just(Qualifier::Restore), Just(Qualifier::Previous)],
                                                       code in "[1-9B-F]{3}", group in "[1-9B-F]{2}", zone in "[1-9B-F]{3}", at in 0usize..16, to in "[1-9B-F]") {
        let raw = encode_dc05(&account, "18", q, &code, &group, &zone).expect("encodes");
        let d = parse_dc05(&raw).expect("own string parses");
        prop_assert_eq!((d.event.code.as_str(), d.event.group.as_str(), d.event.zone_or_user.as_str()), (code.as_str(), group.as_str(), zone.as_str()));
        let mut bad = raw;
        let to = to.as_bytes()[0];
        prop_assume!(bad[at] != to);
        bad[at] = to;
        prop_assert!(parse_dc05(&bad).is_err());
    }

    #[test]
    fn sia_data_round_trips(account in hex(3, 16), area in proptest::option::of("[0-9]{1,4}"), user in proptest::option::of("[0-9]{1,4}"),
                            events in proptest::collection::vec(("(BA|FA|PA|CL|OP|RP|TA|YX|ZZ)", proptest::option::of("[0-9]{1,4}"), proptest::option::of("[A-Za-z0-9 ./]{1,12}")), 1..4)) {
        let mut text = format!("#{account}|N");
        if let Some(a) = &area { text.push_str(&format!("ri{a}/")); }
        if let Some(u) = &user { text.push_str(&format!("id{u}/")); }
        for (code, addr, name) in &events {
            text.push_str(code);
            if let Some(a) = addr { text.push_str(a); }
            if let Some(n) = name { text.push_str(&format!("^{n}^")); }
            text.push('/');
        }
        let d = parse_sia_data(text.as_bytes()).expect("valid");
        prop_assert_eq!(d.account.map(|a| a.to_string()), Some(account));
        prop_assert_eq!(d.events.len(), events.len());
        for (e, (code, addr, name)) in d.events.iter().zip(&events) {
            prop_assert_eq!(e.code.as_str(), code.as_str());
            prop_assert_eq!(e.address.map(|a| a.to_string()), addr.clone());
            prop_assert_eq!(e.text.map(|t| String::from_utf8_lossy(t).into_owned()), name.clone());
            prop_assert_eq!(e.modifiers.area.map(|a| a.to_string()), area.clone());
            prop_assert_eq!(e.modifiers.user.map(|a| a.to_string()), user.clone());
        }
    }

    #[test]
    fn surgard_packets_round_trip(receiver in "[0-9]{2}", line in "[0-9]{1,3}", account in "[0-9B-F]{4}", q in prop_oneof![Just(Qualifier::New), Just(Qualifier::Restore), Just(Qualifier::Previous)],
                                  code in "[0-9]{3}", group in "[0-9]{2}", zone in "[0-9]{3}", sia_zone in "[0-9]{1,3}") {
        let s = |t: &str| Short::new(t.as_bytes()).expect("short");
        let event = ContactId { account: None, qualifier: q, code: s(&code), group: s(&group), zone_or_user: s(&zone) };
        let mut out = BytesMut::new();
        surgard::encode_contact_id(&receiver, &line, &account, &event, &mut out);
        let opts = SerialOptions { line_digits: Some(line.len() as u8), ..SerialOptions::default() };
        let Ok(Packet::ContactId { receiver: r, line: l, event: e, .. }) = surgard::parse_packet(&out[..out.len() - 1], &opts) else {
            return Err(TestCaseError::fail("contact id packet"));
        };
        prop_assert_eq!((r.as_str(), l.as_str(), e.account.map(|a| a.to_string())), (receiver.as_str(), line.as_str(), Some(account.clone())));
        prop_assert_eq!((e.qualifier, e.code, e.group, e.zone_or_user), (q, event.code, event.group, event.zone_or_user));
        out.clear();
        let data = format!("#{account}|Nri1BA{sia_zone}");
        surgard::encode_sia(&receiver, &line, data.as_bytes(), &mut out);
        let Ok(Packet::Sia { data: d, .. }) = surgard::parse_packet(&out[..out.len() - 1], &opts) else {
            return Err(TestCaseError::fail("sia packet"));
        };
        prop_assert_eq!(d, data.as_bytes());
        out.clear();
        surgard::encode_heartbeat(&receiver, &line, &mut out);
        let is_heartbeat = matches!(surgard::parse_packet(&out[..out.len() - 1], &opts), Ok(Packet::Heartbeat { .. }));
        prop_assert!(is_heartbeat);
    }

    #[test]
    fn dc09_framing_does_not_depend_on_read_boundaries(
        frames in proptest::collection::vec(("[0-9]{4}", hex(3, 8), "[0-9A-F ]{0,40}"), 1..6),
        junk in proptest::collection::vec("[a-z]{0,5}", 6), cuts in proptest::collection::vec(1usize..40, 0..20),
    ) {
        let mut stream = BytesMut::new();
        let mut want = Vec::new();
        for (i, (seq, account, data)) in frames.iter().enumerate() {
            stream.extend_from_slice(junk[i].as_bytes());
            let msg = Message { token: TokenKind::SiaDcs, sequence: seq, receiver: None, prefix: "0", account, data: data.as_bytes(), xdata: &[], timestamp: None };
            let mut f = BytesMut::new();
            encode_message(&msg, None, Dialect::STANDARD, &mut f);
            want.push(f.to_vec());
            stream.extend_from_slice(&f);
        }
        let got = frames_of(&mut Dc09Codec::default(), &stream, &cuts);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn serial_framing_does_not_depend_on_read_boundaries(packets in proptest::collection::vec("[0-9A-Z \\[\\]#|]{1,40}", 1..8), cuts in proptest::collection::vec(1usize..30, 0..20)) {
        let mut stream = BytesMut::new();
        for p in &packets {
            stream.extend_from_slice(p.trim().as_bytes());
            stream.extend_from_slice(b"\x14\r\n");
        }
        let want: Vec<Vec<u8>> = packets.iter().map(|p| p.trim().as_bytes().to_vec()).filter(|p| !p.is_empty()).collect();
        let got = frames_of(&mut SerialCodec::new(SerialFraming::Dc4, 64), &stream, &cuts);
        prop_assert_eq!(got, want);
    }
}

/// Feeds `stream` to `codec` in reads of the given sizes; returns the frames.
fn frames_of(
    codec: &mut impl Decoder<Item = Item, Error = std::io::Error>,
    stream: &[u8],
    cuts: &[usize],
) -> Vec<Vec<u8>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = stream;
    let mut sizes = cuts.iter().copied().chain(std::iter::repeat(usize::MAX));
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(usize::MAX).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(item) = codec.decode(&mut buf).expect("never errors") {
            if let Item::Frame(f) = item {
                out.push(f.to_vec());
            }
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("never errors") {
        if let Item::Frame(f) = item {
            out.push(f.to_vec());
        }
    }
    out
}
