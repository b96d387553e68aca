//! tokio-util codecs that cut byte streams into frames: [`Dc09Codec`] (LF … CR, TCP) and
//! [`SerialCodec`] (DC4-terminated receiver packets, or CR/LF lines).
//!
//! Framing only: parsing is the caller's next step. Bad input never ends the stream (a decoder
//! error would): bytes outside frames and over-long frames come out as [`Item::Junk`] so the
//! caller can count and log them, and the connection goes on. Memory is bounded by the maximum
//! frame length: an over-long frame is dropped as it arrives, never buffered.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::dc09::MAX_FRAME;
use crate::surgard::DC4;

/// What a codec yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// One complete frame or packet (DC-09: LF … CR inclusive; serial: without terminator).
    Frame(Bytes),
    /// Bytes dropped, and why.
    Junk {
        /// How many bytes.
        len: usize,
        /// Why they were dropped.
        reason: JunkReason,
    },
}

/// Why bytes were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JunkReason {
    /// Bytes before the start of a frame.
    Garbage,
    /// A frame longer than the maximum.
    Oversize,
    /// A frame cut short by the start of another one (DC-09: a second LF before the CR).
    Interrupted,
    /// A partial frame when the stream ended.
    Truncated,
}

impl JunkReason {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Garbage => "garbage",
            Self::Oversize => "oversize",
            Self::Interrupted => "interrupted",
            Self::Truncated => "truncated",
        }
    }
}

/// DC-09 framing: a frame starts at LF and ends at the next CR. LF never occurs inside a frame,
/// so a second LF before the CR restarts framing there. NULs after the CR (§1.1) are skipped
/// silently.
#[derive(Debug, Clone)]
pub struct Dc09Codec {
    max: usize,
    /// Bytes of the current frame already searched for CR (so slow input is not rescanned).
    scanned: usize,
    /// Bytes dropped so far of an over-long frame still arriving.
    discarding: Option<usize>,
}

impl Default for Dc09Codec {
    fn default() -> Self {
        Self::new(MAX_FRAME)
    }
}

impl Dc09Codec {
    /// A codec accepting frames of at most `max_frame` bytes (LF to CR inclusive).
    pub fn new(max_frame: usize) -> Self {
        Self {
            max: max_frame.max(16),
            scanned: 0,
            discarding: None,
        }
    }
}

impl Decoder for Dc09Codec {
    type Item = Item;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Item>> {
        if let Some(dropped) = self.discarding {
            return Ok(match src.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    src.advance(lf);
                    self.discarding = None;
                    Some(Item::Junk {
                        len: dropped + lf,
                        reason: JunkReason::Oversize,
                    })
                }
                None => {
                    self.discarding = Some(dropped + src.len());
                    src.clear();
                    None
                }
            });
        }
        let lf = match src.iter().position(|&b| b == b'\n') {
            Some(lf) => lf,
            None => {
                let junk = src.iter().filter(|&&b| b != 0).count();
                src.clear();
                return Ok((junk > 0).then_some(Item::Junk {
                    len: junk,
                    reason: JunkReason::Garbage,
                }));
            }
        };
        if lf > 0 {
            let junk = src[..lf].iter().filter(|&&b| b != 0).count();
            src.advance(lf);
            self.scanned = 0;
            if junk > 0 {
                return Ok(Some(Item::Junk {
                    len: junk,
                    reason: JunkReason::Garbage,
                }));
            }
        }
        // Search from offset 3: a binary CRC (Lupusec/OPAX, §1.2) occupies bytes 1–2 and may hold
        // any value, CR and LF included. Hex CRC digits are never CR or LF.
        let from = self.scanned.max(3);
        let limit = src.len().min(self.max);
        if let Some(i) = src
            .get(from..limit)
            .and_then(|s| s.iter().position(|&b| b == b'\r' || b == b'\n'))
        {
            let at = from + i;
            self.scanned = 0;
            if src[at] == b'\n' {
                src.advance(at);
                return Ok(Some(Item::Junk {
                    len: at,
                    reason: JunkReason::Interrupted,
                }));
            }
            return Ok(Some(Item::Frame(src.split_to(at + 1).freeze())));
        }
        if src.len() >= self.max {
            self.scanned = 0;
            // Resynchronise on the next LF if it is already here; else drop all and keep
            // dropping until it comes.
            if let Some(next) = src[1..].iter().position(|&b| b == b'\n') {
                src.advance(next + 1);
                return Ok(Some(Item::Junk {
                    len: next + 1,
                    reason: JunkReason::Oversize,
                }));
            }
            self.discarding = Some(src.len());
            src.clear();
            return Ok(None);
        }
        self.scanned = src.len();
        src.reserve(256);
        Ok(None)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Item>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        let pending = self.discarding.take().unwrap_or(0) + src.iter().filter(|&&b| b != 0).count();
        src.clear();
        self.scanned = 0;
        Ok((pending > 0).then_some(Item::Junk {
            len: pending,
            reason: JunkReason::Truncated,
        }))
    }
}

