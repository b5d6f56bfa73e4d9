//! The audit trail's table in PostgreSQL (issue 18): one global chain for every replica. A writer
//! appends a batch in one transaction under one advisory transaction lock, so that exactly one
//! writer at a time reads the chain's head and seals after it (the database orders the records);
//! the acknowledgement comes after COMMIT. The sealing itself is the caller's (the gateway's
//! `audit::chain`): this module stores and reads back what it is given.
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

static MIGRATOR: Migrator = sqlx::migrate!("./audit-migrations");

/// The key of the advisory lock that serializes the appends (any constant unique to this use:
/// "vigie-au" in ASCII). Transaction-scoped: released by COMMIT or ROLLBACK, or when a dead
/// replica's connection goes.
const APPEND_LOCK: i64 = 0x7669_6769_652d_6175;
/// How long a batch waits for a connection before the trail counts as failing (fail closed, or
/// the spool): an outage must answer in seconds, not hang the logins.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest one append or read may take on the server.
const STATEMENT_TIMEOUT_MS: &str = "10000";

/// The chain's last record as the table has it: its sequence number and hash (hex); `None` for
/// an empty trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    /// Sequence number of the last record.
    pub seq: i64,
    /// Its hash, lowercase hex.
    pub hash: String,
}

/// A record sealed by the caller, to be stored as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedRecord {
    /// Its sequence number.
    pub seq: i64,
    /// The hash of the record before it (hex).
    pub prev: String,
    /// Its own hash (hex).
    pub hash: String,
    /// The sealed line, without its newline: the bytes the hash is of (plus the hash itself).
    pub record: String,
    /// The event's stable id when it has one (a spooled event: `0004_audit_spool.sql`): the
    /// table holds each id at most once.
    pub event_id: Option<String>,
}

/// A row read back for verification: what the columns say and the stored record.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// The `seq` column.
    pub seq: i64,
    /// The `prev` column.
    pub prev: String,
    /// The `hash` column.
    pub hash: String,
    /// The sealed line.
    pub record: String,
}

/// A search of the trail ([`PgAuditTrail::search`]), in the caller's terms already made SQL-ready.
#[derive(Clone, Debug, Default)]
pub struct TrailQuery {
    /// JSON objects (as text) a record must contain one of (`{"idnat":"…","kind":"login"}`);
    /// empty: every record.
    pub any_of: Vec<String>,
    /// From (inclusive): the Unix time, and the same second as `at` text without its zone
    /// (`2026-12-05T10:00:00`), which every UTC `at` of that second or later sorts at or after.
    pub from: Option<(i64, String)>,
    /// Up to (exclusive), in the same two forms.
    pub to: Option<(i64, String)>,
    /// Only records before this sequence number (the next page).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

impl TrailQuery {
    /// How far `written_at` (set at insert) may lag behind the record's `at` (set when the act
    /// happened): a batch waits at most seconds; an hour covers a replica's clock drift too.
    pub const SLACK_SECS: i64 = 3600;
}

/// Why the trail's table could not be opened or written.
#[derive(Debug)]
pub struct AuditTrailError(String);

impl std::fmt::Display for AuditTrailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuditTrailError {}

impl From<sqlx::Error> for AuditTrailError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx's errors name the server and the SQL state, never the password of the URL.
        AuditTrailError(format!("the audit trail's PostgreSQL: {e}"))
    }
}

/// The audit trail's tables on a PostgreSQL server.
#[derive(Clone, Debug)]
pub struct PgAuditTrail {
    pool: PgPool,
}

impl PgAuditTrail {
    /// Connects (at most `max_connections`) and brings the trail's tables up to date (their own
    /// migrations, under sqlx's migration lock, so replicas starting together apply them once).
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, AuditTrailError> {
        Ok(Self::open_migrated(url, max_connections).await?.0)
    }

