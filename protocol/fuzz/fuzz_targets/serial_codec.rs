//! Serial receiver streams in arbitrary reads. Invariants: no packet exceeds the maximum, none
//! contains its terminator, every byte is a packet, junk, or a terminator/noise byte dropped
//! silently; parsed Contact ID events always have a valid qualifier.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use vakt_protocol::codec::{Item, SerialCodec, SerialFraming};
use vakt_protocol::surgard::{self, Packet, SerialOptions, DC4};

const MAX: usize = 96;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else { return };
    let framing = if flags & 1 == 0 { SerialFraming::Dc4 } else { SerialFraming::Line };
    let opts = SerialOptions { line_digits: [None, Some(1), Some(3)][usize::from(flags >> 1) % 3], ..SerialOptions::default() };
    let mut codec = SerialCodec::new(framing, MAX);
    let mut src = BytesMut::new();
    let mut accounted = 0;
    let chunk = usize::from(flags >> 3).max(1);
    let mut check = |item: Item| match item {
        Item::Frame(p) => {
            assert!(p.len() <= MAX);
            assert!(!p.contains(&DC4) || framing == SerialFraming::Line);
            accounted += p.len();
            let parsed = match framing {
                SerialFraming::Dc4 => surgard::parse_packet(&p, &opts),
                SerialFraming::Line => surgard::parse_ademco685(&p),
            };
            if let Ok(Packet::ContactId { event, .. }) = parsed {
                assert!(matches!(event.qualifier.digit(), b'1' | b'3' | b'6'));
            }
        }
        Item::Junk { len, .. } => accounted += len,
    };
    for part in stream.chunks(chunk) {
        src.extend_from_slice(part);
        while let Ok(Some(item)) = codec.decode(&mut src) {
            check(item);
        }
    }
    while let Ok(Some(item)) = codec.decode_eof(&mut src) {
        check(item);
    }
    assert!(accounted <= stream.len());
});
