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

use std::collections::{HashMap, VecDeque};

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

/// Identities seen within the window, oldest first.
#[derive(Debug)]
pub struct Window {
    seen: HashMap<Key, i64>,
    order: VecDeque<(i64, Key)>,
    window_micros: i64,
    capacity: usize,
}

impl Window {
    /// An empty window of `window_micros`, holding at most `capacity` identities.
    pub fn new(window_micros: i64, capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            order: VecDeque::new(),
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
            // Only if this entry is the one recorded (a key re-seen later has a newer time).
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            }
        }
    }

    /// Whether `key` was seen within the window.
    pub fn contains(&self, key: &Key, now_micros: i64) -> bool {
        self.seen
            .get(key)
            .is_some_and(|&at| at >= now_micros.saturating_sub(self.window_micros))
    }

    /// Records `key` as seen at `at_micros`.
    pub fn insert(&mut self, key: Key, at_micros: i64) {
        self.seen.insert(key, at_micros);
        self.order.push_back((at_micros, key));
    }

    /// Identities held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
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

    #[test]
    fn different_text_different_key() {
        assert_ne!(key_of(b"a|0001"), key_of(b"a|0002"));
        assert_eq!(key_of(b"same"), key_of(b"same"));
    }
}
