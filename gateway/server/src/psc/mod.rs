//! Pro Santé Connect as an identity provider of Vigie (issue 5, DESIGN.md flow 3): the `[psc]`
//! configuration, the adapter built from it, its health task, and the end of PSC's session at logout.
//! The login itself is `login/psc.rs`.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::Mie;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use crate::app::{AppState, State};
use crate::http::Caller;
use crate::login::pages;

/// PSC's issuer in production (reference/psc.md §1).
pub const PROD_ISSUER: &str = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet";

/// The `[psc]` section.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PscConfig {
    /// Offer login through Pro Santé Connect (e-CPS, or a CPS at PSC). Default `false`.
    pub enabled: bool,
    /// PSC's issuer (compared exactly with the ID token's `iss`).
    pub issuer: String,
    /// Where PSC's metadata is; default `<issuer>/.well-known/wallet-openid-configuration`.
    pub discovery_url: Option<String>,
    /// The client id ANS registered for this establishment.
    pub client_id: String,
    /// Client authentication at PSC's token endpoint.
    pub client_auth: PscClientAuth,
    /// The client secret (`client_secret_basic` / `_post`). Prefer `client_secret_file`, or the
    /// environment (`VIGIE_PSC__CLIENT_SECRET`); never logged.
    pub client_secret: Option<crate::secrets::Secret>,
    /// A file holding the client secret (a mounted Kubernetes secret).
    pub client_secret_file: Option<PathBuf>,
    /// PEM private key for `private_key_jwt` (its public key registered with ANS).
    pub private_key_file: Option<PathBuf>,
    /// `kid` of that key, if ANS's registration names one.
    pub private_key_kid: Option<String>,
    /// Signature algorithm of the client assertion.
    pub private_key_alg: String,
    /// PEM certificate (chain) and key for `tls_client_auth` (mutual TLS to the token endpoint).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The redirect URI registered with ANS; default `<vigie issuer>/login/psc/callback`.
    pub redirect_uri: Option<String>,
    /// Where PSC sends the browser back after its logout; default `<vigie issuer>/logout/psc`.
    pub post_logout_redirect_uri: Option<String>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// `acr_values` sent to PSC (`eidas1`); empty: none.
    pub acr_values: Option<String>,
    /// `acr` values accepted in PSC's ID token (an absent `acr` is accepted, as ANS's own
    /// Keycloak extension does).
    pub accepted_acr: Vec<String>,
    /// ID token signature algorithms accepted (never `none`).
    pub id_token_algs: Vec<String>,
    /// Userinfo format accepted: `any` (JSON or signed JWT), `json`, `jwt`.
    pub userinfo: String,
    /// Extra CA certificates (PEM) to trust for PSC's endpoints (a test platform's CA).
    pub ca_file: Option<PathBuf>,
    /// Timeout of each request to PSC, in milliseconds.
    pub timeout_ms: u64,
    /// Clock skew tolerated on `exp` / `iat`, in seconds.
    pub clock_skew_secs: i64,
    /// Allow plain `http://` to PSC on a loopback address (tests and the demo stand-in only).
    pub allow_http: bool,
    /// PSC `amr` value → Vigie MIE (`ecps` or `cps_via_psc`). PSC's values are not public
    /// (reference/psc.md §2): any value mapped to `cps_via_psc` makes the login a CPS through PSC;
    /// otherwise it is an e-CPS login.
    pub amr_map: BTreeMap<String, String>,
    /// Create the identity of an unknown professional at their first PSC login, only when HR
    /// announced their idNat (`vigie users announce`). Default `false`.
    pub jit: bool,
    /// A logout at Vigie of a session that came from PSC also ends PSC's session (the browser
    /// goes through PSC's end_session endpoint). Default `true`.
    pub end_session: bool,
    /// Seconds between two health probes of PSC (metadata + JWKS).
    pub probe_interval_secs: u64,
    /// How long a login sent to PSC may take before its `state` lapses, in seconds.
    pub state_ttl_secs: u64,
}

impl std::fmt::Debug for PscConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PscConfig")
            .field("enabled", &self.enabled)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

/// How Vigie authenticates to PSC's token endpoint (reference/psc.md §1: PSC accepts all four).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PscClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    TlsClientAuth,
}

