//! The HR feed's runs on the directory database (migration `0016_feed_runs.sql`): each run
//! recorded once, with its counts, its bounded diff and its error lines (both JSON the gateway
//! writes and reads), listed newest first for the console and `vigie feeds`.
use vigie_core::directory::DirectoryError;

use crate::SqlDirectory;
use crate::db::on_pool;
use crate::directory::failed;

/// One run of the HR feed, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct FeedRun {
    /// Its id (a UUIDv7: sorts by time).
    pub id: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// The file or URL it read.
    pub source: String,
    /// Who or what started it: `cli:<user>`, `serve` (the period), …
    pub started_by: String,
    /// A dry run: nothing written.
    pub dry_run: bool,
    /// `dry_run`, `unchanged`, `applied`, `refused` (the safety stop), `failed`, `not_modified`.
    pub result: String,
    /// Counts of the diff.
    pub joiners: i64,
    /// Movers (some field changes).
    pub movers: i64,
    /// Leavers.
    pub leavers: i64,
    /// Brought back.
    pub returners: i64,
    /// Unchanged.
    pub unchanged: i64,
    /// Error lines.
    pub errors: i64,
    /// Why the safety stop refused the run, when it did.
    pub safety_stop: Option<String>,
    /// The diff as JSON, bounded by the writer.
    pub diff: String,
    /// The error lines as JSON.
    pub error_lines: String,
}

/// Most runs one listing returns.
pub const MAX_RUNS: usize = 200;

impl SqlDirectory {
    /// Records a run; its `id` is given here when empty. Returns the id.
    pub async fn record_feed_run(&self, run: &FeedRun) -> Result<String, DirectoryError> {
        let id = if run.id.is_empty() { uuid::Uuid::now_v7().to_string() } else { run.id.clone() };
        on_pool!(self.pool, |c| sqlx::query(
            "INSERT INTO feed_runs (id, started_at, source, started_by, dry_run, result, joiners, movers, leavers, \
             returners, unchanged, errors, safety_stop, diff, error_lines) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        )
        .bind(&id)
        .bind(&run.started_at)
        .bind(&run.source)
        .bind(&run.started_by)
        .bind(run.dry_run)
        .bind(&run.result)
        .bind(run.joiners)
        .bind(run.movers)
        .bind(run.leavers)
        .bind(run.returners)
        .bind(run.unchanged)
        .bind(run.errors)
        .bind(&run.safety_stop)
        .bind(&run.diff)
        .bind(&run.error_lines)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| failed("recording an HR feed run", &e))?;
        Ok(id)
    }

    /// The last `limit` runs (at most [`MAX_RUNS`]), newest first.
    pub async fn feed_runs(&self, limit: usize) -> Result<Vec<FeedRun>, DirectoryError> {
        let limit = limit.clamp(1, MAX_RUNS) as i64;
        on_pool!(self.pool, |c| sqlx::query_as::<_, FeedRun>(
            "SELECT * FROM feed_runs ORDER BY started_at DESC, id DESC LIMIT $1"
        )
        .bind(limit)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("reading the HR feed runs", &e))
    }

    /// The run `id`, if recorded.
    pub async fn feed_run(&self, id: &str) -> Result<Option<FeedRun>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_as::<_, FeedRun>("SELECT * FROM feed_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("reading an HR feed run", &e))
    }
}
