//! `[policy]`: where the Cedar policy set is and the context it is given (network zones, the
//! password + TOTP transition, local time).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::check::{Cidr, parse_date};

/// The policy engine (Cedar) and the context it is given.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directory of the Cedar policy set (`*.cedar`, and `schema/*.cedarschema` to replace the
    /// built-in schema). Unset: the default set built into Vigie. A changed set is reloaded on
    /// SIGHUP and when a file changes (checked every `reload_poll_secs`), validated first.
    pub dir: Option<PathBuf>,
    /// Seconds between two checks of `dir` for changed files (0: only on SIGHUP).
    pub reload_poll_secs: u64,
    /// Network zones by name, each a list of CIDRs (`10.0.0.0/8`, `fd00::/8`); the first zone
    /// holding the caller's address is the `network_zone` of the policy context, `external`
    /// when none does.
    pub zones: std::collections::BTreeMap<String, Vec<String>>,
    /// End of the establishment's transition period (`YYYY-MM-DD`, exclusive) during which
    /// password + TOTP is still allowed on sensitive services (RIE: MIE de transition).
    pub password_totp_transition_until: Option<String>,
    /// Offset of local time from UTC, in minutes, for the `hour` of the policy context.
    pub utc_offset_minutes: i32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let internal = ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];
        Self {
            dir: None,
            reload_poll_secs: 5,
            zones: [("internal".to_owned(), internal.map(String::from).to_vec())].into_iter().collect(),
            password_totp_transition_until: None,
            utc_offset_minutes: 60,
        }
    }
}

impl PolicyConfig {
    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        for (zone, cidrs) in &self.zones {
            for (j, c) in cidrs.iter().enumerate() {
                if let Err(e) = Cidr::parse(c) {
                    err(&format!("policy.zones.{zone}[{j}]"), e);
                }
            }
        }
        if let Some(d) = &self.password_totp_transition_until
            && parse_date(d).is_none()
        {
            err("policy.password_totp_transition_until", format!("{d:?} is not a date YYYY-MM-DD"));
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            err("policy.utc_offset_minutes", "must be within ±840 minutes".into());
        }
    }
}
