//! SCIM 2.0 provisioning (RFC 7643 / RFC 7644) under `/scim/v2`: discovery, Users and Groups
//! (create, read, replace, PATCH, delete, filtered and paged lists, ETags), for identity-governance
//! tools and HR connectors that push people rather than being pulled. Bearer tokens of
//! `[admin] tokens` with the role and scope `provisioning`; every change audited; a User made
//! inactive or deleted loses access at once (sessions, refresh families, back-channel logout).
//! See docs/scim.md.
mod change;
pub mod config;
pub mod filter;
mod patch;
mod resource;
pub mod schema;
mod sort;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::provisioning::{Provisioning, Stored};
use vigie_core::roles::Scope;

use crate::admin::auth::{Admin, Gate, GateParts};
use resource::{MEDIA_TYPE, ScimError, etag, render};

pub use config::ScimConfig;

/// A SCIM answer with its media type (RFC 7644 §8.1).
fn scim(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status).content_type(MEDIA_TYPE).body(body.to_string())
}

/// A resource with its `ETag` and, when just created, its `Location` (RFC 7644 §3.1, §3.14).
fn resource_response(status: StatusCode, stored: &Stored, kind: Kind, base: &str) -> HttpResponse {
    let body = render(stored, kind.name(), base);
    let mut r = scim(status, &body);
    if let Ok(v) = header::HeaderValue::from_str(&etag(stored.version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(loc) = body["meta"]["location"].as_str()
        && let Ok(v) = header::HeaderValue::from_str(loc)
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Kind::User => schema::USER,
            Kind::Group => schema::GROUP,
        }
    }
}

/// The caller if it holds a provisioning token (the admin gate: hash, expiry, role, scope,
/// policy, audit), or the refusal.
async fn provisioner(req: &HttpRequest, gate: &Gate<'_>) -> Result<Admin, HttpResponse> {
    let admin = crate::admin::auth::require_token(req, gate, Scope::Provisioning).await?;
    // Counted per token across replicas, after authentication: an unknown caller cannot spend a
    // connector's allowance.
    const WINDOW_SECS: u64 = 60;
    let limit = gate.config.scim.requests_per_minute;
    let key = crate::session::keys::scim_calls(&admin.actor);
    match gate.ports.store.incr(&key, std::time::Duration::from_secs(WINDOW_SECS)).await {
        Ok(n) if n > limit => {
            tracing::warn!(actor = %admin.actor, limit, "SCIM: a provisioning token is over its rate limit");
            let mut r = ScimError::new(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                format!("more than {limit} SCIM calls in a minute with this token: retry after {WINDOW_SECS} s"),
            )
            .response();
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(WINDOW_SECS));
            Err(r)
        }
        Ok(_) => Ok(admin),
        Err(e) => {
            tracing::error!(error = %e, "SCIM: the rate-limit counter could not be read");
            Err(ScimError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "the gateway's store is unavailable: retry shortly",
            )
            .response())
        }
    }
}

fn base(gate: &Gate<'_>) -> String {
    gate.config.endpoint("/scim/v2")
}

/// The version `If-Match` names (RFC 7644 §3.14; RFC 9110 §13.1.1): `None` for none or `*`.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ScimError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let v = v.to_str().unwrap_or_default().trim();
    if v == "*" {
        return Ok(None);
    }
    v.trim_start_matches("W/").trim_matches('"').parse::<i64>().map(Some).map_err(|_| {
        ScimError::new(StatusCode::PRECONDITION_FAILED, None, "If-Match names no version of this resource")
    })
}

fn body_json(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

fn audit_change(gate: &Gate<'_>, admin: &Admin, req: &HttpRequest, object: String, reason: String, ok: bool) {
    gate.audit.record(AuditEvent {
        kind: Some(AuditKind::Provisioned),
        outcome: Some(if ok { Outcome::Success } else { Outcome::Failure }),
        actor: Some(admin.actor.clone()),
        method: Some(req.method().to_string()),
        object: Some(object),
        reason: Some(reason),
        ip: Some(gate.caller.ip.clone()),
        user_agent: gate.caller.user_agent.clone(),
        request_id: Some(gate.caller.request_id.clone()),
        ..Default::default()
    });
}

/// `GET /scim/v2/ServiceProviderConfig`.
pub async fn service_provider_config(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    if let Err(r) = provisioner(&req, &gate).await {
        return r;
    }
    scim(StatusCode::OK, &schema::service_provider_config(gate.config.scim.max_results))
}

fn list(items: Vec<Value>, start: usize, total: usize) -> Value {
    json!({"schemas": [schema::LIST], "totalResults": total, "startIndex": start, "itemsPerPage": items.len(), "Resources": items})
}

/// `GET /scim/v2/ResourceTypes[/{id}]`.
pub async fn resource_types(req: HttpRequest, parts: GateParts) -> HttpResponse {
    discovery(req, parts, schema::resource_types(), "resource type").await
}

/// `GET /scim/v2/Schemas[/{id}]`.
pub async fn schemas(req: HttpRequest, parts: GateParts) -> HttpResponse {
    discovery(req, parts, schema::schemas(), "schema").await
}

async fn discovery(req: HttpRequest, parts: GateParts, all: Vec<Value>, what: &str) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    if let Err(r) = provisioner(&req, &gate).await {
        return r;
    }
    match req.match_info().get("id") {
        None => {
            let n = all.len();
            scim(StatusCode::OK, &list(all, 1, n))
        }
        Some(id) => match all.into_iter().find(|v| v["id"].as_str() == Some(id)) {
            Some(v) => scim(StatusCode::OK, &v),
            None => ScimError::not_found(what, id).response(),
        },
    }
}

