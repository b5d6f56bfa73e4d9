//! The check the proxy makes before each request to a protected app: the app's cookie names a
//! live Vigie session that the app's policy lets in → 200 with the identity headers; no such
//! session, or one the policy would let in after a stronger login → the login (nginx: 401 with
//! `Location`, which `error_page 401 =302 $vigie_login` follows; Traefik: 302 itself); a session
//! the policy refuses whatever the login → 403. A session whose login no longer stands (its
//! sponsorship, card or key withdrawn, its account gone) opens no app, as `/authorize` gives it no
//! code.
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use super::{App, Handle, app_cookie, app_of, handle_key, header};
use crate::config::Config;
use crate::session::Session;
use crate::state::{Audit, OidcState, PolicyGate, Ports, parts};
use crate::web::http::Caller;

parts! {
    /// What a check reads: the apps (settings), the app's client, the session and the policy.
    pub struct Check {
        config: Config,
        oidc: OidcState,
        ports: Ports,
        policy: PolicyGate,
        audit: Audit,
    }
}

/// Which proxy asks: they differ only in how they send the browser to the login.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proxy {
    /// nginx `auth_request` takes 2xx, 401 and 403 only: the login URL goes in `Location` of a
    /// 401, which the proxy's `error_page 401 =302 $vigie_login` turns into the redirect.
    Nginx,
    /// Traefik `ForwardAuth` passes any non-2xx answer to the browser as is: a 302 redirects.
    Traefik,
}

pub async fn nginx(req: HttpRequest, check: Check) -> HttpResponse {
    run(&req, &check, Proxy::Nginx).await
}

pub async fn traefik(req: HttpRequest, check: Check) -> HttpResponse {
    run(&req, &check, Proxy::Traefik).await
}

/// What the proxy says of the original request (`X-Forwarded-Proto/Host/Uri`).
struct Original<'a> {
    https: bool,
    host: &'a str,
    uri: &'a str,
}

impl<'a> Original<'a> {
    fn of(req: &'a HttpRequest) -> Option<Self> {
        let https = match header(req, "x-forwarded-proto")? {
            p if p.eq_ignore_ascii_case("https") => true,
            p if p.eq_ignore_ascii_case("http") => false,
            _ => return None,
        };
        let host = header(req, "x-forwarded-host")?;
        let uri = header(req, "x-forwarded-uri").unwrap_or("/");
        uri.starts_with('/').then_some(Original { https, host, uri })
    }

    fn url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.host, self.uri)
    }

    fn path(&self) -> &str {
        self.uri.split(['?', '#']).next().unwrap_or("/")
    }
}

async fn run(req: &HttpRequest, check: &Check, proxy: Proxy) -> HttpResponse {
    let Check { config, oidc, ports, policy, audit } = check;
    let Some(original) = Original::of(req) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the proxy must send X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri: see docs/forward-auth.md",
        );
    };
    let Some(app) = app_of(config.forward_auth.apps(), original.https, original.host, original.path()) else {
        tracing::warn!(
            host = original.host,
            "forward-auth check for a host and path no `forward_auth.apps` entry names"
        );
        return plain(StatusCode::FORBIDDEN, "this address is not an application protected by Vigie");
    };
    let Some(client) = oidc.clients.get(&app.client_id) else {
        return plain(StatusCode::FORBIDDEN, "this application's client is not registered");
    };
    let login = || to_login(app, proxy, &original);
    // The same cookie's answer of the last second, unless access ended here since (decisions.rs).
    let decisions = super::decisions::global();
    let key = app_cookie(req, app).map(|c| handle_key(&c));
    if let Some(k) = &key
        && let Some(headers) = decisions.get(k, &app.client_id, policy.principals.generation())
    {
        return allowed(&headers);
    }
    let since = decisions.since(policy.principals.generation());
    let session = match live_session(config, ports, key, app).await {
        Ok(Some(s)) => s,
        Ok(None) => return login(),
        Err(e) => {
            tracing::error!(error = %e, "forward-auth check: the store failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Vigie cannot check the session now; retry in a moment");
        }
    };
    let (handle_key, handle, session) = session;
    let caller = Caller::of(req, &config.server);
    let auth = &session.authentication;
    // The session answers only while what it was opened with stands, as `/authorize` asks before
    // SSO: a sponsorship's temporary credential that ended, a card or key withdrawn, an account
    // disabled or an agent gone close the app at its next request, not when the session ends.
    match standing(ports, policy, auth).await {
        Ok(None) => {}
        Ok(Some(ended)) => {
            end_access(ports, audit, &caller, client, &handle_key, &session, &ended).await;
            return login();
        }
        Err(e) => {
            tracing::error!(error = %e, "forward-auth check: the directory failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Vigie cannot check the session now; retry in a moment");
        }
    }
    let principal = match crate::policy::principal_of(policy, ports, &auth.identity_id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "forward-auth check: the directory failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Vigie cannot check the session now; retry in a moment");
        }
    };
    // The same question as `/authorize` asks of an SSO session: the app's client, its policy,
    // its `sensitive` flag and minimum level.
    let decision = crate::policy::decide_login(policy, &caller, &principal, client, auth, false);
    if !decision.allowed {
        let why = if decision.step_up.is_empty() { "" } else { " without a stronger login" };
        let reason = format!("forward-auth: the policy does not let this session into the app{why}");
        audit.record(refused(&caller, client, &session, reason));
        // A stronger login would do: `/authorize` offers it (step-up) on the way back.
        return if decision.step_up.is_empty() {
            plain(StatusCode::FORBIDDEN, "the establishment's policy does not allow this user here")
        } else {
            login()
        };
    }
    let identity = match policy.identities.get(ports.directory.as_ref(), &auth.identity_id).await {
        Ok(Some(i)) => i,
        Ok(None) => return login(),
        Err(e) => {
            tracing::error!(error = %e, "forward-auth check: the directory failed");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Vigie cannot check the session now; retry in a moment");
        }
    };
    let roles = principal.roles.join(",");
    let idnat = identity.idnat.as_ref().map(|i| i.as_str()).unwrap_or_default();
    let headers = [
        ("X-Vigie-User", handle.user.as_str()),
        ("X-Vigie-Matricule", identity.matricule.as_str()),
        ("X-Vigie-IdNat", idnat),
        ("X-Vigie-Roles", roles.as_str()),
        ("X-Vigie-Level", auth.level.acr()),
    ];
    // An empty or non-ASCII value is left out: the proxy then sends none (and strips the
    // client's), rather than a value the app might misread.
    let headers: super::decisions::Headers = std::sync::Arc::new(
        headers
            .into_iter()
            .filter(|(_, v)| !v.is_empty() && v.is_ascii() && !v.chars().any(char::is_control))
            .map(|(n, v)| (n, v.to_owned()))
            .collect(),
    );
    // A sponsorship's credential ends at a time only the directory says: such a session is
    // decided at every check.
    if auth.mie != vigie_core::Mie::Sponsorship {
        let left = Duration::from_secs((session.expires_at - crate::now()).max(0) as u64);
        decisions.put(&handle_key, &app.client_id, headers.clone(), since, policy.principals.generation(), left);
    }
    allowed(&headers)
}

