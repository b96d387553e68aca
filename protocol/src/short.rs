//! [`Short`]: a short ASCII field kept inline, so events need neither heap nor borrowed lifetimes.

use std::fmt;
use std::ops::Deref;

/// An ASCII string of at most [`Short::CAPACITY`] bytes stored inline (`Copy`, no allocation).
///
/// Accounts, partitions, zones, users, receiver and line numbers all fit: the longest is a
/// 16-digit DC-09 account (PROTOCOLS.md §1.7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Short {
    len: u8,
    bytes: [u8; Self::CAPACITY],
}

impl Short {
    /// The most bytes a `Short` holds.
    pub const CAPACITY: usize = 16;

    /// The empty string.
    pub const EMPTY: Self = Self {
        len: 0,
        bytes: [0; Self::CAPACITY],
    };

    /// Copies `s` if it is ASCII and short enough.
    pub fn new(s: &[u8]) -> Option<Self> {
        if s.len() > Self::CAPACITY || !s.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; Self::CAPACITY];
        bytes[..s.len()].copy_from_slice(s);
        Some(Self {
            len: s.len() as u8,
            bytes,
        })
    }

    /// The bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`, `map`), so this cannot fail; the
        // fallback keeps the function total without an `unwrap`.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// A copy with every byte passed through `f` (which must keep bytes ASCII).
    pub(crate) fn map(mut self, f: impl Fn(u8) -> u8) -> Self {
        for b in &mut self.bytes[..usize::from(self.len)] {
            let mapped = f(*b);
            *b = if mapped.is_ascii() { mapped } else { *b };
        }
        self
    }
}

impl Deref for Short {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Short {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Short {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_sixteen_ascii_bytes_and_no_more() {
        let s = Short::new(b"0123456789ABCDEF").expect("16 bytes fit");
        assert_eq!(s, "0123456789ABCDEF");
        assert!(Short::new(b"0123456789ABCDEF0").is_none());
        assert!(Short::new("å".as_bytes()).is_none());
    }
}
