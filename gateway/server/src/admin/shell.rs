//! The console's shell (issue 17, "the console as one place"): the navigation every console page
//! shows (only the pages the operator's roles open, the current one marked `aria-current`), the
//! console pages a sign-in may come back to (an allow-list: never an open redirect), and
//! `GET /admin/login?back=…`, the sign-in that returns to the page that asked for it, and the
//! preamble every console page goes through before rendering its main ([`open`], [`operator`]).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::roles::Role;

use crate::admin::auth::{self, Admin, Gate, GateParts};
use crate::config::Config;
use crate::state::Part;
use crate::web::http::{Params, esc, parse_params};
use crate::web::pages::{Lang, lang, tr, wide_page};

/// One console page: its path, its name in both languages, the role that opens it.
struct Entry {
    path: &'static str,
    name: [&'static str; 2],
    role: Role,
}

/// The console's pages, in the navigation's order.
const PAGES: [Entry; 4] = [
    Entry { path: "/admin/cards", name: ["Cartes CPS / CPE", "CPS / CPE cards"], role: Role::Cards },
    Entry { path: "/admin/people", name: ["Personnes", "People"], role: Role::Cards },
    Entry { path: "/admin/feeds", name: ["Flux et propositions", "Feeds and proposals"], role: Role::Cards },
    Entry { path: "/admin/audit-trail", name: ["Journal d'audit", "Audit trail"], role: Role::Audit },
];

/// The console page `path` belongs to (itself, or a page under it such as `/admin/cards/bind`),
/// from the allow-list: what a sign-in may come back to. `None` for anything else — an absolute
/// URL, `//host`, a backslash trick or a path outside the console — so a crafted link cannot send
/// the browser elsewhere after signing in.
pub fn console_page(path: &str) -> Option<&'static str> {
    PAGES
        .iter()
        .map(|e| e.path)
        .find(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// What the navigation of a page shows: where the operator is, and their roles.
pub struct Nav<'a> {
    here: &'static str,
    roles: &'a [Role],
}

impl<'a> Nav<'a> {
    /// The navigation of the console page `here` for an operator holding `roles`.
    pub fn new(here: &'static str, roles: &'a [Role]) -> Self {
        Nav { here, roles }
    }

    /// For someone not (yet) let in: no links.
    pub fn none(here: &'static str) -> Self {
        Nav { here, roles: &[] }
    }

    /// The `<nav>` landmark, or nothing when no page is open to the operator.
    pub fn html(&self, l: Lang) -> String {
        let items: String = PAGES
            .iter()
            .filter(|e| self.roles.contains(&e.role))
            .map(|e| {
                let current = if e.path == self.here { r#" aria-current="page""# } else { "" };
                format!(
                    r#"<li><a href="{path}?lang={code}"{current}>{name}</a></li>"#,
                    path = e.path,
                    code = l.code(),
                    name = tr(l, e.name[0], e.name[1]),
                )
            })
            .collect();
        if items.is_empty() {
            return String::new();
        }
        format!(r#"<nav class="console" aria-label="{}"><ul>{items}</ul></nav>"#, tr(l, "Console", "Console"))
    }
}

/// A console page: the navigation, `main`, then `switch` (the language link).
pub fn page(nav: &Nav<'_>, l: Lang, status: StatusCode, title: &str, main: &str, switch: &str) -> HttpResponse {
    wide_page(l, status, title, &format!("{}{main}\n{switch}", nav.html(l)))
}

/// A console request let through the preamble: the gate, the operator holding the page's role,
/// the page's language and the query's parameters.
pub struct Console<'a> {
    pub gate: Gate<'a>,
    pub admin: Admin,
    pub l: Lang,
    pub params: Params,
}

/// The preamble of a console page's `GET` at `here`: back from signing in, the page again without
/// `?code=` in the address bar; then the operator holding `role` (the policy on administration
/// asked), or the refusal that signs in back to `here`. `signed_out` replaces that refusal for
/// someone not signed in at all, for a page with a sign-in of its own.
pub async fn open<'a>(
    req: &HttpRequest,
    parts: &'a GateParts,
    here: &'static str,
    role: Role,
    signed_out: Option<fn(Lang) -> HttpResponse>,
) -> Result<Console<'a>, HttpResponse> {
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    if let Some(back) = crate::web::own_pages::back_from_sign_in(&params, here) {
        return Err(back);
    }
    if let Some(signed_out) = signed_out {
        let gate = Gate::of(req, parts);
        if let Ok(None) = crate::session::current(gate.ports, gate.config, req).await {
            return Err(signed_out(lang(req, None)));
        }
    }
    let (gate, admin, l) = operator(req, parts, role).await?;
    Ok(Console { gate, admin, l, params })
}

/// The preamble of a console form (a `POST`, or a sub-page such as `/admin/cards/bind`): the
/// gate, the operator holding `role` and the page's language, or the refusal.
pub async fn operator<'a>(
    req: &HttpRequest,
    parts: &'a GateParts,
    role: Role,
) -> Result<(Gate<'a>, Admin, Lang), HttpResponse> {
    let gate = Gate::of(req, parts);
    let admin = auth::require_staff(req, &gate, role).await?;
    Ok((gate, admin, lang(req, None)))
}

