//! A database of its own per test: an SQLite file, removed (with its WAL files) when the test
//! ends, or a fresh database on the PostgreSQL server of `VIGIE_TEST_POSTGRES_URL` (tests/run
//! starts one), dropped when the test ends; and [`on_both!`], which runs a test on each.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, Identity};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Where `VIGIE_TEST_POSTGRES_URL` points: a PostgreSQL server's maintenance database
/// (`postgres://user@127.0.0.1:port/postgres`), on which the user may create databases.
pub const POSTGRES_URL_VAR: &str = "VIGIE_TEST_POSTGRES_URL";

/// Defines `mod $name { sqlite, postgres }`: the same test body on a fresh SQLite file and on a
/// fresh PostgreSQL database. Without `VIGIE_TEST_POSTGRES_URL` the PostgreSQL one says it is
/// skipped and passes; with it, a server that cannot be reached fails the test.
#[macro_export]
macro_rules! on_both {
    ($(#[doc = $doc:literal])* async fn $name:ident($db:ident: TestDb) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: common::TestDb) $body

            #[tokio::test]
            async fn sqlite() {
                run(common::TestDb::sqlite(stringify!($name))).await
            }

            #[tokio::test]
            async fn postgres() {
                match common::TestDb::postgres(stringify!($name)).await {
                    Some(db) => run(db).await,
                    None => eprintln!("skipped: {} is not set (tests/run starts a server and sets it)", common::POSTGRES_URL_VAR),
                }
            }
        }
    };
}

/// A fresh database on each database there is: SQLite, and PostgreSQL when
/// `VIGIE_TEST_POSTGRES_URL` is set (for tests that loop, e.g. property tests).
pub async fn each_db(name: &str) -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite(name)];
    dbs.extend(TestDb::postgres(name).await);
    dbs
}

/// A fresh database for one test, on either database.
pub enum TestDb {
    Sqlite(TempDb),
    Postgres(PgDb),
}

impl TestDb {
    pub fn sqlite(name: &str) -> TestDb {
        TestDb::Sqlite(TempDb::new(name))
    }

    /// A fresh database on the server of `VIGIE_TEST_POSTGRES_URL`; `None` when it is not set.
    pub async fn postgres(name: &str) -> Option<TestDb> {
        let admin = std::env::var(POSTGRES_URL_VAR).ok().filter(|u| !u.is_empty())?;
        Some(TestDb::Postgres(PgDb::new(&admin, name).await))
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(db) => db.url(),
            TestDb::Postgres(db) => db.url.clone(),
        }
    }

    /// Another fresh database on the same kind of database as this one.
    pub async fn another(&self, name: &str) -> TestDb {
        match self {
            TestDb::Sqlite(_) => TestDb::sqlite(name),
            TestDb::Postgres(db) => TestDb::Postgres(PgDb::new(&db.admin, name).await),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres(_))
    }
}

/// Runs `sql` on the test's database directly, for what no port may do (e.g. backdating a row).
pub async fn execute(db: &TestDb, sql: &'static str) {
    match db {
        TestDb::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&db.url()).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        TestDb::Postgres(_) => {
            let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// A database created on the test server, dropped (with any connection left) when this goes.
pub struct PgDb {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub async fn new(admin: &str, test: &str) -> PgDb {
        use sqlx::Connection;
        // Lower case, at most 63 bytes: PostgreSQL's identifier limit.
        let mut name: String = test.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
        name =
            format!("t_{}_{}_{}", name.to_ascii_lowercase(), std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL test server of {POSTGRES_URL_VAR}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let (base, _) = admin.rsplit_once('/').expect("a URL ending in /database");
        PgDb { admin: admin.to_owned(), url: format!("{base}/{name}"), name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop cannot await: a thread with its own runtime drops the database.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        });
        if let Ok(Err(e)) = dropped.join() {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

pub struct TempDb {
    pub path: PathBuf,
}

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        let path = std::env::temp_dir().join(format!(
            "vigie-directory-{name}-{}-{}.db",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let db = TempDb { path };
        db.remove();
        db
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

pub fn camille() -> Identity {
    Identity {
        id: String::new(),
        matricule: "004512".into(),
        family_name: "Lefèvre".into(),
        given_name: "Camille".into(),
        birth_date: Some("1979-03-14".into()),
        metier: Some("Médecin".into()),
        grade: Some("Praticien hospitalier".into()),
        idnat: Some(IdNat::parse("810002004512").unwrap()),
        units: vec![Affectation { uf: "UF1234".into(), share: 60 }, Affectation { uf: "UF2201".into(), share: 40 }],
    }
}

pub fn ines() -> Identity {
    Identity {
        id: String::new(),
        matricule: "005377".into(),
        family_name: "Da Silva".into(),
        given_name: "Inès".into(),
        birth_date: None,
        metier: Some("Secrétaire médicale".into()),
        grade: None,
        idnat: None,
        units: vec![],
    }
}

pub fn account(identity_id: &str, username: &str) -> Account {
    Account {
        identity_id: identity_id.into(),
        username: username.into(),
        password_hash: None,
        totp_secret: None,
        disabled: false,
    }
}