/// PSC `amr` values that name a smart card (RFC 8176 §2 `sc`, and the likely spellings).
const CARD_AMR: [&str; 4] = ["sc", "card", "smartcard", "cps"];

impl Default for PscConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: PROD_ISSUER.into(),
            discovery_url: None,
            client_id: String::new(),
            client_auth: PscClientAuth::ClientSecretBasic,
            client_secret: None,
            client_secret_file: None,
            private_key_file: None,
            private_key_kid: None,
            private_key_alg: "RS256".into(),
            tls_cert_file: None,
            tls_key_file: None,
            redirect_uri: None,
            post_logout_redirect_uri: None,
            scopes: vec!["openid".into(), "scope_all".into()],
            acr_values: Some("eidas1".into()),
            accepted_acr: vec!["eidas1".into()],
            id_token_algs: vec!["RS256".into()],
            userinfo: "any".into(),
            ca_file: None,
            timeout_ms: 5000,
            clock_skew_secs: 60,
            allow_http: false,
            amr_map: CARD_AMR.iter().map(|a| (a.to_string(), Mie::CpsViaPsc.as_str().to_owned())).collect(),
            jit: false,
            end_session: true,
            probe_interval_secs: 30,
            state_ttl_secs: 600,
        }
    }
}

/// Signature algorithms an ID token from PSC may use (RFC 7518 §3.1), `none` excluded.
const JWS_ALGS: [&str; 10] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

impl PscConfig {
    /// Checks the section; one call of `err` per bad key (`psc.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        let url = |key: &str, v: &str, err: &mut dyn FnMut(&str, String)| match url::Url::parse(v) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && self.allow_http && crate::config::is_loopback(&u) => {}
            Ok(u) if u.scheme() == "http" => err(
                key,
                format!("{v:?}: PSC is reached over https (plain http only on loopback with `psc.allow_http`)"),
            ),
            _ => err(key, format!("{v:?} is not an absolute https URL")),
        };
        if self.enabled || self.issuer != PROD_ISSUER {
            url("psc.issuer", &self.issuer, err);
        }
        if let Some(d) = &self.discovery_url {
            url("psc.discovery_url", d, err);
        }
        if self.enabled && self.client_id.trim().is_empty() {
            err("psc.client_id", "required when `psc.enabled` (the client id ANS registered)".into());
        }
        let file = |key: &str, p: &Option<PathBuf>, needed: bool, err: &mut dyn FnMut(&str, String)| match p {
            Some(p) if !p.is_file() => err(key, format!("{} is not a readable file", p.display())),
            None if needed => err(key, format!("required for `psc.client_auth = {:?}`", self.client_auth)),
            _ => {}
        };
        match self.client_auth {
            PscClientAuth::ClientSecretBasic | PscClientAuth::ClientSecretPost => {
                if self.client_secret.is_some() && self.client_secret_file.is_some() {
                    err("psc.client_secret", "set `client_secret` or `client_secret_file`, not both".into());
                }
                if self.client_secret.is_none() {
                    file("psc.client_secret_file", &self.client_secret_file, self.enabled, err);
                }
                if self.client_secret.as_ref().is_some_and(|s| s.0.is_empty()) {
                    err("psc.client_secret", "is empty".into());
                }
            }
            PscClientAuth::PrivateKeyJwt => {
                file("psc.private_key_file", &self.private_key_file, self.enabled, err);
                if !JWS_ALGS.contains(&self.private_key_alg.as_str()) {
                    err("psc.private_key_alg", format!("expected one of {}", JWS_ALGS.join(", ")));
                }
            }
            PscClientAuth::TlsClientAuth => {
                file("psc.tls_cert_file", &self.tls_cert_file, self.enabled, err);
                file("psc.tls_key_file", &self.tls_key_file, self.enabled, err);
            }
        }
        for (key, uri) in
            [("psc.redirect_uri", &self.redirect_uri), ("psc.post_logout_redirect_uri", &self.post_logout_redirect_uri)]
        {
            if let Some(u) = uri
                && let Err(m) = crate::config::check_redirect_uri(u)
            {
                err(key, m);
            }
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            err("psc.scopes", "must include \"openid\"".into());
        }
        if self.accepted_acr.iter().any(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic())) {
            err("psc.accepted_acr", "expected non-empty ASCII tokens (e.g. \"eidas1\")".into());
        }
        if self.id_token_algs.is_empty() {
            err("psc.id_token_algs", "at least one algorithm is required".into());
        }
        for (i, a) in self.id_token_algs.iter().enumerate() {
            if !JWS_ALGS.contains(&a.as_str()) {
                err(
                    &format!("psc.id_token_algs[{i}]"),
                    format!("{a:?} is not accepted; expected one of {} (never `none`)", JWS_ALGS.join(", ")),
                );
            }
        }
        if !["any", "json", "jwt"].contains(&self.userinfo.as_str()) {
            err("psc.userinfo", format!("{:?}: expected \"any\", \"json\" or \"jwt\"", self.userinfo));
        }
        file("psc.ca_file", &self.ca_file, false, err);
        for (amr, mie) in &self.amr_map {
            if mie != Mie::Ecps.as_str() && mie != Mie::CpsViaPsc.as_str() {
                err(&format!("psc.amr_map.{amr}"), format!("{mie:?}: expected \"ecps\" or \"cps_via_psc\""));
            }
        }
        for (key, v) in [
            ("psc.timeout_ms", self.timeout_ms),
            ("psc.probe_interval_secs", self.probe_interval_secs),
            ("psc.state_ttl_secs", self.state_ttl_secs),
        ] {
            if v == 0 {
                err(key, "expected a positive integer".into());
            }
        }
        if self.state_ttl_secs > 3600 {
            err("psc.state_ttl_secs", "expected at most 3600".into());
        }
        if !(0..=600).contains(&self.clock_skew_secs) {
            err("psc.clock_skew_secs", "expected 0 to 600".into());
        }
    }

    /// The MIE a PSC login is, from the `amr` PSC sent (see `amr_map`).
    pub fn mie_for(&self, amr: &[String]) -> Mie {
        let card = amr.iter().any(|a| self.amr_map.get(a).is_some_and(|m| m == Mie::CpsViaPsc.as_str()));
        if card { Mie::CpsViaPsc } else { Mie::Ecps }
    }
}

