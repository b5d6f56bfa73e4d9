//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2).
use std::time::Duration;

use vigie_core::audit::AuditKind;
use vigie_core::store::StoreExt;

use super::TokenError;
use crate::app::{AppState, Client};
use crate::http::{Caller, Params};
use crate::oidc::grant::{self, RefreshRecord, TokenResponse};
use crate::oidc::keys;
use crate::secrets::sha256_b64;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    params: &Params,
    caller: &Caller,
) -> Result<TokenResponse, TokenError> {
    let token =
        params.get("refresh_token").ok_or_else(|| TokenError::new("invalid_request", "refresh_token is missing"))?;
    let hash = sha256_b64(token.as_bytes());
    let Some(mut record) = state.store.get_json::<RefreshRecord>(&keys::refresh(&hash)).await? else {
        // RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both
        // the attacker and the legitimate client, one of them will present an invalidated
        // refresh token, which will inform the authorization server of the breach" — the
        // whole family is revoked.
        if let Some(grant_id) = state.store.get(&keys::refresh_used(&hash)).await? {
            return Err(super::reuse_detected(
                state,
                client,
                caller,
                &String::from_utf8_lossy(&grant_id),
                &super::REFRESH_REUSE,
            )
            .await);
        }
        return Err(TokenError::new("invalid_grant", "the refresh token is invalid or expired"));
    };

    // RFC 6749 §6: "The authorization server MUST … validate the refresh token [and] ensure
    // that the refresh token was issued to the authenticated client".
    if record.client_id != client.config.client_id {
        return Err(TokenError::new("invalid_grant", "the refresh token was issued to another client"));
    }
    // RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted".
    if let Some(scope) = params.get("scope") {
        let asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
        if let Some(extra) = asked.iter().find(|s| !record.scopes.contains(s)) {
            return Err(TokenError::new("invalid_scope", format!("scope {extra:?} was not granted")));
        }
        record.scopes = asked;
    }
    // Rotation: only a request that passed every check spends the token (a refused one leaves
    // it to its client). It is marked used before it is taken atomically, so two replicas
    // cannot both rotate it, and whoever loses that race — or comes later — finds the mark.
    // The revocation check runs alongside the mark: a revoked family's token may as well be
    // marked used, it can never be rotated again.
    let remaining = (record.family_expires_at - crate::now()).max(1) as u64;
    let used_key = keys::refresh_used(&hash);
    let (revoked, marked) = tokio::join!(
        grant::is_revoked(state.store.as_ref(), &record.grant_id, &record.sid),
        state.store.put(&used_key, record.grant_id.as_bytes(), Duration::from_secs(remaining))
    );
    marked?;
    if revoked? {
        return Err(TokenError::new("invalid_grant", "the refresh token was revoked"));
    }
    if state.store.take(&keys::refresh(&hash)).await?.is_none() {
        return Err(super::reuse_detected(state, client, caller, &record.grant_id, &super::REFRESH_REUSE).await);
    }

    // OIDC Core §12.2: the new ID token has no nonce; auth_time stays that of the login.
    let tokens = grant::mint(state, client, &record, None).await?;
    super::issued(state, caller, client, AuditKind::TokenRefreshed, &tokens, &record);
    Ok(tokens)
}
