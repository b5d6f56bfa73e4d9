//! The breakers of every watched upstream: what calls ask (`available`, `degraded`), what real calls
//! and probes report (`record`), and where a change of state goes (log, metrics, audit trail).
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use vigie_core::audit::{AuditEvent, AuditKind, AuditSink, Outcome};

use super::breaker::{Breaker, BreakerState, Thresholds, Transition};
use super::config::HealthConfig;

/// One watched upstream.
struct Watched {
    name: &'static str,
    breaker: Mutex<Breaker>,
}

/// The breakers of every watched upstream, and where their changes go.
pub struct Monitor {
    pub(super) config: HealthConfig,
    thresholds: Thresholds,
    upstreams: Vec<Watched>,
    audit: Arc<dyn AuditSink>,
}

impl Monitor {
    /// Watches `names` (the upstreams this configuration uses), all closed.
    pub fn new(config: HealthConfig, names: &[&'static str], audit: Arc<dyn AuditSink>) -> Self {
        let upstreams = names.iter().map(|&name| Watched { name, breaker: Mutex::new(Breaker::new()) }).collect();
        for &name in names {
            metrics::gauge!("vigie_upstream_state", "upstream" => name).set(BreakerState::Closed.gauge());
        }
        Self { thresholds: config.thresholds(), config, upstreams, audit }
    }

    /// The upstreams watched.
    pub fn names(&self) -> Vec<&'static str> {
        self.upstreams.iter().map(|w| w.name).collect()
    }

    fn watched(&self, name: &str) -> Option<&Watched> {
        self.upstreams.iter().find(|w| w.name == name)
    }

    /// The breaker's state; `None` when `name` is not watched. No I/O, no wait.
    pub fn state(&self, name: &str) -> Option<BreakerState> {
        self.watched(name).map(|w| lock(&w.breaker).state)
    }

    /// Whether calls to `name` may go out: its breaker is closed (or it is not watched).
    pub fn available(&self, name: &str) -> bool {
        self.state(name).is_none_or(|s| s == BreakerState::Closed)
    }

    /// Degraded mode: an upstream of `health.external` is not closed.
    pub fn degraded(&self) -> bool {
        self.config.external.iter().any(|u| !self.available(u))
    }

    /// Records a real call's or a probe's outcome for `name`; a change of state is logged,
    /// counted and audited.
    pub fn record(&self, name: &str, outcome: Result<Duration, String>) {
        let Some(w) = self.watched(name) else { return };
        let change = lock(&w.breaker).record(&self.thresholds, outcome, Instant::now());
        if let Some(t) = change {
            self.announce(w.name, &t);
        }
    }

    /// Applies transitions held back by the hysteresis.
    pub(super) fn evaluate(&self) {
        for w in &self.upstreams {
            let change = lock(&w.breaker).evaluate(&self.thresholds, Instant::now());
            if let Some(t) = change {
                self.announce(w.name, &t);
            }
        }
    }

    fn announce(&self, name: &'static str, t: &Transition) {
        metrics::gauge!("vigie_upstream_state", "upstream" => name).set(t.to.gauge());
        metrics::counter!("vigie_upstream_transitions_total", "upstream" => name, "to" => t.to.as_str()).increment(1);
        match t.to {
            BreakerState::Open => {
                tracing::warn!(upstream = name, from = t.from.as_str(), reason = %t.reason, "upstream breaker open: degraded mode for it")
            }
            _ => {
                tracing::info!(upstream = name, from = t.from.as_str(), to = t.to.as_str(), reason = %t.reason, "upstream breaker changed")
            }
        }
        self.audit.record(&AuditEvent {
            at: crate::rfc3339_now(),
            kind: Some(AuditKind::UpstreamState),
            outcome: Some(if t.to == BreakerState::Closed { Outcome::Success } else { Outcome::Failure }),
            object: Some(name.to_owned()),
            method: Some(format!("{}->{}", t.from.as_str(), t.to.as_str())),
            reason: Some(t.reason.clone()),
            ..Default::default()
        });
    }

