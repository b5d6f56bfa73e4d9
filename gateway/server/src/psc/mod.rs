//! Pro Santé Connect as an identity provider of Vigie (issue 5, DESIGN.md flow 3): the `[psc]`
//! section (`config`), the adapter built from it and its health probe (`runtime`), the end of PSC's
//! session at logout (`logout`), HR's announcements for `psc.jit`, and the demo's stand-in settings.
//! The login itself is `login/psc.rs`; Vigie as PSC's FI tiers is `oidc/fi_tiers.rs`.
mod announcements;
mod config;
mod demo;
mod logout;
mod runtime;

use actix_web::web;

pub use announcements::{AnnounceCommand, announce_cli};
pub use config::{PscClientAuth, PscConfig};
pub use demo::{demo_config, demo_json};
pub use logout::end_session_redirect;
pub use runtime::{Probe, PscRuntime, build};

/// The routes of PSC login and logout.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/psc", web::get().to(crate::login::psc::begin))
        .route("/login/psc/callback", web::get().to(crate::login::psc::callback))
        .route("/logout/psc", web::get().to(logout::logout_done));
}
