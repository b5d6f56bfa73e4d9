//! The login page: the methods a flow offers (card, key, PSC, password and code, sponsorship),
//! its errors, in the page shell of `web::pages`.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::web::http::esc;
use crate::web::pages::{Lang, html_page, lang, lang_switch, tr};

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
    card: &'static str,
    card_help: &'static str,
    or_password: &'static str,
    /// Password + TOTP while the LDAP directory's breaker is open.
    password_down: &'static str,
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
    card: "Se connecter avec ma carte CPS / CPE",
    card_help: "Carte insérée dans le lecteur ; le code PIN vous sera demandé.",
    or_password: "Ou avec un mot de passe et un code à usage unique",
    password_down: "L'annuaire de l'établissement ne répond pas : la connexion par mot de passe est momentanément indisponible. Utilisez votre carte CPS / CPE ou votre clé de sécurité, ou réessayez dans quelques minutes.",
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
    card: "Sign in with my CPS / CPE card",
    card_help: "Card in the reader; you will be asked for its PIN.",
    or_password: "Or with a password and a one-time code",
    password_down: "The establishment's directory does not answer: signing in with a password is unavailable for now. Use your CPS / CPE card or your security key, or try again in a few minutes.",
};

fn texts(l: Lang) -> &'static Texts {
    tr(l, &FR, &EN)
}

#[derive(Clone, Copy)]
pub enum LoginError {
    Generic,
    /// The policy asks for a stronger MIE than the session's or the one just used.
    StepUp,
    /// A message of its own, French and English (the establishment's directory: an account
    /// state, the directory down).
    Notice {
        fr: &'static str,
        en: &'static str,
    },
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
        Some(LoginError::Notice { fr, en }) => {
            format!(r#"<p class="error" role="alert" id="login-error">{}</p>"#, esc(tr(l, fr, en)))
        }
        None => String::new(),
    };
    let described = if v.error.is_some() { r#" aria-describedby="login-error""# } else { "" };
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
        if v.methods.password_unavailable {
            format!(r#"{heading}<p class="help" id="password-unavailable" role="status">{}</p>"#, t.password_down)
        } else {
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
        }
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
{switch}"#,
        intro = esc(t.intro),
        client = esc(v.client_name),
        switch = lang_switch(l, &format!("/login?flow={}&amp;", esc(v.flow_id))),
    );
    let origin = url::Url::parse(v.redirect_origin).map(|u| u.origin().ascii_serialization()).ok();
    let mut resp = html_page(l, StatusCode::OK, t.title, &main, origin.as_deref());
    if v.methods.fido2 {
        super::fido2::allow_script(&mut resp);
    }
    resp
}
