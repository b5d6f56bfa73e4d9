//! What the gateway gives the policy engine: the principal (from the directory), the client as a
//! resource, the context (network zone from configured CIDRs, local hour, degraded mode, the
//! transition period), and one audited way to ask.
pub mod config;
mod context;
mod principal;
pub mod standing;
pub mod view;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::policy::{
    Action, ClientResource, Decision, PolicyContext, PolicyRequest, Principal, Resource, TokenPrincipal,
};
use vigie_core::{Authentication, Mie};

use crate::state::{Client, PolicyGate, Ports};
use crate::web::http::Caller;

pub use crate::config::check::Cidr;
pub use context::ContextSource;
pub use principal::{anonymous_principal, current_principal, principal_of, profession_code_of};

/// A client as a resource.
pub fn client_resource(client: &Client) -> Resource {
    Resource::Client(ClientResource {
        id: client.config.client_id.clone(),
        sensitive: client.config.sensitive,
        required_level: client.config.min_level(),
        audience: client.config.audience.clone(),
    })
}

/// One question to the engine: who, doing what, on what, authenticated how; audited under
/// `target` when given.
struct Question<'a> {
    principal: &'a Principal,
    action: Action,
    resource: &'a Resource,
    auth: &'a Authentication,
    target: Option<&'a str>,
}

/// Asks the engine whether this authentication may log in to `client`; the decision is counted
/// and, when `audit` is set, audited with the ids of the policies that decided.
pub fn decide_login(
    gate: &PolicyGate,
    caller: &Caller,
    principal: &Principal,
    client: &Client,
    auth: &Authentication,
    audit: bool,
) -> Decision {
    let target = audit.then_some(client.config.client_id.as_str());
    let resource = client_resource(client);
    ask(gate, caller, &Question { principal, action: Action::LoginToClient, resource: &resource, auth, target })
}

/// Asks the engine whether this session may do a system action (`administer`, `enrol_mie`) on
/// Vigie itself; counted and audited under `target`. A directory failure refuses.
pub async fn decide_system(
    gate: &PolicyGate,
    ports: &Ports,
    caller: &Caller,
    action: Action,
    auth: &Authentication,
    target: &str,
) -> Decision {
    ask_about_self(gate, ports, caller, auth, action, &Resource::System, target).await
}

/// Asks the engine whether this authentication may reach the DMP (action `access_dmp`: a VIHF, a
/// relayed SOAP call); counted and audited under `client_id` (the DPI asking). A directory
/// failure refuses.
pub async fn decide_dmp(
    gate: &PolicyGate,
    ports: &Ports,
    caller: &Caller,
    auth: &Authentication,
    client_id: &str,
) -> Decision {
    ask_about_self(gate, ports, caller, auth, Action::AccessDmp, &Resource::Dmp, client_id).await
}

/// A decision on the session's own principal, read through the cache; a directory failure refuses.
async fn ask_about_self(
    gate: &PolicyGate,
    ports: &Ports,
    caller: &Caller,
    auth: &Authentication,
    action: Action,
    resource: &Resource,
    target: &str,
) -> Decision {
    match principal_of(gate, ports, &auth.identity_id).await {
        Ok(principal) => {
            ask(gate, caller, &Question { principal: &principal, action, resource, auth, target: Some(target) })
        }
        Err(e) => Decision { errors: vec![e], ..Default::default() },
    }
}

/// Asks the engine whether this authentication may sponsor `colleague` (action `sponsor`, the
/// colleague as the resource with their units), having sponsored `sponsorships_today`
/// colleagues in the last 24 hours; counted and audited under `sponsorship:<colleague id>`. A
/// directory failure refuses. Also says whether the day's count is what refused: the same
/// question with no sponsorship today would have been allowed (asked again, not audited).
pub async fn decide_sponsor(
    gate: &PolicyGate,
    ports: &Ports,
    caller: &Caller,
    auth: &Authentication,
    colleague: &vigie_core::directory::Identity,
    sponsorships_today: u32,
) -> (Decision, bool) {
    let resource =
        Resource::Colleague { id: colleague.id.clone(), units: colleague.units.iter().map(|u| u.uf.clone()).collect() };
    let target = format!("sponsorship:{}", colleague.id);
    let principal = match principal_of(gate, ports, &auth.identity_id).await {
        Ok(principal) => principal,
        Err(e) => return (Decision { errors: vec![e], ..Default::default() }, false),
    };
    let now = crate::now();
    let context = PolicyContext { sponsorships_today, ..gate.context.context_of(caller, now) };
    let question =
        Question { principal: &principal, action: Action::Sponsor, resource: &resource, auth, target: Some(&target) };
    let decision = ask_in(gate, caller, &question, &context, now);
    let over_the_day = !decision.allowed && sponsorships_today > 0 && {
        let fresh = PolicyContext { sponsorships_today: 0, ..context };
        ask_in(gate, caller, &Question { target: None, ..question }, &fresh, now).allowed
    };
    (decision, over_the_day)
}