impl Encoder<&[u8]> for Dc09Codec {
    type Error = io::Error;
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

/// How serial packets end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialFraming {
    /// Sur-Gard / Bosch: each packet ends with DC4 (0x14).
    Dc4,
    /// Ademco 685 and raw Contact ID lines: each ends with CR or LF.
    Line,
}

/// Serial receiver framing. Control bytes and non-ASCII noise before a packet are dropped as
/// junk; an over-long packet is dropped up to its terminator (the caller answers NAK).
#[derive(Debug, Clone)]
pub struct SerialCodec {
    framing: SerialFraming,
    max: usize,
    scanned: usize,
    discarding: Option<usize>,
}

impl SerialCodec {
    /// A codec for `framing` with packets of at most `max_packet` bytes.
    pub fn new(framing: SerialFraming, max_packet: usize) -> Self {
        Self {
            framing,
            max: max_packet.max(8),
            scanned: 0,
            discarding: None,
        }
    }

    fn is_end(&self, b: u8) -> bool {
        match self.framing {
            SerialFraming::Dc4 => b == DC4,
            SerialFraming::Line => b == b'\r' || b == b'\n',
        }
    }
}

impl Decoder for SerialCodec {
    type Item = Item;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Item>> {
        if let Some(dropped) = self.discarding {
            return Ok(match src.iter().position(|&b| self.is_end(b)) {
                Some(end) => {
                    src.advance(end + 1);
                    self.discarding = None;
                    Some(Item::Junk {
                        len: dropped + end + 1,
                        reason: JunkReason::Oversize,
                    })
                }
                None => {
                    self.discarding = Some(dropped + src.len());
                    src.clear();
                    None
                }
            });
        }
        // Noise before a packet: control characters (terminators included, so empty lines and
        // CR LF after DC4 vanish) and bytes outside ASCII. Silent for whitespace and NUL.
        let start = src
            .iter()
            .position(|&b| (0x20..0x7F).contains(&b))
            .unwrap_or(src.len());
        if start > 0 {
            let noisy = src[..start]
                .iter()
                .filter(|&&b| !matches!(b, 0 | b'\r' | b'\n' | DC4 | b' ' | b'\t'))
                .count();
            src.advance(start);
            self.scanned = 0;
            if noisy > 0 {
                return Ok(Some(Item::Junk {
                    len: noisy,
                    reason: JunkReason::Garbage,
                }));
            }
        }
        let limit = src.len().min(self.max + 1);
        if let Some(i) = src
            .get(self.scanned..limit)
            .and_then(|s| s.iter().position(|&b| self.is_end(b)))
        {
            let end = self.scanned + i;
            self.scanned = 0;
            let packet = src.split_to(end).freeze();
            src.advance(1);
            return Ok(Some(Item::Frame(packet)));
        }
        if src.len() > self.max {
            self.scanned = 0;
            if let Some(end) = src.iter().position(|&b| self.is_end(b)) {
                src.advance(end + 1);
                return Ok(Some(Item::Junk {
                    len: end + 1,
                    reason: JunkReason::Oversize,
                }));
            }
            self.discarding = Some(src.len());
            src.clear();
            return Ok(None);
        }
        self.scanned = src.len();
        Ok(None)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Item>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        let pending = self.discarding.take().unwrap_or(0) + src.len();
        src.clear();
        self.scanned = 0;
        Ok((pending > 0).then_some(Item::Junk {
            len: pending,
            reason: JunkReason::Truncated,
        }))
    }
}

