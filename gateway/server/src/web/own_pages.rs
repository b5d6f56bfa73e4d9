//! Vigie's own pages: its home page, and the sign-in of those that need a signed-in person (card
//! administration, sponsorship, security questions): each signs people in through the
//! authorization endpoint as a built-in public client, whose code is never redeemed — the SSO
//! session the login leaves is what the page uses.
use actix_web::HttpResponse;
use actix_web::http::header;

use crate::config::{ClientConfig, Config};
use crate::state::Part;
use crate::web::http::Params;

/// `GET /`: the links a visitor may follow.
pub async fn home(config: Part<Config>) -> HttpResponse {
    let demo = if config.demo.app { r#"<li><a href="/demo-app/">Application de démonstration</a></li>"# } else { "" };
    let readyz = if config.server.ops_listen.is_none() { r#"<li><a href="/readyz">/readyz</a></li>"# } else { "" };
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        r#"<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Vigie</title><link rel="stylesheet" href="/static/vigie.css"></head><body><main class="card"><h1>Vigie</h1><ul>{demo}<li><a href="/.well-known/openid-configuration">OpenID Connect discovery</a></li>{readyz}</ul></main></body></html>"#
    ))
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
