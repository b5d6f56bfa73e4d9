//! PSC's health as seen from here: per exchange, when it last worked, how it last failed and how
//! long it took; the signal the readiness probe and the degraded mode read. Also the metrics.
use crate::error::{Op, PscError};
use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One kind of exchange with PSC.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpHealth {
    /// Unix time of the last success.
    pub last_success_at: Option<i64>,
    /// Unix time of the last failure.
    pub last_error_at: Option<i64>,
    /// The last failure, in plain words.
    pub last_error: Option<String>,
    /// The last failure's [`PscError::code`].
    pub last_error_code: Option<&'static str>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Duration of the last exchange, success or not.
    pub last_latency_ms: Option<u64>,
    /// Exchanges since start.
    pub requests: u64,
    /// Failed exchanges since start.
    pub failures: u64,
}

/// A snapshot of PSC's health (no I/O to take it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PscHealth {
    pub discovery: OpHealth,
    pub jwks: OpHealth,
    pub token: OpHealth,
    pub userinfo: OpHealth,
    /// Unix time the cached metadata were fetched, if any are cached.
    pub metadata_fetched_at: Option<i64>,
    /// Unix time the cached JWKS was fetched, if one is cached.
    pub jwks_fetched_at: Option<i64>,
}

impl PscHealth {
    /// Whether the last exchange of every kind that was tried succeeded.
    pub fn is_up(&self) -> bool {
        [&self.discovery, &self.jwks, &self.token, &self.userinfo].iter().all(|o| o.consecutive_failures == 0)
    }

    /// The record of one kind of exchange.
    pub fn op(&self, op: Op) -> &OpHealth {
        match op {
            Op::Discovery => &self.discovery,
            Op::Jwks => &self.jwks,
            Op::Token => &self.token,
            Op::Userinfo => &self.userinfo,
        }
    }

    fn op_mut(&mut self, op: Op) -> &mut OpHealth {
        match op {
            Op::Discovery => &mut self.discovery,
            Op::Jwks => &mut self.jwks,
            Op::Token => &mut self.token,
            Op::Userinfo => &mut self.userinfo,
        }
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
        let rec = h.op_mut(op);
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
