//! What the gateway gives the policy engine: the principal (from the directory), the client as a
//! resource, the context (network zone from configured CIDRs, local hour, degraded mode, the
//! transition period), and one audited way to ask.
use std::net::IpAddr;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::policy::{
    Action, ClientResource, Decision, PolicyContext, PolicyRequest, Principal, Resource, TokenPrincipal,
};
use vigie_core::{Authentication, Mie};

use crate::state::{AppState, Client, Ports};
use crate::web::http::Caller;

pub use crate::config::check::{Cidr, parse_date};

/// The configured zones, parsed once (the configuration was validated: every CIDR parses).
pub fn parse_zones(config: &crate::config::PolicyConfig) -> Vec<(String, Vec<Cidr>)> {
    config
        .zones
        .iter()
        .map(|(z, cidrs)| (z.clone(), cidrs.iter().filter_map(|c| Cidr::parse(c).ok()).collect()))
        .collect()
}

/// The network zone of an address: the first configured zone that holds it, else `external`.
pub fn zone_of(state: &AppState, ip: &str) -> String {
    let Ok(ip) = ip.parse::<IpAddr>() else { return "external".into() };
    state
        .policy
        .zones
        .iter()
        .find(|(_, cidrs)| cidrs.iter().any(|c| c.contains(ip)))
        .map(|(zone, _)| zone.clone())
        .unwrap_or_else(|| "external".into())
}

/// The context of a decision for this caller, now.
pub fn context_of(state: &AppState, caller: &Caller, now: i64) -> PolicyContext {
    let cfg = &state.config.policy;
    let local = now + i64::from(cfg.utc_offset_minutes) * 60;
    let hour = u8::try_from(local.rem_euclid(86_400) / 3600).unwrap_or(0);
    let today = time::OffsetDateTime::from_unix_timestamp(local).map(|t| t.date()).ok();
    let password_totp_transition = cfg
        .password_totp_transition_until
        .as_deref()
        .and_then(parse_date)
        .zip(today)
        .is_some_and(|(end, today)| today < end);
    // Degraded mode: PSC or the external link (`health.external`) is down; read from the breakers, no I/O.
    PolicyContext {
        degraded: state.upstreams.health.degraded(),
        network_zone: zone_of(state, &caller.ip),
        hour,
        password_totp_transition,
        sponsorships_today: 0,
    }
}

/// The broad category of a métier (the HR label), for policies.
fn category_of(metier: Option<&str>) -> &'static str {
    let m = metier.map(fold).unwrap_or_default();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["medecin", "chirurgien", "interne", "sage-femme", "sage femme", "dentiste"]) {
        "medical"
    } else if has(&["pharmacien", "preparateur"]) {
        "pharmacy"
    } else if has(&["infirm", "kinesi", "aide-soignant", "aide soignant", "manipulateur", "orthophon", "psycho"]) {
        "paramedical"
    } else if has(&["secretaire", "administratif", "adjoint", "accueil", "cadre administratif"]) {
        "administrative"
    } else if m.is_empty() {
        "unknown"
    } else {
        "technical"
    }
}

/// The profession code of the ANS nomenclature (TRE_G15) for a métier, when it is a
/// profession of the RPPS.
pub fn profession_code_of(metier: Option<&str>) -> Option<&'static str> {
    let m = metier.map(fold)?;
    let code = if m.contains("medecin") || m.contains("interne") {
        "10"
    } else if m.contains("pharmacien") {
        "21"
    } else if m.contains("dentiste") {
        "40"
    } else if m.contains("sage-femme") || m.contains("sage femme") {
        "50"
    } else if m.contains("infirm") {
        "60"
    } else if m.contains("kinesi") {
        "70"
    } else {
        return None;
    };
    Some(code)
}

fn fold(s: &str) -> String {
    vigie_core::names::fold(s).to_lowercase()
}

/// The principal for an identity: directory attributes and roles. Principals are reused for
/// `directory.identity_cache_secs` like identities: the directory (identity, roles, account kind)
/// is read at most once per identity and period on the authorize path, not at every SSO round
/// trip; a role granted or an HR change takes effect within that period.
pub async fn principal_of(state: &AppState, identity_id: &str) -> Result<Principal, String> {
    let ttl = std::time::Duration::from_secs(state.config.directory.identity_cache_secs);
    if let Some(hit) = state.policy.principals.get(identity_id, ttl) {
        return Ok(hit);
    }
    let principal = read_principal(state, identity_id).await?;
    state.policy.principals.put(identity_id, principal.clone(), ttl);
    Ok(principal)
}

