//! Ending sessions: one (a logout, `sid`), or every session of a person or of one MIE instance
//! (a departure, a lost card), with the tokens bound to them, and the sweep that completes the
//! endings still pending.
use std::time::Duration;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::AccessTarget;
use vigie_core::store::{EphemeralStore, StoreError};

use super::{keys, tokens_ttl};
use crate::config::Config;
use crate::state::{AppState, Audit, OidcState, Ports};

/// What ending a session reaches: its records and revocation marks, the provider's clients and
/// keys (logout tokens), the audit trail, and the outgoing HTTP client (back-channel logout).
#[derive(Clone, Copy)]
pub struct Ending<'a> {
    pub config: &'a Config,
    pub ports: &'a Ports,
    pub oidc: &'a OidcState,
    pub audit: &'a Audit,
    pub http: &'a reqwest::Client,
}

impl<'a> From<&'a AppState> for Ending<'a> {
    fn from(state: &'a AppState) -> Self {
        Self {
            config: &state.config,
            ports: &state.ports,
            oidc: &state.oidc,
            audit: &state.audit,
            http: &state.upstreams.http,
        }
    }
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
pub async fn end_access<'a>(
    ending: impl Into<Ending<'a>>,
    caller: &crate::web::http::Caller,
    target: &AccessTarget,
) -> Result<usize, StoreError> {
    let ending = ending.into();
    let store = ending.ports.store.as_ref();
    let index = match target {
        AccessTarget::Identity(id) => keys::identity_sessions(id),
        AccessTarget::Credential(c) => keys::credential_sessions(c),
    };
    let sids = store.members(&index).await?;
    for sid in &sids {
        end_one(ending, caller, sid).await?;
    }
    store.delete(&index).await?;
    Ok(sids.len())
}

/// How often each replica completes the endings of access still pending.
pub const SWEEP_SECS: u64 = 5;

/// Ends the access every pending note names (a status set from the command line, an ending that
/// failed), audits each, and removes the notes. Replicas claim a note in the store before
/// working on it, so one of them does it; a failed ending is tried again at a later sweep.
pub async fn complete_pending(ending: Ending<'_>) {
    let store = ending.ports.store.as_ref();
    let pending = match ending.ports.revocations.pending_revocations().await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "the pending endings of access could not be read; tried again shortly");
            return;
        }
    };
    let caller = crate::web::http::Caller::internal("pending-revocations");
    for note in pending {
        let claim = keys::revocation_claim(&note.id);
        if !matches!(store.put_if_absent(&claim, b"1", Duration::from_secs(60)).await, Ok(true)) {
            continue;
        }
        let (subject, object) = match &note.target {
            AccessTarget::Identity(id) => (Some(id.clone()), None),
            AccessTarget::Credential(c) => (None, Some(c.clone())),
        };
        let outcome = match end_access(ending, &caller, &note.target).await {
            Ok(n) => ending.ports.revocations.revocation_done(&note.id).await.map(|()| n).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (outcome, reason) = match outcome {
            Ok(n) => (Outcome::Success, format!("{}: {n} session(s) ended", note.reason)),
            Err(e) => {
                tracing::error!(error = %e, "ending access failed; tried again at the next sweep");
                let _ = store.delete(&claim).await;
                (Outcome::Failure, format!("{}: ending the sessions failed, tried again shortly", note.reason))
            }
        };
        ending.audit.record(AuditEvent {
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

/// Ends one session, wherever the browser is: its state and every token issued from it
/// (`offline_access` refresh families included), written first with errors returned; then its
/// audit line and a logout token to each application that asked for one
/// ([`crate::oidc::logout::announce`]); then the other replicas are told
/// ([`crate::policy::view::signal_change`]). The one way a session is ended on someone's behalf:
/// the console, and each session of an ending of access ([`end_access`]).
pub async fn end_one<'a>(
    ending: impl Into<Ending<'a>>,
    caller: &crate::web::http::Caller,
    sid: &str,
) -> Result<(), StoreError> {
    let ending = ending.into();
    revoke(ending, sid).await?;
    crate::oidc::logout::announce(ending, caller, sid).await;
    if let Err(e) = crate::policy::view::signal_change(ending.ports.store.as_ref()).await {
        tracing::warn!(error = %e, "the other replicas could not be told at once; they see the ending at their next read");
    }
    Ok(())
}

/// The store's part of ending `sid`: its state, and the `revoked-sid` mark every token check
/// reads, so the session's tokens go with it (RFC 7009 §2.1, RFC 6749 §10.4).
pub(crate) async fn revoke(ending: Ending<'_>, sid: &str) -> Result<(), StoreError> {
    let store = ending.ports.store.as_ref();
    end(store, sid).await?;
    store.put(&keys::revoked_sid(sid), b"1", tokens_ttl(ending.config)).await
}

/// Ends the session `sid`'s state, wherever the browser is (its tokens: [`end_one`]).
pub async fn end(store: &dyn EphemeralStore, sid: &str) -> Result<(), StoreError> {
    // Before and after the store: a forward-auth check deciding meanwhile keeps nothing it read.
    crate::forward_auth::session_ended();
    if let Some(k) = store.take(&keys::session_of_sid(sid)).await? {
        store.delete(&String::from_utf8_lossy(&k)).await?;
    }
    crate::forward_auth::session_ended();
    Ok(())
}