/// The last health probe of PSC.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Probe {
    /// `None` before the first probe.
    pub up: Option<bool>,
    /// When (Unix seconds).
    pub at: Option<i64>,
    /// How long it took, in milliseconds.
    pub millis: Option<u64>,
    /// The adapter's error code and message, when down.
    pub error: Option<String>,
}

/// PSC, ready to use: the adapter and what the gateway decides around it.
pub struct PscRuntime {
    pub client: vigie_psc::Psc,
    pub config: PscConfig,
    pub post_logout_redirect_uri: String,
    /// HR's announcements, for just-in-time creation (the directory's database).
    pub announced: Arc<vigie_directory_sql::SqlDirectory>,
    probe: Mutex<Probe>,
}

fn read(path: &std::path::Path, key: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}: check `psc.{key}`", path.display()))
}

/// The adapter's settings from the configuration (reads the key, certificate and secret files).
pub fn settings(config: &crate::config::Config) -> anyhow::Result<vigie_psc::PscSettings> {
    use vigie_psc::{ClientAuth, PscSettings, UserinfoFormat};
    let p = &config.psc;
    let secret = || -> anyhow::Result<String> {
        match (&p.client_secret, &p.client_secret_file) {
            (Some(s), _) => Ok(s.0.clone()),
            (None, Some(f)) => Ok(read(f, "client_secret_file")?.trim_end_matches(['\r', '\n']).to_owned()),
            (None, None) => anyhow::bail!("`psc.client_secret_file` (or `psc.client_secret`) is required"),
        }
    };
    let need = |p: &Option<PathBuf>, key: &str| -> anyhow::Result<String> {
        read(p.as_ref().with_context(|| format!("`psc.{key}` is required"))?, key)
    };
    let client_auth = match p.client_auth {
        PscClientAuth::ClientSecretBasic => ClientAuth::SecretBasic(secret()?),
        PscClientAuth::ClientSecretPost => ClientAuth::SecretPost(secret()?),
        PscClientAuth::PrivateKeyJwt => ClientAuth::PrivateKeyJwt {
            key_pem: need(&p.private_key_file, "private_key_file")?,
            kid: p.private_key_kid.clone(),
            alg: p.private_key_alg.clone(),
        },
        PscClientAuth::TlsClientAuth => ClientAuth::Tls {
            cert_pem: need(&p.tls_cert_file, "tls_cert_file")?,
            key_pem: need(&p.tls_key_file, "tls_key_file")?,
        },
    };
    let mut s = PscSettings::new(&p.issuer, &p.client_id, client_auth, &redirect_uri(config));
    s.discovery_url = p.discovery_url.clone();
    s.scopes = p.scopes.clone();
    s.acr_values = p.acr_values.clone().filter(|a| !a.is_empty());
    s.accepted_acr = p.accepted_acr.clone();
    s.id_token_algs = p.id_token_algs.clone();
    s.userinfo = match p.userinfo.as_str() {
        "json" => UserinfoFormat::Json,
        "jwt" => UserinfoFormat::Jwt,
        _ => UserinfoFormat::Any,
    };
    s.extra_ca_pem = p.ca_file.as_deref().map(|f| read(f, "ca_file")).transpose()?;
    s.timeout_ms = p.timeout_ms;
    s.clock_skew_secs = p.clock_skew_secs;
    s.allow_http = p.allow_http;
    Ok(s)
}

