//! Token introspection (RFC 7662). Callers must authenticate as clients (§2.1); an invalid,
//! expired, revoked or foreign token is simply `{"active": false}` (§2.2).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::BackChannel;
use super::grant::{self, verify_access_token};
use super::presented::{self, Presented};
use crate::config::ClientAuthMethod;
use crate::web::http::{Caller, oauth_error};

pub async fn introspect(req: HttpRequest, endpoint: BackChannel, body: web::Bytes) -> HttpResponse {
    let BackChannel { config, ports, .. } = &endpoint;
    let caller = Caller::of(&req, &config.server);
    let (client, params) = match presented::authenticated(&req, &body, endpoint.clients(), &caller).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    if client.config.auth_method == ClientAuthMethod::None {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "public clients cannot introspect tokens");
    }
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing");
    };
    let inactive = || HttpResponse::Ok().json(json!({ "active": false }));
    let found = match presented::lookup(ports.store.as_ref(), token).await {
        Ok(f) => f,
        Err(e) => return super::internal_error("introspect", &e),
    };
    let family = match found {
        Presented::AccessToken(token) => {
            return match verify_access_token(endpoint.issuer(), token).await {
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
        Presented::Refresh(family) => family,
    };
    let record = match family {
        Some(found) if found.0.is_live_in(&found.1) => found.1,
        _ => return inactive(),
    };
    // A refresh token is described only to the client it was issued to.
    if record.client_id != client.config.client_id {
        return inactive();
    }
    match grant::is_revoked(ports.store.as_ref(), &grant::grant_handle(&record.grant_id), &record.sid).await {
        Ok(false) => HttpResponse::Ok().json(json!({
            "active": true, "scope": record.scopes.join(" "), "client_id": record.client_id,
            "sub": record.authentication.identity_id, "exp": record.family_expires_at, "token_type": "refresh_token",
            "iss": config.issuer, "sid": record.sid,
        })),
        Ok(true) => inactive(),
        Err(e) => super::internal_error("introspect", &e),
    }
}
