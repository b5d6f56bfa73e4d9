//! The idNat derived from the RPPS on the directory database (migration `0013_derivation.sql`):
//! the loaded extraction as an index, the match proposals HR confirms, and the confirmed links a
//! reload refreshes or flags as struck off.
use vigie_core::IdNat;
use vigie_core::directory::DirectoryError;

use crate::SqlDirectory;
use crate::db::{Tx, on_pool, on_tx};
use crate::directory::{failed, now};

/// One line of the extraction (a professional × one activity), as the index keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RppsEntry {
    /// `Identification nationale PP` (idNat_PS), kept as given (an opaque identifier).
    pub idnat: String,
    /// `Identifiant PP` (the RPPS or ADELI number).
    pub rpps: String,
    /// `Nom d'exercice`.
    pub family_name: String,
    /// `Prénom d'exercice`.
    pub given_name: String,
    /// The family name normalised for matching.
    pub family_norm: String,
    /// The given name normalised for matching.
    pub given_norm: String,
    /// Birth date (`YYYY-MM-DD`): only the restricted extraction has one.
    pub birth_date: Option<String>,
    /// `Code profession` (TRE_G15, e.g. `10` Médecin).
    pub profession_code: Option<String>,
    /// `Libellé profession`.
    pub profession_label: Option<String>,
    /// `Code catégorie professionnelle` (TRE_R09).
    pub category_code: Option<String>,
    /// `Libellé catégorie professionnelle`.
    pub category_label: Option<String>,
    /// `Code savoir-faire` (specialty, e.g. `SM49`).
    pub savoir_faire_code: Option<String>,
    /// `Libellé savoir-faire`.
    pub savoir_faire_label: Option<String>,
    /// Start of the activity (`YYYY-MM-DD`), when the file has such a column.
    pub activity_start: Option<String>,
    /// End of the activity (`YYYY-MM-DD`), when the file has such a column.
    pub activity_end: Option<String>,
    /// The file says this activity is over (an end date passed at load time).
    pub ended: bool,
    /// Line of the file (1 is the header).
    pub line_no: u64,
}

/// A match waiting for HR (`vigie rpps list`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Proposal {
    /// Directory id of the identity.
    pub identity_id: String,
    /// Its matricule (for the operator).
    pub matricule: String,
    /// The proposed idNat.
    pub idnat: String,
    /// `strong` (one candidate, every key agrees) or `weak` (never applied without HR).
    pub strength: String,
    /// Which keys agreed or were missing.
    pub why: String,
    /// Where it came from: `extraction:<file>` or `fhir`; `None` before migration 0015.
    pub source: Option<String>,
    /// When it was proposed (RFC 3339).
    pub proposed_at: String,
}

/// A confirmed derivation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// Directory id of the identity.
    pub identity_id: String,
    /// Its matricule.
    pub matricule: String,
    /// The idNat HR confirmed.
    pub idnat: String,
    /// Who confirmed it.
    pub confirmed_by: String,
    /// Profession code the RPPS last gave.
    pub profession_code: Option<String>,
    /// Specialty (savoir-faire) code the RPPS last gave.
    pub savoir_faire_code: Option<String>,
    /// Why the last load flagged the person (absent, or exercise ended); `None` while active.
    pub struck_off: Option<String>,
    /// Set when the policy withdrew the DMP from them.
    pub dmp_withheld: Option<String>,
}

/// A load in progress: every row goes into one transaction that first emptied the index, so
/// readers see the previous load until [`RppsLoad::finish`] commits, and a failed load leaves
/// it untouched.
pub struct RppsLoad {
    tx: Tx,
    rows: u64,
}

/// A row of `rpps_index` as read (named columns: more than a tuple row can hold).
#[derive(sqlx::FromRow)]
struct EntryRow {
    idnat: String,
    rpps: String,
    family_name: String,
    given_name: String,
    family_norm: String,
    given_norm: String,
    birth_date: Option<String>,
    profession_code: Option<String>,
    profession_label: Option<String>,
    category_code: Option<String>,
    category_label: Option<String>,
    savoir_faire_code: Option<String>,
    savoir_faire_label: Option<String>,
    activity_start: Option<String>,
    activity_end: Option<String>,
    ended: bool,
    line_no: i64,
}

/// The columns of [`EntryRow`] (queries must be literals: `concat!`).
macro_rules! entry_columns {
    () => {
        "idnat, rpps, family_name, given_name, family_norm, given_norm, birth_date, profession_code, \
         profession_label, category_code, category_label, savoir_faire_code, savoir_faire_label, activity_start, \
         activity_end, ended, line_no"
    };
}

