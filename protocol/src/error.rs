//! Typed errors. Each one knows the answer the protocol gives for it ([`Reply`]) and a stable
//! snake_case [`kind`](Error::kind) for logs, metrics and `vakt decode` output.

use thiserror::Error;

/// What a receiver sends back for a rejected DC-09 frame (PROTOCOLS.md §1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Send nothing: the frame is not trustworthy (bad CRC, length, framing), so the panel
    /// must retry (DC-09-2007 test plan C.2.3.5).
    None,
    /// `"NAK"0000R0L0A0[]_<receiver time>`: timestamp outside the window, unknown account,
    /// wrong key. The panel may correct its clock and retry.
    Nak,
    /// `"DUH"`: well-formed, but the receiver cannot process it. The panel must not repeat it.
    Duh,
}

/// Everything that can be wrong with one DC-09 frame, outer envelope to decryption.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame does not begin with LF (0x0A).
    #[error("frame does not start with LF")]
    MissingLf,
    /// The frame does not end with CR (0x0D), trailing NULs aside.
    #[error("frame does not end with CR")]
    MissingCr,
    /// Too short to hold CRC, length and a token.
    #[error("frame too short ({len} bytes)")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// Longer than DC-09 allows (the length field caps the body at 4095 bytes).
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversize {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The CRC field is neither 4 hex digits nor (with the quirk) 2 binary bytes.
    #[error("CRC field is not 4 hex digits")]
    BadCrcField,
    /// A 2-byte binary CRC (Lupusec/OPAX) arrived where the quirk is not enabled.
    #[error("binary CRC (Lupusec/OPAX dialect) not enabled for this account")]
    BinaryCrcNotEnabled,
    /// The length field is not `0` followed by 3 hex digits.
    #[error("length field is not 0LLL hex")]
    BadLengthField,
    /// The CRC does not match the body.
    #[error("CRC mismatch: declared {declared:04X}, computed {computed:04X}")]
    CrcMismatch {
        /// CRC written in the frame.
        declared: u16,
        /// CRC of the bytes received.
        computed: u16,
    },
    /// The length field does not match the body.
    #[error("length mismatch: declared {declared:04X}, actual {actual:04X}")]
    LengthMismatch {
        /// Length written in the frame.
        declared: u16,
        /// Length of the bytes received.
        actual: usize,
    },
    /// The ID token is not a quoted token of `A-Z 0-9 - *`.
    #[error("ID token is not a quoted token")]
    BadToken,
    /// The sequence number is not 4 decimal digits.
    #[error("sequence {text:?} is not 4 decimal digits")]
    BadSequence {
        /// The field as received.
        text: String,
    },
    /// The `R` receiver field is not 1–6 hex digits.
    #[error("receiver field is not R + 1-6 hex digits")]
    BadReceiver,
    /// The mandatory `L` prefix is missing or not 1–6 hex digits.
    #[error("prefix field is not L + 1-6 hex digits")]
    BadPrefix,
    /// The `#` account is missing or not 3–16 hex digits.
    #[error("account field is not # + 3-16 hex digits")]
    BadAccount,
    /// No `[` opens the data block.
    #[error("no data block ('[' missing)")]
    MissingData,
    /// The data block is not closed, or holds `[`, CR or LF.
    #[error("data block malformed: {0}")]
    BadData(&'static str),
    /// An extended-data block is not `[` + uppercase letter + value + `]`.
    #[error("x-data block malformed")]
    BadXData,
    /// Bytes after the last block that are neither x-data nor a timestamp.
    #[error("unexpected bytes after the data block")]
    TrailingBytes,
    /// The timestamp is not a valid `_HH:MM:SS,MM-DD-YYYY` (fatal only when it is mandatory).
    #[error("timestamp {text:?} is not a valid _HH:MM:SS,MM-DD-YYYY")]
    BadTimestamp {
        /// The field as received.
        text: String,
    },
    /// An encrypted frame without a timestamp (mandatory there, §1.10).
    #[error("encrypted frame has no timestamp")]
    MissingTimestamp,
    /// The message time is outside the receiver's window.
    #[error("timestamp {offset_secs:+} s from receiver clock, outside the window")]
    Stale {
        /// Receiver clock minus message time, in seconds (positive: message is old).
        offset_secs: i64,
    },
    /// The ciphertext is not whole AES blocks of hex.
    #[error("ciphertext is not whole AES blocks in hex")]
    BadCiphertext,
    /// An encrypted frame arrived and no key is configured.
    #[error("encrypted frame but no key configured")]
    NoKey,
    /// Plaintext arrived where the account requires encryption.
    #[error("plaintext frame where encryption is required")]
    EncryptionRequired,
    /// Decryption gave no `pad|data]…_timestamp` structure: wrong key, or corrupt ciphertext.
    #[error("decryption failed (wrong key?)")]
    DecryptFailed,
    /// The account is not configured on this receiver.
    #[error("account {account:?} is not configured")]
    UnknownAccount {
        /// The account as received.
        account: String,
    },
    /// A response token (ACK, NAK, DUH, RSP) arrived as a request; a receiver never answers one.
    #[error("response token {token:?} received as a request")]
    UnexpectedResponse {
        /// The token.
        token: String,
    },
}

impl FrameError {
    /// The answer DC-09 gives for this error.
    pub fn reply(&self) -> Reply {
        use FrameError::*;
        match self {
            MissingLf
            | MissingCr
            | TooShort { .. }
            | Oversize { .. }
            | BadCrcField
            | BinaryCrcNotEnabled
            | BadLengthField
            | CrcMismatch { .. }
            | LengthMismatch { .. }
            | BadToken
            | MissingData
            | UnexpectedResponse { .. } => Reply::None,
            BadSequence { .. }
            | BadReceiver
            | BadPrefix
            | BadAccount
            | BadData(_)
            | BadXData
            | TrailingBytes => Reply::Duh,
            BadTimestamp { .. }
            | MissingTimestamp
            | Stale { .. }
            | BadCiphertext
            | NoKey
            | EncryptionRequired
            | DecryptFailed
            | UnknownAccount { .. } => Reply::Nak,
        }
    }

    /// Stable snake_case name.
    pub fn kind(&self) -> &'static str {
        use FrameError::*;
        match self {
            MissingLf => "missing_lf",
            MissingCr => "missing_cr",
            TooShort { .. } => "too_short",
            Oversize { .. } => "oversize",
            BadCrcField => "bad_crc_field",
            BinaryCrcNotEnabled => "binary_crc_not_enabled",
            BadLengthField => "bad_length_field",
            CrcMismatch { .. } => "crc_mismatch",
            LengthMismatch { .. } => "length_mismatch",
            BadToken => "bad_token",
            BadSequence { .. } => "bad_sequence",
            BadReceiver => "bad_receiver",
            BadPrefix => "bad_prefix",
            BadAccount => "bad_account",
            MissingData => "missing_data",
            BadData(_) => "bad_data",
            BadXData => "bad_xdata",
            TrailingBytes => "trailing_bytes",
            BadTimestamp { .. } => "bad_timestamp",
            MissingTimestamp => "missing_timestamp",
            Stale { .. } => "stale_timestamp",
            BadCiphertext => "bad_ciphertext",
            NoKey => "no_key",
            EncryptionRequired => "encryption_required",
            DecryptFailed => "decrypt_failed",
            UnknownAccount { .. } => "unknown_account",
            UnexpectedResponse { .. } => "unexpected_response",
        }
    }
}

