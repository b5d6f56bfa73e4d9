//! [`SqlDirectory`]: the directory port on SQLite (a file that several gateway processes on one
//! machine may share: WAL journal, busy timeout, write transactions taken up front) or on
//! PostgreSQL (replicas on several machines: row locks where an invariant needs them).
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, Directory, DirectoryError, Identity};

use crate::db::{Dialect, Pool, Tx, on_pool, on_tx};
use crate::rules;
use crate::schema::{self, NewerSchema, SchemaError, SchemaVersions};

/// How long a statement waits for another process's write to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per process to a database file; SQLite serialises writers anyway.
const MAX_CONNECTIONS: u32 = 8;
/// Connections per replica to a PostgreSQL server: the directory is read at logins, not on the
/// SSO hot path, and a server's connection slots are shared by every replica.
const MAX_PG_CONNECTIONS: u32 = 10;
/// How long a replica waits for a PostgreSQL connection (from the pool, or a new one to a server
/// that does not answer) before answering "unavailable".
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a PostgreSQL statement runs (waiting for a lock included) before the server cancels
/// it: a login waits seconds at most, then gets "unavailable" rather than hanging.
const PG_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the directory uses its database (`[directory]` in the configuration); `None`: the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Most connections this process opens (`directory.max_connections`): 8 on SQLite, 10 on
    /// PostgreSQL.
    pub max_connections: Option<u32>,
    /// `directory.statement_timeout_ms`: on PostgreSQL, longest a statement runs (waiting for a
    /// row lock included) before the server cancels it; on SQLite, longest a write waits for
    /// another process's. 5 s.
    pub statement_timeout: Option<Duration>,
    /// `directory.connect_timeout_ms`: on PostgreSQL, longest a request waits for a connection
    /// (a free one of the pool, or a new one to a server that is down or unreachable) before
    /// the directory answers "unavailable". 5 s.
    pub connect_timeout: Option<Duration>,
    /// What to do with a schema newer than this Vigie's migrations (a rolling upgrade).
    pub newer_schema: NewerSchema,
}
/// Attempts at opening, when another process is creating or migrating the same file.
const OPEN_ATTEMPTS: u32 = 5;

/// The directory in an SQLite database (a file, or memory for tests) or on a PostgreSQL server.
///
/// Affectations are returned main unit first: by decreasing share, then by unit code.
/// The `id` of an [`Identity`] given to `upsert_identity` is ignored: identities are keyed
/// by matricule and their id (a UUID v7) is chosen by the adapter when they are created.
#[derive(Clone, Debug)]
pub struct SqlDirectory {
    pub(crate) pool: Pool,
    schema: SchemaVersions,
    /// The fence of the job's lease each write transaction checks ([`SqlDirectory::fenced`]).
    pub(crate) fence: Option<vigie_core::directory::Fence>,
}

impl SqlDirectory {
    /// Opens (creating it if missing, for SQLite) and migrates the directory database at `url`,
    /// e.g. `sqlite:///var/lib/vigie/directory.db`, `sqlite::memory:` or
    /// `postgres://vigie@db.example/vigie?sslmode=verify-full`. On PostgreSQL the database must
    /// exist; migrations run behind the migrator's advisory lock, so replicas that start
    /// together apply them once.
    pub async fn open(url: &str) -> Result<SqlDirectory, DirectoryError> {
        Self::open_with(url, &OpenOptions::default()).await
    }

