//! HR's API for the security keys of others (bearer token with the `fido2` role): list an
//! identity's keys, issue an enrolment code, revoke a key. The work itself is the account's.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use vigie_core::fido2::Fido2Credential;

use crate::account::{AccountError, issue_enrolment_code, keys_of, revoke_key};
use crate::admin::auth::{EndingParts, Gate, GateParts};
use crate::web::http::problem;

/// The JSON view of a key for HR's API.
fn key_view(k: &Fido2Credential) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "aaguid": k.aaguid,
        "attested": k.attested,
        "sign_count": k.sign_count,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
    })
}

fn path(req: &HttpRequest, name: &str) -> Option<String> {
    req.match_info().get(name).filter(|v| !v.is_empty() && v.len() <= 1400).map(str::to_owned)
}

async fn api_admin(
    req: &HttpRequest,
    gate: &Gate<'_>,
    scope: vigie_core::roles::Scope,
) -> Result<crate::admin::auth::Admin, HttpResponse> {
    crate::admin::auth::require_token(req, gate, scope).await
}

/// `GET /admin/api/identities/{id}/fido2` (bearer token with role `fido2`, scope `keys:read`): the
/// identity's keys.
pub async fn api_keys(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    if let Err(r) = api_admin(&req, &gate, vigie_core::roles::Scope::KeysRead).await {
        return r;
    }
    let Some(id) = path(&req, "id") else { return problem(StatusCode::BAD_REQUEST, "Bad request", "no identity id") };
    match gate.ports.directory.identity(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return problem(StatusCode::NOT_FOUND, "Not found", &format!("there is no identity with id {id:?}"));
        }
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Directory unavailable", &e.to_string()),
    }
    match keys_of(gate.ports, &id).await {
        Ok(keys) => HttpResponse::Ok().json(json!({ "keys": keys.iter().map(key_view).collect::<Vec<_>>() })),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, "Directory unavailable", &e.to_string()),
    }
}

/// `POST /admin/api/identities/{id}/fido2/enrolment-code`: a one-time code for the agent to
/// register keys at `/account/enrol` (scope `keys:enrol`). The code is in this answer only.
pub async fn api_issue_code(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = match api_admin(&req, &gate, vigie_core::roles::Scope::KeysEnrol).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(id) = path(&req, "id") else { return problem(StatusCode::BAD_REQUEST, "Bad request", "no identity id") };
    match issue_enrolment_code(gate.ports, gate.config, gate.audit, &gate.caller, &id, &admin.actor).await {
        Ok(code) => HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(code),
        Err(AccountError::UnknownIdentity(_)) => {
            problem(StatusCode::NOT_FOUND, "Not found", &format!("there is no identity with id {id:?}"))
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &e.to_string()),
    }
}

/// `DELETE /admin/api/identities/{id}/fido2/{credential}` (scope `keys:revoke`): revokes a key;
/// its sessions end.
pub async fn api_revoke(req: HttpRequest, parts: GateParts, end: EndingParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = match api_admin(&req, &gate, vigie_core::roles::Scope::KeysRevoke).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (Some(id), Some(credential)) = (path(&req, "id"), path(&req, "credential")) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "expected /admin/api/identities/{id}/fido2/{credential}",
        );
    };
    match revoke_key(gate.ending(&end), &gate.caller, &id, &credential, &admin.actor).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "Not found", "this identity has no such key"),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &e.to_string()),
    }
}
