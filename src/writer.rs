//! Group commit: one task takes the frames of every connection from a bounded queue and commits
//! them to the database in batches, then tells each connection whether its frame is stored.
//!
//! A lone frame is committed at once (the writer never waits for a batch to fill); under load
//! the frames that arrive during one commit go into the next, so the number of commits per
//! second stays bounded by the disk while frames per second grow with the load.

use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::unix_micros;
use crate::dedup::{self, Key};
use crate::site_copy::{CopyPolicy, ZONE_PIECE};
use crate::store::{AlarmCache, CommitOptions, Db, EventRow, WriteConn};
use crate::supervision::{Seen, Step, SupervisionConfig};
use crate::wal_sync::{Answer, WalSync};
use crate::zone_backlog::ZoneBacklog;

/// What the writer answers for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Committed now.
    New,
    /// Equal to a frame stored within the duplicate window: nothing written, ACK again.
    Duplicate,
}

/// The frame could not be stored (the error is logged and counted by the writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotStored;

/// One frame to store.
#[derive(Debug)]
pub struct Job {
    /// Rows for the frame's events (at least one).
    pub rows: Vec<EventRow>,
    /// The frame's identity; `None` stores unconditionally.
    pub dedup_key: Option<Key>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<Stored, NotStored>>,
    /// When it was queued (`vakt_ack_wait_seconds{stage="queue"}`).
    pub queued: Instant,
}

/// The sending side, held by every listener.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
    seen: Arc<Seen>,
    /// `vakt_queue_depth`, set on every frame: the handle, not a registry lookup each time.
    depth: metrics::Gauge,
    /// `vakt_ack_wait_seconds{stage="stored"}`: from queueing a frame to its connection task
    /// holding the outcome (the other stages, plus the wait for that task to run again).
    stored: metrics::Histogram,
}

impl WriterHandle {
    /// Notes that `account` was heard from (any accepted message, `NULL` included) at `at`
    /// (unix microseconds), for supervision.
    pub fn seen(&self, account: &str, at: i64) {
        self.seen.note(account, at);
    }

    /// Queues a frame and waits until it is committed (or the commit failed). Waits for room
    /// when the queue is full: back-pressure reaches the sockets instead of memory.
    pub async fn store(
        &self,
        rows: Vec<EventRow>,
        dedup_key: Option<Key>,
    ) -> Result<Stored, NotStored> {
        let (reply, rx) = oneshot::channel();
        let queued = Instant::now();
        let job = Job {
            rows,
            dedup_key,
            reply,
            queued,
        };
        self.tx.send(job).await.map_err(|_| NotStored)?;
        self.depth
            .set((self.tx.max_capacity() - self.tx.capacity()) as f64);
        let outcome = rx.await.unwrap_or(Err(NotStored));
        self.stored.record(queued.elapsed().as_secs_f64());
        outcome
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub queue_capacity: usize,
    pub max_batch: usize,
    /// Run on this CPU (the process's other threads have been kept off it).
    pub cpu: Option<usize>,
    pub duplicate_window: Duration,
    /// Most frame identities kept in memory for the duplicate check.
    pub dedup_capacity: usize,
    /// A site's alarm events join its open alarm if that opened at most this long ago.
    pub alarm_join_window: Duration,
    /// Supervision period and grace.
    pub supervision: SupervisionConfig,
}

/// Starts the writer. It runs until every [`WriterHandle`] is dropped and the queue is empty,
/// so awaiting the returned receiver after shutting the listeners down commits what is in
/// flight.
///
/// The writer has a thread (and a single-threaded runtime) of its own: every ACK waits on it,
/// so it must not queue behind thousands of connection tasks for its turn on a shared worker.
pub fn spawn(db: Db, cfg: WriterConfig) -> std::io::Result<(WriterHandle, oneshot::Receiver<()>)> {
    let (tx, rx) = mpsc::channel(cfg.queue_capacity);
    let seen = Arc::new(Seen::default());
    let (done_tx, done_rx) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let noted = seen.clone();
    let sync = db
        .wal_path()
        .map(|wal| WalSync::spawn(wal, cfg.cpu))
        .transpose()?;
    std::thread::Builder::new()
        .name("vakt-writer".into())
        .spawn(move || {
            if let Some(cpu) = cfg.cpu {
                // First, so that the SQLite connection the writer opens runs here too.
                if let Err(e) = crate::cpu::pin_here(cpu) {
                    warn!(error = %e, "the writer stays on the scheduler's CPUs");
                }
            }
            let answers = Answers { sync };
            let conn = runtime.block_on(run(db, cfg, rx, noted, &answers));
            // The last answers go out after their fsync, while the connection still holds
            // the WAL open; only then is it closed.
            answers.finish();
            if let Some(c) = conn {
                runtime.block_on(c.close());
            }
            let _ = done_tx.send(());
        })?;
    let depth = gauge!("vakt_queue_depth");
    let stored = histogram!("vakt_ack_wait_seconds", "stage" => "stored");
    Ok((
        WriterHandle {
            tx,
            seen,
            depth,
            stored,
        },
        done_rx,
    ))
}

/// Where a committed batch's answers go: straight to the connections when the commit is
/// durable as it returns (PostgreSQL), through the WAL sync thread on SQLite.
struct Answers {
    sync: Option<WalSync>,
}

impl Answers {
    fn deliver(&self, answers: Vec<Answer>) {
        match &self.sync {
            Some(s) => s.deliver(answers),
            None => {
                for (reply, answer) in answers {
                    let _ = reply.send(answer);
                }
            }
        }
    }

