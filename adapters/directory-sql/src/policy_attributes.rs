//! [`PolicyAttributes`] on the directory database (migration `0004_policy_attributes.sql`): the
//! kind of an account and the employment status of a person, for the policy engine.
use async_trait::async_trait;
use vigie_core::directory::{AccessTarget, DirectoryError, EMPLOYMENT_STATUSES, PolicyAttributes};
use vigie_core::policy::AccountKind;

use crate::SqlDirectory;
use crate::db::{on_pool, on_tx};
use crate::directory::failed;

#[async_trait]
impl PolicyAttributes for SqlDirectory {
    async fn policy_attributes(&self, identity_id: &str) -> Result<(AccountKind, String), DirectoryError> {
        // The life cycle's dates (migration 0011) hold at each decision, between the runs that
        // mark the person: nobody is let in before their start or after their end.
        let now = crate::lifecycle::stamp(time::OffsetDateTime::now_utc());
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT CASE WHEN i.end_at IS NOT NULL AND i.end_at <= $2 THEN 'left' \
                         WHEN i.start_at IS NOT NULL AND i.start_at > $2 THEN 'suspended' \
                         ELSE i.employment_status END, a.kind \
             FROM identities i LEFT JOIN accounts a ON a.identity_id = i.id WHERE i.id = $1",
        )
        .bind(identity_id)
        .bind(&now)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading policy attributes", &e))?;
        let Some((status, kind)) = row else { return Ok((AccountKind::Personal, "active".into())) };
        let kind = match kind.as_deref() {
            None => AccountKind::Personal,
            Some(k) => AccountKind::parse(k).ok_or_else(|| {
                DirectoryError::Unavailable(format!(
                    "the directory database holds an unknown account kind {k:?} for identity {identity_id}: fix the row"
                ))
            })?,
        };
        Ok((kind, status))
    }

    async fn set_account_kind(&self, username: &str, kind: AccountKind) -> Result<bool, DirectoryError> {
        let done = on_pool!(self.pool, |c| sqlx::query("UPDATE accounts SET kind = $1 WHERE username = $2")
            .bind(kind.as_str())
            .bind(username)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("setting an account kind", &e))?;
        Ok(done > 0)
    }

    async fn set_employment_status(&self, username: &str, status: &str) -> Result<bool, DirectoryError> {
        if !EMPLOYMENT_STATUSES.contains(&status) {
            return Err(DirectoryError::Invalid(format!(
                "unknown employment status {status:?}; one of {}",
                EMPLOYMENT_STATUSES.join(", ")
            )));
        }
        let mut tx = self.begin_write().await?;
        let identity =
            on_tx!(tx, |c| sqlx::query_as::<_, (String,)>("SELECT identity_id FROM accounts WHERE username = $1")
                .bind(username)
                .fetch_optional(&mut *c)
                .await)
            .map_err(|e| failed("setting an employment status", &e))?;
        let Some((identity_id,)) = identity else { return Ok(false) };
        on_tx!(tx, |c| sqlx::query("UPDATE identities SET employment_status = $1 WHERE id = $2")
            .bind(status)
            .bind(&identity_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("setting an employment status", &e))?;
        // Anyone not active loses access everywhere: their sessions and tokens must end, and the
        // note that says so commits with the status, whoever changed it (the CLI, an import).
        if status != "active" {
            let reason = format!("employment status {status}");
            crate::revocations::add(&mut tx, &AccessTarget::Identity(identity_id), &reason).await?;
        }
        tx.commit().await.map_err(|e| failed("setting an employment status", &e))?;
        Ok(true)
    }
}
