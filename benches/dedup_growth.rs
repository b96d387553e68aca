//! The duplicate window's growth: the longest single insert while 4.2 million identities go
//! in, for a plain `HashMap` (which rehashes everything when it doubles) and for
//! `vakt::dedup::Window` (which moves the outgrown table across a few entries per insert).
//! Every frame's ACK waits on the writer, and the writer on these inserts.
//!
//!     cargo bench --bench dedup_growth
//!
//! Prints, per doubling of the plain map, its insert's time, the window's inserts over 2 ms,
//! then the worst insert of each and the time of all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vakt::dedup::{key_of, Key, Window};

const N: i64 = 4_200_000;

fn main() {
    let keys: Vec<Key> = (0..N).map(|i| key_of(&i.to_le_bytes())).collect();

    let mut plain: HashMap<Key, i64> = HashMap::new();
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    for (i, k) in keys.iter().enumerate() {
        let before = plain.capacity();
        let t = Instant::now();
        plain.insert(*k, i as i64);
        let took = t.elapsed();
        worst = worst.max(took);
        if plain.capacity() != before && before >= 100_000 {
            println!("HashMap doubling at {i:>9} identities: {:7.2} ms", ms(took));
        }
    }
    let plain_total = started.elapsed();
    drop(plain);

    // A window longer than the run and no capacity bound: nothing expires, as while a busy
    // station's window first fills.
    let mut window = Window::new(i64::MAX, usize::MAX);
    let mut window_worst = Duration::ZERO;
    let started = Instant::now();
    for (i, k) in keys.iter().enumerate() {
        let t = Instant::now();
        window.insert(*k, i as i64);
        let took = t.elapsed();
        window_worst = window_worst.max(took);
        if took > Duration::from_millis(2) {
            println!("Window insert at {i:>9} identities:    {:7.2} ms", ms(took));
        }
    }
    let window_total = started.elapsed();
    assert_eq!(window.len(), keys.len());

    println!(
        "worst single insert of {N} identities: HashMap {:.2} ms, Window {:.2} ms",
        ms(worst),
        ms(window_worst)
    );
    println!(
        "all inserts: HashMap {:.0} ms, Window {:.0} ms",
        ms(plain_total),
        ms(window_total)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
