//! The fences of the jobs' leases (migration `0020_lease_fences.sql`): a directory handed a job's
//! [`Fence`] checks it in each write transaction, so that a holder whose lease lapsed between its
//! last check and its write's commit cannot write after the holder that took over.
use vigie_core::directory::{DirectoryError, Fence};

use crate::SqlDirectory;
use crate::db::{Tx, on_tx};
use crate::directory::failed;

impl SqlDirectory {
    /// This directory as the holder of a job's lease writes it: each write transaction first
    /// raises the job's fence to `fence`'s token, and is refused ([`DirectoryError::Fenced`],
    /// nothing of it kept) when the database has seen a greater one, a later holder's. Raising it
    /// locks the job's row until the write commits, so a later holder's write waits for this one
    /// rather than interleave. Reads are not fenced; the writes outside a transaction are not
    /// either (none of the jobs' writes).
    pub fn fenced(&self, fence: Fence) -> SqlDirectory {
        let mut fenced = self.clone();
        fenced.fence = Some(fence);
        fenced
    }
}

/// Raises `fence`'s row in `tx` (the first statement of a fenced write transaction): refused when
/// it holds a greater token.
pub(crate) async fn raise(tx: &mut Tx, fence: &Fence) -> Result<(), DirectoryError> {
    // Tokens come from the shared store's counter, seeded with the time in milliseconds: far
    // below i64::MAX.
    let token = i64::try_from(fence.token()).unwrap_or(i64::MAX);
    let raised = on_tx!(tx, |c| sqlx::query(
        "INSERT INTO lease_fences (job, token) VALUES ($1, $2) \
         ON CONFLICT (job) DO UPDATE SET token = excluded.token WHERE lease_fences.token <= excluded.token"
    )
    .bind(fence.job())
    .bind(token)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))
    .map_err(|e| failed("checking the fence of a job's lease", &e))?;
    if raised == 0 {
        return Err(DirectoryError::Fenced { job: fence.job().to_owned() });
    }
    Ok(())
}
