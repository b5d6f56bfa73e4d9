//! Pro Santé Connect as an identity provider of Vigie (issue 5, DESIGN.md flow 3): the `[psc]`
//! section (`config`), the adapter built from it and its health probe (`runtime`), the end of PSC's
//! session at logout (`logout`), HR's announcements for `psc.jit`, and the demo's stand-in settings.
//! The login itself is `login/psc.rs`; Vigie as PSC's FI tiers is `oidc/fi_tiers.rs`.
mod announcements;
mod config;
mod demo;
mod logout;
mod runtime;

pub use announcements::{AnnounceCommand, announce_cli};
pub use config::{PscClientAuth, PscConfig};
pub use demo::{demo_config, demo_json};
pub use logout::end_session_redirect;
pub(crate) use logout::logout_done;
pub use runtime::{Probe, PscRuntime, build};
