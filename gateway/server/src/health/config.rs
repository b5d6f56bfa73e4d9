//! The `[health]` section: the circuit breakers' thresholds, the probes' pace, which upstreams are
//! "the external link"; validated at start.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::breaker::Thresholds;
use super::{CRL, DMP, LDAP, PSC};

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
            if ![PSC, CRL, DMP, LDAP].contains(&u.as_str()) {
                err(&format!("health.external[{i}]"), format!("{u:?}: expected \"psc\", \"crl\", \"dmp\" or \"ldap\""));
            }
        }
    }

    pub(super) fn thresholds(&self) -> Thresholds {
        Thresholds {
            failures: self.failure_threshold.max(1),
            successes: self.success_threshold.max(1),
            slow: Duration::from_millis(self.slow_ms),
            min_state: Duration::from_millis(self.min_state_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_health_key_is_named() {
        let c = HealthConfig {
            failure_threshold: 0,
            backoff_initial_ms: 1000,
            backoff_max_ms: 10,
            external: vec!["psc".into(), "smtp".into()],
            ..Default::default()
        };
        let mut keys = Vec::new();
        c.validate(&mut |k, _| keys.push(k.to_owned()));
        assert_eq!(keys, ["health.failure_threshold", "health.backoff_max_ms", "health.external[1]"]);
        let mut none = Vec::new();
        HealthConfig::default().validate(&mut |k, _| none.push(k.to_owned()));
        assert!(none.is_empty(), "{none:?}");
    }
}
