//! The authorization endpoint (RFC 6749 §3.1, §4.1.1; OIDC Core §3.1.2): code flow only.
//! An unknown client or a redirect URI that is not registered gets an error page, never a
//! redirect (RFC 6749 §4.1.2.1); every other error goes back to the client.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::AssuranceLevel;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::{StoreError, StoreExt};

use super::{AuthRequest, CodeGrant, ForeignAcr, ResponseMode, keys};
use crate::config::ClientConfig;
use crate::login::{self, LoginFlow};
use crate::secrets::{random_token, sha256_b64};
use crate::session::{self, Session};
use crate::state::{AppState, State};
use crate::web::http::{Caller, Params, esc, parse_params};
use crate::web::pages;

pub async fn get(req: HttpRequest, state: State) -> HttpResponse {
    let raw = req.query_string().to_owned();
    handle(req, state, raw.as_bytes()).await
}

/// OIDC Core §3.1.2.1: "Authorization Servers MUST support the use of the HTTP GET and POST
/// methods".
pub async fn post(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    handle(req, state, &body).await
}

/// An error returned to the client through its redirect URI (RFC 6749 §4.1.2.1).
pub struct Redirected {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

pub enum Invalid {
    /// Shown to the user: the client or redirect URI cannot be trusted.
    Page(String),
    Redirect(Redirected),
}

/// RFC 7636 §4.1/§4.2: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `acr` values of other schemes Vigie knows without configuration, with the level that meets
/// each. Pro Santé Connect asks for `eidas1` (eIDAS substantial; reference/psc.md §1: ANS's
/// requests send `acr_values=eidas1`). A FI tiers answers it with "2FA résistante au phishing"
/// (reference/psc.md §3, ANS's FI-tiers resources: "Définition attendue : 2FA résistante au
/// phishing"), and password + TOTP, a transition MIE of the RIE, stopped counting on 1 January
/// 2026 (seeds 004: "MIE de transition valable jusqu'au 01/01/2026"): so a card or a FIDO2 key.
pub const BUILT_IN_ACR_MAP: [(&str, AssuranceLevel); 1] = [("eidas1", AssuranceLevel::TwoFactorPhishingResistant)];

/// The level an `acr` value asks for: Vigie's own, else the client's `acr_values_map`, else
/// `login.acr_values_map`, else [`BUILT_IN_ACR_MAP`]; `None` for a value no one mapped (OIDC
/// Core §3.1.2.1: acr_values is a voluntary claim, such a value is ignored).
fn requested_level(state: &AppState, client: &ClientConfig, value: &str) -> Option<AssuranceLevel> {
    AssuranceLevel::from_acr(value).or_else(|| {
        let configured = client.acr_values_map.get(value).or_else(|| state.config.login.acr_values_map.get(value));
        match configured {
            Some(acr) => AssuranceLevel::from_acr(acr),
            None => BUILT_IN_ACR_MAP.iter().find(|(v, _)| *v == value).map(|(_, l)| *l),
        }
    })
}

/// Validates an authorization request, in the order that decides where errors go.
pub fn validate(params: Result<Params, String>, state: &AppState) -> Result<AuthRequest, Invalid> {
    let params = match params {
        Ok(p) => p,
        Err(e) => return Err(Invalid::Page(format!("invalid authorization request: {e}"))),
    };
    let client_id = params.get("client_id").ok_or_else(|| Invalid::Page("the request has no client_id".into()))?;
    let client = state.client(client_id).ok_or_else(|| Invalid::Page(format!("unknown client {client_id:?}")))?;
    // OIDC Core §3.1.2.1: redirect_uri is REQUIRED; RFC 9700 §2.1: exact string matching.
    let redirect_uri =
        params.get("redirect_uri").ok_or_else(|| Invalid::Page("the request has no redirect_uri".into()))?;
    if !client.config.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Invalid::Page(format!("redirect_uri {redirect_uri:?} is not registered for client {client_id:?}")));
    }
    let response_mode = match params.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => ResponseMode::Query,
    };
    let state_param = params.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: String| {
        Invalid::Redirect(Redirected {
            redirect_uri: redirect_uri.to_owned(),
            response_mode,
            state: state_param.clone(),
            error,
            description,
        })
    };
    if let Some(m) = params.get("response_mode")
        && !matches!(m, "query" | "form_post")
    {
        return Err(fail("invalid_request", format!("response_mode {m:?} is not supported (query, form_post)")));
    }
    // OIDC Core §6: request objects are not supported.
    if params.get("request").is_some() {
        return Err(fail("request_not_supported", "the request parameter is not supported".into()));
    }
    if params.get("request_uri").is_some() {
        return Err(fail("request_uri_not_supported", "the request_uri parameter is not supported".into()));
    }
    if params.get("registration").is_some() {
        return Err(fail("registration_not_supported", "the registration parameter is not supported".into()));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is missing".into())),
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use \"code\""),
            ));
        }
    }
    let scopes: Vec<String> =
        params.get("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    // OIDC Core §3.1.2.1: "OpenID Connect requests MUST contain the openid scope value."
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail("invalid_scope", "scope must include \"openid\"".into()));
    }
    if let Some(s) = scopes.iter().find(|s| !client.config.scopes.contains(s)) {
        return Err(fail("invalid_scope", format!("scope {s:?} is not allowed for this client")));
    }
    // RFC 7636 §4.3; RFC 9700 §2.1.1: PKCE, S256 only.
    let code_challenge = params.get("code_challenge");
    match (code_challenge, params.get("code_challenge_method")) {
        (None, Some(_)) => return Err(fail("invalid_request", "code_challenge_method without code_challenge".into())),
        (None, None) if client.config.require_pkce => {
            return Err(fail("invalid_request", "code_challenge is required (PKCE, RFC 7636) for this client".into()));
        }
        (Some(_), m) if m != Some("S256") => {
            return Err(fail("invalid_request", "code_challenge_method must be S256 (plain is not accepted)".into()));
        }
        (Some(c), _) if !is_pkce_value(c) || c.len() != 43 => {
            return Err(fail(
                "invalid_request",
                "code_challenge must be the 43-character base64url SHA-256 of the verifier".into(),
            ));
        }
        _ => {}
    }
    // OIDC Core §3.1.2.1 prompt: "If this parameter contains none with any other value, an
    // error is returned."
    let prompts: Vec<&str> = params.get("prompt").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).collect();
    for p in &prompts {
        if !matches!(*p, "none" | "login" | "consent" | "select_account") {
            return Err(fail("invalid_request", format!("prompt value {p:?} is not known")));
        }
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err(fail("invalid_request", "prompt=none cannot be combined with other values".into()));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => return Err(fail("invalid_request", "max_age must be a non-negative integer".into())),
        },
    };
    // FI tiers (reference/psc.md §3: PSC re-authenticates at most every 4 h): an authentication
    // older than the client's maximum is never reused for it, whatever `max_age` it sent.
    let max_age = match &client.config.fi_tiers {
        Some(fi) => {
            let limit = i64::try_from(fi.max_auth_age_secs).unwrap_or(i64::MAX);
            Some(max_age.map_or(limit, |m| m.min(limit)))
        }
        None => max_age,
    };
    let mut acr_essential = false;
    let mut unknown_essential = false;
    // Each value asked for with its level, and `Some(value)` for another scheme's (answered in
    // kind), in the request's order.
    let levels_of = |values: &[&str]| -> Vec<(AssuranceLevel, Option<String>)> {
        let named = |v: &&str| {
            let level = requested_level(state, &client.config, v)?;
            Some((level, AssuranceLevel::from_acr(v).is_none().then(|| (*v).to_owned())))
        };
        values.iter().filter_map(named).collect()
    };
    let mut asked = match params.get("acr_values") {
        Some(values) => levels_of(&values.split(' ').collect::<Vec<_>>()),
        None => Vec::new(),
    };
    // OIDC Core §5.5: the claims parameter; §5.5.1.1 for an essential acr.
    if let Some(claims) = params.get("claims") {
        let v: serde_json::Value = serde_json::from_str(claims)
            .map_err(|e| fail("invalid_request", format!("claims is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(fail("invalid_request", "claims must be a JSON object".into()));
        }
        if let Some(req) = v.get("id_token").and_then(|t| t.get("acr")).filter(|r| r.is_object()) {
            let essential = req.get("essential").and_then(|e| e.as_bool()).unwrap_or(false);
            let mut requested: Vec<&str> = req
                .get("values")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            if let Some(one) = req.get("value").and_then(|v| v.as_str()) {
                requested.push(one);
            }
            let known = levels_of(&requested);
            if essential {
                acr_essential = true;
                if known.is_empty() && !requested.is_empty() {
                    unknown_essential = true;
                }
                asked = known;
            } else {
                asked.extend(known);
            }
        }
    }
    let mut acr: Vec<AssuranceLevel> = asked.iter().map(|(level, _)| *level).collect();
    let mut foreign_acr: Vec<ForeignAcr> = Vec::new();
    for (level, value) in asked {
        if let Some(value) = value
            && !foreign_acr.iter().any(|f| f.value == value)
        {
            foreign_acr.push(ForeignAcr { value, level });
        }
    }
    // A client configured with a minimum level: acr values below it cannot be met by a login to
    // it, so they are dropped, and the minimum is required when nothing stronger was asked.
    if let Some(min) = client.config.min_level() {
        acr.retain(|l| *l >= min);
        if acr.is_empty() {
            acr.push(min);
        }
    }
    if unknown_essential {
        // OpenID Connect Core Unmet Authentication Requirements 1.0 §2.
        return Err(fail(
            "unmet_authentication_requirements",
            "none of the essential acr values is offered by this provider".into(),
        ));
    }
    let bounded = |name: &str, max: usize| -> Result<Option<String>, Invalid> {
        match params.get(name) {
            Some(v) if v.len() > max => Err(fail("invalid_request", format!("{name} is longer than {max} characters"))),
            v => Ok(v.map(str::to_owned)),
        }
    };
    let nonce = bounded("nonce", 512)?;
    let login_hint = bounded("login_hint", 256)?;
    let ui_locales = bounded("ui_locales", 64)?;
    if state_param.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(fail("invalid_request", "state is longer than 2048 characters".into()));
    }
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        response_mode,
        scopes,
        state: state_param,
        nonce,
        code_challenge: code_challenge.map(str::to_owned),
        // OIDC Core §3.1.2.1 max_age: "Note that max_age=0 is equivalent to prompt=login" —
        // also within the second of the last login, where the elapsed time is 0, not > 0.
        prompt_login: prompts.contains(&"login") || max_age == Some(0),
        prompt_none,
        max_age,
        login_hint,
        acr,
        foreign_acr,
        acr_essential,
        ui_locales,
    })
}

