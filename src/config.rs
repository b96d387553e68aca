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
    /// Automation outputs fed with every stored event.
    #[serde(default, rename = "output")]
    pub outputs: Vec<OutputConfig>,
    /// The alarm queue.
    #[serde(default)]
    pub alarms: AlarmsConfig,
    /// Site supervision (communication failure when a site goes quiet).
    #[serde(default)]
    pub supervision: SupervisionSection,
    /// Site codes: guessing limits and how long a verification lasts.
    #[serde(default)]
    pub codes: CodesConfig,
}

/// `[codes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodesConfig {
    /// Wrong codes for one site within `failure_window_secs` that lock its verification.
    pub max_failures: u32,
    /// The window wrong codes are counted in.
    pub failure_window_secs: u64,
    /// How long a site's verification stays locked.
    pub lockout_secs: u64,
    /// How long an operator's verification of a site's code allows changes that need it
    /// (contact persons with either code, codes with the main code).
    pub verified_for_secs: u64,
}

impl Default for CodesConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            failure_window_secs: 15 * 60,
            lockout_secs: 15 * 60,
            verified_for_secs: 5 * 60,
        }
    }
}

/// `[alarms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    /// A site's alarm event joins its newest open alarm when that opened at most this many
    /// seconds ago; later, it opens a new alarm.
    pub join_window_secs: u64,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            join_window_secs: 600,
        }
    }
}

/// `[supervision]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSection {
    /// How often (milliseconds) last-seen times are written and overdue sites looked for.
    pub check_every_ms: u64,
    /// Seconds past its deadline (last message + the site's `supervision_secs`) before a
    /// site's communication failure is raised.
    pub grace_secs: u64,
}

impl Default for SupervisionSection {
    fn default() -> Self {
        Self {
            check_every_ms: 1000,
            grace_secs: 30,
        }
    }
}

impl SupervisionSection {
    /// As the writer takes it.
    pub fn settings(&self) -> crate::supervision::SupervisionConfig {
        crate::supervision::SupervisionConfig {
            check_every: Duration::from_millis(self.check_every_ms),
            grace: Duration::from_secs(self.grace_secs),
        }
    }
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
    /// Run the writer (and its SQLite connection) on this CPU and vakt's other threads on the
    /// remaining ones (see `cpu.rs`); unset: the scheduler places every thread.
    pub writer_cpu: Option<usize>,
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
            writer_cpu: None,
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
    /// A receiver's automation output or raw Contact ID on a serial port.
    Serial,
}

impl ListenerKind {
    /// `tcp`, `udp` or `serial`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Serial => "serial",
        }
    }
}

/// What a serial listener reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SerialFormat {
    /// Sur-Gard (MLR2 family) automation packets ending in DC4; Bosch `a`/`S` packets too.
    Surgard,
    /// Raw 16-digit Contact ID (DC-05) lines with their check digit, ending in CR or LF.
    ContactId,
}

/// Parity of a serial port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

/// Line settings of a serial port, from the `device`, `baud`, `data_bits`, `parity` and
/// `stop_bits` fields of a listener or output (default 9600 8N1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialPort {
    /// Device path, e.g. `/dev/ttyUSB0` or `/dev/serial/by-id/…` (stable across re-plugging).
    pub device: String,
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
}

impl SerialPort {
    fn from_fields(
        device: &Option<String>,
        baud: Option<u32>,
        data_bits: Option<u8>,
        parity: Option<Parity>,
        stop_bits: Option<u8>,
    ) -> Option<Self> {
        Some(Self {
            device: device.clone()?,
            baud: baud.unwrap_or(9600),
            data_bits: data_bits.unwrap_or(8),
            parity: parity.unwrap_or_default(),
            stop_bits: stop_bits.unwrap_or(1),
        })
    }

    fn check(&self) -> Result<()> {
        if !(5..=8).contains(&self.data_bits) {
            bail!("data_bits must be 5 to 8, not {}", self.data_bits);
        }
        if !(1..=2).contains(&self.stop_bits) {
            bail!("stop_bits must be 1 or 2, not {}", self.stop_bits);
        }
        if self.baud == 0 {
            bail!("baud must be above 0");
        }
        Ok(())
    }

    /// `9600 8N1` style.
    pub fn describe(&self) -> String {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        format!("{} {}{}{}", self.baud, self.data_bits, p, self.stop_bits)
    }
}

