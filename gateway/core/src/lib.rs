//! Vigie's domain types and the ports (traits) through which the gateway reaches every
//! outside system. Nothing here performs I/O: adapters implement the ports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod cards;
pub mod directory;
pub mod fido2;
pub mod idnat;
pub mod names;
pub mod policy;
pub mod roles;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use auth::{AssuranceLevel, Authentication, Factor, Mie, ProfessionalClaims};
pub use idnat::IdNat;