/// The principal for an identity read now from the directory, not from the cache (which it
/// refreshes): for decisions that must see a status change at once (a refresh, a token exchange).
pub async fn current_principal(state: &AppState, identity_id: &str) -> Result<Principal, String> {
    let identity =
        state.policy.identities.reload(state.ports.directory.as_ref(), identity_id).await.map_err(|e| e.to_string())?;
    let principal = principal_from(&state.ports, identity_id, identity).await?;
    let ttl = std::time::Duration::from_secs(state.config.directory.identity_cache_secs);
    state.policy.principals.put(identity_id, principal.clone(), ttl);
    Ok(principal)
}

async fn read_principal(state: &AppState, identity_id: &str) -> Result<Principal, String> {
    let identity =
        state.policy.identities.get(state.ports.directory.as_ref(), identity_id).await.map_err(|e| e.to_string())?;
    principal_from(&state.ports, identity_id, identity).await
}

async fn principal_from(
    ports: &Ports,
    identity_id: &str,
    identity: Option<std::sync::Arc<vigie_core::directory::Identity>>,
) -> Result<Principal, String> {
    let roles = ports.roles.roles_of(identity_id).await.map_err(|e| e.to_string())?;
    let Some(identity) = identity else {
        return Ok(Principal {
            id: identity_id.to_owned(),
            category: "unknown".into(),
            employment_status: "left".into(),
            ..Default::default()
        });
    };
    let metier = identity.metier.as_deref();
    let (account_kind, employment_status) =
        ports.policy_attributes.policy_attributes(identity_id).await.map_err(|e| e.to_string())?;
    Ok(Principal {
        id: identity.id.clone(),
        profession_code: profession_code_of(metier).map(String::from),
        category: category_of(metier).into(),
        roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
        units: identity.units.iter().map(|u| u.uf.clone()).collect(),
        has_idnat: identity.idnat.is_some(),
        employment_status,
        account_kind,
    })
}

/// Someone not logged in yet: what the login page may offer is what would do for a personal,
/// active account of unknown profession.
pub fn anonymous_principal() -> Principal {
    Principal {
        id: "anonymous".into(),
        category: "unknown".into(),
        employment_status: "active".into(),
        has_idnat: true,
        ..Default::default()
    }
}

/// A client as a resource.
pub fn client_resource(client: &Client) -> Resource {
    Resource::Client(ClientResource {
        id: client.config.client_id.clone(),
        sensitive: client.config.sensitive,
        required_level: client.config.min_level(),
        audience: client.config.audience.clone(),
    })
}

/// Asks the engine whether this authentication may log in to `client`; the decision is counted
/// and, when `audit` is set, audited with the ids of the policies that decided.
pub fn decide_login(
    state: &AppState,
    caller: &Caller,
    principal: &Principal,
    client: &Client,
    auth: &Authentication,
    audit: bool,
) -> Decision {
    let target = audit.then_some(client.config.client_id.as_str());
    ask(state, caller, principal, Action::LoginToClient, &client_resource(client), auth, target)
}

/// Asks the engine whether this session may do a system action (`administer`, `enrol_mie`) on
/// Vigie itself; counted and audited under `target`. A directory failure refuses.
pub async fn decide_system(
    state: &AppState,
    caller: &Caller,
    action: Action,
    auth: &Authentication,
    target: &str,
) -> Decision {
    match principal_of(state, &auth.identity_id).await {
        Ok(principal) => ask(state, caller, &principal, action, &Resource::System, auth, Some(target)),
        Err(e) => Decision { errors: vec![e], ..Default::default() },
    }
}

/// Asks the engine whether this authentication may reach the DMP (action `access_dmp`: a VIHF, a
/// relayed SOAP call); counted and audited under `client_id` (the DPI asking). A directory
/// failure refuses.
pub async fn decide_dmp(state: &AppState, caller: &Caller, auth: &Authentication, client_id: &str) -> Decision {
    match principal_of(state, &auth.identity_id).await {
        Ok(principal) => ask(state, caller, &principal, Action::AccessDmp, &Resource::Dmp, auth, Some(client_id)),
        Err(e) => Decision { errors: vec![e], ..Default::default() },
    }
}

