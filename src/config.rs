//! `vakt.toml`: the database, the HTTP address, receiver limits, listeners and sites.
//!
//! Every field but the listeners has a default, so a config file holds only what differs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::site::SiteSpec;

/// The config file `vakt serve` runs when given none.
pub const DEFAULT_PATH: &str = "config/vakt.toml";

/// A whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where events and sites are stored.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// The HTTP API and `/metrics`.
    #[serde(default)]
    pub http: HttpConfig,
    /// Validation windows, queue and connection limits.
    #[serde(default)]
    pub receiver: ReceiverConfig,
    /// Sockets to receive DC-09 frames on.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Sites upserted into the database at start-up.
    #[serde(default, rename = "site")]
    pub sites: Vec<SiteSpec>,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (created on first run) or `postgres://user@host/db`.
    pub url: String,
    /// Connections for reads (API, site lookups). Writes use one connection: the group-commit
    /// writer.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://vakt.db".into(),
            max_connections: 4,
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of the JSON API and `/metrics`.
    pub bind: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: ([127, 0, 0, 1], 8080).into(),
        }
    }
}

/// `[receiver]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// Seconds a frame's timestamp may lag the receiver clock.
    pub window_behind_secs: u32,
    /// Seconds a frame's timestamp may lead the receiver clock.
    pub window_ahead_secs: u32,
    /// Also check the window on plain frames that carry a timestamp (always done for encrypted
    /// frames, where DC-09 makes the timestamp mandatory).
    pub check_plain_timestamps: bool,
    /// A frame equal to one stored this many seconds ago or less is a retransmission.
    pub duplicate_window_secs: u32,
    /// Most frame identities remembered for the duplicate check (about 100 bytes each); past
    /// it the oldest are forgotten early (a late retransmission may then be stored twice).
    pub dedup_capacity: usize,
    /// Frames waiting for the writer; when full, connections wait (unacknowledged).
    pub queue_capacity: usize,
    /// Most frames the writer commits in one transaction.
    pub max_batch: usize,
    /// Open TCP connections (and UDP datagrams in flight) per listener.
    pub max_connections: usize,
    /// Longest frame (LF to CR) accepted; longer ones are dropped unanswered.
    pub max_frame_bytes: usize,
    /// A TCP connection with nothing to read for this long is closed.
    pub idle_timeout_secs: u64,
    /// Give up on a frame (send no answer, so the panel retries) when storing it takes longer.
    pub store_timeout_secs: u64,
    /// How long a site read from the database is used before it is read again (site changes
    /// made by `vakt site` or another node take effect within this time).
    pub site_cache_secs: u64,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            window_behind_secs: 40,
            window_ahead_secs: 20,
            check_plain_timestamps: true,
            duplicate_window_secs: 600,
            dedup_capacity: 4_000_000,
            queue_capacity: 8192,
            max_batch: 512,
            max_connections: 4096,
            max_frame_bytes: vakt_protocol::dc09::MAX_FRAME,
            idle_timeout_secs: 300,
            store_timeout_secs: 30,
            site_cache_secs: 10,
        }
    }
}

impl ReceiverConfig {
    /// [`Self::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`Self::store_timeout_secs`] as a duration.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_secs(self.store_timeout_secs)
    }
}

/// Transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerKind {
    /// DC-09 over TCP.
    Tcp,
    /// DC-09 over UDP.
    Udp,
}

impl ListenerKind {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// `[[listener]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name in logs, metrics and stored events (default: kind and address).
    pub name: Option<String>,
    /// `tcp` or `udp`.
    pub kind: ListenerKind,
    /// Address to bind (port 0: any free port, printed at start-up).
    pub bind: SocketAddr,
    /// Receiver number (hex) this listener answers for: a frame with another `R` gets NAK.
    pub receiver: Option<String>,
    /// Account prefix (hex) this listener answers for: a frame with another `L` gets NAK.
    pub prefix: Option<String>,
}

impl ListenerConfig {
    /// The listener's name.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.kind.name(), self.bind))
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config {}", path.display()))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let r = &self.receiver;
        if r.queue_capacity == 0 || r.max_batch == 0 || r.max_connections == 0 {
            bail!("receiver.queue_capacity, max_batch and max_connections must be at least 1");
        }
        for l in &self.listeners {
            for (what, v) in [("receiver", &l.receiver), ("prefix", &l.prefix)] {
                if let Some(v) = v {
                    if crate::site::hex_number(v).is_none() {
                        bail!("listener {}: {what} {v:?} is not 1-6 hex digits", l.label());
                    }
                }
            }
        }
        for s in &self.sites {
            s.check().with_context(|| format!("site {:?}", s.account))?;
        }
        Ok(())
    }
}
