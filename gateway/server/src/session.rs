//! The SSO session: a `__Host-` cookie naming server-side state in the ephemeral store, so
//! any replica serves any request. The cookie value is a bearer secret; the store knows it
//! only by its hash. Its id changes at every login (session fixation).
use std::time::Duration;

use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use vigie_core::Authentication;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::AccessTarget;
use vigie_core::store::{StoreError, StoreExt};

use crate::secrets::{random_token, sha256_b64};
use crate::state::AppState;

pub const COOKIE: &str = "__Host-vigie-session";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Public session id: the `sid` claim (OIDC Back-Channel Logout §2.1), not the cookie.
    pub sid: String,
    pub authentication: Authentication,
    pub created_at: i64,
    /// Absolute end, whatever the activity.
    pub expires_at: i64,
    /// Last time the idle timer was pushed back.
    pub touched_at: i64,
    /// The ID token of the upstream provider the login went through (Pro Santé Connect): the
    /// `id_token_hint` of its logout when this session ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_id_token: Option<String>,
}

/// Put in a request's extensions by a login through an upstream provider, before
/// `login::complete`: the session it starts keeps it (see [`Session::upstream_id_token`]).
#[derive(Clone)]
pub struct UpstreamIdToken(pub String);

fn key(cookie: &str) -> String {
    format!("sess:{}", sha256_b64(cookie.as_bytes()))
}

fn sid_key(sid: &str) -> String {
    format!("sid:{sid}")
}

fn idle_ttl(state: &AppState, s: &Session, now: i64) -> Duration {
    let idle = state.config.session.idle_timeout_secs as i64;
    Duration::from_secs((s.expires_at - now).min(idle).max(1) as u64)
}

/// The live session of this browser, if any; pushes back its idle timeout.
pub async fn current(state: &AppState, req: &HttpRequest) -> Result<Option<Session>, StoreError> {
    let Some(cookie) = crate::web::http::cookie(req, COOKIE) else { return Ok(None) };
    let now = crate::now();
    let Some(mut s) = state.ports.store.get_json::<Session>(&key(&cookie)).await? else { return Ok(None) };
    if s.expires_at <= now {
        return Ok(None);
    }
    // Push the idle deadline back at most once a minute: one store write per minute of use,
    // not one per request.
    if now - s.touched_at >= 60 {
        s.touched_at = now;
        state.ports.store.put_json(&key(&cookie), &s, idle_ttl(state, &s, now)).await?;
    }
    Ok(Some(s))
}

/// Starts a session for a fresh authentication, replacing the session the browser had.
/// Returns the new cookie value, the session, and the replaced session when it belonged to
/// someone else: at a shared workstation, the previous user must then be logged out of every
/// application (the caller ends that session), not left signed in behind the new one.
pub async fn start(
    state: &AppState,
    req: &HttpRequest,
    authentication: Authentication,
) -> Result<(String, Session, Option<Session>), StoreError> {
    let mut replaced = None;
    if let Some(old) = crate::web::http::cookie(req, COOKIE) {
        replaced = state
            .ports
            .store
            .take_json::<Session>(&key(&old))
            .await?
            .filter(|o| o.authentication.identity_id != authentication.identity_id);
    }
    let now = crate::now();
    let cookie = random_token(32);
    let s = Session {
        sid: random_token(16),
        authentication,
        created_at: now,
        expires_at: now + state.config.session.absolute_timeout_secs as i64,
        touched_at: now,
        upstream_id_token: {
            use actix_web::HttpMessage;
            req.extensions().get::<UpstreamIdToken>().map(|t| t.0.clone())
        },
    };
    state.ports.store.put_json(&key(&cookie), &s, idle_ttl(state, &s, now)).await?;
    let abs = Duration::from_secs(state.config.session.absolute_timeout_secs);
    state.ports.store.put(&sid_key(&s.sid), key(&cookie).as_bytes(), abs).await?;
    // The indexes outlive the session as long as its tokens may (an `offline_access` refresh
    // token): ending someone's access must reach those too.
    let index_ttl = abs.max(tokens_ttl(state));
    state.ports.store.add_to_set(&identity_key(&s.authentication.identity_id), &s.sid, index_ttl).await?;
    if let Some(credential) = &s.authentication.credential {
        state.ports.store.add_to_set(&credential_key(credential), &s.sid, index_ttl).await?;
    }
    Ok((cookie, s, replaced))
}

/// The longest any token bound to a session lives: how long a revocation mark must be kept.
pub fn tokens_ttl(state: &AppState) -> Duration {
    let t = &state.config.tokens;
    Duration::from_secs(t.refresh_token_ttl_secs.max(t.access_token_ttl_secs))
}

