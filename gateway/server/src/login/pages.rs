//! Server-rendered pages: French first, English on request (`?lang=en`, `ui_locales`, or
//! `Accept-Language`). Plain HTML that works without JavaScript and with a screen reader.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use crate::http::esc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    /// The BCP 47 tag of the language, for `<html lang>` and links to the other language.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

/// The text in `l`: French `fr` or English `en`.
pub fn tr(l: Lang, fr: &'static str, en: &'static str) -> &'static str {
    match l {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

fn lang_from_tags(tags: &str) -> Option<Lang> {
    tags.split([',', ' ']).map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).find_map(|t| {
        if t.starts_with("fr") {
            Some(Lang::Fr)
        } else if t.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    })
}

/// `?lang=` first, then the request's `ui_locales`, then `Accept-Language`; French otherwise.
pub fn lang(req: &HttpRequest, ui_locales: Option<&str>) -> Lang {
    let q = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned());
    q.as_deref()
        .and_then(lang_from_tags)
        .or_else(|| ui_locales.and_then(lang_from_tags))
        .or_else(|| req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(lang_from_tags))
        .unwrap_or(Lang::Fr)
}

struct Texts {
    title: &'static str,
    intro: &'static str,
    username: &'static str,
    password: &'static str,
    totp: &'static str,
    totp_help: &'static str,
    submit: &'static str,
    generic_error: &'static str,
    step_up: &'static str,
    error_title: &'static str,
    expired: &'static str,
    rate_limited: &'static str,
    unavailable: &'static str,
    logged_out: &'static str,
    logout_question: &'static str,
    logout_button: &'static str,
    other_lang: &'static str,
    card: &'static str,
    card_help: &'static str,
    or_password: &'static str,
}

const FR: Texts = Texts {
    title: "Connexion",
    intro: "Identifiez-vous pour accéder à",
    username: "Identifiant",
    password: "Mot de passe",
    totp: "Code à usage unique",
    totp_help: "Les 6 chiffres affichés par votre application d'authentification.",
    submit: "Se connecter",
    generic_error: "Identifiant, mot de passe ou code incorrect, ou compte temporairement verrouillé. Vérifiez votre saisie ou contactez le support.",
    step_up: "Cette application demande un moyen d'identification plus fort que celui utilisé : choisissez l'un de ceux proposés ci-dessous.",
    error_title: "Connexion impossible",
    expired: "Cette demande de connexion a expiré ou est inconnue. Retournez à l'application et recommencez.",
    rate_limited: "Trop de tentatives depuis ce poste. Réessayez dans quelques instants.",
    unavailable: "Le service est momentanément indisponible. Réessayez dans quelques instants ; si cela dure, appelez le support en donnant la référence",
    logged_out: "Vous êtes déconnecté. Vous pouvez fermer cette page.",
    logout_question: "Voulez-vous vous déconnecter de toutes les applications ?",
    logout_button: "Se déconnecter",
    other_lang: "English",
    card: "Se connecter avec ma carte CPS / CPE",
    card_help: "Carte insérée dans le lecteur ; le code PIN vous sera demandé.",
    or_password: "Ou avec un mot de passe et un code à usage unique",
};

const EN: Texts = Texts {
    title: "Sign in",
    intro: "Sign in to access",
    username: "Username",
    password: "Password",
    totp: "One-time code",
    totp_help: "The 6 digits shown by your authenticator app.",
    submit: "Sign in",
    generic_error: "Wrong username, password or code, or account temporarily locked. Check what you typed or contact support.",
    step_up: "This application needs a stronger means of identification than the one used: choose one of those offered below.",
    error_title: "Cannot sign in",
    expired: "This sign-in request has expired or is unknown. Go back to the application and start again.",
    rate_limited: "Too many attempts from this workstation. Try again in a moment.",
    unavailable: "The service is temporarily unavailable. Try again in a moment; if it lasts, call support quoting reference",
    logged_out: "You are signed out. You may close this page.",
    logout_question: "Do you want to sign out of every application?",
    logout_button: "Sign out",
    other_lang: "Français",
    card: "Sign in with my CPS / CPE card",
    card_help: "Card in the reader; you will be asked for its PIN.",
    or_password: "Or with a password and a one-time code",
};

