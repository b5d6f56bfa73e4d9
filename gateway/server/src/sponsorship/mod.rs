//! Sponsorship ("parrainage", seeds 000, issue 7): a colleague signed in with their card or key,
//! sharing a functional unit, vouches face to face for a professional without a usable card
//! (`/sponsorship`). The professional answers, on that screen, security questions they enrolled
//! (`/account/questions`). Then: a temporary credential (a code shown once, for
//! `sponsorship.credential_ttl_secs`) usable on the login page, and for a lost or stolen card its
//! suspension with the end of its sessions. Both people get an e-mail; everything is audited
//! (`sponsorship_*`). Nothing here needs anything outside the establishment (degraded mode).
pub mod ceremony;
pub mod config;
pub mod demo;
pub mod grant;
pub mod mail;
pub mod pages;
pub mod questions;
pub mod sign_in;

use vigie_core::directory::Identity;

fn name(i: &Identity) -> String {
    format!("{} {}", i.given_name, i.family_name)
}
