//! SIA DC-03 data. Invariants: accepted data yields at least one event; every event's code is
//! two uppercase letters and its text lies inside the input; the ADM-CID parser on the same bytes
//! never yields a qualifier outside 1/3/6.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vakt_protocol::contact_id::parse_adm_cid;
use vakt_protocol::event::sia_events;
use vakt_protocol::sia_dcs::parse_sia_data;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = parse_sia_data(data) {
        let events = sia_events(&d);
        assert!(!events.is_empty(), "accepted SIA data without events");
        for e in &d.events {
            assert!(e.code.len() == 2 && e.code.bytes().all(|b| b.is_ascii_uppercase()));
            if let Some(t) = e.text {
                let inside = data.as_ptr_range().contains(&t.as_ptr()) || t.is_empty();
                assert!(inside, "text not borrowed from the input");
            }
        }
    }
    if let Ok(c) = parse_adm_cid(data) {
        assert!(matches!(c.qualifier.digit(), b'1' | b'3' | b'6'));
        assert_eq!(c.code.len(), 3);
    }
});