/// One decision in the request's context, timed and counted; audited under `target` when given.
fn ask(gate: &PolicyGate, caller: &Caller, question: &Question<'_>) -> Decision {
    let now = crate::now();
    let context = gate.context.context_of(caller, now);
    ask_in(gate, caller, question, &context, now)
}

/// [`ask`] in a given context.
fn ask_in(gate: &PolicyGate, caller: &Caller, q: &Question<'_>, context: &PolicyContext, now: i64) -> Decision {
    let started = std::time::Instant::now();
    let request = PolicyRequest {
        principal: q.principal,
        action: q.action,
        resource: q.resource,
        authentication: q.auth,
        context,
        now,
    };
    let decision = gate.engine.decide(&request);
    measure(q.action, &decision, started);
    if let Some(target) = q.target {
        audit_decision(gate, caller, q.principal, target, q.auth, context, &decision);
    }
    decision
}

/// `vigie_policy_decision_seconds` and `vigie_policy_decisions_total` for one decision.
fn measure(action: Action, decision: &Decision, started: std::time::Instant) {
    metrics::histogram!("vigie_policy_decision_seconds").record(started.elapsed().as_secs_f64());
    let result = if decision.allowed { "allow" } else { "deny" };
    metrics::counter!("vigie_policy_decisions_total", "action" => action.as_str(), "result" => result).increment(1);
}

/// One audit line per decision on a login: who, which client, how authenticated, the deciding
/// policies, and the MIE that would do when refused.
fn audit_decision(
    gate: &PolicyGate,
    caller: &Caller,
    principal: &Principal,
    client_id: &str,
    auth: &Authentication,
    context: &PolicyContext,
    decision: &Decision,
) {
    let asker = Asker { subject: &principal.id, mie: auth.mie.as_str(), acr: Some(auth.level.acr()) };
    audit_policy(gate, caller, &asker, client_id, context, decision);
}

/// Who a decision was about, as its audit line names them.
struct Asker<'a> {
    subject: &'a str,
    mie: &'a str,
    acr: Option<&'a str>,
}

fn audit_policy(
    gate: &PolicyGate,
    caller: &Caller,
    asker: &Asker<'_>,
    target: &str,
    context: &PolicyContext,
    decision: &Decision,
) {
    let step_up: Vec<&str> = decision.step_up.iter().map(|m| m.as_str()).collect();
    // Cedar denies by default: a refusal that no forbid decided names no policy.
    let deciding = deciding(decision);
    let reason = format!(
        "{} by [{}]{}; mie {}, zone {}",
        if decision.allowed { "allowed" } else { "refused" },
        deciding,
        if decision.allowed { String::new() } else { format!("; would do: [{}]", step_up.join(", ")) },
        asker.mie,
        context.network_zone,
    );
    gate.audit.record(AuditEvent {
        kind: Some(AuditKind::PolicyDecision),
        outcome: Some(if decision.allowed { Outcome::Success } else { Outcome::Failure }),
        subject: Some(asker.subject.to_owned()),
        client_id: Some(target.to_owned()),
        method: Some(asker.mie.to_owned()),
        acr: asker.acr.map(str::to_owned),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        reason: Some(reason),
        object: Some(deciding),
        ..Default::default()
    });
}

/// The policies that decided, as audit lines name them: `default-deny` when none did.
pub fn deciding(decision: &Decision) -> String {
    if decision.policies.is_empty() { "default-deny".to_owned() } else { decision.policies.join(",") }
}

/// Asks the engine whether an admin API token may make a call needing `token.scope` (action
/// `administer`, the token as principal); counted, timed and audited like every decision, under
/// `admin-api:<scope>` with subject `token:<name>`.
pub fn decide_token(gate: &PolicyGate, caller: &Caller, token: &TokenPrincipal) -> Decision {
    let context = gate.context.context_of(caller, crate::now());
    let started = std::time::Instant::now();
    let decision = gate.engine.decide_token(token, &context);
    measure(Action::Administer, &decision, started);
    let subject = format!("token:{}", token.name);
    let asker = Asker { subject: &subject, mie: "api_token", acr: None };
    audit_policy(gate, caller, &asker, &format!("admin-api:{}", token.scope), &context, &decision);
    decision
}

/// The MIE a login page may offer for this client, before anyone has logged in.
pub fn offered_before_login(gate: &PolicyGate, caller: &Caller, client: &Client) -> Vec<Mie> {
    let principal = anonymous_principal();
    // Any authentication will do to ask: a refused one comes back with the MIE that would do.
    let probe = Authentication::hypothetical(principal.id.clone(), Mie::Sponsorship, vec![], 0);
    let d = decide_login(gate, caller, &principal, client, &probe, false);
    if d.allowed { vigie_core::policy::ALL_MIE.to_vec() } else { d.step_up }
}
