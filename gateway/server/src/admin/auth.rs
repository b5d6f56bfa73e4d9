//! Who may use the admin endpoints: one function, [`require`], that every admin handler calls.
//!
//! Two ways in. The admin **pages** take the browser's SSO session (`session::current`) of a
//! person holding the role in the directory (`vigie users grant-role USERNAME ROLE`); their forms
//! carry a CSRF token bound to that session ([`Admin::csrf`], [`Admin::check_csrf`]). The JSON
//! **API** (and the `vigie cards …` CLI) takes a bearer token from `[admin] tokens` (RFC 6750
//! §2.1), known by its hash only; the API never accepts the session cookie, so a page of another
//! site cannot make a browser call it. Each API call needs one scope ([`Scope`]) under one role,
//! and the policy on administration (`administer`) is asked for every call, person or token.
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::policy::TokenPrincipal;
use vigie_core::roles::{Role, Scope};

use crate::config::Config;
use crate::secrets::{SecretHash, ct_eq, sha256_b64};
use crate::session::Ending;
use crate::session::{self, Session};
use crate::state::{Audit, OidcState, Part, PolicyGate, Ports, Upstreams};
use crate::web::http::{Caller, problem};

/// An authenticated administrator holding the role asked for.
#[derive(Clone)]
pub struct Admin {
    /// For audit and card histories: `staff:<identity id>` or `token:<name>`.
    pub actor: String,
    /// The directory identity, for a person signed in on a page.
    pub identity_id: Option<String>,
    /// The session cookie of a page visit: the CSRF token is derived from it.
    session_cookie: Option<String>,
    /// The roles the person holds (a page's navigation shows what they open); empty for a token.
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for Admin {
    // The session cookie is a bearer secret: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("actor", &self.actor)
            .field("identity_id", &self.identity_id)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The CSRF token of this session's forms: SHA-256 of a label and the session cookie. The
    /// cookie is a secret of this browser, so another site cannot compute the token; it changes
    /// at every login. `None` for an API caller (no cookie, no forms).
    pub fn csrf(&self) -> Option<String> {
        self.session_cookie.as_deref().map(|c| sha256_b64(format!("vigie-admin-csrf\0{c}").as_bytes()))
    }

    /// Whether a form's CSRF token is this session's (constant-time comparison).
    pub fn check_csrf(&self, given: Option<&str>) -> bool {
        match (self.csrf(), given) {
            (Some(expected), Some(given)) => ct_eq(expected.as_bytes(), given.as_bytes()),
            _ => false,
        }
    }
}

/// The person signed in on an admin page if they hold `role` and the policy on administration
/// allows them, or the page refusing them (audited).
pub async fn require_staff(req: &HttpRequest, gate: &Gate<'_>, role: Role) -> Result<Admin, HttpResponse> {
    let session = session::current(gate.ports, gate.config, req).await;
    staff(req, gate, session, role).await
}

/// The parts an admin handler extracts to build its [`Gate`].
pub struct GateParts {
    pub config: Part<Config>,
    pub ports: Part<Ports>,
    pub policy: Part<PolicyGate>,
    pub audit: Part<Audit>,
    pub trail: Part<crate::audit::api::AuditTrail>,
}

impl FromRequest for GateParts {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parts = || {
            Ok(GateParts {
                config: Part::extract(req).into_inner()?,
                ports: Part::extract(req).into_inner()?,
                policy: Part::extract(req).into_inner()?,
                audit: Part::extract(req).into_inner()?,
                trail: Part::extract(req).into_inner()?,
            })
        };
        std::future::ready(parts())
    }
}

/// The further parts an admin action that ends sessions reaches (a card lost, a key revoked).
pub type EndingParts = (Part<OidcState>, Part<Upstreams>);

