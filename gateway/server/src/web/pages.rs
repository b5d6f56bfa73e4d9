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

/// The words of a message page in both languages: the page shows the one of the request
/// (`web::lang`), so no message reaches a person in a language the page does not speak.
#[derive(Clone, Copy, Debug)]
pub struct Say<'a> {
    fr: &'a str,
    en: &'a str,
}

impl<'a> Say<'a> {
    pub const fn new(fr: &'a str, en: &'a str) -> Self {
        Self { fr, en }
    }

    /// A text the caller already took from a table of both languages by the request's
    /// language (`tr(lang(req, …), …)`).
    pub fn chosen(text: &'a str) -> Self {
        Self { fr: text, en: text }
    }

    /// A text that carries both languages itself (`« français » / « English »`, the convention of
    /// the card and PSC refusals).
    pub fn both(text: &'a str) -> Self {
        Self { fr: text, en: text }
    }

    pub fn of(self, l: Lang) -> &'a str {
        tr(l, self.fr, self.en)
    }
}

/// A posted form that is not one (cut, or not sent by the page).
pub const FORM_UNREADABLE: Say<'static> = Say::new(
    "Le formulaire reçu est illisible : rechargez la page et recommencez.",
    "The form received is unreadable: reload the page and try again.",
);

/// A form whose CSRF token is not the one this browser's page carried.
pub const FORM_NOT_ISSUED: Say<'static> = Say::new(
    "Ce formulaire n'a pas été délivré à ce navigateur, ou votre session a changé : rechargez la page.",
    "This form was not issued to this browser, or your session changed: reload the page.",
);

/// Where a message page sends the person to act: every page has one way back.
#[derive(Clone, Copy, Debug)]
pub enum Back<'a> {
    /// The login page of this flow, to use another means of identification.
    Login(&'a str),
    /// The person's security keys page.
    Account,
    /// Vigie's home page: no flow to go back to, the person starts again from the application.
    Home,
    /// This same address again: a GET a backend failed (a POST goes home, never re-posted).
    Retry,
    /// Another page of Vigie (a path), with the words of its link.
    To(&'a str, Say<'a>),
}

impl Back<'_> {
    /// The link, `class="back"` (what the pages test looks for).
    pub fn link(self, req: &HttpRequest, l: Lang) -> String {
        let (href, label) = match self {
            Back::Login(flow) => (
                format!("/login?flow={}", url_part(flow)),
                tr(l, "Revenir à la page de connexion", "Back to the sign-in page"),
            ),
            Back::Account => ("/account/keys".to_owned(), tr(l, "Revenir à mon compte", "Back to my account")),
            Back::Retry if req.method() == actix_web::http::Method::GET => {
                (req.uri().to_string(), tr(l, "Réessayer", "Try again"))
            }
            Back::Home | Back::Retry => {
                ("/".to_owned(), tr(l, "Revenir à l'accueil de Vigie", "Back to Vigie's home page"))
            }
            Back::To(path, label) => (path.to_owned(), label.of(l)),
        };
        format!(r#"<p><a class="button back" href="{}">{label}</a></p>"#, esc(&href))
    }
}

/// A value put in a URL's query (a flow id comes from the request).
fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What a message page's address may carry into the link to the other language: what redisplays
/// the page (the flow, a search, an authorization request's public parameters). Anything else is
/// dropped, first of all what is single-use or identifying: an authorization `code` and its
/// `state` (PSC's callback), an enrolment `token`, `id_token_hint`, `login_hint` (RFC 6749 §10.5,
/// OIDC Core §3.1.2.1: neither belongs in a link a page hands on, nor in the history it leaves).
const REDISPLAY: &[&str] = &[
    "flow",
    "q",
    "done",
    "to",
    "rd",
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "ui_locales",
    "prompt",
    "max_age",
    "acr_values",
    "code_challenge",
    "code_challenge_method",
    "post_logout_redirect_uri",
];

/// The link to this same page in the other language (what redisplays it kept: [`REDISPLAY`], its
/// `lang` replaced).
fn same_page_other_lang(req: &HttpRequest, l: Lang) -> String {
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| REDISPLAY.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.extend_pairs(kept);
    let q = q.finish();
    let start = if q.is_empty() { format!("{}?", req.path()) } else { format!("{}?{q}&", req.path()) };
    // A POST's answer offers the other language of the address it was posted to, by GET: each
    // path here answers a GET with a page or a message, never an act.
    lang_switch(l, &esc(&start))
}