async fn handle(req: HttpRequest, state: State, raw: &[u8]) -> HttpResponse {
    let caller = Caller::of(&req, &state.config.server);
    let validated = match parse_params(raw) {
        Ok(p) => validate(Ok(p), &state),
        Err(e) => Err(repeated_parameter(raw, e, &state)),
    };
    let request = match validated {
        Ok(r) => r,
        Err(Invalid::Page(msg)) => {
            state.audit(AuditEvent {
                kind: Some(AuditKind::Refused),
                outcome: Some(Outcome::Failure),
                reason: Some(msg.clone()),
                ip: Some(caller.ip.clone()),
                user_agent: caller.user_agent.clone(),
                request_id: Some(caller.request_id.clone()),
                ..Default::default()
            });
            return pages::error_page(&req, StatusCode::BAD_REQUEST, &msg);
        }
        Err(Invalid::Redirect(r)) => return error_response(&state, r),
    };
    let current = match session::current(&state, &req).await {
        Ok(s) => s,
        Err(e) => return temporarily_unavailable(&state, &request, &e),
    };
    // A session answers only while the MIE instance of its login stands, as a refresh rechecks it:
    // a sponsorship's temporary credential ends before a session opened at its 23rd hour would.
    let current = match current {
        Some(s) => match super::token::withdrawn_mie(&state, &s.authentication).await {
            Ok(None) => Some(s),
            Ok(Some(_)) => None,
            Err(e) => return temporarily_unavailable(&state, &request, &e.description),
        },
        None => None,
    };
    let now = crate::now();
    let Some(client) = state.client(&request.client_id) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, "unknown client");
    };
    let fi_tiers = client.config.fi_tiers.as_ref();
    let mut offered = None;
    let reusable = |s: &Session| {
        !request.prompt_login
            && request.satisfied_by(&s.authentication, now)
            && !(fi_tiers.is_some() && super::fi_tiers::excluded(s.authentication.mie))
    };
    if let Some(s) = current.filter(reusable) {
        // SSO, if the policy lets this session into this client; else the MIE that would do.
        let principal = match crate::policy::principal_of(&state, &s.authentication.identity_id).await {
            Ok(p) => p,
            Err(e) => return temporarily_unavailable(&state, &request, &e),
        };
        let decision = crate::policy::decide_login(&state, &caller, &principal, client, &s.authentication, true);
        if decision.allowed {
            return finish(&state, request, &s, None).await;
        }
        if decision.step_up.is_empty() {
            return error_response(
                &state,
                redirected(&request, "access_denied", "the establishment's policy does not allow this user here"),
            );
        }
        if request.prompt_none {
            // OIDC Core §3.1.2.6: the session exists but the client needs another login.
            return error_response(&state, redirected(&request, "login_required", "a stronger login is required"));
        }
        offered = Some((decision.step_up, true));
    }
    if request.prompt_none {
        // OIDC Core §3.1.2.6 login_required: "The Authorization Server requires End-User
        // authentication."
        return error_response(&state, redirected(&request, "login_required", "the user must log in"));
    }
    if request.acr_essential && request.required_level().is_some_and(|l| login::best_level() < l) {
        return error_response(
            &state,
            redirected(
                &request,
                "unmet_authentication_requirements",
                "no login method offered here reaches the essential acr",
            ),
        );
    }
    let (offered, step_up) = match offered {
        Some(o) => o,
        None => {
            let before = crate::policy::offered_before_login(&state, &caller, client);
            if before.is_empty() {
                return error_response(
                    &state,
                    redirected(&request, "access_denied", "no means of identification satisfies this client's policy"),
                );
            }
            (before, false)
        }
    };
    let (mut request, mut offered) = (request, offered);
    if let Some(fi) = fi_tiers {
        offered.retain(|m| !super::fi_tiers::excluded(*m));
        if offered.is_empty() {
            return error_response(
                &state,
                redirected(
                    &request,
                    "access_denied",
                    "no local means of identification satisfies this client's policy",
                ),
            );
        }
        // PSC may name the professional by idNat: the login page pre-fills their login name.
        if let Some(hint) = request.login_hint.as_deref()
            && let Some(username) = super::fi_tiers::username_for_hint(&state, hint).await
        {
            tracing::debug!(tid = %fi.tid, "login_hint: an idNat, pre-filled as the account's login name");
            request.login_hint = Some(username);
        }
    }
    start_login(&req, &state, &caller, request, offered, step_up).await
}

