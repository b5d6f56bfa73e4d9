//! One circuit breaker: closed, open, half-open, moved by outcomes and held by the hysteresis; no
//! I/O and no clock of its own, so its transitions are tested exactly.
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The state of a breaker. The mode is normal while closed, degraded while open or half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub(super) fn gauge(self) -> f64 {
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
    pub(super) state: BreakerState,
    pub(super) since_unix: i64,
    /// When the mode (normal or degraded) last switched; `None` at start, so that an upstream
    /// down from the start is seen at once.
    mode_since: Option<Instant>,
    pub(super) consecutive_failures: u32,
    pub(super) consecutive_successes: u32,
    pub(super) last_error: Option<String>,
    pub(super) last_latency_ms: Option<u64>,
    pub(super) transitions: u64,
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

    /// Takes the state the deployment's breaker is in (several replicas: `health::shared`), as
    /// if this one had moved there itself at `now`: the hysteresis counts from here, and the
    /// outcomes counted so far, which led elsewhere, are forgotten.
    pub fn adopt(&mut self, to: BreakerState, since_unix: i64, now: Instant) {
        if self.state == to {
            return;
        }
        if (self.state == BreakerState::Closed) != (to == BreakerState::Closed) {
            self.mode_since = Some(now);
        }
        self.state = to;
        self.since_unix = since_unix;
        self.consecutive_failures = 0;
        self.consecutive_successes = 0;
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
    fn an_adopted_state_holds_the_hysteresis_from_the_adoption() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        fail(&mut b, t0);
        fail(&mut b, t0);
        // Another replica opened it: two failures seen here led nowhere yet, and are forgotten.
        b.adopt(BreakerState::Open, 1_700_000_000, t0);
        assert_eq!((b.state(), b.since_unix, b.consecutive_failures), (BreakerState::Open, 1_700_000_000, 0));
        ok(&mut b, t0 + Duration::from_secs(1));
        ok(&mut b, t0 + Duration::from_secs(2));
        assert_eq!(b.state(), BreakerState::HalfOpen, "closing waits for 10 s after the adoption");
        assert_eq!(b.evaluate(&t(), t0 + Duration::from_secs(10)).map(|x| x.to), Some(BreakerState::Closed));
        // Adopting a closing just now holds the next opening for 10 s, whatever fails meanwhile.
        let t1 = t0 + Duration::from_secs(20);
        let mut b = Breaker::new();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        b.adopt(BreakerState::Closed, 1_700_000_000, t1);
        for _ in 0..5 {
            assert_eq!(fail(&mut b, t1 + Duration::from_secs(1)), None);
        }
        assert_eq!(b.evaluate(&t(), t1 + Duration::from_secs(10)).map(|x| x.to), Some(BreakerState::Open));
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
