//! The seam between the adapter and its two databases: a pool and a write transaction that are
//! either SQLite or PostgreSQL, and the macros that run one query text on whichever it is.
//!
//! Why not sqlx's `Any` driver: it cannot read SQLite `BOOLEAN` columns (`disabled`, `attested`,
//! `revoked`), and it hides the native connection options (SQLite's WAL and busy timeout). The
//! macros below expand each query once per database, with the native driver's types, so a query
//! is written once (portable SQL, `$n` placeholders) and checked by the compiler on both.
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Which database the directory is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// An SQLite file (or memory): the embedded default, one machine.
    Sqlite,
    /// A PostgreSQL server: replicas on several machines.
    Postgres,
}

/// A connection pool to the directory database.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// A write transaction on the directory database (see `SqlDirectory::begin_write`).
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    /// `&mut Tx` from an owned transaction or from a `&mut Tx` parameter alike (method-call
    /// auto-reborrow), for [`on_tx`].
    pub(crate) fn reborrow(&mut self) -> &mut Tx {
        self
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }
}

/// `on_pool!(pool, |c| body)`: runs `body` with `c` the native pool (`&SqlitePool` or `&PgPool`),
/// compiled once for each database.
macro_rules! on_pool {
    ($pool:expr, |$c:ident| $body:expr) => {
        match &$pool {
            $crate::db::Pool::Sqlite($c) => $body,
            $crate::db::Pool::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_pool;

/// `on_tx!(tx, |c| body)`: runs `body` with `c` the native connection inside the transaction
/// (`&mut SqliteConnection` or `&mut PgConnection`; pass it on as `&mut *c`), compiled once for
/// each database.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx.reborrow() {
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;
