//! Login: the page that offers the means of identification a flow allows (the flow itself is the
//! provider's, `oidc::flow`), one verifier per MIE, and `complete`, the one exit of every verifier.
pub mod attestation;
pub mod config;
pub mod cps;
pub mod fido2;
mod form;
pub mod html;
pub mod password_totp;
pub mod psc;
pub mod sponsorship;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;
use vigie_core::{AssuranceLevel, Authentication, Mie};

use crate::config::Config;
use crate::oidc::flow::Offer;
use crate::session::{self, keys};
use crate::state::{Audit, Ports, Upstreams};
use crate::web::http::Caller;
use crate::web::pages::{self, Back, Say};
use form::Flows;

// The flow is the provider's (it waits on an authorization request); the verifiers name it
// from here.
pub use crate::oidc::flow::{BROWSER_COOKIE, LoginFlow};

/// A login address without its flow: only the application can start one.
pub(crate) const NO_FLOW: Say<'static> = Say::new(
    "La page de connexion s'ouvre depuis l'application : retournez-y et recommencez.",
    "The sign-in page opens from the application: go back to it and start again.",
);

/// A flow answered only the browser it was opened in (login CSRF).
pub(crate) const OTHER_BROWSER: Say<'static> = Say::new(
    "Cette connexion n'a pas été commencée dans ce navigateur : recommencez depuis l'application.",
    "This sign-in was not started in this browser: start again from the application.",
);

/// The login methods a flow's page offers: those that reach the level the request needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Methods {
    /// CPS / CPE card (`GET /login/cps`).
    pub card: bool,
    /// FIDO2 security key (WebAuthn).
    pub fido2: bool,
    /// Password + TOTP.
    pub password: bool,
    /// The password is the LDAP directory's and its circuit breaker is not closed: the page says
    /// the method is unavailable instead of showing a form that could only fail.
    pub password_unavailable: bool,
    /// e-CPS / CPS through Pro Santé Connect (`GET /login/psc`).
    pub psc: bool,
    /// PSC is offered but its circuit breaker is not closed: the page says e-CPS is unavailable.
    pub psc_unavailable: bool,
    /// A sponsorship's temporary code (`POST /login/sponsorship`).
    pub sponsorship: bool,
}

/// What the page of this flow offers (step-up: a request that needs a phishing-resistant
/// MIE is not offered password + TOTP).
pub fn methods_for(config: &Config, upstreams: &Upstreams, flow: &LoginFlow) -> Methods {
    let needed = flow.request.required_level();
    let reaches = |level: AssuranceLevel| needed.is_none_or(|n| level >= n);
    let offered = |mie: &[Mie]| flow.offer.offers_any(mie) && mie.iter().any(|m| flow.request.answered_by(*m));
    Methods {
        card: config.cards.enabled
            && reaches(AssuranceLevel::TwoFactorPhishingResistant)
            && offered(&[Mie::Cps, Mie::Cpe]),
        fido2: reaches(AssuranceLevel::TwoFactorPhishingResistant) && offered(&[Mie::Fido2]),
        password: reaches(AssuranceLevel::TwoFactor) && offered(&[Mie::PasswordTotp]),
        password_unavailable: upstreams.ldap.is_some() && !upstreams.health.available(crate::health::LDAP),
        // e-CPS reaches level 1, a CPS at PSC level 2: offered when either would do.
        psc: upstreams.psc.is_some()
            && ((reaches(AssuranceLevel::TwoFactor) && offered(&[Mie::Ecps]))
                || (reaches(AssuranceLevel::TwoFactorPhishingResistant) && offered(&[Mie::CpsViaPsc]))),
        psc_unavailable: upstreams.psc.is_some() && !upstreams.health.available(crate::health::PSC),
        sponsorship: config.sponsorship.enabled && reaches(AssuranceLevel::TwoFactor) && offered(&[Mie::Sponsorship]),
    }
}