/// What a list asks for, from the query string (GET) or a SearchRequest (POST `.search`).
#[derive(Default)]
struct Query {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
}

impl Query {
    fn of_params(req: &HttpRequest) -> Result<Query, ScimError> {
        let params = crate::web::http::parse_params(req.query_string().as_bytes()).map_err(ScimError::invalid_value)?;
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            params
                .get(name)
                .map(|v| v.parse::<i64>().map_err(|_| ScimError::invalid_value(format!("`{name}` must be an integer"))))
                .transpose()
        };
        Ok(Query {
            filter: params.get("filter").map(str::to_owned),
            start_index: number("startIndex")?,
            count: number("count")?,
            attributes: params.get("attributes").map(str::to_owned),
            excluded: params.get("excludedAttributes").map(str::to_owned),
            sort_by: params.get("sortBy").map(str::to_owned),
            sort_order: params.get("sortOrder").map(str::to_owned),
        })
    }

    /// RFC 7644 §3.4.3: a SearchRequest's members are the query parameters' (attribute lists as
    /// JSON arrays).
    fn of_search(body: &Value) -> Result<Query, ScimError> {
        let schemas = filter::member(body, "schemas").and_then(Value::as_array);
        if !schemas.is_some_and(|s| s.iter().any(|s| s.as_str() == Some(schema::SEARCH_REQUEST))) {
            return Err(ScimError::invalid_value(format!(
                "a search's `schemas` must be [\"{}\"]",
                schema::SEARCH_REQUEST
            )));
        }
        let text = |name: &str| -> Result<Option<String>, ScimError> {
            match filter::member(body, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(a)) => Ok(Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))),
                Some(_) => Err(ScimError::invalid_value(format!("`{name}` must be a string"))),
            }
        };
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            match filter::member(body, name) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    v.as_i64().map(Some).ok_or_else(|| ScimError::invalid_value(format!("`{name}` must be an integer")))
                }
            }
        };
        Ok(Query {
            filter: text("filter")?,
            start_index: number("startIndex")?,
            count: number("count")?,
            attributes: text("attributes")?,
            excluded: text("excludedAttributes")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
        })
    }
}

/// `GET /scim/v2/Users` and `/Groups`: filtered (RFC 7644 §3.4.2.2) and paged (§3.4.2.4).
async fn list_resources(req: HttpRequest, parts: GateParts, kinds: &[Kind], body: Option<web::Bytes>) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    if let Err(r) = provisioner(&req, &gate).await {
        return r;
    }
    let query = match body {
        None => Query::of_params(&req),
        Some(b) => body_json(&b).and_then(|v| Query::of_search(&v)),
    };
    match query {
        Ok(q) => match list_inner(&gate, kinds, &q).await {
            Ok(v) => scim(StatusCode::OK, &v),
            Err(e) => e.response(),
        },
        Err(e) => e.response(),
    }
}