fn texts(l: Lang) -> &'static Texts {
    match l {
        Lang::Fr => &FR,
        Lang::En => &EN,
    }
}

pub(crate) fn html_page(
    l: Lang,
    status: StatusCode,
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
<body><main class="card">
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

#[derive(Clone, Copy)]
pub enum LoginError {
    Generic,
    /// The policy asks for a stronger MIE than the session's or the one just used.
    StepUp,
}

pub struct FormView<'a> {
    pub flow_id: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub error: Option<LoginError>,
    /// The client's redirect URI, whose origin the login form may redirect to.
    pub redirect_origin: &'a str,
    pub ui_locales: Option<&'a str>,
    /// The methods this flow's page offers.
    pub methods: super::Methods,
}

pub fn login_form(req: &HttpRequest, v: &FormView<'_>) -> HttpResponse {
    let l = lang(req, v.ui_locales);
    let t = texts(l);
    let error = match v.error {
        Some(LoginError::Generic) => {
            format!(r#"<p class="error" role="alert" id="login-error">{}</p>"#, esc(t.generic_error))
        }
        Some(LoginError::StepUp) => {
            format!(r#"<p class="error" role="alert" id="login-error">{}</p>"#, esc(t.step_up))
        }
        None => String::new(),
    };
    let described = if v.error.is_some() { r#" aria-describedby="login-error""# } else { "" };
    let (other_code, other) = match l {
        Lang::Fr => ("en", t.other_lang),
        Lang::En => ("fr", t.other_lang),
    };
    let card = if v.methods.card {
        format!(
            r#"<section class="method" aria-labelledby="card-title"><h2 id="card-title" class="sr-only">CPS / CPE</h2>
<a class="button" id="card-login" href="/login/cps?flow={flow}">{label}</a>
<p class="help">{help}</p></section>"#,
            flow = esc(v.flow_id),
            label = t.card,
            help = t.card_help,
        )
    } else {
        String::new()
    };
    let fido2 = if v.methods.fido2 { super::fido2::page_section(l, v.flow_id, v.csrf) } else { String::new() };
    let psc =
        if v.methods.psc { super::psc::page_section(l, v.flow_id, v.methods.psc_unavailable) } else { String::new() };
    let password = if v.methods.password {
        let heading = if v.methods.card || v.methods.fido2 || v.methods.psc {
            format!(r#"<h2 class="or">{}</h2>"#, t.or_password)
        } else {
            String::new()
        };
        format!(
            r#"{heading}<form method="post" action="/login/password" class="login" autocomplete="on">
<input type="hidden" name="flow" value="{flow}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="username">{lu}</label>
<input id="username" name="username" type="text" autocomplete="username" required value="{user}"{described}>
<label for="password">{lp}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{described}>
<label for="totp">{lt}</label>
<input id="totp" name="totp" type="text" inputmode="numeric" pattern="[0-9 ]{{6,7}}" autocomplete="one-time-code" required aria-describedby="totp-help">
<p id="totp-help" class="help">{help}</p>
<button type="submit">{submit}</button>
</form>"#,
            flow = esc(v.flow_id),
            csrf = esc(v.csrf),
            lu = t.username,
            user = esc(v.username),
            lp = t.password,
            lt = t.totp,
            help = t.totp_help,
            submit = t.submit,
        )
    } else {
        String::new()
    };
    let sponsorship =
        if v.methods.sponsorship { super::sponsorship::page_section(l, v.flow_id, v.csrf) } else { String::new() };
    let main = format!(
        r#"<p>{intro} <strong>{client}</strong>.</p>
{error}
{card}
{fido2}
{psc}
{password}
{sponsorship}
<p class="lang"><a href="/login?flow={flow}&amp;lang={other_code}" lang="{other_code}">{other}</a></p>"#,
        intro = esc(t.intro),
        client = esc(v.client_name),
        flow = esc(v.flow_id),
    );
    let origin = url::Url::parse(v.redirect_origin).map(|u| u.origin().ascii_serialization()).ok();
    let mut resp = html_page(l, StatusCode::OK, t.title, &main, origin.as_deref());
    if v.methods.fido2 {
        super::fido2::allow_script(&mut resp);
    }
    resp
}

pub fn error_page(req: &HttpRequest, status: StatusCode, detail: &str) -> HttpResponse {
    // Every 503 is a backend failing, whose text names internals (store address, SQL): its
    // callers pass the error as the detail, which goes to the log, not to the browser.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable(req, &detail);
    }
    let l = lang(req, None);
    let t = texts(l);
    html_page(l, status, t.error_title, &format!(r#"<p role="alert">{}</p>"#, esc(detail)), None)
}

/// A card login that did not go through: why, and the way back to the login page of the flow.
pub fn card_refused(req: &HttpRequest, status: StatusCode, detail: &str, flow_id: &str) -> HttpResponse {
    let l = lang(req, None);
    let t = texts(l);
    let back = match l {
        Lang::Fr => "Revenir à la page de connexion",
        Lang::En => "Back to the sign-in page",
    };
    let main = format!(
        r#"<p role="alert" id="card-error">{}</p><p><a class="button" href="/login?flow={}">{back}</a></p>"#,
        esc(detail),
        esc(flow_id)
    );
    html_page(l, status, t.error_title, &main, None)
}

pub fn flow_expired(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let t = texts(l);
    html_page(l, StatusCode::BAD_REQUEST, t.error_title, &format!(r#"<p role="alert">{}</p>"#, t.expired), None)
}

pub fn rate_limited(req: &HttpRequest, retry_after: u64) -> HttpResponse {
    let l = lang(req, None);
    let t = texts(l);
    let mut r = html_page(
        l,
        StatusCode::TOO_MANY_REQUESTS,
        t.error_title,
        &format!(r#"<p role="alert">{}</p>"#, t.rate_limited),
        None,
    );
    if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A backend (the store, the directory) failed: the page says to try again and gives the
/// request id for support; the cause goes to the log only, never to the browser.
pub fn unavailable(req: &HttpRequest, cause: &dyn std::fmt::Display) -> HttpResponse {
    let request_id = req.extensions().get::<crate::http::RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    tracing::error!(request_id, path = req.path(), error = %cause, "a backend failed; the user is asked to try again");
    let l = lang(req, None);
    let main = format!(r#"<p role="alert">{} {}.</p>"#, texts(l).unavailable, esc(&request_id));
    html_page(l, StatusCode::SERVICE_UNAVAILABLE, texts(l).error_title, &main, None)
}

pub fn logged_out(req: &HttpRequest) -> HttpResponse {
    let l = lang(req, None);
    let t = texts(l);
    html_page(l, StatusCode::OK, t.logout_button, &format!("<p>{}</p>", t.logged_out), None)
}

pub fn logout_confirm(req: &HttpRequest, token: &str) -> HttpResponse {
    let l = lang(req, None);
    let t = texts(l);
    let main = format!(
        r#"<p>{q}</p><form method="post" action="/logout"><input type="hidden" name="confirm" value="{token}"><button type="submit">{b}</button></form>"#,
        q = t.logout_question,
        token = esc(token),
        b = t.logout_button
    );
    html_page(l, StatusCode::OK, t.logout_button, &main, None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_pick_french_or_english() {
        assert_eq!(lang_from_tags("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(lang_from_tags("fr-FR"), Some(Lang::Fr));
        assert_eq!(lang_from_tags("de-DE, en;q=0.5"), Some(Lang::En));
        assert_eq!(lang_from_tags("de"), None);
    }

    proptest::proptest! {
        #[test]
        fn language_tag_parsing_never_panics(s in "\\PC{0,100}") {
            let _ = lang_from_tags(&s);
        }
    }
}
