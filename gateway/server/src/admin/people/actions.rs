//! What the console does for a person, whatever the surface (page, API, CLI through the API):
//! read their record and live sessions, end one session or all of them. Every ending is audited
//! here, once, with the operator.
use serde::Serialize;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::AccessTarget;
use vigie_directory_sql::people::PersonRecord;

use crate::admin::actions::ActionError;
use crate::admin::auth::Admin;
use crate::session::{self, Ending, keys};
use crate::state::Ports;
use crate::web::http::Caller;

/// A live SSO session of a person, as the console shows it (never its cookie).
#[derive(Clone, Debug, Serialize)]
pub struct LiveSession {
    /// Public session id (the `sid` claim).
    pub sid: String,
    /// When it was opened (Unix time).
    pub created_at: i64,
    /// Its absolute end (Unix time).
    pub expires_at: i64,
    /// The MIE it was opened with (`cps`, `fido2`, `totp`…).
    pub method: &'static str,
    /// The `acr` it carries.
    pub level: &'static str,
}

/// The person `id`, or `NotFound`.
pub async fn person(ports: &Ports, id: &str) -> Result<PersonRecord, ActionError> {
    ports.lifecycle.person(id).await?.ok_or_else(|| {
        ActionError::NotFound(format!(
            "there is no person with id {:?}: search for them first",
            id.chars().take(64).collect::<String>()
        ))
    })
}

/// The person's sessions still alive, newest first. The index outlives the sessions (it follows
/// their tokens): ended, expired or idle ones are left out.
pub async fn live_sessions(ports: &Ports, id: &str) -> Result<Vec<LiveSession>, ActionError> {
    let store = ports.store.as_ref();
    let sids = store.members(&keys::identity_sessions(id)).await.map_err(unavailable)?;
    let mut out = Vec::new();
    for sid in sids {
        if let Some(s) = session::by_sid(store, &sid).await.map_err(unavailable)? {
            out.push(LiveSession {
                sid: s.sid,
                created_at: s.created_at,
                expires_at: s.expires_at,
                method: s.authentication.mie.as_str(),
                level: s.authentication.level.acr(),
            });
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(out)
}

fn unavailable(e: impl std::fmt::Display) -> ActionError {
    ActionError::Unavailable(e.to_string())
}

fn audit(ending: &Ending<'_>, admin: &Admin, caller: &Caller, id: &str, sid: Option<&str>, reason: String) {
    ending.audit.record(AuditEvent {
        kind: Some(AuditKind::AccessEnded),
        outcome: Some(Outcome::Success),
        subject: Some(id.to_owned()),
        actor: Some(admin.actor.clone()),
        sid: sid.map(str::to_owned),
        reason: Some(reason),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
}

/// Ends one session of the person: its state, every token issued from it (refresh families
/// included: `revoked-sid` is what each token check reads, RFC 7009 §2.1), and a logout token to
/// each application that asked for one. Refused for a session that is not theirs.
pub async fn end_session(
    ending: Ending<'_>,
    admin: &Admin,
    caller: &Caller,
    id: &str,
    sid: &str,
) -> Result<(), ActionError> {
    person(ending.ports, id).await?;
    let store = ending.ports.store.as_ref();
    let theirs = store.members(&keys::identity_sessions(id)).await.map_err(unavailable)?;
    if !theirs.iter().any(|s| s == sid) {
        return Err(ActionError::NotFound(format!(
            "the person {id} has no session {:?}: reload their page to see the live ones",
            sid.chars().take(64).collect::<String>()
        )));
    }
    session::end_one(ending, caller, sid).await.map_err(unavailable)?;
    audit(&ending, admin, caller, id, Some(sid), "session ended from the console".into());
    Ok(())
}

/// Ends every session of the person and every token bound to them. A durable note first, as a
/// lost card does: should this fail half-way, the sweep finishes it (`session::complete_pending`).
/// Returns how many live sessions ended (the index also names sessions already ended, whose
/// tokens are revoked again).
pub async fn end_all(ending: Ending<'_>, admin: &Admin, caller: &Caller, id: &str) -> Result<usize, ActionError> {
    person(ending.ports, id).await?;
    let live = live_sessions(ending.ports, id).await?.len();
    let target = AccessTarget::Identity(id.to_owned());
    let revocations = &ending.ports.revocations;
    let note = revocations.add_pending_revocation(&target, "sessions ended from the console").await?;
    session::end_access(ending, caller, &target).await.map_err(|e| {
        ActionError::Unavailable(format!(
            "the person's sessions could not all be ended now ({e}): they end within {} seconds",
            session::SWEEP_SECS
        ))
    })?;
    revocations.revocation_done(&note).await?;
    audit(&ending, admin, caller, id, None, format!("all sessions ended from the console: {live} live session(s)"));
    Ok(live)
}