async fn list_inner(gate: &Gate<'_>, kinds: &[Kind], q: &Query) -> Result<Value, ScimError> {
    let filter = match &q.filter {
        Some(f) => Some(filter::parse(f).map_err(|e| {
            ScimError::new(StatusCode::BAD_REQUEST, Some("invalidFilter"), format!("the filter is refused {e}"))
        })?),
        None => None,
    };
    // RFC 7644 §3.4.2.3: checked before anything is read, so that a bad sort is a 400 alone.
    let order = sort::Order::parse(q.sort_order.as_deref())?;
    let sort_by = q.sort_by.as_deref().map(sort::parse_by).transpose()?;
    let max = gate.config.scim.max_results;
    // RFC 7644 §3.4.2.4: a startIndex below 1 is 1; a negative count is 0; more than the
    // server's maximum is the maximum.
    let start = q.start_index.unwrap_or(1).max(1) as usize;
    let count = q.count.unwrap_or(max as i64).clamp(0, max as i64) as usize;
    let base = base(gate);
    let mut matching = Vec::new();
    for kind in kinds {
        let stored = match kind {
            Kind::User => gate.ports.provisioning.users().await,
            Kind::Group => gate.ports.provisioning.groups().await,
        }
        .map_err(|e| ScimError::of(e, kind.name(), ""))?;
        for s in &stored {
            let v = render(s, kind.name(), &base);
            // A filter reads whether the account is active even when the client never wrote
            // `active` (the answer shows only what it wrote).
            let mut seen = v.clone();
            if *kind == Kind::User {
                seen["active"] = json!(s.active);
            }
            if filter.as_ref().is_none_or(|f| filter::matches(f, &seen, kind.schema())) {
                matching.push(v);
            }
        }
    }
    if let Some(by) = &sort_by {
        // Each resource read under its own core schema (`/.search` lists Users and Groups).
        let core = |v: &Value| if v.get("userName").is_some() { Kind::User.schema() } else { Kind::Group.schema() };
        sort::sort(&mut matching, by, order, &core);
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(|v| project(v, q.attributes.as_deref(), q.excluded.as_deref()))
        .collect();
    Ok(list(page, start, total))
}

/// RFC 7644 §3.4.2.5: `attributes` keeps only those named (and what is always returned);
/// `excludedAttributes` removes those named.
fn project(mut v: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names = |s: &str| s.split(',').map(|a| a.trim().to_ascii_lowercase()).collect::<Vec<_>>();
    let always = ["id", "schemas", "meta"];
    let Some(object) = v.as_object_mut() else { return v };
    if let Some(keep) = attributes.map(names) {
        object.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            always.contains(&k.as_str())
                || keep.iter().any(|a| a == &k || a.starts_with(&format!("{k}.")) || a.starts_with(&format!("{k}:")))
        });
    }
    if let Some(drop) = excluded.map(names) {
        object.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            always.contains(&k.as_str()) || !drop.contains(&k)
        });
    }
    v
}

pub async fn list_users(req: HttpRequest, parts: GateParts) -> HttpResponse {
    list_resources(req, parts, &[Kind::User], None).await
}

pub async fn list_groups(req: HttpRequest, parts: GateParts) -> HttpResponse {
    list_resources(req, parts, &[Kind::Group], None).await
}

/// `POST /scim/v2/Users/.search` (RFC 7644 §3.4.3).
pub async fn search_users(req: HttpRequest, parts: GateParts, body: web::Bytes) -> HttpResponse {
    list_resources(req, parts, &[Kind::User], Some(body)).await
}

/// `POST /scim/v2/Groups/.search`.
pub async fn search_groups(req: HttpRequest, parts: GateParts, body: web::Bytes) -> HttpResponse {
    list_resources(req, parts, &[Kind::Group], Some(body)).await
}

/// `POST /scim/v2/.search`: every resource type.
pub async fn search_all(req: HttpRequest, parts: GateParts, body: web::Bytes) -> HttpResponse {
    list_resources(req, parts, &[Kind::User, Kind::Group], Some(body)).await
}

async fn read(p: &dyn Provisioning, kind: Kind, id: &str) -> Result<Stored, ScimError> {
    let found = match kind {
        Kind::User => p.user(id).await,
        Kind::Group => p.group(id).await,
    };
    found.map_err(|e| ScimError::of(e, kind.name(), id))?.ok_or_else(|| ScimError::not_found(kind.name(), id))
}

fn id_of(req: &HttpRequest) -> String {
    req.match_info().get("id").unwrap_or_default().chars().take(200).collect()
}

async fn get_resource(req: HttpRequest, parts: GateParts, kind: Kind) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    if let Err(r) = provisioner(&req, &gate).await {
        return r;
    }
    let id = id_of(&req);
    match read(gate.ports.provisioning.as_ref(), kind, &id).await {
        Ok(stored) => {
            // RFC 7644 §3.14: a client holding the current version gets 304.
            let current = etag(stored.version);
            let unchanged = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(',').any(|t| {
                    t.trim() == current || t.trim().trim_start_matches("W/") == current.trim_start_matches("W/")
                })
            });
            if unchanged {
                return HttpResponse::NotModified().insert_header((header::ETAG, current)).finish();
            }
            let params = crate::web::http::parse_params(req.query_string().as_bytes()).ok();
            let param = |name: &str| params.as_ref().and_then(|p| p.get(name));
            let mut r = resource_response(StatusCode::OK, &stored, kind, &base(&gate));
            if param("attributes").is_some() || param("excludedAttributes").is_some() {
                let body = project(
                    render(&stored, kind.name(), &base(&gate)),
                    param("attributes"),
                    param("excludedAttributes"),
                );
                let etag = r.headers().get(header::ETAG).cloned();
                r = scim(StatusCode::OK, &body);
                if let Some(e) = etag {
                    r.headers_mut().insert(header::ETAG, e);
                }
            }
            r
        }
        Err(e) => e.response(),
    }
}

