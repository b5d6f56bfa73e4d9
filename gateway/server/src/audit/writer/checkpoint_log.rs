//! The checkpoint log of a file trail (`<trail>.checkpoints`, and the witness copy), written and
//! synced by a thread of its own: the writer signs a note once the records it covers are synced
//! and hands it over, so the log's own `fdatasync` never holds a batch of the trail back (issue 18:
//! the trail's cost on the answer's p99). Notes are logged in the order they were signed.
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use super::{Checkpoints, FLUSH_WAIT, Status};

enum Job {
    Note {
        note: String,
        seq: u64,
    },
    /// Answered once every note sent before it is logged.
    Barrier(mpsc::SyncSender<()>),
}

pub(super) struct CheckpointLog {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// The sequence number the last logged note covers.
    written: Arc<AtomicU64>,
    /// Set when a note could not be logged, until the writer takes it.
    failed: Arc<AtomicBool>,
}

impl CheckpointLog {
    pub(super) fn start(c: &Checkpoints, status: Arc<Status>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (log, witness) = (c.log.clone(), c.witness.clone());
        let written = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let (w, f) = (written.clone(), failed.clone());
        let thread = std::thread::Builder::new().name("vigie-audit-checkpoints".into()).spawn(move || {
            for job in rx {
                match job {
                    Job::Note { note, seq } => match log_note(&log, witness.as_ref(), &note) {
                        Ok(()) => {
                            w.store(seq, Ordering::Relaxed);
                            metrics::counter!("vigie_audit_checkpoints_total").increment(1);
                        }
                        Err(e) => {
                            status.failed(&e, 0);
                            f.store(true, Ordering::Relaxed);
                        }
                    },
                    Job::Barrier(done) => {
                        let _ = done.send(());
                    }
                }
            }
        })?;
        Ok(Self { tx: Some(tx), thread: Some(thread), written, failed })
    }

    /// Hands a signed note covering records up to `seq` (all synced) to the log.
    pub(super) fn send(&self, note: String, seq: u64) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::Note { note, seq });
        }
    }

    /// Waits (at most [`FLUSH_WAIT`]: a dead disk must not hang a stop) until every note sent so
    /// far is logged.
    pub(super) fn written_out(&self) -> bool {
        let (done, wait) = mpsc::sync_channel(1);
        self.tx.as_ref().is_some_and(|tx| tx.send(Job::Barrier(done)).is_ok()) && wait.recv_timeout(FLUSH_WAIT).is_ok()
    }

    /// After a note that could not be logged: the sequence number the last logged one covers,
    /// from which the writer signs again.
    pub(super) fn take_failed(&self) -> Option<u64> {
        self.failed.swap(false, Ordering::Relaxed).then(|| self.written.load(Ordering::Relaxed))
    }
}

impl Drop for CheckpointLog {
    /// The notes handed over are logged before the writer ends (bounded like a flush).
    fn drop(&mut self) {
        super::close(self.written_out(), &mut self.tx, &mut self.thread);
    }
}

/// One JSON line `{"checkpoint": "<signed note>"}` appended to `log` and synced, then the note
/// alone put in place of the witness copy.
fn log_note(log: &PathBuf, witness: Option<&PathBuf>, note: &str) -> std::io::Result<()> {
    let line = format!("{}\n", serde_json::json!({ "checkpoint": note }));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data()))?;
    witness.map_or(Ok(()), |w| {
        let tmp = w.with_extension("tmp");
        std::fs::write(&tmp, note).and_then(|()| std::fs::rename(&tmp, w))
    })
}
