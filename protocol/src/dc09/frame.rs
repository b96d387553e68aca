//! DC-09 frame parsing: `LF CRC 0LLL "TOKEN"seq[Rr]Lp#acct[data][x…]_timestamp CR`
//! (PROTOCOLS.md §1.1–§1.9).
//!
//! Parsing runs in three steps so that a diagnostic tool can show every verdict, and the
//! gateway can still answer DUH with the header echoed when only the header is wrong:
//! [`split_envelope`] (LF/CRC/length/CR), [`Envelope::verify`] (CRC and length against the
//! body, in the account's dialect), [`parse_body`] (header and content). [`parse_frame`] runs all
//! three. Everything borrows from the input; only x-data blocks allocate (a `Vec`, when present).

use nom::bytes::complete::{tag, take_while1};
use nom::combinator::opt;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::crc::{crc16_arc, crc16_arc_concat};
use crate::dc09::timestamp::{timestamp_field, TimestampField};
use crate::dc09::xdata::XData;
use crate::error::FrameError;
use crate::parse::{ascii, hex_run};

/// Largest body the `0LLL` length field can describe.
pub const MAX_BODY: usize = 0xFFF;
/// Largest frame: LF + CRC + length + body + CR.
pub const MAX_FRAME: usize = 1 + 4 + 4 + MAX_BODY + 1;

/// Vendor deviations, enabled per account or listener; all off by default (§1.2, §1.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Accept (and answer with) a 2-byte binary CRC (Lupusec, OPAX).
    pub binary_crc: bool,
    /// CRC and length include the trailing CR (ELDES).
    pub cr_in_crc: bool,
    /// Accept 4 hex digits as a sequence number (dc09-spt writes message 10 as `000A`).
    pub hex_sequence: bool,
    /// Answer in the panel's dialect (binary CRC, CR counted) instead of standard DC-09. Off by
    /// default: the reference answers for ELDES and OPAX frames are standard frames.
    pub answer_in_dialect: bool,
}

impl Quirks {
    /// The dialect to answer this panel in.
    pub fn reply_dialect(&self) -> Dialect {
        if self.answer_in_dialect {
            Dialect {
                binary_crc: self.binary_crc,
                cr_in_crc: self.cr_in_crc,
            }
        } else {
            Dialect::STANDARD
        }
    }
}

/// How a written frame computes and writes CRC and length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dialect {
    /// Write the CRC as 2 raw bytes.
    pub binary_crc: bool,
    /// Count the CR in CRC and length.
    pub cr_in_crc: bool,
}

impl Dialect {
    /// Standard DC-09: 4 hex digits, CR not counted.
    pub const STANDARD: Self = Self {
        binary_crc: false,
        cr_in_crc: false,
    };
}

/// How the CRC was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrcFormat {
    /// 4 ASCII hex digits (the standard).
    Hex,
    /// 2 raw bytes, high byte first (Lupusec/OPAX dialect).
    Binary,
}

/// The outer layer of a frame: checksum fields and the span they cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// How the CRC was written.
    pub crc_format: CrcFormat,
    /// CRC as written.
    pub crc_declared: u16,
    /// Length as written.
    pub length_declared: u16,
    /// From the token's opening `"` up to (not including) the final CR.
    pub body: &'a [u8],
}

impl Envelope<'_> {
    /// CRC of the body, in the given dialect.
    pub fn crc_computed(&self, quirks: &Quirks) -> u16 {
        if quirks.cr_in_crc {
            crc16_arc_concat(self.body, b"\r")
        } else {
            crc16_arc(self.body)
        }
    }

    /// Length of the body, in the given dialect.
    pub fn length_computed(&self, quirks: &Quirks) -> usize {
        self.body.len() + usize::from(quirks.cr_in_crc)
    }

    /// Checks CRC format, CRC and length; any failure means the frame gets no answer.
    pub fn verify(&self, quirks: &Quirks) -> Result<(), FrameError> {
        if self.crc_format == CrcFormat::Binary && !quirks.binary_crc {
            return Err(FrameError::BinaryCrcNotEnabled);
        }
        let computed = self.crc_computed(quirks);
        if computed != self.crc_declared {
            return Err(FrameError::CrcMismatch {
                declared: self.crc_declared,
                computed,
            });
        }
        let actual = self.length_computed(quirks);
        if actual != usize::from(self.length_declared) {
            return Err(FrameError::LengthMismatch {
                declared: self.length_declared,
                actual,
            });
        }
        Ok(())
    }
}