/// A data block (ADM-CID or SIA-DCS) that cannot be read. Answered with DUH (§1.11).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Nothing to store: the data block is empty.
    #[error("data block is empty")]
    Empty,
    /// The account block is not 3–16 hex digits.
    #[error("account block is not 3-16 hex digits")]
    BadAccount,
    /// Contact ID body is not `QXYZ GG CCC`.
    #[error("Contact ID body is not QXYZ GG CCC")]
    BadContactId,
    /// Contact ID qualifier is not 1, 3 or 6 (E, R or P in serial output).
    #[error("Contact ID qualifier {0:?} is not 1, 3 or 6")]
    BadQualifier(char),
    /// A SIA block starts with a function code vakt does not know.
    #[error("unknown SIA block function {0:?}")]
    UnknownFunction(char),
    /// A SIA data packet is neither a modifier nor an event.
    #[error("SIA packet {packet:?} unreadable at byte {at}")]
    BadSiaPacket {
        /// The packet, lossily decoded.
        packet: String,
        /// Offset of the first unreadable byte within it.
        at: usize,
    },
    /// A field is longer than vakt keeps (16 bytes).
    #[error("field longer than 16 bytes")]
    FieldTooLong,
    /// Text markers `^` are not paired.
    #[error("unterminated ^text^")]
    UnterminatedText,
}

impl PayloadError {
    /// Stable snake_case name.
    pub fn kind(&self) -> &'static str {
        use PayloadError::*;
        match self {
            Empty => "empty_data",
            BadAccount => "bad_account_block",
            BadContactId => "bad_contact_id",
            BadQualifier(_) => "bad_qualifier",
            UnknownFunction(_) => "unknown_sia_function",
            BadSiaPacket { .. } => "bad_sia_packet",
            FieldTooLong => "field_too_long",
            UnterminatedText => "unterminated_text",
        }
    }
}

