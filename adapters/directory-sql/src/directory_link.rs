//! What `vigie directory sync` needs of the SQL directory (migration `0010_directory_link.sql`):
//! the link of an identity to its entry in the establishment's directory, the indexed lookups a
//! sync makes for each entry, the disabling of a leaver's account with its note of access to end,
//! where the last pass left each source (migration `0012_directory_sync_state.sql`), and a
//! matricule the directory changed.
use vigie_core::directory::{AccessTarget, DirectoryError, Identity};

use crate::SqlDirectory;
use crate::db::{on_pool, on_tx};
use crate::directory::failed;

impl SqlDirectory {
    /// The identity linked to `directory_id`, else the one with this matricule (both indexed:
    /// a sync makes this lookup for every entry).
    pub(crate) async fn identity_for_entry(
        &self,
        directory_id: &str,
        matricule: &str,
    ) -> Result<Option<Identity>, DirectoryError> {
        use vigie_core::directory::Directory;
        // The link first: a matricule corrected in HR's record must not split a person in two.
        // An entry without a stable id ('') is matched by matricule only: no link is ''.
        let id = on_pool!(self.pool, |c| sqlx::query_scalar::<_, String>(
            "SELECT id FROM identities WHERE directory_id = $1 OR matricule = $2 \
             ORDER BY CASE WHEN directory_id = $1 THEN 0 ELSE 1 END LIMIT 1"
        )
        .bind(directory_id)
        .bind(matricule)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("looking up an identity by its directory entry", &e))?;
        match id {
            Some(id) => self.identity(&id).await,
            None => Ok(None),
        }
    }

    /// Links the identity to the entry `directory_id`, taking the link from any other identity
    /// (an entry deleted and re-created keeps no stale owner).
    pub(crate) async fn link_identity(&self, identity_id: &str, directory_id: &str) -> Result<bool, DirectoryError> {
        // Taken from its holder first: the unique index is checked row by row.
        const STEPS: [&str; 2] = [
            "UPDATE identities SET directory_id = NULL WHERE directory_id = $1 AND id <> $2",
            "UPDATE identities SET directory_id = $1 WHERE id = $2 AND (directory_id IS NULL OR directory_id <> $1)",
        ];
        let mut tx = self.begin_write().await?;
        let mut changed = 0;
        for step in STEPS {
            changed = on_tx!(tx, |c| sqlx::query(step)
                .bind(directory_id)
                .bind(identity_id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| failed("linking an identity to its directory entry", &e))?;
        }
        tx.commit().await.map_err(|e| failed("linking an identity to its directory entry", &e))?;
        Ok(changed > 0)
    }

    /// `(identity id, directory id, login name)` of every identity linked to a directory entry
    /// whose account is enabled: the candidates for leavers.
    pub(crate) async fn linked_enabled(&self) -> Result<Vec<(String, String, String)>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_as::<_, (String, String, String)>(
            "SELECT i.id, i.directory_id, a.username FROM identities i JOIN accounts a ON a.identity_id = i.id \
             WHERE i.directory_id IS NOT NULL AND NOT a.disabled ORDER BY i.id"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| failed("listing the identities linked to the directory", &e))
    }

    /// Disables the identity's account and, in the same transaction, notes that the person's
    /// access must end (the sweep of every replica ends the sessions and refresh families, as for
    /// a status change). `false` when it has no account or it was already disabled.
    pub(crate) async fn disable_account_of(&self, identity_id: &str, reason: &str) -> Result<bool, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let changed =
            on_tx!(tx, |c| sqlx::query("UPDATE accounts SET disabled = TRUE WHERE identity_id = $1 AND NOT disabled")
                .bind(identity_id)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| failed("disabling an account", &e))?;
        if changed > 0 {
            crate::revocations::add(&mut tx, &AccessTarget::Identity(identity_id.to_owned()), reason).await?;
        }
        tx.commit().await.map_err(|e| failed("disabling an account", &e))?;
        Ok(changed > 0)
    }

    /// The mark and the time of the last full pass of `source`.
    pub(crate) async fn sync_state(&self, source: &str) -> Result<Option<(Option<String>, i64)>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_as::<_, (Option<String>, i64)>(
            "SELECT mark, full_pass_at FROM directory_sync_state WHERE source = $1"
        )
        .bind(source)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("reading where the last directory sync ended", &e))
    }

    pub(crate) async fn set_sync_state(
        &self,
        source: &str,
        mark: Option<&str>,
        full_pass_at: i64,
    ) -> Result<(), DirectoryError> {
        // A transaction of one statement: the sync's lease fence, when given, is checked in it.
        let mut tx = self.begin_write().await?;
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO directory_sync_state (source, mark, full_pass_at) VALUES ($1, $2, $3) \
             ON CONFLICT (source) DO UPDATE SET mark = excluded.mark, full_pass_at = excluded.full_pass_at"
        )
        .bind(source)
        .bind(mark)
        .bind(full_pass_at)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(|e| failed("recording where the directory sync ended", &e))?;
        tx.commit().await.map_err(|e| failed("recording where the directory sync ended", &e))
    }

    /// The matricule's unique index refuses one another identity holds.
    pub(crate) async fn set_matricule(&self, identity_id: &str, matricule: &str) -> Result<bool, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let changed = on_tx!(tx, |c| sqlx::query("UPDATE identities SET matricule = $1 WHERE id = $2")
            .bind(matricule)
            .bind(identity_id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| failed("changing a matricule", &e))?;
        crate::people_search::index_person(&mut tx, identity_id).await?;
        tx.commit().await.map_err(|e| failed("changing a matricule", &e))?;
        Ok(changed > 0)
    }
}