/// The redirect URI registered with ANS.
pub fn redirect_uri(config: &crate::config::Config) -> String {
    config.psc.redirect_uri.clone().unwrap_or_else(|| format!("{}/login/psc/callback", config.issuer))
}

/// PSC, when `psc.enabled`; no I/O (metadata is fetched by the first login or probe).
pub fn build(
    config: &crate::config::Config,
    directory: Arc<vigie_directory_sql::SqlDirectory>,
) -> anyhow::Result<Option<Arc<PscRuntime>>> {
    if !config.psc.enabled {
        return Ok(None);
    }
    let client =
        vigie_psc::Psc::new(settings(config)?).map_err(|e| anyhow::anyhow!("Pro Santé Connect: {e}: check `[psc]`"))?;
    Ok(Some(Arc::new(PscRuntime {
        client,
        post_logout_redirect_uri: config
            .psc
            .post_logout_redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{}/logout/psc", config.issuer)),
        config: config.psc.clone(),
        announced: directory,
        probe: Mutex::new(Probe::default()),
    })))
}

impl PscRuntime {
    /// The last probe.
    pub fn last_probe(&self) -> Probe {
        self.probe.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Probes PSC once (metadata and JWKS), records the result and the gauge
    /// `vigie_upstream_up{upstream="psc"}`.
    pub async fn probe(&self) -> Probe {
        let started = std::time::Instant::now();
        // The adapter's own timeouts bound each request; this bounds the whole probe.
        let limit = Duration::from_millis(self.config.timeout_ms.saturating_mul(3));
        let result = match tokio::time::timeout(limit, self.client.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{}: {e}", e.code())),
            Err(_) => Err(format!("unreachable: no answer within {} ms", limit.as_millis())),
        };
        let probe = Probe {
            up: Some(result.is_ok()),
            at: Some(crate::now()),
            millis: Some(started.elapsed().as_millis() as u64),
            error: result.err(),
        };
        metrics::gauge!("vigie_upstream_up", "upstream" => "psc").set(if probe.up == Some(true) { 1.0 } else { 0.0 });
        if let Ok(mut p) = self.probe.lock() {
            if p.up != probe.up {
                match &probe.error {
                    None => tracing::info!(issuer = %self.config.issuer, "Pro Santé Connect is reachable"),
                    Some(e) => {
                        tracing::warn!(issuer = %self.config.issuer, error = %e, "Pro Santé Connect is unreachable: e-CPS is not offered")
                    }
                }
            }
            *p = probe.clone();
        }
        probe
    }

    /// `/readyz` `checks.psc`: informational (local MIE work without PSC). With `detailed` (the
    /// ops listener), the issuer, the last probe and the adapter's record, whose errors name
    /// URLs; else the status and, when down, a generic reason (the error is logged when the
    /// probe's answer changes).
    pub fn readiness(&self, detailed: bool) -> serde_json::Value {
        let p = self.last_probe();
        let status = match p.up {
            Some(true) => "up",
            Some(false) => "down",
            None => "unknown",
        };
        if !detailed {
            let mut out = json!({ "status": status, "informational": true });
            if p.up == Some(false) {
                out["detail"] = json!("Pro Santé Connect did not answer the last probe: see the gateway's log");
            }
            return out;
        }
        json!({
            "status": status,
            "informational": true,
            "issuer": self.config.issuer,
            "last_probe": p,
            "adapter": serde_json::to_value(self.client.health()).unwrap_or_default(),
        })
    }
}

/// The routes of PSC login and logout.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/psc", web::get().to(crate::login::psc::begin))
        .route("/login/psc/callback", web::get().to(crate::login::psc::callback))
        .route("/logout/psc", web::get().to(logout_done));
}