/// Splits LF, CRC, length, body and CR. Trailing NULs after the CR are tolerated (§1.1).
/// The CRC format is detected from the shape: quote at offset 9 → hex, `0` at 3 and quote at 7
/// → binary (ioBroker's rule, §1.2).
pub fn split_envelope(raw: &[u8]) -> Result<Envelope<'_>, FrameError> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let raw = &raw[..end];
    if raw.len() > MAX_FRAME {
        return Err(FrameError::Oversize {
            len: raw.len(),
            max: MAX_FRAME,
        });
    }
    if raw.first() != Some(&b'\n') {
        return Err(FrameError::MissingLf);
    }
    if raw.last() != Some(&b'\r') || raw.len() < 2 {
        return Err(FrameError::MissingCr);
    }
    let inner = &raw[1..raw.len() - 1];
    let (crc_format, crc_declared, length_field, body) = if inner.get(8) == Some(&b'"') {
        let crc = parse_hex_u16(&inner[0..4]).ok_or(FrameError::BadCrcField)?;
        (CrcFormat::Hex, crc, &inner[4..8], &inner[8..])
    } else if inner.get(6) == Some(&b'"') && inner.get(2) == Some(&b'0') {
        let crc = u16::from_be_bytes([inner[0], inner[1]]);
        (CrcFormat::Binary, crc, &inner[2..6], &inner[6..])
    } else if inner.len() < 9 {
        return Err(FrameError::TooShort { len: raw.len() });
    } else {
        return Err(FrameError::BadToken);
    };
    if length_field[0] != b'0' {
        return Err(FrameError::BadLengthField);
    }
    let length_declared = parse_hex_u16(length_field).ok_or(FrameError::BadLengthField)?;
    Ok(Envelope {
        crc_format,
        crc_declared,
        length_declared,
        body,
    })
}

fn parse_hex_u16(digits: &[u8]) -> Option<u16> {
    if digits.len() != 4 {
        return None;
    }
    digits.iter().try_fold(0u16, |acc, &b| {
        Some(acc << 4 | u16::from(char::from(b).to_digit(16)? as u8))
    })
}

/// The ID token (§1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// `*` prefix: everything after `[` is AES-encrypted.
    pub encrypted: bool,
    /// Which token.
    pub kind: TokenKind<'a>,
}

/// Known tokens, and any other well-formed one (stored raw and answered DUH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind<'a> {
    /// `SIA-DCS`: SIA DC-03/DC-04 data.
    SiaDcs,
    /// `ADM-CID`: Contact ID.
    AdmCid,
    /// `NULL`: link test / supervision.
    Null,
    /// `ACK` (response).
    Ack,
    /// `NAK` (response).
    Nak,
    /// `DUH` (response).
    Duh,
    /// `RSP` (response with data).
    Rsp,
    /// Any other well-formed token (`SIA-PUL`, `XNM`, …).
    Other(&'a str),
}

impl<'a> TokenKind<'a> {
    /// Classifies token text (without `*`).
    pub fn from_text(text: &'a str) -> Self {
        match text {
            "SIA-DCS" => Self::SiaDcs,
            "ADM-CID" => Self::AdmCid,
            "NULL" => Self::Null,
            "ACK" => Self::Ack,
            "NAK" => Self::Nak,
            "DUH" => Self::Duh,
            "RSP" => Self::Rsp,
            other => Self::Other(other),
        }
    }

    /// The token text (without `*`).
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::SiaDcs => "SIA-DCS",
            Self::AdmCid => "ADM-CID",
            Self::Null => "NULL",
            Self::Ack => "ACK",
            Self::Nak => "NAK",
            Self::Duh => "DUH",
            Self::Rsp => "RSP",
            Self::Other(s) => s,
        }
    }

    /// True for the response tokens, which a receiver never answers.
    pub fn is_response(&self) -> bool {
        matches!(self, Self::Ack | Self::Nak | Self::Duh | Self::Rsp)
    }
}

/// The header fields, as received. Hex fields keep their exact text: an ACK must echo `L000`
/// as `L000` (§1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The ID token.
    pub token: Token<'a>,
    /// Sequence number, 4 digits.
    pub sequence: &'a str,
    /// Receiver number (hex text), when an `R` field is present.
    pub receiver: Option<&'a str>,
    /// Account prefix (hex text) of the mandatory `L` field.
    pub prefix: &'a str,
    /// Account (hex text); `None` for the NAK's `A0` form.
    pub account: Option<&'a str>,
    /// Everything between the token's closing quote and `[`: what ACK and DUH echo.
    pub echo: &'a [u8],
}

/// What follows `[`: cleartext, or hex ciphertext for a `*` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content<'a> {
    /// A plain (or decrypted) data section.
    Clear(Cleartext<'a>),
    /// Ciphertext as hex (length checked to be whole AES blocks; the digits are checked when it
    /// is decrypted), to be opened with the account key.
    Encrypted(&'a [u8]),
}

/// A data section in the clear: `[pad|]data]` + x-data blocks + optional timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleartext<'a> {
    /// The encryption pad (empty for plain frames).
    pub pad: &'a [u8],
    /// Between `[` (or the pad's `|`) and the first `]`.
    pub data: &'a [u8],
    /// Extended data blocks, in order.
    pub xdata: Vec<XData<'a>>,
    /// The timestamp, as received.
    pub timestamp: TimestampField<'a>,
}

