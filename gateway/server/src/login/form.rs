//! What the verifiers share: the way to their login flow ([`Flows`]: the flow bound to this
//! browser, an attempt's audit line, `complete`), and what the posted forms check alike before
//! their credentials (the form, its flow, its CSRF token, the attempts from the caller's address).
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::store::StoreExt;
use vigie_core::{Authentication, Mie};

use super::config::LoginConfig;
use super::{LoginFlow, Methods};
use crate::config::Config;
use crate::secrets::ct_eq;
use crate::session::keys::{self, PerAddress};
use crate::state::{Audit, OidcState, PolicyGate, Ports, Upstreams, parts};
use crate::web::http::{Caller, Params, parse_params};
use crate::web::pages::{self, Back, Say};

parts! {
    /// The login flows as a verifier reaches them (`flows: Flows` in a handler): the caller, the
    /// flow bound to this browser, the page of a flow, an attempt's audit line, and
    /// [`super::complete`], the one exit. The parts here are those the exit reaches (policy,
    /// session, the way back to the client, ending a replaced session); each verifier names only
    /// the parts it reads besides.
    pub struct Flows {
        pub(super) config: Config,
        pub(super) ports: Ports,
        pub(super) oidc: OidcState,
        pub(super) policy: PolicyGate,
        pub(super) upstreams: Upstreams,
        pub(super) audit: Audit,
    }
}

/// One attempt to log in on a flow: the request, who makes it, and the flow.
#[derive(Clone, Copy)]
pub struct LoginAttempt<'a> {
    pub req: &'a HttpRequest,
    pub caller: &'a Caller,
    pub flow_id: &'a str,
    pub flow: &'a LoginFlow,
}

impl Flows {
    /// What ending the replaced session of a shared workstation reaches.
    pub(super) fn ending(&self) -> crate::session::Ending<'_> {
        crate::session::Ending {
            config: &self.config,
            ports: &self.ports,
            oidc: &self.oidc,
            audit: &self.audit,
            http: &self.upstreams.http,
        }
    }

    /// What answering the client with its code reaches.
    pub(super) fn answer(&self) -> crate::oidc::authorize::Answer<'_> {
        crate::oidc::authorize::Answer {
            config: &self.config,
            oidc: &self.oidc,
            ports: &self.ports,
            audit: &self.audit,
        }
    }

    /// Who is calling.
    pub fn caller(&self, req: &HttpRequest) -> Caller {
        Caller::of(req, &self.config.server)
    }

    /// The flow named by a request entered by GET or by script, checked against this browser.
    pub async fn bound(&self, req: &HttpRequest, flow_id: &str) -> Result<LoginFlow, HttpResponse> {
        super::bound_flow(req, &self.ports, flow_id).await
    }

    /// The flow id of a verifier entered by GET (`?flow=…`) and its flow, checked against this
    /// browser.
    pub async fn entered(&self, req: &HttpRequest, flow: Option<&str>) -> Result<(String, LoginFlow), HttpResponse> {
        let flow_id = flow.unwrap_or_default().to_owned();
        let flow = self.bound(req, &flow_id).await?;
        Ok((flow_id, flow))
    }

    /// What the page of this flow offers.
    pub fn methods(&self, flow: &LoginFlow) -> Methods {
        super::methods_for(&self.config, &self.upstreams, flow)
    }

    /// The login page of a flow.
    pub fn render(&self, req: &HttpRequest, flow_id: &str, flow: &LoginFlow, username: &str) -> HttpResponse {
        super::render(req, self, flow_id, flow, username)
    }

    /// The audit line of an attempt that did not log in.
    pub fn refused(&self, caller: &Caller, flow: &LoginFlow, mie: Mie, who: &str, reason: Option<&str>) {
        super::audit_login(&self.audit, caller, mie, who, flow, None, Err(reason.unwrap_or_default()));
    }

    /// Ends the attempt's login with a verified authentication ([`super::complete`]).
    pub async fn complete(&self, at: LoginAttempt<'_>, auth: Authentication, who: &str) -> HttpResponse {
        super::complete(self, at.req, at.caller, at.flow_id, at.flow.clone(), auth, who).await
    }
}

/// A form field no longer than `max` bytes; a longer one counts as absent.
pub(crate) fn limited(p: &Params, name: &str, max: usize) -> Option<String> {
    p.get(name).filter(|v| v.len() <= max).map(str::to_owned)
}

/// A login form that is not a form (no way to tell its flow).
pub(crate) const MALFORMED: Say<'static> = Say::new(
    "Le formulaire de connexion reçu est illisible : recommencez depuis l'application.",
    "The sign-in form received is unreadable: start again from the application.",
);

/// A login form as posted: its fields, its flow's id and the flow.
pub(crate) struct PostedLogin {
    pub params: Params,
    pub flow_id: String,
    pub flow: LoginFlow,
}

/// Parses a posted login form and finds its flow, whose CSRF token and browser-binding cookie
/// must both match (compared in constant time); or the page that answers instead: a malformed
/// form, no flow, an expired flow, the store failing, or a form not issued to this browser.
pub(crate) async fn posted_login(ports: &Ports, req: &HttpRequest, body: &[u8]) -> Result<PostedLogin, HttpResponse> {
    let Ok(params) = parse_params(body) else {
        return Err(pages::error_page(req, StatusCode::BAD_REQUEST, MALFORMED, Back::Home));
    };
    let Some(flow_id) = limited(&params, "flow", 64) else {
        return Err(pages::error_page(req, StatusCode::BAD_REQUEST, super::NO_FLOW, Back::Home));
    };
    let flow = match ports.store.get_json::<LoginFlow>(&keys::login_flow(&flow_id)).await {
        Ok(Some(f)) => f,
        Ok(None) => return Err(pages::flow_expired(req)),
        Err(e) => return Err(pages::unavailable(req, &e)),
    };
    // CSRF: the form's token and the browser-binding cookie must both match the flow.
    let csrf_ok = params.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), flow.csrf.as_bytes()));
    let browser_ok = super::browser_bound(req, &flow.browser);
    if !csrf_ok || !browser_ok {
        return Err(pages::error_page(req, StatusCode::FORBIDDEN, super::OTHER_BROWSER, Back::Home));
    }
    Ok(PostedLogin { params, flow_id, flow })
}

/// Counts an attempt from the caller's address (`login.ip_window_secs`, shared by the methods).
/// Past `login.max_attempts_per_ip` the attempt is audited as refused and answered with the
/// rate-limited page (and counted in `vigie_login_total` as `rate_limited` when `metric`);
/// a store failure is answered with 503.
pub(crate) async fn limit_per_ip(
    flows: &Flows,
    ports: &Ports,
    cfg: &LoginConfig,
    at: LoginAttempt<'_>,
    mie: Mie,
    username: &str,
    metric: bool,
) -> Result<(), HttpResponse> {
    let ip_key = at.caller.rate_limit_key(PerAddress::Login);
    match ports.store.incr(&ip_key, Duration::from_secs(cfg.ip_window_secs)).await {
        Ok(n) if n > cfg.max_attempts_per_ip => {
            if metric {
                metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "rate_limited")
                    .increment(1);
            }
            flows.refused(at.caller, at.flow, mie, username, Some("too many attempts from this address"));
            Err(pages::rate_limited(at.req, cfg.ip_window_secs, Back::Login(at.flow_id)))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(pages::unavailable(at.req, &e)),
    }
}
