//! What one simulated panel sends: unique, valid DC-09 frames for its account, and how to
//! check the receiver's answer to each.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vakt_protocol::dc09::{
    decrypt, encode_message, parse_frame, Content, Dialect, Key, Message, Quirks, Timestamp,
    TokenKind,
};

/// Kind of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    Cid,
    Sia,
    Null,
}

/// Shares of each kind, in percent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mix {
    pub(crate) cid: u32,
    pub(crate) sia: u32,
    pub(crate) null: u32,
}

impl Mix {
    /// `cid=50,sia=40,null=10` (missing kinds are 0; shares are relative).
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut m = Self {
            cid: 0,
            sia: 0,
            null: 0,
        };
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("mix entry {part:?} is not kind=share"))?;
            let v: u32 = v
                .parse()
                .map_err(|_| format!("share {v:?} is not a number"))?;
            match k {
                "cid" => m.cid = v,
                "sia" => m.sia = v,
                "null" => m.null = v,
                _ => return Err(format!("unknown kind {k:?} (cid, sia, null)")),
            }
        }
        if m.cid + m.sia + m.null == 0 {
            return Err("mix is empty".into());
        }
        Ok(m)
    }

    fn pick(&self, rng: &mut SmallRng) -> FrameKind {
        let n = rng.random_range(0..self.cid + self.sia + self.null);
        if n < self.cid {
            FrameKind::Cid
        } else if n < self.cid + self.sia {
            FrameKind::Sia
        } else {
            FrameKind::Null
        }
    }
}

/// One frame in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub(crate) seq: u16,
    pub(crate) kind: FrameKind,
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ack,
    /// The ACK of this frame, but not a valid DC-09 frame (pysiaalarm writes a missing `R` as
    /// the text `None`): counted as acknowledged, and reported.
    LooseAck,
    Nak,
    Duh,
    /// An answer that is not the ACK of this frame (wrong sequence, account, bad *ACK, …).
    Wrong,
}

impl Verdict {
    /// The frame's ACK, conformant or not.
    pub(crate) fn is_ack(self) -> bool {
        matches!(self, Self::Ack | Self::LooseAck)
    }
}

/// A simulated panel.
#[derive(Debug)]
pub(crate) struct Panel {
    account: String,
    /// Distinguishes panels sharing an account (so their frames differ).
    group: u32,
    seq: u16,
    counter: u32,
    /// Zones the panel cycles through; each visit alternates alarm and restore.
    zones: u32,
    mix: Mix,
    key: Option<Key>,
    rng: SmallRng,
    data: String,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Panel {
    pub(crate) fn new(
        account: String,
        group: u32,
        zones: u32,
        mix: Mix,
        key: Option<Key>,
        seed: u64,
    ) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let zones = zones.max(1);
        let counter = rng.random_range(0..zones);
        Self {
            account,
            group: group % 100,
            seq: 0,
            counter,
            zones,
            mix,
            key,
            rng,
            data: String::with_capacity(64),
        }
    }

    /// Appends the next frame to `out`. Every frame differs from the panel's recent ones (zone
    /// counter, sequence, timestamp), so none is taken for a retransmission.
    pub(crate) fn next_frame(&mut self, out: &mut BytesMut) -> Sent {
        use std::fmt::Write;
        self.seq = if self.seq >= 9999 { 1 } else { self.seq + 1 };
        self.counter = self.counter.wrapping_add(1);
        let kind = self.mix.pick(&mut self.rng);
        let zone = self.counter % self.zones;
        // Every other visit to a zone is its restore, so each event changes the zone's state.
        let restore = (self.counter / self.zones) % 2 == 1;
        self.data.clear();
        let _ = match kind {
            FrameKind::Cid => write!(
                self.data,
                "#{}|{}131 {:02} {zone:03}",
                self.account,
                if restore { 3 } else { 1 },
                self.group
            ),
            FrameKind::Sia => write!(
                self.data,
                "#{}|Nri{}/{}{zone:03}",
                self.account,
                self.group,
                if restore { "BR" } else { "BA" }
            ),
            FrameKind::Null => Ok(()),
        };
        let token = match kind {
            FrameKind::Cid => TokenKind::AdmCid,
            FrameKind::Sia => TokenKind::SiaDcs,
            FrameKind::Null => TokenKind::Null,
        };
        let seq_digits = [
            b'0' + (self.seq / 1000) as u8,
            b'0' + (self.seq / 100 % 10) as u8,
            b'0' + (self.seq / 10 % 10) as u8,
            b'0' + (self.seq % 10) as u8,
        ];
        let seq = std::str::from_utf8(&seq_digits).expect("ascii digits");
        let msg = Message {
            token,
            sequence: seq,
            receiver: None,
            prefix: "0",
            account: &self.account,
            data: self.data.as_bytes(),
            xdata: &[],
            timestamp: Some(Timestamp::from_unix(now_unix())),
        };
        let pad: [u8; 16] = self.rng.random();
        encode_message(
            &msg,
            self.key.as_ref().map(|k| (k, pad)),
            Dialect::STANDARD,
            out,
        );
        Sent {
            seq: self.seq,
            kind,
        }
    }

    /// Judges `answer` as the answer to `sent`.
    pub(crate) fn check(&self, answer: &[u8], sent: Sent, buf: &mut Vec<u8>) -> Verdict {
        let Ok(f) = parse_frame(answer, &Quirks::default()) else {
            return self.loose_check(answer, sent);
        };
        match f.header.token.kind {
            TokenKind::Nak => return Verdict::Nak,
            TokenKind::Duh => return Verdict::Duh,
            TokenKind::Ack => {}
            _ => return Verdict::Wrong,
        }
        let seq_ok = f.header.sequence.parse::<u16>().ok() == Some(sent.seq);
        let account_ok = f.header.account == Some(self.account.as_str());
        if !seq_ok || !account_ok || f.header.token.encrypted != self.key.is_some() {
            return Verdict::Wrong;
        }
        if let (Some(key), Content::Encrypted(hex)) = (&self.key, &f.content) {
            // A *ACK must open with the key and carry the receiver's time.
            match decrypt(hex, key, buf) {
                Ok(c) if c.timestamp.valid().is_some() => {}
                _ => return Verdict::Wrong,
            }
        }
        Verdict::Ack
    }

    /// An answer that is not valid DC-09 but plainly acknowledges this frame: `"ACK"` (or
    /// `"*ACK"`) followed by its sequence, with `#account[` after it.
    fn loose_check(&self, answer: &[u8], sent: Sent) -> Verdict {
        let text = String::from_utf8_lossy(answer);
        let seq = format!("{:04}", sent.seq);
        let acked = [format!("\"ACK\"{seq}"), format!("\"*ACK\"{seq}")]
            .iter()
            .any(|t| text.contains(t.as_str()));
        if acked && text.contains(&format!("#{}[", self.account)) {
            Verdict::LooseAck
        } else {
            Verdict::Wrong
        }
    }
}

/// Finds one complete answer frame (LF … CR) at the start of `buf`, skipping anything before
/// the LF; returns where it starts and its end (exclusive).
pub(crate) fn split_answer(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.iter().position(|&b| b == b'\n')?;
    let cr = buf[lf..].iter().position(|&b| b == b'\r')?;
    Some((lf, lf + cr + 1))
}
