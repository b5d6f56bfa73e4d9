//! What the admin console reads of people: the search HR starts from (name, login, matricule,
//! idNat; by prefix, accents and case ignored, by pages) and everything the directory holds on one
//! person (account, life-cycle columns, where the identity comes from, credentials, history).
use std::collections::HashMap;

use serde::Serialize;
use vigie_core::directory::{Directory, DirectoryError, Identity};
use vigie_core::names::fold;

use crate::SqlDirectory;
use crate::db::on_pool;
use crate::directory::failed;
use crate::people_search::prefix_range;

/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// Most people in one page of results.
pub const MAX_PAGE: usize = 100;

/// One person found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonHit {
    /// Directory id.
    pub id: String,
    /// HR matricule.
    pub matricule: String,
    /// Family name.
    pub family_name: String,
    /// Given name.
    pub given_name: String,
    /// idNat, when the person has one.
    pub idnat: Option<String>,
    /// Login name, when the person has an account.
    pub username: Option<String>,
    /// `active`, `suspended`, `left`…
    pub status: String,
}

/// One page of results and how many there are in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeoplePage {
    /// Everyone matching, over all pages.
    pub total: usize,
    /// Where this page starts in the whole list.
    pub offset: usize,
    /// This page, by family then given name.
    pub people: Vec<PersonHit>,
}

/// A FIDO2 key, as the console shows it (never its public key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeySummary {
    /// The name its holder gave it.
    pub name: String,
    /// When it was registered.
    pub created_at: String,
    /// When it last signed a login.
    pub last_used_at: Option<String>,
}

/// A sponsorship the person gave or received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SponsorshipSummary {
    /// `given` (the person sponsored someone) or `received`.
    pub direction: &'static str,
    /// The other person's directory id.
    pub other: String,
    /// The reason given.
    pub reason: String,
    /// When it was granted.
    pub created_at: String,
    /// Its end (Unix time).
    pub expires_unix: i64,
    /// Revoked before its end.
    pub revoked: bool,
}

/// A confirmed derivation of the idNat from the RPPS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RppsSummary {
    /// The idNat confirmed.
    pub idnat: String,
    /// Who confirmed it.
    pub confirmed_by: String,
    /// When.
    pub confirmed_at: String,
    /// The profession the RPPS gives.
    pub profession: Option<String>,
    /// Since when the RPPS says the person is struck off or no longer practising.
    pub struck_off: Option<String>,
}

/// Everything the directory holds on one person, secrets left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonRecord {
    /// The identity (names, matricule, idNat, units).
    pub identity: Identity,
    /// Login name, when the person has an account.
    pub username: Option<String>,
    /// `personal` or `generic` (shared).
    pub account_kind: Option<String>,
    /// The account is disabled.
    pub disabled: Option<bool>,
    /// A TOTP secret is enrolled (never the secret).
    pub totp_enrolled: bool,
    /// A password is set (never its hash).
    pub password_set: bool,
    /// `active`, `suspended`, `left`…
    pub status: String,
    /// Start of activity.
    pub start_at: Option<String>,
    /// End of activity.
    pub end_at: Option<String>,
    /// The responsible manager of a time-bounded person.
    pub sponsor: Option<String>,
    /// `staff`, `mission`, `intern`, `contractor`…
    pub person_kind: Option<String>,
    /// Where the identity comes from: `hr` (feed), `cli`, `ldap`, `scim`, `import`.
    pub sources: Vec<&'static str>,
    /// When the life cycle ended the person's access, if it did.
    pub lifecycle_ended: Option<String>,
    /// Administrative roles (`cards`, `fido2`…).
    pub admin_roles: Vec<String>,
    /// Roles from SCIM groups.
    pub group_roles: Vec<String>,
    /// FIDO2 keys.
    pub keys: Vec<KeySummary>,
    /// Sponsorships given and received.
    pub sponsorships: Vec<SponsorshipSummary>,
    /// The idNat's confirmed derivation from the RPPS.
    pub rpps: Option<RppsSummary>,
    /// When the identity was created and last changed.
    pub created_at: String,
    /// Last change of the identity row.
    pub updated_at: String,
}

type Row = (String, String, String, String, Option<String>, Option<String>, String);

/// The people whose search terms (`people_search`, migration 0015) start with the folded search
/// (`$1`..`$2`, names and login) or the search in capitals (`$3`..`$4`, matricule and idNat): each
/// a range of the index `people_search_terms_by_term`.
macro_rules! matching {
    () => {
        "SELECT t.identity_id FROM people_search_terms t WHERE (t.kind = 'n' AND t.term >= $1 AND t.term < $2) \
         OR (t.kind = 'c' AND t.term >= $3 AND t.term < $4)"
    };
}

