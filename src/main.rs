//! The `vakt` command line.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use vakt::auth::{check_name, new_token, token_hash, Role};
use vakt::codes;
use vakt::config::{self, Config};
use vakt::decode::{self, Format, Options};
use vakt::escape::unescape;
use vakt::site::{Quirk, Site, SiteSpec};
use vakt::store::{Db, SiteCodes};
use vakt_protocol::dc09::{Key, Quirks, Timestamp};
use vakt_protocol::surgard::SerialOptions;

#[derive(Parser)]
#[command(
    name = "vakt",
    version,
    about = "Alarm-monitoring central-station gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode frames from stdin (one per line; raw or with \n, \r, \x14 escapes) into JSON lines.
    Decode(DecodeArgs),
    /// Run the receiver: the listeners, the database and the HTTP API of a config file.
    Serve(ServeArgs),
    /// Manage sites (DC-09 accounts) in the database.
    Site(SiteArgs),
    /// Manage the operators who use the HTTP API (each has a bearer token).
    Operator(OperatorArgs),
}

#[derive(clap::Args)]
struct OperatorArgs {
    /// Config file whose database to use.
    #[arg(long, global = true, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Database URL (overrides the config file's).
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator and print their token (shown this once; only its hash is kept).
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "operator")]
        role: Role,
    },
    /// Give an operator a new token (the old one stops working) and print it.
    Token { name: String },
    /// List operators as JSON lines (never tokens).
    List,
    /// Remove an operator (their token stops working; the audit log keeps their name).
    Remove { name: String },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Config file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

#[derive(clap::Args)]
struct SiteArgs {
    /// Config file whose database to use.
    #[arg(long, global = true, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Database URL (overrides the config file's).
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: SiteCommand,
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Add a site, or replace the one with the same account.
    Add(SiteAddArgs),
    /// List sites as JSON lines.
    List,
    /// Show one site as JSON (never its key).
    Show { account: String },
    /// Remove a site (its events stay).
    Remove { account: String },
    /// Set a site's codes from standard input: the revoke code on the first line, the main
    /// code on the second (an empty line keeps that code). Only argon2id hashes are stored.
    SetCodes { account: String },
    /// Hash a code from standard input for a `[[site]]` table's revoke_code_hash or
    /// main_code_hash.
    HashCode,
}

#[derive(clap::Args)]
struct SiteAddArgs {
    /// DC-09 account, 3-16 hex digits.
    #[arg(long)]
    account: String,
    /// Site name.
    #[arg(long, default_value = "")]
    name: String,
    /// Account prefix (L) the site must use.
    #[arg(long)]
    prefix: Option<String>,
    /// Receiver number (R) the site must use.
    #[arg(long)]
    receiver: Option<String>,
    /// AES key as hex digits.
    #[arg(long, conflicts_with = "key_ascii")]
    key_hex: Option<String>,
    /// AES key as ASCII text.
    #[arg(long)]
    key_ascii: Option<String>,
    /// NAK plaintext frames.
    #[arg(long)]
    encryption_required: bool,
    /// Vendor quirk (repeatable).
    #[arg(long = "quirk", value_enum)]
    quirks: Vec<Quirk>,
    /// Seconds between the panel's NULL supervision messages.
    #[arg(long)]
    supervision_secs: Option<u32>,
}

#[derive(clap::Args)]
struct DecodeArgs {
    /// AES key as 32, 48 or 64 hex digits.
    #[arg(long, conflicts_with = "key_ascii")]
    key: Option<String>,
    /// AES key as 16, 24 or 32 ASCII characters used byte for byte.
    #[arg(long)]
    key_ascii: Option<String>,
    /// Vendor quirk (repeatable).
    #[arg(long = "quirk", value_enum)]
    quirks: Vec<QuirkArg>,
    /// Force the input format instead of detecting it.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Receiver clock for the timestamp window, as HH:MM:SS,MM-DD-YYYY (UTC) or Unix seconds.
    /// Default: the system clock.
    #[arg(long)]
    now: Option<String>,
    /// Do not check the timestamp window on plain (unencrypted) frames.
    #[arg(long)]
    no_plain_timestamp_check: bool,
    /// Digits of the line field in receiver packets (1 on MLR2, 3 on MLR2000/System III).
    #[arg(long)]
    line_digits: Option<u8>,
}