/// `[[listener]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name in logs, metrics and stored events (default: kind and address or device).
    pub name: Option<String>,
    /// `tcp`, `udp` or `serial`.
    pub kind: ListenerKind,
    /// Address to bind (port 0: any free port, printed at start-up). TCP and UDP.
    pub bind: Option<SocketAddr>,
    /// Receiver number (hex) this listener answers for: a frame with another `R` gets NAK.
    pub receiver: Option<String>,
    /// Account prefix (hex) this listener answers for: a frame with another `L` gets NAK.
    pub prefix: Option<String>,
    /// Serial: device path.
    pub device: Option<String>,
    /// Serial: bits per second (default 9600).
    pub baud: Option<u32>,
    /// Serial: 5 to 8 (default 8).
    pub data_bits: Option<u8>,
    /// Serial: `none`, `even` or `odd` (default none).
    pub parity: Option<Parity>,
    /// Serial: 1 or 2 (default 1).
    pub stop_bits: Option<u8>,
    /// Serial: `surgard` or `contact-id`.
    pub format: Option<SerialFormat>,
    /// Serial, `surgard`: digits of the line field (1 on MLR2/MLR2E, 3 on MLR2000/System
    /// III/5); a packet with another width gets NAK. Default: any width.
    pub line_digits: Option<u8>,
    /// Serial: the receiver's heartbeat interval. With it, silence longer than this plus
    /// `heartbeat_grace_secs` raises a receiver communication failure for the line.
    pub heartbeat_secs: Option<u64>,
    /// Serial: tolerance past a missed heartbeat (default: one more interval).
    pub heartbeat_grace_secs: Option<u64>,
    /// Serial: longest packet; a longer one is dropped and answered NAK.
    #[serde(default = "default_max_packet")]
    pub max_packet_bytes: usize,
}

fn default_max_packet() -> usize {
    512
}

impl ListenerConfig {
    /// Serial: the port settings.
    pub fn port(&self) -> Option<SerialPort> {
        SerialPort::from_fields(
            &self.device,
            self.baud,
            self.data_bits,
            self.parity,
            self.stop_bits,
        )
    }

    /// The listener's name.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| match (&self.bind, &self.port()) {
                (Some(bind), _) => format!("{}:{bind}", self.kind.name()),
                (None, Some(p)) => format!("serial:{}", p.device),
                (None, None) => self.kind.name().to_owned(),
            })
    }

    /// Silence after which a serial line is in communication failure.
    pub fn heartbeat_timeout(&self) -> Option<Duration> {
        self.heartbeat_secs
            .map(|h| Duration::from_secs(h.saturating_add(self.heartbeat_grace_secs.unwrap_or(h))))
    }

    fn check(&self) -> Result<()> {
        match self.kind {
            ListenerKind::Tcp | ListenerKind::Udp => {
                if self.bind.is_none() {
                    bail!("a {} listener needs `bind`", self.kind.name());
                }
                let serial = self.device.is_some()
                    || self.baud.is_some()
                    || self.data_bits.is_some()
                    || self.parity.is_some()
                    || self.stop_bits.is_some()
                    || self.format.is_some()
                    || self.heartbeat_secs.is_some();
                if serial {
                    bail!(
                        "`device`, `baud`, `format`, `heartbeat_secs` … are for serial listeners"
                    );
                }
            }
            ListenerKind::Serial => {
                let Some(port) = self.port() else {
                    bail!("a serial listener needs `device`");
                };
                port.check()?;
                if self.format.is_none() {
                    bail!("a serial listener needs `format` (\"surgard\" or \"contact-id\")");
                }
                if self.bind.is_some() {
                    bail!("`bind` is for tcp and udp listeners");
                }
                if self.max_packet_bytes < 16 {
                    bail!("max_packet_bytes must be at least 16");
                }
                if self.heartbeat_secs == Some(0) {
                    bail!("heartbeat_secs must be above 0");
                }
            }
        }
        for (what, v) in [("receiver", &self.receiver), ("prefix", &self.prefix)] {
            if let Some(v) = v {
                if crate::site::hex_number(v).is_none() {
                    bail!("{what} {v:?} is not 1-6 hex digits");
                }
            }
        }
        Ok(())
    }
}

/// Kind of an automation output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Sur-Gard MLR2 automation protocol (packets ending in DC4, answered ACK/NAK).
    Surgard,
}

