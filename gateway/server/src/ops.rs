//! The answer to a path the gateway does not serve (the operations endpoints are in
//! `health::endpoints`, the home page in `web::own_pages`).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::web::http::problem;

pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let detail = format!("no resource at {} {}", req.method(), req.path());
    problem(StatusCode::NOT_FOUND, "Not found", &detail.chars().take(200).collect::<String>())
}