    /// [`PgAuditTrail::open`], also saying from which migration version to which the trail's
    /// tables went (`None`: none applied before, a new trail), for `vigie migrate`.
    pub async fn open_migrated(
        url: &str,
        max_connections: u32,
    ) -> Result<(Self, Option<i64>, Option<i64>), AuditTrailError> {
        let pool = Self::connect(url, max_connections).await?.pool;
        // Reading the version, migrating and reading it again are one step for whoever holds the
        // migration lock (sqlx's advisory lock, per database, as the directory's `schema::migrate`
        // takes it): replicas' jobs started together each report what they saw under it, and
        // exactly one says it migrated. The pool's statement timeout bounds appends, not an index
        // build nor the wait for another job's lock.
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql("SET statement_timeout = 0").execute(&mut *conn).await?;
        conn.lock().await.map_err(|e| AuditTrailError(format!("the audit trail's migration lock: {e}")))?;
        let result = async {
            let before = Self::version(&mut conn).await?;
            let mut migrator = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
            migrator.dangerous_set_table_name("_vigie_audit_migrations");
            // A newer Vigie's audit migrations are expand-only: an older one runs on them.
            migrator.set_ignore_missing(true);
            // Takes the lock again: advisory locks nest within a session (released once below).
            migrator
                .run(&mut *conn)
                .await
                .map_err(|e| AuditTrailError(format!("the audit trail's migrations: {e}")))?;
            let after = Self::version(&mut conn).await?;
            Ok::<_, AuditTrailError>((before, after))
        }
        .await;
        conn.unlock().await.map_err(|e| AuditTrailError(format!("the audit trail's migration lock: {e}")))?;
        sqlx::raw_sql("RESET statement_timeout").execute(&mut *conn).await?;
        drop(conn);
        let (before, after) = result?;
        Ok((Self { pool }, before, after))
    }