/// `[[output]]`: feeds automation software with every stored event, in commit order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Name in logs and metrics, and the key of its position in the database: renaming an
    /// output starts it from the end of the event log.
    pub name: String,
    /// `surgard`.
    pub kind: OutputKind,
    /// TCP: the automation's address (vakt connects to it).
    pub connect: Option<String>,
    /// Serial: device path, instead of `connect`.
    pub device: Option<String>,
    /// Serial: bits per second (default 9600).
    pub baud: Option<u32>,
    /// Serial: 5 to 8 (default 8).
    pub data_bits: Option<u8>,
    /// Serial: `none`, `even` or `odd` (default none).
    pub parity: Option<Parity>,
    /// Serial: 1 or 2 (default 1).
    pub stop_bits: Option<u8>,
    /// Receiver number written in every packet (2 digits).
    #[serde(default = "default_out_receiver")]
    pub receiver: String,
    /// Line number written in every packet (1 digit for MLR2 automation, 3 for MLR2000).
    #[serde(default = "default_out_line")]
    pub line: String,
    /// How long to wait for the automation's ACK before sending the packet again.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_secs: f64,
    /// A heartbeat is sent when nothing else was for this long.
    #[serde(default = "default_out_heartbeat")]
    pub heartbeat_secs: u64,
    /// Where a new output (no position stored yet) starts: `end` (only events stored from
    /// now on) or `start` (the whole event log).
    #[serde(default)]
    pub start: OutputStart,
}

/// Where a new output starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputStart {
    #[default]
    End,
    Start,
}

fn default_out_receiver() -> String {
    "01".into()
}
fn default_out_line() -> String {
    "1".into()
}
fn default_ack_timeout() -> f64 {
    4.0
}
fn default_out_heartbeat() -> u64 {
    30
}

impl OutputConfig {
    /// Serial: the port settings.
    pub fn port(&self) -> Option<SerialPort> {
        SerialPort::from_fields(
            &self.device,
            self.baud,
            self.data_bits,
            self.parity,
            self.stop_bits,
        )
    }

    /// The ACK timeout as a duration.
    pub fn ack_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.ack_timeout_secs)
    }

    fn check(&self) -> Result<()> {
        match (&self.connect, self.port()) {
            (Some(_), None) => {}
            (None, Some(p)) => p.check()?,
            _ => bail!("give either `connect` (TCP) or `device` (serial)"),
        }
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if self.receiver.len() != 2 || !digits(&self.receiver) {
            bail!("receiver must be 2 digits, not {:?}", self.receiver);
        }
        if !(1..=4).contains(&self.line.len()) || !digits(&self.line) {
            bail!("line must be 1 to 4 digits, not {:?}", self.line);
        }
        if !(self.ack_timeout_secs > 0.0 && self.ack_timeout_secs <= 600.0) {
            bail!("ack_timeout_secs must be above 0 and at most 600");
        }
        if self.heartbeat_secs == 0 {
            bail!("heartbeat_secs must be above 0");
        }
        Ok(())
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
        if !(10..=60_000).contains(&self.supervision.check_every_ms) {
            bail!("supervision.check_every_ms must be 10 to 60000");
        }
        let c = &self.codes;
        if c.max_failures == 0 || c.failure_window_secs == 0 || c.lockout_secs == 0 {
            bail!("codes.max_failures, failure_window_secs and lockout_secs must be at least 1");
        }
        for l in &self.listeners {
            l.check()
                .with_context(|| format!("listener {}", l.label()))?;
        }
        let mut names = std::collections::HashSet::new();
        for o in &self.outputs {
            o.check().with_context(|| format!("output {}", o.name))?;
            if !names.insert(&o.name) {
                bail!("two outputs are named {:?}", o.name);
            }
        }
        for s in &self.sites {
            s.check().with_context(|| format!("site {:?}", s.account))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example in `config/` is a config vakt accepts.
    #[test]
    fn shipped_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(!c.listeners.is_empty(), "{}", path.display());
                n += 1;
            }
        }
        assert!(n >= 2, "config files found: {n}");
        let c = Config::load(&dir.join("vakt.toml")).unwrap();
        assert_eq!(c.alarms.join_window_secs, 600);
        assert_eq!(c.supervision.grace_secs, 30);
    }

    #[test]
    fn supervision_period_is_checked() {
        let bad = "[supervision]\ncheck_every_ms = 0\n";
        assert!(Config::parse(bad).is_err());
        assert!(
            Config::parse("[alarms]\nwindow = 3\n").is_err(),
            "unknown keys refused"
        );
    }
}
