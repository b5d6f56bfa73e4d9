//! A person's recent logins and policy refusals on the console (issue 17, "a person's page"):
//! read from the audit trail by [`crate::audit::search::search`] with the person's directory id and
//! idNat, as `GET /admin/audit` reads it, and that reading itself audited as a search is. When the
//! trail cannot be read the page shows the rest and says so.
use serde::Serialize;
use vigie_core::audit::{AuditKind, Outcome};
use vigie_directory_sql::people::PersonRecord;

use crate::admin::auth::Gate;
use crate::audit::search::{Query, Record};

/// How many entries the page and the API show.
pub const SHOWN: usize = 10;
/// Records read to find them: a login writes a policy decision beside it, which is left out when
/// it allowed.
const READ: usize = 100;

/// One login or refusal, as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecentEntry {
    /// When (RFC 3339).
    pub at: String,
    /// `login` (a login with any MIE), `policy_refused` (the policy said no, or asked for more:
    /// `reason` names what would do), `refused` (another refusal of a request of theirs).
    pub what: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// The application.
    pub client: Option<String>,
    /// The MIE used (`cps`, `fido2`, `totp`…).
    pub mie: Option<String>,
    /// The level reached (`acr`).
    pub level: Option<String>,
    /// Why, for a refusal or a failed login.
    pub reason: Option<String>,
    /// The request id, to find the request in the logs.
    pub request_id: Option<String>,
}

/// The history's state: the entries, or that the trail cannot be read now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Recent {
    /// Newest first, at most [`SHOWN`].
    Available { entries: Vec<RecentEntry> },
    /// The trail could not be read (the log says why).
    Unavailable,
}

/// What of a trail record the console shows, or `None` for what is not a login or a refusal.
fn entry(r: &Record) -> Option<RecentEntry> {
    let e = &r.event;
    let failed = e.outcome == Some(Outcome::Failure);
    let what = match e.kind? {
        AuditKind::Login => "login",
        AuditKind::PolicyDecision if failed => "policy_refused",
        AuditKind::Refused => "refused",
        _ => return None,
    };
    Some(RecentEntry {
        at: e.at.clone(),
        what,
        outcome: if failed { "failure" } else { "success" },
        client: e.client_id.clone(),
        mie: e.method.clone(),
        level: e.acr.clone(),
        reason: e.reason.clone().filter(|_| failed),
        request_id: e.request_id.clone(),
    })
}

/// The person's recent logins and refusals, the reading audited with the operator `actor`.
pub async fn recent(gate: &Gate<'_>, actor: &str, person: &PersonRecord) -> Recent {
    let mut persons = vec![person.identity.id.clone()];
    persons.extend(person.identity.idnat.as_ref().map(|i| i.as_str().to_owned()));
    let query = Query {
        persons,
        kinds: vec![AuditKind::Login, AuditKind::PolicyDecision, AuditKind::Refused],
        limit: READ,
        ..Default::default()
    };
    match crate::audit::api::searched_by(gate, actor, &query).await {
        Ok(page) => Recent::Available { entries: page.records.iter().filter_map(entry).take(SHOWN).collect() },
        Err(e) => {
            // Files, hosts or SQL in the cause: the log has it, the page says the history is missing.
            tracing::error!(error = %format!("{e:#}"), "people console: the audit trail cannot be read");
            Recent::Unavailable
        }
    }
}
