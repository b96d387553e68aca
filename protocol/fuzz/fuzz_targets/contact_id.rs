//! Raw 16-digit Contact ID. Invariants: an accepted string's digit sum is a multiple of 15, and
//! re-encoding its fields reproduces it (after `A` → `0`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vakt_protocol::contact_id::{digit_sum, encode_dc05, parse_dc05};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = parse_dc05(data) {
        let t = data.trim_ascii();
        assert_eq!(digit_sum(t).map(|s| s % 15), Some(0));
        let e = d.event;
        let again = encode_dc05(e.account.as_deref().unwrap_or_default(), &d.message_type, e.qualifier, &e.code, &e.group, &e.zone_or_user)
            .expect("fields of an accepted string re-encode");
        let normalised: Vec<u8> = t[..15].iter().map(|&b| if b == b'A' { b'0' } else { b }).collect();
        assert_eq!(&again[..15], &normalised[..]);
    }
});