#[derive(Clone, Copy, ValueEnum)]
enum QuirkArg {
    /// 2-byte binary CRC (Lupusec, OPAX).
    BinaryCrc,
    /// CRC and length include the CR (ELDES).
    Eldes,
    /// Hex digits in the sequence number (dc09-spt).
    HexSequence,
    /// Answer in the panel's dialect instead of standard DC-09.
    AnswerInDialect,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Dc09,
    ContactId,
    Surgard,
    Ademco685,
}

/// mimalloc: frames are decoded on the connection threads and freed on the writer thread after
/// the commit, a cross-thread pattern where glibc malloc spent a tenth of vakt's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vakt: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Decode(args) => run_decode(args),
        Command::Serve(args) => {
            let config = Config::load(&args.config)?;
            vakt::logging::init();
            no_huge_pages();
            if let Some(cpu) = config.receiver.writer_cpu {
                // Before the runtime starts, so that every thread it starts inherits the mask.
                let rest = vakt::cpu::keep_off(cpu).context("[receiver] writer_cpu")?;
                tracing::info!(writer_cpu = cpu, other_cpus = ?rest, "writer on a CPU of its own");
            }
            runtime()?.block_on(vakt::serve::serve(config))
        }
        Command::Site(args) => runtime()?.block_on(run_site(args)),
        Command::Operator(args) => runtime()?.block_on(run_operator(args)),
    }
}

/// Transparent huge pages off for the gateway. With them, the first write to a fresh 2 MiB
/// region of mimalloc's arenas (a duplicate window or a batch's vectors growing) zeroes all
/// 2 MiB in one page fault, and on a VM whose host backs the memory at that moment one such
/// fault held the writer, and every ACK behind it, for 7-15 ms; with 4 KiB pages the same
/// memory is zeroed a page at a time as it is used (README, "Results": p99 at 10,000 events/s
/// 11 -> 7 ms, no commit over 10 ms). The cost is a few more TLB misses.
fn no_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(error = %e, "transparent huge pages stay on; ACKs may wait for page faults");
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The database of `--database`, or else of the config file.
async fn connect(database: Option<String>, config: &std::path::Path) -> Result<Db> {
    let url = match database {
        Some(url) => url,
        None => Config::load(config)?.database.url,
    };
    Db::connect(&url, 1).await
}

async fn run_operator(args: OperatorArgs) -> Result<()> {
    let db = connect(args.database, &args.config).await?;
    let mut out = io::stdout().lock();
    let now = vakt::clock::unix_micros();
    match args.command {
        OperatorCommand::Add { name, role } => {
            check_name(&name).map_err(anyhow::Error::msg)?;
            let token = new_token();
            if !db
                .add_operator(&name, role.name(), &token_hash(&token), "cli", now)
                .await?
            {
                bail!("operator {name} exists (vakt operator token {name} gives a new token)");
            }
            writeln!(out, "{token}")?;
        }
        OperatorCommand::Token { name } => {
            let token = new_token();
            if !db
                .replace_operator_token(&name, &token_hash(&token), "cli", now)
                .await?
            {
                bail!("no operator {name}");
            }
            writeln!(out, "{token}")?;
        }
        OperatorCommand::List => {
            for op in db.operators().await? {
                writeln!(out, "{}", serde_json::to_string(&op)?)?;
            }
        }
        OperatorCommand::Remove { name } => {
            if !db.remove_operator(&name, "cli", now).await? {
                bail!("no operator {name}");
            }
            writeln!(out, "removed {name}")?;
        }
    }
    db.close().await;
    Ok(())
}

/// Lines of standard input (codes are never taken as arguments: they would show in `ps` and in
/// shell history).
fn stdin_lines(want: usize) -> Result<Vec<String>> {
    let mut text = String::new();
    io::stdin()
        .lock()
        .read_to_string(&mut text)
        .context("reading standard input")?;
    let mut lines: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    lines.resize(want.max(lines.len()), String::new());
    Ok(lines)
}