    /// [`SqlDirectory::open`], with the pool size and timeout of `options`.
    pub async fn open_with(url: &str, options: &OpenOptions) -> Result<SqlDirectory, DirectoryError> {
        if options.max_connections == Some(0) {
            return Err(DirectoryError::Invalid(
                "`directory.max_connections` is 0: the directory needs at least 1 connection".into(),
            ));
        }
        if options.connect_timeout.is_some_and(|t| t.as_millis() == 0) {
            return Err(DirectoryError::Invalid(
                "`directory.connect_timeout_ms` is 0: give the longest a request may wait for a connection, in \
                 milliseconds (e.g. 5000)"
                    .into(),
            ));
        }
        if options.statement_timeout.is_some_and(|t| t.as_millis() == 0) {
            return Err(DirectoryError::Invalid(
                "`directory.statement_timeout_ms` is 0: give the longest a statement may take, in \
                 milliseconds (e.g. 5000)"
                    .into(),
            ));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url, options).await;
        }
        let busy_timeout = options.statement_timeout.unwrap_or(BUSY_TIMEOUT);
        if !url.starts_with("sqlite:") {
            // The URL is not echoed: a PostgreSQL URL may carry a password.
            return Err(DirectoryError::Unavailable(
                "the directory URL must start with `sqlite:` (e.g. `sqlite:///var/lib/vigie/directory.db`) or \
                 `postgres://` (e.g. `postgres://vigie@db/vigie`): check `directory.url`"
                    .into(),
            ));
        }
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| open_error(url, &e.to_string()))?
            .create_if_missing(true)
            .busy_timeout(busy_timeout);
        if !in_memory {
            // WAL lets readers of one process go on while another process writes.
            connect = connect.journal_mode(SqliteJournalMode::Wal);
        }
        let pool_options = if in_memory {
            // An in-memory database lives as long as one connection to it: keep exactly one.
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(options.max_connections.unwrap_or(MAX_CONNECTIONS))
        };

        let mut attempt = 1;
        loop {
            let connected = pool_options.clone().connect_with(connect.clone()).await.map(Pool::Sqlite);
            match Self::migrate(connected, options.newer_schema).await {
                Ok((pool, schema)) => return SqlDirectory { pool, schema, fence: None }.with_people_search().await,
                Err(e) if attempt < OPEN_ATTEMPTS && e.is_race() => {
                    // Another process is setting up the same file (switching it to WAL, or
                    // running the same migrations): once it is done, a new attempt succeeds.
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into_directory_error(url)),
            }
        }
    }

    async fn open_postgres(url: &str, options: &OpenOptions) -> Result<SqlDirectory, DirectoryError> {
        let timeout = options.statement_timeout.unwrap_or(PG_STATEMENT_TIMEOUT).as_millis().to_string();
        // Parse errors of sqlx may quote the URL: say only what to check.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| {
                DirectoryError::Unavailable(
                    "the PostgreSQL URL in `directory.url` cannot be read: expected \
                 `postgres://user[:password]@host[:port]/database[?sslmode=…]` (percent-encode special \
                 characters of the password)"
                        .into(),
                )
            })?
            .options([("statement_timeout", timeout.as_str())]);
        let connected = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(MAX_PG_CONNECTIONS))
            .acquire_timeout(options.connect_timeout.unwrap_or(PG_ACQUIRE_TIMEOUT))
            .connect_with(connect)
            .await
            .map(Pool::Postgres);
        let (pool, schema) =
            Self::migrate(connected, options.newer_schema).await.map_err(|e| e.into_directory_error(url))?;
        SqlDirectory { pool, schema, fence: None }.with_people_search().await
    }

    /// The directory once its people search index is complete (see `refresh_people_search`).
    async fn with_people_search(self) -> Result<SqlDirectory, DirectoryError> {
        if let Err(e) = self.refresh_people_search().await {
            self.pool.close().await;
            return Err(e);
        }
        Ok(self)
    }

    async fn migrate(
        connected: Result<Pool, sqlx::Error>,
        newer: NewerSchema,
    ) -> Result<(Pool, SchemaVersions), OpenError> {
        let pool = connected.map_err(OpenError::Connect)?;
        match schema::migrate(&pool, newer).await {
            Ok(versions) => Ok((pool, versions)),
            Err(e) => {
                pool.close().await;
                Err(OpenError::Migrate(e))
            }
        }
    }

    /// The schema version before and after the migrations this open ran.
    pub fn schema_versions(&self) -> SchemaVersions {
        self.schema
    }

    /// Closes every connection; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Which database this directory is on.
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// A write transaction. On SQLite it holds the write lock from its start: a deferred
    /// transaction that reads before it writes may find, in WAL mode, that another process
    /// wrote in between, and then fails at once instead of waiting out the busy timeout. On
    /// PostgreSQL it is READ COMMITTED: what must not change between a read and the write that
    /// depends on it is read `FOR UPDATE`. A [`SqlDirectory::fenced`] directory checks its fence
    /// first, in the transaction.
    pub(crate) async fn begin_write(&self) -> Result<Tx, DirectoryError> {
        let mut tx = match &self.pool {
            Pool::Sqlite(p) => p.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
            Pool::Postgres(p) => p.begin().await.map(Tx::Postgres),
        }
        .map_err(|e| failed("starting a write", &e))?;
        if let Some(fence) = &self.fence
            && let Err(e) = crate::fences::raise(&mut tx, fence).await
        {
            // Nothing was written; a rollback that fails leaves the connection to the pool's own.
            let _ = tx.rollback().await;
            return Err(e);
        }
        Ok(tx)
    }
}