/// What the admin gate reads: the admin tokens and the session, the roles, the policy on
/// administration, the audit trail, and the caller it lets in or refuses.
pub struct Gate<'a> {
    pub config: &'a Config,
    pub ports: &'a Ports,
    pub policy: &'a PolicyGate,
    pub audit: &'a Audit,
    /// The trail the searches read (not the sink `audit` writes to).
    pub trail: &'a crate::audit::api::AuditTrail,
    pub caller: Caller,
}

impl<'a> Gate<'a> {
    /// The gate a request goes through.
    pub fn of(req: &HttpRequest, parts: &'a GateParts) -> Self {
        let caller = Caller::of(req, &parts.config.server);
        Gate {
            config: &parts.config,
            ports: &parts.ports,
            policy: &parts.policy,
            audit: &parts.audit,
            trail: &parts.trail,
            caller,
        }
    }

    /// What ending the sessions of a card or a key reaches, through this gate's parts.
    pub fn ending(&self, (oidc, upstreams): &'a EndingParts) -> Ending<'a> {
        Ending { config: self.config, ports: self.ports, oidc, audit: self.audit, http: &upstreams.http }
    }
}

/// The admin API token of this request if it holds `scope` (and its role) and the policy on
/// administration allows it, or the refusal: 401 with `WWW-Authenticate` (RFC 6750 §3), or 403
/// as RFC 9457 problem+json. Refusals are audited; so is every call let through.
pub async fn require_token(req: &HttpRequest, gate: &Gate<'_>, scope: Scope) -> Result<Admin, HttpResponse> {
    bearer(req, gate, scope).map_err(|r| *r)
}

fn bearer(req: &HttpRequest, gate: &Gate<'_>, scope: Scope) -> Result<Admin, Box<HttpResponse>> {
    let role = scope.role();
    let given = crate::web::http::bearer_token(req).filter(|t| t.len() <= 512);
    let Some(given) = given.as_deref() else {
        refused(req, gate, None, role, "no admin API token");
        return Err(Box::new(unauthorized(
            "invalid_request",
            "an admin API token is required: send `Authorization: Bearer <token>` (see `vigie admin new-token` \
             and `[admin] tokens`)",
        )));
    };
    // Every configured hash is checked, whichever matches: the time taken does not tell which.
    let mut matched = None;
    for t in &gate.config.admin.tokens {
        if SecretHash::parse(&t.token_hash).is_some_and(|h| h.verify(given)) {
            matched = Some(t);
        }
    }
    let Some(token) = matched else {
        refused(req, gate, None, role, "unknown admin API token");
        return Err(Box::new(unauthorized(
            "invalid_token",
            "this admin API token is not configured in `[admin] tokens`",
        )));
    };
    let actor = format!("token:{}", token.name);
    // RFC 6750 §3.1: an expired token is `invalid_token`.
    if token.expires_at().is_some_and(|end| crate::now() >= end) {
        refused(req, gate, Some(&actor), role, "admin API token expired");
        return Err(Box::new(unauthorized(
            "invalid_token",
            &format!("the admin API token {:?} has expired: make a new one (`vigie admin new-token`)", token.name),
        )));
    }
    if !token.roles.iter().any(|r| r == role.as_str()) {
        refused(req, gate, Some(&actor), role, "token without the role");
        return Err(Box::new(problem(
            StatusCode::FORBIDDEN,
            "Role missing",
            &format!("the admin API token {:?} does not have the role {role}: add it to its `roles`", token.name),
        )));
    }
    let scopes = token.scopes();
    if !scopes.contains(&scope) {
        refused(req, gate, Some(&actor), role, &format!("token without the scope {scope}"));
        return Err(Box::new(insufficient_scope(&token.name, scope)));
    }
    // The policy on administration decides for a token as for a person (`administer`, the token
    // as principal with its roles and scopes); the decision is audited there.
    let caller = &gate.caller;
    let principal = TokenPrincipal {
        name: token.name.clone(),
        roles: token.roles.clone(),
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        scope: scope.as_str().to_owned(),
    };
    let decision = crate::policy::decide_token(gate.policy, caller, &principal);
    if !decision.allowed {
        let why = format!("administration refused by policy [{}]", crate::policy::deciding(&decision));
        refused(req, gate, Some(&actor), role, &why);
        return Err(Box::new(problem(
            StatusCode::FORBIDDEN,
            "Refused by policy",
            "the policy on administration does not allow this token here (from this network, at this time or \
             with these roles): the administrators of Vigie can say which rule applies",
        )));
    }
    // Every use of a static token is audited: who, what, on which target (the path names it).
    gate.audit.record(AuditEvent {
        kind: Some(AuditKind::AdminApi),
        outcome: Some(Outcome::Success),
        actor: Some(actor.clone()),
        object: Some(format!("{} {}", req.method(), req.path().chars().take(200).collect::<String>())),
        reason: Some(format!("role {role}, scope {scope}")),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    Ok(Admin { actor, identity_id: None, session_cookie: None, roles: Vec::new() })
}

/// RFC 6750 §3.1: a token valid but short of the scope the call needs gets 403
/// `insufficient_scope`, the challenge's `scope` attribute (§3) naming what is needed; the
/// problem says it too (RFC 9457 §3.2 extension member `missing_scope`).
fn insufficient_scope(name: &str, scope: Scope) -> HttpResponse {
    let detail = format!(
        "the admin API token {name:?} does not have the scope {scope} this call needs: add it to its `scopes` \
         (and its role {} to its `roles`)",
        scope.role()
    );
    let mut r =
        HttpResponse::build(StatusCode::FORBIDDEN).content_type("application/problem+json").json(serde_json::json!({
            "type": "about:blank", "title": "Scope missing", "status": 403, "detail": detail,
            "missing_scope": scope.as_str(),
        }));
    let challenge = format!("Bearer realm=\"vigie-admin\", error=\"insufficient_scope\", scope=\"{scope}\"");
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The start-up warnings of the admin API tokens: never expiring, or expiring within 14 days;
/// without `scopes` (read-only until given some).
pub fn token_warnings(tokens: &[crate::config::AdminTokenConfig], now: i64) -> Vec<String> {
    const SOON_SECS: i64 = 14 * 86_400;
    let unscoped = tokens.iter().filter(|t| t.scopes.is_none()).map(|t| {
        let read: Vec<&str> = t.scopes().iter().map(|s| s.as_str()).collect();
        format!(
            "admin API token {:?} has no `scopes`: it may only read ({}); list what it needs in its `scopes`",
            t.name,
            read.join(", ")
        )
    });
    let expiry = tokens.iter().filter_map(|t| match t.expires_at() {
        None => Some(format!("admin API token {:?} never expires: set its `expires_at`", t.name)),
        Some(end) if end <= now => Some(format!("admin API token {:?} has expired: remove it", t.name)),
        Some(end) if end - now <= SOON_SECS => Some(format!(
            "admin API token {:?} expires in {} day(s): make its successor (`vigie admin new-token`)",
            t.name,
            (end - now) / 86_400
        )),
        Some(_) => None,
    });
    expiry.chain(unscoped).collect()
}

/// RFC 6750 §3: a request without valid bearer credentials gets 401 and a `WWW-Authenticate`
/// challenge naming the error.
fn unauthorized(error: &str, detail: &str) -> HttpResponse {
    let mut r = problem(StatusCode::UNAUTHORIZED, "Admin API token required", detail);
    let challenge = format!("Bearer realm=\"vigie-admin\", error=\"{error}\"");
    if let Ok(v) = header::HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn staff(
    req: &HttpRequest,
    gate: &Gate<'_>,
    session: Result<Option<Session>, vigie_core::store::StoreError>,
    role: Role,
) -> Result<Admin, HttpResponse> {
    let session = match session {
        Ok(s) => s,
        Err(e) => return Err(super::page::message(req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), false)),
    };
    let cookie = crate::web::http::cookie(req, session::COOKIE);
    let (Some(session), Some(cookie)) = (session, cookie) else {
        return Err(super::page::sign_in_needed(req));
    };
    let identity_id = session.authentication.identity_id.clone();
    let actor = format!("staff:{identity_id}");
    let roles = match gate.ports.roles.roles_of(&identity_id).await {
        Ok(roles) => roles,
        Err(e) => return Err(super::page::message(req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), false)),
    };
    if !roles.contains(&role) {
        refused(req, gate, Some(&actor), role, "signed-in person without the role");
        return Err(super::page::role_missing(req, role, &roles));
    }
    // The policy on administration (default: a phishing-resistant MIE, at most 15 minutes old):
    // a role is not enough, the person must have proved who they are strongly and recently.
    let decision = crate::policy::decide_system(
        gate.policy,
        gate.ports,
        &gate.caller,
        vigie_core::policy::Action::Administer,
        &session.authentication,
        "vigie-admin",
    )
    .await;
    if !decision.allowed {
        let why = format!("administration refused by policy [{}]", decision.policies.join(", "));
        refused(req, gate, Some(&actor), role, &why);
        return Err(super::page::strong_login_needed(req));
    }
    Ok(Admin { actor, identity_id: Some(identity_id), session_cookie: Some(cookie), roles })
}

fn refused(req: &HttpRequest, gate: &Gate<'_>, actor: Option<&str>, role: Role, reason: &str) {
    let caller = &gate.caller;
    gate.audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        actor: actor.map(str::to_owned),
        object: Some(format!("role:{role} {}", req.path().chars().take(200).collect::<String>())),
        reason: Some(reason.into()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(cookie: &str) -> Admin {
        Admin {
            actor: "staff:a".into(),
            identity_id: Some("a".into()),
            session_cookie: Some(cookie.into()),
            roles: Vec::new(),
        }
    }

    #[test]
    fn a_start_warns_of_tokens_that_never_expire_have_expired_or_expire_within_14_days() {
        let token = |name: &str, expires_at: Option<&str>| crate::config::AdminTokenConfig {
            name: name.into(),
            token_hash: String::new(),
            roles: vec!["cards".into()],
            scopes: Some(vec!["cards:read".into()]),
            expires_at: expires_at.map(Into::into),
        };
        let now = 1_767_225_600; // 2026-01-01T00:00:00Z
        let warnings = token_warnings(
            &[
                token("forever", None),
                token("gone", Some("2025-12-31T00:00:00Z")),
                token("soon", Some("2026-01-11T00:00:00Z")),
                token("later", Some("2026-03-01T00:00:00Z")),
            ],
            now,
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("\"forever\" never expires"));
        assert!(warnings[1].contains("\"gone\" has expired"));
        assert!(warnings[2].contains("\"soon\" expires in 10 day(s)"));
        let legacy = crate::config::AdminTokenConfig { scopes: None, ..token("legacy", Some("2026-03-01T00:00:00Z")) };
        let warnings = token_warnings(&[legacy], now);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"legacy\" has no `scopes`: it may only read (cards:read)"), "{warnings:?}");
    }

    #[test]
    fn the_csrf_token_is_bound_to_the_session_and_hides_its_cookie() {
        let a = staff("cookie-one");
        let token = a.csrf().unwrap();
        assert!(a.check_csrf(Some(&token)));
        assert!(!a.check_csrf(None) && !a.check_csrf(Some("")) && !a.check_csrf(Some(&token[1..])));
        // Another session (a new login) has another token.
        assert!(!staff("cookie-two").check_csrf(Some(&token)));
        assert!(!token.contains("cookie-one") && !format!("{a:?}").contains("cookie-one"));
        // An API caller has no forms.
        let api = Admin { actor: "token:x".into(), identity_id: None, session_cookie: None, roles: Vec::new() };
        assert!(api.csrf().is_none() && !api.check_csrf(Some(&token)));
    }
}