/// Ends a login: the flow is used up, a session starts (ending the previous user's session at a
/// shared workstation), the login is counted and audited, and the browser goes back to the
/// client with a code. An authentication that does not reach what the request needs is refused
/// here, whatever the method, so no verifier can forget the check.
pub async fn complete(
    flows: &Flows,
    req: &HttpRequest,
    caller: &Caller,
    flow_id: &str,
    flow: LoginFlow,
    auth: Authentication,
    who: &str,
) -> HttpResponse {
    let mie = auth.mie;
    if let Some(page) = unasked(flows, req, caller, flow_id, &flow, mie, who) {
        return page;
    }
    if flow.request.required_level().is_some_and(|l| auth.level < l) {
        metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "insufficient").increment(1);
        let idnat = crate::audit::idnat_of(&flows.policy.identities, flows.ports.directory.as_ref(), &auth).await;
        let weaker = Err("the MIE used is weaker than the application needs");
        audit_login(&flows.audit, caller, mie, who, &flow, idnat.as_deref(), weaker);
        // The flow is still there: its login page offers what the application needs.
        return pages::error_page(
            req,
            StatusCode::FORBIDDEN,
            Say::new(
                "Cette application demande un moyen d'identification plus fort : une carte CPS/CPE ou une clé FIDO2.",
                "This application needs a stronger means of identification: a CPS/CPE card or a FIDO2 key.",
            ),
            Back::Login(flow_id),
        );
    }
    // The policy, with who this really is: a refusal that another MIE would lift asks for it on
    // the same flow (step-up), one that none would lift ends here.
    let Some(client) = flows.oidc.clients.get(&flow.request.client_id) else {
        return pages::error_page(
            req,
            StatusCode::BAD_REQUEST,
            Say::new(
                "Cette application n'est plus enregistrée auprès de Vigie : prévenez le support.",
                "This application is no longer registered with Vigie: tell support.",
            ),
            Back::Home,
        );
    };
    // Read now, not from the cache: someone who has just left or been suspended must not open a
    // new session on a status read before the change (the sweep that ends their sessions may
    // already have run).
    let principal = match crate::policy::current_principal(&flows.policy, &flows.ports, &auth.identity_id).await {
        Ok(p) => p,
        Err(e) => return pages::unavailable(req, &e),
    };
    let decision = crate::policy::decide_login(&flows.policy, caller, &principal, client, &auth, true);
    let idnat = crate::audit::idnat_of(&flows.policy.identities, flows.ports.directory.as_ref(), &auth).await;
    if !decision.allowed {
        metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "policy").increment(1);
        let reason = format!("refused by policy [{}]", decision.policies.join(", "));
        audit_login(&flows.audit, caller, mie, who, &flow, idnat.as_deref(), Err(&reason));
        if decision.step_up.is_empty() {
            return pages::error_page(
                req,
                StatusCode::FORBIDDEN,
                Say::new(
                    "Accès refusé : les règles de l'établissement ne permettent pas l'accès à cette application.",
                    "Access refused: the establishment's rules do not allow you into this application.",
                ),
                Back::Home,
            );
        }
        let flow = LoginFlow { offer: Offer::StepUp(flow.request.narrow(decision.step_up)), ..flow };
        let ttl = std::time::Duration::from_secs(flows.config.tokens.login_flow_ttl_secs);
        if let Err(e) = flows.ports.store.put_json(&keys::login_flow(flow_id), &flow, ttl).await {
            return pages::unavailable(req, &e);
        }
        let username = if mie == Mie::PasswordTotp { who } else { "" };
        let mut page = render(req, flows, flow_id, &flow, username);
        *page.status_mut() = StatusCode::FORBIDDEN;
        return page;
    }
    let started = async {
        flows.ports.store.delete(&keys::login_flow(flow_id)).await?;
        session::open(&flows.ports, &flows.config, req, auth).await
    };
    let (cookie, s, replaced) = match started.await {
        Ok(v) => v,
        Err(e) => return pages::unavailable(req, &e),
    };
    if let Some(previous) = replaced {
        // Someone else was signed in on this browser: their tokens are revoked and their
        // applications told (back-channel logout) before the new user gets in.
        crate::oidc::logout::end_session(flows.ending(), caller, &previous.sid).await;
    }
    metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "success").increment(1);
    audit_login(&flows.audit, caller, mie, who, &flow, idnat.as_deref(), Ok(&s));
    crate::oidc::authorize::finish(flows.answer(), flow.request, &s, Some(cookie)).await
}

/// A login with a MIE the request does not accept (a SAML SP that named the classes it takes,
/// `AuthRequest::only_mie`) is refused before anything is checked, whatever was posted: the
/// page was not offering it. Audited; the answer (`Some`) leads back to the flow's login page.
pub(crate) fn unasked(
    flows: &Flows,
    req: &HttpRequest,
    caller: &Caller,
    flow_id: &str,
    flow: &LoginFlow,
    mie: Mie,
    who: &str,
) -> Option<HttpResponse> {
    if flow.request.answered_by(mie) {
        return None;
    }
    metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "not_offered").increment(1);
    audit_login(&flows.audit, caller, mie, who, flow, None, Err("the application does not accept this MIE"));
    Some(pages::error_page(
        req,
        StatusCode::FORBIDDEN,
        Say::new(
            "Cette application n'accepte pas ce moyen d'identification : utilisez l'un de ceux proposés sur la page de connexion.",
            "This application does not accept this means of identification: use one of those offered on the sign-in page.",
        ),
        Back::Login(flow_id),
    ))
}

