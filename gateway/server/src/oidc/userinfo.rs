//! The UserInfo endpoint (OIDC Core §5.3), GET and POST, bearer token per RFC 6750.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::grant::{AccessTokenClaims, Issuer, ProfileClaims, verify_access_token};
use crate::config::Config;
use crate::state::{OidcState, Part, PolicyGate, Ports};
use crate::web::http::{Caller, bearer_missing, bearer_token, parse_params, with_bearer_challenge};

/// RFC 6750 §3: errors carry `WWW-Authenticate: Bearer` with the error code; the body is the
/// OAuth error JSON.
fn bearer_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    with_bearer_challenge(oauth_json(status, error, description), error, description)
}

fn oauth_json(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": error, "error_description": description }))
}

pub async fn userinfo(
    req: HttpRequest,
    config: Part<Config>,
    oidc: Part<OidcState>,
    ports: Part<Ports>,
    policy: Part<PolicyGate>,
    body: web::Bytes,
) -> HttpResponse {
    let from_header = bearer_token(&req);
    // RFC 6750 §2.2: the form-encoded body parameter, for POST.
    let from_body = match parse_params(&body) {
        Ok(p) if req.method() == actix_web::http::Method::POST => p.get("access_token").map(str::to_owned),
        Ok(_) => None,
        Err(e) => return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            // RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token".
            return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", "the access token was sent twice");
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => return bearer_missing(),
    };
    let issuer = Issuer { config: &config, oidc: &oidc, ports: &ports, identities: &policy.identities };
    let claims = match verify_access_token(issuer, &token).await {
        Ok(c) => c,
        Err(e) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &e),
    };
    let scopes: Vec<String> = claims.scope.split(' ').map(String::from).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return bearer_error(StatusCode::FORBIDDEN, "insufficient_scope", "the openid scope is required");
    }
    // The person behind the token as they stand now, not as at login: an account disabled, an
    // agent suspended or gone, or one the policy no longer lets into the token's client (made a
    // `generic` account) reads no more claims, even before the token expires (RFC 6750 §3.1
    // `invalid_token`: "revoked … or invalid for other reasons").
    match refusal(&req, &config, &oidc, &ports, &policy, &claims).await {
        Ok(None) => {}
        Ok(Some(reason)) => {
            return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &format!("{reason}: log in again"));
        }
        Err(e) => {
            super::log_internal("userinfo", &e);
            return oauth_json(StatusCode::INTERNAL_SERVER_ERROR, "server_error", super::INTERNAL_ERROR);
        }
    }
    let identity = match policy.identities.get(ports.directory.as_ref(), &claims.sub).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the user is no longer in the directory");
        }
        Err(e) => {
            super::log_internal("userinfo", &e);
            return oauth_json(StatusCode::INTERNAL_SERVER_ERROR, "server_error", super::INTERNAL_ERROR);
        }
    };
    let mut body = serde_json::to_value(ProfileClaims::of(&identity, &scopes)).unwrap_or_else(|_| json!({}));
    // OIDC Core §5.3.2: "The sub Claim MUST always be returned in the UserInfo Response."
    body["sub"] = json!(identity.id);
    // FI tiers (reference/psc.md §3): PSC reads `tid`, `oid` and `amr` here as in the ID token.
    if let Some(fi) = oidc.clients.get(&claims.client_id).and_then(|c| c.config.fi_tiers.as_ref()) {
        body["tid"] = json!(fi.tid);
        body["oid"] = json!(identity.id);
        body["amr"] = json!(claims.amr);
    }
    HttpResponse::Ok().json(body)
}

/// Why the token's person may no longer read their claims, if they may not: the account read now
/// ([`super::token::account_standing`]), then the policy for the token's client, on the principal
/// read now, with the authentication of the token's session (the one a refresh or an SSO round trip would be asked
/// about). Without a live session there is no login to decide on: the account's standing alone
/// answers, and the token lives at most `tokens.access_token_ttl_secs`.
async fn refusal(
    req: &HttpRequest,
    config: &Config,
    oidc: &OidcState,
    ports: &Ports,
    policy: &PolicyGate,
    claims: &AccessTokenClaims,
) -> Result<Option<String>, String> {
    if let Some(reason) = policy.standings.of(ports, &claims.sub).await? {
        return Ok(Some(reason));
    }
    let Some(client) = oidc.clients.get(&claims.client_id) else {
        return Ok(Some("the token's client is no longer registered".into()));
    };
    let session = crate::session::by_sid(ports.store.as_ref(), &claims.sid).await.map_err(|e| e.to_string())?;
    let Some(session) = session.filter(|s| s.authentication.identity_id == claims.sub) else { return Ok(None) };
    // Read now, not from the cache: a kind changed by a maintenance command on a one-node
    // deployment (no shared store to signal through) counts at once too.
    let principal = crate::policy::current_principal(policy, ports, &claims.sub).await?;
    let caller = Caller::of(req, &config.server);
    let decision = crate::policy::decide_login(policy, &caller, &principal, client, &session.authentication, false);
    if decision.allowed {
        return Ok(None);
    }
    Ok(Some(format!("the policy no longer lets this person into the client ({})", crate::policy::deciding(&decision))))
}