/// How many people a search finds.
const COUNT_SQL: &str = concat!("SELECT COUNT(DISTINCT m.identity_id) FROM (", matching!(), ") m");

/// One page of the people found, by folded family then given name (`$5` of them from `$6`).
pub const SEARCH_SQL: &str = concat!(
    "SELECT i.id, i.matricule, i.family_name, i.given_name, i.idnat, a.username, i.employment_status \
     FROM people_search s JOIN identities i ON i.id = s.identity_id LEFT JOIN accounts a ON a.identity_id = i.id \
     WHERE s.identity_id IN (",
    matching!(),
    ") ORDER BY s.family, s.given, s.identity_id LIMIT $5 OFFSET $6"
);

impl SqlDirectory {
    /// People whose family name, given name (or both, either order), login, matricule or idNat
    /// starts with `query` (accents, case and separators ignored), by family then given name;
    /// `limit` of them from `offset`. An empty query finds nobody.
    pub async fn search_people(&self, query: &str, offset: usize, limit: usize) -> Result<PeoplePage, DirectoryError> {
        let query = query.trim();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(DirectoryError::Invalid(format!("the search is longer than {MAX_QUERY_CHARS} characters")));
        }
        let folded = fold(query);
        let empty = PeoplePage { total: 0, offset, people: Vec::new() };
        if folded.is_empty() {
            return Ok(empty);
        }
        let (name_low, name_high) = prefix_range(&folded);
        let (code_low, code_high) = prefix_range(&query.to_uppercase());
        let total = on_pool!(self.pool, |c| sqlx::query_scalar::<_, i64>(COUNT_SQL)
            .bind(&name_low)
            .bind(&name_high)
            .bind(&code_low)
            .bind(&code_high)
            .fetch_one(c)
            .await)
        .map_err(|e| failed("counting people", &e))?;
        let (limit, offset_i64) = (limit.min(MAX_PAGE) as i64, i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, Row>(SEARCH_SQL)
            .bind(&name_low)
            .bind(&name_high)
            .bind(&code_low)
            .bind(&code_high)
            .bind(limit)
            .bind(offset_i64)
            .fetch_all(c)
            .await)
        .map_err(|e| failed("searching people", &e))?;
        let people = rows
            .into_iter()
            .map(|r| PersonHit {
                id: r.0,
                matricule: r.1,
                family_name: r.2,
                given_name: r.3,
                idnat: r.4,
                username: r.5,
                status: r.6,
            })
            .collect();
        Ok(PeoplePage { total: usize::try_from(total).unwrap_or(0), people, ..empty })
    }

    /// Everything the directory holds on the person `id`, or `None`.
    pub async fn person(&self, id: &str) -> Result<Option<PersonRecord>, DirectoryError> {
        let Some(identity) = self.identity(id).await? else { return Ok(None) };
        type LifeRow = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            String,
        );
        let life = on_pool!(self.pool, |c| {
            sqlx::query_as::<_, LifeRow>(
            "SELECT employment_status, start_at, end_at, sponsor, person_kind, source, lifecycle_ended, directory_id, \
             created_at, updated_at FROM identities WHERE id = $1"
        )
        .bind(id)
        .fetch_one(c)
        .await
        })
        .map_err(|e| failed("reading a person", &e))?;
        let account = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, bool, bool, bool)>(
            "SELECT username, kind, disabled, totp_secret IS NOT NULL, password_hash IS NOT NULL \
             FROM accounts WHERE identity_id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading an account", &e))?;
        let admin_roles = on_pool!(self.pool, |c| sqlx::query_as::<_, (String,)>(
            "SELECT role FROM identity_roles WHERE identity_id = $1 ORDER BY role"
        )
        .bind(id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading roles", &e))?;
        let group_roles = on_pool!(self.pool, |c| sqlx::query_as::<_, (String,)>(
            "SELECT g.role FROM scim_groups g JOIN scim_group_members m ON m.group_id = g.id \
             WHERE m.identity_id = $1 AND g.role IS NOT NULL ORDER BY g.role"
        )
        .bind(id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading group roles", &e))?;
        let scim = on_pool!(self.pool, |c| sqlx::query_as::<_, (String,)>(
            "SELECT identity_id FROM scim_users WHERE identity_id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading SCIM", &e))?;
        let keys = on_pool!(self.pool, |c| {
            sqlx::query_as::<_, (String, String, Option<String>)>(
            "SELECT name, created_at, last_used_at FROM fido2_credentials WHERE identity_id = $1 ORDER BY created_at"
        )
        .bind(id)
        .fetch_all(c)
        .await
        })
        .map_err(|e| failed("reading keys", &e))?;
        let sponsorships = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String, String, i64, bool)>(
            "SELECT sponsor_id, sponsored_id, reason, created_at, expires_unix, revoked FROM sponsorships \
             WHERE sponsor_id = $1 OR sponsored_id = $1 ORDER BY created_unix"
        )
        .bind(id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading sponsorships", &e))?;
        let rpps =
            on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(
                "SELECT idnat, confirmed_by, confirmed_at, profession_label, struck_off FROM rpps_links \
             WHERE identity_id = $1"
            )
            .bind(id)
            .fetch_optional(c)
            .await)
            .map_err(|e| failed("reading the RPPS link", &e))?;
        let (status, start_at, end_at, sponsor, person_kind, source, lifecycle_ended, directory_id, created, updated) =
            life;
        let mut sources = Vec::new();
        match source.as_deref() {
            Some("hr") => sources.push("hr"),
            Some("cli") => sources.push("cli"),
            _ => {}
        }
        if directory_id.is_some() {
            sources.push("ldap");
        }
        if scim.is_some() {
            sources.push("scim");
        }
        if sources.is_empty() {
            sources.push("import");
        }
        Ok(Some(PersonRecord {
            username: account.as_ref().map(|a| a.0.clone()),
            account_kind: account.as_ref().map(|a| a.1.clone()),
            disabled: account.as_ref().map(|a| a.2),
            totp_enrolled: account.as_ref().is_some_and(|a| a.3),
            password_set: account.as_ref().is_some_and(|a| a.4),
            identity,
            status,
            start_at,
            end_at,
            sponsor,
            person_kind,
            sources,
            lifecycle_ended,
            admin_roles: admin_roles.into_iter().map(|r| r.0).collect(),
            group_roles: group_roles.into_iter().map(|r| r.0).collect(),
            keys: keys
                .into_iter()
                .map(|(name, created_at, last_used_at)| KeySummary { name, created_at, last_used_at })
                .collect(),
            sponsorships: sponsorships
                .into_iter()
                .map(|(sponsor, sponsored, reason, created_at, expires_unix, revoked)| {
                    let (direction, other) = if sponsor == id { ("given", sponsored) } else { ("received", sponsor) };
                    SponsorshipSummary { direction, other, reason, created_at, expires_unix, revoked }
                })
                .collect(),
            rpps: rpps.map(|(idnat, confirmed_by, confirmed_at, profession, struck_off)| RppsSummary {
                idnat,
                confirmed_by,
                confirmed_at,
                profession,
                struck_off,
            }),
            created_at: created,
            updated_at: updated,
        }))
    }

    /// Display names of these identities (for sponsors and sponsorships), by id.
    pub async fn names_of(&self, ids: &[String]) -> Result<HashMap<String, String>, DirectoryError> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(i) = self.identity(id).await? {
                out.insert(id.clone(), format!("{} {}", i.given_name, i.family_name));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::people_search::{CODE, Entry, NAME};
    use vigie_core::names::fold;

    fn row(family: &str, given: &str, mat: &str, idnat: Option<&str>, user: Option<&str>) -> Entry {
        Entry {
            id: "id".into(),
            family: family.into(),
            given: given.into(),
            matricule: mat.into(),
            idnat: idnat.map(Into::into),
            username: user.map(Into::into),
        }
    }

    /// What `SEARCH_SQL` asks of the terms: one of the kind starts with the search.
    fn finds(q: &str, r: &Entry) -> bool {
        let (folded, upper) = (fold(q), q.to_uppercase());
        r.terms().iter().any(|(kind, t)| match *kind {
            NAME => t.starts_with(&folded),
            CODE => t.starts_with(&upper),
            _ => false,
        })
    }

    #[test]
    fn search_is_by_prefix_of_any_name_login_matricule_or_idnat_ignoring_accents_and_case() {
        let helene = row("Lefèvre-Dupont", "Hélène", "M0042", Some("810100000029"), Some("hlefevre"));
        for q in ["lefe", "LEFEVRE DU", "helene", "Hélène Lef", "lefevre-dupont helene", "hlef", "m004", "8101"] {
            assert!(finds(q, &helene), "{q} should find Hélène");
        }
        // A prefix, not a substring: "dupont" is inside the family name, not at its start.
        for q in ["dupont", "lene", "0042", "0000029", "efevre"] {
            assert!(!finds(q, &helene), "{q} should not find Hélène");
        }
        assert!(!finds("x", &row("Martin", "Paul", "M1", None, None)));
        // The matricule is compared in capitals, not folded: a separator is not dropped.
        assert!(!finds("m-004", &helene));
    }
}
