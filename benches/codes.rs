//! What a site-code check costs: one argon2id hash (a new code), and one verification (the
//! given code against both stored hashes, as every verify and revoke does). Guessing is meant
//! to be slow; this says how slow, and so how many checks a second one core can do.
//! Run: `cargo bench --bench codes`.

use criterion::{criterion_group, criterion_main, Criterion};
use vakt::codes::{hash, level, Hashes, Level};

fn codes(c: &mut Criterion) {
    let hashes = Hashes {
        revoke: Some(hash("tulpan-2468").unwrap()),
        main: Some(hash("blå häst 7913").unwrap()),
    };
    let mut g = c.benchmark_group("codes");
    g.sample_size(30);
    g.bench_function("hash a new code", |b| {
        b.iter(|| hash("ny-kod-1111").unwrap())
    });
    g.bench_function("verify (both hashes)", |b| {
        b.iter(|| assert_eq!(level("tulpan-2469", &hashes), Level::None))
    });
    g.finish();
}

criterion_group!(benches, codes);
criterion_main!(benches);