    /// `/readyz` `checks.upstreams`: informational (an open breaker does not make Vigie unready);
    /// with `detailed` (the ops listener), each upstream's last error too.
    pub fn readiness(&self, detailed: bool) -> serde_json::Value {
        let mut out = BTreeMap::new();
        for w in &self.upstreams {
            let b = lock(&w.breaker).clone();
            let since = crate::rfc3339(b.since_unix);
            let mut upstream = json!({
                "state": b.state,
                "since": since,
                "consecutive_failures": b.consecutive_failures,
                "consecutive_successes": b.consecutive_successes,
                "last_latency_ms": b.last_latency_ms,
                "transitions": b.transitions,
            });
            // The error names the upstream's address: only for the ops listener (the log has it
            // with every state change).
            if detailed {
                upstream["last_error"] = json!(b.last_error);
            }
            out.insert(w.name, upstream);
        }
        json!({ "informational": true, "degraded": self.degraded(), "upstreams": out })
    }

    /// How long to wait before the next probe of a breaker in this state, `failures` probes in.
    pub(super) fn next_probe(&self, healthy_interval: Duration, failing_for: u32) -> Duration {
        if failing_for == 0 {
            return healthy_interval;
        }
        let initial = self.config.backoff_initial_ms.max(1);
        let ms = initial.saturating_mul(1u64 << failing_for.saturating_sub(1).min(20)).min(self.config.backoff_max_ms);
        // ±20 % jitter: replicas do not probe in step.
        let jitter = std::collections::hash_map::RandomState::new().build_hasher().finish() % (ms / 5 * 2 + 1);
        Duration::from_millis(ms - ms / 5 + jitter)
    }
}

fn lock(m: &Mutex<Breaker>) -> std::sync::MutexGuard<'_, Breaker> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::{CRL, DMP, PSC};
    use super::*;

    #[test]
    fn back_off_doubles_is_bounded_and_jittered() {
        let m = Monitor::new(HealthConfig::default(), &[PSC], Arc::new(Recorded::default()));
        let healthy = Duration::from_secs(10);
        assert_eq!(m.next_probe(healthy, 0), healthy);
        for (n, base) in [(1u32, 500u64), (2, 1000), (3, 2000), (6, 15_000), (40, 15_000)] {
            let d = m.next_probe(healthy, n).as_millis() as u64;
            assert!((base * 8 / 10..=base * 12 / 10).contains(&d), "{n} failures: {d} ms, expected ~{base}");
        }
    }

    #[derive(Default)]
    struct Recorded(Mutex<Vec<AuditEvent>>);
    impl AuditSink for Recorded {
        fn record(&self, e: &AuditEvent) {
            self.0.lock().unwrap().push(e.clone());
        }
    }

    #[test]
    fn degraded_means_an_external_upstream_is_not_closed_and_each_change_is_audited() {
        let audit = Arc::new(Recorded::default());
        let m = Monitor::new(HealthConfig::default(), &[PSC, CRL, DMP], audit.clone());
        assert!(!m.degraded());
        for _ in 0..3 {
            m.record(DMP, Err("connection refused".into()));
        }
        assert_eq!(m.state(DMP), Some(BreakerState::Open));
        assert!(!m.degraded(), "the DMP is not the external link by default");
        assert!(!m.available(DMP) && m.available(PSC));
        for _ in 0..3 {
            m.record(PSC, Err("unreachable".into()));
        }
        assert!(m.degraded(), "PSC down is degraded mode");
        m.record(PSC, Ok(Duration::from_millis(3)));
        assert_eq!(m.state(PSC), Some(BreakerState::HalfOpen));
        assert!(m.degraded() && !m.available(PSC), "half-open is still degraded: e-CPS not offered yet");
        let lines = audit.0.lock().unwrap();
        let changes: Vec<(&str, &str)> =
            lines.iter().map(|e| (e.object.as_deref().unwrap_or(""), e.method.as_deref().unwrap_or(""))).collect();
        assert_eq!(changes, [("dmp", "closed->open"), ("psc", "closed->open"), ("psc", "open->half_open")]);
        assert!(lines.iter().all(|e| e.kind == Some(AuditKind::UpstreamState) && !e.at.is_empty()));
        let r = m.readiness(true);
        assert_eq!(r["upstreams"]["psc"]["state"], "half_open", "{r}");
        assert_eq!(r["upstreams"]["dmp"]["last_error"], "connection refused", "{r}");
        assert_eq!(r["degraded"], true);
        let public = m.readiness(false);
        assert_eq!(public["upstreams"]["dmp"]["state"], "open", "{public}");
        assert_eq!(public["upstreams"]["dmp"].get("last_error"), None, "{public}");
    }
}
