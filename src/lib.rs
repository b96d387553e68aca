//! # vakt
//!
//! The gateway: transports, pipeline, storage, HTTP and the command line, built on the sans-IO
//! protocol crate [`vakt_protocol`].
//!
//! ## Layout
//! - [`decode`] — `vakt decode`: frames in, one JSON report per frame out.
//! - [`escape`] — `\n`, `\r`, `\x14` escapes for typing and printing frames.

pub mod decode;
pub mod escape;
