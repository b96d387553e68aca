//! What happens to one DC-09 frame, whatever transport it came on: look the site up, let
//! [`receive`] decide, store what must be stored, and build the answer. The answer is only an
//! ACK once the writer reports the frame committed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use metrics::{counter, Counter};
use tracing::{debug, info, warn};
use vakt_protocol::dc09::{
    encode_ack, encode_duh, encode_encrypted_ack, encode_nak, lex_header, peek_account, receive,
    split_envelope, Accepted, Dialect, Policy, Rejected, Timestamp, TimestampField, TokenKind,
    Window,
};
use vakt_protocol::event::{Event, Payload};
use vakt_protocol::{lossy_text, Reply};

use crate::clock::unix_secs;
use crate::config::ReceiverConfig;
use crate::dedup::Key;
use crate::escape::{escape, escape_into};
use crate::site::{hex_number, Site};
use crate::site_cache::SiteCache;
use crate::store::EventRow;
use crate::writer::{Stored, WriterHandle};

/// Where a frame came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Listener name.
    pub listener: Arc<str>,
    /// `tcp`, `udp`.
    pub transport: &'static str,
    /// Receiver number the listener answers for.
    pub receiver: Option<u32>,
    /// Prefix the listener answers for.
    pub prefix: Option<u32>,
}

/// The answer to one frame and why.
#[derive(Debug)]
pub struct Answer {
    /// Bytes to send back; `None`: send nothing.
    pub frame: Option<BytesMut>,
    /// `ack`, `nak`, `duh` or `none`.
    pub outcome: &'static str,
}

/// Shared by every listener.
#[derive(Debug)]
pub struct Pipeline {
    sites: Arc<SiteCache>,
    writer: WriterHandle,
    window: Window,
    check_plain_timestamps: bool,
    store_timeout: Duration,
    node: String,
    frames: AtomicU64,
}