pub async fn get_user(req: HttpRequest, parts: GateParts) -> HttpResponse {
    get_resource(req, parts, Kind::User).await
}

pub async fn get_group(req: HttpRequest, parts: GateParts) -> HttpResponse {
    get_resource(req, parts, Kind::Group).await
}

/// Any other path under `/scim/v2`: a SCIM 404, not the gateway's page.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let path: String = req.path().chars().take(100).collect();
    ScimError::new(
        StatusCode::NOT_FOUND,
        None,
        format!("{path} is not a SCIM endpoint of Vigie: see /scim/v2/ResourceTypes"),
    )
    .response()
}

/// `/scim/v2/Me` (RFC 7644 §3.11: a service provider without it "SHOULD respond with HTTP status
/// code 501"). A SCIM token here is a provisioning connector's (`[admin] tokens`, role
/// `provisioning`), never a person's: no User is its subject, so there is no "me" to alias.
pub async fn me(req: HttpRequest, parts: GateParts) -> HttpResponse {
    not_offered(
        &req,
        &parts,
        "/Me is not offered: a provisioning token stands for a connector, not a person; address the user at \
         /scim/v2/Users/{id}",
    )
    .await
}

/// `/scim/v2/Bulk` (RFC 7644 §3.7): not offered, as `ServiceProviderConfig` says
/// (`bulk.supported = false`).
pub async fn bulk(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let why = "Bulk is not offered (ServiceProviderConfig: bulk.supported = false): send each operation on its own";
    not_offered(&req, &parts, why).await
}

/// 501 to a provisioning token (only: a stranger learns nothing of what is offered).
async fn not_offered(req: &HttpRequest, parts: &GateParts, why: &str) -> HttpResponse {
    let gate = Gate::of(req, parts);
    if let Err(r) = provisioner(req, &gate).await {
        return r;
    }
    ScimError::new(StatusCode::NOT_IMPLEMENTED, None, why).response()
}

/// A method a SCIM path does not have (RFC 7644 §3.2: 405, e.g. a POST to a discovery endpoint).
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ScimError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        format!("{} is not allowed on {}", req.method(), req.path().chars().take(100).collect::<String>()),
    )
    .response()
}

/// The SCIM routes, mounted when `scim.enabled`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let other = || web::to(method_not_allowed);
    cfg.route("/scim/v2/ServiceProviderConfig", web::get().to(service_provider_config))
        .route("/scim/v2/ServiceProviderConfig", other())
        .route("/scim/v2/ResourceTypes", web::get().to(resource_types))
        .route("/scim/v2/ResourceTypes", other())
        .route("/scim/v2/ResourceTypes/{id}", web::get().to(resource_types))
        .route("/scim/v2/ResourceTypes/{id}", other())
        .route("/scim/v2/Schemas", web::get().to(schemas))
        .route("/scim/v2/Schemas", other())
        .route("/scim/v2/Schemas/{id}", web::get().to(schemas))
        .route("/scim/v2/Schemas/{id}", other())
        .route("/scim/v2/Me", web::to(me))
        .route("/scim/v2/Me/{rest:.*}", web::to(me))
        .route("/scim/v2/Bulk", web::to(bulk))
        .route("/scim/v2/.search", web::post().to(search_all))
        .route("/scim/v2/Users/.search", web::post().to(search_users))
        .route("/scim/v2/Groups/.search", web::post().to(search_groups))
        .route("/scim/v2/Users", web::get().to(list_users))
        .route("/scim/v2/Users", web::post().to(change::create_user))
        .route("/scim/v2/Users", other())
        .route("/scim/v2/Users/{id}", web::get().to(get_user))
        .route("/scim/v2/Users/{id}", web::put().to(change::replace_user))
        .route("/scim/v2/Users/{id}", web::patch().to(change::patch_user))
        .route("/scim/v2/Users/{id}", web::delete().to(change::delete_user))
        .route("/scim/v2/Users/{id}", other())
        .route("/scim/v2/Groups", web::get().to(list_groups))
        .route("/scim/v2/Groups", web::post().to(change::create_group))
        .route("/scim/v2/Groups", other())
        .route("/scim/v2/Groups/{id}", web::get().to(get_group))
        .route("/scim/v2/Groups/{id}", web::put().to(change::replace_group))
        .route("/scim/v2/Groups/{id}", web::patch().to(change::patch_group))
        .route("/scim/v2/Groups/{id}", web::delete().to(change::delete_group))
        .route("/scim/v2/Groups/{id}", other())
        .route("/scim/v2/{tail:.*}", web::to(not_found));
}
