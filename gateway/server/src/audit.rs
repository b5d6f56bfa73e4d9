//! The first audit sink: JSON lines, one per event, written by a background thread so a slow
//! disk never holds a login.
use std::io::Write;
use std::sync::mpsc;

use vigie_core::audit::{AuditEvent, AuditSink};

pub struct JsonLinesAudit {
    tx: mpsc::SyncSender<String>,
}

impl JsonLinesAudit {
    /// `-` writes to standard output; anything else is a file opened for append.
    pub fn open(target: &str) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(target)?)
        };
        let (tx, rx) = mpsc::sync_channel::<String>(8192);
        std::thread::Builder::new().name("vigie-audit".into()).spawn(move || {
            while let Ok(line) = rx.recv() {
                let _ = out.write_all(line.as_bytes());
                // Drain what is queued before one flush.
                while let Ok(more) = rx.try_recv() {
                    let _ = out.write_all(more.as_bytes());
                }
                let _ = out.flush();
            }
        })?;
        Ok(Self { tx })
    }
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, event: &AuditEvent) {
        let mut line = serde_json::to_string(event).unwrap_or_default();
        line.push('\n');
        // A full queue waits rather than drops: an audit trail with holes is worth little.
        if self.tx.send(line).is_err() {
            tracing::error!("audit writer has stopped: an audit event was lost");
            metrics::counter!("vigie_audit_dropped_total").increment(1);
        }
    }
}