impl Encoder<&[u8]> for SerialCodec {
    type Error = io::Error;
    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(
        codec: &mut impl Decoder<Item = Item, Error = io::Error>,
        chunks: &[&[u8]],
    ) -> Vec<Item> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(item) = codec.decode(&mut buf).expect("never errors") {
                out.push(item);
            }
        }
        while let Some(item) = codec.decode_eof(&mut buf).expect("never errors") {
            out.push(item);
        }
        out
    }

    fn frame(b: &[u8]) -> Item {
        Item::Frame(Bytes::copy_from_slice(b))
    }

    #[test]
    fn split_coalesced_garbage_and_nuls() {
        let a: &[u8] = b"\n9EC40027\"ADM-CID\"0001L0#1002[#1002|1602 00 001]\r";
        let got = drain(
            &mut Dc09Codec::default(),
            &[b"xx", &a[..10], &a[10..], b"\0\0", a, b"junk"],
        );
        assert_eq!(
            got,
            vec![
                Item::Junk {
                    len: 2,
                    reason: JunkReason::Garbage
                },
                frame(a),
                frame(a),
                Item::Junk {
                    len: 4,
                    reason: JunkReason::Garbage
                }
            ]
        );
    }

    #[test]
    fn oversize_is_dropped_without_buffering_and_framing_resumes() {
        let mut codec = Dc09Codec::new(64);
        let big = [b'A'; 100];
        let ok: &[u8] = b"\n1EF20013\"NULL\"0000L0#1234[]\r";
        let got = drain(&mut codec, &[b"\n", &big, &big, ok]);
        assert_eq!(
            got,
            vec![
                Item::Junk {
                    len: 201,
                    reason: JunkReason::Oversize
                },
                frame(ok)
            ]
        );
    }

    #[test]
    fn interrupted_and_truncated() {
        let ok: &[u8] = b"\n1EF20013\"NULL\"0000L0#1234[]\r";
        let got = drain(&mut Dc09Codec::default(), &[b"\n1EF2001", ok, b"\n1EF2"]);
        assert_eq!(
            got,
            vec![
                Item::Junk {
                    len: 8,
                    reason: JunkReason::Interrupted
                },
                frame(ok),
                Item::Junk {
                    len: 5,
                    reason: JunkReason::Truncated
                }
            ]
        );
    }

    #[test]
    fn serial_dc4_and_lines() {
        let got = drain(
            &mut SerialCodec::new(SerialFraming::Dc4, 64),
            &[
                b"\x01\x025011 181234E1",
                b"2101001\x14\r\n1011           @    \x14",
            ],
        );
        assert_eq!(
            got,
            vec![
                Item::Junk {
                    len: 2,
                    reason: JunkReason::Garbage
                },
                frame(b"5011 181234E12101001"),
                frame(b"1011           @    ")
            ]
        );
        let got = drain(
            &mut SerialCodec::new(SerialFraming::Line, 64),
            &[b"\n11 1234 18 E131 01 C015\r\n\r\n1234181131010158\r"],
        );
        assert_eq!(
            got,
            vec![
                frame(b"11 1234 18 E131 01 C015"),
                frame(b"1234181131010158")
            ]
        );
        let got = drain(
            &mut SerialCodec::new(SerialFraming::Dc4, 8),
            &[b"5011 181234E12101001\x14S"],
        );
        assert_eq!(
            got,
            vec![
                Item::Junk {
                    len: 21,
                    reason: JunkReason::Oversize
                },
                Item::Junk {
                    len: 1,
                    reason: JunkReason::Truncated
                }
            ]
        );
    }
}
