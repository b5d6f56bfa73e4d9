//! The breakers of every watched upstream: what calls ask (`available`, `degraded`), what real calls
//! and probes report (`record`), and where a change of state goes (log, metrics, audit trail).
//! With a shared store (Redis), one state per upstream for the whole deployment (`sync`).
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::audit::{AuditEvent, AuditKind, AuditSink, Outcome};
use vigie_core::store::{EphemeralStore, StoreError};

use super::breaker::{Breaker, BreakerState, Thresholds, Transition};
use super::config::HealthConfig;

/// One watched upstream.
struct Watched {
    name: &'static str,
    breaker: Mutex<Breaker>,
    /// What this replica knows of the deployment's breaker (shared store only).
    deployment: Mutex<Deployment>,
}

/// The deployment's state of one breaker, in the store under `session::keys::upstream_health`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SharedRecord {
    /// Counts the deployment's transitions of this breaker: two records never look alike, so a
    /// compare-and-set against one that was replaced meanwhile fails.
    version: u64,
    state: BreakerState,
    since: i64,
    reason: String,
}

/// How long the deployment's record lives after its last transition. When it is gone, no
/// replica adopts anything: each goes on from its own state, and the next transition writes it.
const RECORD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Default)]
struct Deployment {
    /// The state the local breaker left, and why it moved, while that is not published yet.
    pending: Option<(BreakerState, String)>,
    /// Counts local transitions: a sync does not forget one that happened while it ran.
    changes: u64,
    /// The version of the deployment's record last read or written.
    version: Option<u64>,
    /// Whether the last sync failed (its warning is logged once).
    failing: bool,
}

/// The breakers of every watched upstream, and where their changes go.
pub struct Monitor {
    pub(super) config: HealthConfig,
    thresholds: Thresholds,
    upstreams: Vec<Watched>,
    audit: Arc<dyn AuditSink>,
    /// The store every replica shares (Redis): one breaker state per upstream for the deployment.
    shared: Option<Arc<dyn EphemeralStore>>,
}

impl Monitor {
    /// Watches `names` (the upstreams this configuration uses), all closed.
    pub fn new(config: HealthConfig, names: &[&'static str], audit: Arc<dyn AuditSink>) -> Self {
        let upstreams = names
            .iter()
            .map(|&name| Watched { name, breaker: Mutex::new(Breaker::new()), deployment: Default::default() })
            .collect();
        for &name in names {
            metrics::gauge!("vigie_upstream_state", "upstream" => name).set(BreakerState::Closed.gauge());
        }
        Self { thresholds: config.thresholds(), config, upstreams, audit, shared: None }
    }

    /// Shares the breakers' states with every replica on `store` (see [`Monitor::sync`]).
    pub fn shared_through(mut self, store: Arc<dyn EphemeralStore>) -> Self {
        self.shared = Some(store);
        self
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
            self.changed(w, t);
        }
    }

    /// Applies transitions held back by the hysteresis.
    pub(super) fn evaluate(&self) {
        for w in &self.upstreams {
            let change = lock(&w.breaker).evaluate(&self.thresholds, Instant::now());
            if let Some(t) = change {
                self.changed(w, t);
            }
        }
    }

    /// A local transition: announced at once on one node; with replicas, published by the next
    /// [`Monitor::sync`], which announces it if this replica is the one that moves the
    /// deployment's breaker.
    fn changed(&self, w: &Watched, t: Transition) {
        if self.shared.is_none() {
            return self.announce(w.name, &t);
        }
        metrics::gauge!("vigie_upstream_state", "upstream" => w.name).set(t.to.gauge());
        tracing::debug!(upstream = w.name, from = t.from.as_str(), to = t.to.as_str(), reason = %t.reason, "upstream breaker changed here");
        let mut d = lock(&w.deployment);
        let from = d.pending.take().map_or(t.from, |(from, _)| from);
        d.pending = Some((from, t.reason));
        d.changes += 1;
    }

