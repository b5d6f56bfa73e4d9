//! The authorization endpoint (RFC 6749 §3.1, §4.1.1; OIDC Core §3.1.2): code flow only.
//! An unknown client or a redirect URI that is not registered gets an error page, never a
//! redirect (RFC 6749 §4.1.2.1); every other error goes back to the client. Here: deciding
//! between SSO, an error and a login flow.
mod request;
mod respond;

use std::time::Duration;

pub use request::{BUILT_IN_ACR_MAP, Invalid, Redirected, is_pkce_value, redirected, validate};
pub use respond::{Answer, error_response, finish};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::{StoreError, StoreExt};

use super::flow::{self, LoginFlow, Offer};
use super::{AuthRequest, Prompt};
use crate::config::Config;
use crate::secrets::{random_token, sha256_b64};
use crate::session::keys::{self, PerAddress};
use crate::session::{self, Session};
use crate::state::{Audit, OidcState, PolicyGate, Ports, parts};
use crate::web::http::{Caller, parse_params};
use crate::web::pages;
use request::repeated_parameter;
use respond::temporarily_unavailable;

parts! {
    /// What the endpoint reaches: the request's validation (settings, clients), the session, the
    /// policy (SSO, what a login may offer), the login flow and the answer ([`Answer`]).
    pub struct Endpoint {
        config: Config,
        oidc: OidcState,
        ports: Ports,
        policy: PolicyGate,
        audit: Audit,
        saml: crate::saml::SamlIdp,
    }
}

impl Endpoint {
    fn answer(&self) -> Answer<'_> {
        Answer { config: &self.config, oidc: &self.oidc, ports: &self.ports, audit: &self.audit }
    }
}

pub async fn get(req: HttpRequest, endpoint: Endpoint) -> HttpResponse {
    let raw = req.query_string().to_owned();
    handle(req, endpoint.answer(), &endpoint.policy, &endpoint.saml, raw.as_bytes()).await
}

/// OIDC Core §3.1.2.1: "Authorization Servers MUST support the use of the HTTP GET and POST
/// methods".
pub async fn post(req: HttpRequest, endpoint: Endpoint, body: web::Bytes) -> HttpResponse {
    handle(req, endpoint.answer(), &endpoint.policy, &endpoint.saml, &body).await
}

