//! What the login forms posted to `/login/password` and `/login/sponsorship` check alike before
//! their credentials: the form itself, its flow bound to this browser, its CSRF token, and the
//! attempts from the caller's address.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::Mie;
use vigie_core::audit::Outcome;
use vigie_core::store::StoreExt;

use super::{LoginFlow, flow_key};
use crate::secrets::ct_eq;
use crate::state::AppState;
use crate::web::http::{Caller, Params, parse_params};
use crate::web::pages;

/// A form field no longer than `max` bytes; a longer one counts as absent.
pub(crate) fn limited(p: &Params, name: &str, max: usize) -> Option<String> {
    p.get(name).filter(|v| v.len() <= max).map(str::to_owned)
}

/// A login form as posted: its fields, its flow's id and the flow.
pub(crate) struct PostedLogin {
    pub params: Params,
    pub flow_id: String,
    pub flow: LoginFlow,
}

/// Parses a posted login form and finds its flow, whose CSRF token and browser-binding cookie
/// must both match (compared in constant time); or the page that answers instead: a malformed
/// form, no flow, an expired flow, the store failing, or a form not issued to this browser.
pub(crate) async fn posted_login(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<PostedLogin, HttpResponse> {
    let Ok(params) = parse_params(body) else {
        return Err(pages::error_page(req, StatusCode::BAD_REQUEST, "the login form was malformed"));
    };
    let Some(flow_id) = limited(&params, "flow", 64) else {
        return Err(pages::error_page(req, StatusCode::BAD_REQUEST, "the login form has no flow"));
    };
    let flow = match state.ports.store.get_json::<LoginFlow>(&flow_key(&flow_id)).await {
        Ok(Some(f)) => f,
        Ok(None) => return Err(pages::flow_expired(req)),
        Err(e) => return Err(pages::error_page(req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())),
    };
    // CSRF: the form's token and the browser-binding cookie must both match the flow.
    let csrf_ok = params.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), flow.csrf.as_bytes()));
    let browser_ok = super::browser_bound(req, &flow.browser);
    if !csrf_ok || !browser_ok {
        return Err(pages::error_page(
            req,
            StatusCode::FORBIDDEN,
            "this login form was not issued to this browser: start again from the application",
        ));
    }
    Ok(PostedLogin { params, flow_id, flow })
}

/// Counts an attempt from the caller's address (`login.ip_window_secs`, shared by the methods).
/// Past `login.max_attempts_per_ip` the attempt is audited as refused and answered with the
/// rate-limited page (and counted in `vigie_login_total` as `rate_limited` when `metric`);
/// a store failure is answered with 503.
pub(crate) async fn limit_per_ip(
    state: &AppState,
    req: &HttpRequest,
    caller: &Caller,
    mie: Mie,
    username: &str,
    flow: &LoginFlow,
    metric: bool,
) -> Result<(), HttpResponse> {
    let cfg = &state.config.login;
    let ip_key = caller.rate_limit_key("login-ip");
    match state.ports.store.incr(&ip_key, Duration::from_secs(cfg.ip_window_secs)).await {
        Ok(n) if n > cfg.max_attempts_per_ip => {
            if metric {
                metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "rate_limited")
                    .increment(1);
            }
            super::audit_login(
                state,
                caller,
                mie,
                username,
                None,
                flow,
                Outcome::Failure,
                Some("too many attempts from this address"),
            );
            Err(pages::rate_limited(req, cfg.ip_window_secs))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(pages::error_page(req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string())),
    }
}
