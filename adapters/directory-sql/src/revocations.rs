//! [`PendingRevocations`] on the directory database (migration `0007_pending_revocations.sql`):
//! the durable notes of access that must end, until the gateway has ended it.
use async_trait::async_trait;
use vigie_core::directory::{AccessTarget, DirectoryError, PendingRevocation, PendingRevocations};

use crate::SqlDirectory;
use crate::db::{Tx, on_pool, on_tx};
use crate::directory::{failed, now};

/// Adds the note within a transaction the caller commits (with the change it follows from).
pub(crate) async fn add(tx: &mut Tx, target: &AccessTarget, reason: &str) -> Result<String, DirectoryError> {
    let id = uuid::Uuid::now_v7().to_string();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO pending_revocations (id, target, reason, created_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(&id)
    .bind(target.as_stored())
    .bind(reason)
    .bind(now()?)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(|e| failed("recording access to end", &e))?;
    Ok(id)
}

#[async_trait]
impl PendingRevocations for SqlDirectory {
    async fn add_pending_revocation(&self, target: &AccessTarget, reason: &str) -> Result<String, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let id = add(&mut tx, target, reason).await?;
        tx.commit().await.map_err(|e| failed("recording access to end", &e))?;
        Ok(id)
    }

    async fn pending_revocations(&self) -> Result<Vec<PendingRevocation>, DirectoryError> {
        let rows = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String)>(
            "SELECT id, target, reason FROM pending_revocations ORDER BY created_at, id",
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading access to end", &e))?;
        rows.into_iter()
            .map(|(id, target, reason)| {
                let target = AccessTarget::from_stored(&target).ok_or_else(|| {
                    DirectoryError::Unavailable(format!(
                        "the directory database holds a pending revocation {id} of unknown target {target:?}: fix the row"
                    ))
                })?;
                Ok(PendingRevocation { id, target, reason })
            })
            .collect()
    }

    async fn revocation_done(&self, id: &str) -> Result<(), DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query("DELETE FROM pending_revocations WHERE id = $1")
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("confirming access ended", &e))?;
        Ok(())
    }
}
