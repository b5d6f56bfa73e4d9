//! The sponsorship port ([`Sponsorships`]) on the directory database (migration 0006): e-mail
//! addresses of identities, the hashed answers to security questions, the sponsorships granted
//! and their temporary credentials, and "who shares a unit with whom".
use async_trait::async_trait;
use vigie_core::directory::{DirectoryError, Identity};
use vigie_core::names::fold;
pub use vigie_core::sponsorship::{Grant, NewSponsorship, Sponsorships};

use crate::SqlDirectory;
use crate::announced::format_time as rfc3339;
use crate::cards::matches;
use crate::db::{on_pool, on_tx};
use crate::directory::{IdentityRow, affectation, failed, identity_columns, identity_of};

/// Longest e-mail address accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets).
pub const MAX_EMAIL_CHARS: usize = 254;

#[async_trait]
impl Sponsorships for SqlDirectory {
    /// Sets (or clears) the e-mail address of an identity; false when there is no such identity.
    /// The address is checked by the caller (`vigie-mail` parses it); here only its length and
    /// the absence of control characters.
    async fn set_email(&self, identity_id: &str, email: Option<&str>) -> Result<bool, DirectoryError> {
        if let Some(e) = email
            && (e.chars().count() > MAX_EMAIL_CHARS || e.chars().any(char::is_control))
        {
            return Err(DirectoryError::Invalid(format!(
                "an e-mail address has at most {MAX_EMAIL_CHARS} characters and no control character"
            )));
        }
        let r = on_pool!(self.pool, |c| sqlx::query("UPDATE identities SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(identity_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("setting an e-mail address", &e))?;
        Ok(r == 1)
    }

    /// The e-mail address of an identity, if the directory has one.
    async fn email_of(&self, identity_id: &str) -> Result<Option<String>, DirectoryError> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, (Option<String>,)>(
            "SELECT email FROM identities WHERE id = $1"
        )
        .bind(identity_id)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading an e-mail address", &e))?;
        Ok(row.and_then(|(e,)| e).filter(|e| !e.is_empty()))
    }

    /// Replaces every security answer of an identity with these `(question id, answer hash)`, in
    /// one transaction.
    async fn set_security_answers(
        &self,
        identity_id: &str,
        answers: &[(String, String)],
    ) -> Result<(), DirectoryError> {
        let now = rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())?;
        let mut tx = self.begin_write().await?;
        on_tx!(tx, |c| sqlx::query("DELETE FROM security_answers WHERE identity_id = $1")
            .bind(identity_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("saving security answers", &e))?;
        for (question, hash) in answers {
            on_tx!(tx, |c| sqlx::query(
                "INSERT INTO security_answers (identity_id, question_id, answer_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(identity_id)
            .bind(question)
            .bind(hash)
            .bind(&now)
            .execute(&mut *c)
            .await.map(|r| r.rows_affected()))
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                    DirectoryError::Invalid(format!("there is no identity {identity_id:?}"))
                }
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    DirectoryError::Invalid(format!("question {question:?} is answered twice"))
                }
                _ => failed("saving security answers", &e),
            })?;
        }
        tx.commit().await.map_err(|e| failed("saving security answers", &e))
    }

    /// The `(question id, answer hash)` an identity enrolled, by question id.
    async fn security_answers(&self, identity_id: &str) -> Result<Vec<(String, String)>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String)>(
            "SELECT question_id, answer_hash FROM security_answers WHERE identity_id = $1 ORDER BY question_id",
        )
        .bind(identity_id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading security answers", &e))
    }

    /// Records a sponsorship and its temporary credential; returns its id.
    async fn record_sponsorship(&self, s: &NewSponsorship<'_>) -> Result<String, DirectoryError> {
        let id = uuid::Uuid::now_v7().to_string();
        on_pool!(self.pool, |c| sqlx::query(
            "INSERT INTO sponsorships (id, sponsor_id, sponsored_id, reason, created_at, created_unix, code_hash, \
             expires_unix, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE)",
        )
        .bind(&id)
        .bind(s.sponsor_id)
        .bind(s.sponsored_id)
        .bind(s.reason)
        .bind(rfc3339(s.at)?)
        .bind(s.at)
        .bind(s.code_hash)
        .bind(s.expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                DirectoryError::Invalid("the sponsor or the sponsored person is not in the directory".into())
            }
            _ => failed("recording a sponsorship", &e),
        })?;
        Ok(id)
    }

    /// How many sponsorships this sponsor granted since `since` (Unix seconds).
    async fn sponsorships_by_since(&self, sponsor_id: &str, since: i64) -> Result<u64, DirectoryError> {
        let (n,) = on_pool!(self.pool, |c| sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM sponsorships WHERE sponsor_id = $1 AND created_unix >= $2"
        )
        .bind(sponsor_id)
        .bind(since)
        .fetch_one(c)
        .await)
        .map_err(|e| failed("counting sponsorships", &e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The temporary credentials of an identity still in force at `now`, newest first.
    async fn active_grants(&self, sponsored_id: &str, now: i64) -> Result<Vec<Grant>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String, i64)>(
            "SELECT id, sponsor_id, code_hash, expires_unix FROM sponsorships \
             WHERE sponsored_id = $1 AND expires_unix > $2 AND revoked = FALSE ORDER BY created_unix DESC",
        )
        .bind(sponsored_id)
        .bind(now)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading sponsorships", &e))?;
        Ok(rows
            .into_iter()
            .map(|(id, sponsor_id, code_hash, expires_at)| Grant { id, sponsor_id, code_hash, expires_at })
            .collect())
    }

    /// The identities sharing at least one functional unit with `identity_id` (not itself) whose
    /// names, matricule or idNat match `query` (accents, case and separators ignored), by name;
    /// at most `limit`. An empty query lists them all (within `limit`).
    async fn colleagues(&self, identity_id: &str, query: &str, limit: usize) -> Result<Vec<Identity>, DirectoryError> {
        // Two queries whatever the number of colleagues: their rows, then the affectations of
        // those the search kept.
        macro_rules! colleagues {
            () => {
                "SELECT DISTINCT b.identity_id FROM affectations a JOIN affectations b \
                 ON a.uf = b.uf WHERE a.identity_id = $1 AND b.identity_id <> $1"
            };
        }
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, IdentityRow>(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE id IN (",
            colleagues!(),
            ")"
        ))
        .bind(identity_id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("finding colleagues", &e))?;
        let folded = fold(query.trim());
        let upper = query.trim().to_uppercase();
        let mut found = Vec::new();
        for row in rows {
            let identity = identity_of(row, Vec::new())?;
            let i = &identity;
            // An empty query lists every colleague (`contains("")` holds).
            let idnat = i.idnat.as_ref().map(|n| n.as_str());
            if let Some((f, g)) = matches(&folded, &upper, &i.family_name, &i.given_name, &i.matricule, idnat) {
                found.push((f, g, identity));
            }
        }
        found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let mut kept: Vec<Identity> = found.into_iter().take(limit).map(|(_, _, i)| i).collect();
        let units = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, i32)>(concat!(
            "SELECT identity_id, uf, share FROM affectations WHERE identity_id IN (",
            colleagues!(),
            ") ORDER BY identity_id, share DESC, uf"
        ))
        .bind(identity_id)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("looking up affectations", &e))?;
        for (id, uf, share) in units {
            if let Some(identity) = kept.iter_mut().find(|i| i.id == id) {
                identity.units.push(affectation(&id, uf, share)?);
            }
        }
        Ok(kept)
    }
}

impl SqlDirectory {
    /// Ends every temporary credential of an identity now; returns how many were in force.
    pub async fn revoke_grants(&self, sponsored_id: &str) -> Result<u64, DirectoryError> {
        let r = on_pool!(self.pool, |c| sqlx::query(
            "UPDATE sponsorships SET revoked = TRUE WHERE sponsored_id = $1 AND revoked = FALSE"
        )
        .bind(sponsored_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("revoking sponsorships", &e))?;
        Ok(r)
    }
}
