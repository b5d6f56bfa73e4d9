//! Vigie's own pages: its home page, and the sign-in of those that need a signed-in person (card
//! administration, sponsorship, security questions): each signs people in through the
//! authorization endpoint as a built-in public client, whose code is never redeemed — the SSO
//! session the login leaves is what the page uses.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};

use crate::config::{ClientConfig, Config};
use crate::state::Part;
use crate::web::http::Params;
use crate::web::pages::{html_page, lang, lang_switch, tr};

/// `GET /`: where every way back of Vigie's pages leads, so it says where a person acts: the
/// applications start their sign-ins, the person's own pages are linked here.
pub async fn home(req: HttpRequest, config: Part<Config>) -> HttpResponse {
    let l = lang(&req, None);
    let item = |href: &str, fr: &str, en: &str| format!(r#"<li><a href="{href}">{}</a></li>"#, tr(l, fr, en));
    let mut links = String::new();
    if config.demo.app {
        links += &item("/demo-app/", "Application de démonstration", "Demonstration application");
    }
    links += &item("/account/keys", "Mes clés de sécurité (FIDO2)", "My security keys (FIDO2)");
    links += &item("/account/enrol", "Enregistrer une clé avec le code des RH", "Register a key with the HR code");
    if config.sponsorship.enabled {
        links += &item("/account/questions", "Mes questions de sécurité", "My security questions");
        links += &item("/sponsorship", "Parrainer un collègue sans sa carte", "Sponsor a colleague without their card");
    }
    links += &item("/admin/cards", "Console : gestion des cartes (RH)", "Console: card management (HR)");
    links += &item("/admin/people", "Console : personnes et sessions (RH)", "Console: people and sessions (HR)");
    links += &item(
        "/admin/feeds",
        "Console : flux RH et propositions RPPS (RH)",
        "Console: HR feed and RPPS proposals (HR)",
    );
    links += &item("/admin/audit-trail", "Console : journal d'audit (auditeurs)", "Console: audit trail (auditors)");
    let intro = tr(
        l,
        "Pour vous connecter à une application, ouvrez-la depuis son lien habituel : elle vous amène ici. Vos pages :",
        "To sign in to an application, open it from its usual link: it brings you here. Your pages:",
    );
    let mut tech = item("/.well-known/openid-configuration", "Découverte OpenID Connect", "OpenID Connect discovery");
    if config.server.ops_listen.is_none() {
        tech += r#"<li><a href="/readyz">/readyz</a></li>"#;
    }
    let main = format!(
        r#"<p>{intro}</p><ul>{links}</ul><h2 class="or">{}</h2><ul>{tech}</ul>{}"#,
        tr(l, "Pour les équipes techniques", "For technical teams"),
        lang_switch(l, "/?")
    );
    html_page(l, StatusCode::OK, "Vigie", &main, None)
}

/// A built-in public client with PKCE coming back to `paths` of the issuer, added to the
/// registered clients unless one is configured with this id. Built from JSON so that client
/// settings added later keep their defaults.
pub fn builtin_client(config: &Config, client_id: &str, name: &str, paths: &[&str]) -> Option<ClientConfig> {
    serde_json::from_value(serde_json::json!({
        "client_id": client_id,
        "auth_method": "none",
        "redirect_uris": paths.iter().map(|p| format!("{}{p}", config.issuer)).collect::<Vec<_>>(),
        "scopes": ["openid"],
        "require_pkce": true,
        "name": name,
    }))
    .ok()
}

/// Sends the browser to the authorization endpoint as `client_id`, asking for a
/// phishing-resistant MIE (a card or a key) used within `max_age_secs`, so that an older or
/// weaker session logs in again; it comes back to `back`.
pub fn sign_in(config: &Config, client_id: &str, back: &str, max_age_secs: u64) -> HttpResponse {
    let verifier = crate::secrets::random_token(32);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &config.endpoint(back))
        .append_pair("scope", "openid")
        .append_pair("code_challenge", &crate::secrets::sha256_b64(verifier.as_bytes()))
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &crate::secrets::random_token(16))
        .append_pair("acr_values", vigie_core::AssuranceLevel::TwoFactorPhishingResistant.acr())
        .append_pair("max_age", &max_age_secs.to_string())
        .finish();
    HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/authorize?{query}"))).finish()
}

/// Back from signing in (`?code=` or `?error=` in `query`): the page at `path` again, without
/// them in the address bar.
pub fn back_from_sign_in(query: &Params, path: &str) -> Option<HttpResponse> {
    (query.get("code").is_some() || query.get("error").is_some())
        .then(|| HttpResponse::SeeOther().insert_header((header::LOCATION, path)).finish())
}