    fn finish(self) {
        if let Some(s) = self.sync {
            s.finish();
        }
    }
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Last-seen times written with a commit of frames while a supervision step is under way
/// (`supervision::Step`): on PostgreSQL a fraction of a millisecond.
const SEEN_PIECE: usize = 64;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The writer's loop, until every handle is gone and the queue is empty. Returns its
/// connection, for the caller to close once the last answers are out.
async fn run(
    db: Db,
    cfg: WriterConfig,
    mut rx: mpsc::Receiver<Job>,
    noted: Arc<Seen>,
    answers: &Answers,
) -> Option<WriteConn> {
    let window_micros = i64::try_from(cfg.duplicate_window.as_micros()).unwrap_or(i64::MAX);
    let join_micros = i64::try_from(cfg.alarm_join_window.as_micros()).unwrap_or(i64::MAX);
    let grace_micros = i64::try_from(cfg.supervision.grace.as_micros()).unwrap_or(i64::MAX);
    let mut seen = dedup::Window::new(window_micros, cfg.dedup_capacity);
    let mut batch: Vec<Job> = Vec::with_capacity(cfg.max_batch);
    let mut verdicts: Vec<Option<Stored>> = Vec::with_capacity(cfg.max_batch);
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    let mut loaded = false;
    let mut last_prune = Instant::now();
    let mut site_copy = CopyPolicy::new(Instant::now());
    let mut conn: Option<WriteConn> = None;
    let mut alarms = AlarmCache::default();
    // Read from the events above the mark before the first commit (src/zone_backlog.rs).
    let mut zones = ZoneBacklog::default();
    // Events the writer makes itself (supervision) get references of their own.
    let node = format!("{:08x}", rand::random::<u32>());
    let made = AtomicU64::new(0);
    let frame_ref = move || format!("{node}-w{:x}", made.fetch_add(1, Ordering::Relaxed));
    let mut next_upkeep = tokio::time::Instant::now() + cfg.supervision.check_every;
    // Once due, until its check is committed; next_upkeep stays in the past meanwhile, so an
    // idle writer wakes at once to finish it (src/supervision.rs).
    let mut step = Step::default();
    let mut closing = false;
    // Where an ACK's time inside vakt goes, beside `vakt_commit_seconds`: waiting in the queue
    // for its batch's commit to start (here), and from the end of the commit to the answer
    // (SQLite: the WAL fsync, `wal_sync`).
    let queue_wait = histogram!("vakt_ack_wait_seconds", "stage" => "queue");
    let commit_wait = histogram!("vakt_ack_wait_seconds", "stage" => "commit");
    loop {
        // A frame, or the supervision step falling due, whichever comes first; once every
        // handle is gone, one last step writes the last-seen times noted. A catch-up cycle
        // under way goes on at once when no frame waits.
        let wake = if zones.cycling() && conn.is_some() {
            tokio::time::Instant::now()
        } else {
            next_upkeep
        };
        match tokio::time::timeout_at(wake, rx.recv()).await {
            Ok(Some(first)) => batch.push(first),
            Ok(None) if closing => break,
            Ok(None) => {
                closing = true;
                next_upkeep = tokio::time::Instant::now();
            }
            Err(_elapsed) => {}
        }
        while batch.len() < cfg.max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        gauge!("vakt_queue_depth").set(rx.len() as f64);
        let taken = Instant::now();
        for job in &batch {
            queue_wait.record(taken.saturating_duration_since(job.queued).as_secs_f64());
        }
        let now = unix_micros();
        if !loaded {
            // The identities stored before a restart, so a retransmission of a frame stored
            // just before a crash is still recognised.
            match db.recent_dedup(now.saturating_sub(window_micros)).await {
                Ok(keys) => {
                    info!(
                        identities = keys.len(),
                        "duplicate window restored from the database"
                    );
                    for (k, at) in keys {
                        seen.insert(k, at);
                    }
                    loaded = true;
                }
                Err(e) => {
                    error!(error = %e, "reading the duplicate window failed; frames wait");
                    for job in batch.drain(..) {
                        let _ = job.reply.send(Err(NotStored));
                    }
                    if closing {
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        seen.expire(now);
        // Duplicates of stored frames, or of an earlier frame in this batch, are not written.
        verdicts.clear();
        // A set, not a list: a batch of 500 frames would otherwise compare 125,000 key pairs.
        let mut in_batch: foldhash::HashSet<&Key> =
            foldhash::HashSetExt::with_capacity(batch.len());
        for job in &batch {
            let dup = job.dedup_key.as_ref().is_some_and(|k| {
                let dup = seen.contains(k, now);
                !in_batch.insert(k) || dup
            });
            verdicts.push(dup.then_some(Stored::Duplicate));
        }
        drop(in_batch);
        // The commit may take the rows' strings; afterwards only `class` is read of them.
        let mut frames: Vec<(Option<&Key>, &mut [EventRow])> = batch
            .iter_mut()
            .zip(&verdicts)
            .filter(|(_, v)| v.is_none())
            .map(|(j, _)| (j.dedup_key.as_ref(), j.rows.as_mut_slice()))
            .collect();
        if closing {
            step.start_last(&noted);
        } else if tokio::time::Instant::now() >= next_upkeep {
            step.start(&noted);
        }
        // A piece at least as large as the batch: a burst's few large commits take the step
        // in a few pieces, not in one extra statement pair for every 64 sites.
        let upkeep = step.next(
            !frames.is_empty(),
            SEEN_PIECE.max(frames.len()),
            (!closing).then(|| now.saturating_sub(grace_micros)),
        );
        let rows: usize = frames.iter().map(|(_, r)| r.len()).sum();
        // Not while a cycle is under way: its rest would go into this commit, before the ACKs.
        let copy_inline = site_copy.inline() && !zones.cycling();
        let started = Instant::now();
        let result = if frames.is_empty() && upkeep.is_none() {
            Ok(None)
        } else {
            let acquired = match conn.take() {
                Some(c) => Ok(c),
                None => db.writer_conn().await,
            };
            match acquired {
                Ok(mut c) => {
                    let opts = CommitOptions {
                        now,
                        dedup_cutoff: now.saturating_sub(window_micros),
                        join_after: now.saturating_sub(join_micros),
                        upkeep: upkeep.as_ref(),
                        frame_ref: &frame_ref,
                        catch_up: copy_inline,
                    };
                    let r =
                        Db::commit_batch(&mut c, &mut frames, &opts, &mut alarms, &mut zones).await;
                    if r.is_err() {
                        // Rolled back (or stored after all: a failed COMMIT may have been):
                        // what the caches learned in it may not be true.
                        alarms.clear();
                        if zones.cycling() {
                            // The cycle's rest is read again with the backlog; not inline.
                            site_copy.failed(Instant::now());
                        }
                        zones.forget();
                    }
                    // After an error the connection may be broken: take a fresh one next time.
                    if r.is_ok() {
                        conn = Some(c);
                    }
                    r.map(Some)
                }
                Err(e) => Err(e),
            }
        };
        drop(frames);
        match result {
            Ok(committed) => {
                let (fresh, supervised) = match committed {
                    Some(c) => {
                        site_copy.committed(rows, copy_inline, Instant::now());
                        (c.fresh, c.supervised)
                    }
                    None => Default::default(),
                };
                if upkeep.is_some() {
                    report(&supervised);
                    if step.written() {
                        next_upkeep = tokio::time::Instant::now() + cfg.supervision.check_every;
                    }
                }
                if !fresh.is_empty() {
                    let took = started.elapsed().as_secs_f64();
                    histogram!("vakt_commit_seconds").record(took);
                    commit_wait.record_many(took, batch.len());
                    histogram!("vakt_commit_batch_frames").record(fresh.len() as f64);
                    counter!("vakt_commits_total").increment(1);
                }
                if failing {
                    info!(
                        frames = batch.len(),
                        "database writes work again; acknowledging resumes"
                    );
                    failing = false;
                    backoff = Duration::from_millis(100);
                }
                let mut fresh = fresh.into_iter();
                // Stored events per class, counted once per batch: a labelled counter costs a
                // registry lookup (hashing, label clones) per increment.
                let mut stored: Vec<(&'static str, u64)> = Vec::new();
                let mut out = Vec::with_capacity(batch.len());
                for (job, verdict) in batch.drain(..).zip(verdicts.drain(..)) {
                    let outcome = match verdict {
                        Some(dup) => dup,
                        None if fresh.next().unwrap_or(true) => {
                            if let Some(k) = job.dedup_key {
                                seen.insert(k, now);
                            }
                            for r in &job.rows {
                                match stored.iter_mut().find(|(c, _)| *c == r.class) {
                                    Some((_, n)) => *n += 1,
                                    None => stored.push((r.class, 1)),
                                }
                            }
                            Stored::New
                        }
                        None => Stored::Duplicate,
                    };
                    if outcome == Stored::Duplicate {
                        counter!("vakt_duplicates_total").increment(1);
                    }
                    // The connection may have given up waiting; the frame is stored anyway and
                    // its retransmission will be acknowledged as a duplicate. A duplicate's
                    // answer goes the same way as a new frame's, so it never overtakes the
                    // fsync of the frame it repeats.
                    out.push((job.reply, Ok(outcome)));
                }
                answers.deliver(out);
                for (class, n) in stored {
                    counter!("vakt_events_stored_total", "class" => class).increment(n);
                }
            }
            Err(e) => {
                counter!("vakt_commit_errors_total").increment(1);
                error!(frames = batch.len(), error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "database commit failed; these frames get no answer and the panels will retry");
                failing = true;
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(NotStored));
                }
                // The last-seen times go into the next attempt, still before the check.
                if let Some(u) = upkeep {
                    step.retry(u);
                }
                if closing {
                    break;
                }
                // Frames keep queueing (bounded) while we wait; the next batch probes the
                // database again.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        // After the answers: no ACK waits for this step (the next batch does). A cycle once
        // started goes on a piece after each commit (src/zone_backlog.rs).
        if zones.cycling() || site_copy.bulk_due(Instant::now()) {
            if let Some(c) = conn.as_mut() {
                let started = Instant::now();
                let starts = !zones.cycling();
                match Db::catch_up_step(c, &mut zones, ZONE_PIECE).await {
                    Ok(done) => {
                        // (Nothing to do on PostgreSQL, where site_events is a view and
                        // zones are written with each commit.)
                        if done.events > 0 || done.zones > 0 {
                            histogram!("vakt_site_copy_seconds")
                                .record(started.elapsed().as_secs_f64());
                            counter!("vakt_site_copy_events_total").increment(done.events);
                            counter!("vakt_zone_backlog_rows_total").increment(done.zones as u64);
                        }
                        // The events up to the cycle's id are on their way; the policy counts
                        // those after it.
                        if starts {
                            site_copy.copied(started);
                        }
                    }
                    Err(e) => {
                        // Queries still find the events (by id range from `events`) and
                        // the zone state (from the events above the mark).
                        warn!(error = %e, "bringing site_events and zones up to date failed; will retry");
                        conn = None;
                        zones.forget();
                        site_copy.failed(Instant::now());
                    }
                }
            }
        }
        gauge!("vakt_zone_backlog").set(zones.len() as f64);
        gauge!("vakt_dedup_identities").set(seen.len() as f64);
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            let cutoff = unix_micros().saturating_sub(window_micros);
            if let Err(e) = db.prune_dedup(cutoff).await {
                warn!(error = %e, "pruning old duplicate keys failed; will retry");
            }
        }
    }
    gauge!("vakt_queue_depth").set(0.0);
    conn
}

/// Logs and counts what a supervision step raised and restored.
fn report(s: &crate::store::Supervised) {
    for account in &s.failed {
        warn!(
            account = account.as_str(),
            "communication failure: site missed its supervision deadline (YC stored)"
        );
    }
    for account in &s.restored {
        info!(
            account = account.as_str(),
            "communication restored: site heard from again (YK stored)"
        );
    }
    counter!("vakt_supervision_failures_total").increment(s.failed.len() as u64);
    counter!("vakt_supervision_restores_total").increment(s.restored.len() as u64);
}
