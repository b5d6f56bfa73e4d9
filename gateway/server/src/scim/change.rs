//! SCIM changes (RFC 7644 §3.3 create, §3.5.1 replace, §3.5.2 PATCH, §3.6 delete): each
//! checked against the token, the version (`If-Match`), the resource's rules, then written,
//! audited, and, for a User made inactive or deleted, the person's access ended.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use vigie_core::directory::AccessTarget;
use vigie_core::provisioning::Stored;

use super::resource::{self, ScimError, render};
use super::{
    Kind, audit_change, base, body_json, filter, id_of, if_match, patch, provisioner, read, resource_response, schema,
};
use crate::admin::auth::{EndingParts, Gate, GateParts};

/// How a change is written: a new resource, or a resource replaced whole (PUT, or PATCH once
/// its operations are applied to the stored JSON).
enum Change {
    Create(Value),
    Replace(Value),
    Patch(Value),
    Delete,
}

async fn change(req: HttpRequest, parts: GateParts, end: EndingParts, kind: Kind, change: Change) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = match provisioner(&req, &gate).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let id = id_of(&req);
    let (status, names) = match &change {
        Change::Create(b) | Change::Replace(b) => (StatusCode::OK, resource::attribute_names(b)),
        Change::Patch(b) => (StatusCode::OK, patch_names(b)),
        Change::Delete => (StatusCode::NO_CONTENT, String::new()),
    };
    let created = matches!(change, Change::Create(_));
    let outcome = apply_change(&gate, &end, kind, &id, change, &req).await;
    match outcome {
        Ok((stored, ended)) => {
            let object = format!("{}/{}", kind.name(), stored.as_ref().map_or(id.as_str(), |s| s.id.as_str()));
            let reason = match ended {
                Some(n) => format!("attributes [{names}]; access ended: {n} session(s)"),
                None => format!("attributes [{names}]"),
            };
            audit_change(&gate, &admin, &req, object, reason, true);
            match stored {
                Some(s) => {
                    let status = if created { StatusCode::CREATED } else { status };
                    resource_response(status, &s, kind, &base(&gate))
                }
                None => HttpResponse::NoContent().finish(),
            }
        }
        Err(e) => {
            audit_change(&gate, &admin, &req, format!("{}/{id}", kind.name()), format!("refused: {}", e.detail), false);
            e.response()
        }
    }
}

