//! Token introspection (RFC 7662). Callers must authenticate as clients (§2.1); an invalid,
//! expired, revoked or foreign token is simply `{"active": false}` (§2.2).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::client_auth;
use super::grant::{self, verify_access_token};
use crate::config::ClientAuthMethod;
use crate::state::State;
use crate::web::http::{Caller, oauth_error, parse_params};

pub async fn introspect(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    let client = match client_auth::authenticate(&req, &params, &state, &Caller::of(&req, &state.config.server)).await {
        Ok(c) => c,
        Err(e) => return e.response(),
    };
    if client.config.auth_method == ClientAuthMethod::None {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "public clients cannot introspect tokens");
    }
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing");
    };
    let inactive = || HttpResponse::Ok().json(json!({ "active": false }));
    if grant::RefreshToken::parse(token).is_none() && token.matches('.').count() == 2 {
        return match verify_access_token(&state, token).await {
            // An access token's audience is its client (RFC 9068 §3): to any other caller it is "a
            // token the protected resource is not allowed to know about", inactive (RFC 7662 §2.2;
            // §4: no scanning of others' tokens).
            Ok(c) if c.client_id == client.config.client_id => HttpResponse::Ok().json(json!({
                "active": true, "scope": c.scope, "client_id": c.client_id, "sub": c.sub, "aud": c.aud,
                "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti, "token_type": "Bearer",
                "auth_time": c.auth_time, "acr": c.acr, "amr": c.amr, "sid": c.sid,
            })),
            Ok(_) | Err(_) => inactive(),
        };
    }
    let record = match grant::refresh_family(state.ports.store.as_ref(), token).await {
        Ok(Some((t, r))) if t.is_live_in(&r) => r,
        Ok(_) => return inactive(),
        Err(e) => return super::internal_error("introspect", &e),
    };
    // A refresh token is described only to the client it was issued to.
    if record.client_id != client.config.client_id {
        return inactive();
    }
    match grant::is_revoked(state.ports.store.as_ref(), &grant::grant_handle(&record.grant_id), &record.sid).await {
        Ok(false) => HttpResponse::Ok().json(json!({
            "active": true, "scope": record.scopes.join(" "), "client_id": record.client_id,
            "sub": record.authentication.identity_id, "exp": record.family_expires_at, "token_type": "refresh_token",
            "iss": state.config.issuer, "sid": record.sid,
        })),
        Ok(true) => inactive(),
        Err(e) => super::internal_error("introspect", &e),
    }
}
