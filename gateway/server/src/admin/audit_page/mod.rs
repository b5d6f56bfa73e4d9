//! `/admin/audit-trail`: the console's page to search the audit trail and export a selection
//! (issue 18, "Using it": "the same in the admin console … a page to search and export"), for a
//! person holding the role `audit` — the filters of `vigie audit search` and `GET /admin/audit`
//! (the same parser, [`crate::audit::api::query_of`]), the CLI's CSV and JSON lines writers for
//! the export. Every search and every export is itself audited (`audit_searched`, the operator as
//! actor). The HTML is in [`render`].
mod render;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::roles::Role;

use crate::admin::auth::{Gate, GateParts};
use crate::admin::shell::{self, Console};
use crate::audit::api::AuditTrail;
use crate::audit::search::{self, Page, Query};
use crate::cli::audit_search::Format;
use crate::config::Config;
use crate::web::pages::{Lang, tr};

/// Where the page is.
pub const PATH: &str = "/admin/audit-trail";
/// Where the export is.
const EXPORT: &str = "/admin/audit-trail/export";
/// Records a page shows.
const PAGE_SIZE: usize = 50;
/// The most records one export holds: past it the operator narrows the selection (or uses
/// `vigie audit search`, page by page) rather than get a file silently cut short.
const EXPORT_MAX: usize = 10_000;

/// The page's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(get))
        .route("/admin/audit-trail/login", shell::login_route(PATH))
        .route(EXPORT, web::get().to(export));
}

/// The filters a form or link sent: the non-empty fields the API knows, as its query string.
fn api_query(params: &crate::web::http::Params, limit: Option<usize>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for k in ["person", "client", "kind", "result", "from", "to", "before"] {
        if let Some(v) = params.get(k).map(str::trim).filter(|v| !v.is_empty()) {
            q.append_pair(k, v);
        }
    }
    if let Some(n) = limit {
        q.append_pair("limit", &n.to_string());
    }
    q.finish()
}

/// The operator with the role `audit` and the filters sent, or the page refusing them. Not
/// signed in at all: this page's own sign-in, which comes back to it.
async fn auditor<'a>(
    req: &HttpRequest,
    parts: &'a GateParts,
    here: &'static str,
) -> Result<(Console<'a>, render::Form), HttpResponse> {
    let console = shell::open(req, parts, here, Role::Audit, Some(render::sign_in_needed)).await?;
    let form = render::Form::of(&console.params);
    Ok((console, form))
}

/// A search's failure: the cause (files, hosts, SQL) in the log, the operator told what to do.
fn unavailable(req: &HttpRequest, e: &anyhow::Error) -> HttpResponse {
    crate::web::pages::unavailable(req, &format!("audit search: {e:#}"))
}

/// Records `event` (a search or an export by `admin`) with the caller's address and request id.
fn record(gate: &Gate<'_>, mut event: vigie_core::audit::AuditEvent) {
    event.ip = Some(gate.caller.ip.clone());
    event.user_agent = gate.caller.user_agent.clone();
    event.request_id = Some(gate.caller.request_id.clone());
    gate.audit.record(event);
}

/// `GET /admin/audit-trail[?person=…&client=…&kind=…&result=…&from=…&to=…&before=…]`
pub async fn get(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let (Console { gate, admin, l, params }, form) = match auditor(&req, &parts, PATH).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let query = match crate::audit::api::query_of(&api_query(&params, Some(PAGE_SIZE))) {
        Ok(q) => q,
        Err(m) => return render::page(&admin.roles, l, StatusCode::BAD_REQUEST, &form, &render::notice(&m, true)),
    };
    let found = match gate.trail.open(&parts.config).await {
        Ok(trail) => search::search(&trail, &query).await,
        Err(e) => Err(e),
    };
    let found = match found {
        Ok(p) => p,
        Err(e) => return unavailable(&req, &e),
    };
    record(&gate, search::searched(&admin.actor, &query, found.records.len()));
    render::page(&admin.roles, l, StatusCode::OK, &form, &render::results(l, &form, &found))
}

/// Every record `query` selects, newest first, a page at a time; `None` past [`EXPORT_MAX`].
async fn everything(trail: &AuditTrail, config: &Config, mut query: Query) -> anyhow::Result<Option<Page>> {
    let trail = trail.open(config).await?;
    query.limit = search::MAX_LIMIT;
    let mut all = Page { records: Vec::new(), next: None };
    loop {
        let page = search::search(&trail, &query).await?;
        all.records.extend(page.records);
        if all.records.len() > EXPORT_MAX {
            return Ok(None);
        }
        match page.next {
            Some(next) => query.before = Some(next),
            None => return Ok(Some(all)),
        }
    }
}

/// `GET /admin/audit-trail/export?format=csv|jsonl&…`: the page's selection (every page of it)
/// as a file.
pub async fn export(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let (Console { gate, admin, l, params }, form) = match auditor(&req, &parts, EXPORT).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let bad = |m: &str| render::page(&admin.roles, l, StatusCode::BAD_REQUEST, &form, &render::notice(m, true));
    let (format, ext, mime) = match params.get("format") {
        Some("csv") => (Format::Csv, "csv", "text/csv; charset=utf-8"),
        Some("jsonl") => (Format::Jsonl, "jsonl", "application/x-ndjson; charset=utf-8"),
        _ => return bad(tr(l, "Format d'export : csv ou jsonl.", "Export format: csv or jsonl.")),
    };
    let query = match crate::audit::api::query_of(&api_query(&params, None)) {
        Ok(q) => q,
        Err(m) => return bad(&m),
    };
    let all = match everything(gate.trail, &parts.config, query.clone()).await {
        Ok(Some(all)) => all,
        Ok(None) => return bad(&too_many(l)),
        Err(e) => return unavailable(&req, &e),
    };
    let body = match crate::cli::audit_search::render(&all, format) {
        Ok(b) => b,
        Err(e) => return unavailable(&req, &e),
    };
    let mut event = search::searched(&admin.actor, &query, all.records.len());
    event.object = Some(format!("{} record(s) exported as {ext}", all.records.len()));
    record(&gate, event);
    let day = crate::rfc3339(crate::now()).chars().take(10).collect::<String>();
    HttpResponse::Ok()
        .content_type(mime)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"vigie-audit-{day}.{ext}\"")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn too_many(l: Lang) -> String {
    let n = EXPORT_MAX;
    tr(
        l,
        format!(
            "Plus de {n} enregistrements correspondent : réduisez la période ou précisez la personne, \
             ou exportez page par page avec `vigie audit search --before`."
        ),
        format!(
            "More than {n} records match: shorten the period or name the person, or export page by page with \
             `vigie audit search --before`."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::http::parse_params;

    #[test]
    fn the_forms_empty_fields_and_its_own_fields_do_not_reach_the_api_parser() {
        let p = parse_params(b"person=+u1+&client=&kind=login&result=&from=2026-12-01&to=&lang=en&format=csv").unwrap();
        let raw = api_query(&p, Some(50));
        assert_eq!(raw, "person=u1&kind=login&from=2026-12-01&limit=50");
        let q = crate::audit::api::query_of(&raw).unwrap();
        assert_eq!((q.persons.as_slice(), q.client.as_deref(), q.limit), (&["u1".to_owned()][..], None, 50));
        let e = crate::audit::api::query_of(&api_query(&parse_params(b"result=ok").unwrap(), None)).unwrap_err();
        assert!(e.contains("expected success or failure"), "{e}");
    }
}