/// A raw 16-digit Contact ID (DC-05) string that fails its format or check digit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContactIdError {
    /// Not exactly 16 digits.
    #[error("Contact ID string has {len} digits, not 16")]
    BadLength {
        /// Digits received.
        len: usize,
    },
    /// A character outside `0-9 A-F`.
    #[error("{0:?} is not a Contact ID digit")]
    BadDigit(char),
    /// Message type is neither 18 nor 98.
    #[error("message type {0:?} is not 18 or 98")]
    BadMessageType(String),
    /// The digit sum is not a multiple of 15.
    #[error("check digit wrong: digit sum {sum} is not a multiple of 15")]
    Checksum {
        /// Sum of all digit values.
        sum: u32,
    },
    /// Qualifier is not 1, 3 or 6.
    #[error("qualifier {0:?} is not 1, 3 or 6")]
    BadQualifier(char),
}

impl ContactIdError {
    /// Stable snake_case name.
    pub fn kind(&self) -> &'static str {
        use ContactIdError::*;
        match self {
            BadLength { .. } => "bad_length",
            BadDigit(_) => "bad_digit",
            BadMessageType(_) => "message_type_not_18_or_98",
            Checksum { .. } => "bad_checksum",
            BadQualifier(_) => "bad_qualifier",
        }
    }
}

/// A serial receiver packet that cannot be read. Answered with NAK (0x15).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SerialError {
    /// An empty packet.
    #[error("empty packet")]
    Empty,
    /// A protocol identifier vakt does not read.
    #[error("unsupported receiver protocol {0:?}")]
    UnsupportedProtocol(char),
    /// Receiver or line number missing or not digits, or the line not of the configured width.
    #[error("receiver/line header malformed")]
    BadHeader,
    /// The packet is shorter or longer than its protocol fixes.
    #[error("packet length wrong for its protocol")]
    BadLength,
    /// The Contact ID format id is not `18`/`98`.
    #[error("Contact ID format id is not 18 or 98")]
    BadMessageType,
    /// Contact ID qualifier not E/R/P (or 1/3/6).
    #[error("qualifier {0:?} is not E, R, P, 1, 3 or 6")]
    BadQualifier(char),
    /// A field holds characters its protocol does not allow.
    #[error("field {0} malformed")]
    BadField(&'static str),
    /// The SIA data inside the packet is unreadable.
    #[error("SIA data: {0}")]
    Sia(#[from] PayloadError),
    /// A raw Contact ID line that fails its check.
    #[error("Contact ID: {0}")]
    ContactId(#[from] ContactIdError),
}

impl SerialError {
    /// Stable snake_case name.
    pub fn kind(&self) -> &'static str {
        use SerialError::*;
        match self {
            Empty => "empty",
            UnsupportedProtocol(_) => "unsupported_protocol",
            BadHeader => "bad_header",
            BadLength => "bad_length",
            BadMessageType => "bad_message_type",
            BadQualifier(_) => "bad_qualifier",
            BadField(_) => "bad_field",
            Sia(e) => e.kind(),
            ContactId(e) => e.kind(),
        }
    }
}

/// A configured key that is not a valid AES key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 16, 24 or 32 bytes.
    #[error("key is {0} bytes; AES needs 16, 24 or 32")]
    BadLength(usize),
    /// Hex form with a non-hex character or an odd count.
    #[error("key is not valid hex")]
    BadHex,
}

/// Any error of this crate, for callers that want one type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// DC-09 framing, header, crypto or timestamp.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The data block.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A raw Contact ID string.
    #[error(transparent)]
    ContactId(#[from] ContactIdError),
    /// A serial receiver packet.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// A well-formed DC-09 token vakt does not process (`SIA-PUL`, `XNM`, …): stored raw, DUH.
    #[error("token {0:?} is not processed by this receiver")]
    UnsupportedToken(String),
}

impl Error {
    /// The DC-09 answer; payload errors are DUH. (Serial errors are always NAK 0x15 on their line.)
    pub fn reply(&self) -> Reply {
        match self {
            Self::Frame(e) => e.reply(),
            Self::Payload(_) | Self::ContactId(_) | Self::UnsupportedToken(_) => Reply::Duh,
            Self::Serial(_) => Reply::Nak,
        }
    }

    /// Stable snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Frame(e) => e.kind(),
            Self::Payload(e) => e.kind(),
            Self::ContactId(e) => e.kind(),
            Self::Serial(e) => e.kind(),
            Self::UnsupportedToken(_) => "unsupported_token",
        }
    }
}
