//! `[scim]`: whether the SCIM 2.0 provisioning endpoint is served, and its page size. Its
//! bearer tokens are admin API tokens with the role and scope `provisioning` (`[admin] tokens`).
use serde::{Deserialize, Serialize};

/// `[scim]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimConfig {
    /// Serve `/scim/v2` (off by default: the paths do not exist at all).
    pub enabled: bool,
    /// Most resources in one page of a list (RFC 7644 §3.4.2.4 `count`; `filter.maxResults`).
    pub max_results: usize,
    /// Most SCIM calls one token makes in a minute, across replicas (a runaway connector slows
    /// down, answered 429 with `Retry-After`, instead of loading the directory).
    pub requests_per_minute: u64,
}

impl Default for ScimConfig {
    fn default() -> Self {
        Self { enabled: false, max_results: 200, requests_per_minute: 600 }
    }
}

impl ScimConfig {
    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if !(1..=1000).contains(&self.max_results) {
            err("scim.max_results", format!("expected 1 to 1000, found {}", self.max_results));
        }
        if self.requests_per_minute == 0 {
            err("scim.requests_per_minute", "expected a positive integer".into());
        }
    }
}
