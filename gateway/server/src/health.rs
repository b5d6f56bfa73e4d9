//! Degraded mode (issue 7, DESIGN.md flow 5): a circuit breaker per upstream (Pro Santé Connect, the
//! CRL sources, the DMP) fed by the real calls' outcomes and by probes that never run on a request's
//! path. Its state goes to `/readyz`, `/metrics`, the audit trail and the policy context.
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::audit::{AuditEvent, AuditKind, AuditSink, Outcome};

use crate::state::AppState;

/// Pro Santé Connect (metadata, JWKS, token, userinfo).
pub const PSC: &str = "psc";
/// The CRL distribution points of the card CAs, as one upstream: down when none answers.
pub const CRL: &str = "crl";
/// The DMP's SOAP services (the relay).
pub const DMP: &str = "dmp";

/// The `[health]` section: thresholds of the circuit breakers and the probes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failures (real calls or probes) that open a breaker.
    pub failure_threshold: u32,
    /// An answer slower than this counts as a failure (milliseconds).
    pub slow_ms: u64,
    /// Consecutive successful probes that close an open breaker (the first one half-opens it).
    pub success_threshold: u32,
    /// Hysteresis: the least time the mode (normal, or degraded = open or half-open) lasts before
    /// it may switch again (milliseconds).
    pub min_state_ms: u64,
    /// Time between two probes of a healthy upstream (milliseconds). PSC's is `psc.probe_interval_secs`.
    pub probe_interval_ms: u64,
    /// First wait before probing again after a failure (milliseconds); doubles at each failure.
    pub backoff_initial_ms: u64,
    /// Longest wait between two probes of a failing upstream (milliseconds).
    pub backoff_max_ms: u64,
    /// Time allowed for one probe (milliseconds).
    pub probe_timeout_ms: u64,
    /// The upstreams whose breaker, when not closed, puts Vigie in degraded mode ("the external
    /// link"; the policy context's `degraded`).
    pub external: Vec<String>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            slow_ms: 3000,
            success_threshold: 2,
            min_state_ms: 10_000,
            probe_interval_ms: 10_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 15_000,
            probe_timeout_ms: 2000,
            external: vec![PSC.into(), CRL.into()],
        }
    }
}

impl HealthConfig {
    /// Checks the section; one call of `err` per bad key (`health.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        for (key, v) in [
            ("health.failure_threshold", u64::from(self.failure_threshold)),
            ("health.success_threshold", u64::from(self.success_threshold)),
            ("health.slow_ms", self.slow_ms),
            ("health.probe_interval_ms", self.probe_interval_ms),
            ("health.backoff_initial_ms", self.backoff_initial_ms),
            ("health.probe_timeout_ms", self.probe_timeout_ms),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            err("health.backoff_max_ms", "must be at least `health.backoff_initial_ms`".into());
        }
        for (i, u) in self.external.iter().enumerate() {
            if ![PSC, CRL, DMP].contains(&u.as_str()) {
                err(&format!("health.external[{i}]"), format!("{u:?}: expected \"psc\", \"crl\" or \"dmp\""));
            }
        }
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            failures: self.failure_threshold.max(1),
            successes: self.success_threshold.max(1),
            slow: Duration::from_millis(self.slow_ms),
            min_state: Duration::from_millis(self.min_state_ms),
        }
    }
}

/// The state of a breaker. The mode is normal while closed, degraded while open or half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// A probe succeeded after an opening; more must succeed before it closes.
    HalfOpen,
    /// The upstream is down: nothing waits on it; probes with back-off.
    Open,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    /// The value of `vigie_upstream_state`.
    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

/// What moves a breaker.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub failures: u32,
    pub successes: u32,
    pub slow: Duration,
    pub min_state: Duration,
}

/// A change of state, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