enum OpenError {
    Connect(sqlx::Error),
    Migrate(SchemaError),
}

impl OpenError {
    /// Whether the failure may come from another process opening the same file at once.
    fn is_race(&self) -> bool {
        match self {
            OpenError::Connect(e) => is_busy(e),
            OpenError::Migrate(SchemaError::Migrate(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..))) => {
                true
            }
            OpenError::Migrate(_) => false,
        }
    }

    fn into_directory_error(self, url: &str) -> DirectoryError {
        let postgres = !url.starts_with("sqlite:");
        match self {
            // sqlx's connection errors name the host and the cause, never the password.
            OpenError::Connect(e) if postgres => DirectoryError::Unavailable(format!(
                "cannot connect to the PostgreSQL directory database: {e}: check `directory.url` (host, \
                 port, database, user, password, sslmode) and that the server is up"
            )),
            OpenError::Connect(e) => open_error(url, &e.to_string()),
            OpenError::Migrate(SchemaError::Newer { applied, known }) => DirectoryError::Unavailable(format!(
                "the directory's schema is at version {applied}, newer than this Vigie's latest migration \
                 ({known}): a newer Vigie migrated it, and this one does not take it back; run `vigie migrate` \
                 of the newest version deployed (serve runs on it unless `directory.accept_newer_schema` is \
                 false)"
            )),
            OpenError::Migrate(SchemaError::Migrate(e)) => {
                let at = if postgres { String::new() } else { format!(" at {url}") };
                DirectoryError::Unavailable(format!(
                    "cannot bring the directory database{at} up to date: {e}: check that `directory.url` \
                     points to a Vigie directory and that this Vigie is not older than the last one that \
                     opened it"
                ))
            }
        }
    }
}

fn open_error(url: &str, reason: &str) -> DirectoryError {
    DirectoryError::Unavailable(format!(
        "cannot open the directory database at {url}: {reason}: check `directory.url` (and that \
         its folder exists and is writable)"
    ))
}

/// SQLITE_BUSY and its extended codes.
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::sqlite::SqliteError>())
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

pub(crate) fn failed(doing: &str, e: &sqlx::Error) -> DirectoryError {
    let canceled = e
        .as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
        .is_some_and(|d| d.code() == "57014");
    let hint = if is_busy(e) {
        " (another process kept the database locked longer than `directory.statement_timeout_ms`)"
    } else if canceled {
        " (the statement took longer than `directory.statement_timeout_ms`: a slow server, or a row \
         locked by another replica)"
    } else {
        ""
    };
    DirectoryError::Unavailable(format!("the directory database failed while {doing}: {e}{hint}"))
}

fn corrupt(what: &str) -> DirectoryError {
    DirectoryError::Unavailable(format!("the directory database holds {what}: it was edited by hand? fix the row"))
}

pub(crate) fn now() -> Result<String, DirectoryError> {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| DirectoryError::Unavailable(format!("cannot format the current time: {e}")))
}

/// Checks what the schema cannot say, with messages a person can act on.
pub(crate) fn validate_identity(identity: &Identity) -> Result<(), DirectoryError> {
    let check = || -> Result<(), String> {
        rules::check_matricule(&identity.matricule)?;
        rules::check_text("family name", &identity.family_name, true)?;
        rules::check_text("given name", &identity.given_name, true)?;
        if let Some(date) = &identity.birth_date {
            rules::check_birth_date(date)?;
        }
        if let Some(metier) = &identity.metier {
            rules::check_text("métier", metier, false)?;
        }
        if let Some(grade) = &identity.grade {
            rules::check_text("grade", grade, false)?;
        }
        rules::check_units(&identity.units)
    };
    check().map_err(|e| DirectoryError::Invalid(format!("identity {:?}: {e}", identity.matricule)))
}

