//! The console's JSON API of people (`/admin/api/people…`), for scripts and `vigie people …`:
//! the same reads and actions as the page, through an admin API token holding `people:read` or
//! `people:write` (RFC 6750 bearer), refusals as RFC 9457 problems.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use vigie_core::roles::Scope;

use super::actions;
use crate::admin::actions::ActionError;
use crate::admin::api::{check_id, parse_body};
use crate::admin::auth::{self, EndingParts, Gate, GateParts};
use crate::admin::bad_request;
use crate::web::http::problem;

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;

/// `POST /admin/api/people/{id}/sessions/end`: one session (`sid`) or, without it, all.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSessions {
    pub sid: Option<String>,
}

/// The problem an action's failure gets.
pub fn error(e: ActionError) -> HttpResponse {
    match &e {
        ActionError::NotFound(m) => problem(StatusCode::NOT_FOUND, "Not found", m),
        ActionError::Unavailable(m) => {
            // The cause names hosts and SQL: the log has it, the caller gets what to do.
            tracing::error!(error = %m, "people API: the directory or the store failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Directory unavailable",
                "the directory database or the session store cannot be reached or is too slow: retry shortly",
            )
        }
        other => problem(StatusCode::CONFLICT, "Refused", &other.to_string()),
    }
}

/// A search's text, page start and size from a query string, or what is wrong with them.
pub fn search_params(query: &str) -> Result<(String, usize, usize), String> {
    use vigie_directory_sql::people::{MAX_PAGE, MAX_QUERY_CHARS};
    let params = crate::web::http::parse_params(query.as_bytes())?;
    let q = params.get("q").unwrap_or_default().to_owned();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("the search `q` is longer than {MAX_QUERY_CHARS} characters"));
    }
    let offset = match params.get("offset").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= 1_000_000 => n,
        Some(_) => return Err("`offset` must be an integer from 0 to 1000000".into()),
    };
    let limit = match params.get("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => return Err(format!("`limit` must be an integer from 1 to {MAX_PAGE}")),
    };
    Ok((q, offset, limit))
}

fn path_id(req: &HttpRequest) -> Result<String, String> {
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    check_id("person id", &id)?;
    Ok(id)
}

/// `GET /admin/api/people?q=…&offset=…&limit=…`
pub async fn search(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    try_or!(auth::require_token(&req, &gate, Scope::PeopleRead).await);
    let (q, offset, limit) = try_or!(search_params(req.query_string()).map_err(|m| bad_request(&m)));
    match gate.ports.lifecycle.search_people(&q, offset, limit).await {
        Ok(page) => HttpResponse::Ok().json(page),
        Err(e) => error(e.into()),
    }
}

/// `GET /admin/api/people/{id}`: the record, cards, live sessions, life-cycle events, recent logins
/// and refusals (`recent`: `{"status": "available", "entries": […]}` or `{"status": "unavailable"}`).
pub async fn show(req: HttpRequest, parts: GateParts) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = try_or!(auth::require_token(&req, &gate, Scope::PeopleRead).await);
    let id = try_or!(path_id(&req).map_err(|m| bad_request(&m)));
    match super::whole(gate.ports, &id).await {
        Ok(w) => {
            let recent = super::recent::recent(&gate, &admin.actor, &w.record).await;
            HttpResponse::Ok().json(json!({
                "person": w.record,
                "cards": w.cards.iter().map(crate::admin::api::CardView::of).collect::<Vec<_>>(),
                "card_orders": w.orders,
                "sessions": w.sessions,
                "events": w.events,
                "recent": recent,
            }))
        }
        Err(e) => error(e),
    }
}

/// `POST /admin/api/people/{id}/sessions/end` with `{"sid": …}` for one, `{}` for all.
pub async fn end_sessions(req: HttpRequest, parts: GateParts, end: EndingParts, body: web::Bytes) -> HttpResponse {
    let gate = Gate::of(&req, &parts);
    let admin = try_or!(auth::require_token(&req, &gate, Scope::PeopleWrite).await);
    let id = try_or!(path_id(&req).map_err(|m| bad_request(&m)));
    let what: EndSessions = try_or!(parse_body(&body).map_err(|m| bad_request(&m)));
    let ending = gate.ending(&end);
    match what.sid {
        Some(sid) => {
            try_or!(check_id("sid", &sid).map_err(|m| bad_request(&m)));
            match actions::end_session(ending, &admin, &gate.caller, &id, &sid).await {
                Ok(()) => HttpResponse::Ok().json(json!({ "sessions_ended": 1 })),
                Err(e) => error(e),
            }
        }
        None => match actions::end_all(ending, &admin, &gate.caller, &id).await {
            Ok(n) => HttpResponse::Ok().json(json!({ "sessions_ended": n })),
            Err(e) => error(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_parameters_are_bounded_with_precise_messages() {
        assert_eq!(search_params("q=dur"), Ok(("dur".into(), 0, DEFAULT_LIMIT)));
        assert_eq!(search_params("q=h%C3%A9l&offset=40&limit=20"), Ok(("hél".into(), 40, 20)));
        assert!(search_params("q=a&limit=0").unwrap_err().contains("from 1 to 100"));
        assert!(search_params("q=a&limit=101").unwrap_err().contains("from 1 to 100"));
        assert!(search_params("q=a&offset=-1").unwrap_err().contains("`offset`"));
        assert!(search_params(&format!("q={}", "x".repeat(101))).unwrap_err().contains("longer than 100"));
        assert!(parse_body::<EndSessions>(br#"{"sid":"a","all":true}"#).unwrap_err().contains("unknown field"));
        assert_eq!(parse_body::<EndSessions>(b"{}").unwrap().sid, None);
    }
}
