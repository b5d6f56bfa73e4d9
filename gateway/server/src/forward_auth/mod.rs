//! Forward-auth for applications that speak neither OIDC nor SAML: the reverse proxy (nginx
//! `auth_request`, Traefik `ForwardAuth`) asks Vigie about each request, and Vigie answers with
//! the identity headers, or sends the browser to log in. See docs/forward-auth.md.
//!
//! The app's cookie is not Vigie's session cookie: it is an opaque handle, set on the app's host
//! through a redirect dance (the app's `/.vigie/start` → `/authorize` → the app's
//! `/.vigie/callback`), that names a Vigie session and dies with it (checked against the store at
//! every request).
mod check;
pub mod config;
mod dance;
mod decisions;

pub use check::{nginx, traefik};
pub use config::{App, ForwardAuthConfig};
pub use dance::{callback, logout, start};

use actix_web::HttpRequest;
use actix_web::web;
use serde::{Deserialize, Serialize};

use crate::secrets::sha256_b64;

/// The app's cookie on an `https` app: `__Host-` keeps it to the exact host, `Secure`, `Path=/`.
pub const HOST_COOKIE: &str = "__Host-vigie-app";
/// The app's cookie on a loopback `http` app (a test or a developer's machine): no `__Host-`,
/// which browsers accept only with `Secure`.
pub const PLAIN_COOKIE: &str = "vigie-app";
/// The login in progress on the app's host (set by `start`, required by `callback`): a callback
/// URL opened in another browser logs nobody in there (login CSRF).
pub const LOGIN_COOKIE: &str = "__Host-vigie-app-login";
pub const PLAIN_LOGIN_COOKIE: &str = "vigie-app-login";

/// The routes, mounted when `[[forward_auth.apps]]` names at least one app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Any method: nginx's auth subrequest and Traefik's check copy the original request's.
    cfg.route("/forward-auth/nginx", web::route().to(nginx))
        .route("/forward-auth/traefik", web::route().to(traefik))
        .route("/forward-auth/start", web::get().to(start))
        .route("/forward-auth/callback", web::get().to(callback))
        .route("/forward-auth/logout", web::get().to(logout))
        .route("/forward-auth/logout", web::post().to(logout));
}

/// A session ended on this replica (`session::end`): no check answer decided before it is
/// reused (`decisions`).
pub fn session_ended() {
    decisions::global().session_ended();
}

/// What the app's cookie names in the store (by its hash): a Vigie session.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Handle {
    /// The store key of the session (`session::keys::session`), read at every check.
    session_key: String,
    sid: String,
    /// The origin the cookie was set on: a handle copied to another app's host answers nothing.
    origin: String,
    /// The account's login name, read once at the callback (`X-Vigie-User`).
    user: String,
}

/// A login started for an app: where to go back, the PKCE verifier of its code, and the hash of
/// the login cookie of the browser that started it.
#[derive(Serialize, Deserialize)]
struct Started {
    rd: String,
    client_id: String,
    verifier: String,
    browser: String,
}

fn handle_key(handle: &str) -> String {
    format!("fwd:{}", sha256_b64(handle.as_bytes()))
}

fn started_key(state: &str) -> String {
    format!("fwd-start:{state}")
}

/// The configured app a URL belongs to (scheme, host and the longest path prefix that covers it).
fn app_of<'a>(apps: &'a [App], https: bool, host: &str, path: &str) -> Option<&'a App> {
    let host = host.to_ascii_lowercase();
    apps.iter().filter(|a| a.https == https && a.host == host && a.covers(path)).max_by_key(|a| a.prefix.len())
}

/// The app of an absolute URL (`rd`), with the URL re-serialized.
fn app_of_url<'a>(apps: &'a [App], rd: &str) -> Option<(&'a App, String)> {
    let url = url::Url::parse(rd).ok()?;
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    let host = origin.split_once("://")?.1;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let app = app_of(apps, https, host, url.path())?;
    Some((app, url.to_string()))
}

/// The app's cookie from the request, by the name its scheme gives it.
fn app_cookie(req: &HttpRequest, app: &App) -> Option<String> {
    crate::web::http::cookie(req, if app.https { HOST_COOKIE } else { PLAIN_COOKIE })
}

fn cookie_for(app: &App, value: String, max_age_secs: Option<i64>) -> actix_web::cookie::Cookie<'static> {
    named_cookie(app, if app.https { HOST_COOKIE } else { PLAIN_COOKIE }, value, max_age_secs)
}

fn login_cookie_name(app: &App) -> &'static str {
    if app.https { LOGIN_COOKIE } else { PLAIN_LOGIN_COOKIE }
}

fn named_cookie(
    app: &App,
    name: &'static str,
    value: String,
    max_age: Option<i64>,
) -> actix_web::cookie::Cookie<'static> {
    let mut c = crate::web::http::host_cookie(name, value, max_age);
    c.set_secure(app.https);
    c
}

/// The host the browser asked for, as the proxy says it (`X-Forwarded-Host`) or sent it.
fn request_host(req: &HttpRequest) -> &str {
    header(req, "x-forwarded-host").or_else(|| header(req, "host")).unwrap_or_default()
}

/// A header of the request as text.
fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::config::AppConfig;
    use super::*;

    fn apps() -> Vec<App> {
        ["https://lab.chu.example", "https://intranet.chu.example/rh", "http://127.0.0.1:8080/"]
            .into_iter()
            .map(|url| App::parse(&AppConfig { url: url.into(), client_id: "c".into() }).expect("valid"))
            .collect()
    }

    proptest! {
        /// No open redirect: whatever `rd` a browser brings, `start` goes back only to a URL on a
        /// configured app's origin, under its path prefix.
        #[test]
        fn rd_leads_only_to_a_configured_app(rd in "(https?://)?[a-z0-9.:@/\\?#%-]{0,40}", pick in 0usize..3) {
            let apps = apps();
            let candidates = [rd.clone(), format!("{}{rd}", apps[pick].origin), format!("{}/{rd}", apps[pick].origin)];
            for rd in candidates {
                if let Some((app, url)) = app_of_url(&apps, &rd) {
                    let parsed = url::Url::parse(&url).expect("a URL");
                    prop_assert_eq!(parsed.origin().ascii_serialization(), app.origin.clone());
                    prop_assert!(app.covers(parsed.path()), "{} not under {}", url, app.prefix);
                    prop_assert!(parsed.username().is_empty() && parsed.password().is_none());
                }
            }
        }
    }

    #[test]
    fn the_longest_prefix_of_the_host_decides() {
        let mut apps = apps();
        apps.push(
            App::parse(&AppConfig { url: "https://intranet.chu.example".into(), client_id: "root".into() })
                .expect("valid"),
        );
        let of = |path| app_of(&apps, true, "INTRANET.chu.example", path).map(|a| a.client_id.as_str());
        assert_eq!(of("/rh/paie"), Some("c"));
        assert_eq!(of("/rhx"), Some("root"));
        assert!(app_of(&apps, false, "lab.chu.example", "/").is_none(), "the scheme is part of the app");
    }
}
