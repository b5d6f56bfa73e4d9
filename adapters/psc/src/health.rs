//! PSC's health as seen from here: per exchange, when it last worked, how it last failed and how
//! long it took; the signal the readiness probe and the degraded mode read. Also the metrics.
use crate::error::{Op, PscError};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
pub use vigie_core::psc::{OpHealth, PscHealth};

/// The record of one kind of exchange, to update.
fn op_mut(h: &mut PscHealth, op: Op) -> &mut OpHealth {
    match op {
        Op::Discovery => &mut h.discovery,
        Op::Jwks => &mut h.jwks,
        Op::Token => &mut h.token,
        Op::Userinfo => &mut h.userinfo,
    }
}

/// The live record behind [`PscHealth`] snapshots.
#[derive(Default)]
pub(crate) struct HealthRecorder(Mutex<PscHealth>);

impl HealthRecorder {
    pub(crate) fn snapshot(&self) -> PscHealth {
        self.lock().clone()
    }

    /// Records one exchange: its duration in the histogram, its failure in the error counter and
    /// in the health record when PSC is to blame.
    pub(crate) fn record(&self, op: Op, elapsed: Duration, outcome: Result<(), &PscError>) {
        metrics::histogram!("vigie_upstream_request_seconds", "upstream" => "psc", "op" => op.as_str())
            .record(elapsed.as_secs_f64());
        let now = unix_now();
        let mut h = self.lock();
        let rec = op_mut(&mut h, op);
        rec.requests += 1;
        rec.last_latency_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        match outcome {
            Err(e) if e.is_upstream_failure() => {
                metrics::counter!("vigie_upstream_errors_total", "upstream" => "psc", "op" => op.as_str()).increment(1);
                rec.failures += 1;
                rec.consecutive_failures = rec.consecutive_failures.saturating_add(1);
                rec.last_error_at = Some(now);
                rec.last_error = Some(e.to_string());
                rec.last_error_code = Some(e.code());
                tracing::warn!(upstream = "psc", op = op.as_str(), code = e.code(), error = %e, "PSC exchange failed");
            }
            // PSC answered; what it said was refused further on (a token error of the client's own
            // making, a bad token): counted, but PSC is up.
            Err(e) => {
                metrics::counter!("vigie_upstream_errors_total", "upstream" => "psc", "op" => op.as_str()).increment(1);
                rec.consecutive_failures = 0;
                rec.last_success_at = Some(now);
                tracing::warn!(upstream = "psc", op = op.as_str(), code = e.code(), error = %e, "PSC answer refused");
            }
            Ok(()) => {
                rec.consecutive_failures = 0;
                rec.last_success_at = Some(now);
            }
        }
    }

    pub(crate) fn fetched(&self, op: Op) {
        let now = Some(unix_now());
        let mut h = self.lock();
        match op {
            Op::Discovery => h.metadata_fetched_at = now,
            Op::Jwks => h.jwks_fetched_at = now,
            Op::Token | Op::Userinfo => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PscHealth> {
        // A panic while holding this lock cannot leave the record inconsistent in a way that matters.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
