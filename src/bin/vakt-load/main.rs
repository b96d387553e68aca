//! `vakt-load`: simulated alarm panels against a DC-09 receiver. Every answer is checked
//! (the ACK must echo the frame's sequence and account); throughput and ACK latency are
//! reported as a table and as JSON.

mod panel;
mod proc_stat;
mod report;
mod stats;
mod tcp;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use vakt_protocol::dc09::Key;

use crate::panel::{Mix, Panel};
use crate::stats::Stats;
use crate::tcp::Pace;

#[derive(Parser, Debug)]
#[command(
    name = "vakt-load",
    version,
    about = "Simulated alarm panels against a DC-09 receiver"
)]
struct Args {
    /// Receiver address.
    #[arg(long, default_value = "127.0.0.1:7100")]
    target: SocketAddr,
    /// Transport and connection style.
    #[arg(long, value_enum, default_value = "tcp")]
    mode: Mode,
    /// Simulated panels (TCP connections or UDP sockets).
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Distinct accounts, numbered from --account-base (panel i uses account base + i mod A).
    #[arg(long, short = 'a', default_value_t = 100)]
    accounts: u64,
    /// First account number (decimal digits, which are also valid DC-09 hex accounts).
    #[arg(long, default_value_t = 100_000)]
    account_base: u64,
    /// Frames in flight per panel.
    #[arg(long, short = 'w', default_value_t = 1)]
    window: usize,
    /// Open loop: total frames per second over all panels. Without it: closed loop, as fast as
    /// the receiver answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to send for.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Zones per panel: each panel cycles through them, alternating alarm and restore, so every
    /// event changes a zone's state (few zones: updates of existing state; many: new rows).
    #[arg(long, default_value_t = 1000)]
    zones: u32,
    /// Frame mix, e.g. cid=50,sia=40,null=10.
    #[arg(long, default_value = "cid=50,sia=50")]
    mix: String,
    /// AES key (hex) for every account: frames are encrypted.
    #[arg(long)]
    key_hex: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Local source addresses to spread connections over (e.g. 127.0.0.1-127.0.0.4), for more
    /// than 64k connections to one address.
    #[arg(long)]
    sources: Option<String>,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Receiver process to measure (CPU seconds and RSS during the run).
    #[arg(long)]
    pid: Option<u32>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Label for the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Print `[[site]]` TOML for the accounts (and key) and exit.
    #[arg(long)]
    print_sites: bool,
    /// Exit with status 3 unless every frame got its ACK.
    #[arg(long)]
    require_all: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Long-lived TCP connections, W frames in flight each.
    Tcp,
    /// A new TCP connection for every frame.
    TcpPerFrame,
    /// UDP datagrams.
    Udp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::TcpPerFrame => "tcp-per-frame",
            Self::Udp => "udp",
        }
    }
}

fn parse_sources(s: &str) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: std::net::Ipv4Addr = a.parse().context("source range start")?;
                let b: std::net::Ipv4Addr = b.parse().context("source range end")?;
                for n in u32::from(a)..=u32::from(b) {
                    out.push(IpAddr::V4(n.into()));
                }
            }
            None => out.push(part.parse().context("source address")?),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("vakt-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<bool> {
    let mix = Mix::parse(&args.mix).map_err(anyhow::Error::msg)?;
    let key = args
        .key_hex
        .as_deref()
        .map(Key::from_hex)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--key-hex: {e}"))?;
    if args.accounts == 0 || args.connections == 0 || args.window == 0 {
        bail!("--accounts, --connections and --window must be at least 1");
    }
    if args.print_sites {
        for i in 0..args.accounts {
            println!("[[site]]\naccount = \"{}\"", args.account_base + i);
            if let Some(k) = &args.key_hex {
                println!("key_hex = \"{k}\"");
            }
            println!();
        }
        return Ok(true);
    }
    let sources = args.sources.as_deref().map(parse_sources).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let (stats, elapsed, usage) = rt.block_on(drive(&args, mix, key, sources))?;
    let r = report::Report::new(&args.label, args.mode.name(), &args, &stats, elapsed, usage);
    if args.json {
        println!("{}", r.json());
    } else {
        print!("{}", r.table());
    }
    Ok(!args.require_all || (stats.failures() == 0 && stats.acks == stats.sent))
}

async fn drive(
    args: &Args,
    mix: Mix,
    key: Option<Key>,
    sources: Option<Vec<IpAddr>>,
) -> Result<(Stats, Duration, proc_stat::Usage)> {
    let c = args.connections;
    let source = |i: usize| sources.as_ref().map(|s| s[i % s.len()]);
    let panel = |i: usize| {
        let account = (args.account_base + (i as u64 % args.accounts)).to_string();
        let group = (i as u64 / args.accounts) as u32;
        Panel::new(
            account,
            group,
            args.zones,
            mix,
            key.clone(),
            i as u64 ^ 0x5eed,
        )
    };
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(c as f64 / r.max(0.001)));
    let timeout = Duration::from_secs_f64(args.timeout);

    // Connect every long-lived connection first, so the measurement covers only traffic.
    let mut streams = Vec::new();
    if args.mode == Mode::Tcp {
        let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
        let mut tasks = Vec::with_capacity(c);
        for i in 0..c {
            let gate = gate.clone();
            let (target, src) = (args.target, source(i));
            tasks.push(tokio::spawn(async move {
                let _p = gate.acquire().await;
                tcp::connect(target, src).await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let s = t
                .await?
                .with_context(|| format!("connection {i} to {}", args.target))?;
            streams.push(s);
        }
    }

    let usage_before = proc_stat::Usage::read(args.pid);
    let start = Instant::now() + Duration::from_millis(50);
    let stop = start + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::with_capacity(c);
    let mut streams = streams.into_iter();
    for i in 0..c {
        // Open loop: spread the panels' first frames evenly over one interval.
        let offset = interval.map_or(Duration::ZERO, |iv| iv.mul_f64(i as f64 / c as f64));
        let pace = Pace {
            window: args.window,
            interval,
            start: start + offset,
            stop,
            timeout,
        };
        let p = panel(i);
        let (target, src) = (args.target, source(i));
        tasks.push(match args.mode {
            Mode::Tcp => {
                let s = streams.next().expect("one stream per connection");
                tokio::spawn(tcp::persistent(s, p, pace))
            }
            Mode::TcpPerFrame => tokio::spawn(tcp::per_frame(target, src, p, pace)),
            Mode::Udp => tokio::spawn(udp::panel(target, src, p, pace)),
        });
    }
    let mut total = Stats::default();
    for t in tasks {
        total.merge(&t.await?);
    }
    let elapsed = start.elapsed();
    let usage = proc_stat::Usage::read(args.pid).since(&usage_before);
    Ok((total, elapsed, usage))
}