/// RFC 6749 §4.1.2.1: a parameter "included more than once" is `invalid_request`, sent to the
/// client like any other error once the client and its redirect URI are known; an error page
/// only when one of them is repeated, missing or not registered.
fn repeated_parameter(raw: &[u8], error: String, state: &AppState) -> Invalid {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw).into_owned().collect();
    let once = |name: &str| -> Option<String> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(v), None) if !v.is_empty() => Some(v.clone()),
            _ => None,
        }
    };
    let client = once("client_id").and_then(|c| state.client(&c));
    let redirect_uri = once("redirect_uri").filter(|r| client.is_some_and(|c| c.config.redirect_uris.contains(r)));
    let Some(redirect_uri) = redirect_uri else {
        return Invalid::Page(format!("invalid authorization request: {error}"));
    };
    let response_mode = match once("response_mode").as_deref() {
        Some("form_post") => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    };
    Invalid::Redirect(Redirected {
        redirect_uri,
        response_mode,
        state: once("state").filter(|s| s.len() <= 2048),
        error: "invalid_request",
        description: error,
    })
}

pub fn redirected(r: &AuthRequest, error: &'static str, description: &str) -> Redirected {
    Redirected {
        redirect_uri: r.redirect_uri.clone(),
        response_mode: r.response_mode,
        state: r.state.clone(),
        error,
        description: description.to_owned(),
    }
}

