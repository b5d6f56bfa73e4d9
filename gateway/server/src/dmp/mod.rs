//! The DMP in AIR simplifié (reference `dmp-vihf-cps.md`): the `[dmp]` configuration, the VIHF
//! issued for a professional's live session once the policy allows it (token exchange and relay
//! share it), and the SOAP relay `POST /dmp/relay/{service}` to the DMP over mutual TLS.
//!
//! Files by concern: `config` (the section and its validation), `runtime` (the DMP side, [`Dmp`]),
//! `vihf` (issuing one, and the audit of access), `relay` (the handler), `demo`.
mod config;
mod demo;
mod relay;
mod runtime;
mod vihf;

pub use config::DmpConfig;
pub use demo::{demo_config, demo_json, ensure_demo_pki};
pub(crate) use relay::relay;
pub use runtime::{Dmp, build, parse_purpose};
pub use vigie_core::dmp::InsNir;
pub use vihf::{Refusal, Seal, Via, vihf_for};
