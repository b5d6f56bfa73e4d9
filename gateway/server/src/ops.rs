//! The gateway's home page and the answer to a path it does not serve (the operations endpoints
//! are in `health::endpoints`).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::http::problem;
use crate::state::State;

pub async fn home(state: State) -> HttpResponse {
    let demo =
        if state.config.demo.app { r#"<li><a href="/demo-app/">Application de démonstration</a></li>"# } else { "" };
    let readyz =
        if state.config.server.ops_listen.is_none() { r#"<li><a href="/readyz">/readyz</a></li>"# } else { "" };
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        r#"<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Vigie</title><link rel="stylesheet" href="/static/vigie.css"></head><body><main class="card"><h1>Vigie</h1><ul>{demo}<li><a href="/.well-known/openid-configuration">OpenID Connect discovery</a></li>{readyz}</ul></main></body></html>"#
    ))
}

pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let detail = format!("no resource at {} {}", req.method(), req.path());
    problem(StatusCode::NOT_FOUND, "Not found", &detail.chars().take(200).collect::<String>())
}
