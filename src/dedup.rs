//! Recognising retransmissions: a frame whose content was stored within the duplicate window
//! is acknowledged again but not stored twice (PROTOCOLS.md §1.5).
//!
//! A frame's identity is a 16-byte SHA-256 prefix of everything that makes it "the same
//! message" (see `pipeline::dedup_key`). The writer keeps the identities of the window in
//! memory and stores each with its event rows, so after a restart the window is read back from
//! the events table; with PostgreSQL, nodes sharing the database also claim identities in the
//! `dedup` table, so a retransmission that fails over to another node is still stored once.
//!
//! When the memory bound is reached the oldest identities are forgotten early: the price is
//! that a very late retransmission may be stored twice, never that an event is dropped.

use std::collections::VecDeque;
use std::ops::Index;

use foldhash::{HashMap, HashMapExt};
use sha2::{Digest, Sha256};

/// A frame's identity.
pub type Key = [u8; 16];

/// Hashes the text that identifies a frame.
pub fn key_of(text: &[u8]) -> Key {
    let digest = Sha256::digest(text);
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// A table smaller than this grows in one step, as `HashMap` does (a millisecond or less).
const GROW_IN_STEPS_FROM: usize = 8192;
/// Entries moved from the outgrown table per insert: enough that it is empty long before the
/// new one (twice its size) is full again.
const MOVE_PER_INSERT: usize = 4;

/// Identities seen within the window, oldest first.
///
/// Neither part grows by copying itself. `HashMap` doubles by rehashing every entry at once,
/// which on the reference VM took 37 ms at 0.9 million identities and 72 ms at 1.8 million
/// (`cargo bench --bench dedup_growth`), and the writer, with every ACK waiting on it, would
/// stall that long whenever a busy station's window passed such a size. Here a full table is
/// set aside (`old`) and a new one of twice its size takes the inserts, while each insert
/// moves a few entries across; lookups look in both until `old` is empty. The order of arrival
/// is kept in blocks (a `VecDeque` doubling copies itself: 54 ms at 4.2 million).
#[derive(Debug)]
pub struct Window {
    seen: HashMap<Key, i64>,
    /// The outgrown table, emptied a few entries per insert.
    old: HashMap<Key, i64>,
    order: Fifo,
    /// `order[..unmoved]` are the entries whose key may still be in `old` alone.
    unmoved: usize,
    window_micros: i64,
    capacity: usize,
}

impl Window {
    /// An empty window of `window_micros`, holding at most `capacity` identities.
    pub fn new(window_micros: i64, capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            old: HashMap::new(),
            order: Fifo::default(),
            unmoved: 0,
            window_micros,
            capacity: capacity.max(1),
        }
    }

    /// Forgets identities older than the window, and the oldest beyond the capacity.
    pub fn expire(&mut self, now_micros: i64) {
        let cutoff = now_micros.saturating_sub(self.window_micros);
        while let Some(&(at, key)) = self.order.front() {
            if at >= cutoff && self.order.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            self.unmoved = self.unmoved.saturating_sub(1);
            // Only if this entry is the one recorded (a key re-seen later has a newer time).
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            } else if self.in_old(&key) == Some(&at) {
                self.old.remove(&key);
            }
        }
        self.drop_old_when_moved();
    }

    /// Whether `key` was seen within the window.
    pub fn contains(&self, key: &Key, now_micros: i64) -> bool {
        self.seen
            .get(key)
            .or_else(|| self.in_old(key))
            .is_some_and(|&at| at >= now_micros.saturating_sub(self.window_micros))
    }

    /// Records `key` as seen at `at_micros`.
    pub fn insert(&mut self, key: Key, at_micros: i64) {
        if self.seen.len() == self.seen.capacity()
            && self.seen.len() >= GROW_IN_STEPS_FROM
            && self.old.is_empty()
        {
            let bigger = HashMap::with_capacity(2 * self.seen.capacity());
            self.old = std::mem::replace(&mut self.seen, bigger);
            self.unmoved = self.order.len();
        }
        if !self.old.is_empty() {
            // Re-seen before it moved: `seen` holds it from now on.
            self.old.remove(&key);
        }
        self.seen.insert(key, at_micros);
        self.order.push_back((at_micros, key));
        self.move_some();
    }

    /// `key`'s time in the outgrown table; without one, not even hashed (a lookup in an
    /// empty `HashMap` still hashes the key).
    fn in_old(&self, key: &Key) -> Option<&i64> {
        if self.old.is_empty() {
            None
        } else {
            self.old.get(key)
        }
    }

    /// Moves a few entries of `old` into `seen`, newest of the unmoved first.
    fn move_some(&mut self) {
        for _ in 0..MOVE_PER_INSERT {
            if self.unmoved == 0 {
                break;
            }
            self.unmoved -= 1;
            let (_, key) = self.order[self.unmoved];
            if let Some(at) = self.old.remove(&key) {
                self.seen.insert(key, at);
            }
        }
        self.drop_old_when_moved();
    }

    /// Every key of `old` has its entry in `order[..unmoved]`: once those are moved or
    /// expired, `old` is empty and its memory goes back.
    fn drop_old_when_moved(&mut self) {
        if self.unmoved == 0 && self.old.capacity() > 0 {
            debug_assert!(self.old.is_empty());
            let old = std::mem::take(&mut self.old);
            // Handing back a table of millions of entries takes milliseconds of unmapping
            // (4 ms at 1.8 million); not on the writer's time.
            let freed = std::thread::Builder::new()
                .name("vakt-dedup-free".into())
                .spawn(move || drop(old));
            if let Err(e) = freed {
                tracing::debug!(error = %e, "no thread to free the outgrown table; it stays");
            }
        }
    }

    /// Identities held.
    pub fn len(&self) -> usize {
        self.seen.len() + self.old.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an outgrown table is still being emptied.
    pub fn growing(&self) -> bool {
        !self.old.is_empty()
    }
}