/// 200 with the identity headers, for the proxy to pass on to the app.
fn allowed(headers: &[(&'static str, String)]) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    for (name, value) in headers {
        resp.insert_header((*name, value.as_str()));
    }
    resp.finish()
}

/// The session the app's cookie names, if it is alive and was set on this app's host; pushes the
/// idle deadline back at most once a minute, as `session::current` does.
async fn live_session(
    config: &Config,
    ports: &Ports,
    key: Option<String>,
    app: &App,
) -> Result<Option<(String, Handle, Session)>, vigie_core::store::StoreError> {
    let Some(key) = key else { return Ok(None) };
    let Some(handle) = ports.store.get_json::<Handle>(&key).await? else { return Ok(None) };
    if handle.origin != app.origin {
        return Ok(None);
    }
    let Some(mut s) = ports.store.get_json::<Session>(&handle.session_key).await? else { return Ok(None) };
    let now = crate::now();
    if s.sid != handle.sid || s.expires_at <= now {
        return Ok(None);
    }
    if now - s.touched_at >= 60 {
        s.touched_at = now;
        let idle = (s.expires_at - now).min(config.session.idle_timeout_secs as i64).max(1) as u64;
        ports.store.put_json(&handle.session_key, &s, Duration::from_secs(idle)).await?;
    }
    Ok(Some((key, handle, s)))
}

/// Why a session may no longer open apps.
struct Ended {
    reason: String,
    /// The account itself no longer stands (not only the login's card, key or sponsorship): the
    /// Vigie session ends too, as `/authorize` ends it.
    account: bool,
}

/// Whether the session's login still stands, read now from the directory: the MIE instance of
/// the login (`oidc::token::withdrawn_mie`), then the account (`oidc::token::account_standing`).
async fn standing(
    ports: &Ports,
    policy: &PolicyGate,
    auth: &vigie_core::Authentication,
) -> Result<Option<Ended>, String> {
    if let Some(reason) = crate::oidc::token::withdrawn_mie(ports, auth).await.map_err(|e| e.description)? {
        return Ok(Some(Ended { reason, account: false }));
    }
    let account = policy.standings.of(ports, &auth.identity_id).await?;
    Ok(account.map(|reason| Ended { reason, account: true }))
}

/// Ends the app's access of a session whose login no longer stands: the handle goes (the next
/// check of its cookie is one store read), the Vigie session too when the account is gone, and
/// the refusal is audited once. A store failure here is logged: the next check refuses again.
async fn end_access(
    ports: &Ports,
    audit: &crate::state::Audit,
    caller: &Caller,
    client: &crate::state::Client,
    handle_key: &str,
    session: &Session,
    ended: &Ended,
) {
    super::decisions::global().forget(handle_key);
    let mut done = ports.store.delete(handle_key).await;
    if ended.account && done.is_ok() {
        done = crate::session::end(ports.store.as_ref(), &session.sid).await;
    }
    if let Err(e) = done {
        tracing::warn!(error = %e, sid = %session.sid, "forward-auth: an ended access could not be removed from the store");
    }
    audit.record(refused(caller, client, session, format!("forward-auth: {}: the app's access ends", ended.reason)));
}

/// The audit line of a check that does not let `session` into the app, and why.
fn refused(caller: &Caller, client: &crate::state::Client, session: &Session, reason: String) -> AuditEvent {
    let auth = &session.authentication;
    AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        subject: Some(auth.identity_id.clone()),
        client_id: Some(client.config.client_id.clone()),
        method: Some(auth.mie.as_str().to_owned()),
        sid: Some(session.sid.clone()),
        reason: Some(reason),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    }
}

/// Sends the browser to log in, back to the original URL afterwards: first to the app's own
/// `/.vigie/start` (which marks the browser on the app's host), then to Vigie.
fn to_login(app: &App, proxy: Proxy, original: &Original<'_>) -> HttpResponse {
    let rd: String = url::form_urlencoded::byte_serialize(original.url().as_bytes()).collect();
    let location = format!("{}{}?rd={rd}", app.origin, super::config::START_PATH);
    let status = match proxy {
        Proxy::Nginx => StatusCode::UNAUTHORIZED,
        Proxy::Traefik => StatusCode::FOUND,
    };
    HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; charset=utf-8")
        .body(text)
}
