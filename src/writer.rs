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

use crate::clock::unix_micros;
use crate::store::{Db, EventRow};

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
    /// Duplicate key; `None` stores unconditionally.
    pub dedup_key: Option<String>,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<Stored, NotStored>>,
}

/// The sending side, held by every listener.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

impl WriterHandle {
    /// Queues a frame and waits until it is committed (or the commit failed). Waits for room
    /// when the queue is full: back-pressure reaches the sockets instead of memory.
    pub async fn store(
        &self,
        rows: Vec<EventRow>,
        dedup_key: Option<String>,
    ) -> Result<Stored, NotStored> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            rows,
            dedup_key,
            reply,
        };
        self.tx.send(job).await.map_err(|_| NotStored)?;
        gauge!("vakt_queue_depth").set((self.tx.max_capacity() - self.tx.capacity()) as f64);
        rx.await.unwrap_or(Err(NotStored))
    }
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub queue_capacity: usize,
    pub max_batch: usize,
    pub duplicate_window: Duration,
}

/// Starts the writer. It runs until every [`WriterHandle`] is dropped and the queue is empty,
/// so waiting on the returned task after shutting the listeners down commits what is in flight.
pub fn spawn(db: Db, cfg: WriterConfig) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(cfg.queue_capacity);
    let task = tokio::spawn(run(db, cfg, rx));
    (WriterHandle { tx }, task)
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

async fn run(db: Db, cfg: WriterConfig, mut rx: mpsc::Receiver<Job>) {
    let window_micros = i64::try_from(cfg.duplicate_window.as_micros()).unwrap_or(i64::MAX);
    let mut batch: Vec<Job> = Vec::with_capacity(cfg.max_batch);
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    let mut last_prune = Instant::now();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < cfg.max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        gauge!("vakt_queue_depth").set(rx.len() as f64);
        let started = Instant::now();
        let now = unix_micros();
        let frames: Vec<(Option<&str>, &[EventRow])> = batch
            .iter()
            .map(|j| (j.dedup_key.as_deref(), j.rows.as_slice()))
            .collect();
        let result = db
            .commit_batch(&frames, now, now.saturating_sub(window_micros))
            .await;
        drop(frames);
        match result {
            Ok(fresh) => {
                let took = started.elapsed();
                histogram!("vakt_commit_seconds").record(took.as_secs_f64());
                histogram!("vakt_commit_batch_frames").record(batch.len() as f64);
                counter!("vakt_commits_total").increment(1);
                if failing {
                    info!(
                        frames = batch.len(),
                        "database writes work again; acknowledging resumes"
                    );
                    failing = false;
                    backoff = Duration::from_millis(100);
                }
                for (job, new) in batch.drain(..).zip(fresh) {
                    let outcome = if new {
                        for r in &job.rows {
                            counter!("vakt_events_stored_total", "class" => r.class).increment(1);
                        }
                        Stored::New
                    } else {
                        counter!("vakt_duplicates_total").increment(1);
                        Stored::Duplicate
                    };
                    // The connection may have given up waiting; the frame is stored anyway and
                    // its retransmission will be acknowledged as a duplicate.
                    let _ = job.reply.send(Ok(outcome));
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
                // Frames keep queueing (bounded) while we wait; the next batch probes the
                // database again.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            let cutoff = unix_micros().saturating_sub(window_micros);
            if let Err(e) = db.prune_dedup(cutoff).await {
                warn!(error = %e, "pruning old duplicate keys failed; will retry");
            }
        }
    }
    gauge!("vakt_queue_depth").set(0.0);
}
