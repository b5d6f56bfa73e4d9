//! Self-service for a person's security keys: the keys page (list, register, revoke) at
//! `/account/keys` and key enrolment with a one-time code issued by HR at `/account/enrol`, for
//! staff whose first MIE is the key itself. The functions HR's admin API (`admin::fido2`) calls
//! are [`issue_enrolment_code`], [`keys_of`] and [`revoke_key`].
mod access;
pub(crate) mod enrolment;
pub(crate) mod keys;
pub mod notices;
pub(crate) mod pages;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::DirectoryError;
use vigie_core::store::StoreError;

use crate::state::Audit;
use crate::web::http::Caller;

pub use enrolment::{EnrolmentCode, issue_enrolment_code};
pub(crate) use enrolment::{new_code, normal_code};
pub use keys::{keys_of, revoke_key};

/// A failure of the account functions HR's API calls.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No identity with this id in the directory.
    #[error("no identity {0:?} in the directory")]
    UnknownIdentity(String),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The ephemeral store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key or enrolment-code event: what happened to whose account, by whom, to which key.
struct KeyEvent<'a> {
    kind: AuditKind,
    outcome: Outcome,
    identity_id: &'a str,
    actor: Option<&'a str>,
    key: Option<&'a str>,
    reason: Option<&'a str>,
}

/// The audit line of a key or enrolment-code event: method `fido2`, the key as `fido2:<id>`.
fn audit(audit: &Audit, caller: &Caller, e: KeyEvent<'_>) {
    audit.record(AuditEvent {
        kind: Some(e.kind),
        outcome: Some(e.outcome),
        subject: Some(e.identity_id.to_owned()),
        method: Some("fido2".into()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: e.reason.map(str::to_owned),
        actor: e.actor.map(str::to_owned),
        object: e.key.map(|o| format!("fido2:{o}")),
        ..Default::default()
    });
}