/// A message page: what went wrong and what to do (`say`), the way back, the other language.
pub fn message(req: &HttpRequest, status: StatusCode, title: Say<'_>, say: Say<'_>, back: Back<'_>) -> HttpResponse {
    let l = lang(req, None);
    let role = if status.is_success() { "status" } else { "alert" };
    let main = format!(
        r#"<p role="{role}" id="message">{}</p>{}{}"#,
        esc(say.of(l)),
        back.link(req, l),
        same_page_other_lang(req, l)
    );
    html_page(l, status, title.of(l), &main, None)
}

/// A refusal or an error: `say` tells what was wrong and what to do, in both languages, whatever
/// the status: a 503 written for the person (PSC's breaker open: "use your card or your key")
/// keeps its words. A backend's own error names internals (store address, SQL) and never comes
/// here: it goes through [`unavailable`], which logs it and shows the generic page.
pub fn error_page(req: &HttpRequest, status: StatusCode, say: Say<'_>, back: Back<'_>) -> HttpResponse {
    message(req, status, Say::new(error_title(Lang::Fr), error_title(Lang::En)), say, back)
}

/// A card or PSC login that did not go through: why (`detail` in both languages, `fr / en`, as
/// the refusals of `login::cps` and `login::psc` are written), and the way back to the flow's
/// login page.
pub fn card_refused(req: &HttpRequest, status: StatusCode, detail: &str, flow_id: &str) -> HttpResponse {
    message(
        req,
        status,
        Say::new(error_title(Lang::Fr), error_title(Lang::En)),
        Say::both(detail),
        Back::Login(flow_id),
    )
}

pub fn flow_expired(req: &HttpRequest) -> HttpResponse {
    error_page(
        req,
        StatusCode::BAD_REQUEST,
        Say::new(
            "Cette demande de connexion a expiré ou est inconnue. Retournez à l'application et recommencez.",
            "This sign-in request has expired or is unknown. Go back to the application and start again.",
        ),
        Back::Home,
    )
}

pub fn rate_limited(req: &HttpRequest, retry_after: u64, back: Back<'_>) -> HttpResponse {
    let mut r = error_page(
        req,
        StatusCode::TOO_MANY_REQUESTS,
        Say::new(
            "Trop de tentatives depuis ce poste. Réessayez dans quelques instants.",
            "Too many attempts from this workstation. Try again in a moment.",
        ),
        back,
    );
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
    let fr = format!(
        "Le service est momentanément indisponible. Réessayez dans quelques instants ; si cela dure, appelez le support en donnant la référence {request_id}."
    );
    let en = format!(
        "The service is temporarily unavailable. Try again in a moment; if it lasts, call support quoting reference {request_id}."
    );
    let title = Say::new(error_title(Lang::Fr), error_title(Lang::En));
    message(req, StatusCode::SERVICE_UNAVAILABLE, title, Say::new(&fr, &en), Back::Retry)
}

/// `404` for a browser: the address leads nowhere here; the way is the home page.
pub fn not_found(req: &HttpRequest) -> HttpResponse {
    message(
        req,
        StatusCode::NOT_FOUND,
        Say::new("Page introuvable", "Page not found"),
        Say::new(
            "Il n'y a pas de page à cette adresse. Ouvrez l'application depuis son lien habituel.",
            "There is no page at this address. Open the application from its usual link.",
        ),
        Back::Home,
    )
}

pub fn logged_out(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let text =
        tr(l, "Vous êtes déconnecté. Vous pouvez fermer cette page.", "You are signed out. You may close this page.");
    let main = format!("<p>{text}</p>{}{}", Back::Home.link(req, l), same_page_other_lang(req, l));
    html_page(l, StatusCode::OK, logout_title(l), &main, None)
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
    ) + &Back::To(
        "/",
        Say::new("Rester connecté : revenir à l'accueil", "Stay signed in: back to the home page"),
    )
    .link(req, l)
        + &same_page_other_lang(req, l);
    // The confirmation's POST is answered by a redirect to another origin as often as not: the
    // first SAML SP's SingleLogoutService (HTTP-Redirect), Pro Santé Connect's end_session, the
    // client's post_logout_redirect_uri. Chromium checks form-action on that redirect too: with
    // 'self' alone the session ended but the person stayed here and the SP was never told
    // (tests/browser/saml.test.mjs).
    html_page(l, StatusCode::OK, logout_title(l), &main, Some("https:"))
}

