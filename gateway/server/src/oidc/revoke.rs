//! Token revocation (RFC 7009). Revoking either token of a grant revokes the grant: its
//! access and refresh tokens (§2.1 allows "the revocation of related tokens").
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::{EphemeralStore, StoreError};

use super::BackChannel;
use super::grant::{self, AccessTokenClaims, Standing};
use super::presented::{self, Presented};
use crate::config::Config;
use crate::state::OidcState;
use crate::web::http::{Caller, oauth_error};

pub async fn revoke(req: HttpRequest, endpoint: BackChannel, body: web::Bytes) -> HttpResponse {
    let BackChannel { config, oidc, ports, audit, .. } = &endpoint;
    let caller = Caller::of(&req, &config.server);
    // RFC 7009 §2.1: "The authorization server first validates the client credentials".
    let (client, params) = match presented::authenticated(&req, &body, endpoint.clients(), &caller).await {
        Ok(c) => c,
        Err(response) => return response,
    };
    let Some(token) = params.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is missing");
    };
    let found = match grant_of(config, oidc, ports.store.as_ref(), token).await {
        Ok(f) => f,
        Err(e) => return super::internal_error("revoke", &e),
    };
    // RFC 7009 §2.2: "invalid tokens do not cause an error response".
    let Some((owner, handle)) = found else { return HttpResponse::Ok().finish() };
    // RFC 7009 §2.1: "… and then verifies whether the token was issued to the client making the
    // revocation request. If this validation fails, the request is refused and the client is
    // informed of the error": nothing is revoked.
    if owner != client.config.client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this token was not issued to this client: only its own client may revoke it",
        );
    }
    if let Err(e) = grant::revoke_grant(ports.store.as_ref(), config, &handle).await {
        return super::internal_error("revoke", &e);
    }
    audit.record(AuditEvent {
        kind: Some(AuditKind::TokenRevoked),
        outcome: Some(Outcome::Success),
        client_id: Some(owner),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    HttpResponse::Ok().finish()
}

/// The client and the grant handle of a token Vigie issued, if it is one: an access token (expired
/// ones too: only the signature and issuer count), or a refresh token of any generation presented
/// with its own secret (revoking an already rotated token still ends what it belonged to).
async fn grant_of(
    config: &Config,
    oidc: &OidcState,
    store: &dyn EphemeralStore,
    token: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let (presented, record) = match presented::lookup(store, token).await? {
        Presented::AccessToken(token) => {
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            v.set_issuer(&[&config.issuer]);
            v.validate_aud = false;
            v.validate_exp = false;
            v.required_spec_claims.clear();
            let c: Option<AccessTokenClaims> = oidc.keys.get().verify(token, Some("at+jwt"), v).ok().map(|(_, c)| c);
            return Ok(c.map(|c| (c.client_id, c.gid)));
        }
        Presented::Refresh(None) => return Ok(None),
        Presented::Refresh(Some(found)) => *found,
    };
    // A made-up secret names a family without being one of its tokens: it revokes nothing.
    Ok(match presented.standing(store, &record).await? {
        Standing::Live | Standing::Spent => Some((record.client_id, grant::grant_handle(&record.grant_id))),
        Standing::Wrong => None,
    })
}
