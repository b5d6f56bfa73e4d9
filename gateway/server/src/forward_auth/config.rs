//! `[forward_auth]`: the applications a reverse proxy protects through Vigie, each by its URL
//! (scheme, host, path prefix) and the OIDC client whose policy, sensitivity and audit it takes.
use serde::{Deserialize, Serialize};

use crate::config::ClientConfig;

/// The path, on every protected host, that the proxy routes to Vigie's `/forward-auth/start`.
pub const START_PATH: &str = "/.vigie/start";
/// The path, on every protected host, that the proxy routes to Vigie's `/forward-auth/callback`.
pub const CALLBACK_PATH: &str = "/.vigie/callback";
/// The path, on every protected host, that the proxy routes to Vigie's `/forward-auth/logout`.
pub const LOGOUT_PATH: &str = "/.vigie/logout";

/// `[forward_auth]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthConfig {
    /// `[[forward_auth.apps]]`: the protected applications (none: the endpoints are not mounted).
    pub apps: Vec<AppConfig>,
    /// The apps parsed, once: every check reads them.
    #[serde(skip)]
    parsed: std::sync::OnceLock<Vec<App>>,
}

/// One protected application.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Where the browser reaches it: `https://lab.chu.example` or `https://intranet.chu.example/rh`
    /// (a path prefix). `http` only on a loopback address (the app's cookie would travel in clear).
    pub url: String,
    /// The OIDC client it is, for Vigie: its `policy`, `sensitive` flag, minimum level and audit.
    /// The client registers `<url's origin>/.vigie/callback` among its `redirect_uris`.
    pub client_id: String,
}

/// An application's URL, parsed once.
#[derive(Clone, Debug)]
pub struct App {
    pub client_id: String,
    /// `https://host[:port]`, as browsers serialize an origin.
    pub origin: String,
    /// `host[:port]` as a proxy's `X-Forwarded-Host` carries it (lowercase).
    pub host: String,
    /// The path prefix, without a trailing `/` (`""` for the whole host).
    pub prefix: String,
    pub https: bool,
}

impl App {
    /// The application's URL as configured, checked: `None` with the reason otherwise.
    pub fn parse(config: &AppConfig) -> Result<App, String> {
        let url = url::Url::parse(&config.url).map_err(|e| format!("not a URL ({e})"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" if crate::config::check::is_loopback(&url) => false,
            "http" => {
                return Err("`http` is for a loopback address only: the app's cookie would travel in clear".into());
            }
            other => return Err(format!("expected an https URL, found the scheme {other:?}")),
        };
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err("expected a URL with no query, fragment or user".into());
        }
        let origin = url.origin().ascii_serialization();
        let host = origin.split_once("://").map(|(_, h)| h.to_owned()).unwrap_or_default();
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(App { client_id: config.client_id.clone(), origin, host, prefix, https })
    }

    /// The redirect URI the app's client registers.
    pub fn callback(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.origin)
    }

    /// Whether a request for `path` on this app's host is the app's.
    pub fn covers(&self, path: &str) -> bool {
        self.prefix.is_empty()
            || path.strip_prefix(&self.prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }
}

impl ForwardAuthConfig {
    pub(crate) fn validate(&self, clients: &[ClientConfig], err: &mut dyn FnMut(&str, String)) {
        for (i, app) in self.apps.iter().enumerate() {
            let key = format!("forward_auth.apps[{i}]");
            let parsed = match App::parse(app) {
                Ok(a) => a,
                Err(e) => {
                    err(&format!("{key}.url"), e);
                    continue;
                }
            };
            match clients.iter().find(|c| c.client_id == app.client_id) {
                None => err(&format!("{key}.client_id"), format!("no client {:?} in `clients`", app.client_id)),
                Some(c) if !c.redirect_uris.contains(&parsed.callback()) => err(
                    &format!("{key}.client_id"),
                    format!(
                        "the client {:?} must list {:?} in its `redirect_uris` (the proxy routes it to Vigie)",
                        app.client_id,
                        parsed.callback()
                    ),
                ),
                Some(_) => {}
            }
            let same = self.apps[..i]
                .iter()
                .filter_map(|a| App::parse(a).ok())
                .any(|a| a.origin == parsed.origin && a.prefix == parsed.prefix);
            if same {
                err(&format!("{key}.url"), format!("{:?} is already another app's URL", app.url));
            }
        }
    }

