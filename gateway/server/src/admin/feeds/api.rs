//! The console's JSON API of feeds and proposals (`/admin/api/feeds…`, `/admin/api/proposals…`),
//! for scripts: an admin API token holding `feeds:read` (runs, proposals) or `proposals:write`
//! (confirm, reject) under its role (RFC 6750 bearer), refusals as RFC 9457 problems.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use vigie_core::roles::Scope;

use crate::admin::api::check_id;
use crate::admin::auth::{self, Gate, GateParts};
use crate::admin::bad_request;
use crate::admin::people::api::error;
use crate::lifecycle::runs;
use crate::web::http::problem;

/// How many runs a listing shows from a query string (`limit`, 1 to 200, 20 unless told).
pub fn limit_param(query: &str) -> Result<usize, String> {
    let params = crate::web::http::parse_params(query.as_bytes())?;
    match params.get("limit").map(str::parse::<usize>) {
        None => Ok(20),
        Some(Ok(n)) if (1..=vigie_directory_sql::MAX_RUNS).contains(&n) => Ok(n),
        Some(_) => Err(format!("`limit` must be an integer from 1 to {}", vigie_directory_sql::MAX_RUNS)),
    }
}

fn path_id(req: &HttpRequest, what: &str) -> Result<String, String> {
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    check_id(what, &id)?;
    Ok(id)
}

/// `GET /admin/api/feeds?limit=…`: the last runs, newest first.
pub async fn runs(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(auth::require_token(&req, &gate, Scope::FeedsRead).await);
    let limit = try_or!(limit_param(req.query_string()).map_err(|m| bad_request(&m)));
    match gate.ports.lifecycle.feed_runs(limit).await {
        Ok(list) => HttpResponse::Ok().json(json!({ "runs": list.iter().map(runs::summary_json).collect::<Vec<_>>() })),
        Err(e) => error(e.into()),
    }
}

/// `GET /admin/api/feeds/{id}`: one run with its diff and error lines.
pub async fn run(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(auth::require_token(&req, &gate, Scope::FeedsRead).await);
    let id = try_or!(path_id(&req, "run id").map_err(|m| bad_request(&m)));
    match gate.ports.lifecycle.feed_run(&id).await {
        Ok(Some(r)) => HttpResponse::Ok().json(runs::whole_json(&r)),
        Ok(None) => problem(StatusCode::NOT_FOUND, "Not found", "no such feed run: list the runs again"),
        Err(e) => error(e.into()),
    }
}

/// `GET /admin/api/proposals`: the pending RPPS proposals with their evidence.
pub async fn proposals(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(auth::require_token(&req, &gate, Scope::FeedsRead).await);
    match super::proposals(&gate).await {
        Ok(list) => HttpResponse::Ok().json(json!({ "proposals": list })),
        Err(e) => error(e),
    }
}

async fn decide(req: HttpRequest, parts: GateParts, confirm: bool) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = try_or!(auth::require_token(&req, &gate, Scope::ProposalsWrite).await);
    let id = try_or!(path_id(&req, "proposal id").map_err(|m| bad_request(&m)));
    match super::decide(&gate, &admin, &id, confirm).await {
        Ok(d) => HttpResponse::Ok().json(d),
        Err(e) => error(e),
    }
}

/// `POST /admin/api/proposals/{id}/confirm`: the identity gets the idNat.
pub async fn confirm(req: HttpRequest, parts: GateParts) -> HttpResponse {
    decide(req, parts, true).await
}

/// `POST /admin/api/proposals/{id}/reject`: the proposal goes, not to be made again.
pub async fn reject(req: HttpRequest, parts: GateParts) -> HttpResponse {
    decide(req, parts, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_bounded_with_a_precise_message() {
        assert_eq!(limit_param(""), Ok(20));
        assert_eq!(limit_param("limit=200"), Ok(200));
        assert!(limit_param("limit=0").unwrap_err().contains("from 1 to 200"));
        assert!(limit_param("limit=201").unwrap_err().contains("from 1 to 200"));
        assert!(limit_param("limit=x").unwrap_err().contains("`limit`"));
    }

    #[test]
    fn a_proposal_id_splits_at_its_last_underscore() {
        let id = super::super::proposal_id("0190a0b2-7c3e-7000-8000-000000000001", "810100000045");
        assert_eq!(super::super::split_id(&id), Some(("0190a0b2-7c3e-7000-8000-000000000001", "810100000045")));
        assert_eq!(super::super::split_id("no-underscore"), None);
        assert_eq!(super::super::split_id("trailing_"), None);
    }
}
