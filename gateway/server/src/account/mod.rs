//! Self-service for a person's security keys: the keys page (list, register, revoke) at
//! `/account/keys` and key enrolment with a one-time code issued by HR at `/account/enrol`, for
//! staff whose first MIE is the key itself. The functions HR's admin API (`admin::fido2`) calls
//! are [`issue_enrolment_code`], [`keys_of`] and [`revoke_key`].
mod access;
mod enrolment;
mod keys;
mod pages;

use actix_web::web;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::DirectoryError;
use vigie_core::store::StoreError;

use crate::app::AppState;
use crate::http::Caller;

pub use enrolment::{EnrolmentCode, issue_enrolment_code};
pub(crate) use enrolment::{new_code, normal_code};
pub use keys::{keys_of, revoke_key};

/// `/account/keys` (page, register, revoke) and `/account/enrol` (code).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/keys", web::get().to(pages::keys_page))
        .route("/account/keys", web::post().to(keys::register))
        .route("/account/keys/options", web::post().to(keys::register_options))
        .route("/account/keys/revoke", web::post().to(keys::revoke))
        .route("/account/enrol", web::get().to(enrolment::code_page))
        .route("/account/enrol", web::post().to(enrolment::redeem_code))
        .route("/account/enrol/done", web::post().to(enrolment::end_enrolment))
        // HR's key API stays registered here, where it always was, until one route table holds every route.
        .route("/admin/api/identities/{id}/fido2", web::get().to(crate::admin::fido2::api_keys))
        .route("/admin/api/identities/{id}/fido2/enrolment-code", web::post().to(crate::admin::fido2::api_issue_code))
        .route("/admin/api/identities/{id}/fido2/{credential}", web::delete().to(crate::admin::fido2::api_revoke));
}

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

/// The audit line of a key or enrolment-code event: method `fido2`, the key as `fido2:<id>`.
#[allow(clippy::too_many_arguments)]
fn audit(
    state: &AppState,
    caller: &Caller,
    kind: AuditKind,
    outcome: Outcome,
    identity_id: &str,
    actor: Option<&str>,
    object: Option<&str>,
    reason: Option<&str>,
) {
    state.audit(AuditEvent {
        kind: Some(kind),
        outcome: Some(outcome),
        subject: Some(identity_id.to_owned()),
        method: Some("fido2".into()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: reason.map(str::to_owned),
        actor: actor.map(str::to_owned),
        object: object.map(|o| format!("fido2:{o}")),
        ..Default::default()
    });
}
