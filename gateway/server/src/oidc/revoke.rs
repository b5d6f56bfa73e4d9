//! Token revocation (RFC 7009). Revoking either token of a grant revokes the grant: its
//! access and refresh tokens (§2.1 allows "the revocation of related tokens").
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

use super::client_auth;
use super::grant::{self, AccessTokenClaims};
use crate::app::State;
use crate::http::{Caller, oauth_error, parse_params};

pub async fn revoke(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let caller = Caller::of(&req, &state);
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    let client = match client_auth::authenticate(&req, &params, &state).await {
        Ok(c) => c,
        Err(e) => return e.response(),
    };
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing");
    };
    let grant_of = async {
        if grant::RefreshToken::parse(token).is_none() && token.matches('.').count() == 2 {
            // Expired access tokens may still be revoked: only the signature and issuer count.
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            v.set_issuer(&[&state.config.issuer]);
            v.validate_aud = false;
            v.validate_exp = false;
            v.required_spec_claims.clear();
            let c: Option<AccessTokenClaims> = state.keys.get().verify(token, Some("at+jwt"), v).ok().map(|(_, c)| c);
            Ok::<_, vigie_core::store::StoreError>(c.map(|c| (c.client_id, c.gid)))
        } else {
            // Any generation of the family names it: revoking an already rotated token still
            // ends what it belonged to.
            let r = grant::refresh_family(state.store.as_ref(), token).await?;
            Ok(r.map(|(_, r)| (r.client_id, r.grant_id)))
        }
    };
    let found = match grant_of.await {
        Ok(f) => f,
        Err(e) => return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", &e.to_string()),
    };
    // RFC 7009 §2.1: "The authorization server first validates the client credentials … and
    // then verifies whether the token was issued to the client making the revocation request."
    if let Some((owner, grant_id)) = found.filter(|(owner, _)| *owner == client.config.client_id) {
        if let Err(e) = grant::revoke_grant(&state, &grant_id).await {
            return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", &e.to_string());
        }
        state.audit(AuditEvent {
            kind: Some(AuditKind::TokenRevoked),
            outcome: Some(Outcome::Success),
            client_id: Some(owner),
            ip: Some(caller.ip.clone()),
            request_id: Some(caller.request_id.clone()),
            ..Default::default()
        });
    }
    // RFC 7009 §2.2: "invalid tokens do not cause an error response".
    HttpResponse::Ok().finish()
}