/// Entries per block of [`Fifo`]: 96 KiB.
const BLOCK: usize = 4096;

/// A first-in, first-out queue in fixed-size blocks: it grows by a block at a time and never
/// copies what it holds.
#[derive(Debug, Default)]
struct Fifo {
    blocks: VecDeque<Vec<(i64, Key)>>,
    /// Where the front entry is in the first block.
    head: usize,
    len: usize,
}

impl Fifo {
    fn push_back(&mut self, entry: (i64, Key)) {
        if self.blocks.back().is_none_or(|b| b.len() == BLOCK) {
            self.blocks.push_back(Vec::with_capacity(BLOCK));
        }
        self.blocks.back_mut().expect("a block").push(entry);
        self.len += 1;
    }

    fn front(&self) -> Option<&(i64, Key)> {
        (self.len > 0).then(|| &self.blocks[0][self.head])
    }

    fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        self.head += 1;
        if self.head == BLOCK || self.len == 0 {
            self.blocks.pop_front();
            self.head = 0;
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl Index<usize> for Fifo {
    type Output = (i64, Key);

    fn index(&self, i: usize) -> &(i64, Key) {
        assert!(i < self.len, "index {i} of {}", self.len);
        let at = self.head + i;
        &self.blocks[at / BLOCK][at % BLOCK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_the_window_and_forgets_after() {
        let mut w = Window::new(1_000, 10);
        let k = key_of(b"1234|0|ADM-CID|0001|#1234|1131 01 015");
        assert!(!w.contains(&k, 0));
        w.insert(k, 0);
        assert!(w.contains(&k, 999));
        assert!(w.contains(&k, 1_000));
        assert!(!w.contains(&k, 1_001));
        w.expire(1_001);
        assert!(w.is_empty());
    }

    #[test]
    fn capacity_forgets_the_oldest_first() {
        let mut w = Window::new(1_000_000, 2);
        let keys: Vec<Key> = (0..3u8).map(|i| key_of(&[i])).collect();
        for (i, k) in keys.iter().enumerate() {
            w.insert(*k, i as i64);
        }
        w.expire(3);
        assert_eq!(w.len(), 2);
        assert!(!w.contains(&keys[0], 3));
        assert!(w.contains(&keys[1], 3) && w.contains(&keys[2], 3));
    }

    /// Through several growths, with keys re-seen and the window moving on, the window answers
    /// as a plain map of each key's latest time would, and every outgrown table is emptied.
    #[test]
    fn grows_in_steps_and_answers_as_a_plain_map() {
        let mut w = Window::new(30_000, usize::MAX);
        let mut model: HashMap<Key, i64> = HashMap::new();
        let mut grew = 0;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for now in 0..100_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // One in four a key seen before (from the last 40,000), so some are re-seen
            // inside the window and some after it.
            let n = if x % 4 == 0 {
                now - (x as i64 >> 8).rem_euclid(40_000.min(now + 1))
            } else {
                now
            };
            let key = key_of(&n.to_le_bytes());
            assert_eq!(
                w.contains(&key, now),
                model.get(&key).is_some_and(|&at| at >= now - 30_000),
                "key {n} at {now}"
            );
            w.expire(now);
            w.insert(key, now);
            model.insert(key, now);
            if w.growing() {
                grew += 1;
            }
        }
        assert!(grew > 0, "the table never grew in steps");
        assert!(!w.growing(), "an outgrown table was left");
        model.retain(|_, at| *at >= 100_000 - 1 - 30_000);
        assert_eq!(w.len(), model.len());
    }

    /// The block queue against `VecDeque`, across block boundaries and after running empty.
    #[test]
    fn fifo_keeps_order_across_blocks() {
        let mut fifo = Fifo::default();
        let mut model = VecDeque::new();
        let mut n = 0i64;
        for round in 0..6 {
            for _ in 0..(BLOCK * 2 + 17 * round) {
                fifo.push_back((n, [0; 16]));
                model.push_back((n, [0; 16]));
                n += 1;
            }
            let keep = if round == 3 { 0 } else { 100 * round };
            while model.len() > keep {
                assert_eq!(fifo.front(), model.front());
                fifo.pop_front();
                model.pop_front();
            }
            assert_eq!(fifo.len(), model.len());
            for i in 0..model.len() {
                assert_eq!(fifo[i], model[i]);
            }
        }
        fifo.pop_front();
        assert_eq!(fifo.len(), model.len().saturating_sub(1));
    }

    #[test]
    fn different_text_different_key() {
        assert_ne!(key_of(b"a|0001"), key_of(b"a|0002"));
        assert_eq!(key_of(b"same"), key_of(b"same"));
    }
}