/// A logout waiting for PSC's end_session to send the browser back.
#[derive(Serialize, Deserialize)]
struct PendingPscLogout {
    /// Where the browser goes next (the client's post-logout URI with its state), if anywhere.
    redirect: Option<String>,
}

fn logout_key(state: &str) -> String {
    format!("psc-logout:{state}")
}

/// After Vigie ended a session that came from PSC: sends the browser through PSC's end_session
/// endpoint (OIDC RP-Initiated Logout §2, with PSC's ID token as `id_token_hint`), then back to
/// `/logout/psc`, which continues to `redirect`. `None` when PSC's session is not to be ended
/// (`psc.end_session = false`, PSC disabled or without an end_session endpoint).
pub async fn end_session_redirect(
    state: &AppState,
    req: &HttpRequest,
    psc_id_token: &str,
    redirect: Option<String>,
) -> Option<HttpResponse> {
    let psc = state.psc.as_ref().filter(|p| p.config.end_session)?;
    let key = crate::secrets::random_token(24);
    let url = psc.client.end_session_url(psc_id_token, Some(&psc.post_logout_redirect_uri), Some(&key))?;
    let ttl = Duration::from_secs(psc.config.state_ttl_secs);
    if let Err(e) = state.store.put_json(&logout_key(&key), &PendingPscLogout { redirect }, ttl).await {
        tracing::error!(error = %e, "the PSC logout could not be recorded; PSC's session is left as is");
        return None;
    }
    let caller = Caller::of(req, state);
    state.audit(AuditEvent {
        kind: Some(AuditKind::Logout),
        outcome: Some(Outcome::Success),
        method: Some("psc_end_session".into()),
        ip: Some(caller.ip),
        user_agent: caller.user_agent,
        request_id: Some(caller.request_id),
        reason: Some("the browser is sent to Pro Santé Connect's end_session endpoint".into()),
        ..Default::default()
    });
    metrics::counter!("vigie_psc_logout_total").increment(1);
    let mut resp = HttpResponse::SeeOther().insert_header((header::LOCATION, url)).finish();
    let _ = resp.add_cookie(&crate::session::clear_cookie());
    Some(resp)
}

#[derive(Deserialize)]
pub struct LogoutDone {
    state: Option<String>,
}