    /// With a shared store: publishes this replica's transitions and takes the deployment's
    /// state, for each upstream with a transition to publish, or all when `read_all` (each
    /// second). One `GET` per upstream read; a compare-and-set per transition.
    ///
    /// A transition is published only from the state the deployment is in (the record's
    /// version is what the compare-and-set expects): of replicas moving at once, one wins, its
    /// audit line is the deployment's one line for that transition, and the others take its
    /// state. A replica whose transition started from a state the deployment has left takes the
    /// deployment's state instead, its hysteresis counting from then ([`Breaker::adopt`]).
    /// While the store does not answer, each replica goes on with its own breakers.
    pub(super) async fn sync(&self, read_all: bool) {
        let Some(store) = &self.shared else { return };
        for w in &self.upstreams {
            if !read_all && lock(&w.deployment).pending.is_none() {
                continue;
            }
            let result = self.sync_one(store.as_ref(), w).await;
            let mut d = lock(&w.deployment);
            match result {
                Ok(()) => d.failing = false,
                Err(e) if !d.failing => {
                    d.failing = true;
                    tracing::warn!(upstream = w.name, error = %e, "cannot share the upstream's breaker state: this replica decides on its own until the store answers");
                }
                Err(_) => {}
            }
        }
    }

    async fn sync_one(&self, store: &dyn EphemeralStore, w: &Watched) -> Result<(), StoreError> {
        let key = crate::session::keys::upstream_health(w.name);
        let mut bytes = store.get(&key).await?;
        let mut record = bytes.as_deref().and_then(|b| serde_json::from_slice::<SharedRecord>(b).ok());
        let (pending, changes) = {
            let d = lock(&w.deployment);
            (d.pending.clone(), d.changes)
        };
        let local = lock(&w.breaker).state;
        let deployment = record.as_ref().map_or(BreakerState::Closed, |r| r.state);
        if let Some((from, reason)) = pending.filter(|(from, _)| *from == deployment && local != deployment) {
            let next = SharedRecord {
                version: record.as_ref().map_or(0, |r| r.version) + 1,
                state: local,
                since: crate::now(),
                reason: reason.clone(),
            };
            let encoded = serde_json::to_vec(&next).unwrap_or_default();
            if store.replace_if(&key, bytes.as_deref(), &encoded, RECORD_TTL).await? {
                let mut d = lock(&w.deployment);
                d.version = Some(next.version);
                if d.changes == changes {
                    d.pending = None;
                }
                drop(d);
                self.announce(w.name, &Transition { from, to: local, reason });
                return Ok(());
            }
            // Another replica moved it first: follow it.
            bytes = store.get(&key).await?;
            record = bytes.as_deref().and_then(|b| serde_json::from_slice::<SharedRecord>(b).ok());
        }
        let mut d = lock(&w.deployment);
        if d.changes != changes {
            // A transition here while this ran: the next sync weighs it against the record.
            return Ok(());
        }
        d.pending = None;
        let Some(record) = record else { return Ok(()) };
        d.version = Some(record.version);
        let mut b = lock(&w.breaker);
        if b.state != record.state {
            let from = b.state;
            b.adopt(record.state, record.since, Instant::now());
            metrics::gauge!("vigie_upstream_state", "upstream" => w.name).set(record.state.gauge());
            tracing::info!(upstream = w.name, from = from.as_str(), to = record.state.as_str(), reason = %record.reason, "upstream breaker: the deployment's state taken");
        }
        Ok(())
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
            let version = lock(&w.deployment).version;
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
            // The deployment's transitions of this breaker so far (replicas sharing a store).
            if self.shared.is_some() {
                upstream["deployment_version"] = json!(version);
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::{CRL, DMP, LDAP, PSC};
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

    /// Replicas on one store, with no hysteresis to wait out.
    fn replicas(n: usize) -> (Vec<Monitor>, Vec<Arc<Recorded>>) {
        let store: Arc<dyn EphemeralStore> = Arc::new(vigie_store_embedded::EmbeddedStore::new());
        let config = HealthConfig { min_state_ms: 0, ..Default::default() };
        (0..n)
            .map(|_| {
                let audit = Arc::new(Recorded::default());
                (Monitor::new(config.clone(), &[PSC, LDAP], audit.clone()).shared_through(store.clone()), audit)
            })
            .unzip()
    }

    /// Every replica's audited transitions, in time order.
    fn audited(audits: &[Arc<Recorded>]) -> Vec<String> {
        let mut lines: Vec<AuditEvent> = audits.iter().flat_map(|a| a.0.lock().unwrap().clone()).collect();
        lines.sort_by(|x, y| x.at.cmp(&y.at));
        lines.into_iter().filter_map(|e| e.method).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_opening_at_once_write_one_transition_and_one_audit_line() {
        for _ in 0..20 {
            let (m, audits) = replicas(3);
            for r in &m[..2] {
                for _ in 0..3 {
                    r.record(PSC, Err("connection refused".into()));
                }
            }
            assert_eq!(audited(&audits), Vec::<String>::new(), "nothing is announced before it is published");
            tokio::join!(m[0].sync(false), m[1].sync(false));
            assert_eq!(audited(&audits), ["closed->open"], "one line for the deployment, not one per replica");
            // The third replica saw no failure: it takes the deployment's state at its next read.
            assert_eq!(m[2].state(PSC), Some(BreakerState::Closed));
            m[2].sync(false).await;
            assert_eq!(m[2].state(PSC), Some(BreakerState::Closed), "reads only each second, or with news");
            m[2].sync(true).await;
            assert_eq!(m[2].state(PSC), Some(BreakerState::Open));
            assert!(m.iter().all(|r| r.degraded()));
            assert_eq!(m[2].readiness(false)["upstreams"]["psc"]["deployment_version"], 1);
            assert_eq!(audited(&audits).len(), 1);
        }
    }

    #[tokio::test]
    async fn replicas_close_together_and_a_stale_transition_is_not_published() {
        let (m, audits) = replicas(2);
        let (a, b) = (&m[0], &m[1]);
        for _ in 0..3 {
            a.record(PSC, Err("connection refused".into()));
        }
        a.sync(false).await;
        b.sync(true).await;
        assert_eq!(b.state(PSC), Some(BreakerState::Open));
        // B half-opens on its own probe; A, which saw the same, publishes nothing more.
        b.record(PSC, Ok(Duration::from_millis(3)));
        a.record(PSC, Ok(Duration::from_millis(3)));
        b.sync(false).await;
        a.sync(false).await;
        assert_eq!(audited(&audits), ["closed->open", "open->half_open"]);
        // A closes; B, half-open, fails a probe meanwhile: its reopening started from a state
        // the deployment left, so B takes the closing instead of reopening at once.
        a.record(PSC, Ok(Duration::from_millis(3)));
        a.sync(false).await;
        b.record(PSC, Err("timeout".into()));
        assert_eq!(b.state(PSC), Some(BreakerState::Open));
        b.sync(false).await;
        assert_eq!((a.state(PSC), b.state(PSC)), (Some(BreakerState::Closed), Some(BreakerState::Closed)));
        assert_eq!(audited(&audits), ["closed->open", "open->half_open", "half_open->closed"]);
    }

    #[tokio::test]
    async fn the_directorys_breaker_is_shared_by_replicas_and_is_not_the_external_link() {
        let (m, audits) = replicas(2);
        // Password logins on one replica meet the directory down (real calls feed the breaker).
        for _ in 0..3 {
            m[0].record(LDAP, Err("127.0.0.1:636: Connection refused".into()));
        }
        m[0].sync(false).await;
        m[1].sync(true).await;
        assert_eq!(m[1].state(LDAP), Some(BreakerState::Open), "the other replica takes it");
        assert!(!m[1].available(LDAP) && m[1].available(PSC));
        assert!(!m[1].degraded(), "a directory down is not the external link: the policy context is unchanged");
        assert_eq!(audited(&audits), ["closed->open"], "one line for the deployment");
        assert_eq!(m[1].readiness(false)["upstreams"]["ldap"]["state"], "open");
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