/// Counts a login flow opened from the caller's address: false past `login.max_flows_per_ip`
/// in `login.ip_window_secs`. Every flow is stored until `tokens.login_flow_ttl_secs`, so an
/// address sending authorization requests in a loop would otherwise fill the store.
async fn flow_allowed(state: &AppState, caller: &Caller) -> Result<bool, StoreError> {
    let cfg = &state.config.login;
    let opened =
        state.ports.store.incr(&caller.rate_limit_key("flow-ip"), Duration::from_secs(cfg.ip_window_secs)).await?;
    Ok(opened <= cfg.max_flows_per_ip)
}

/// A backend (store, directory) failed once the request was known to be valid: the client is
/// told to try again (RFC 6749 §4.1.2.1 `temporarily_unavailable`), the cause goes to the log
/// only.
fn temporarily_unavailable(state: &AppState, request: &AuthRequest, cause: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(client = request.client_id, error = %cause, "authorization request: a backend failed");
    error_response(
        state,
        redirected(request, "temporarily_unavailable", "the service is unavailable; try again in a moment"),
    )
}

/// Creates a login flow bound to this browser and sends the user to the login page.
async fn start_login(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    request: AuthRequest,
    offered: Vec<vigie_core::Mie>,
    step_up: bool,
) -> HttpResponse {
    match flow_allowed(state, caller).await {
        Ok(true) => {}
        Ok(false) => {
            state.audit(AuditEvent {
                kind: Some(AuditKind::Refused),
                outcome: Some(Outcome::Failure),
                client_id: Some(request.client_id.clone()),
                reason: Some("too many login flows from this address".into()),
                ip: Some(caller.ip.clone()),
                user_agent: caller.user_agent.clone(),
                request_id: Some(caller.request_id.clone()),
                ..Default::default()
            });
            // RFC 6749 §4.1.2.1 temporarily_unavailable: "unable to handle the request due to a
            // temporary overloading".
            return error_response(
                state,
                redirected(
                    &request,
                    "temporarily_unavailable",
                    "too many sign-in requests from this address; try again in a minute",
                ),
            );
        }
        Err(e) => return temporarily_unavailable(state, &request, &e),
    }
    let browser = crate::web::http::cookie(req, login::BROWSER_COOKIE).filter(|b| b.len() == 43);
    let new_browser = browser.is_none();
    let browser = browser.unwrap_or_else(|| random_token(32));
    let flow_id = random_token(24);
    let flow = LoginFlow {
        request,
        csrf: random_token(24),
        browser: sha256_b64(browser.as_bytes()),
        offered: Some(offered),
        step_up,
    };
    let ttl = Duration::from_secs(state.config.tokens.login_flow_ttl_secs);
    if let Err(e) = state.ports.store.put_json(&login::flow_key(&flow_id), &flow, ttl).await {
        return temporarily_unavailable(state, &flow.request, &e);
    }
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((header::LOCATION, format!("/login?flow={flow_id}")));
    if new_browser {
        resp.cookie(crate::web::http::host_cookie(login::BROWSER_COOKIE, browser, None));
    }
    resp.finish()
}

