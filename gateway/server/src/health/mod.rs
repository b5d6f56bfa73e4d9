//! Degraded mode (issue 7, DESIGN.md flow 5): a circuit breaker per upstream (Pro Santé Connect, the
//! CRL sources, the DMP, the establishment's LDAP directory) fed by the real calls' outcomes and by probes that never run on a request's
//! path. Its state goes to `/readyz`, `/metrics`, the audit trail and the policy context.
mod breaker;
mod config;
pub mod endpoints;
mod monitor;
mod probes;

pub use breaker::{Breaker, BreakerState, Thresholds, Transition};
pub use config::HealthConfig;
pub use monitor::Monitor;
pub use probes::spawn;

/// Pro Santé Connect (metadata, JWKS, token, userinfo).
pub const PSC: &str = "psc";
/// The CRL distribution points of the card CAs, as one upstream: down when none answers.
pub const CRL: &str = "crl";
/// The DMP's SOAP services (the relay).
pub const DMP: &str = "dmp";
/// The establishment's AD / OpenLDAP (`[directory.ldap]`): the password of password + TOTP.
pub const LDAP: &str = "ldap";

/// The upstreams this configuration uses.
pub fn watched(state_psc: bool, cards: bool, dmp_relay: bool, ldap: bool) -> Vec<&'static str> {
    [(PSC, state_psc), (CRL, cards), (DMP, dmp_relay), (LDAP, ldap)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n)
        .collect()
}
