//! Administration of cards by HR and medical affairs (seeds 000: "the IT department must not
//! hold the cards"): the `/admin/cards` page, the `/admin/api/…` JSON API (its CLI: `cli::cards`);
//! [`fido2`], the API for the security keys of others.
//! [`audit_page`], the page that searches and exports the audit trail.
//! [`auth::require`] decides who gets in, for these and every other admin endpoint.
pub mod actions;
pub mod api;
pub mod audit_page;
pub mod auth;
pub mod config;
pub mod feeds;
pub mod fido2;
pub mod page;
pub mod people;
pub mod shell;
