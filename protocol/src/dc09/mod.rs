//! SIA DC-09: frames, encryption, timestamps and responses (PROTOCOLS.md §1–§2).

mod crypto;
mod encode;
mod frame;
mod receive;
mod timestamp;
mod xdata;

pub use crypto::{decrypt, encrypt_hex, Key};
pub use encode::{
    encode_ack, encode_duh, encode_encrypted_ack, encode_message, encode_nak, encode_rsp, Message,
};
pub use frame::{
    lex_header, parse_body, parse_cleartext, parse_frame, split_envelope, Cleartext, Content,
    CrcFormat, Dialect, Envelope, Frame, Header, Quirks, Token, TokenKind, MAX_BODY, MAX_FRAME,
};
pub use receive::{peek_account, receive, Accepted, Policy, Rejected};
pub use timestamp::{Timestamp, TimestampField, Window};
pub use xdata::{XData, XDataKind};