/// Tokens whose names are used as metric labels; anything else is counted as `other`, so a
/// stream of invented tokens cannot grow the metric set.
fn token_label(kind: TokenKind<'_>) -> &'static str {
    match kind {
        TokenKind::SiaDcs => "SIA-DCS",
        TokenKind::AdmCid => "ADM-CID",
        TokenKind::Null => "NULL",
        TokenKind::Ack => "ACK",
        TokenKind::Nak => "NAK",
        TokenKind::Duh => "DUH",
        TokenKind::Rsp => "RSP",
        TokenKind::Other(_) => "other",
    }
}

impl Pipeline {
    /// A pipeline storing through `writer`.
    pub fn new(sites: Arc<SiteCache>, writer: WriterHandle, cfg: &ReceiverConfig) -> Self {
        Self {
            sites,
            writer,
            window: Window {
                behind: cfg.window_behind_secs,
                ahead: cfg.window_ahead_secs,
            },
            check_plain_timestamps: cfg.check_plain_timestamps,
            store_timeout: cfg.store_timeout(),
            node: format!("{:08x}", rand::random::<u32>()),
            frames: AtomicU64::new(0),
        }
    }

    /// Handles one frame (LF … CR) read from `peer` (its address as text: a connection writes
    /// it once, not once per frame); `received_at` is when it was fully read.
    pub async fn dc09(&self, raw: &[u8], origin: &Origin, peer: &str, received_at: i64) -> Answer {
        let now = unix_secs();
        let account = peek_account(raw).map(str::to_ascii_uppercase);
        let site = match &account {
            Some(a) => match self.sites.get(a).await {
                Ok(site) => site,
                Err(e) => {
                    // Not knowing whether the account exists is not a reason to NAK it.
                    warn!(listener = %origin.listener, %peer, account = a.as_str(), error = %e,
                        "site lookup failed; frame not answered");
                    return self.finish(origin, "unknown", "none", "site_lookup_failed", None);
                }
            },
            None => None,
        };
        let policy = site.as_deref().map(|s| Policy {
            quirks: s.quirks,
            key: s.key.as_ref(),
            encryption_required: s.spec.encryption_required,
            window: self.window,
            check_plain_timestamps: self.check_plain_timestamps,
        });
        let mut buf = Vec::new();
        match receive(raw, now, &mut buf, |_| policy) {
            Ok(accepted) => {
                self.accepted(raw, accepted, site, origin, peer, received_at, now)
                    .await
            }
            Err(rejected) => {
                self.rejected(raw, rejected, site, origin, peer, received_at, now)
                    .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn accepted(
        &self,
        raw: &[u8],
        a: Accepted<'_>,
        site: Option<Arc<Site>>,
        origin: &Origin,
        peer: &str,
        received_at: i64,
        now: i64,
    ) -> Answer {
        let site = site.expect("receive() accepts only frames of known sites");
        let token = token_label(a.header.token.kind);
        let account = site.spec.normalized_account();
        if let Some(reason) = self.misaddressed(&a, &site, origin) {
            warn!(listener = %origin.listener, %peer, account, token, reason,
                receiver = a.header.receiver, prefix = a.header.prefix, "frame for another receiver or line: NAK");
            return self.nak(origin, token, reason, now, a.dialect);
        }
        // Any accepted message, heartbeat or event, keeps the site's supervision alive.
        self.writer.seen(&account, received_at);
        if a.payload == Payload::Null {
            counter!("vakt_supervision_total", "transport" => origin.transport).increment(1);
            debug!(listener = %origin.listener, %peer, account, "supervision (NULL): ACK");
            return self.finish(
                origin,
                token,
                "ack",
                "supervision",
                Some(ack(&a, &site, now)),
            );
        }
        let frame_ref = self.frame_ref();
        let rows = rows(&a, raw, &account, origin, peer, received_at, &frame_ref);
        let key = crate::dedup::key_of(dedup_key(&account, &a).as_bytes());
        match self.store(rows, Some(key)).await {
            Ok(stored) => {
                let reason = match stored {
                    Stored::New => "stored",
                    Stored::Duplicate => {
                        info!(listener = %origin.listener, %peer, account, token,
                            sequence = a.header.sequence, "retransmission of a stored frame: ACK again, not stored twice");
                        "duplicate"
                    }
                };
                self.finish(origin, token, "ack", reason, Some(ack(&a, &site, now)))
            }
            Err(reason) => {
                warn!(listener = %origin.listener, %peer, account, token, sequence = a.header.sequence,
                    reason, timeout_s = self.store_timeout.as_secs(),
                    "frame not stored (database error or store timeout): no answer, the panel will retry");
                self.finish(origin, token, "none", reason, None)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn rejected(
        &self,
        raw: &[u8],
        r: Rejected<'_>,
        site: Option<Arc<Site>>,
        origin: &Origin,
        peer: &str,
        received_at: i64,
        now: i64,
    ) -> Answer {
        let reason = r.error.kind();
        let token = split_envelope(raw)
            .ok()
            .and_then(|e| lex_header(e.body).ok())
            .map_or("unknown", |(t, _, _)| token_label(t.kind));
        let account = r.account.unwrap_or("");
        match (r.reply, r.echo) {
            (Reply::Nak, _) => {
                warn!(listener = %origin.listener, %peer, account, token, reason, detail = %r.error, "NAK");
                self.nak(origin, token, reason, now, r.dialect)
            }
            (Reply::Duh, Some(echo)) => {
                // A genuine frame (its CRC held) that we cannot read: keep it for the operator,
                // when it belongs to one of our sites, before telling the panel to drop it.
                if let Some(site) = &site {
                    let row = raw_row(
                        raw,
                        site,
                        echo,
                        &r,
                        origin,
                        peer,
                        received_at,
                        self.frame_ref(),
                    );
                    let key = crate::dedup::key_of(&[b"raw|", raw].concat());
                    match self.store(vec![row], Some(key)).await {
                        Ok(_) => {}
                        Err(_) => {
                            warn!(listener = %origin.listener, %peer, account, token, reason,
                                "unprocessable frame could not be stored: no answer, the panel will retry");
                            return self.finish(origin, token, "none", "store_failed", None);
                        }
                    }
                }
                warn!(listener = %origin.listener, %peer, account, token, reason, detail = %r.error,
                    stored = site.is_some(), "DUH");
                let mut out = BytesMut::new();
                encode_duh(echo, r.dialect, &mut out);
                self.finish(origin, token, "duh", reason, Some(out))
            }
            _ => {
                warn!(listener = %origin.listener, %peer, account, token, reason, detail = %r.error,
                    bytes = %escape(&raw[..raw.len().min(120)]), "no answer");
                self.finish(origin, token, "none", reason, None)
            }
        }
    }

    /// A frame whose `R` or `L` differs from what its listener or site is set up for.
    fn misaddressed(&self, a: &Accepted<'_>, site: &Site, origin: &Origin) -> Option<&'static str> {
        let frame_r = a.header.receiver.and_then(hex_number);
        let frame_l = hex_number(a.header.prefix);
        let site_r = site.spec.receiver.as_deref().and_then(hex_number);
        let site_l = site.spec.prefix.as_deref().and_then(hex_number);
        for want in [origin.receiver, site_r].into_iter().flatten() {
            if frame_r.is_some_and(|r| r != want) {
                return Some("wrong_receiver");
            }
        }
        for want in [origin.prefix, site_l].into_iter().flatten() {
            if frame_l != Some(want) {
                return Some("wrong_prefix");
            }
        }
        None
    }

    fn nak(
        &self,
        origin: &Origin,
        token: &'static str,
        reason: &'static str,
        now: i64,
        dialect: Dialect,
    ) -> Answer {
        let mut out = BytesMut::new();
        encode_nak(Timestamp::from_unix(now), dialect, &mut out);
        self.finish(origin, token, "nak", reason, Some(out))
    }

    fn finish(
        &self,
        origin: &Origin,
        token: &'static str,
        outcome: &'static str,
        reason: &'static str,
        frame: Option<BytesMut>,
    ) -> Answer {
        count_answer(origin.transport, token, outcome, reason);
        Answer { frame, outcome }
    }

    /// Stores a frame's rows, giving up after the store timeout; the error is the reason
    /// (`store_failed`, `store_timeout`) for metrics and logs.
    async fn store(&self, rows: Vec<EventRow>, key: Option<Key>) -> Result<Stored, &'static str> {
        match tokio::time::timeout(self.store_timeout, self.writer.store(rows, key)).await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(_)) => Err("store_failed"),
            Err(_) => Err("store_timeout"),
        }
    }

    /// Stores rows without a duplicate check (serial packets carry no sequence or timestamp
    /// to tell a retransmission from a repeated event).
    pub async fn store_rows(&self, rows: Vec<EventRow>) -> Result<(), &'static str> {
        for r in &rows {
            self.writer.seen(&r.account, r.received_at);
        }
        self.store(rows, None).await.map(drop)
    }

    /// A node-unique reference for the next frame or packet.
    pub fn frame_ref(&self) -> String {
        let n = self.frames.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.node)
    }
}

/// Counts one frame (or serial packet) by token and outcome, and its answer with the reason.
///
/// The handles are kept per thread by their labels: `counter!` with labels allocates the label
/// list, hashes the key and searches the registry on every call, twice per frame here.
pub fn count_answer(
    transport: &'static str,
    token: &'static str,
    outcome: &'static str,
    reason: &'static str,
) {
    type Handles = HashMap<[&'static str; 4], (Counter, Counter)>;
    thread_local! {
        static HANDLES: RefCell<Handles> = RefCell::default();
    }
    HANDLES.with_borrow_mut(|h| {
        let (frames, answers) = h
            .entry([transport, token, outcome, reason])
            .or_insert_with(|| {
                (
                    counter!("vakt_frames_total", "transport" => transport, "token" => token,
                    "outcome" => outcome),
                    counter!("vakt_answers_total", "answer" => outcome, "reason" => reason),
                )
            });
        frames.increment(1);
        answers.increment(1);
    });
}

/// Bytes reserved for an answer.
const ACK_CAPACITY: usize = 128;

/// ACK or, for an encrypted frame, `*ACK` with the receiver's time.
fn ack(a: &Accepted<'_>, site: &Site, now: i64) -> BytesMut {
    // Room for an encrypted ACK with a long account, so it is written without regrowing.
    let mut out = BytesMut::with_capacity(ACK_CAPACITY);
    match (a.encrypted, &site.key) {
        (true, Some(key)) => encode_encrypted_ack(
            &a.header,
            key,
            Timestamp::from_unix(now),
            rand::random(),
            a.dialect,
            &mut out,
        ),
        _ => encode_ack(&a.header, a.dialect, &mut out),
    }
    out
}

/// What makes two frames "the same message" (PROTOCOLS.md §1.5): site, prefix, receiver,
/// token, sequence and everything in the data section but the encryption pad. The panel's
/// timestamp is part of it: a retransmission repeats it, a rebooted panel restarting its
/// sequence sends a new one.
fn dedup_key(account: &str, a: &Accepted<'_>) -> String {
    // Written straight into one string: this runs for every frame, and the `format!`s and
    // `to_string`s it was first written with were a tenth of a connection thread's
    // instructions. The bytes are those of the first release (see the test).
    let h = &a.header;
    let mut key = String::with_capacity(account.len() + a.clear.data.len() + 48);
    key.push_str(account);
    key.push('|');
    push_number_or_text(&mut key, h.prefix);
    key.push('|');
    if let Some(r) = h.receiver {
        push_number_or_text(&mut key, r);
    }
    key.push('|');
    if a.encrypted {
        key.push('*');
    }
    key.push_str(h.token.kind.as_str());
    key.push('|');
    key.push_str(h.sequence);
    key.push('|');
    escape_into(&mut key, a.clear.data);
    for x in &a.clear.xdata {
        key.push('[');
        key.push(char::from(x.id));
        escape_into(&mut key, x.value);
        key.push(']');
    }
    match a.clear.timestamp {
        TimestampField::Valid(ts) => {
            let _ = write!(key, "_{}", ts.unix());
        }
        TimestampField::Invalid(t) => {
            key.push('_');
            escape_into(&mut key, t);
        }
        TimestampField::Absent => {}
    }
    key
}

/// A hex field as its number in decimal, or as written when it is not a number.
fn push_number_or_text(key: &mut String, hex: &str) {
    match hex_number(hex) {
        Some(v) => {
            let _ = write!(key, "{v}");
        }
        None => key.push_str(hex),
    }
}

fn xdata_json(a: &Accepted<'_>) -> Option<String> {
    if a.clear.xdata.is_empty() {
        return None;
    }
    let v: Vec<_> = a
        .clear
        .xdata
        .iter()
        .map(|x| serde_json::json!({ "id": char::from(x.id).to_string(), "value": lossy_text(x.value) }))
        .collect();
    Some(serde_json::Value::Array(v).to_string())
}

fn base_row(
    raw: &[u8],
    account: &str,
    origin: &Origin,
    peer: &str,
    received_at: i64,
    frame_ref: &str,
) -> EventRow {
    EventRow {
        frame_ref: frame_ref.to_owned(),
        received_at,
        listener: origin.listener.to_string(),
        transport: origin.transport,
        peer: peer.to_owned(),
        account: account.to_owned(),
        raw: raw.to_vec(),
        ..EventRow::default()
    }
}

fn rows(
    a: &Accepted<'_>,
    raw: &[u8],
    account: &str,
    origin: &Origin,
    peer: &str,
    received_at: i64,
    frame_ref: &str,
) -> Vec<EventRow> {
    let h = &a.header;
    let mut base = base_row(raw, account, origin, peer, received_at, frame_ref);
    base.token = h.token.kind.as_str().to_owned();
    base.encrypted = a.encrypted;
    base.sequence = h.sequence.to_owned();
    base.receiver = h.receiver.map(str::to_owned);
    base.prefix = Some(h.prefix.to_owned());
    base.outcome = "ack";
    base.panel_time = a.clear.timestamp.valid().map(|t| t.unix());
    base.data = Some(lossy_text(a.clear.data));
    base.xdata = xdata_json(a);
    let events = a.payload.events();
    // The last event takes the base itself: most frames carry one event, and a clone of a
    // row is a dozen allocations.
    let Some((last, others)) = events.split_last() else {
        return Vec::new();
    };
    let mut rows: Vec<EventRow> = others
        .iter()
        .enumerate()
        .map(|(i, e)| event_row(&base, i, e))
        .collect();
    rows.push(fill_event_row(base, others.len(), last));
    rows
}

/// The row of the `i`th event of a frame or packet whose common fields are in `base`.
pub(crate) fn event_row(base: &EventRow, i: usize, e: &Event<'_>) -> EventRow {
    fill_event_row(base.clone(), i, e)
}

fn fill_event_row(mut row: EventRow, i: usize, e: &Event<'_>) -> EventRow {
    let s = |x: Option<vakt_protocol::Short>| x.map(|v| v.as_str().to_owned());
    row.seq_in_frame = i32::try_from(i).unwrap_or(i32::MAX);
    row.scheme = Some(e.scheme.name());
    row.code = (!e.code.is_empty()).then(|| e.code.as_str().to_owned());
    row.qualifier = e.qualifier.map(|q| char::from(q.digit()).to_string());
    row.class = e.class.name();
    row.kind = e.kind.map(|k| k.name());
    row.meaning = e.meaning;
    row.mapped_code = e.mapped_code();
    row.partition = s(e.partition);
    row.address = s(e.address);
    row.address_kind = e.address.map(|_| e.address_kind.name());
    row.zone = s(e.zone);
    row.user_no = s(e.user);
    row.text = e.text.map(lossy_text);
    row.event_time = match (e.time, e.date) {
        (None, None) => None,
        (t, d) => Some(format!(
            "{}{}{}",
            d.map(|d| d.as_str().to_owned()).unwrap_or_default(),
            if t.is_some() && d.is_some() { " " } else { "" },
            t.map(|t| t.as_str().to_owned()).unwrap_or_default()
        )),
    };
    row
}

#[allow(clippy::too_many_arguments)]
fn raw_row(
    raw: &[u8],
    site: &Site,
    echo: &[u8],
    r: &Rejected<'_>,
    origin: &Origin,
    peer: &str,
    received_at: i64,
    frame_ref: String,
) -> EventRow {
    let mut row = base_row(
        raw,
        &site.spec.normalized_account(),
        origin,
        peer,
        received_at,
        &frame_ref,
    );
    let token = split_envelope(raw)
        .ok()
        .and_then(|e| lex_header(e.body).ok())
        .map(|(t, _, _)| (t.kind.as_str().to_owned(), t.encrypted));
    if let Some((t, enc)) = token {
        row.token = t;
        row.encrypted = enc;
    }
    // The echo is `seq[Rrcvr]Lpref#acct`; its first four characters are the sequence as sent.
    row.sequence = lossy_text(&echo[..echo.len().min(4)]);
    row.outcome = "duh";
    row.reason = Some(r.error.to_string());
    row.class = "unprocessed";
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_protocol::dc09::{encode_message, Key, Message, Quirks, XData};

    const NOW: i64 = 1_765_000_000;

    /// The bytes a frame's duplicate identity is made of. They are stored (`events.dedup`,
    /// the shared `dedup` table) and compared across restarts and nodes, so they must never
    /// change with the code that builds them: these are the keys of the first release.
    #[test]
    fn dedup_keys_stay_byte_for_byte_what_they_were() {
        let key = Key::from_hex("000102030405060708090a0b0c0d0e0f").unwrap();
        let ts = Timestamp::from_unix(NOW);
        let xdata = [
            XData {
                id: b'X',
                value: b"E012.34",
            },
            XData {
                id: b'Z',
                value: b"caf\xe9\x01\\",
            },
        ];
        let cases: [(Message<'_>, Option<&Key>, &str); 5] = [
            (
                message(
                    "ADM-CID",
                    "0042",
                    Some("12"),
                    "7AB",
                    b"#1234|1131 01 015",
                    &[],
                    None,
                ),
                None,
                "1234|1963|18|ADM-CID|0042|#1234|1131 01 015",
            ),
            (
                message(
                    "SIA-DCS",
                    "9999",
                    None,
                    "0",
                    b"#1234|Nri1/BA01",
                    &xdata,
                    Some(ts),
                ),
                None,
                "1234|0||SIA-DCS|9999|#1234|Nri1/BA01[XE012.34][Zcaf\\xe9\\x01\\\\]_1765000000",
            ),
            (
                message(
                    "ADM-CID",
                    "0001",
                    Some("0A"),
                    "00",
                    b"#1234|1401 02 003",
                    &[],
                    Some(ts),
                ),
                Some(&key),
                "1234|0|10|*ADM-CID|0001|#1234|1401 02 003_1765000000",
            ),
            (
                message("SIA-DCS", "0007", None, "0", b"#1234|NOP01", &[], Some(ts)),
                Some(&key),
                "1234|0||*SIA-DCS|0007|#1234|NOP01_1765000000",
            ),
            (
                message(
                    "ADM-CID",
                    "0003",
                    None,
                    "FFFFFF",
                    b"#1234|3131 01 099",
                    &[],
                    None,
                ),
                None,
                "1234|16777215||ADM-CID|0003|#1234|3131 01 099",
            ),
        ];
        for (i, (msg, key, want)) in cases.into_iter().enumerate() {
            let mut raw = BytesMut::new();
            encode_message(
                &msg,
                key.map(|k| (k, [7; 16])),
                Dialect::default(),
                &mut raw,
            );
            let mut buf = Vec::new();
            let a = receive(&raw, NOW, &mut buf, |_| Some(policy(key)))
                .unwrap_or_else(|r| panic!("case {i}: {:?}", r.error));
            assert_eq!(dedup_key("1234", &a), want, "case {i}");
        }

        // A timestamp that does not parse is part of the identity as written.
        let msg = message(
            "ADM-CID",
            "0005",
            None,
            "0",
            b"#1234|1131 01 015",
            &[],
            Some(ts),
        );
        let mut raw = BytesMut::new();
        encode_message(&msg, None, Dialect::default(), &mut raw);
        let at = raw.iter().rposition(|&b| b == b'_').unwrap() + 1;
        raw[at..at + 2].copy_from_slice(b"x\x01");
        let body_at = raw.iter().position(|&b| b == b'"').unwrap();
        let crc = vakt_protocol::crc::crc16_arc(&raw[body_at..raw.len() - 1]);
        raw[1..5].copy_from_slice(format!("{crc:04X}").as_bytes());
        let mut buf = Vec::new();
        let a = receive(&raw, NOW, &mut buf, |_| Some(policy(None))).expect("accepted");
        assert!(matches!(a.clear.timestamp, TimestampField::Invalid(_)));
        assert_eq!(
            dedup_key("1234", &a),
            "1234|0||ADM-CID|0005|#1234|1131 01 015_x\\x01:46:40,12-06-2025"
        );
    }

    /// Plain frames' timestamps unchecked, as by default.
    fn policy(key: Option<&Key>) -> Policy<'_> {
        Policy {
            quirks: Quirks::default(),
            key,
            encryption_required: false,
            window: Window::default(),
            check_plain_timestamps: false,
        }
    }

    fn message<'a>(
        token: &'a str,
        sequence: &'a str,
        receiver: Option<&'a str>,
        prefix: &'a str,
        data: &'a [u8],
        xdata: &'a [XData<'a>],
        timestamp: Option<Timestamp>,
    ) -> Message<'a> {
        Message {
            token: TokenKind::from_text(token),
            sequence,
            receiver,
            prefix,
            account: "1234",
            data,
            xdata,
            timestamp,
        }
    }
}
