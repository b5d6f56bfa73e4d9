//! Administration of cards by HR and medical affairs (seeds 000: "the IT department must not
//! hold the cards"): the `/admin/cards` page, the `/admin/api/…` JSON API and the CLI behind it;
//! [`fido2`], the API for the security keys of others.
//! [`auth::require`] decides who gets in, for these and every other admin endpoint.
pub mod actions;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod fido2;
pub mod page;

use actix_web::web;

/// The admin routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/cards", web::get().to(page::get))
        .route("/admin/login", web::get().to(page::login))
        .route("/admin/cards/create", web::post().to(page::create))
        .route("/admin/cards/status", web::post().to(page::status))
        .route("/admin/cards/bind", web::get().to(page::bind_get))
        .route("/admin/cards/bind", web::post().to(page::bind_post))
        .route("/admin/api/identities", web::get().to(api::search))
        .route("/admin/api/identities/{id}/cards", web::get().to(api::cards_of))
        .route("/admin/api/cards", web::post().to(api::create))
        .route("/admin/api/cards/{id}", web::get().to(api::card))
        .route("/admin/api/cards/{id}/status", web::post().to(api::status))
        .route("/admin/api/cards/{id}/bind", web::post().to(api::bind))
        .route("/admin/api/cards/{id}/events", web::get().to(api::events));
}