fn entry(r: EntryRow) -> RppsEntry {
    RppsEntry {
        idnat: r.idnat,
        rpps: r.rpps,
        family_name: r.family_name,
        given_name: r.given_name,
        family_norm: r.family_norm,
        given_norm: r.given_norm,
        birth_date: r.birth_date,
        profession_code: r.profession_code,
        profession_label: r.profession_label,
        category_code: r.category_code,
        category_label: r.category_label,
        savoir_faire_code: r.savoir_faire_code,
        savoir_faire_label: r.savoir_faire_label,
        activity_start: r.activity_start,
        activity_end: r.activity_end,
        ended: r.ended,
        line_no: u64::try_from(r.line_no).unwrap_or_default(),
    }
}

impl RppsLoad {
    /// Adds one line of the extraction.
    pub async fn add(&mut self, e: &RppsEntry) -> Result<(), DirectoryError> {
        let line = i64::try_from(e.line_no).unwrap_or(i64::MAX);
        on_tx!(self.tx, |c| sqlx::query(concat!(
            "INSERT INTO rpps_index (",
            entry_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&e.idnat)
        .bind(&e.rpps)
        .bind(&e.family_name)
        .bind(&e.given_name)
        .bind(&e.family_norm)
        .bind(&e.given_norm)
        .bind(&e.birth_date)
        .bind(&e.profession_code)
        .bind(&e.profession_label)
        .bind(&e.category_code)
        .bind(&e.category_label)
        .bind(&e.savoir_faire_code)
        .bind(&e.savoir_faire_label)
        .bind(&e.activity_start)
        .bind(&e.activity_end)
        .bind(e.ended)
        .bind(line)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|err| failed("loading the RPPS extraction", &err))?;
        self.rows += 1;
        Ok(())
    }

    /// Commits the load: the index is now this file's; returns the rows loaded.
    pub async fn finish(mut self, file: &str, encoding: &str) -> Result<u64, DirectoryError> {
        let id = uuid::Uuid::new_v4().to_string();
        let at = now()?;
        let rows = i64::try_from(self.rows).unwrap_or(i64::MAX);
        on_tx!(self.tx, |c| sqlx::query(
            "INSERT INTO rpps_loads (id, file, encoding, lines, loaded_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(&id)
        .bind(file)
        .bind(encoding)
        .bind(rows)
        .bind(&at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("recording the RPPS load", &e))?;
        self.tx.commit().await.map_err(|e| failed("committing the RPPS load", &e))?;
        Ok(self.rows)
    }

    /// Gives the load up: the previous index stays.
    pub async fn abort(self) {
        let _ = self.tx.rollback().await;
    }
}

impl SqlDirectory {
    /// Starts replacing the RPPS index (see [`RppsLoad`]).
    pub async fn rpps_load(&self) -> Result<RppsLoad, DirectoryError> {
        let mut tx = self.begin_write().await?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM rpps_index").execute(&mut *c).await.map(|r| r.rows_affected()))
            .map_err(|e| failed("emptying the RPPS index", &e))?;
        Ok(RppsLoad { tx, rows: 0 })
    }

    /// Whether an extraction was ever loaded.
    pub async fn rpps_loaded(&self) -> Result<bool, DirectoryError> {
        let n =
            on_pool!(self.pool, |c| sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM rpps_loads").fetch_one(c).await)
                .map_err(|e| failed("reading the RPPS loads", &e))?;
        Ok(n.0 > 0)
    }

    /// The file of the last extraction loaded, if any: a proposal's source.
    pub async fn rpps_last_load(&self) -> Result<Option<String>, DirectoryError> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, (String,)>(
            "SELECT file FROM rpps_loads ORDER BY loaded_at DESC LIMIT 1"
        )
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading the RPPS loads", &e))?;
        Ok(row.map(|r| r.0))
    }

    /// Lines of the index with these normalised names.
    pub async fn rpps_by_name(&self, family_norm: &str, given_norm: &str) -> Result<Vec<RppsEntry>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, EntryRow>(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM rpps_index WHERE family_norm = $1 AND given_norm = $2 ORDER BY idnat, line_no"
        ))
        .bind(family_norm)
        .bind(given_norm)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("searching the RPPS index", &e))?;
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Lines of the index for this idNat (one per activity).
    pub async fn rpps_by_idnat(&self, idnat: &str) -> Result<Vec<RppsEntry>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, EntryRow>(concat!(
            "SELECT ",
            entry_columns!(),
            " FROM rpps_index WHERE idnat = $1 ORDER BY line_no"
        ))
        .bind(idnat)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("searching the RPPS index", &e))?;
        Ok(rows.into_iter().map(entry).collect())
    }

    /// Replaces the pending proposals with these `(identity id, idNat, strength, why)`, found in
    /// `source`; those HR rejected ([`SqlDirectory::rpps_reject`]) are left out.
    pub async fn rpps_replace_proposals(
        &self,
        proposals: &[(String, String, String, String)],
        source: &str,
    ) -> Result<(), DirectoryError> {
        let at = now()?;
        let mut tx = self.begin_write().await?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM rpps_proposals").execute(&mut *c).await.map(|r| r.rows_affected()))
            .map_err(|e| failed("replacing the RPPS proposals", &e))?;
        for (identity_id, idnat, strength, why) in proposals {
            on_tx!(tx, |c| sqlx::query(
                "INSERT INTO rpps_proposals (identity_id, idnat, strength, why, proposed_at, source) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS \
                 (SELECT 1 FROM rpps_rejections WHERE identity_id = $1 AND idnat = $2)"
            )
            .bind(identity_id)
            .bind(idnat)
            .bind(strength)
            .bind(why)
            .bind(&at)
            .bind(source)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
            .map_err(|e| failed("recording an RPPS proposal", &e))?;
        }
        tx.commit().await.map_err(|e| failed("committing the RPPS proposals", &e))
    }

    /// The pending proposals, by matricule.
    pub async fn rpps_proposals(&self) -> Result<Vec<Proposal>, DirectoryError> {
        type Row = (String, String, String, String, String, Option<String>, String);
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, Row>(
            "SELECT p.identity_id, i.matricule, p.idnat, p.strength, p.why, p.source, p.proposed_at \
             FROM rpps_proposals p JOIN identities i ON i.id = p.identity_id ORDER BY i.matricule, p.idnat"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the RPPS proposals", &e))?;
        Ok(rows
            .into_iter()
            .map(|(identity_id, matricule, idnat, strength, why, source, proposed_at)| Proposal {
                identity_id,
                matricule,
                idnat,
                strength,
                why,
                source,
                proposed_at,
            })
            .collect())
    }

    /// HR rejects the proposal of `idnat` for the identity: it goes, and no later proposal run
    /// brings it back. `false` when no such proposal was pending.
    pub async fn rpps_reject(&self, identity_id: &str, idnat: &str, by: &str) -> Result<bool, DirectoryError> {
        let at = now()?;
        let mut tx = self.begin_write().await?;
        let gone = on_tx!(tx, |c| sqlx::query("DELETE FROM rpps_proposals WHERE identity_id = $1 AND idnat = $2")
            .bind(identity_id)
            .bind(idnat)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("rejecting an RPPS proposal", &e))?;
        if gone == 0 {
            let _ = tx.rollback().await;
            return Ok(false);
        }
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO rpps_rejections (identity_id, idnat, rejected_by, rejected_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (identity_id, idnat) DO NOTHING"
        )
        .bind(identity_id)
        .bind(idnat)
        .bind(by)
        .bind(&at)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("recording an RPPS rejection", &e))?;
        tx.commit().await.map_err(|e| failed("committing the RPPS rejection", &e))?;
        Ok(true)
    }

    /// Gives the identity this idNat and records who confirmed the derivation (with what the RPPS
    /// says of the person), both or neither; its pending proposals go.
    pub async fn rpps_confirm(
        &self,
        identity_id: &str,
        idnat: &IdNat,
        by: &str,
        from: &RppsEntry,
    ) -> Result<(), DirectoryError> {
        let at = now()?;
        let mut tx = self.begin_write().await?;
        let holder = on_tx!(tx, |c| sqlx::query_as::<_, (String,)>("SELECT id FROM identities WHERE idnat = $1")
            .bind(idnat.as_str())
            .fetch_optional(&mut *c)
            .await)
        .map_err(|e| failed("checking the idNat", &e))?;
        if let Some((other,)) = holder.filter(|(other,)| other != identity_id) {
            let _ = tx.rollback().await;
            return Err(DirectoryError::Invalid(format!(
                "the idNat {idnat} already belongs to identity {other}: two people cannot share one"
            )));
        }
        let changed = on_tx!(tx, |c| sqlx::query("UPDATE identities SET idnat = $1, updated_at = $2 WHERE id = $3")
            .bind(idnat.as_str())
            .bind(&at)
            .bind(identity_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("setting the idNat", &e))?;
        if changed == 0 {
            let _ = tx.rollback().await;
            return Err(DirectoryError::Invalid(format!("there is no identity {identity_id}")));
        }
        on_tx!(tx, |c| sqlx::query("DELETE FROM rpps_links WHERE identity_id = $1 OR idnat = $2")
            .bind(identity_id)
            .bind(idnat.as_str())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("replacing the RPPS link", &e))?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO rpps_links (identity_id, idnat, confirmed_by, confirmed_at, profession_code, \
             profession_label, category_code, savoir_faire_code, savoir_faire_label) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(identity_id)
        .bind(idnat.as_str())
        .bind(by)
        .bind(&at)
        .bind(&from.profession_code)
        .bind(&from.profession_label)
        .bind(&from.category_code)
        .bind(&from.savoir_faire_code)
        .bind(&from.savoir_faire_label)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("recording the RPPS link", &e))?;
        crate::people_search::index_person(&mut tx, identity_id).await?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM rpps_proposals WHERE identity_id = $1")
            .bind(identity_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("clearing the RPPS proposals", &e))?;
        tx.commit().await.map_err(|e| failed("committing the RPPS link", &e))
    }

    /// The confirmed derivations, by matricule.
    pub async fn rpps_links(&self) -> Result<Vec<Link>, DirectoryError> {
        type Row = (String, String, String, String, Option<String>, Option<String>, Option<String>, Option<String>);
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, Row>(
            "SELECT l.identity_id, i.matricule, l.idnat, l.confirmed_by, l.profession_code, l.savoir_faire_code, \
             l.struck_off, l.dmp_withheld FROM rpps_links l JOIN identities i ON i.id = l.identity_id \
             ORDER BY i.matricule"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the RPPS links", &e))?;
        Ok(rows
            .into_iter()
            .map(|r| Link {
                identity_id: r.0,
                matricule: r.1,
                idnat: r.2,
                confirmed_by: r.3,
                profession_code: r.4,
                savoir_faire_code: r.5,
                struck_off: r.6,
                dmp_withheld: r.7,
            })
            .collect())
    }

    /// After a load: what the RPPS now says of a confirmed person (`from`, `None` when the file no
    /// longer lists them), whether they are struck off and whether the DMP is withheld.
    pub async fn rpps_refresh_link(
        &self,
        identity_id: &str,
        from: Option<&RppsEntry>,
        struck_off: Option<&str>,
        dmp_withheld: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let keep = RppsEntry::default();
        let e = from.unwrap_or(&keep);
        let known = from.is_some();
        // A transaction: the RPPS refresh's lease fence, when given, is checked in it.
        let mut tx = self.begin_write().await?;
        on_tx!(tx, |c| sqlx::query(
            "UPDATE rpps_links SET struck_off = $2, dmp_withheld = $3, \
             profession_code = CASE WHEN $4 THEN $5 ELSE profession_code END, \
             profession_label = CASE WHEN $4 THEN $6 ELSE profession_label END, \
             category_code = CASE WHEN $4 THEN $7 ELSE category_code END, \
             savoir_faire_code = CASE WHEN $4 THEN $8 ELSE savoir_faire_code END, \
             savoir_faire_label = CASE WHEN $4 THEN $9 ELSE savoir_faire_label END \
             WHERE identity_id = $1"
        )
        .bind(identity_id)
        .bind(struck_off)
        .bind(dmp_withheld)
        .bind(known)
        .bind(&e.profession_code)
        .bind(&e.profession_label)
        .bind(&e.category_code)
        .bind(&e.savoir_faire_code)
        .bind(&e.savoir_faire_label)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("refreshing an RPPS link", &e))?;
        tx.commit().await.map_err(|e| failed("refreshing an RPPS link", &e))
    }

    /// Why the DMP is withheld from this identity (struck off the RPPS, `deny_dmp`), if it is.
    pub(crate) async fn rpps_dmp_withheld(&self, identity_id: &str) -> Result<Option<String>, DirectoryError> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, (Option<String>,)>(
            "SELECT dmp_withheld FROM rpps_links WHERE identity_id = $1"
        )
        .bind(identity_id)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading the RPPS link", &e))?;
        Ok(row.and_then(|r| r.0))
    }
}