    /// The apps, parsed (the configuration was validated: none is dropped).
    pub fn apps(&self) -> &[App] {
        self.parsed.get_or_init(|| self.apps.iter().filter_map(|a| App::parse(a).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(url: &str) -> Result<App, String> {
        App::parse(&AppConfig { url: url.into(), client_id: "lab".into() })
    }

    #[test]
    fn an_app_url_is_https_or_loopback_http() {
        assert!(app("https://lab.chu.example").is_ok_and(|a| a.https && a.host == "lab.chu.example"));
        assert!(app("http://127.0.0.1:8080/").is_ok_and(|a| !a.https && a.host == "127.0.0.1:8080"));
        assert!(app("http://localhost:8080").is_ok());
        assert!(app("http://lab.chu.example").is_err());
        assert!(app("https://lab.chu.example/?x=1").is_err());
        assert!(app("ftp://lab.chu.example").is_err());
    }

    #[test]
    fn the_configuration_names_each_bad_app_and_what_to_do() {
        let client: ClientConfig = toml::from_str(
            r#"client_id = "lab"
               auth_method = "none"
               redirect_uris = ["https://lab.chu.example/callback"]"#,
        )
        .expect("a client");
        let apps = |list: &[(&str, &str)]| ForwardAuthConfig {
            apps: list.iter().map(|(url, id)| AppConfig { url: (*url).into(), client_id: (*id).into() }).collect(),
            ..Default::default()
        };
        let problems = |config: ForwardAuthConfig, clients: &[ClientConfig]| {
            let mut found = Vec::new();
            config.validate(clients, &mut |key, msg| found.push(format!("{key}: {msg}")));
            found
        };
        let found = problems(apps(&[("https://lab.chu.example", "lab")]), std::slice::from_ref(&client));
        assert_eq!(
            found,
            [
                r#"forward_auth.apps[0].client_id: the client "lab" must list "https://lab.chu.example/.vigie/callback" in its `redirect_uris` (the proxy routes it to Vigie)"#
            ]
        );
        let found = problems(apps(&[("http://lab.chu.example", "lab"), ("https://x.example", "nobody")]), &[client]);
        assert!(found[0].starts_with("forward_auth.apps[0].url: `http` is for a loopback address only"), "{found:?}");
        assert_eq!(found[1], r#"forward_auth.apps[1].client_id: no client "nobody" in `clients`"#);
        let ok: ClientConfig = toml::from_str(
            r#"client_id = "lab"
               auth_method = "none"
               redirect_uris = ["https://lab.chu.example/.vigie/callback"]"#,
        )
        .expect("a client");
        assert!(problems(apps(&[("https://lab.chu.example/", "lab")]), std::slice::from_ref(&ok)).is_empty());
        let twice = problems(apps(&[("https://lab.chu.example", "lab"), ("https://lab.chu.example/", "lab")]), &[ok]);
        assert_eq!(twice, [r#"forward_auth.apps[1].url: "https://lab.chu.example/" is already another app's URL"#]);
    }

    #[test]
    fn a_prefix_covers_its_own_paths_only() {
        let a = app("https://intranet.chu.example/rh/").expect("valid");
        assert!(a.covers("/rh") && a.covers("/rh/") && a.covers("/rh/paie?x=1") && a.covers("/rh?x"));
        assert!(!a.covers("/rhx") && !a.covers("/") && !a.covers("/labo/rh"));
        assert!(app("https://lab.chu.example").expect("valid").covers("/anything"));
    }
}
