//! DC-09 frames: `receive` on arbitrary bytes, with and without a key and quirks. Invariants:
//! an accepted frame has a verified CRC and length, its ACK is itself a valid frame echoing the
//! header, and its events are those of its payload; the same bytes through the stream codec come
//! out as at most one frame.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use vakt_protocol::codec::{Dc09Codec, Item};
use vakt_protocol::dc09::{self, encode_ack, Key, Policy, Quirks, TokenKind};

/// With flag 64, the input is a body: wrap it with a correct CRC and length, so the fuzzer
/// explores header, decryption and payload parsing instead of bouncing off the checksum.
fn wrap(body: &[u8]) -> Vec<u8> {
    let crc = vakt_protocol::crc::crc16_arc(body);
    let mut f = format!("\n{crc:04X}0{:03X}", body.len().min(0xFFF)).into_bytes();
    f.extend_from_slice(body);
    f.push(b'\r');
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else { return };
    let wrapped;
    let raw = if flags & 64 != 0 {
        wrapped = wrap(input);
        &wrapped[..]
    } else {
        input
    };
    let quirks = Quirks { binary_crc: flags & 1 != 0, cr_in_crc: flags & 2 != 0, hex_sequence: flags & 4 != 0, answer_in_dialect: flags & 8 != 0 };
    let key = Key::from_ascii("AAAAAAAAAAAAAAAA").expect("valid key");
    let policy = Policy { quirks, key: (flags & 16 != 0).then_some(&key), check_plain_timestamps: flags & 32 != 0, ..Policy::default() };
    let mut buf = Vec::new();
    if let Ok(a) = dc09::receive(raw, 1_700_000_000, &mut buf, |_| Some(policy)) {
        let env = dc09::split_envelope(raw).expect("accepted frames have an envelope");
        assert_eq!(env.verify(&quirks), Ok(()), "accepted with a bad CRC or length");
        assert!(!a.header.token.kind.is_response());
        assert_ne!(a.header.token.kind, TokenKind::Other(""));
        let mut ack = BytesMut::new();
        encode_ack(&a.header, a.dialect, &mut ack);
        let back = dc09::parse_frame(&ack, &Quirks { binary_crc: a.dialect.binary_crc, cr_in_crc: a.dialect.cr_in_crc, hex_sequence: true, ..Quirks::default() })
            .expect("our ACK is a valid frame");
        assert_eq!(back.header.echo, a.header.echo);
        assert_eq!(back.header.token.kind, TokenKind::Ack);
        let _ = a.payload.events();
    }
    let mut codec = Dc09Codec::default();
    let mut src = BytesMut::from(raw);
    let mut frames = 0;
    while let Ok(Some(item)) = codec.decode(&mut src) {
        if let Item::Frame(f) = item {
            assert!(f.len() <= dc09::MAX_FRAME);
            assert_eq!(f.first(), Some(&b'\n'));
            assert_eq!(f.last(), Some(&b'\r'));
            frames += 1;
        }
    }
    assert!(frames <= raw.iter().filter(|&&b| b == b'\n').count());
});