    /// Connects (at most `max_connections`) without migrating: for a role that may not change the
    /// schema (`vigie audit purge`'s, an auditor's), on tables `vigie migrate` keeps up to date.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, AuditTrailError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| {
                AuditTrailError(
                    "the PostgreSQL URL of the audit trail (`audit.url`, else `directory.url`) cannot be read: \
                     expected `postgres://user[:password]@host[:port]/database[?sslmode=…]`"
                        .into(),
                )
            })?
            .options([("statement_timeout", STATEMENT_TIMEOUT_MS)]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect)
            .await?;
        Ok(Self { pool })
    }

    /// The last migration applied to the trail's tables; `None` before the first.
    async fn version(conn: &mut sqlx::PgConnection) -> Result<Option<i64>, AuditTrailError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_vigie_audit_migrations')::text").fetch_one(&mut *conn).await?;
        if exists.is_none() {
            return Ok(None);
        }
        Ok(sqlx::query_scalar("SELECT max(version) FROM _vigie_audit_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await?)
    }

    /// Appends one batch: under the append lock, reads the head, lets `seal` seal the batch after
    /// it, inserts the records and commits. Returns once COMMIT returned (the records are as
    /// durable as the server makes a commit: `synchronous_commit`).
    pub async fn append(
        &self,
        seal: impl FnOnce(Option<AuditHead>) -> Vec<SealedRecord>,
    ) -> Result<Option<AuditHead>, AuditTrailError> {
        self.append_once(&[], |head, _| seal(head)).await
    }

    /// [`PgAuditTrail::append`] of events that carry stable ids (`ids`, a spool being replayed):
    /// under the append lock, `seal` is also told which of `ids` the table holds already, and
    /// seals only the others, so that the chain has no gap and no event twice. (Were one sealed
    /// anyway, the unique index on `event_id` refuses the batch rather than store it twice.)
    pub async fn append_once(
        &self,
        ids: &[String],
        seal: impl FnOnce(Option<AuditHead>, &std::collections::HashSet<String>) -> Vec<SealedRecord>,
    ) -> Result<Option<AuditHead>, AuditTrailError> {
        self.append_within(ids, None, seal).await
    }

    /// [`PgAuditTrail::append_once`] given `within` at most, on the server as on the caller's side
    /// (a spool's replay: a database that answered, then hangs, must not hold the caller, nor keep
    /// the append lock from the other replicas): `within` is the transaction's `statement_timeout`
    /// (`SET LOCAL`), so a statement hung on the server ends there, and the caller stops waiting
    /// at the same deadline; either way the error says the transaction took too long.
    pub async fn append_once_within(
        &self,
        ids: &[String],
        within: Duration,
        seal: impl FnOnce(Option<AuditHead>, &std::collections::HashSet<String>) -> Vec<SealedRecord>,
    ) -> Result<Option<AuditHead>, AuditTrailError> {
        self.append_within(ids, Some(within), seal).await
    }

    /// The one way of the appends: the transaction ([`PgAuditTrail::append_on`]), bounded by
    /// `within` if given, and its connection closed when it did not commit.
    async fn append_within(
        &self,
        ids: &[String],
        within: Option<Duration>,
        seal: impl FnOnce(Option<AuditHead>, &std::collections::HashSet<String>) -> Vec<SealedRecord>,
    ) -> Result<Option<AuditHead>, AuditTrailError> {
        let too_long = || {
            let within = within.unwrap_or_default();
            AuditTrailError(format!(
                "the audit trail's PostgreSQL: the transaction took longer than {within:?}: rolled back"
            ))
        };
        let deadline = within.map(|w| tokio::time::Instant::now() + w);
        let Some(conn) = by(deadline, self.pool.acquire()).await else { return Err(too_long()) };
        let mut conn = conn?;
        let appended = match by(deadline, Self::append_on(&mut conn, ids, within, seal)).await {
            Some(Ok(head)) => return Ok(head),
            // The server's `statement_timeout` came first.
            Some(Err(e))
                if within.is_some() && e.as_database_error().and_then(|d| d.code()).as_deref() == Some("57014") =>
            {
                Err(too_long())
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(too_long()),
        };
        // A transaction that did not commit: its connection is closed here, not returned to the
        // pool. Returned, it would be rolled back only when the pool tests it (sqlx queues the
        // ROLLBACK of a dropped transaction and sends it then, from a task of the caller's runtime:
        // the audit writer's, which runs only while the writer waits on the database, maybe a
        // minute later), the transaction keeping the append lock meanwhile, and every replica's
        // appends waiting behind it. Closed, the server ends the session and rolls the transaction
        // back as soon as the statement running there ends (its `statement_timeout` at the latest).
        drop(conn.detach());
        appended
    }

    /// The transaction of [`PgAuditTrail::append_within`] on `conn`.
    async fn append_on(
        conn: &mut sqlx::PgConnection,
        ids: &[String],
        within: Option<Duration>,
        seal: impl FnOnce(Option<AuditHead>, &std::collections::HashSet<String>) -> Vec<SealedRecord>,
    ) -> Result<Option<AuditHead>, sqlx::Error> {
        let mut tx = sqlx::Connection::begin(conn).await?;
        if let Some(within) = within {
            // `SET LOCAL`: for this transaction only, then the connection's own again.
            sqlx::query("SELECT set_config('statement_timeout', $1, true)")
                .bind(within.as_millis().max(1).to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(APPEND_LOCK).execute(&mut *tx).await?;
        let head = sqlx::query("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| AuditHead { seq: r.get(0), hash: r.get(1) });
        let present = if ids.is_empty() {
            Default::default()
        } else {
            sqlx::query_scalar::<_, String>("SELECT event_id FROM audit_records WHERE event_id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect()
        };
        let records = seal(head.clone(), &present);
        let Some(last) = records.last() else {
            tx.rollback().await?;
            return Ok(head);
        };
        let last = AuditHead { seq: last.seq, hash: last.hash.clone() };
        let (mut seq, mut prev, mut hash, mut record, mut event_id) = (vec![], vec![], vec![], vec![], vec![]);
        for r in records {
            seq.push(r.seq);
            prev.push(r.prev);
            hash.push(r.hash);
            record.push(r.record);
            event_id.push(r.event_id);
        }
        // One statement for the batch (group commit): a round trip per batch, not per record.
        sqlx::query(
            "INSERT INTO audit_records (seq, prev, hash, record, event_id) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])",
        )
        .bind(seq)
        .bind(prev)
        .bind(hash)
        .bind(record)
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(last))
    }

    /// Stores a signed checkpoint of the chain at `size`.
    pub async fn checkpoint(&self, size: i64, note: &str) -> Result<(), AuditTrailError> {
        sqlx::query("INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2)")
            .bind(size)
            .bind(note)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Up to `limit` records after `seq`, in sequence order (a verifier pages through the trail).
    pub async fn records_after(&self, seq: i64, limit: i64) -> Result<Vec<StoredRecord>, AuditTrailError> {
        let rows =
            sqlx::query("SELECT seq, prev, hash, record FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredRecord { seq: r.get(0), prev: r.get(1), hash: r.get(2), record: r.get(3) })
            .collect())
    }

    /// Every checkpoint: its row id and its signed note, in the order written.
    pub async fn checkpoints(&self) -> Result<Vec<(i64, String)>, AuditTrailError> {
        let rows = sqlx::query("SELECT id, note FROM audit_checkpoints ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records matching `query`, newest first (issue 18, `vigie audit search`): the equality
    /// filters are JSON containments the GIN index of `0002_audit_search.sql` answers, the time
    /// range goes through `written_at` (indexed, widened by [`TrailQuery::SLACK_SECS`]) and the
    /// record's own `at` (exact).
    pub async fn search(&self, query: &TrailQuery) -> Result<Vec<StoredRecord>, AuditTrailError> {
        let mut q =
            sqlx::QueryBuilder::<sqlx::Postgres>::new("SELECT seq, prev, hash, record FROM audit_records WHERE TRUE");
        if !query.any_of.is_empty() {
            // One containment per alternative, OR-ed: each is answered by the index (a BitmapOr).
            q.push(" AND (");
            for (i, object) in query.any_of.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                q.push("record::jsonb @> ").push_bind(object.clone()).push("::jsonb");
            }
            q.push(")");
        }
        if let Some((unix, text)) = &query.from {
            q.push(" AND written_at >= to_timestamp(").push_bind(unix - TrailQuery::SLACK_SECS).push(")");
            q.push(" AND record::jsonb->>'at' >= ").push_bind(text.clone());
        }
        if let Some((unix, text)) = &query.to {
            q.push(" AND written_at < to_timestamp(").push_bind(unix + TrailQuery::SLACK_SECS).push(")");
            q.push(" AND record::jsonb->>'at' < ").push_bind(text.clone());
        }
        if let Some(before) = query.before {
            q.push(" AND seq < ").push_bind(before);
        }
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(query.limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredRecord { seq: r.get(0), prev: r.get(1), hash: r.get(2), record: r.get(3) })
            .collect())
    }

    /// The signed purge notes (`audit_purge_notes`): row id and note, in the order written. Empty
    /// on a trail whose migrations predate the purge.
    pub async fn purge_notes(&self) -> Result<Vec<(i64, String)>, AuditTrailError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('audit_purge_notes')::text").fetch_one(&self.pool).await?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query("SELECT id, note FROM audit_purge_notes ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Stores the signed purge `note` and turns the records it lists (`seq`, hex `hash`) into
    /// stubs dated `day` (`YYYY-MM-DD`), in one transaction, through `vigie_audit_purge`
    /// (`0003_audit_purge.sql`: the only UPDATE the trail lets through, with its owner's rights).
    /// Returns how many rows became stubs (a row whose hash is not the one listed is left alone).
    pub async fn purge(&self, listed: &[(i64, String)], day: &str, note: &str) -> Result<u64, AuditTrailError> {
        let (seqs, hashes): (Vec<i64>, Vec<String>) = listed.iter().cloned().unzip();
        let stubbed: i64 = sqlx::query_scalar("SELECT vigie_audit_purge($1::BIGINT[], $2::TEXT[], $3::DATE, $4)")
            .bind(seqs)
            .bind(hashes)
            .bind(day)
            .bind(note)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(stubbed).unwrap_or(0))
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// What `f` gives, or `None` once `deadline` (if any) has passed.
async fn by<T>(deadline: Option<tokio::time::Instant>, f: impl std::future::Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, f).await.ok(),
        None => Some(f.await),
    }
}
