//! The directory's schema: the migrations this Vigie carries, applied behind one lock so that
//! replicas starting together apply each once, and what to do with a schema newer than them.
//!
//! Rolling upgrades (docs/operations.md, "Upgrades (expand/contract)"): the new version migrates
//! while old replicas still run, so an old version must keep running on a schema that has
//! migrations it does not know. sqlx refuses that by default (`VersionMissing`); here serve
//! accepts it ([`NewerSchema::Accept`], the caller logs it), and `vigie migrate` refuses it
//! ([`NewerSchema::Refuse`]): an old binary never brings a schema "back".
use sqlx::migrate::{Migrate, MigrateError, Migrator};

use crate::db::{Dialect, Pool, on_pool};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// What to do when the database holds migrations newer than this Vigie's latest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NewerSchema {
    /// Run on it (a rolling upgrade: the new version migrated first). The default, for `serve`.
    #[default]
    Accept,
    /// Stop with an error: `vigie migrate` of an older version, or a deployment that wants no
    /// old binary to run on a newer schema (`directory.accept_newer_schema = false`).
    Refuse,
}

/// The schema version (the latest migration applied) when this process opened the directory,
/// and once its migrations had run: what `vigie migrate` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersions {
    /// `None`: a new database, no migration applied yet. Read under the migration lock, so of
    /// processes migrating one database at once, exactly one sees the version it started from.
    pub before: Option<i64>,
    /// After this open's migrations.
    pub after: Option<i64>,
    /// The latest migration this Vigie carries: `after` above it is a newer schema (a rolling
    /// upgrade in progress, see [`NewerSchema`]).
    pub known: i64,
}

impl SchemaVersions {
    /// Whether the database has migrations this Vigie does not know.
    pub fn is_newer_than_known(&self) -> bool {
        self.after.is_some_and(|after| after > self.known)
    }
}

/// Why the schema could not be brought up to date.
pub(crate) enum SchemaError {
    /// The database's schema is ahead of this Vigie and [`NewerSchema::Refuse`] was asked.
    Newer {
        applied: i64,
        known: i64,
    },
    Migrate(MigrateError),
}

impl From<MigrateError> for SchemaError {
    fn from(e: MigrateError) -> Self {
        SchemaError::Migrate(e)
    }
}

impl From<sqlx::Error> for SchemaError {
    fn from(e: sqlx::Error) -> Self {
        SchemaError::Migrate(MigrateError::Execute(e))
    }
}

fn known() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Applies the migrations this Vigie carries that the database lacks, on one connection that
/// holds the migration lock throughout (PostgreSQL: sqlx's advisory lock, per database; SQLite:
/// the file's write lock, taken by each migration): reading the version, checking it against
/// `newer`, migrating and reading it again are one step for whoever holds the lock.
pub(crate) async fn migrate(pool: &Pool, newer: NewerSchema) -> Result<SchemaVersions, SchemaError> {
    // Unknown applied migrations are checked below (with `newer`), not by sqlx.
    let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
    migrator.set_ignore_missing(true);
    let known = known();
    let dialect = pool.dialect();
    on_pool!(pool, |p| {
        let mut conn = p.acquire().await?;
        if dialect == Dialect::Postgres {
            // `directory.statement_timeout_ms` bounds a login's statements, not a migration (an
            // index on a large table) nor the wait for another replica's migration lock.
            sqlx::raw_sql("SET statement_timeout = 0").execute(&mut *conn).await?;
        }
        conn.lock().await?;
        // The latest migration recorded as applied; `None` for a new database (no table yet).
        const LATEST: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        let result = async {
            let before = sqlx::query_scalar::<_, Option<i64>>(LATEST).fetch_one(&mut *conn).await.ok().flatten();
            if let Some(applied) = before.filter(|v| *v > known)
                && newer == NewerSchema::Refuse
            {
                return Err(SchemaError::Newer { applied, known });
            }
            // Takes the lock again: advisory locks nest within a session (released once below).
            migrator.run(&mut *conn).await?;
            let after = sqlx::query_scalar::<_, Option<i64>>(LATEST).fetch_one(&mut *conn).await.ok().flatten();
            Ok(SchemaVersions { before, after, known })
        }
        .await;
        conn.unlock().await?;
        if dialect == Dialect::Postgres {
            sqlx::raw_sql("RESET statement_timeout").execute(&mut *conn).await?;
        }
        result
    })
}