const CSS: &str = "body{font-family:system-ui,sans-serif;background:#eef2f5;color:#1b1b1b;margin:0}\
.card{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0003}\
h1{font-size:1.5rem;margin-top:0}.card.wide{max-width:44rem}label{display:block;margin:1rem 0 .4rem;font-weight:600}\
input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #666;border-radius:4px}\
select{padding:.5rem;font-size:1rem;border:1px solid #666;border-radius:4px}\
input:focus,select:focus,button:focus,a:focus{outline:3px solid #005fcc;outline-offset:2px}\
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1rem;background:#000091;color:#fff;border:0;border-radius:4px;cursor:pointer}\
.error{background:#fee;border-left:4px solid #c00;padding:.6rem}.help{font-size:.85rem;color:#444;margin:.3rem 0 0}\
.lang{text-align:right;font-size:.9rem}caption{text-align:left;font-weight:600;padding-bottom:.5rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;border-bottom:1px solid #ddd;padding:.3rem;vertical-align:top}\
pre{white-space:pre-wrap;word-break:break-all;font-size:.8rem}\
a.button{display:block;text-align:center;margin-top:1rem;padding:.7rem;background:#000091;color:#fff;border-radius:4px;text-decoration:none}\
h2.or{font-size:1rem;margin:2rem 0 0;border-top:1px solid #ddd;padding-top:1rem}\
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}\
nav.console ul{list-style:none;display:flex;flex-wrap:wrap;gap:1.5rem;padding:0 0 .5rem;margin:0 0 1rem;border-bottom:1px solid #ddd}\
nav.console a[aria-current=page]{font-weight:700;text-decoration:none;color:#000091;border-bottom:3px solid #000091}";

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(CSS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    async fn text(r: HttpResponse) -> String {
        let body = actix_web::body::to_bytes(r.into_body()).await.unwrap_or_default();
        String::from_utf8_lossy(&body).into_owned()
    }

    #[actix_web::test]
    async fn a_503_written_for_the_person_keeps_its_words_and_a_backend_failure_gets_the_generic_page() {
        let req = TestRequest::get().uri("/login/psc?flow=F").to_http_request();
        let words = Say::new("Pro Santé Connect ne répond pas : utilisez votre carte.", "PSC is down: use your card.");
        let page = error_page(&req, StatusCode::SERVICE_UNAVAILABLE, words, Back::Login("F"));
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = text(page).await;
        assert!(body.contains("Pro Santé Connect ne répond pas : utilisez votre carte."), "{body}");
        assert!(!body.contains("momentanément indisponible"), "{body}");

        let backend = unavailable(&req, &"connection refused to redis://10.0.0.7:6379");
        assert_eq!(backend.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = text(backend).await;
        assert!(body.contains("momentanément indisponible"), "{body}");
        assert!(!body.contains("10.0.0.7"), "the cause stays in the log: {body}");
    }

    #[actix_web::test]
    async fn the_language_link_keeps_what_redisplays_the_page_and_drops_codes_tokens_and_hints() {
        let req = TestRequest::get()
            .uri(
                "/login/psc/callback?code=SECRETCODE&state=ST4TE&flow=F1&token=T0KEN&id_token_hint=eyJH1NT\
                 &login_hint=dr.martin&utm=x&lang=fr",
            )
            .to_http_request();
        let link = same_page_other_lang(&req, Lang::Fr);
        assert_eq!(
            link,
            r#"<p class="lang"><a href="/login/psc/callback?flow=F1&amp;lang=en" lang="en">English</a></p>"#
        );
        let bare = TestRequest::get().uri("/?code=C").to_http_request();
        assert!(same_page_other_lang(&bare, Lang::En).contains(r#"href="/?lang=fr""#));
    }
}
