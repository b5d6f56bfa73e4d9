//! Vigie's domain types and the ports (traits) through which the gateway reaches every
//! outside system. Nothing here performs I/O: adapters implement the ports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod cards;
pub mod directory;
pub mod dmp;
pub mod fido2;
pub mod idnat;
pub mod mail;
pub mod names;
pub mod policy;
pub mod provisioning;
pub mod psc;
pub mod roles;
pub mod sponsorship;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use auth::{AssuranceLevel, Authentication, Factor, Mie, ProfessionalClaims};
pub use idnat::IdNat;

/// An error and its causes on one line (`outer: cause: root cause`), for logs, audit reasons
/// and health reports, where `Display` alone hides why (a TLS or DNS failure inside an HTTP error).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
