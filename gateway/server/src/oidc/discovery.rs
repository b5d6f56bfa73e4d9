//! OpenID Provider metadata (OIDC Discovery §3, RFC 8414 §2) and the JWK Set.
use actix_web::HttpResponse;
use serde_json::json;

use crate::config::Config;
use crate::state::{OidcState, Part};

pub async fn configuration(config: Part<Config>) -> HttpResponse {
    let e = |p: &str| config.endpoint(p);
    let mut scopes: Vec<&str> = vec!["openid", "profile", "hospital", "offline_access"];
    scopes.dedup();
    // Vigie's levels, then the other schemes' values it maps to them (authorize::requested_level).
    let mut acr: Vec<&str> = vigie_core::AssuranceLevel::ALL.iter().map(|l| l.acr()).collect();
    let mapped = super::authorize::BUILT_IN_ACR_MAP.iter().map(|(v, _)| *v).chain(
        config
            .login
            .acr_values_map
            .keys()
            .chain(config.clients.iter().flat_map(|c| c.acr_values_map.keys()))
            .map(String::as_str),
    );
    for value in mapped {
        if !acr.contains(&value) {
            acr.push(value);
        }
    }
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(json!({
        "issuer": config.issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "jwks_uri": e("/jwks"),
        "end_session_endpoint": e("/logout"),
        "introspection_endpoint": e("/introspect"),
        "revocation_endpoint": e("/revoke"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", super::token::exchange::TOKEN_EXCHANGE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash",
            "name", "given_name", "family_name", "birthdate", "matricule", "idnat", "units", "metier", "grade",
            // Only in the tokens of a FI-tiers client (Pro Santé Connect, docs/fi-tiers.md).
            "tid", "oid"],
        "acr_values_supported": acr,
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["fr", "en"],
        "claim_types_supported": ["normal"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    }))
}

pub async fn jwks(oidc: Part<OidcState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("Cache-Control", "public, max-age=60"))
        .body(oidc.keys.get().jwks_json().to_owned())
}