/// The link that signs in and comes back to the console page `here`.
pub fn sign_in_href(here: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("back", here).finish();
    esc(&format!("/admin/login?{q}"))
}

/// The language link of the request's own page (path and query, `lang` left out), escaped for an
/// attribute and ready for `lang=…`. Only for a console page (a GET); otherwise the page it
/// belongs to, so a refused POST never links to its form's address.
pub fn here_link(req: &HttpRequest) -> String {
    let path = req.path();
    let page = console_page(path).unwrap_or(PAGES[0].path);
    if req.method() != actix_web::http::Method::GET || page != path {
        return format!("{page}?");
    }
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.0.iter().filter(|(k, _)| k != "lang") {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() { format!("{page}?") } else { format!("{page}?{}&amp;", esc(&q)) }
}

/// The name of the console page `here`, in the page's language.
pub fn title(l: Lang, here: &str) -> &'static str {
    let e = PAGES.iter().find(|e| e.path == here).unwrap_or(&PAGES[0]);
    tr(l, e.name[0], e.name[1])
}

/// The console page the request is on (or under), the cards when none.
pub fn here(req: &HttpRequest) -> &'static str {
    console_page(req.path()).unwrap_or(PAGES[0].path)
}

/// `GET /admin/login[?back=/admin/…]`: signs in as the admin pages' client (a phishing-resistant
/// MIE within 15 minutes, as the policy on administration asks), then comes back to `back`, a
/// console page (the cards without it). Any other `back` is refused with what to do.
pub async fn login(req: HttpRequest, config: Part<Config>) -> HttpResponse {
    let params = parse_params(req.query_string().as_bytes()).unwrap_or_default();
    let back = match params.get("back") {
        None => PAGES[0].path,
        // Exactly a console page: its sub-pages (forms, bind) come back to the page itself.
        Some(b) => match console_page(b).filter(|p| *p == b) {
            Some(p) => p,
            None => {
                let l = lang(&req, None);
                let text = tr(
                    l,
                    "Ce lien de connexion ne mène pas à une page de la console. Ouvrez la console depuis la page d'accueil de Vigie.",
                    "This sign-in link does not lead to a page of the console. Open the console from Vigie's home page.",
                );
                let main = format!(
                    r#"<p class="error" role="alert">{}</p><p><a href="/">{}</a></p>"#,
                    esc(text),
                    tr(l, "Accueil", "Home")
                );
                return wide_page(l, StatusCode::BAD_REQUEST, tr(l, "Console", "Console"), &main);
            }
        },
    };
    crate::web::own_pages::sign_in(&config, crate::admin::page::CLIENT_ID, back, 900)
}

/// The route `GET {here}/login` of a console page: signs in as the admin pages' client (as
/// [`login`] does), then comes back to `here`.
pub fn login_route(here: &'static str) -> actix_web::Route {
    actix_web::web::get().to(move |config: Part<Config>| async move {
        crate::web::own_pages::sign_in(&config, crate::admin::page::CLIENT_ID, here, 900)
    })
}

/// A notice above a console page's content: `role="alert"` for an error, `status` otherwise.
pub fn notice(text: &str, error: bool) -> String {
    if error {
        format!(r#"<p class="error" role="alert" id="notice">{}</p>"#, esc(text))
    } else {
        format!(r#"<p role="status" id="notice">{}</p>"#, esc(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_pages_are_returned_to() {
        assert_eq!(console_page("/admin/people"), Some("/admin/people"));
        assert_eq!(console_page("/admin/people/sessions/end"), Some("/admin/people"));
        assert_eq!(console_page("/admin/cards/bind"), Some("/admin/cards"));
        for bad in [
            "https://evil.example/admin/cards",
            "//evil.example/admin/cards",
            "/\\evil.example",
            "/admin/cardsx",
            "/admin/peoplex/..",
            "/account/keys",
            "",
            "admin/cards",
        ] {
            assert_eq!(console_page(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_navigation_shows_what_the_roles_open_and_marks_the_current_page() {
        let html = Nav::new("/admin/people", &[Role::Cards]).html(Lang::En);
        assert!(html.contains(r#"<a href="/admin/people?lang=en" aria-current="page">People</a>"#), "{html}");
        assert!(html.contains(r#"<a href="/admin/cards?lang=en">CPS / CPE cards</a>"#), "{html}");
        assert!(!html.contains("audit-trail"), "{html}");
        let audit = Nav::new("/admin/audit-trail", &[Role::Audit]).html(Lang::Fr);
        assert_eq!(audit.matches("<li>").count(), 1, "{audit}");
        assert!(audit.contains(r#"aria-current="page">Journal d'audit"#), "{audit}");
        assert_eq!(Nav::none("/admin/cards").html(Lang::Fr), "");
    }
}
