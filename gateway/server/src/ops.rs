//! The answer to a path the gateway does not serve (the operations endpoints are in
//! `health::endpoints`, the home page in `web::own_pages`).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::web::http::problem;

pub async fn not_found(req: HttpRequest) -> HttpResponse {
    // A person's browser asks for HTML first: a page with the way home, in their language. An
    // API client (and anything else) gets RFC 9457 problem details.
    let wants_html = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().is_some_and(|first| first.trim().starts_with("text/html")));
    if wants_html {
        return crate::web::pages::not_found(&req);
    }
    let detail = format!("no resource at {} {}", req.method(), req.path());
    problem(StatusCode::NOT_FOUND, "Not found", &detail.chars().take(200).collect::<String>())
}