fn credential_key(credential: &str) -> String {
    format!("cred-sids:{}", sha256_b64(credential.as_bytes()))
}

fn identity_key(identity_id: &str) -> String {
    format!("identity-sids:{identity_id}")
}

/// Ends every session of a person (left, suspended) or opened with one MIE instance (a card
/// declared lost or stolen, a revoked key), and every token bound to them, `offline_access`
/// refresh families included, so no VIHF is issued on them either. Returns how many sessions.
///
/// An error means some may live on: callers write a durable note first
/// ([`vigie_core::directory::PendingRevocations`]) and remove it only after this succeeded, so
/// that [`complete_pending`] ends them later otherwise.
/// Each session is revoked in the store first, with errors reported, then ended as a logout is
/// (audit line, back-channel logout to its applications, OIDC Back-Channel Logout 1.0 §2.5).
pub async fn end_access(
    state: &AppState,
    caller: &crate::web::http::Caller,
    target: &AccessTarget,
) -> Result<usize, StoreError> {
    let index = match target {
        AccessTarget::Identity(id) => identity_key(id),
        AccessTarget::Credential(c) => credential_key(c),
    };
    let sids = state.ports.store.members(&index).await?;
    for sid in &sids {
        end(state, sid).await?;
        // RFC 7009 §2.1 / RFC 6749 §10.4: the tokens of the session go with it; `revoked-sid`
        // is what every token check reads.
        state.ports.store.put(&crate::oidc::keys::revoked_sid(sid), b"1", tokens_ttl(state)).await?;
        crate::oidc::logout::end_session(state, caller, sid).await;
    }
    state.ports.store.delete(&index).await?;
    Ok(sids.len())
}

/// How often each replica completes the endings of access still pending.
pub const SWEEP_SECS: u64 = 5;

/// Ends the access every pending note names (a status set from the command line, an ending that
/// failed), audits each, and removes the notes. Replicas claim a note in the store before
/// working on it, so one of them does it; a failed ending is tried again at a later sweep.
pub async fn complete_pending(state: &AppState) {
    let pending = match state.ports.revocations.pending_revocations().await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the pending endings of access could not be read; tried again shortly");
            return;
        }
    };
    let caller = crate::web::http::Caller::internal("pending-revocations");
    for note in pending {
        let claim = format!("revocation-claim:{}", note.id);
        if !matches!(state.ports.store.put_if_absent(&claim, b"1", Duration::from_secs(60)).await, Ok(true)) {
            continue;
        }
        let (subject, object) = match &note.target {
            AccessTarget::Identity(id) => (Some(id.clone()), None),
            AccessTarget::Credential(c) => (None, Some(c.clone())),
        };
        let outcome = match end_access(state, &caller, &note.target).await {
            Ok(n) => state.ports.revocations.revocation_done(&note.id).await.map(|()| n).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (outcome, reason) = match outcome {
            Ok(n) => (Outcome::Success, format!("{}: {n} session(s) ended", note.reason)),
            Err(e) => {
                tracing::error!(error = %e, "ending access failed; tried again at the next sweep");
                let _ = state.ports.store.delete(&claim).await;
                (Outcome::Failure, format!("{}: ending the sessions failed, tried again shortly", note.reason))
            }
        };
        state.audit(AuditEvent {
            kind: Some(AuditKind::AccessEnded),
            outcome: Some(outcome),
            subject,
            object,
            actor: Some("vigie".into()),
            reason: Some(reason),
            request_id: Some(caller.request_id.clone()),
            ..Default::default()
        });
    }
}

/// The live session `sid`, wherever the browser is (for a client acting on a session's behalf:
/// the DMP token exchange); `None` once it ended, expired or went idle.
pub async fn by_sid(state: &AppState, sid: &str) -> Result<Option<Session>, StoreError> {
    let Some(k) = state.ports.store.get(&sid_key(sid)).await? else { return Ok(None) };
    let s = state.ports.store.get_json::<Session>(&String::from_utf8_lossy(&k)).await?;
    Ok(s.filter(|s| s.sid == sid && s.expires_at > crate::now()))
}

/// Ends the session `sid`, wherever the browser is.
pub async fn end(state: &AppState, sid: &str) -> Result<(), StoreError> {
    if let Some(k) = state.ports.store.take(&sid_key(sid)).await? {
        state.ports.store.delete(&String::from_utf8_lossy(&k)).await?;
    }
    Ok(())
}

/// The cookie that clears the session cookie.
pub fn clear_cookie() -> actix_web::cookie::Cookie<'static> {
    crate::web::http::host_cookie(COOKIE, String::new(), Some(0))
}
