//! The DC-09 timestamp `_HH:MM:SS,MM-DD-YYYY` (UTC) and the receiver's acceptance window
//! (PROTOCOLS.md §1.10). Pure: the caller passes the receiver clock as Unix seconds.

use std::fmt;

use nom::bytes::complete::tag;
use nom::{IResult, Parser};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::error::FrameError;

/// A valid DC-09 timestamp (UTC, second resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix: i64,
}

impl Timestamp {
    /// Bytes in `HH:MM:SS,MM-DD-YYYY` (without the leading `_`).
    pub const LEN: usize = 19;

    /// Reads `HH:MM:SS,MM-DD-YYYY` (no leading `_`); `None` unless it is a real UTC instant.
    pub fn parse(text: &[u8]) -> Option<Self> {
        // A fixed layout: one slice pattern states it more plainly than a combinator chain,
        // and it runs for nearly every frame.
        let &[h1, h2, b':', m1, m2, b':', s1, s2, b',', o1, o2, b'-', d1, d2, b'-', y1, y2, y3, y4] =
            text
        else {
            return None;
        };
        let num = |digits: &[u8]| {
            digits.iter().try_fold(0u16, |acc, &b| {
                b.is_ascii_digit().then(|| acc * 10 + u16::from(b - b'0'))
            })
        };
        let byte = |digits: &[u8]| num(digits).and_then(|n| u8::try_from(n).ok());
        let month = Month::try_from(byte(&[o1, o2])?).ok()?;
        let date =
            Date::from_calendar_date(i32::from(num(&[y1, y2, y3, y4])?), month, byte(&[d1, d2])?)
                .ok()?;
        let time = Time::from_hms(byte(&[h1, h2])?, byte(&[m1, m2])?, byte(&[s1, s2])?).ok()?;
        Some(Self {
            unix: PrimitiveDateTime::new(date, time)
                .assume_utc()
                .unix_timestamp(),
        })
    }

    /// The instant `unix` seconds after 1970-01-01 UTC (clamped to years 0–9999, which the
    /// 4-digit field can write).
    pub fn from_unix(unix: i64) -> Self {
        Self {
            unix: unix.clamp(MIN_UNIX, MAX_UNIX),
        }
    }

    /// Seconds since 1970-01-01 UTC.
    pub fn unix(&self) -> i64 {
        self.unix
    }

    /// Appends `HH:MM:SS,MM-DD-YYYY` (no leading `_`).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// The 19 bytes `HH:MM:SS,MM-DD-YYYY`.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let t =
            OffsetDateTime::from_unix_timestamp(self.unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut b = *b"00:00:00,00-00-0000";
        put2(&mut b[0..2], u32::from(t.hour()));
        put2(&mut b[3..5], u32::from(t.minute()));
        put2(&mut b[6..8], u32::from(t.second()));
        put2(&mut b[9..11], u32::from(u8::from(t.month())));
        put2(&mut b[12..14], u32::from(t.day()));
        let y = u32::try_from(t.year()).unwrap_or(0);
        put2(&mut b[15..17], y / 100);
        put2(&mut b[17..19], y % 100);
        b
    }
}

const MIN_UNIX: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_UNIX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.to_bytes()).unwrap_or_default())
    }
}

/// A timestamp field as received: absent, valid, or present but unreadable. A plain frame with
/// an unreadable clock is still kept (§1.10); only encrypted frames require a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampField<'a> {
    /// No `_…` at the end of the frame.
    Absent,
    /// A valid timestamp.
    Valid(Timestamp),
    /// `_` followed by something that is not a valid timestamp (e.g. month 00, 3-digit year).
    Invalid(&'a [u8]),
}

impl TimestampField<'_> {
    /// The valid timestamp, if there is one.
    pub fn valid(&self) -> Option<Timestamp> {
        match self {
            Self::Valid(t) => Some(*t),
            _ => None,
        }
    }
}

/// How far a message time may be from the receiver clock: DC-09 says up to 40 s behind and
/// 20 s ahead (§1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Seconds the message may lag the receiver clock.
    pub behind: u32,
    /// Seconds the message may lead the receiver clock.
    pub ahead: u32,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            behind: 40,
            ahead: 20,
        }
    }
}

impl Window {
    /// `Ok` if `ts` lies within the window around `now_unix`, else [`FrameError::Stale`] with
    /// the offset (receiver clock minus message time).
    pub fn check(&self, ts: Timestamp, now_unix: i64) -> Result<(), FrameError> {
        let offset_secs = now_unix - ts.unix();
        if offset_secs > i64::from(self.behind) || -offset_secs > i64::from(self.ahead) {
            Err(FrameError::Stale { offset_secs })
        } else {
            Ok(())
        }
    }
}

/// `_` + timestamp, as nom sees it (used for the tail of a data section).
pub(crate) fn timestamp_field(i: &[u8]) -> IResult<&[u8], TimestampField<'_>> {
    let (rest, _) = tag("_").parse(i)?;
    let field = match Timestamp::parse(rest) {
        Some(t) => TimestampField::Valid(t),
        None => TimestampField::Invalid(rest),
    };
    Ok((&rest[rest.len()..], field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back() {
        let t = Timestamp::parse(b"07:50:26,10-26-2018").expect("valid");
        assert_eq!(t.unix(), 1_540_540_226);
        assert_eq!(t.to_string(), "07:50:26,10-26-2018");
    }

    #[test]
    fn rejects_impossible_dates_and_short_years() {
        for bad in [
            "17:53:48,00-31-2019",
            "14:12:04,09-25-201",
            "24:00:00,01-01-2020",
            "12:00:00,02-30-2020",
        ] {
            assert_eq!(Timestamp::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn window_is_40_behind_20_ahead_inclusive() {
        let w = Window::default();
        let t = Timestamp::parse(b"07:50:26,10-26-2018").expect("valid");
        assert!(w.check(t, t.unix() + 40).is_ok());
        assert_eq!(
            w.check(t, t.unix() + 41),
            Err(FrameError::Stale { offset_secs: 41 })
        );
        assert!(w.check(t, t.unix() - 20).is_ok());
        assert_eq!(
            w.check(t, t.unix() - 21),
            Err(FrameError::Stale { offset_secs: -21 })
        );
    }
}
