//! HR enrolment codes of joiners (migration `0014_hr_enrolment.sql`): one per person, stored as a
//! hash only, replaced by a new one, taken once before it expires.
use vigie_core::directory::DirectoryError;

use crate::SqlDirectory;
use crate::db::on_pool;
use crate::directory::failed;

impl SqlDirectory {
    /// Stores the hash of a new code for the person with `identity_id`, valid until `expires_at`
    /// ([`crate::lifecycle::stamp`] form): any code issued to them before stops working.
    pub async fn put_hr_enrolment_code(
        &self,
        identity_id: &str,
        code_hash: &str,
        expires_at: &str,
        issued_by: &str,
    ) -> Result<(), DirectoryError> {
        let now = crate::lifecycle::stamp(time::OffsetDateTime::now_utc());
        let stored = on_pool!(self.pool, |c| sqlx::query(
            "INSERT INTO hr_enrolment_codes (identity_id, code_hash, issued_at, expires_at, issued_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity_id) DO UPDATE SET code_hash = excluded.code_hash, \
             issued_at = excluded.issued_at, expires_at = excluded.expires_at, issued_by = excluded.issued_by"
        )
        .bind(identity_id)
        .bind(code_hash)
        .bind(&now)
        .bind(expires_at)
        .bind(issued_by)
        .execute(c)
        .await
        .map(|r| r.rows_affected()));
        match stored {
            Ok(_) => Ok(()),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                Err(DirectoryError::Invalid(format!("there is no identity with id {identity_id:?}")))
            }
            Err(e) => Err(failed("storing an enrolment code", &e)),
        }
    }

    /// The person and issuer of the code whose hash is `code_hash` if it has not expired at `now`;
    /// the code is gone either way (single use: of two callers at once, one gets it).
    pub async fn take_hr_enrolment_code(
        &self,
        code_hash: &str,
        now: &str,
    ) -> Result<Option<(String, String)>, DirectoryError> {
        let taken = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String)>(
            "DELETE FROM hr_enrolment_codes WHERE code_hash = $1 RETURNING identity_id, issued_by, expires_at"
        )
        .bind(code_hash)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("taking an enrolment code", &e))?;
        Ok(taken.filter(|(_, _, expires)| expires.as_str() > now).map(|(id, by, _)| (id, by)))
    }
}
