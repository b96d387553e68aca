//! The `vakt` command line.

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use vakt::decode::{self, Format, Options};
use vakt::escape::unescape;
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
    }
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