/// One circuit breaker (no I/O, no clock of its own: the caller says what time it is).
#[derive(Clone, Debug)]
pub struct Breaker {
    state: BreakerState,
    since_unix: i64,
    /// When the mode (normal or degraded) last switched; `None` at start, so that an upstream
    /// down from the start is seen at once.
    mode_since: Option<Instant>,
    consecutive_failures: u32,
    consecutive_successes: u32,
    last_error: Option<String>,
    last_latency_ms: Option<u64>,
    transitions: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    pub fn new() -> Self {
        Self {
            state: BreakerState::Closed,
            since_unix: crate::now(),
            mode_since: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_error: None,
            last_latency_ms: None,
            transitions: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Records one outcome (the answer's latency, or why it failed) and applies the transition it
    /// brings, if any. An answer slower than `slow` is a failure.
    pub fn record(&mut self, t: &Thresholds, outcome: Result<Duration, String>, now: Instant) -> Option<Transition> {
        let outcome = match outcome {
            Ok(d) if d > t.slow => {
                Err(format!("slow: answered in {} ms, over {} ms", d.as_millis(), t.slow.as_millis()))
            }
            o => o,
        };
        match outcome {
            Ok(d) => {
                self.last_latency_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                self.consecutive_failures = 0;
                self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            }
            Err(e) => {
                self.consecutive_successes = 0;
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_error = Some(e);
            }
        }
        self.evaluate(t, now)
    }

    /// Applies a transition the hysteresis held back until now, if any.
    pub fn evaluate(&mut self, t: &Thresholds, now: Instant) -> Option<Transition> {
        use BreakerState::*;
        let held = self.mode_since.is_none_or(|m| now.saturating_duration_since(m) >= t.min_state);
        let (to, reason) = match self.state {
            Closed if self.consecutive_failures >= t.failures && held => {
                (Open, format!("{} consecutive failures", self.consecutive_failures))
            }
            Open if self.consecutive_successes >= 1 => (HalfOpen, "a probe succeeded".to_owned()),
            HalfOpen if self.consecutive_failures > 0 => (Open, "a probe failed while half-open".to_owned()),
            HalfOpen if self.consecutive_successes >= t.successes && held => {
                (Closed, format!("{} consecutive successes", self.consecutive_successes))
            }
            _ => return None,
        };
        let from = self.state;
        if (from == Closed) != (to == Closed) {
            self.mode_since = Some(now);
        }
        self.state = to;
        self.since_unix = crate::now();
        self.transitions += 1;
        let reason = match (&self.last_error, to) {
            (Some(e), Open) => format!("{reason}; last error: {e}"),
            _ => reason,
        };
        Some(Transition { from, to, reason })
    }
}

/// One watched upstream.
struct Watched {
    name: &'static str,
    breaker: Mutex<Breaker>,
}

/// The breakers of every watched upstream, and where their changes go.
pub struct Monitor {
    config: HealthConfig,
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
    fn evaluate(&self) {
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
    fn next_probe(&self, healthy_interval: Duration, failing_for: u32) -> Duration {
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

/// The upstreams this configuration uses.
pub fn watched(state_psc: bool, cards: bool, dmp_relay: bool) -> Vec<&'static str> {
    [(PSC, state_psc), (CRL, cards), (DMP, dmp_relay)].into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
}

/// Starts the probes (one task per upstream) and the reading of the adapters' own health records.
pub fn spawn(state: web::Data<AppState>) {
    for name in state.upstreams.health.names() {
        let state = state.clone();
        actix_web::rt::spawn(async move { probe_loop(state, name).await });
    }
    actix_web::rt::spawn(async move { feed_loop(state).await });
}

async fn probe_loop(state: web::Data<AppState>, name: &'static str) {
    let monitor = &state.upstreams.health;
    let healthy = match (name, &state.upstreams.psc) {
        (PSC, Some(p)) => Duration::from_secs(p.config.probe_interval_secs.max(1)),
        _ => Duration::from_millis(monitor.config.probe_interval_ms.max(1)),
    };
    let limit = Duration::from_millis(monitor.config.probe_timeout_ms.max(1));
    let mut failing_for = 0u32;
    loop {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(limit, probe(&state, name)).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
        };
        failing_for = if outcome.is_ok() { 0 } else { failing_for.saturating_add(1) };
        monitor.record(name, outcome);
        // While not closed, probe again soon: the way back to normal is through successful probes.
        let wait = if failing_for == 0 && !monitor.available(name) {
            Duration::from_millis(monitor.config.backoff_initial_ms.max(1))
        } else {
            monitor.next_probe(healthy, failing_for)
        };
        tokio::time::sleep(wait).await;
    }
}

/// One probe: a small request that says whether the upstream answers.
async fn probe(state: &AppState, name: &str) -> Result<(), String> {
    match name {
        PSC => match &state.upstreams.psc {
            Some(p) => match p.probe().await.error {
                None => Ok(()),
                Some(e) => Err(e),
            },
            None => Ok(()),
        },
        CRL => {
            let urls = crl_urls(state);
            if urls.is_empty() {
                return Ok(());
            }
            let limit = Duration::from_millis(state.config.health.probe_timeout_ms.max(1));
            let tries = urls.iter().map(|u| async move {
                match state.upstreams.http.head(u).timeout(limit).send().await {
                    Ok(r) if !r.status().is_server_error() => Ok(()),
                    Ok(r) => Err(format!("{u}: HTTP status {}", r.status())),
                    Err(e) => Err(format!("{u}: {}", vigie_core::error_chain(&e))),
                }
            });
            let results = futures_util::future::join_all(tries).await;
            // The link is down when no source answers; one source down alone is `checks.card_crls`.
            if results.iter().any(Result::is_ok) {
                Ok(())
            } else {
                Err(results.into_iter().filter_map(Result::err).collect::<Vec<_>>().join("; "))
            }
        }
        DMP => {
            let Some(addr) = state.config.dmp.relay.base_url.as_deref().and_then(host_port) else { return Ok(()) };
            tokio::net::TcpStream::connect(&addr).await.map(drop).map_err(|e| format!("{addr}: {e}"))
        }
        _ => Ok(()),
    }
}

fn host_port(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

fn crl_urls(state: &AppState) -> Vec<String> {
    let mut urls: Vec<String> = state.config.cards.trust.crl_urls.clone();
    if let Some(v) = &state.upstreams.card_validator {
        urls.extend(v.status().into_iter().map(|s| s.url));
    }
    urls.sort();
    urls.dedup();
    urls
}

/// Reads what the real calls met, from the adapters' own records (no I/O), every 250 ms: PSC's token
/// and userinfo exchanges (its discovery and JWKS are what the probe does) and the CRL refreshes.
async fn feed_loop(state: web::Data<AppState>) {
    let mut psc_seen: Option<(u64, u64)> = None;
    let mut crl_seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(psc) = &state.upstreams.psc {
            let h = psc.client.health();
            let ops = [&h.token, &h.userinfo];
            let now = (ops.iter().map(|o| o.requests).sum::<u64>(), ops.iter().map(|o| o.failures).sum::<u64>());
            if let Some((req, fail)) = psc_seen {
                let (new_req, new_fail) = (now.0.saturating_sub(req), now.1.saturating_sub(fail));
                let latest_error = ops.iter().filter(|o| o.last_error.is_some()).max_by_key(|o| o.last_error_at);
                for _ in 0..new_fail.min(10) {
                    let e = latest_error.and_then(|o| o.last_error.clone()).unwrap_or_else(|| "failed".into());
                    state.upstreams.health.record(PSC, Err(e));
                }
                if new_req > new_fail {
                    let ms = ops.iter().filter_map(|o| o.last_latency_ms).max().unwrap_or(0);
                    state.upstreams.health.record(PSC, Ok(Duration::from_millis(ms)));
                }
            }
            psc_seen = Some(now);
        }
        if let Some(v) = &state.upstreams.card_validator {
            let mut ok = false;
            let mut errors = Vec::new();
            for s in v.status() {
                let Some(at) = s.last_attempt else { continue };
                let before = crl_seen.insert(s.url.clone(), at);
                if before.is_some_and(|b| b < at) {
                    match s.last_error {
                        None => ok = true,
                        Some(e) => errors.push(format!("{}: {e}", s.url)),
                    }
                }
            }
            if ok {
                state.upstreams.health.record(CRL, Ok(Duration::ZERO));
            } else if !errors.is_empty() {
                state.upstreams.health.record(CRL, Err(errors.join("; ")));
            }
        }
        state.upstreams.health.evaluate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t() -> Thresholds {
        Thresholds { failures: 3, successes: 2, slow: Duration::from_millis(500), min_state: Duration::from_secs(10) }
    }

    fn fail(b: &mut Breaker, at: Instant) -> Option<Transition> {
        b.record(&t(), Err("connection refused".into()), at)
    }

    fn ok(b: &mut Breaker, at: Instant) -> Option<Transition> {
        b.record(&t(), Ok(Duration::from_millis(10)), at)
    }

    #[test]
    fn three_failures_open_two_successes_close_after_the_hysteresis() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        assert_eq!(fail(&mut b, t0), None);
        assert_eq!(fail(&mut b, t0), None);
        let open = fail(&mut b, t0).expect("opens at the third failure");
        assert_eq!((open.from, open.to), (BreakerState::Closed, BreakerState::Open));
        assert!(open.reason.contains("connection refused"), "{}", open.reason);
        let half = ok(&mut b, t0 + Duration::from_secs(1)).expect("a probe half-opens it");
        assert_eq!(half.to, BreakerState::HalfOpen);
        // Two successes, but within 10 s of the switch to degraded: held.
        assert_eq!(ok(&mut b, t0 + Duration::from_secs(2)), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let closed = b.evaluate(&t(), t0 + Duration::from_secs(10)).expect("closes once 10 s have passed");
        assert_eq!(closed.to, BreakerState::Closed);
    }

    #[test]
    fn a_failure_while_half_open_opens_again_and_success_resets_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        fail(&mut b, t0);
        fail(&mut b, t0);
        ok(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Closed, "failures must be consecutive");
        fail(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Open);
        ok(&mut b, t0);
        assert_eq!(fail(&mut b, t0).map(|x| x.to), Some(BreakerState::Open));
    }

    #[test]
    fn slow_answers_count_as_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        for _ in 0..3 {
            b.record(&t(), Ok(Duration::from_millis(900)), t0);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.last_error.as_deref().is_some_and(|e| e.starts_with("slow")));
    }

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

    #[test]
    fn each_bad_health_key_is_named() {
        let c = HealthConfig {
            failure_threshold: 0,
            backoff_initial_ms: 1000,
            backoff_max_ms: 10,
            external: vec!["psc".into(), "ldap".into()],
            ..Default::default()
        };
        let mut keys = Vec::new();
        c.validate(&mut |k, _| keys.push(k.to_owned()));
        assert_eq!(keys, ["health.failure_threshold", "health.backoff_max_ms", "health.external[1]"]);
        let mut none = Vec::new();
        HealthConfig::default().validate(&mut |k, _| none.push(k.to_owned()));
        assert!(none.is_empty(), "{none:?}");
    }

    proptest! {
        /// Whatever the sequence of outcomes and times, the mode (closed vs not) never switches
        /// twice within `min_state`, and an opening always follows `failures` consecutive failures.
        #[test]
        fn the_mode_never_flaps_faster_than_the_hysteresis(
            steps in proptest::collection::vec((any::<bool>(), 0u64..4000), 1..300)
        ) {
            let t0 = Instant::now();
            let mut b = Breaker::new();
            let mut now = t0;
            let mut last_switch: Option<Instant> = None;
            let mut run_of_failures = 0u32;
            for (success, gap) in steps {
                now += Duration::from_millis(gap);
                run_of_failures = if success { 0 } else { run_of_failures + 1 };
                let before = b.state();
                let outcome = if success { Ok(Duration::from_millis(5)) } else { Err("down".to_owned()) };
                if let Some(tr) = b.record(&t(), outcome, now) {
                    prop_assert_eq!(tr.from, before);
                    if before == BreakerState::Closed {
                        prop_assert!(run_of_failures >= 3);
                    }
                    if (tr.from == BreakerState::Closed) != (tr.to == BreakerState::Closed) {
                        if let Some(l) = last_switch {
                            prop_assert!(now.duration_since(l) >= t().min_state);
                        }
                        last_switch = Some(now);
                    }
                }
            }
        }
    }
}
