//! Matching identities without an idNat against the loaded RPPS index (or the Annuaire Santé's
//! FHIR API, by the same rules), and what a reload does to the confirmed ones (struck off, exercise ended, `derivation.on_struck_off`).
use std::collections::BTreeMap;

use vigie_core::directory::DirectoryError;
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::rpps::RppsEntry;

use super::config::OnStruckOff;
use super::extraction::normalise;
use super::fhir::Fhir;

/// Where the candidates come from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// The loaded extraction.
    Extraction,
    /// The FHIR API, asked for each identity; deleted Practitioners (`active = false`) are no one.
    Fhir(&'a Fhir),
}

impl Source<'_> {
    async fn by_name(&self, dir: &SqlDirectory, family: &str, given: &str) -> anyhow::Result<Vec<RppsEntry>> {
        let (family_norm, given_norm) = (normalise(family), normalise(given));
        match self {
            Source::Extraction => Ok(dir.rpps_by_name(&family_norm, &given_norm).await?),
            // The API's name search is "starts with": only the same names, once normalised, count.
            Source::Fhir(api) => Ok(api
                .by_name(family, given)
                .await?
                .into_iter()
                .filter(|p| p.active)
                .map(|p| p.entry())
                .filter(|e| e.family_norm == family_norm && e.given_norm == given_norm)
                .collect()),
        }
    }
}

/// A match found for an identity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// Directory id.
    pub identity_id: String,
    /// Matricule.
    pub matricule: String,
    /// Proposed idNat.
    pub idnat: String,
    /// `strong` or `weak`.
    pub strength: &'static str,
    /// Which keys agreed, which were missing.
    pub why: String,
}

/// Proposes matches for every identity without an idNat: a strong one when exactly one RPPS
/// professional has the same names, the same profession and no other birth date; weak ones (every
/// candidate) when several do, or when HR gives no profession. Replaces the pending proposals, only
/// once every identity was matched (a source failing half way changes nothing).
pub async fn propose(dir: &SqlDirectory, source: Source<'_>) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    for person in dir.people().await? {
        let identity = &person.identity;
        if identity.idnat.is_some() || person.status == "left" {
            continue;
        }
        let rows = source.by_name(dir, &identity.family_name, &identity.given_name).await?;
        let mut by_idnat: BTreeMap<String, Vec<RppsEntry>> = BTreeMap::new();
        for r in rows {
            by_idnat.entry(r.idnat.clone()).or_default().push(r);
        }
        let profession = crate::policy::profession_code_of(identity.metier.as_deref());
        let mut candidates = Vec::new();
        for (idnat, entries) in by_idnat {
            // A birth date both sides know and that differs rules the candidate out; the public
            // extraction carries none (annuaire-sante.md §5), so it is compared only when present.
            let born = entries.iter().find_map(|e| e.birth_date.clone());
            let birth = match (&identity.birth_date, &born) {
                (Some(a), Some(b)) if a != b => continue,
                (Some(_), Some(_)) => "birth date agrees",
                (None, Some(_)) => "birth date unknown to HR",
                (_, None) => "no birth date in the extraction",
            };
            let same_profession = |code: &str| entries.iter().any(|e| e.profession_code.as_deref() == Some(code));
            let (profession_ok, profession_why) = match profession {
                Some(code) if same_profession(code) => (true, format!("profession {code} agrees")),
                Some(code) => {
                    let theirs: Vec<&str> = entries.iter().filter_map(|e| e.profession_label.as_deref()).collect();
                    tracing::debug!(code, ?theirs, "derivation: a namesake of another profession");
                    continue;
                }
                None => {
                    (false, format!("no profession known for métier {:?}", identity.metier.as_deref().unwrap_or("")))
                }
            };
            candidates.push((idnat, profession_ok, format!("names agree; {profession_why}; {birth}")));
        }
        let several = candidates.len() > 1;
        for (idnat, profession_ok, why) in candidates {
            let strong = !several && profession_ok;
            let why = if several { format!("{why}; one of several candidates") } else { why };
            found.push(Found {
                identity_id: identity.id.clone(),
                matricule: identity.matricule.clone(),
                idnat,
                strength: if strong { "strong" } else { "weak" },
                why,
            });
        }
    }
    let rows: Vec<(String, String, String, String)> =
        found.iter().map(|f| (f.identity_id.clone(), f.idnat.clone(), f.strength.to_owned(), f.why.clone())).collect();
    let origin = match source {
        Source::Extraction => format!("extraction:{}", dir.rpps_last_load().await?.unwrap_or_default()),
        Source::Fhir(_) => "fhir".to_owned(),
    };
    dir.rpps_replace_proposals(&rows, &origin).await?;
    // A proposal HR rejected is not made again (`rpps_rejections`): what is returned is what waits.
    let pending = dir.rpps_proposals().await?;
    found.retain(|f| pending.iter().any(|p| p.identity_id == f.identity_id && p.idnat == f.idnat));
    Ok(found)
}

/// A confirmed professional whose standing changed at this load.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Directory id.
    pub identity_id: String,
    /// Matricule.
    pub matricule: String,
    /// idNat.
    pub idnat: String,
    /// Why they are struck off now; `None`: listed active again.
    pub struck_off: Option<String>,
    /// Whether the DMP is now withheld from them.
    pub dmp_withheld: bool,
}

/// After a load: refreshes what the RPPS says of every confirmed professional (profession,
/// category, specialty) and flags those it no longer lists, or lists with every activity ended;
/// under [`OnStruckOff::DenyDmp`] they lose VIHF issuance. Returns those whose standing changed.
pub async fn refresh(dir: &SqlDirectory, policy: OnStruckOff, loaded_on: &str) -> Result<Vec<Change>, DirectoryError> {
    let mut changes = Vec::new();
    for link in dir.rpps_links().await? {
        let entries = dir.rpps_by_idnat(&link.idnat).await?;
        let active = entries.iter().find(|e| !e.ended);
        let struck_off = match (entries.is_empty(), active) {
            (true, _) => Some(format!("absent from the RPPS extraction loaded on {loaded_on}")),
            (false, None) => {
                let end = entries.iter().filter_map(|e| e.activity_end.as_deref()).max().unwrap_or("?");
                Some(format!("every activity in the RPPS ended (last on {end})"))
            }
            (false, Some(_)) => None,
        };
        let withheld = match (&struck_off, policy) {
            (Some(why), OnStruckOff::DenyDmp) => Some(format!("struck off the RPPS: {why}")),
            _ => None,
        };
        dir.rpps_refresh_link(
            &link.identity_id,
            active.or(entries.first()),
            struck_off.as_deref(),
            withheld.as_deref(),
        )
        .await?;
        if struck_off != link.struck_off || withheld.is_some() != link.dmp_withheld.is_some() {
            changes.push(Change {
                identity_id: link.identity_id,
                matricule: link.matricule,
                idnat: link.idnat,
                struck_off,
                dmp_withheld: withheld.is_some(),
            });
        }
    }
    Ok(changes)
}
