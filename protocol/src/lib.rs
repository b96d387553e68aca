//! # vakt-protocol
//!
//! Sans-IO parsers and encoders for the protocols an alarm receiving centre speaks: SIA DC-09
//! frames (plain and AES), Ademco Contact ID (in DC-09 and as raw DC-05 strings), SIA DC-03 data,
//! and serial receiver output (Sur-Gard MLR2 family, Bosch `a`, Ademco 685). Bytes in, typed
//! values out, typed values back to bytes. No sockets, files, clock or randomness: time and
//! random pad bytes are passed in by the caller.
//!
//! ## Layout
//! - [`crc`] — CRC-16/ARC.
//! - [`dc09`] — frame envelope, header, x-data, timestamp window, AES, response encoders.
//! - [`contact_id`] — Contact ID inside DC-09 (`ADM-CID`) and raw 16-digit DC-05 strings.
//! - [`sia_dcs`] — SIA DC-03 data blocks, packets, modifiers and events.
//! - [`surgard`] — serial receiver packets, both directions.
//! - [`catalogue`] — event codes with meaning, class, kind, address kind and CID↔SIA mapping.
//! - [`event`] — one event type for every format, what the gateway stores.
//! - [`codec`] — tokio-util framing for DC-09 streams and serial lines.
//! - [`error`] — typed errors, each with the reply the protocol gives.
//!
//! `PROTOCOLS.md` (in the shared design notes) is the reference; comments cite its sections.
#![warn(missing_docs)]

pub mod catalogue;
pub mod codec;
pub mod contact_id;
pub mod crc;
pub mod dc09;
pub mod error;
pub mod event;
mod parse;
pub mod short;
pub mod sia_dcs;
pub mod surgard;

pub use error::{Error, Reply};
pub use parse::lossy_text;
pub use short::Short;
