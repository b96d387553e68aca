//! SQLite: the writer's commits made durable by a thread of their own, so that the next batch's
//! inserts run while the previous batch's fsync is in flight.
//!
//! The writer's connection commits with `synchronous=NORMAL`: the transaction's pages are in
//! the WAL file (and visible to readers) when COMMIT returns, but not yet fsynced. Its answers
//! then come here; this thread fsyncs the WAL (`fdatasync` of the same file SQLite writes) and
//! only then hands the answers to the connections. One fsync covers every batch committed
//! before it began, so answers queued while an fsync runs are delivered by the next one.
//! Durability is the same as `synchronous=FULL`, where SQLite fsyncs the WAL inside COMMIT:
//! a transaction is on disk once the WAL frames holding it are, and SQLite's checkpoints fsync
//! the WAL before copying it into the database file.
//!
//! Answers are delivered in commit order: an ACK of a duplicate never overtakes the fsync of
//! the frame it duplicates. After a failed fsync nothing more is acknowledged: Linux may have
//! dropped the unwritten pages, so a later fsync succeeding would prove nothing about them.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics::{counter, histogram};
use tokio::sync::oneshot;
use tracing::error;

use crate::writer::{NotStored, Stored};

/// One frame's answer, waiting for the fsync that makes its commit durable.
pub type Answer = (
    oneshot::Sender<Result<Stored, NotStored>>,
    Result<Stored, NotStored>,
);

/// The sync thread, fed by the writer.
#[derive(Debug)]
pub struct WalSync {
    tx: mpsc::Sender<(Instant, Vec<Answer>)>,
    thread: JoinHandle<()>,
}

impl WalSync {
    /// Starts the thread for the WAL file at `wal` (the database path with `-wal` appended),
    /// on `cpu` when the writer has a CPU of its own (`[receiver] writer_cpu`). There the
    /// kernel's work for each fsync (writing the WAL pages back) comes out of the writer's CPU
    /// rather than the connections', and an fsync starts when the writer pauses, so under load
    /// one fsync covers more commits. Measured on the 2-core machine (burst, three A/B pairs):
    /// 42,200 → 48,000 acks/s median, every pair faster.
    pub fn spawn(wal: PathBuf, cpu: Option<usize>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<(Instant, Vec<Answer>)>();
        let thread = std::thread::Builder::new()
            .name("vakt-walsync".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    if let Err(e) = crate::cpu::pin_here(cpu) {
                        tracing::warn!(error = %e, "the WAL sync thread stays on the scheduler's CPUs");
                    }
                }
                run(&wal, &rx)
            })?;
        Ok(Self { tx, thread })
    }

    /// Queues a committed batch's answers; they go out after the next fsync of the WAL. A
    /// commit nobody waits for (the supervision step alone) needs no fsync of its own: the next
    /// one, or SQLite's checkpoint, covers it.
    pub fn deliver(&self, answers: Vec<Answer>) {
        if answers.is_empty() {
            return;
        }
        if let Err(mpsc::SendError((_, answers))) = self.tx.send((Instant::now(), answers)) {
            // The thread is gone (it never exits early); fail closed, answer nothing stored.
            for (reply, _) in answers {
                let _ = reply.send(Err(NotStored));
            }
        }
    }

    /// Delivers what is queued and ends the thread.
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

