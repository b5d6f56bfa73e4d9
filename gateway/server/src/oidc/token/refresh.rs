//! `grant_type=refresh_token` (RFC 6749 §6) with rotation and reuse detection
//! (RFC 9700 §4.14.2). A family keeps one record, whatever the number of rotations: the
//! generation of its live token and the hash of that token's secret. A rotation replaces that
//! record by compare-and-set, so of two requests presenting one token exactly one wins.
use std::time::Duration;

use vigie_core::audit::AuditKind;

use super::{Grant, TokenError};
use crate::oidc::grant::{self, RefreshRecord, RefreshToken, Standing, TokenResponse};
use crate::web::http::Params;

/// How long the claim on a generation being rotated is kept, while the previous version may still
/// run (`tokens.compact_families` off): it rotates by that claim, not by compare-and-set, and the
/// two must exclude each other. The new generation is recorded within it, and from then on the
/// record itself tells the old token is spent.
const ROTATION_CLAIM: Duration = Duration::from_secs(120);

pub async fn exchange(grant: &Grant<'_>, params: &Params) -> Result<TokenResponse, TokenError> {
    let store = grant.issuer.ports.store.as_ref();
    let token = super::required(params, "refresh_token")?;
    let invalid = || TokenError::new("invalid_grant", "the refresh token is invalid or expired");
    let Some((presented, mut record, stored)) = grant::refresh_family_stored(store, token).await? else {
        return Err(invalid());
    };
    // RFC 6749 §6: "The authorization server MUST … validate the refresh token [and] ensure
    // that the refresh token was issued to the authenticated client". First: a token of another
    // client, whatever it is, says nothing this client may act on (RFC 6749 §10.4).
    super::issued_to_client(grant, &record.client_id, "refresh token")?;
    // RFC 9700 §4.14.2: "If a refresh token is compromised and subsequently used by both the
    // attacker and the legitimate client, one of them will present an invalidated refresh
    // token, which will inform the authorization server of the breach" — the whole family is
    // revoked. Only a token the family really issued is such an invalidated token: a wrong
    // secret proves nothing, and must not let anyone who learnt a family id end it.
    match presented.standing(store, &record).await? {
        Standing::Live => {}
        Standing::Spent => {
            return Err(super::reuse_detected(grant, &record.grant_id, &super::REFRESH_REUSE).await);
        }
        Standing::Wrong => return Err(invalid()),
    }
    // RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted".
    if let Some(scope) = params.get("scope") {
        let asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
        if let Some(extra) = asked.iter().find(|s| !record.scopes.contains(s)) {
            return Err(TokenError::new("invalid_scope", format!("scope {extra:?} was not granted")));
        }
        record.scopes = asked;
    }
    // Rotation: only a request that passed every check spends the token (a refused one leaves it
    // to its client). Exactly one request, on any replica, replaces the record it read (see
    // `rotate`); while the previous version may still run, a claim on the generation too, as that
    // version takes it. The revocation check runs alongside the claim.
    let claim = (!grant.issuer.config.tokens.compact_families)
        .then(|| crate::session::keys::refresh_rotation(presented.family, presented.generation));
    let handle = grant::grant_handle(&record.grant_id);
    let claimed = async {
        match &claim {
            Some(claim) => store.put_if_absent(claim, b"1", ROTATION_CLAIM).await,
            None => Ok(true),
        }
    };
    let (revoked, first) = tokio::join!(grant::is_revoked(store, &handle, &record.sid), claimed);
    if revoked? {
        return Err(TokenError::new("invalid_grant", "the refresh token was revoked"));
    }
    if !first? {
        return Err(super::reuse_detected(grant, &record.grant_id, &super::REFRESH_REUSE).await);
    }
    let rotated = match rotate(grant, &presented, &mut record, &stored).await {
        Ok(Some(tokens)) => return Ok(tokens),
        // Another request rotated this generation between our read and our write: a second use.
        Ok(None) => return Err(super::reuse_detected(grant, &record.grant_id, &super::REFRESH_REUSE).await),
        Err(e) => e,
    };
    if let Some(claim) = claim {
        // The claim is released whatever failed: the client's retry of this very token is no
        // second use (if the release fails too, the claim expires within ROTATION_CLAIM).
        if let Err(e) = store.delete(&claim).await {
            tracing::warn!(error = %e, "a failed refresh could not release its rotation claim");
        }
    }
    Err(rotated)
}

/// The rotation proper: the person is asked about again, the presented token recorded as spent,
/// the next generation minted and stored in place of `stored` (the record as read). `None`: the
/// record had changed, another request rotated first; nothing was stored or handed out, and a
/// failure leaves the record as it was (the client may retry the same token).
async fn rotate(
    grant: &Grant<'_>,
    presented: &RefreshToken<'_>,
    record: &mut RefreshRecord,
    stored: &[u8],
) -> Result<Option<TokenResponse>, TokenError> {
    record.generation = record
        .generation
        .checked_add(1)
        .ok_or_else(|| TokenError::new("invalid_grant", "this refresh token family is exhausted: log in again"))?;
    let handle = grant::grant_handle(&record.grant_id);
    super::recheck::still_allowed(grant, &record.authentication, &handle).await?;
    // Spent before the record moves on: once the next generation is stored, this token must be
    // known as a rotated one on every replica (the loser of a race marks the same member).
    presented.mark_spent(grant.issuer.ports.store.as_ref(), record).await?;
    // OIDC Core §12.2: the new ID token has no nonce; auth_time stays that of the login.
    let tokens = grant::mint_rotation(grant.issuer, grant.client, record, stored).await?;
    if tokens.is_some() {
        super::issued(grant, AuditKind::TokenRefreshed, record).await;
    }
    Ok(tokens)
}
