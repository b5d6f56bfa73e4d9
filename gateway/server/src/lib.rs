//! Vigie's gateway: the OpenID Connect provider, login per means of identification,
//! operations endpoints and the embedded demo, wired from one configuration.
pub mod account;
pub mod admin;
pub mod app;
pub mod audit;
pub mod card;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_app;
pub mod dmp;
pub mod health;
pub mod http;
pub mod jose;
pub mod keys;
pub mod login;
pub mod oidc;
pub mod ops;
pub mod policy;
pub mod psc;
pub mod questions;
pub mod secrets;
pub mod session;
pub mod sponsor;
pub mod tls;
pub mod totp;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