/// A parsed DC-09 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// CRC, length and body span.
    pub envelope: Envelope<'a>,
    /// Token and header fields.
    pub header: Header<'a>,
    /// The data section.
    pub content: Content<'a>,
}

/// Parses and verifies a whole frame (LF … CR, trailing NULs allowed) in the given dialect.
pub fn parse_frame<'a>(raw: &'a [u8], quirks: &Quirks) -> Result<Frame<'a>, FrameError> {
    let envelope = split_envelope(raw)?;
    envelope.verify(quirks)?;
    let (header, content) = parse_body(envelope.body, quirks)?;
    Ok(Frame {
        envelope,
        header,
        content,
    })
}

/// Splits a body into token, echo (seq/R/L/acct as received) and what follows `[`.
/// Enough to answer DUH when the header fields themselves are malformed.
pub fn lex_header(body: &[u8]) -> Result<(Token<'_>, &[u8], &[u8]), FrameError> {
    let (after, (star, text)) = quoted_token(body).map_err(|_| FrameError::BadToken)?;
    let open = after
        .iter()
        .position(|&b| b == b'[')
        .ok_or(FrameError::MissingData)?;
    let token = Token {
        encrypted: star.is_some(),
        kind: TokenKind::from_text(ascii(text)),
    };
    Ok((token, &after[..open], &after[open + 1..]))
}

/// `"` + optional `*` + token text + `"`: (star, text).
type QuotedToken<'a> = (Option<&'a [u8]>, &'a [u8]);

fn quoted_token(i: &[u8]) -> IResult<&[u8], QuotedToken<'_>> {
    let token_char = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-';
    (
        preceded(tag("\""), (opt(tag("*")), take_while1(token_char))),
        tag("\""),
    )
        .map(|(t, _)| t)
        .parse(i)
}

/// Parses header and content of a verified body.
pub fn parse_body<'a>(
    body: &'a [u8],
    quirks: &Quirks,
) -> Result<(Header<'a>, Content<'a>), FrameError> {
    let (token, echo, after) = lex_header(body)?;
    parse_lexed(token, echo, after, quirks)
}

/// [`parse_body`] for a body already split by [`lex_header`].
pub(crate) fn parse_lexed<'a>(
    token: Token<'a>,
    echo: &'a [u8],
    after: &'a [u8],
    quirks: &Quirks,
) -> Result<(Header<'a>, Content<'a>), FrameError> {
    let header = parse_header_fields(token, echo, quirks)?;
    let content = if token.encrypted {
        Content::Encrypted(ciphertext(after)?)
    } else {
        Content::Clear(parse_cleartext(after, &[])?)
    };
    Ok((header, content))
}

fn parse_header_fields<'a>(
    token: Token<'a>,
    echo: &'a [u8],
    quirks: &Quirks,
) -> Result<Header<'a>, FrameError> {
    let seq_ok = |b: &u8| {
        if quirks.hex_sequence {
            b.is_ascii_hexdigit()
        } else {
            b.is_ascii_digit()
        }
    };
    let (seq, rest) = echo.split_at(echo.len().min(4));
    if seq.len() != 4 || !seq.iter().all(seq_ok) {
        let text_end = echo
            .iter()
            .position(|&b| matches!(b, b'R' | b'L' | b'#'))
            .unwrap_or(echo.len());
        return Err(FrameError::BadSequence {
            text: String::from_utf8_lossy(&echo[..text_end]).into_owned(),
        });
    }
    let (rest, receiver) = opt(preceded(tag("R"), hex_run(1, 6)))
        .parse(rest)
        .map_err(|_| FrameError::BadReceiver)?;
    let (rest, prefix) = preceded(tag("L"), hex_run(1, 6)).parse(rest).map_err(|_| {
        if receiver.is_none() && rest.first() == Some(&b'R') {
            FrameError::BadReceiver
        } else {
            FrameError::BadPrefix
        }
    })?;
    // The NAK writes `L0A0`: `A` is also a hex digit, so a greedy prefix swallows the `A0`
    // account. With nothing left for an account, split the prefix at its last `A`.
    let (prefix, rest) = match prefix.rfind('A') {
        Some(a) if rest.is_empty() && a > 0 => {
            let start = echo.len() - prefix.len();
            (&prefix[..a], &echo[start + a..])
        }
        _ => (prefix, rest),
    };
    let account = account_field(rest).map_err(|_| FrameError::BadAccount)?;
    Ok(Header {
        token,
        sequence: ascii(seq),
        receiver,
        prefix,
        account,
        echo,
    })
}

