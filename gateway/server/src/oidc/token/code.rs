//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6, OIDC Core §3.1.3).
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use vigie_core::audit::AuditKind;
use vigie_core::store::{EphemeralStore, StoreExt};

use super::{Grant, TokenError};
use crate::oidc::CodeGrant;
use crate::oidc::authorize::is_pkce_value;
use crate::oidc::grant::{self, RefreshRecord, TokenResponse};
use crate::secrets::ct_eq;
use crate::session::keys;
use crate::web::http::Params;

pub async fn exchange(grant: &Grant<'_>, params: &Params) -> Result<TokenResponse, TokenError> {
    let (store, config) = (grant.issuer.ports.store.as_ref(), grant.issuer.config);
    let code = super::required(params, "code")?;
    let Some(g) = store.get_json::<CodeGrant>(&keys::authorization_code(code)).await? else {
        // RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization
        // server MUST deny the request and SHOULD revoke (when possible) all tokens previously
        // issued based on that authorization code."
        if let Some(grant_id) = redeemed_family(store, code).await? {
            return Err(super::reuse_detected(grant, &grant_id, &super::CODE_REPLAY).await);
        }
        return Err(TokenError::new("invalid_grant", "the authorization code is invalid or expired"));
    };
    // Marked used before it is taken: a replay that loses the race below, on any replica,
    // finds the mark and revokes what this redemption issues. The mark of a code whose family
    // is derived from it is the family's record itself, pending until minted; a code issued by
    // the previous version (a random family), or any code while that version may still run
    // (`tokens.compact_families` off), gets the separate mark that version reads.
    let remember = Duration::from_secs(config.tokens.refresh_token_ttl_secs);
    let pending = config.tokens.compact_families && g.grant_id == grant::family_of_code(code);
    let record = RefreshRecord {
        client_id: g.client_id.clone(),
        scopes: g.scopes.clone(),
        authentication: g.authentication.clone(),
        sid: g.sid.clone(),
        grant_id: g.grant_id.clone(),
        family_expires_at: crate::now() + config.tokens.refresh_token_ttl_secs as i64,
        generation: 0,
        // Pending: no refresh token matches an empty hash.
        secret_hash: String::new(),
        acr: g.acr.clone(),
    };
    let (mark_key, mark) = if pending {
        (keys::refresh_family(&g.grant_id), record.encode())
    } else {
        (keys::used_authorization_code(code), g.grant_id.clone().into_bytes())
    };
    // Whether the session was ended is read meanwhile (one store round trip for both).
    let ended_key = keys::revoked_sid(&g.sid);
    let (marked, ended) = tokio::join!(store.put(&mark_key, &mark, remember), store.get(&ended_key));
    marked?;
    let session_ended = ended?.is_some();
    // The code is taken atomically: across all replicas it is redeemed at most once.
    if store.take(&keys::authorization_code(code)).await?.is_none() {
        return Err(super::reuse_detected(grant, &g.grant_id, &super::CODE_REPLAY).await);
    }
    let redeemed = redeem(grant, params, g, record, session_ended).await;
    if redeemed.is_err() && pending {
        // Nothing was issued: the pending family goes at once rather than at its expiry. A replay
        // of this code now finds nothing, and has nothing to revoke.
        if let Err(e) = store.delete(&mark_key).await {
            tracing::warn!(error = %e, "a refused code's pending family could not be removed");
        }
    }
    redeemed
}

/// The family a redeemed code issued, if `code` was redeemed: its derived family's record, or
/// the mark the previous version wrote (both read at once).
async fn redeemed_family(store: &dyn EphemeralStore, code: &str) -> Result<Option<String>, TokenError> {
    let family = grant::family_of_code(code);
    let (record_key, mark_key) = (keys::refresh_family(&family), keys::used_authorization_code(code));
    let (record, previous) = tokio::join!(store.get(&record_key), store.get(&mark_key));
    if record?.is_some() {
        return Ok(Some(family));
    }
    Ok(previous?.map(|grant_id| String::from_utf8_lossy(&grant_id).into_owned()))
}

/// The checks of a taken code against the request, then the tokens.
async fn redeem(
    grant: &Grant<'_>,
    params: &Params,
    g: CodeGrant,
    record: RefreshRecord,
    session_ended: bool,
) -> Result<TokenResponse, TokenError> {
    // RFC 6749 §4.1.3: "ensure that the authorization code was issued to the authenticated
    // confidential client, or if the client is public, ensure that the code was issued to
    // "client_id" in the request".
    super::issued_to_client(grant, &g.client_id, "authorization code")?;
    // RFC 6749 §4.1.3: "ensure that the "redirect_uri" parameter is present if [it was]
    // included in the initial authorization request, … and if included ensure that their
    // values are identical."
    if params.get("redirect_uri") != Some(g.redirect_uri.as_str()) {
        return Err(TokenError::new("invalid_grant", "redirect_uri does not match the authorization request"));
    }
    match (&g.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_value(verifier) {
                return Err(TokenError::new(
                    "invalid_request",
                    "code_verifier must be 43 to 128 unreserved characters (RFC 7636 §4.1)",
                ));
            }
            // RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge.
            let computed = B64.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
            if !ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(TokenError::new("invalid_grant", "code_verifier does not match the code_challenge"));
            }
        }
        (Some(_), None) => return Err(TokenError::new("invalid_grant", "code_verifier is required (PKCE)")),
        // RFC 9700 §2.1.1: a verifier without a challenge is a PKCE downgrade attempt.
        (None, Some(_)) => {
            return Err(TokenError::new("invalid_grant", "code_verifier sent but no code_challenge was"));
        }
        (None, None) => {}
    }
    // Only the session can have been ended here. The grant itself can only have been revoked by
    // a replay of this code racing this first use: the first use is answered, and its tokens
    // are born revoked (RFC 6749 §4.1.2).
    if session_ended {
        return Err(TokenError::new("invalid_grant", "the session was ended"));
    }
    super::mint(grant, AuditKind::TokenIssued, &record, g.nonce).await
}