/// Asks the engine whether this authentication may sponsor `colleague` (action `sponsor`, the
/// colleague as the resource with their units), having sponsored `sponsorships_today`
/// colleagues in the last 24 hours; counted and audited under `sponsorship:<colleague id>`. A
/// directory failure refuses. Also says whether the day's count is what refused: the same
/// question with no sponsorship today would have been allowed (asked again, not audited).
pub async fn decide_sponsor(
    state: &AppState,
    caller: &Caller,
    auth: &Authentication,
    colleague: &vigie_core::directory::Identity,
    sponsorships_today: u32,
) -> (Decision, bool) {
    let resource =
        Resource::Colleague { id: colleague.id.clone(), units: colleague.units.iter().map(|u| u.uf.clone()).collect() };
    let target = format!("sponsorship:{}", colleague.id);
    let principal = match principal_of(state, &auth.identity_id).await {
        Ok(principal) => principal,
        Err(e) => return (Decision { errors: vec![e], ..Default::default() }, false),
    };
    let now = crate::now();
    let context = PolicyContext { sponsorships_today, ..context_of(state, caller, now) };
    let decision = ask_in(state, caller, &principal, Action::Sponsor, &resource, auth, Some(&target), &context, now);
    let over_the_day = !decision.allowed && sponsorships_today > 0 && {
        let fresh = PolicyContext { sponsorships_today: 0, ..context };
        ask_in(state, caller, &principal, Action::Sponsor, &resource, auth, None, &fresh, now).allowed
    };
    (decision, over_the_day)
}

/// One decision in the request's context, timed and counted; audited under `target` when given.
fn ask(
    state: &AppState,
    caller: &Caller,
    principal: &Principal,
    action: Action,
    resource: &Resource,
    auth: &Authentication,
    target: Option<&str>,
) -> Decision {
    let now = crate::now();
    let context = context_of(state, caller, now);
    ask_in(state, caller, principal, action, resource, auth, target, &context, now)
}

/// [`ask`] in a given context.
#[allow(clippy::too_many_arguments)] // the parts of one policy request, and where to audit it
fn ask_in(
    state: &AppState,
    caller: &Caller,
    principal: &Principal,
    action: Action,
    resource: &Resource,
    auth: &Authentication,
    target: Option<&str>,
    context: &PolicyContext,
    now: i64,
) -> Decision {
    let started = std::time::Instant::now();
    let decision =
        state.policy.engine.decide(&PolicyRequest { principal, action, resource, authentication: auth, context, now });
    measure(action, &decision, started);
    if let Some(target) = target {
        audit_decision(state, caller, principal, target, auth, context, &decision);
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
pub fn audit_decision(
    state: &AppState,
    caller: &Caller,
    principal: &Principal,
    client_id: &str,
    auth: &Authentication,
    context: &PolicyContext,
    decision: &Decision,
) {
    let asker = Asker { subject: &principal.id, mie: auth.mie.as_str(), acr: Some(auth.level.acr()) };
    audit_policy(state, caller, &asker, client_id, context, decision);
}

/// Who a decision was about, as its audit line names them.
struct Asker<'a> {
    subject: &'a str,
    mie: &'a str,
    acr: Option<&'a str>,
}

fn audit_policy(
    state: &AppState,
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
    state.audit(AuditEvent {
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
pub fn decide_token(state: &AppState, caller: &Caller, token: &TokenPrincipal) -> Decision {
    let context = context_of(state, caller, crate::now());
    let started = std::time::Instant::now();
    let decision = state.policy.engine.decide_token(token, &context);
    measure(Action::Administer, &decision, started);
    let subject = format!("token:{}", token.name);
    let asker = Asker { subject: &subject, mie: "api_token", acr: None };
    audit_policy(state, caller, &asker, &format!("admin-api:{}", token.scope), &context, &decision);
    decision
}

/// The MIE a login page may offer for this client, before anyone has logged in.
pub fn offered_before_login(state: &AppState, caller: &Caller, client: &Client) -> Vec<Mie> {
    let principal = anonymous_principal();
    // Any authentication will do to ask: a refused one comes back with the MIE that would do.
    let probe = Authentication::new(principal.id.clone(), Mie::Sponsorship, vec![], 0);
    let d = decide_login(state, caller, &principal, client, &probe, false);
    if d.allowed { vigie_core::policy::ALL_MIE.to_vec() } else { d.step_up }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metiers_map_to_categories_and_profession_codes() {
        assert_eq!(category_of(Some("Médecin")), "medical");
        assert_eq!(profession_code_of(Some("Médecin")), Some("10"));
        assert_eq!(category_of(Some("Infirmière")), "paramedical");
        assert_eq!(profession_code_of(Some("Infirmier")), Some("60"));
        assert_eq!(category_of(Some("Secrétaire médicale")), "administrative");
        assert_eq!(profession_code_of(Some("Secrétaire médicale")), None);
        assert_eq!(category_of(None), "unknown");
    }
}