/// The paths a PATCH names, for the audit line.
fn patch_names(body: &Value) -> String {
    let ops = filter::member(body, "Operations").and_then(Value::as_array).cloned().unwrap_or_default();
    ops.iter()
        .map(|op| {
            let verb = filter::member(op, "op").and_then(Value::as_str).unwrap_or("?").to_ascii_lowercase();
            match filter::member(op, "path").and_then(Value::as_str) {
                Some(p) => format!("{verb} {}", p.chars().take(100).collect::<String>()),
                None => {
                    format!("{verb} {}", filter::member(op, "value").map(resource::attribute_names).unwrap_or_default())
                }
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .take(500)
        .collect()
}

async fn apply_change(
    gate: &Gate<'_>,
    end: &EndingParts,
    kind: Kind,
    id: &str,
    change: Change,
    req: &HttpRequest,
) -> Result<(Option<Stored>, Option<usize>), ScimError> {
    let p = gate.ports.provisioning.as_ref();
    let version = if matches!(change, Change::Create(_)) { None } else { if_match(req)? };
    let body = match change {
        Change::Create(b) | Change::Replace(b) => Some(b),
        Change::Patch(ops) => {
            let current = read(p, kind, id).await?;
            if version.is_some_and(|v| v != current.version) {
                return Err(ScimError::of(
                    vigie_core::provisioning::ProvisioningError::VersionMismatch(current.version),
                    kind.name(),
                    id,
                ));
            }
            let mut doc = render(&current, kind.name(), "").as_object().cloned().unwrap_or_default();
            doc.remove("meta");
            let extensions: &[&str] = if kind == Kind::User { &[schema::ENTERPRISE, schema::VIGIE] } else { &[] };
            patch::apply(&mut doc, &ops, kind.schema(), extensions)?;
            // The version read is the one patched: a change in between is a conflict (412).
            return write(gate, end, kind, id, Some(Value::Object(doc)), Some(current.version), false).await;
        }
        Change::Delete => None,
    };
    write(gate, end, kind, id, body, version, body_is_create(req)).await
}

fn body_is_create(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::POST
}

async fn write(
    gate: &Gate<'_>,
    end: &EndingParts,
    kind: Kind,
    id: &str,
    body: Option<Value>,
    version: Option<i64>,
    create: bool,
) -> Result<(Option<Stored>, Option<usize>), ScimError> {
    let p = gate.ports.provisioning.as_ref();
    let err = |e| ScimError::of(e, kind.name(), id);
    match (kind, body) {
        (Kind::User, Some(body)) => {
            let record = resource::user_record(&body)?;
            let stored = if create {
                p.create_user(&record).await.map_err(err)?
            } else {
                p.replace_user(id, &record, version).await.map_err(err)?
            };
            let ended =
                if stored.active { None } else { Some(end_access(gate, end, &stored.id, "SCIM active=false").await) };
            Ok((Some(stored), ended))
        }
        (Kind::User, None) => {
            p.delete_user(id, version).await.map_err(err)?;
            Ok((None, Some(end_access(gate, end, id, "SCIM User deleted").await)))
        }
        (Kind::Group, Some(body)) => {
            let record = resource::group_record(&body)?;
            let stored = if create {
                p.create_group(&record).await.map_err(err)?
            } else {
                p.replace_group(id, &record, version).await.map_err(err)?
            };
            Ok((Some(stored), None))
        }
        (Kind::Group, None) => {
            p.delete_group(id, version).await.map_err(err)?;
            Ok((None, None))
        }
    }
}

/// Ends every session and refresh family of the person, as a status change does: a durable
/// note first, so that a failed ending is completed by the sweep (`session::complete_pending`).
/// The account is already disabled: nothing logs in again meanwhile.
async fn end_access(gate: &Gate<'_>, end: &EndingParts, identity_id: &str, reason: &str) -> usize {
    let target = AccessTarget::Identity(identity_id.to_owned());
    let note = match gate.ports.revocations.add_pending_revocation(&target, reason).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::error!(error = %e, "SCIM: the note of an ending of access could not be written");
            None
        }
    };
    match crate::session::end_access(gate.ending(end), &gate.caller, &target).await {
        Ok(n) => {
            if let Some(note) = note
                && let Err(e) = gate.ports.revocations.revocation_done(&note).await
            {
                tracing::warn!(error = %e, "SCIM: an ending of access done stays noted; the sweep removes it");
            }
            n
        }
        Err(e) => {
            tracing::error!(error = %e, "SCIM: ending the sessions failed; the sweep completes it within {} s", crate::session::SWEEP_SECS);
            0
        }
    }
}

pub async fn create_user(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    with_body(req, parts, end, Kind::User, body, Change::Create).await
}

pub async fn replace_user(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    with_body(req, parts, end, Kind::User, body, Change::Replace).await
}

pub async fn patch_user(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    with_body(req, parts, end, Kind::User, body, Change::Patch).await
}

pub async fn delete_user(req: HttpRequest, parts: GateParts, end: EndingParts) -> HttpResponse {
    change(req, parts, end, Kind::User, Change::Delete).await
}

pub async fn create_group(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    with_body(req, parts, end, Kind::Group, body, Change::Create).await
}

pub async fn replace_group(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    with_body(req, parts, end, Kind::Group, body, Change::Replace).await
}

pub async fn patch_group(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    with_body(req, parts, end, Kind::Group, body, Change::Patch).await
}

pub async fn delete_group(req: HttpRequest, parts: GateParts, end: EndingParts) -> HttpResponse {
    change(req, parts, end, Kind::Group, Change::Delete).await
}

async fn with_body(
    req: HttpRequest,
    parts: GateParts,
    end: EndingParts,
    kind: Kind,
    body: web::Bytes,
    make: fn(Value) -> Change,
) -> HttpResponse {
    // The token is checked before the body is read: an unauthenticated caller learns nothing
    // of what the parser thinks of its bytes.
    {
        let gate = Gate::of(&req, &parts);
        if let Err(r) = provisioner(&req, &gate).await {
            return r;
        }
    }
    match body_json(&body) {
        Ok(v) => change(req, parts, end, kind, make(v)).await,
        Err(e) => e.response(),
    }
}