/// `#` + 3–16 hex digits, or the NAK's `A` + hex digits; nothing may follow.
fn account_field(i: &[u8]) -> Result<Option<&str>, ()> {
    let hash = |i| preceded(tag("#"), hex_run(3, 16)).map(Some).parse(i);
    let nak_form = |i| preceded(tag("A"), hex_run(1, 16)).map(|_| None).parse(i);
    let (rest, account) = hash(i).or_else(|_| nak_form(i)).map_err(|_| ())?;
    if rest.is_empty() {
        Ok(account)
    } else {
        Err(())
    }
}

fn ciphertext(after: &[u8]) -> Result<&[u8], FrameError> {
    if !after.is_empty() && after.len() % 32 == 0 {
        Ok(after)
    } else {
        Err(FrameError::BadCiphertext)
    }
}

/// Parses `data]` + x-data + optional `_timestamp` to the end of `section` (what follows `[`,
/// or the decrypted text after the pad).
pub fn parse_cleartext<'a>(section: &'a [u8], pad: &'a [u8]) -> Result<Cleartext<'a>, FrameError> {
    let close = section
        .iter()
        .position(|&b| b == b']')
        .ok_or(FrameError::BadData("no closing ']'"))?;
    let data = &section[..close];
    if data.iter().any(|&b| matches!(b, b'[' | b'\r' | b'\n')) {
        return Err(FrameError::BadData("'[', CR or LF inside the data block"));
    }
    let mut rest = &section[close + 1..];
    let mut xdata = Vec::new();
    while rest.first() == Some(&b'[') {
        let (r, x) = xdata_block(rest).map_err(|_| FrameError::BadXData)?;
        xdata.push(x);
        rest = r;
    }
    let timestamp = if rest.is_empty() {
        TimestampField::Absent
    } else {
        match timestamp_field(rest) {
            Ok((_, ts)) => ts,
            Err(_) => return Err(FrameError::TrailingBytes),
        }
    };
    Ok(Cleartext {
        pad,
        data,
        xdata,
        timestamp,
    })
}

fn xdata_block(i: &[u8]) -> IResult<&[u8], XData<'_>> {
    let (i, _) = tag("[").parse(i)?;
    let (i, id) = nom::character::complete::satisfy(|c| c.is_ascii_uppercase()).parse(i)?;
    let (i, value) =
        nom::bytes::complete::take_till(|b| matches!(b, b']' | b'[' | b'\r' | b'\n')).parse(i)?;
    let (i, _) = tag("]").parse(i)?;
    Ok((
        i,
        XData {
            id: id as u8,
            value,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ack_shaped_header_and_keeps_echo() {
        let f =
            parse_frame(b"\n9E580012\"ACK\"0001L0#1002[]\r", &Quirks::default()).expect("valid");
        assert_eq!(f.header.token.kind, TokenKind::Ack);
        assert_eq!(f.header.echo, b"0001L0#1002");
        assert_eq!(f.header.account, Some("1002"));
    }

    #[test]
    fn nak_form_has_no_account() {
        let f = parse_frame(
            b"\nE4410025\"NAK\"0000R0L0A0[]_16:20:01,09-24-2025\r",
            &Quirks::default(),
        )
        .expect("valid");
        assert_eq!(f.header.account, None);
        assert_eq!(f.header.receiver, Some("0"));
    }

    #[test]
    fn header_errors_are_precise() {
        let q = Quirks::default();
        let body = |s: &str| parse_body(s.as_bytes(), &q).map(|_| ()).unwrap_err();
        assert_eq!(
            body("\"ADM-CID\"000AL0#1234[]"),
            FrameError::BadSequence {
                text: "000A".into()
            }
        );
        assert_eq!(body("\"ADM-CID\"0001R#1234[]"), FrameError::BadReceiver);
        assert_eq!(body("\"ADM-CID\"0001#1234[]"), FrameError::BadPrefix);
        assert_eq!(body("\"ADM-CID\"0001L0#12[]"), FrameError::BadAccount);
        assert_eq!(
            body("\"ADM-CID\"0001L0#12345678901234567[]"),
            FrameError::BadAccount
        );
        assert_eq!(body("\"ADM-CID\"0001L0#1234"), FrameError::MissingData);
        assert_eq!(
            body("\"ADM-CID\"0001L0#1234[x]junk"),
            FrameError::TrailingBytes
        );
        assert_eq!(body("ADM-CID\"0001L0#1234[x]"), FrameError::BadToken);
    }

    #[test]
    fn hex_sequence_quirk_accepts_000a() {
        let q = Quirks {
            hex_sequence: true,
            ..Quirks::default()
        };
        let (h, _) =
            parse_body(b"\"ADM-CID\"000AL0#1234[#1234|1110 00 003]", &q).expect("quirk on");
        assert_eq!(h.sequence, "000A");
    }
}