fn run(path: &Path, rx: &mpsc::Receiver<(Instant, Vec<Answer>)>) {
    let mut wal = Wal {
        path,
        file: None,
        failed: false,
    };
    // After a failure every group is refused: said at most every ten seconds, not per group.
    let mut refused = 0usize;
    let mut last_said: Option<Instant> = None;
    let (seconds, waited, syncs, errors) = (
        histogram!("vakt_wal_sync_seconds"),
        // From the commit to the answer: the fsync, and the one before it when it was running.
        histogram!("vakt_ack_wait_seconds", "stage" => "sync"),
        counter!("vakt_wal_syncs_total"),
        counter!("vakt_wal_sync_errors_total"),
    );
    let mut committed: Vec<(Instant, usize)> = Vec::new();
    while let Ok((at, mut group)) = rx.recv() {
        committed.clear();
        committed.push((at, group.len()));
        // Everything queued now was committed before this fsync starts: one fsync for all.
        while let Ok((at, more)) = rx.try_recv() {
            committed.push((at, more.len()));
            group.extend(more);
        }
        let started = Instant::now();
        let synced = wal.sync();
        seconds.record(started.elapsed().as_secs_f64());
        syncs.increment(1);
        match synced {
            Ok(()) => {
                for (reply, answer) in group {
                    let _ = reply.send(answer);
                }
                let now = Instant::now();
                for &(at, n) in &committed {
                    waited.record_many(now.saturating_duration_since(at).as_secs_f64(), n);
                }
            }
            Err(e) => {
                errors.increment(1);
                refused += group.len();
                // Later groups fail with "an earlier fsync of the WAL failed".
                if last_said.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    error!(frames = refused, wal = %path.display(), error = %e,
                        "fsync of the SQLite WAL failed: these frames and every later one get \
                         no answer (panels retry or fail over); restart vakt once the disk is sound");
                    last_said = Some(Instant::now());
                    refused = 0;
                }
                for (reply, _) in group {
                    let _ = reply.send(Err(NotStored));
                }
            }
        }
    }
}

/// The WAL file, opened on first use and reopened if SQLite replaced it.
struct Wal<'a> {
    path: &'a Path,
    file: Option<(File, u64)>,
    failed: bool,
}

impl Wal<'_> {
    fn sync(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier fsync of the WAL failed"));
        }
        let r = self.sync_current();
        self.failed = r.is_err();
        r
    }

    fn sync_current(&mut self) -> io::Result<()> {
        // SQLite deletes the WAL only when its last connection closes, which the writer's own
        // connection prevents; comparing inodes costs one stat and makes that an observation
        // rather than an assumption.
        let inode = std::fs::metadata(self.path)?.ino();
        if self.file.as_ref().is_none_or(|(_, ino)| *ino != inode) {
            // Read-only: fdatasync needs no write access, and this fd must never write.
            let f = File::open(self.path)?;
            let ino = f.metadata()?.ino();
            self.file = Some((f, ino));
        }
        let (f, _) = self.file.as_ref().expect("opened above");
        f.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> (Answer, oneshot::Receiver<Result<Stored, NotStored>>) {
        let (tx, rx) = oneshot::channel();
        ((tx, Ok(Stored::New)), rx)
    }

    #[test]
    fn answers_go_out_after_the_sync_in_order() {
        let dir = std::env::temp_dir().join(format!("vakt-walsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wal = dir.join("a.db-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let s = WalSync::spawn(wal.clone(), None).unwrap();
        let (a, ra) = answer();
        let (b, rb) = answer();
        s.deliver(vec![a]);
        s.deliver(vec![b]);
        s.finish();
        assert_eq!(ra.blocking_recv().unwrap(), Ok(Stored::New));
        assert_eq!(rb.blocking_recv().unwrap(), Ok(Stored::New));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_sync_fails_closed_for_good() {
        let dir = std::env::temp_dir().join(format!("vakt-walsync-f-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No WAL file: the sync fails, the answer becomes "not stored", and so does every
        // later one even once the file is there.
        let wal = dir.join("missing.db-wal");
        let s = WalSync::spawn(wal.clone(), None).unwrap();
        let (a, ra) = answer();
        s.deliver(vec![a]);
        assert_eq!(ra.blocking_recv().unwrap(), Err(NotStored));
        std::fs::write(&wal, b"frames").unwrap();
        let (b, rb) = answer();
        s.deliver(vec![b]);
        assert_eq!(rb.blocking_recv().unwrap(), Err(NotStored));
        s.finish();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
