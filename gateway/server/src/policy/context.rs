//! The context of a policy decision besides who asks: the caller's network zone (configured
//! CIDRs), the local hour, the password + TOTP transition, degraded mode.
use std::net::IpAddr;
use std::sync::Arc;

use vigie_core::policy::PolicyContext;

use super::config::PolicyConfig;
use crate::config::check::{Cidr, parse_date};
use crate::web::http::Caller;

/// What a decision's context is read from, kept by the policy gate: `[policy]` (zones parsed
/// once) and the breakers that say whether Vigie is degraded.
pub struct ContextSource {
    config: PolicyConfig,
    zones: Vec<(String, Vec<Cidr>)>,
    health: Arc<crate::health::Monitor>,
}

impl ContextSource {
    /// The context source of a validated `[policy]` (every CIDR parses).
    pub fn new(config: &PolicyConfig, health: Arc<crate::health::Monitor>) -> Self {
        let zones = config
            .zones
            .iter()
            .map(|(z, cidrs)| (z.clone(), cidrs.iter().filter_map(|c| Cidr::parse(c).ok()).collect()))
            .collect();
        Self { config: config.clone(), zones, health }
    }

    /// The network zone of an address: the first configured zone that holds it, else `external`.
    fn zone_of(&self, ip: &str) -> String {
        let Ok(ip) = ip.parse::<IpAddr>() else { return "external".into() };
        self.zones
            .iter()
            .find(|(_, cidrs)| cidrs.iter().any(|c| c.contains(ip)))
            .map(|(zone, _)| zone.clone())
            .unwrap_or_else(|| "external".into())
    }

    /// The context of a decision for this caller, now.
    pub fn context_of(&self, caller: &Caller, now: i64) -> PolicyContext {
        let cfg = &self.config;
        let local = now + i64::from(cfg.utc_offset_minutes) * 60;
        let hour = u8::try_from(local.rem_euclid(86_400) / 3600).unwrap_or(0);
        let today = time::OffsetDateTime::from_unix_timestamp(local).map(|t| t.date()).ok();
        let password_totp_transition = cfg
            .password_totp_transition_until
            .as_deref()
            .and_then(parse_date)
            .zip(today)
            .is_some_and(|(end, today)| today < end);
        // Degraded mode: PSC or the external link (`health.external`) is down; read from the breakers, no I/O.
        PolicyContext {
            degraded: self.health.degraded(),
            network_zone: self.zone_of(&caller.ip),
            hour,
            password_totp_transition,
            sponsorships_today: 0,
        }
    }
}
