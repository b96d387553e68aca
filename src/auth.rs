//! Operators' bearer tokens and roles.
//!
//! A token is 32 random bytes shown once (`vakt_` and 64 hex digits); the database keeps its
//! SHA-256. A slow hash buys nothing here: a token is not guessable, unlike a site code, and
//! every API request checks one.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Works alarms, verifies codes, reads and (with a verified code) changes contacts and codes.
    Operator,
    /// All that, and manages sites and operators and reads the audit log.
    Admin,
}

impl Role {
    /// `operator` or `admin`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses [`Role::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: Role,
}

/// A new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let mut t = String::with_capacity(5 + 64);
    t.push_str("vakt_");
    for b in bytes {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An operator name: 1–64 letters, digits, `.`, `_`, `-` (it appears in the audit log and in
/// every alarm's history, so no spaces or look-alike control characters).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "operator name {name:?} must be 1-64 letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 69);
        assert!(a.starts_with("vakt_"));
        let h = token_hash(&a);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(&a[5..]));
        assert_eq!(h, token_hash(&a));
    }

    #[test]
    fn names() {
        assert!(check_name("anna.berg").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("anna berg").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
    }
}
