//! Vigie's gateway: the OpenID Connect provider, login per means of identification,
//! operations endpoints and the embedded demo, wired from one configuration.
pub mod account;
pub mod admin;
pub mod audit;
pub mod audit_export;
pub mod cli;
pub mod config;
pub mod csv;
pub mod demo;
pub mod derivation;
pub mod directory_sync;
pub mod dmp;
pub mod forward_auth;
pub mod health;
pub mod jose;
pub mod keys;
pub mod lifecycle;
pub mod login;
pub mod mail;
pub mod oidc;
pub mod ops;
pub mod policy;
pub mod psc;
pub mod saml;
pub mod scim;
pub mod secrets;
pub mod session;
pub mod sponsorship;
pub mod state;
pub mod totp;
pub mod web;
pub mod wiring;

/// The names the in-process tests and the fuzz targets reach the gateway by.
pub mod app {
    pub use crate::state::AppState;
    pub use crate::wiring::build::build_state;
    pub use crate::wiring::routes::routes;
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A Unix time in RFC 3339 (UTC); empty if out of range.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// An RFC 3339 date and time as Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

/// Now in RFC 3339 (UTC), to the nanosecond.
pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
