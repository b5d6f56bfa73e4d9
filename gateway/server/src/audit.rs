//! The first audit sink: JSON lines, one per event, written by a background thread so a slow
//! disk never holds a login. Each drained batch is synced to disk, a failed write is counted
//! (`vigie_audit_write_errors_total`) and logged, and the queue is written out before the
//! process ends ([`AuditSink::flush`] at a graceful stop, and on drop).
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use vigie_core::audit::{AuditEvent, AuditSink};

/// The longest a flush waits for the writer: a stop must not hang on a dead disk.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

enum Message {
    Line(String),
    /// Answered once every line queued before it is written and synced.
    Flush(mpsc::SyncSender<()>),
}

enum Out {
    Stdout(std::io::Stdout),
    File(std::fs::File),
}

impl Out {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Stdout(o) => o.write_all(line),
            Out::File(f) => f.write_all(line),
        }
    }

    /// To the disk, not only the page cache: an audit line a crash can take back proves nothing.
    fn sync(&mut self) -> std::io::Result<()> {
        match self {
            Out::Stdout(o) => o.flush(),
            Out::File(f) => f.sync_data(),
        }
    }
}

pub struct JsonLinesAudit {
    tx: Option<mpsc::SyncSender<Message>>,
    writer: Option<JoinHandle<()>>,
    write_errors: Arc<AtomicU64>,
}

impl JsonLinesAudit {
    /// `-` writes to standard output; anything else is a file opened for append.
    pub fn open(target: &str) -> std::io::Result<Self> {
        let out = if target == "-" {
            Out::Stdout(std::io::stdout())
        } else {
            Out::File(std::fs::OpenOptions::new().create(true).append(true).open(target)?)
        };
        let (tx, rx) = mpsc::sync_channel::<Message>(8192);
        let write_errors = Arc::new(AtomicU64::new(0));
        let errors = write_errors.clone();
        let writer = std::thread::Builder::new().name("vigie-audit".into()).spawn(move || write(out, &rx, &errors))?;
        Ok(Self { tx: Some(tx), writer: Some(writer), write_errors })
    }

    /// Writes and syncs that failed since the start.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
}

/// The writer thread: one batch is everything queued, written, then synced once.
fn write(mut out: Out, rx: &mpsc::Receiver<Message>, errors: &AtomicU64) {
    while let Ok(first) = rx.recv() {
        let mut acks = Vec::new();
        let mut failed = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    if let Err(e) = out.write_line(line.as_bytes()) {
                        failed.push(e);
                    }
                }
                Message::Flush(ack) => acks.push(ack),
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.sync() {
            failed.push(e);
        }
        if let Some(e) = failed.first() {
            errors.fetch_add(failed.len() as u64, Ordering::Relaxed);
            metrics::counter!("vigie_audit_write_errors_total").increment(failed.len() as u64);
            tracing::error!(error = %e, failures = failed.len(), "the audit trail could not be written: check `audit.file` and its disk");
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, event: &AuditEvent) {
        let mut line = serde_json::to_string(event).unwrap_or_default();
        line.push('\n');
        // A full queue waits rather than drops: an audit trail with holes is worth little.
        if self.tx.as_ref().is_none_or(|tx| tx.send(Message::Line(line)).is_err()) {
            tracing::error!("audit writer has stopped: an audit event was lost");
            metrics::counter!("vigie_audit_dropped_total").increment(1);
        }
    }

    fn flush(&self) {
        self.written_out();
    }
}

impl JsonLinesAudit {
    /// Waits up to [`FLUSH_WAIT`] for the writer to confirm that every line queued so far is
    /// written and synced: a stop must not hang on a dead disk.
    fn written_out(&self) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(Message::Flush(ack)).is_ok());
        let confirmed = sent && done.recv_timeout(FLUSH_WAIT).is_ok();
        if !confirmed {
            tracing::error!("the audit writer did not confirm its queue was written: audit events may be lost");
        }
        confirmed
    }
}

impl Drop for JsonLinesAudit {
    /// Waits (bounded) for the writer to write out what it holds, then closes the queue; the
    /// writer thread is joined only once it has confirmed, so a dead disk cannot hang the stop.
    fn drop(&mut self) {
        let confirmed = self.written_out();
        self.tx.take();
        if let Some(writer) = self.writer.take().filter(|_| confirmed) {
            let _ = writer.join();
        }
    }
}

/// `[audit]`: where the audit lines go.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// JSON-lines file of audit events; `-` for standard output.
    pub file: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { file: "-".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::audit::AuditKind;

    fn event(i: usize) -> AuditEvent {
        AuditEvent { kind: Some(AuditKind::Login), reason: Some(format!("event {i}")), ..Default::default() }
    }

    /// A sink on a fresh file of its own, with `n` events recorded.
    fn filled(name: &str, n: usize) -> (std::path::PathBuf, JsonLinesAudit) {
        let path = std::env::temp_dir().join(format!("vigie-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sink = JsonLinesAudit::open(path.to_str().unwrap()).unwrap();
        for i in 0..n {
            sink.record(&event(i));
        }
        (path, sink)
    }

    #[test]
    fn the_queue_is_written_out_before_the_sink_goes() {
        let (path, sink) = filled("drop", 20_000);
        drop(sink);
        let written = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(written.lines().count(), 20_000, "queued audit events were lost at the end");
        assert!(written.lines().last().unwrap().contains("event 19999"));
    }

    #[test]
    fn a_flush_returns_once_every_recorded_event_is_on_disk() {
        let (path, sink) = filled("flush", 5_000);
        sink.flush();
        let written = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(written.lines().count(), 5_000);
        assert_eq!(sink.write_errors(), 0);
    }

    #[test]
    fn failed_writes_are_counted_not_ignored() {
        // /dev/full accepts the open and refuses every write with ENOSPC.
        let sink = JsonLinesAudit::open("/dev/full").unwrap();
        sink.record(&event(1));
        sink.record(&event(2));
        sink.flush();
        assert!(sink.write_errors() >= 2, "{} write errors counted", sink.write_errors());
    }
}