/// One audit line per login attempt, whatever the method: the session it opened, or why it
/// failed; `idnat` once the person is known (`audit::idnat_of`).
pub fn audit_login(
    audit: &Audit,
    caller: &Caller,
    mie: Mie,
    who: &str,
    flow: &LoginFlow,
    idnat: Option<&str>,
    result: Result<&session::Session, &str>,
) {
    let session = result.ok();
    audit.record(AuditEvent {
        kind: Some(AuditKind::Login),
        outcome: Some(if session.is_some() { Outcome::Success } else { Outcome::Failure }),
        subject: session.map(|s| s.authentication.identity_id.clone()),
        username: Some(who.chars().take(128).collect()),
        client_id: Some(flow.request.client_id.clone()),
        method: Some(mie.as_str().into()),
        acr: session.map(|s| s.authentication.level.acr().to_owned()),
        sid: session.map(|s| s.sid.clone()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: result.err().map(str::to_owned),
        idnat: idnat.map(str::to_owned),
        ..Default::default()
    });
}

/// Whether this browser holds the binding cookie whose SHA-256 a flow keeps (`browser_hash`),
/// compared in constant time: a flow answers only the browser it was opened in (login CSRF).
pub(crate) fn browser_bound(req: &HttpRequest, browser_hash: &str) -> bool {
    crate::web::http::cookie(req, BROWSER_COOKIE).is_some_and(|b| {
        crate::secrets::ct_eq(crate::secrets::sha256_b64(b.as_bytes()).as_bytes(), browser_hash.as_bytes())
    })
}

/// The flow named by a request, checked against the browser that started it (the
/// browser-binding cookie) — for methods entered by GET or by script rather than by the form.
pub async fn bound_flow(req: &HttpRequest, ports: &Ports, flow_id: &str) -> Result<LoginFlow, HttpResponse> {
    if flow_id.is_empty() || flow_id.len() > 64 {
        return Err(pages::error_page(req, StatusCode::BAD_REQUEST, NO_FLOW, Back::Home));
    }
    let flow = match ports.store.get_json::<LoginFlow>(&keys::login_flow(flow_id)).await {
        Ok(Some(f)) => f,
        Ok(None) => return Err(pages::flow_expired(req)),
        Err(e) => return Err(pages::unavailable(req, &e)),
    };
    if !browser_bound(req, &flow.browser) {
        return Err(pages::error_page(req, StatusCode::FORBIDDEN, OTHER_BROWSER, Back::Home));
    }
    Ok(flow)
}

/// The login page of a flow, offering what the flow allows, saying why when it is a step-up.
pub fn render(req: &HttpRequest, flows: &Flows, flow_id: &str, flow: &LoginFlow, username: &str) -> HttpResponse {
    let client_name = flows
        .oidc
        .clients
        .get(&flow.request.client_id)
        .map(|c| c.config.name.clone().unwrap_or_else(|| c.config.client_id.clone()))
        .unwrap_or_default();
    html::login_form(
        req,
        &html::FormView {
            flow_id,
            csrf: &flow.csrf,
            client_name: &client_name,
            username,
            error: flow.offer.is_step_up().then_some(html::LoginError::StepUp),
            redirect_origin: &flow.request.redirect_uri,
            ui_locales: flow.request.ui_locales.as_deref(),
            methods: methods_for(&flows.config, &flows.upstreams, flow),
        },
    )
}

#[derive(Deserialize)]
pub struct PageQuery {
    flow: Option<String>,
}

/// `GET /login?flow=…`: the login page of a flow.
pub async fn page(req: HttpRequest, flows: Flows, q: web::Query<PageQuery>) -> HttpResponse {
    let Some(id) = q.flow.as_deref().filter(|f| f.len() <= 64) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, NO_FLOW, Back::Home);
    };
    match flows.ports.store.get_json::<LoginFlow>(&keys::login_flow(id)).await {
        Ok(Some(flow)) => render(&req, &flows, id, &flow, flow.request.login_hint.as_deref().unwrap_or_default()),
        Ok(None) => pages::flow_expired(&req),
        Err(e) => pages::unavailable(&req, &e),
    }
}
