//! The receiver clock (UTC), read in one place.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since 1970-01-01 UTC.
pub fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Seconds since 1970-01-01 UTC.
pub fn unix_secs() -> i64 {
    unix_micros() / 1_000_000
}
