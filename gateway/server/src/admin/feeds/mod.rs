//! The console's feeds and derivation proposals (issue 17): the HR feed's recorded runs (counts,
//! diff, error lines) and the RPPS proposals HR confirms or rejects — the page `/admin/feeds`
//! ([`page`]), its JSON API ([`api`]), the CLI (`vigie feeds`, `vigie rpps confirm|reject`).
//! Who gets in: `admin::auth` (roles, scopes `feeds:read` / `proposals:write`, the `administer`
//! policy), as for the cards and people.
pub mod api;
pub mod page;

use actix_web::web;
use serde::Serialize;

use crate::admin::actions::ActionError;
use crate::admin::auth::{Admin, Gate};
use crate::derivation::confirm::{self, Decision, DecisionError};

/// The console's routes: the page, its form, the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(page::PATH, web::get().to(page::get))
        .route("/admin/feeds/login", crate::admin::shell::login_route(page::PATH))
        .route("/admin/feeds/proposals/decide", web::post().to(page::decide))
        .route("/admin/api/feeds", web::get().to(api::runs))
        .route("/admin/api/feeds/{id}", web::get().to(api::run))
        .route("/admin/api/proposals", web::get().to(api::proposals))
        .route("/admin/api/proposals/{id}/confirm", web::post().to(api::confirm))
        .route("/admin/api/proposals/{id}/reject", web::post().to(api::reject));
}

/// A pending proposal with its evidence, as the page and the API show it.
#[derive(Clone, Debug, Serialize)]
pub struct ProposalView {
    /// `<identity id>_<idNat>`: what confirm and reject name.
    pub id: String,
    pub identity_id: String,
    pub matricule: String,
    /// HR's side: names, birth date, métier.
    pub family_name: String,
    pub given_name: String,
    pub birth_date: Option<String>,
    pub metier: Option<String>,
    /// The RPPS's side.
    pub idnat: String,
    pub rpps_family_name: Option<String>,
    pub rpps_given_name: Option<String>,
    pub rpps_birth_date: Option<String>,
    pub rpps_profession: Option<String>,
    /// `strong` or `weak`, which keys agreed, and why weak when weak.
    pub strength: String,
    pub why: String,
    pub weak_because: Option<String>,
    /// `extraction:<file>` or `fhir`.
    pub source: Option<String>,
    pub proposed_at: String,
}

/// The id a proposal goes by.
pub fn proposal_id(identity_id: &str, idnat: &str) -> String {
    format!("{identity_id}_{idnat}")
}

/// The identity id and idNat of a proposal id (an idNat never holds `_`).
pub fn split_id(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('_').filter(|(a, b)| !a.is_empty() && !b.is_empty())
}

/// Why a weak match is weak, for a person: the keys that did not decide it.
fn weak_because(why: &str) -> String {
    let mut reasons = Vec::new();
    if why.contains("one of several candidates") {
        reasons.push("several professionals of the RPPS share these names");
    }
    if why.contains("no profession known") {
        reasons.push("HR's métier gives no profession to compare");
    }
    if reasons.is_empty() {
        reasons.push("not every key agreed");
    }
    format!("{}: HR must check the evidence; a weak match is never confirmed on its own", reasons.join("; "))
}

/// The pending proposals with their evidence, by matricule.
pub async fn proposals(gate: &Gate<'_>) -> Result<Vec<ProposalView>, ActionError> {
    let dir = &gate.ports.lifecycle;
    let mut out = Vec::new();
    for p in dir.rpps_proposals().await? {
        let person = dir.person(&p.identity_id).await?;
        let rpps = dir.rpps_by_idnat(&p.idnat).await?;
        let first = rpps.iter().find(|e| !e.ended).or(rpps.first());
        let identity = person.as_ref().map(|p| &p.identity);
        out.push(ProposalView {
            id: proposal_id(&p.identity_id, &p.idnat),
            family_name: identity.map(|i| i.family_name.clone()).unwrap_or_default(),
            given_name: identity.map(|i| i.given_name.clone()).unwrap_or_default(),
            birth_date: identity.and_then(|i| i.birth_date.clone()),
            metier: identity.and_then(|i| i.metier.clone()),
            rpps_family_name: first.map(|e| e.family_name.clone()),
            rpps_given_name: first.map(|e| e.given_name.clone()),
            rpps_birth_date: first.and_then(|e| e.birth_date.clone()),
            rpps_profession: first.and_then(|e| e.profession_label.clone()),
            weak_because: (p.strength == "weak").then(|| weak_because(&p.why)),
            identity_id: p.identity_id,
            matricule: p.matricule,
            idnat: p.idnat,
            strength: p.strength,
            why: p.why,
            source: p.source,
            proposed_at: p.proposed_at,
        });
    }
    Ok(out)
}

impl From<DecisionError> for ActionError {
    fn from(e: DecisionError) -> Self {
        match e {
            DecisionError::NotFound(m) => ActionError::NotFound(m),
            DecisionError::Refused(m) => ActionError::Refused(m),
            DecisionError::Unavailable(m) => ActionError::Unavailable(m),
        }
    }
}

/// Confirms (`confirm` true) or rejects the proposal `id` for `admin`; audited with the operator
/// and where the call came from; a confirmation tells the replicas (the idNat is in the next ID
/// token at once).
pub async fn decide(gate: &Gate<'_>, admin: &Admin, id: &str, confirm: bool) -> Result<Decision, ActionError> {
    let (identity_id, idnat) = split_id(id).ok_or_else(|| {
        ActionError::NotFound(format!(
            "{:?} is not a proposal id (`<identity id>_<idNat>`): list the proposals again",
            id.chars().take(64).collect::<String>()
        ))
    })?;
    let dir = &gate.ports.lifecycle;
    // The console decides on proposals only (HR's own check without one is `vigie rpps confirm`).
    if !dir.rpps_proposals().await?.iter().any(|p| p.identity_id == identity_id && p.idnat == idnat) {
        return Err(ActionError::NotFound(format!(
            "no pending proposal {:?}: it was decided already; list the proposals again",
            id.chars().take(64).collect::<String>()
        )));
    }
    let d = if confirm {
        confirm::confirm(dir, &gate.config.derivation, identity_id, idnat, &admin.actor).await?
    } else {
        confirm::reject(dir, identity_id, idnat, &admin.actor).await?
    };
    let mut event = confirm::audit_event(&d, &admin.actor);
    event.ip = Some(gate.caller.ip.clone());
    event.user_agent = gate.caller.user_agent.clone();
    event.request_id = Some(gate.caller.request_id.clone());
    gate.audit.record(event);
    if confirm && let Err(e) = crate::policy::view::signal_change(gate.ports.store.as_ref()).await {
        tracing::warn!(error = %e, "the other replicas could not be told at once; they see the idNat at their next read");
    }
    Ok(d)
}
