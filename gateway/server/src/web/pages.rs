//! The shell of every server-rendered page, with the language of `web::lang` (re-exported: a page
//! takes its shell and its words from here), and the message pages all features show (errors,
//! rate limit, a backend down, logout). Plain HTML that works without JavaScript and with a
//! screen reader.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

pub use super::lang::{Lang, lang, tr};
use crate::web::http::esc;

/// The link to the page in the other language: `href` is the page's address up to where
/// `lang=` goes (ending in `?` or `&amp;`), already escaped.
pub fn lang_switch(l: Lang, href: &str) -> String {
    let other = l.other();
    format!(
        r#"<p class="lang"><a href="{href}lang={code}" lang="{code}">{name}</a></p>"#,
        code = other.code(),
        name = other.name()
    )
}

/// The title of every page that says something went wrong.
fn error_title(l: Lang) -> &'static str {
    tr(l, "Connexion impossible", "Cannot sign in")
}

fn logout_title(l: Lang) -> &'static str {
    tr(l, "Se déconnecter", "Sign out")
}

/// A page of the narrow layout (sign-in, messages); `form_action_extra` is an origin the page's
/// forms may also lead to.
pub fn html_page(
    l: Lang,
    status: StatusCode,
    title: &str,
    main: &str,
    form_action_extra: Option<&str>,
) -> HttpResponse {
    shell(l, status, "card", title, main, form_action_extra)
}

/// A page of the wide layout (tables: the administration pages).
pub fn wide_page(l: Lang, status: StatusCode, title: &str, main: &str) -> HttpResponse {
    shell(l, status, "card wide", title, main, None)
}

fn shell(
    l: Lang,
    status: StatusCode,
    class: &str,
    title: &str,
    main: &str,
    form_action_extra: Option<&str>,
) -> HttpResponse {
    let code = l.code();
    let body = format!(
        r#"<!doctype html>
<html lang="{code}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Vigie</title><link rel="stylesheet" href="/static/vigie.css"></head>
<body><main class="{class}">
<h1>{title}</h1>
{main}
</main></body></html>"#,
        title = esc(title)
    );
    // Chrome applies form-action to the redirect that follows a form post, so the client's
    // origin is allowed as the target of the login form's 303.
    let form_action = match form_action_extra {
        Some(o) => format!("'self' {o}"),
        None => "'self'".into(),
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!("default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(body)
}

pub fn error_page(req: &HttpRequest, status: StatusCode, detail: &str) -> HttpResponse {
    // Every 503 is a backend failing, whose text names internals (store address, SQL): its
    // callers pass the error as the detail, which goes to the log, not to the browser.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable(req, &detail);
    }
    let l = lang(req, None);
    html_page(l, status, error_title(l), &format!(r#"<p role="alert">{}</p>"#, esc(detail)), None)
}

/// A card login that did not go through: why, and the way back to the login page of the flow.
pub fn card_refused(req: &HttpRequest, status: StatusCode, detail: &str, flow_id: &str) -> HttpResponse {
    let l = lang(req, None);
    let back = tr(l, "Revenir à la page de connexion", "Back to the sign-in page");
    let main = format!(
        r#"<p role="alert" id="card-error">{}</p><p><a class="button" href="/login?flow={}">{back}</a></p>"#,
        esc(detail),
        esc(flow_id)
    );
    html_page(l, status, error_title(l), &main, None)
}

pub fn flow_expired(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let expired = tr(
        l,
        "Cette demande de connexion a expiré ou est inconnue. Retournez à l'application et recommencez.",
        "This sign-in request has expired or is unknown. Go back to the application and start again.",
    );
    html_page(l, StatusCode::BAD_REQUEST, error_title(l), &format!(r#"<p role="alert">{expired}</p>"#), None)
}

pub fn rate_limited(req: &HttpRequest, retry_after: u64) -> HttpResponse {
    let l = lang(req, None);
    let text = tr(
        l,
        "Trop de tentatives depuis ce poste. Réessayez dans quelques instants.",
        "Too many attempts from this workstation. Try again in a moment.",
    );
    let mut r =
        html_page(l, StatusCode::TOO_MANY_REQUESTS, error_title(l), &format!(r#"<p role="alert">{text}</p>"#), None);
    if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A backend (the store, the directory) failed: the page says to try again and gives the
/// request id for support; the cause goes to the log only, never to the browser.
pub fn unavailable(req: &HttpRequest, cause: &dyn std::fmt::Display) -> HttpResponse {
    let request_id = req.extensions().get::<crate::web::http::RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    tracing::error!(request_id, path = req.path(), error = %cause, "a backend failed; the user is asked to try again");
    let l = lang(req, None);
    let text = tr(
        l,
        "Le service est momentanément indisponible. Réessayez dans quelques instants ; si cela dure, appelez le support en donnant la référence",
        "The service is temporarily unavailable. Try again in a moment; if it lasts, call support quoting reference",
    );
    let main = format!(r#"<p role="alert">{text} {}.</p>"#, esc(&request_id));
    html_page(l, StatusCode::SERVICE_UNAVAILABLE, error_title(l), &main, None)
}

pub fn logged_out(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let text =
        tr(l, "Vous êtes déconnecté. Vous pouvez fermer cette page.", "You are signed out. You may close this page.");
    html_page(l, StatusCode::OK, logout_title(l), &format!("<p>{text}</p>"), None)
}

pub fn logout_confirm(req: &HttpRequest, token: &str) -> HttpResponse {
    let l = lang(req, None);
    let main = format!(
        r#"<p>{q}</p><form method="post" action="/logout"><input type="hidden" name="confirm" value="{token}"><button type="submit">{b}</button></form>"#,
        q = tr(
            l,
            "Voulez-vous vous déconnecter de toutes les applications ?",
            "Do you want to sign out of every application?"
        ),
        token = esc(token),
        b = logout_title(l)
    );
    html_page(l, StatusCode::OK, logout_title(l), &main, None)
}

const CSS: &str = "body{font-family:system-ui,sans-serif;background:#eef2f5;color:#1b1b1b;margin:0}\
.card{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0003}\
h1{font-size:1.5rem;margin-top:0}.card.wide{max-width:44rem}label{display:block;margin:1rem 0 .4rem;font-weight:600}\
input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #666;border-radius:4px}\
input:focus,button:focus,a:focus{outline:3px solid #005fcc;outline-offset:2px}\
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1rem;background:#000091;color:#fff;border:0;border-radius:4px;cursor:pointer}\
.error{background:#fee;border-left:4px solid #c00;padding:.6rem}.help{font-size:.85rem;color:#444;margin:.3rem 0 0}\
.lang{text-align:right;font-size:.9rem}caption{text-align:left;font-weight:600;padding-bottom:.5rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;border-bottom:1px solid #ddd;padding:.3rem;vertical-align:top}\
pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem}\
a.button{display:block;text-align:center;margin-top:1rem;padding:.7rem;background:#000091;color:#fff;border-radius:4px;text-decoration:none}\
h2.or{font-size:1rem;margin:2rem 0 0;border-top:1px solid #ddd;padding-top:1rem}\
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}";

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(CSS)
}
