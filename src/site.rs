//! Sites (DC-09 accounts): what is stored about each, and how a stored site becomes the
//! [`Policy`] its frames are checked with.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use vakt_protocol::dc09::{Key, Quirks};

/// How a configured AES key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyForm {
    /// 32, 48 or 64 hex digits.
    Hex,
    /// 16, 24 or 32 characters used byte for byte (what many panels' menus take).
    Ascii,
}

impl KeyForm {
    /// `hex` or `ascii`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "hex",
            Self::Ascii => "ascii",
        }
    }

    /// Parses the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "hex" => Some(Self::Hex),
            "ascii" => Some(Self::Ascii),
            _ => None,
        }
    }
}

/// A vendor dialect switch (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Quirk {
    /// 2-byte binary CRC (Lupusec, OPAX).
    BinaryCrc,
    /// CRC and length include the CR (ELDES).
    Eldes,
    /// Hex digits in the sequence number (dc09-spt writes message 10 as `000A`).
    HexSequence,
    /// Answer in the panel's own dialect instead of standard DC-09.
    AnswerInDialect,
}

impl Quirk {
    /// The name used in config files, the CLI and the database.
    pub fn name(self) -> &'static str {
        match self {
            Self::BinaryCrc => "binary-crc",
            Self::Eldes => "eldes",
            Self::HexSequence => "hex-sequence",
            Self::AnswerInDialect => "answer-in-dialect",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        [
            Self::BinaryCrc,
            Self::Eldes,
            Self::HexSequence,
            Self::AnswerInDialect,
        ]
        .into_iter()
        .find(|q| q.name() == s)
    }

    /// Quirks from their stored comma-separated form (unknown names are ignored, so an older
    /// binary can read a newer database).
    pub fn parse_list(s: &str) -> Vec<Self> {
        s.split(',').filter_map(Self::from_name).collect()
    }

    /// The stored comma-separated form.
    pub fn join(list: &[Self]) -> String {
        list.iter().map(|q| q.name()).collect::<Vec<_>>().join(",")
    }

    /// The protocol switches for a list of quirks.
    pub fn to_quirks(list: &[Self]) -> Quirks {
        let mut q = Quirks::default();
        for quirk in list {
            match quirk {
                Self::BinaryCrc => q.binary_crc = true,
                Self::Eldes => q.cr_in_crc = true,
                Self::HexSequence => q.hex_sequence = true,
                Self::AnswerInDialect => q.answer_in_dialect = true,
            }
        }
        q
    }
}

/// A site as configured (`[[site]]`, `vakt site add`) and stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// DC-09 account, 3–16 hex digits (stored upper-case).
    pub account: String,
    /// What operators call the site.
    #[serde(default)]
    pub name: String,
    /// Account prefix (`L`, hex) the site must use, when set.
    pub prefix: Option<String>,
    /// Receiver number (`R`, hex) the site must use, when set.
    pub receiver: Option<String>,
    /// AES key as hex digits.
    pub key_hex: Option<String>,
    /// AES key as ASCII text used byte for byte.
    pub key_ascii: Option<String>,
    /// Refuse plaintext frames (NAK).
    #[serde(default)]
    pub encryption_required: bool,
    /// Vendor dialect switches.
    #[serde(default)]
    pub quirks: Vec<Quirk>,
    /// Seconds between the panel's `NULL` supervision messages, when it sends them.
    pub supervision_secs: Option<u32>,
    /// The revoke code as an argon2id PHC string (`vakt site hash-code`); never the code.
    /// Stored apart from the site (`site_codes`), so a stored site reads back without it.
    pub revoke_code_hash: Option<String>,
    /// The main code, likewise.
    pub main_code_hash: Option<String>,
}

impl SiteSpec {
    /// Checks every field, so that a bad site is refused when it is entered rather than when
    /// its first alarm arrives.
    pub fn check(&self) -> Result<()> {
        let a = &self.account;
        if !(3..=16).contains(&a.len()) || !a.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("account {a:?} is not 3-16 hex digits");
        }
        for (what, v) in [("prefix", &self.prefix), ("receiver", &self.receiver)] {
            if let Some(v) = v {
                if hex_number(v).is_none() {
                    bail!("{what} {v:?} is not 1-6 hex digits");
                }
            }
        }
        if self.key_hex.is_some() && self.key_ascii.is_some() {
            bail!("give key_hex or key_ascii, not both");
        }
        if let Some((form, text)) = self.key() {
            parse_key(form, text)?;
        }
        if self.encryption_required && self.key().is_none() {
            bail!("encryption_required needs a key");
        }
        for (what, h) in [
            ("revoke_code_hash", &self.revoke_code_hash),
            ("main_code_hash", &self.main_code_hash),
        ] {
            if let Some(h) = h {
                crate::codes::check_hash(h).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            }
        }
        if self.revoke_code_hash.is_some() && self.revoke_code_hash == self.main_code_hash {
            bail!("revoke_code_hash and main_code_hash are the same hash");
        }
        Ok(())
    }

    /// The key text and its form, if the site has a key.
    pub fn key(&self) -> Option<(KeyForm, &str)> {
        match (&self.key_hex, &self.key_ascii) {
            (Some(h), _) => Some((KeyForm::Hex, h)),
            (None, Some(a)) => Some((KeyForm::Ascii, a)),
            (None, None) => None,
        }
    }

    /// The account as stored and looked up.
    pub fn normalized_account(&self) -> String {
        self.account.to_ascii_uppercase()
    }
}

/// Reads a key in its declared form.
pub fn parse_key(form: KeyForm, text: &str) -> Result<Key> {
    let key = match form {
        KeyForm::Hex => Key::from_hex(text),
        KeyForm::Ascii => Key::from_ascii(text),
    };
    key.map_err(|e| anyhow::anyhow!("key ({}): {e}", form.name()))
}

/// The value of a DC-09 `R`/`L` field (1–6 hex digits), so `L0` and `L000` compare equal.
pub fn hex_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 6 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A site read from the database, with its key parsed once.
#[derive(Debug, Clone)]
pub struct Site {
    /// As stored.
    pub spec: SiteSpec,
    /// The parsed key.
    pub key: Option<Key>,
    /// The protocol switches.
    pub quirks: Quirks,
}

impl Site {
    /// Parses a stored site; a key that no longer parses is reported, not ignored.
    pub fn new(spec: SiteSpec) -> Result<Self> {
        let key = spec.key().map(|(f, t)| parse_key(f, t)).transpose()?;
        let quirks = Quirk::to_quirks(&spec.quirks);
        Ok(Self { spec, key, quirks })
    }

    /// JSON for the API and `vakt site show`: never the key itself.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.spec;
        serde_json::json!({
            "account": s.account,
            "name": s.name,
            "prefix": s.prefix,
            "receiver": s.receiver,
            "key": self.key.as_ref().map(|k| serde_json::json!({
                "form": s.key().map(|(f, _)| f.name()),
                "bits": k.bits(),
            })),
            "encryption_required": s.encryption_required,
            "quirks": s.quirks.iter().map(|q| q.name()).collect::<Vec<_>>(),
            "supervision_secs": s.supervision_secs,
        })
    }
}