async fn run_site(args: SiteArgs) -> Result<()> {
    if let SiteCommand::HashCode = args.command {
        let code = stdin_lines(1)?.swap_remove(0);
        println!("{}", codes::hash(&code)?);
        return Ok(());
    }
    let db = connect(args.database, &args.config).await?;
    let mut out = io::stdout().lock();
    match args.command {
        SiteCommand::Add(a) => {
            let spec = SiteSpec {
                account: a.account,
                name: a.name,
                prefix: a.prefix,
                receiver: a.receiver,
                key_hex: a.key_hex,
                key_ascii: a.key_ascii,
                encryption_required: a.encryption_required,
                quirks: a.quirks,
                supervision_secs: a.supervision_secs,
                revoke_code_hash: None,
                main_code_hash: None,
            };
            spec.check()?;
            db.upsert_site(&spec, vakt::clock::unix_micros()).await?;
            writeln!(out, "{}", Site::new(spec)?.to_json())?;
        }
        SiteCommand::List => {
            let mut after: Option<String> = None;
            loop {
                let page = db.sites(after.as_deref(), 1000).await?;
                for spec in &page {
                    writeln!(out, "{}", Site::new(spec.clone())?.to_json())?;
                }
                match page.last() {
                    Some(last) if page.len() == 1000 => after = Some(last.account.clone()),
                    _ => break,
                }
            }
        }
        SiteCommand::Show { account } => match db.site(&account).await? {
            Some(spec) => {
                let mut v = Site::new(spec)?.to_json();
                let codes = db.site_codes(&account).await?;
                v["codes"] = SiteCodes::status(codes.as_ref(), vakt::clock::unix_micros());
                writeln!(out, "{v:#}")?
            }
            None => bail!("no site with account {account}"),
        },
        SiteCommand::Remove { account } => {
            if !db
                .remove_site(&account, "cli", vakt::clock::unix_micros())
                .await?
            {
                bail!("no site with account {account}");
            }
            writeln!(out, "removed {}", account.to_ascii_uppercase())?;
        }
        SiteCommand::SetCodes { account } => {
            if db.site(&account).await?.is_none() {
                bail!("no site with account {account}");
            }
            let lines = stdin_lines(2)?;
            let (revoke, main) = (&lines[0], &lines[1]);
            if revoke.is_empty() && main.is_empty() {
                bail!("give the revoke code on the first line of standard input and the main code on the second");
            }
            if revoke == main {
                bail!("{}", codes::CodeError::SameCodes);
            }
            let hash = |c: &String| -> Result<Option<String>> {
                if c.is_empty() {
                    return Ok(None);
                }
                Ok(Some(codes::hash(c)?))
            };
            let hashes = codes::Hashes {
                revoke: hash(revoke).context("revoke code")?,
                main: hash(main).context("main code")?,
            };
            db.set_codes(&account, &hashes, "cli", vakt::clock::unix_micros())
                .await?;
            writeln!(out, "codes of {} set", account.to_ascii_uppercase())?;
        }
        SiteCommand::HashCode => unreachable!("handled before connecting"),
    }
    db.close().await;
    Ok(())
}

fn parse_now(text: Option<&str>) -> Result<i64> {
    match text {
        None => Ok(time::OffsetDateTime::now_utc().unix_timestamp()),
        Some(t) => match t.parse::<i64>() {
            Ok(unix) => Ok(unix),
            Err(_) => match Timestamp::parse(t.as_bytes()) {
                Some(ts) => Ok(ts.unix()),
                None => bail!("--now {t:?} is neither Unix seconds nor HH:MM:SS,MM-DD-YYYY"),
            },
        },
    }
}

fn run_decode(args: DecodeArgs) -> Result<()> {
    let key = match (&args.key, &args.key_ascii) {
        (Some(hex), _) => Some(Key::from_hex(hex).context("--key")?),
        (_, Some(text)) => Some(Key::from_ascii(text).context("--key-ascii")?),
        _ => None,
    };
    let mut quirks = Quirks::default();
    for q in &args.quirks {
        match q {
            QuirkArg::BinaryCrc => quirks.binary_crc = true,
            QuirkArg::Eldes => quirks.cr_in_crc = true,
            QuirkArg::HexSequence => quirks.hex_sequence = true,
            QuirkArg::AnswerInDialect => quirks.answer_in_dialect = true,
        }
    }
    let opts = Options {
        format: args.format.map(|f| match f {
            FormatArg::Dc09 => Format::Dc09,
            FormatArg::ContactId => Format::ContactId,
            FormatArg::Surgard => Format::Surgard,
            FormatArg::Ademco685 => Format::Ademco685,
        }),
        key,
        quirks,
        now_unix: parse_now(args.now.as_deref())?,
        no_plain_timestamp_check: args.no_plain_timestamp_check,
        serial: SerialOptions {
            line_digits: args.line_digits,
            ..SerialOptions::default()
        },
    };
    let mut input = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let mut out = BufWriter::new(io::stdout().lock());
    // One frame per line. A raw DC-09 frame starts with LF, so splitting on LF leaves it without
    // its LF (decode puts it back) and leaves an empty line before it (skipped).
    for line in input.split(|&b| b == b'\n') {
        let line = unescape(line);
        if line.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
            continue;
        }
        let report = decode::decode_line(&line, &opts);
        serde_json::to_writer(&mut out, &report)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
