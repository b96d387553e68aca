//! Small nom building blocks shared by the format parsers.

use nom::bytes::complete::take_while_m_n;
use nom::{IResult, Parser};

/// Between `min` and `max` hex digits (either case), as text.
pub(crate) fn hex_run(min: usize, max: usize) -> impl Fn(&[u8]) -> IResult<&[u8], &str> {
    move |i| {
        take_while_m_n(min, max, |b: u8| b.is_ascii_hexdigit())
            .map(ascii)
            .parse(i)
    }
}

/// A slice already checked to be ASCII, as `&str`.
pub(crate) fn ascii(b: &[u8]) -> &str {
    // Callers only pass bytes matched by ASCII-only predicates, so this never falls back.
    std::str::from_utf8(b).unwrap_or_default()
}

/// Text for display and JSON: UTF-8 when it is, otherwise Latin-1 (the usual 8-bit panel text).
pub fn lossy_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => b.iter().map(|&c| char::from(c)).collect(),
    }
}
