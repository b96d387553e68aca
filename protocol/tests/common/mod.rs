//! Shared helpers for the protocol tests: where the shared vectors live and how to read them.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use serde_json::Value;

/// `../shared/vectors` beside the checkout (override with `VAKT_SHARED=/path/to/shared`).
/// Missing vectors fail the test: they are the floor of what vakt must decode.
pub fn vectors_dir() -> PathBuf {
    let shared = std::env::var_os("VAKT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("vectors");
    assert!(
        dir.is_dir(),
        "test vectors not found at {} (set VAKT_SHARED)",
        dir.display()
    );
    dir
}

/// One vector file, parsed.
pub fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The exact bytes of a `raw` string: every char is one byte (latin-1), as the files say.
pub fn bytes(raw: &str) -> Vec<u8> {
    raw.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("vector raw strings are latin-1"))
        .collect()
}

/// A string field, or `None` for null/missing.
pub fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
