//! HR's decision on a derivation (docs/identity-lifecycle.md, "Derivation from the RPPS"): confirm
//! that an identity is a professional of the RPPS — the identity gets the idNat (ID token `idnat`
//! claim, VIHF) — or reject a proposal, never made again. The one path of `vigie rpps
//! confirm|reject`, the console's proposals page and `POST /admin/api/proposals/{id}/…`; each
//! surface audits the [`Decision`] with its operator ([`audit_event`]). Nothing here confirms on
//! its own: a proposal, strong or weak, waits for a person.
use vigie_core::IdNat;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::DirectoryError;
use vigie_directory_sql::SqlDirectory;

use super::config::DerivationConfig;
use super::fhir::Fhir;

/// What was decided, for the operator and the audit line.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decision {
    pub identity_id: String,
    pub matricule: String,
    #[serde(skip)]
    pub username: Option<String>,
    pub idnat: String,
    /// `confirmed` or `rejected`.
    pub decision: &'static str,
    /// The RPPS's names and profession of the idNat (confirmed only).
    pub rpps_names: Option<String>,
    pub profession: Option<String>,
    /// The proposal it answered: `strong proposal (fhir): names agree; …`, or that none was made.
    pub proposal: String,
}

/// Why a decision could not be made, in words the operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<DirectoryError> for DecisionError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Invalid(m) => DecisionError::Refused(m),
            DirectoryError::Unavailable(m) => DecisionError::Unavailable(m),
            fenced @ DirectoryError::Fenced { .. } => DecisionError::Unavailable(fenced.to_string()),
        }
    }
}

fn unavailable(e: anyhow::Error) -> DecisionError {
    DecisionError::Unavailable(format!("{e:#}"))
}

/// The identity `identity_id`'s matricule and login, or `NotFound`.
async fn who(dir: &SqlDirectory, identity_id: &str) -> Result<(String, Option<String>), DecisionError> {
    let person = dir.person(identity_id).await?.ok_or_else(|| {
        DecisionError::NotFound(format!(
            "there is no identity with id {:?}: list the proposals again",
            identity_id.chars().take(64).collect::<String>()
        ))
    })?;
    Ok((person.identity.matricule, person.username))
}

/// The pending proposal of `idnat` for the identity, described, if one was made.
async fn proposal_of(dir: &SqlDirectory, identity_id: &str, idnat: &str) -> Result<Option<String>, DecisionError> {
    Ok(dir.rpps_proposals().await?.into_iter().find(|p| p.identity_id == identity_id && p.idnat == idnat).map(|p| {
        format!("{} proposal ({}): {}", p.strength, p.source.as_deref().unwrap_or("source not recorded"), p.why)
    }))
}

/// HR confirms that the identity is the professional `idnat`. The idNat is looked up in the
/// loaded extraction, or in the FHIR API when the extraction does not list it and one is
/// configured (`derivation.fhir_url`); a proposal is not needed (HR's own check), but the one
/// answered is named in the decision.
pub async fn confirm(
    dir: &SqlDirectory,
    derivation: &DerivationConfig,
    identity_id: &str,
    idnat: &str,
    by: &str,
) -> Result<Decision, DecisionError> {
    let idnat = IdNat::parse(idnat).map_err(|e| {
        DecisionError::Refused(format!("{:?} is not an idNat_PS: {e}", idnat.chars().take(40).collect::<String>()))
    })?;
    let (matricule, username) = who(dir, identity_id).await?;
    let mut entries = dir.rpps_by_idnat(idnat.as_str()).await?;
    if entries.is_empty()
        && let Some(api) = Fhir::from_config(derivation).map_err(unavailable)?
    {
        entries = api
            .by_identifier(idnat.as_str())
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|p| p.active && p.idnat == idnat.as_str())
            .map(|p| p.entry())
            .collect();
        if entries.is_empty() {
            return Err(DecisionError::NotFound(format!(
                "{idnat} is not in the Annuaire Santé: check the idNat (`vigie rpps lookup`)"
            )));
        }
    }
    let entry = entries.iter().find(|e| !e.ended).or(entries.first()).ok_or_else(|| {
        DecisionError::NotFound(format!(
            "{idnat} is not in the loaded RPPS extraction: load a current one (`vigie rpps load`), then confirm"
        ))
    })?;
    let proposal = proposal_of(dir, identity_id, idnat.as_str())
        .await?
        .unwrap_or_else(|| "not proposed: confirmed by HR's own check".into());
    dir.rpps_confirm(identity_id, &idnat, by, entry).await?;
    Ok(Decision {
        identity_id: identity_id.to_owned(),
        matricule,
        username,
        idnat: idnat.as_str().to_owned(),
        decision: "confirmed",
        rpps_names: Some(format!("{} {}", entry.family_name, entry.given_name)),
        profession: entry.profession_label.clone(),
        proposal,
    })
}

/// HR rejects the proposal of `idnat` for the identity: it goes and is not proposed again.
pub async fn reject(dir: &SqlDirectory, identity_id: &str, idnat: &str, by: &str) -> Result<Decision, DecisionError> {
    let (matricule, username) = who(dir, identity_id).await?;
    let proposal = proposal_of(dir, identity_id, idnat).await?.ok_or_else(|| {
        DecisionError::NotFound(format!(
            "no pending proposal of {:?} for {matricule}: list the proposals again (`vigie rpps list`)",
            idnat.chars().take(40).collect::<String>()
        ))
    })?;
    if !dir.rpps_reject(identity_id, idnat, by).await? {
        return Err(DecisionError::NotFound(format!(
            "the proposal of {idnat} for {matricule} was just decided by someone else"
        )));
    }
    Ok(Decision {
        identity_id: identity_id.to_owned(),
        matricule,
        username,
        idnat: idnat.to_owned(),
        decision: "rejected",
        rpps_names: None,
        profession: None,
        proposal,
    })
}

/// The audit line of a decision made by `actor` (the surface adds where the call came from).
pub fn audit_event(d: &Decision, actor: &str) -> AuditEvent {
    let reason = match d.decision {
        "confirmed" => format!("idNat derived from the RPPS, confirmed ({})", d.proposal),
        _ => format!("RPPS proposal rejected ({})", d.proposal),
    };
    AuditEvent {
        kind: Some(AuditKind::Lifecycle),
        outcome: Some(Outcome::Success),
        subject: Some(d.identity_id.clone()),
        username: d.username.clone(),
        idnat: (d.decision == "confirmed").then(|| d.idnat.clone()),
        actor: Some(actor.to_owned()),
        object: Some(format!("derivation:{}", d.matricule)),
        reason: Some(reason),
        ..Default::default()
    }
}
