//! Copies of the audit trail for the outside world: the [`FanOut`] sink that hands every event
//! to the trail and to the exports, the syslog export to a SIEM ([`syslog`], RFC 5424 over TLS),
//! the FHIR R4 `AuditEvent` mapping of the health sector ([`fhir`]); configured under `[audit]`
//! (`[audit.syslog]`).
//!
//! The trail (`crate::audit`) is the record; an export is a copy: an export that cannot keep up
//! drops (counted, logged once per outage) and never holds the act it records.
pub mod fhir;
pub mod handover;
pub mod syslog;

use std::sync::Arc;

use vigie_core::audit::{Ack, AuditEvent, AuditSink};

/// Every event to each sink in turn: the trail first (it is the record), then the exports.
pub struct FanOut {
    sinks: Vec<Arc<dyn AuditSink>>,
}

impl FanOut {
    pub fn new(sinks: Vec<Arc<dyn AuditSink>>) -> Self {
        Self { sinks }
    }
}

impl AuditSink for FanOut {
    fn record(&self, event: &AuditEvent) {
        for sink in &self.sinks {
            sink.record(event);
        }
    }

    fn flush(&self) {
        for sink in &self.sinks {
            sink.flush();
        }
    }

    /// The acknowledgement is the trail's (the first sink): an act that waits for its trace waits
    /// for the record, never for a copy, and never gets the trait's at-once acknowledgement.
    fn record_acked(&self, event: &AuditEvent, ack: Ack) {
        let Some((trail, exports)) = self.sinks.split_first() else {
            return ack(true);
        };
        trail.record_acked(event, ack);
        for sink in exports {
            sink.record(event);
        }
    }
}

/// The trail alone, or the trail and the configured exports behind a [`FanOut`].
pub fn with_exports(
    trail: Arc<dyn AuditSink>,
    syslog: Option<&syslog::SyslogConfig>,
) -> anyhow::Result<Arc<dyn AuditSink>> {
    let Some(syslog) = syslog else { return Ok(trail) };
    let export: Arc<dyn AuditSink> = Arc::new(syslog::SyslogExport::start(syslog)?);
    Ok(Arc::new(FanOut::new(vec![trail, export])))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vigie_core::audit::AuditKind;

    use super::*;

    #[derive(Default)]
    struct Kept(Mutex<Vec<String>>, Mutex<u32>);

    impl AuditSink for Kept {
        fn record(&self, event: &AuditEvent) {
            self.0.lock().unwrap().push(event.reason.clone().unwrap_or_default());
        }
        fn flush(&self) {
            *self.1.lock().unwrap() += 1;
        }
    }

    /// A trail that keeps the acknowledgements to give them later, as the writer does after its
    /// batch is synced.
    #[derive(Default)]
    struct Slow(Mutex<Vec<Ack>>);

    impl AuditSink for Slow {
        fn record(&self, _: &AuditEvent) {}
        fn record_acked(&self, _: &AuditEvent, ack: Ack) {
            self.0.lock().unwrap().push(ack);
        }
    }

    #[test]
    fn the_acknowledgement_is_the_trails_not_the_copys() {
        let (trail, copy) = (Arc::new(Slow::default()), Arc::new(Kept::default()));
        let fan = FanOut::new(vec![trail.clone(), copy.clone()]);
        let acked = Arc::new(Mutex::new(None));
        let seen = acked.clone();
        let event = AuditEvent { kind: Some(AuditKind::Login), ..Default::default() };
        fan.record_acked(&event, Box::new(move |ok| *seen.lock().unwrap() = Some(ok)));
        assert_eq!(copy.0.lock().unwrap().len(), 1, "the copy gets the event");
        assert_eq!(*acked.lock().unwrap(), None, "not acknowledged before the trail has written it");
        trail.0.lock().unwrap().pop().unwrap()(true);
        assert_eq!(*acked.lock().unwrap(), Some(true));
    }

    #[test]
    fn every_sink_gets_every_event_and_the_flush() {
        let (a, b) = (Arc::new(Kept::default()), Arc::new(Kept::default()));
        let fan = FanOut::new(vec![a.clone(), b.clone()]);
        for i in 0..3 {
            fan.record(&AuditEvent { kind: Some(AuditKind::Login), reason: Some(i.to_string()), ..Default::default() });
        }
        fan.flush();
        for s in [a, b] {
            assert_eq!(*s.0.lock().unwrap(), ["0", "1", "2"]);
            assert_eq!(*s.1.lock().unwrap(), 1);
        }
    }
}