/// Creates or updates the identity with this matricule and replaces its affectations, inside
/// the caller's write transaction. Returns its id and whether it was created.
pub(crate) async fn store_identity(tx: &mut Tx, identity: &Identity) -> Result<(String, bool), DirectoryError> {
    validate_identity(identity)?;
    let now = now()?;
    let new_id = uuid::Uuid::now_v7().to_string();
    let idnat = identity.idnat.as_ref().map(IdNat::as_str);
    let stored = on_tx!(tx, |c| {
        // A savepoint: on PostgreSQL a failed statement aborts the whole transaction, and the
        // refusal below still has to look up who holds the idNat.
        let mut attempt = sqlx::Connection::begin(&mut *c).await.map_err(|e| failed("storing an identity", &e))?;
        let stored = sqlx::query_scalar::<_, String>(
            "INSERT INTO identities (id, matricule, family_name, given_name, birth_date, metier, \
                                     grade, idnat, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT (matricule) DO UPDATE SET \
                 family_name = excluded.family_name, given_name = excluded.given_name, \
                 birth_date = excluded.birth_date, metier = excluded.metier, \
                 grade = excluded.grade, idnat = excluded.idnat, updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(&new_id)
        .bind(&identity.matricule)
        .bind(&identity.family_name)
        .bind(&identity.given_name)
        .bind(&identity.birth_date)
        .bind(&identity.metier)
        .bind(&identity.grade)
        .bind(idnat)
        .bind(&now)
        .fetch_one(&mut *attempt)
        .await;
        let ended = if stored.is_ok() { attempt.commit().await } else { attempt.rollback().await };
        ended.map_err(|e| failed("storing an identity", &e))?;
        stored
    });
    let id = match stored {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            // The matricule conflict is the upsert itself: what is left is the idNat.
            let holder = on_tx!(tx, |c| {
                sqlx::query_scalar::<_, String>("SELECT matricule FROM identities WHERE idnat = $1 AND matricule <> $2")
                    .bind(idnat)
                    .bind(&identity.matricule)
                    .fetch_optional(&mut *c)
                    .await
            })
            .map_err(|e| failed("looking up an idNat", &e))?;
            return Err(DirectoryError::Invalid(match holder {
                Some(other) => format!(
                    "identity {:?}: idNat {} already belongs to the identity with matricule \
                     {other:?}: an idNat names one person, fix one of the two",
                    identity.matricule,
                    idnat.unwrap_or_default()
                ),
                None => format!("identity {:?}: {e}", identity.matricule),
            }));
        }
        Err(e) => return Err(failed("storing an identity", &e)),
    };

    on_tx!(tx, |c| {
        sqlx::query("DELETE FROM affectations WHERE identity_id = $1")
            .bind(&id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| failed("replacing affectations", &e))?;
    for unit in &identity.units {
        on_tx!(tx, |c| {
            sqlx::query("INSERT INTO affectations (identity_id, uf, share) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(&unit.uf)
                .bind(i32::from(unit.share))
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(|e| failed("storing affectations", &e))?;
    }
    crate::people_search::index_person(tx, &id).await?;
    let created = id == new_id;
    Ok((id, created))
}

/// Creates or replaces the account of an identity, inside the caller's write transaction.
pub(crate) async fn store_account(tx: &mut Tx, account: &Account) -> Result<(), DirectoryError> {
    rules::check_username(&account.username).map_err(DirectoryError::Invalid)?;
    let stored = on_tx!(tx, |c| {
        // A savepoint, as in `store_identity`: the refusal looks up the username's holder.
        let mut attempt = sqlx::Connection::begin(&mut *c).await.map_err(|e| failed("storing an account", &e))?;
        let stored = sqlx::query(
            "INSERT INTO accounts (identity_id, username, password_hash, totp_secret, disabled) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (identity_id) DO UPDATE SET \
                 username = excluded.username, password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret, disabled = excluded.disabled",
        )
        .bind(&account.identity_id)
        .bind(&account.username)
        .bind(&account.password_hash)
        .bind(&account.totp_secret)
        .bind(account.disabled)
        .execute(&mut *attempt)
        .await
        .map(|_| ());
        let ended = if stored.is_ok() { attempt.commit().await } else { attempt.rollback().await };
        ended.map_err(|e| failed("storing an account", &e))?;
        stored
    });
    match stored {
        Ok(()) => crate::people_search::index_person(tx, &account.identity_id).await,
        Err(e) if is_foreign_key_violation(&e) => Err(DirectoryError::Invalid(format!(
            "there is no identity with id {:?}: create the identity before its account",
            account.identity_id
        ))),
        Err(e) if is_unique_violation(&e) => {
            let holder = on_tx!(tx, |c| {
                sqlx::query_scalar::<_, String>(
                    "SELECT i.matricule FROM accounts a JOIN identities i ON i.id = a.identity_id \
                     WHERE a.username = $1",
                )
                .bind(&account.username)
                .fetch_optional(&mut *c)
                .await
            })
            .map_err(|e| failed("looking up a username", &e))?;
            Err(DirectoryError::Invalid(match holder {
                Some(matricule) => format!(
                    "username {:?} is already the login of another identity (matricule \
                     {matricule:?}): choose another username",
                    account.username
                ),
                None => format!("username {:?}: {e}", account.username),
            }))
        }
        Err(e) => Err(failed("storing an account", &e)),
    }
}

/// Whether this identity has an account.
pub(crate) async fn has_account(tx: &mut Tx, identity_id: &str) -> Result<bool, DirectoryError> {
    on_tx!(tx, |c| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM accounts WHERE identity_id = $1")
            .bind(identity_id)
            .fetch_one(&mut *c)
            .await
    })
    .map(|n| n > 0)
    .map_err(|e| failed("looking up an account", &e))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
}

pub(crate) type IdentityRow =
    (String, String, String, String, Option<String>, Option<String>, Option<String>, Option<String>);

/// The columns of `identities` an [`IdentityRow`] holds, in its order (a macro: sqlx takes only
/// literal SQL, and `concat!` builds it from this).
macro_rules! identity_columns {
    () => {
        "id, matricule, family_name, given_name, birth_date, metier, grade, idnat"
    };
}
pub(crate) use identity_columns;

/// An identity from its row and its affectations.
pub(crate) fn identity_of(row: IdentityRow, units: Vec<Affectation>) -> Result<Identity, DirectoryError> {
    let (id, matricule, family_name, given_name, birth_date, metier, grade, idnat) = row;
    let idnat = idnat
        .map(|s| IdNat::parse(&s).map_err(|e| corrupt(&format!("an invalid idNat {s:?} for identity {id}: {e}"))))
        .transpose()?;
    Ok(Identity { id, matricule, family_name, given_name, birth_date, metier, grade, idnat, units })
}

/// One affectation row of identity `id`.
pub(crate) fn affectation(id: &str, uf: String, share: i32) -> Result<Affectation, DirectoryError> {
    u8::try_from(share)
        .map(|share| Affectation { uf, share })
        .map_err(|_| corrupt(&format!("a share of {share} for identity {id}")))
}

type AccountRow = (String, String, Option<String>, Option<Vec<u8>>, bool);

#[async_trait]
impl Directory for SqlDirectory {
    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, DirectoryError> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, AccountRow>(
            "SELECT identity_id, username, password_hash, totp_secret, disabled \
             FROM accounts WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("looking up an account", &e))?;
        Ok(row.map(|(identity_id, username, password_hash, totp_secret, disabled)| Account {
            identity_id,
            username,
            password_hash,
            totp_secret,
            disabled,
        }))
    }

    async fn identity_by_idnat(&self, idnat: &IdNat) -> Result<Option<Identity>, DirectoryError> {
        let id = on_pool!(self.pool, |c| sqlx::query_scalar::<_, String>("SELECT id FROM identities WHERE idnat = $1")
            .bind(idnat.as_str())
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("looking up an identity by idNat", &e))?;
        match id {
            Some(id) => self.identity(&id).await,
            None => Ok(None),
        }
    }

    async fn identity(&self, id: &str) -> Result<Option<Identity>, DirectoryError> {
        let row = on_pool!(self.pool, |c| sqlx::query_as::<_, IdentityRow>(concat!(
            "SELECT ",
            identity_columns!(),
            " FROM identities WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(c)
        .await)
        .map_err(|e| failed("looking up an identity", &e))?;
        let Some(row) = row else { return Ok(None) };
        let units = on_pool!(self.pool, |c| sqlx::query_as::<_, (String, i32)>(
            "SELECT uf, share FROM affectations WHERE identity_id = $1 ORDER BY share DESC, uf",
        )
        .bind(&row.0)
        .fetch_all(c)
        .await)
        .map_err(|e| failed("looking up affectations", &e))?;
        let units = units.into_iter().map(|(uf, share)| affectation(&row.0, uf, share)).collect::<Result<_, _>>()?;
        identity_of(row, units).map(Some)
    }

    async fn username_of(&self, identity_id: &str) -> Result<Option<String>, DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_scalar::<_, String>("SELECT username FROM accounts WHERE identity_id = $1")
            .bind(identity_id)
            .fetch_optional(c)
            .await)
        .map_err(|e| failed("looking up the account of an identity", &e))
    }

    async fn account_disabled(&self, identity_id: &str) -> Result<bool, DirectoryError> {
        let disabled = on_pool!(self.pool, |db| sqlx::query_scalar::<_, bool>(
            "SELECT disabled FROM accounts WHERE identity_id = $1"
        )
        .bind(identity_id)
        .fetch_optional(db)
        .await)
        .map_err(|e| failed("reading an account", &e))?;
        Ok(disabled.unwrap_or(false))
    }

    async fn create_announced(
        &self,
        idnat: &IdNat,
        family_name: Option<&str>,
        given_name: Option<&str>,
    ) -> Result<Option<(String, vigie_core::directory::Announcement)>, DirectoryError> {
        SqlDirectory::create_announced(self, idnat, family_name, given_name).await
    }

    async fn upsert_identity(&self, identity: &Identity) -> Result<String, DirectoryError> {
        let mut tx = self.begin_write().await?;
        let (id, _created) = store_identity(&mut tx, identity).await?;
        tx.commit().await.map_err(|e| failed("saving an identity", &e))?;
        Ok(id)
    }

    async fn upsert_account(&self, account: &Account) -> Result<(), DirectoryError> {
        let mut tx = self.begin_write().await?;
        store_account(&mut tx, account).await?;
        tx.commit().await.map_err(|e| failed("saving an account", &e))
    }

    async fn identity_for_directory_entry(
        &self,
        directory_id: &str,
        matricule: &str,
    ) -> Result<Option<Identity>, DirectoryError> {
        self.identity_for_entry(directory_id, matricule).await
    }

    async fn link_to_directory(&self, identity_id: &str, directory_id: &str) -> Result<bool, DirectoryError> {
        self.link_identity(identity_id, directory_id).await
    }

    async fn directory_linked_enabled(&self) -> Result<Vec<(String, String, String)>, DirectoryError> {
        self.linked_enabled().await
    }

    async fn disable_account(&self, identity_id: &str, reason: &str) -> Result<bool, DirectoryError> {
        self.disable_account_of(identity_id, reason).await
    }

    async fn directory_sync_state(&self, source: &str) -> Result<Option<(Option<String>, i64)>, DirectoryError> {
        self.sync_state(source).await
    }

    async fn set_directory_sync_state(
        &self,
        source: &str,
        mark: Option<&str>,
        full_pass_at: i64,
    ) -> Result<(), DirectoryError> {
        self.set_sync_state(source, mark, full_pass_at).await
    }

    async fn change_matricule(&self, identity_id: &str, matricule: &str) -> Result<bool, DirectoryError> {
        self.set_matricule(identity_id, matricule).await
    }

    async fn dmp_withheld(&self, identity_id: &str) -> Result<Option<String>, DirectoryError> {
        self.rpps_dmp_withheld(identity_id).await
    }

    async fn ping(&self) -> Result<(), DirectoryError> {
        on_pool!(self.pool, |c| sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(c).await)
            .map(|_| ())
            .map_err(|e| failed("answering a ping", &e))
    }
}