/// Deciding between SSO, an error and a login flow: `answer` is what answering the client
/// reaches, `policy` decides on the session and on what a login may offer.
async fn handle(
    req: HttpRequest,
    answer: Answer<'_>,
    policy: &PolicyGate,
    saml: &crate::saml::SamlIdp,
    raw: &[u8],
) -> HttpResponse {
    #[cfg(not(feature = "saml"))]
    let _ = saml;
    let Answer { config, oidc, ports, audit } = answer;
    let caller = Caller::of(&req, &config.server);
    let validated = match parse_params(raw) {
        Ok(p) => validate(Ok(p), config, oidc),
        Err(e) => Err(repeated_parameter(raw, e, oidc)),
    };
    let request = match validated {
        Ok(r) => r,
        Err(Invalid::Page(msg)) => {
            audit.record(AuditEvent {
                kind: Some(AuditKind::Refused),
                outcome: Some(Outcome::Failure),
                reason: Some(msg.clone()),
                ip: Some(caller.ip.clone()),
                user_agent: caller.user_agent.clone(),
                request_id: Some(caller.request_id.clone()),
                ..Default::default()
            });
            // The detail is for the application's team: the person is told whom to give it to.
            let fr = format!(
                "L'application a envoyé une demande de connexion invalide ; signalez-le à son équipe avec ce détail : {msg}"
            );
            let en = format!("The application sent an invalid sign-in request; tell its team, quoting: {msg}");
            return pages::error_page(&req, StatusCode::BAD_REQUEST, pages::Say::new(&fr, &en), pages::Back::Home);
        }
        Err(Invalid::Redirect(r)) => return error_response(config, r),
    };
    // A SAML SP's login through its client: only the MIE its RequestedAuthnContext accepts.
    #[cfg(feature = "saml")]
    let request = match crate::saml::flow::exact_mie(config, ports, saml, request).await {
        Ok(r) => r,
        Err((request, e)) => return temporarily_unavailable(config, &request, &e),
    };
    let current = match session::current(ports, config, &req).await {
        Ok(s) => s,
        Err(e) => return temporarily_unavailable(config, &request, &e),
    };
    // A session answers only while the MIE instance of its login stands, as a refresh rechecks it:
    // a sponsorship's temporary credential ends before a session opened at its 23rd hour would.
    let current = match current {
        Some(s) => match super::token::withdrawn_mie(ports, &s.authentication).await {
            Ok(None) => Some(s),
            Ok(Some(_)) => None,
            Err(e) => return temporarily_unavailable(config, &request, &e.description),
        },
        None => None,
    };
    // The account as it stands now, as a refresh reads it: one disabled, suspended or gone since
    // the login gets no code from its session, even before the revocation sweep ends it. The
    // session is ended here and the browser sent to log in (OIDC Core §3.1.2.6 `login_required`
    // for `prompt=none`).
    let mut ended = false;
    let current = match current {
        Some(s) => match policy.standings.of(ports, &s.authentication.identity_id).await {
            Ok(None) => Some(s),
            Ok(Some(reason)) => {
                tracing::info!(sid = %s.sid, reason = %reason, "authorize: the session's account no longer stands: session ended");
                if let Err(e) = session::end(ports.store.as_ref(), &s.sid).await {
                    return temporarily_unavailable(config, &request, &e);
                }
                ended = true;
                None
            }
            Err(e) => return temporarily_unavailable(config, &request, &e),
        },
        None => None,
    };
    let response = handle_session(&req, answer, policy, &caller, request, current).await;
    if ended {
        let mut response = response;
        if let Err(e) = response.add_cookie(&session::clear_cookie()) {
            tracing::warn!(error = %e, "authorize: the ended session's cookie could not be cleared");
        }
        return response;
    }
    response
}

/// SSO from the session when it may, else an error or a login flow.
async fn handle_session(
    req: &HttpRequest,
    answer: Answer<'_>,
    policy: &PolicyGate,
    caller: &Caller,
    request: AuthRequest,
    current: Option<Session>,
) -> HttpResponse {
    let Answer { config, oidc, ports, audit } = answer;
    let now = crate::now();
    let Some(client) = oidc.clients.get(&request.client_id) else {
        return pages::error_page(
            req,
            StatusCode::BAD_REQUEST,
            pages::Say::new(
                "Cette application n'est pas enregistrée auprès de Vigie : prévenez son équipe.",
                "This application is not registered with Vigie: tell its team.",
            ),
            pages::Back::Home,
        );
    };
    let fi_tiers = client.config.fi_tiers.as_ref();
    // The MIE that would lift the policy's refusal of the session, if it refused.
    let mut step_up = None;
    let reusable = |s: &Session| {
        request.prompt != Prompt::Login
            && request.satisfied_by(&s.authentication, now)
            && !(fi_tiers.is_some() && super::fi_tiers::excluded(s.authentication.mie))
    };
    if let Some(s) = current.filter(reusable) {
        // SSO, if the policy lets this session into this client; else the MIE that would do.
        let principal = match crate::policy::principal_of(policy, ports, &s.authentication.identity_id).await {
            Ok(p) => p,
            Err(e) => return temporarily_unavailable(config, &request, &e),
        };
        let decision = crate::policy::decide_login(policy, caller, &principal, client, &s.authentication, true);
        if decision.allowed {
            return finish(answer, request, &s, None).await;
        }
        if decision.step_up.is_empty() {
            return error_response(
                config,
                redirected(&request, "access_denied", "the establishment's policy does not allow this user here"),
            );
        }
        if request.prompt == Prompt::None {
            // OIDC Core §3.1.2.6: the session exists but the client needs another login.
            return error_response(config, redirected(&request, "login_required", "a stronger login is required"));
        }
        step_up = Some(decision.step_up);
    }
    if request.prompt == Prompt::None {
        // OIDC Core §3.1.2.6 login_required: "The Authorization Server requires End-User
        // authentication."
        return error_response(config, redirected(&request, "login_required", "the user must log in"));
    }
    if request.acr_essential && request.required_level().is_some_and(|l| flow::best_level() < l) {
        return error_response(
            config,
            redirected(
                &request,
                "unmet_authentication_requirements",
                "no login method offered here reaches the essential acr",
            ),
        );
    }
    let (offered, step_up) = match step_up {
        Some(o) => (o, true),
        None => {
            let before = crate::policy::offered_before_login(policy, caller, client);
            if before.is_empty() {
                return error_response(
                    config,
                    redirected(&request, "access_denied", "no means of identification satisfies this client's policy"),
                );
            }
            (before, false)
        }
    };
    let mut offered = request.narrow(offered);
    if offered.is_empty() {
        // OIDC Core §3.1.2.6: no MIE the policy allows is one the request accepts.
        return error_response(
            config,
            redirected(&request, "unmet_authentication_requirements", "no means of identification answers the request"),
        );
    }
    let mut request = request;
    if let Some(fi) = fi_tiers {
        offered.retain(|m| !super::fi_tiers::excluded(*m));
        if offered.is_empty() {
            return error_response(
                config,
                redirected(
                    &request,
                    "access_denied",
                    "no local means of identification satisfies this client's policy",
                ),
            );
        }
        // PSC may name the professional by idNat: the login page pre-fills their login name.
        if let Some(hint) = request.login_hint.as_deref()
            && let Some(username) = super::fi_tiers::username_for_hint(ports.directory.as_ref(), hint).await
        {
            tracing::debug!(tid = %fi.tid, "login_hint: an idNat, pre-filled as the account's login name");
            request.login_hint = Some(username);
        }
    }
    let offer = if step_up { Offer::StepUp(offered) } else { Offer::Named(offered) };
    start_login(req, config, ports, audit, caller, request, offer).await
}

