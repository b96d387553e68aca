//! Site codes: what a code may look like, argon2id hashing, and verification off the async
//! runtime's core threads.
//!
//! A site has a revoke code (revoke an alarm, prove who you are) and a main code (all that, and
//! changing the codes). Only argon2id PHC strings are kept. A verification hashes the given
//! code against both stored hashes, so how long it takes does not say which one matched.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use serde::Serialize;
use tokio::sync::Semaphore;

/// What a code grants, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Revoke,
    Main,
}

impl Level {
    /// `none`, `revoke` or `main`: the API's answer and the audit log's outcome.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Revoke => "revoke",
            Self::Main => "main",
        }
    }

    /// Parses [`Level::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::None, Self::Revoke, Self::Main]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

/// Why a code or a stored hash was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    /// Shorter than [`MIN_LEN`] or longer than [`MAX_LEN`] characters.
    Length,
    /// A control character (a code is read aloud or typed, never a line break or a tab).
    Control,
    /// Not an argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    NotArgon2id,
    /// The same code for both levels would make every revoke a main-code verification.
    SameCodes,
}

impl std::fmt::Display for CodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length => write!(f, "a code is {MIN_LEN} to {MAX_LEN} characters"),
            Self::Control => write!(f, "a code must not contain control characters"),
            Self::NotArgon2id => write!(f, "not an argon2id PHC string ($argon2id$v=19$…)"),
            Self::SameCodes => write!(f, "the revoke and main codes must differ"),
        }
    }
}

impl std::error::Error for CodeError {}

/// The shortest code (a four-digit PIN).
pub const MIN_LEN: usize = 4;
/// The longest code (a pass phrase).
pub const MAX_LEN: usize = 64;

/// The argon2id cost of new hashes: 19 MiB, 2 passes, 1 lane (the OWASP recommendation for
/// argon2id). About 14 ms a hash on one core of the reference machine (`cargo bench --bench codes`); a
/// verification does two, 27 ms.
/// Stored hashes carry their own parameters, so raising these only affects new codes.
pub fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// A code as entered: surrounding spaces dropped, length and characters checked.
pub fn normalize(code: &str) -> Result<&str, CodeError> {
    let code = code.trim();
    if code.chars().any(char::is_control) {
        return Err(CodeError::Control);
    }
    if !(MIN_LEN..=MAX_LEN).contains(&code.chars().count()) {
        return Err(CodeError::Length);
    }
    Ok(code)
}

/// Hashes a code (CPU-heavy: call it from a blocking thread).
pub fn hash(code: &str) -> Result<String, CodeError> {
    let code = normalize(code)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let h = hasher()
        .hash_password_with_salt(code.as_bytes(), &salt)
        .expect("argon2 with a 16-byte salt and valid parameters cannot fail");
    Ok(h.to_string())
}

/// Checks that a configured hash is an argon2id PHC string.
pub fn check_hash(phc: &str) -> Result<(), CodeError> {
    match PasswordHash::new(phc) {
        Ok(h) if h.algorithm.as_str() == "argon2id" && h.hash.is_some() => Ok(()),
        _ => Err(CodeError::NotArgon2id),
    }
}

fn matches(code: &str, phc: Option<&str>) -> bool {
    phc.is_some_and(|phc| hasher().verify_password(code.as_bytes(), phc).is_ok())
}

/// A site's stored hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashes {
    pub revoke: Option<String>,
    pub main: Option<String>,
}

impl Hashes {
    /// Whether any code is set.
    pub fn any(&self) -> bool {
        self.revoke.is_some() || self.main.is_some()
    }
}

/// The level `code` grants against `hashes` (CPU-heavy: both hashes are always computed).
pub fn level(code: &str, hashes: &Hashes) -> Level {
    let Ok(code) = normalize(code) else {
        return Level::None;
    };
    let main = matches(code, hashes.main.as_deref());
    let revoke = matches(code, hashes.revoke.as_deref());
    if main {
        Level::Main
    } else if revoke {
        Level::Revoke
    } else {
        Level::None
    }
}

/// Runs argon2 on tokio's blocking threads, at most `parallel` at once: a burst of
/// verifications waits its turn instead of taking every core (and 19 MiB a hash) from the
/// event path.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// One hash at a time by default: on a two-core machine the other core stays with events.
    pub fn new(parallel: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(parallel.max(1))),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        tokio::task::spawn_blocking(f)
            .await
            .expect("argon2 does not panic")
    }

    /// [`level`] off the runtime.
    pub async fn level(&self, code: String, hashes: Hashes) -> Level {
        self.run(move || level(&code, &hashes)).await
    }

    /// [`hash`] of each code off the runtime.
    pub async fn hash_all(&self, codes: Vec<String>) -> Result<Vec<String>, CodeError> {
        self.run(move || codes.iter().map(|c| hash(c)).collect())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        let h = Hashes {
            revoke: Some(hash("1234").unwrap()),
            main: Some(hash("orange tree").unwrap()),
        };
        assert_eq!(level("1234", &h), Level::Revoke);
        assert_eq!(level(" orange tree ", &h), Level::Main);
        assert_eq!(level("1235", &h), Level::None);
        assert_eq!(level("", &h), Level::None);
        assert_eq!(level("1234", &Hashes::default()), Level::None);
        assert!(Level::Main > Level::Revoke && Level::Revoke > Level::None);
    }

    #[test]
    fn hashes_are_salted_argon2id_and_never_the_code() {
        let a = hash("4711").unwrap();
        let b = hash("4711").unwrap();
        assert_ne!(a, b, "a fresh salt per hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(!a.contains("4711"));
        check_hash(&a).unwrap();
        assert_eq!(check_hash("4711"), Err(CodeError::NotArgon2id));
        let argon2i = a.replacen("argon2id", "argon2i", 1);
        assert_eq!(check_hash(&argon2i), Err(CodeError::NotArgon2id));
    }

    #[test]
    fn code_rules() {
        assert_eq!(normalize(" 1234 "), Ok("1234"));
        assert_eq!(normalize("123"), Err(CodeError::Length));
        assert_eq!(normalize(&"x".repeat(65)), Err(CodeError::Length));
        assert_eq!(normalize("12\n34"), Err(CodeError::Control));
        assert_eq!(normalize("blå häst"), Ok("blå häst"));
    }
}