/// The user is authenticated and the policy allowed this client (the callers asked it): issues
/// the code.
pub async fn finish(
    state: &AppState,
    request: AuthRequest,
    session: &Session,
    new_cookie: Option<String>,
) -> HttpResponse {
    let Some(client) = state.client(&request.client_id) else {
        return error_response(
            state,
            redirected(&request, "unauthorized_client", "the client is no longer registered"),
        );
    };
    // FI tiers: whatever the path that led here, PSC never gets back a login PSC made.
    if client.config.fi_tiers.is_some() && super::fi_tiers::excluded(session.authentication.mie) {
        state.audit(AuditEvent {
            kind: Some(AuditKind::Refused),
            outcome: Some(Outcome::Failure),
            subject: Some(session.authentication.identity_id.clone()),
            client_id: Some(request.client_id.clone()),
            method: Some(session.authentication.mie.as_str().into()),
            sid: Some(session.sid.clone()),
            reason: Some("FI tiers: a login through Pro Santé Connect is not sent back to it".into()),
            ..Default::default()
        });
        return error_response(
            state,
            redirected(&request, "access_denied", "a login through Pro Santé Connect cannot answer Pro Santé Connect"),
        );
    }
    let code = random_token(32);
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        authentication: session.authentication.clone(),
        sid: session.sid.clone(),
        grant_id: random_token(16),
        acr: request.foreign_acr_met(&session.authentication),
    };
    let ttl = Duration::from_secs(state.config.tokens.code_ttl_secs);
    let abs = Duration::from_secs(state.config.session.absolute_timeout_secs);
    let (code_key, clients_key) = (keys::code(&sha256_b64(code.as_bytes())), keys::sid_clients(&session.sid));
    let stored = tokio::join!(
        state.ports.store.put_json(&code_key, &grant, ttl),
        state.ports.store.add_to_set(&clients_key, &request.client_id, abs)
    );
    if let Err(e) = stored.0.and(stored.1) {
        return temporarily_unavailable(state, &request, &e);
    }
    let mut params = vec![("code", code)];
    if let Some(s) = &request.state {
        params.push(("state", s.clone()));
    }
    // RFC 9207 §2: the issuer identifier in the authorization response (mix-up defence).
    params.push(("iss", state.config.issuer.clone()));
    let mut resp = respond(request.response_mode, &request.redirect_uri, &params);
    if let Some(c) = new_cookie {
        let _ = resp.add_cookie(&crate::web::http::host_cookie(session::COOKIE, c, None));
    }
    resp
}