/// Counts a login flow opened from the caller's address: false past `login.max_flows_per_ip`
/// in `login.ip_window_secs`. Every flow is stored until `tokens.login_flow_ttl_secs`, so an
/// address sending authorization requests in a loop would otherwise fill the store.
async fn flow_allowed(config: &Config, ports: &Ports, caller: &Caller) -> Result<bool, StoreError> {
    let cfg = &config.login;
    let opened =
        ports.store.incr(&caller.rate_limit_key(PerAddress::Flow), Duration::from_secs(cfg.ip_window_secs)).await?;
    Ok(opened <= cfg.max_flows_per_ip)
}

/// Creates a login flow bound to this browser and sends the user to the login page.
async fn start_login(
    req: &HttpRequest,
    config: &Config,
    ports: &Ports,
    audit: &Audit,
    caller: &Caller,
    request: AuthRequest,
    offer: Offer,
) -> HttpResponse {
    match flow_allowed(config, ports, caller).await {
        Ok(true) => {}
        Ok(false) => {
            audit.record(AuditEvent {
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
                config,
                redirected(
                    &request,
                    "temporarily_unavailable",
                    "too many sign-in requests from this address; try again in a minute",
                ),
            );
        }
        Err(e) => return temporarily_unavailable(config, &request, &e),
    }
    let browser = crate::web::http::cookie(req, flow::BROWSER_COOKIE).filter(|b| b.len() == 43);
    let new_browser = browser.is_none();
    let browser = browser.unwrap_or_else(|| random_token(32));
    let flow_id = random_token(24);
    let flow = LoginFlow { request, csrf: random_token(24), browser: sha256_b64(browser.as_bytes()), offer };
    let ttl = Duration::from_secs(config.tokens.login_flow_ttl_secs);
    if let Err(e) = ports.store.put_json(&keys::login_flow(&flow_id), &flow, ttl).await {
        return temporarily_unavailable(config, &flow.request, &e);
    }
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((header::LOCATION, format!("/login?flow={flow_id}")));
    if new_browser {
        resp.cookie(crate::web::http::host_cookie(flow::BROWSER_COOKIE, browser, None));
    }
    resp.finish()
}