/// `GET /logout/psc?state=…`: PSC's logout is done; on to the client's post-logout URI, or the
/// "signed out" page.
pub async fn logout_done(req: HttpRequest, state: State, q: web::Query<LogoutDone>) -> HttpResponse {
    let pending = match q.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 64) {
        Some(s) => state.store.take_json::<PendingPscLogout>(&logout_key(s)).await,
        None => Ok(None),
    };
    match pending {
        Ok(Some(p)) => crate::oidc::logout::done(&req, p.redirect),
        // Unknown or used state: the session at Vigie already ended; nowhere else to go.
        Ok(None) => pages::logged_out(&req),
        Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The demo's `[psc]`: the stand-in started with `--demo` (conformance/psc-sandbox), plain HTTP
/// on loopback, its built-in client `vigie-demo`.
pub fn demo_config(listen_port: u16) -> PscConfig {
    PscConfig {
        enabled: true,
        issuer: DEMO_ISSUER.into(),
        client_id: "vigie-demo".into(),
        client_auth: PscClientAuth::ClientSecretBasic,
        // The stand-in's published demo secret: not a secret of anything real.
        client_secret: Some(crate::secrets::Secret("vigie-demo-psc-secret".into())),
        // What the stand-in's demo client registers (C1): the listener's address, by IP; the
        // callback then hops to the issuer's host, where the browser-binding cookie lives.
        redirect_uri: Some(format!("https://127.0.0.1:{listen_port}/login/psc/callback")),
        post_logout_redirect_uri: Some(format!("https://127.0.0.1:{listen_port}/logout/psc")),
        allow_http: true,
        ..Default::default()
    }
}

/// The issuer of the demo stand-in (`node conformance/psc-sandbox/server.mjs --demo`).
pub const DEMO_ISSUER: &str = "http://127.0.0.1:8900/auth/realms/esante-wallet";

/// `demo.json`'s `psc` object.
pub fn demo_json(config: &crate::config::Config) -> serde_json::Value {
    json!({
        "enabled": config.psc.enabled,
        "issuer": config.psc.issuer,
        "client_id": config.psc.client_id,
        "redirect_uri": redirect_uri(config),
        "start_stand_in": "cd conformance/psc-sandbox && npm ci && node server.mjs --demo",
        "professionals": [
            { "idnat": "810001234567", "name": "Dr Marie Durand", "username": "demo.durand" },
            { "idnat": "0751234567", "name": "Luc Petit", "username": "demo.petit" },
        ],
        "note": "without the stand-in running, the login page says e-CPS is unavailable",
    })
}

/// `vigie users announce|announced|withdraw`: HR's announcements of professionals (for `psc.jit`).
pub enum AnnounceCommand {
    Announce { idnat: String, family: String, given: String, unit: Option<String>, days: u32 },
    List,
    Withdraw { idnat: String },
}

/// Runs an announcement command on the deployment's directory, audited.
pub fn announce_cli(config: &crate::config::Config, command: AnnounceCommand) -> anyhow::Result<()> {
    use vigie_core::IdNat;
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?;
        let parse = |s: &str| IdNat::parse(s).map_err(|e| anyhow::anyhow!("{s:?} is not an idNat: {e}"));
        let (object, reason) = match command {
            AnnounceCommand::List => {
                let now = crate::now();
                for a in dir.announcements().await? {
                    let state = if a.expired_at(now) { "lapsed" } else { "open" };
                    println!("{}", serde_json::to_string(&json!({ "state": state, "announcement": a }))?);
                }
                return Ok(());
            }
            AnnounceCommand::Announce { idnat, family, given, unit, days } => {
                let idnat = parse(&idnat)?;
                let a = dir
                    .announce(&vigie_directory_sql::announced::NewAnnouncement {
                        idnat: &idnat,
                        family_name: &family,
                        given_name: &given,
                        unit: unit.as_deref(),
                        announced_by: &actor,
                        days,
                    })
                    .await?;
                println!("{} {} {} announced until {}", a.idnat, a.given_name, a.family_name, a.expires_at);
                if !config.psc.jit {
                    println!("note: `psc.jit` is off: the announcement is kept but creates nobody until it is on");
                }
                (format!("announcement:{}", a.idnat), format!("announced until {}", a.expires_at))
            }
            AnnounceCommand::Withdraw { idnat } => {
                let idnat = parse(&idnat)?;
                if !dir.withdraw_announcement(&idnat).await? {
                    anyhow::bail!("no announcement for {}", idnat.as_str());
                }
                println!("announcement of {} withdrawn", idnat.as_str());
                (format!("announcement:{}", idnat.as_str()), "withdrawn".to_owned())
            }
        };
        crate::cli::audit_now(
            config,
            AuditEvent {
                kind: Some(AuditKind::IdentityAnnounced),
                outcome: Some(Outcome::Success),
                actor: Some(actor.clone()),
                object: Some(object),
                reason: Some(reason),
                ..Default::default()
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_card_amr_values_make_a_cps_through_psc_and_anything_else_an_ecps() {
        let c = PscConfig::default();
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(c.mie_for(&v(&["sc", "pin", "mfa"])), Mie::CpsViaPsc);
        assert_eq!(c.mie_for(&v(&["mobile", "mfa"])), Mie::Ecps);
        assert_eq!(c.mie_for(&[]), Mie::Ecps);
        let mut c = c;
        c.amr_map.insert("mobile".into(), "cps_via_psc".into());
        c.amr_map.insert("sc".into(), "ecps".into());
        assert_eq!(c.mie_for(&v(&["mobile"])), Mie::CpsViaPsc, "the mapping is configurable");
        assert_eq!(c.mie_for(&v(&["sc", "pin"])), Mie::Ecps);
    }

    fn errors(c: &PscConfig) -> Vec<String> {
        let mut out = Vec::new();
        c.validate(&mut |k: &str, m: String| out.push(format!("`{k}`: {m}")));
        out
    }

    #[test]
    fn the_default_section_is_valid_and_disabled() {
        assert!(errors(&PscConfig::default()).is_empty(), "{:?}", errors(&PscConfig::default()));
        assert!(!PscConfig::default().enabled);
    }

    #[test]
    fn each_bad_key_is_named() {
        let c = PscConfig {
            enabled: true,
            issuer: "http://psc.example/auth/realms/esante-wallet".into(),
            client_id: String::new(),
            client_auth: PscClientAuth::PrivateKeyJwt,
            private_key_alg: "HS256".into(),
            id_token_algs: vec!["none".into()],
            userinfo: "xml".into(),
            amr_map: [("sc".to_string(), "cps".to_string())].into_iter().collect(),
            probe_interval_secs: 0,
            ..Default::default()
        };
        let e = errors(&c).join("\n");
        for key in [
            "psc.issuer",
            "psc.client_id",
            "psc.private_key_file",
            "psc.private_key_alg",
            "psc.id_token_algs[0]",
            "psc.userinfo",
            "psc.amr_map.sc",
            "psc.probe_interval_secs",
        ] {
            assert!(e.contains(&format!("`{key}`")), "{key} is named in:\n{e}");
        }
        let loopback = PscConfig {
            issuer: "http://127.0.0.1:8900/auth/realms/esante-wallet".into(),
            allow_http: true,
            ..Default::default()
        };
        assert!(errors(&loopback).is_empty(), "plain http on loopback with allow_http: {:?}", errors(&loopback));
    }

    #[test]
    fn the_secret_is_never_shown_by_debug() {
        let c = PscConfig { client_secret: Some(crate::secrets::Secret("s3cret-value".into())), ..Default::default() };
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    /// The default card values of docs/psc.md (`amr_map`: `sc`, `card`, `smartcard`, `cps`).
    const DOCUMENTED_CARD_AMR: [&str; 4] = ["sc", "card", "smartcard", "cps"];

    /// `amr` values PSC may send that say nothing of a card: RFC 8176 §2 values, PSC's guides'
    /// e-CPS-like ones, and near misses of the card values (case, spacing, longer words).
    fn not_card() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "pwd",
                "otp",
                "mfa",
                "pin",
                "hwk",
                "swk",
                "sms",
                "mobile",
                "okta_verify",
                "eidas1"
            ]),
            prop::sample::select(vec![
                "SC",
                "Sc",
                "sc ",
                " sc",
                "scard",
                "cards",
                "CPS",
                "cps1",
                "smart card",
                "card-x"
            ]),
        ]
        .prop_map(str::to_owned)
    }

    proptest! {
        /// A login is a card at PSC exactly when one of the documented card values is in the
        /// `amr`, wherever it stands and whatever comes with it.
        #[test]
        fn one_card_value_anywhere_makes_a_cps_through_psc(
            others in prop::collection::vec(not_card(), 0..6),
            card in prop::sample::select(&DOCUMENTED_CARD_AMR[..]),
            at in any::<prop::sample::Index>(),
        ) {
            let c = PscConfig::default();
            prop_assert_eq!(c.mie_for(&others), Mie::Ecps, "{:?}", others);
            let mut with_card = others.clone();
            with_card.insert(at.index(others.len() + 1), card.to_owned());
            prop_assert_eq!(c.mie_for(&with_card), Mie::CpsViaPsc, "{:?}", with_card);
        }
    }
}
