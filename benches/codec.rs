//! Decode throughput of the protocol core, in frames per second on one core.
//!
//! Each benchmark runs what the gateway does per frame: verify, decrypt, decode the payload to
//! events and write the ACK (DC-09), or frame, parse and decode (serial). Batches of 1,000
//! distinct frames keep the branch predictor honest. Run: `cargo bench --bench codec`.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tokio_util::codec::Decoder;
use vakt_protocol::codec::{Dc09Codec, Item, SerialCodec, SerialFraming};
use vakt_protocol::dc09::{
    self, encode_ack, encode_encrypted_ack, encode_message, Dialect, Key, Message, Policy,
    Timestamp, TokenKind,
};
use vakt_protocol::event::sia_events;
use vakt_protocol::surgard::{self, Packet, SerialOptions};

const BATCH: usize = 1_000;
const NOW: i64 = 1_764_000_000;

fn frames(token: TokenKind<'static>, key: Option<&Key>) -> Vec<Vec<u8>> {
    (0..BATCH)
        .map(|i| {
            let seq = format!("{:04}", i % 9999 + 1);
            let account = format!("{:06X}", 0x1000 + i);
            let data = match token {
                TokenKind::AdmCid => format!(
                    "#{account}|1{:03} {:02} {:03}",
                    [130, 110, 602, 401][i % 4],
                    i % 8,
                    i % 200
                ),
                _ => format!(
                    "#{account}|Nri{}/{}{:03}",
                    i % 8,
                    ["BA", "FA", "RP", "CL"][i % 4],
                    i % 200
                ),
            };
            let msg = Message {
                token,
                sequence: &seq,
                receiver: Some("1"),
                prefix: "0",
                account: &account,
                data: data.as_bytes(),
                xdata: &[],
                timestamp: Some(Timestamp::from_unix(NOW)),
            };
            let mut out = BytesMut::new();
            encode_message(
                &msg,
                key.map(|k| (k, [0x41; 16])),
                Dialect::STANDARD,
                &mut out,
            );
            out.to_vec()
        })
        .collect()
}

/// receive → events → ACK for every frame; returns events seen (so nothing is optimised away).
fn receive_all(
    frames: &[Vec<u8>],
    key: Option<&Key>,
    buf: &mut Vec<u8>,
    ack: &mut BytesMut,
) -> usize {
    let policy = Policy {
        key,
        check_plain_timestamps: true,
        ..Policy::default()
    };
    let mut events = 0;
    for f in frames {
        let a = dc09::receive(f, NOW, buf, |_| Some(policy)).expect("valid frame");
        events += a.payload.events().len();
        ack.clear();
        match key {
            Some(k) => encode_encrypted_ack(
                &a.header,
                k,
                Timestamp::from_unix(NOW),
                [0x42; 16],
                a.dialect,
                ack,
            ),
            None => encode_ack(&a.header, a.dialect, ack),
        }
    }
    events
}

fn dc09(c: &mut Criterion) {
    let mut g = c.benchmark_group("dc09");
    g.throughput(Throughput::Elements(BATCH as u64));
    let key = Key::from_ascii("0123456789ABCDEF").expect("valid");
    for (name, token, key) in [
        ("plain ADM-CID", TokenKind::AdmCid, None),
        ("plain SIA-DCS", TokenKind::SiaDcs, None),
        ("AES-128 ADM-CID", TokenKind::AdmCid, Some(&key)),
        ("AES-128 SIA-DCS", TokenKind::SiaDcs, Some(&key)),
    ] {
        let input = frames(token, key);
        let mut buf = Vec::with_capacity(256);
        let mut ack = BytesMut::with_capacity(256);
        g.bench_function(name, |b| {
            b.iter(|| receive_all(&input, key, &mut buf, &mut ack))
        });
    }
    let stream: Vec<u8> = frames(TokenKind::SiaDcs, None).concat();
    g.bench_function("framing (Dc09Codec)", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut src| {
                let mut codec = Dc09Codec::default();
                let mut n = 0;
                while let Ok(Some(Item::Frame(_))) = codec.decode(&mut src) {
                    n += 1;
                }
                n
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn serial(c: &mut Criterion) {
    let mut g = c.benchmark_group("serial");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut stream = BytesMut::new();
    for i in 0..BATCH {
        if i % 2 == 0 {
            stream.extend_from_slice(
                format!(
                    "5011 18{:04}E{:03}01{:03}\x14",
                    1000 + i,
                    [130, 110, 602, 401][i % 4],
                    i % 200
                )
                .as_bytes(),
            );
        } else {
            stream.extend_from_slice(
                format!("S011[#{:04}|Nri1/BA{:02}]\x14", 1000 + i, i % 90).as_bytes(),
            );
        }
    }
    let opts = SerialOptions::default();
    g.bench_function("Sur-Gard packets (frame + parse + events)", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut src| {
                let mut codec = SerialCodec::new(SerialFraming::Dc4, 256);
                let mut events = 0;
                while let Ok(Some(Item::Frame(p))) = codec.decode(&mut src) {
                    events += match surgard::parse_packet(&p, &opts).expect("valid") {
                        Packet::Sia { data, .. } => sia_events(
                            &vakt_protocol::sia_dcs::parse_sia_data(data).expect("valid"),
                        )
                        .len(),
                        _ => 1,
                    };
                }
                events
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, dc09, serial);
criterion_main!(benches);
