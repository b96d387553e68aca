//! The receiver's decision for one DC-09 frame, as a pure function: [`receive`] verifies,
//! decrypts and decodes a frame for the account's [`Policy`], and either accepts it (the caller
//! stores it, then answers ACK) or rejects it with the reply DC-09 prescribes (PROTOCOLS.md
//! §1.11, §7). The gateway and `vakt decode` both use it, so they cannot disagree.

use crate::dc09::crypto::{decrypt, Key};
use crate::dc09::frame::{
    lex_header, parse_lexed, split_envelope, Cleartext, Content, Dialect, Header, Quirks, TokenKind,
};
use crate::dc09::timestamp::{TimestampField, Window};
use crate::error::{Error, FrameError, Reply};
use crate::event::{decode_payload, Payload};

/// How one account's frames are read and checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'k> {
    /// Vendor dialect.
    pub quirks: Quirks,
    /// AES key, when the account has one.
    pub key: Option<&'k Key>,
    /// Reject plaintext frames.
    pub encryption_required: bool,
    /// Timestamp acceptance window.
    pub window: Window,
    /// Also enforce the window on plain frames that carry a valid timestamp (encrypted frames:
    /// always enforced, §1.10).
    pub check_plain_timestamps: bool,
}

/// A frame the receiver accepts: store it, then answer ACK (or `*ACK` when `encrypted`).
#[derive(Debug)]
pub struct Accepted<'a> {
    /// Header fields as received.
    pub header: Header<'a>,
    /// The data section (decrypted when the frame was encrypted).
    pub clear: Cleartext<'a>,
    /// The decoded data block.
    pub payload: Payload<'a>,
    /// Whether the frame was encrypted.
    pub encrypted: bool,
    /// The dialect to answer in.
    pub dialect: Dialect,
}

/// A frame the receiver rejects.
#[derive(Debug)]
pub struct Rejected<'a> {
    /// What was wrong.
    pub error: Error,
    /// What to answer.
    pub reply: Reply,
    /// Header text to echo in a DUH, when the header could be located.
    pub echo: Option<&'a [u8]>,
    /// The account as received, when it could be read.
    pub account: Option<&'a str>,
    /// The dialect to answer in.
    pub dialect: Dialect,
}

/// The account text of a header (`#` + hex digits), read before anything is verified so that
/// the account's dialect can be used to verify it.
fn account_hint(echo: &[u8]) -> Option<&str> {
    let hash = echo.iter().position(|&b| b == b'#')?;
    std::str::from_utf8(&echo[hash + 1..])
        .ok()
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The account a frame names, read without verifying anything, so that a gateway can fetch the
/// account's [`Policy`] (from a cache or a database) before calling [`receive`].
pub fn peek_account(raw: &[u8]) -> Option<&str> {
    let envelope = split_envelope(raw).ok()?;
    let (_, echo, _) = lex_header(envelope.body).ok()?;
    account_hint(echo)
}

/// Decides on one frame (LF … CR). `lookup` gives the policy for an account, `None` if the
/// account is unknown; `now_unix` is the receiver clock; `buf` holds decrypted text.
pub fn receive<'a, 'k>(
    raw: &'a [u8],
    now_unix: i64,
    buf: &'a mut Vec<u8>,
    lookup: impl FnOnce(&str) -> Option<Policy<'k>>,
) -> Result<Accepted<'a>, Rejected<'a>> {
    let std = Dialect::STANDARD;
    let reject = |error: Error, echo, account, dialect| Rejected {
        reply: error.reply(),
        error,
        echo,
        account,
        dialect,
    };
    let envelope = split_envelope(raw).map_err(|e| reject(e.into(), None, None, std))?;
    let (token, echo, after) =
        lex_header(envelope.body).map_err(|e| reject(e.into(), None, None, std))?;
    let account = account_hint(echo);
    let policy = account.and_then(lookup);
    let quirks = policy.map(|p| p.quirks).unwrap_or_default();
    let dialect = quirks.reply_dialect();
    let fail = |e: FrameError| reject(e.into(), Some(echo), account, dialect);
    envelope.verify(&quirks).map_err(fail)?;
    let (header, content) = parse_lexed(token, echo, after, &quirks).map_err(fail)?;
    if header.token.kind.is_response() {
        return Err(fail(FrameError::UnexpectedResponse {
            token: header.token.kind.as_str().to_owned(),
        }));
    }
    let Some(policy) = policy else {
        return Err(fail(FrameError::UnknownAccount {
            account: header.account.unwrap_or_default().to_owned(),
        }));
    };
    let (clear, encrypted) = match content {
        Content::Clear(clear) => {
            if policy.encryption_required {
                return Err(fail(FrameError::EncryptionRequired));
            }
            if let (true, TimestampField::Valid(ts)) =
                (policy.check_plain_timestamps, clear.timestamp)
            {
                policy.window.check(ts, now_unix).map_err(fail)?;
            }
            (clear, false)
        }
        Content::Encrypted(hex) => {
            let key = policy.key.ok_or_else(|| fail(FrameError::NoKey))?;
            let clear = decrypt(hex, key, buf).map_err(fail)?;
            if let TimestampField::Valid(ts) = clear.timestamp {
                policy.window.check(ts, now_unix).map_err(fail)?;
            }
            (clear, true)
        }
    };
    let payload = decode_payload(header.token.kind, clear.data)
        .map_err(|e| reject(e.into(), Some(echo), account, dialect))?;
    if payload == Payload::Unsupported {
        let token = header.token.kind;
        debug_assert!(matches!(token, TokenKind::Other(_)));
        return Err(Rejected {
            error: Error::UnsupportedToken(token.as_str().to_owned()),
            reply: Reply::Duh,
            echo: Some(echo),
            account,
            dialect,
        });
    }
    Ok(Accepted {
        header,
        clear,
        payload,
        encrypted,
        dialect,
    })
}