pub fn error_response(state: &AppState, r: Redirected) -> HttpResponse {
    let mut params = vec![("error", r.error.to_owned()), ("error_description", r.description)];
    if let Some(s) = r.state {
        params.push(("state", s));
    }
    params.push(("iss", state.config.issuer.clone()));
    respond(r.response_mode, &r.redirect_uri, &params)
}

/// Sends authorization response parameters to the client.
fn respond(mode: ResponseMode, redirect_uri: &str, params: &[(&str, String)]) -> HttpResponse {
    match mode {
        ResponseMode::Query => {
            let mut url = match url::Url::parse(redirect_uri) {
                Ok(u) => u,
                Err(_) => return HttpResponse::InternalServerError().finish(),
            };
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            HttpResponse::SeeOther().insert_header((header::LOCATION, url.to_string())).finish()
        }
        ResponseMode::FormPost => form_post(redirect_uri, params),
    }
}

/// OAuth 2.0 Form Post Response Mode §2: an HTML form auto-submitted to the redirect URI.
fn form_post(redirect_uri: &str, params: &[(&str, String)]) -> HttpResponse {
    let nonce = random_token(16);
    let inputs: String =
        params.iter().map(|(k, v)| format!(r#"<input type="hidden" name="{}" value="{}">"#, esc(k), esc(v))).collect();
    let origin = url::Url::parse(redirect_uri).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let body = format!(
        r#"<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Connexion…</title></head><body><form method="post" action="{}">{inputs}<noscript><button type="submit">Continuer</button></noscript></form><script nonce="{nonce}">document.forms[0].submit()</script></body></html>"#,
        esc(redirect_uri)
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!("default-src 'none'; script-src 'nonce-{nonce}'; form-action {origin}; frame-ancestors 'none'"),
        ))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pkce_values_follow_rfc_7636() {
        assert!(is_pkce_value("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }

    proptest! {
        #[test]
        fn pkce_check_never_panics(s in "\\PC{0,200}") {
            let _ = is_pkce_value(&s);
        }
    }
}
