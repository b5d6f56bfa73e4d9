//! The one route table: every path the gateway answers, on the main listeners and on the ops
//! listener. Handlers live in their features; a path is added here and nowhere else.
use actix_web::web;

use crate::config::Config;
use crate::{account, admin, demo, dmp, health, login, oidc, psc, sponsorship};

/// The route table of the main listeners (HTTPS, and plain HTTP for the proxies).
pub fn routes(cfg: &mut web::ServiceConfig, config: &Config) {
    cfg.route("/.well-known/openid-configuration", web::get().to(oidc::discovery::configuration))
        .route("/jwks", web::get().to(oidc::discovery::jwks))
        .route("/authorize", web::get().to(oidc::authorize::get))
        .route("/authorize", web::post().to(oidc::authorize::post))
        .route("/token", web::post().to(oidc::token::token))
        .route("/userinfo", web::get().to(oidc::userinfo::userinfo))
        .route("/userinfo", web::post().to(oidc::userinfo::userinfo))
        .route("/introspect", web::post().to(oidc::introspect::introspect))
        .route("/revoke", web::post().to(oidc::revoke::revoke))
        .route("/logout", web::get().to(oidc::logout::get))
        .route("/logout", web::post().to(oidc::logout::post))
        .route("/login", web::get().to(login::page))
        .route("/login/password", web::post().to(login::password_totp::submit))
        .route("/login/cps", web::get().to(login::cps::login))
        .route("/login/sponsorship", web::post().to(login::sponsorship::submit))
        .route("/static/vigie.css", web::get().to(crate::web::pages::stylesheet))
        .route("/healthz", web::get().to(health::endpoints::healthz))
        .route("/", web::get().to(crate::web::own_pages::home));
    // With an ops listener, the probes and the metrics are there only, not on the public port.
    if config.server.ops_listen.is_none() {
        cfg.configure(probes);
    }
    // FIDO2 login.
    cfg.route("/login/fido2/options", web::post().to(login::fido2::options))
        .route("/login/fido2", web::post().to(login::fido2::finish))
        .route("/static/fido2.js", web::get().to(login::fido2::script));
    // The account: security keys and enrolment codes, then HR's key API.
    cfg.route("/account/keys", web::get().to(account::pages::keys_page))
        .route("/account/keys", web::post().to(account::keys::register))
        .route("/account/keys/options", web::post().to(account::keys::register_options))
        .route("/account/keys/revoke", web::post().to(account::keys::revoke))
        .route("/account/enrol", web::get().to(account::enrolment::code_page))
        .route("/account/enrol", web::post().to(account::enrolment::redeem_code))
        .route("/account/enrol/done", web::post().to(account::enrolment::end_enrolment))
        .route("/admin/api/identities/{id}/fido2", web::get().to(admin::fido2::api_keys))
        .route("/admin/api/identities/{id}/fido2/enrolment-code", web::post().to(admin::fido2::api_issue_code))
        .route("/admin/api/identities/{id}/fido2/{credential}", web::delete().to(admin::fido2::api_revoke));
    // Security questions, then sponsorship.
    cfg.route("/account/questions", web::get().to(sponsorship::questions::page))
        .route("/account/questions", web::post().to(sponsorship::questions::save));
    cfg.route("/sponsorship", web::get().to(sponsorship::pages::page))
        .route("/sponsorship/login", web::get().to(sponsorship::sign_in::sign_in))
        .route("/sponsorship/start", web::post().to(sponsorship::ceremony::start))
        .route("/sponsorship/answer", web::post().to(sponsorship::ceremony::answer));
    // Mounted in the embedded demo only: outside it these paths do not exist at all, rather
    // than existing and answering "off" (the back-channel logout endpoint never asked).
    if config.demo.app {
        cfg.route("/demo-app/", web::get().to(demo::app::index))
            .route("/demo-app/callback", web::get().to(demo::app::callback))
            .route("/demo-app/logout", web::post().to(demo::app::logout))
            .route("/demo-app/logged-out", web::get().to(demo::app::logged_out))
            .route("/demo-app/backchannel-logout", web::post().to(demo::app::backchannel_logout));
    }
    if config.demo.card_crl.is_some() {
        cfg.route("/demo-pki/card-ca.crl", web::get().to(demo::app::card_crl));
    }
    // Card administration: HR's page, then HR's API.
    cfg.route("/admin/cards", web::get().to(admin::page::get))
        .route("/admin/login", web::get().to(admin::page::login))
        .route("/admin/cards/create", web::post().to(admin::page::create))
        .route("/admin/cards/status", web::post().to(admin::page::status))
        .route("/admin/cards/bind", web::get().to(admin::page::bind_get))
        .route("/admin/cards/bind", web::post().to(admin::page::bind_post))
        .route("/admin/cards/orders", web::get().to(admin::cards_orders::list))
        .route("/admin/audit", web::get().to(crate::audit::api::search))
        .route("/admin/api/identities", web::get().to(admin::api::search))
        .route("/admin/api/identities/{id}/cards", web::get().to(admin::api::cards_of))
        .route("/admin/api/cards", web::post().to(admin::api::create))
        .route("/admin/api/cards/{id}", web::get().to(admin::api::card))
        .route("/admin/api/cards/{id}/status", web::post().to(admin::api::status))
        .route("/admin/api/cards/{id}/bind", web::post().to(admin::api::bind))
        .route("/admin/api/cards/{id}/events", web::get().to(admin::api::events));
    cfg.configure(admin::people::routes);
    cfg.configure(admin::audit_page::routes);
    cfg.configure(admin::feeds::routes);
    // Pro Santé Connect login and logout.
    cfg.route("/login/psc", web::get().to(login::psc::begin))
        .route("/login/psc/callback", web::get().to(login::psc::callback))
        .route("/logout/psc", web::get().to(psc::logout_done));
    cfg.route("/dmp/relay/{service}", web::post().to(dmp::relay));
    // SCIM 2.0 provisioning: mounted only when enabled.
    if config.scim.enabled {
        cfg.configure(crate::scim::routes);
    }
    // Forward-auth for the reverse proxy: mounted only when it protects an app.
    cfg.configure(crate::saml::routes);
    if !config.forward_auth.apps.is_empty() {
        cfg.configure(crate::forward_auth::routes);
    }
}

/// The route table of the ops listener (`server.ops_listen`).
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::endpoints::healthz)).configure(probes);
}

/// The readiness probe and the metrics.
fn probes(cfg: &mut web::ServiceConfig) {
    cfg.route("/readyz", web::get().to(health::endpoints::readyz))
        .route("/metrics", web::get().to(health::endpoints::metrics));
}
