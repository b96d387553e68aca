//! # vakt
//!
//! The gateway: transports, pipeline, storage, HTTP and the command line, built on the sans-IO
//! protocol crate [`vakt_protocol`].
//!
//! ## Layout
//! - [`config`] — `vakt.toml`.
//! - [`serve`] — `vakt serve`: start-up and orderly shutdown.
//! - [`tcp`], [`udp`] — DC-09 transports.
//! - [`serial`], [`serial_packet`], [`serial_port`] — receivers and panels on serial ports.
//! - [`output`] — automation outputs (Sur-Gard) fed from the event log.
//! - [`pipeline`] — one frame: site lookup, the protocol decision, store, answer.
//! - [`writer`] — group commit: frames of all connections committed in batches.
//! - [`wal_sync`] — SQLite: the WAL fsynced beside the writer, answers only after it.
//! - [`cpu`] — a CPU of its own for the writer.
//! - [`dedup`] — frame identities and the duplicate window.
//! - [`store`] — SQLite and PostgreSQL behind one set of queries; migrations.
//! - [`site`], [`site_cache`] — sites (accounts) and their cached lookup.
//! - [`site_state`] — what an event changes in its site's state (arming, zones, not ready).
//! - [`site_copy`] — when the writer copies events into `site_events` and writes `zones` (SQLite).
//! - [`zone_backlog`] — zone state a busy writer has not yet written (SQLite).
//! - [`alarm`] — the alarm queue: which events need an operator, priority, joining, cancels.
//! - [`supervision`] — sites heard from, missed deadlines, communication failure and restore.
//! - [`codes`] — site codes: argon2id hashes, verification off the runtime.
//! - [`auth`] — operators' bearer tokens and roles.
//! - [`http`] — `/health`, `/metrics`, the JSON API.
//! - [`stream`] — the live feed of events and alarm changes behind `/api/stream`.
//! - [`decode`] — `vakt decode`: frames in, one JSON report per frame out.
//! - [`escape`] — `\n`, `\r`, `\x14` escapes for typing and printing frames.

pub mod alarm;
pub mod auth;
pub mod clock;
pub mod codes;
pub mod config;
pub mod cpu;
pub mod decode;
pub mod dedup;
pub mod escape;
pub mod http;
pub mod logging;
pub mod output;
pub mod pipeline;
pub mod serial;
pub mod serial_packet;
pub mod serial_port;
pub mod serve;
pub mod site;
pub mod site_cache;
pub mod site_copy;
pub mod site_state;
pub mod store;
pub mod stream;
pub mod supervision;
pub mod tcp;
pub mod udp;
pub mod wal_sync;
pub mod writer;
pub mod zone_backlog;
