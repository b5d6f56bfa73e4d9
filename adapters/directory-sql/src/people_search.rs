//! The people search index (migration 0015): the folded terms a console search may start, kept in
//! step by every writer of names, matricule, idNat or login, filled at open for rows it lacks or
//! holds from an older version of the terms (migration 0018).
//!
//! A search was a read of every identity folded in Rust (p99 8.2 s at 100,000 identities, issue
//! 17); it is now a prefix range on an index, on SQLite and PostgreSQL alike (terms are bytes:
//! byte order whatever the collation).
use sqlx::QueryBuilder;
use vigie_core::directory::DirectoryError;
use vigie_core::names::fold;

use crate::SqlDirectory;
use crate::db::{Dialect, Tx, on_pool, on_tx};
use crate::directory::failed;

/// Kind of the terms compared with the folded search: names and login.
pub(crate) const NAME: &str = "n";
/// Kind of the terms compared with the search in capitals: matricule and idNat.
pub(crate) const CODE: &str = "c";
/// People rewritten by one statement: 7 terms × 3 parameters each stays far below SQLite's and
/// PostgreSQL's parameter limits.
const CHUNK: usize = 500;
/// The version of [`Entry::terms`] this adapter writes (`people_search.terms_version`, migration
/// 0018): raise it when the terms or the fold change, and the next open rewrites every row.
pub(crate) const TERMS_VERSION: i64 = 1;
/// Separates the fields of `people_search.source` (a control character no name carries).
const SEP: char = '\u{1F}';

/// What the terms of one person are made from.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) family: String,
    pub(crate) given: String,
    pub(crate) matricule: String,
    pub(crate) idnat: Option<String>,
    pub(crate) username: Option<String>,
}

impl Entry {
    fn source(&self) -> String {
        let (idnat, user) = (self.idnat.as_deref().unwrap_or(""), self.username.as_deref().unwrap_or(""));
        format!("{}{SEP}{}{SEP}{}{SEP}{idnat}{SEP}{user}", self.family, self.given, self.matricule)
    }

    /// The terms a search may start: folded family name, given name, both in either order and
    /// login; the matricule in capitals and the idNat as they are.
    pub(crate) fn terms(&self) -> Vec<(&'static str, String)> {
        let (f, g) = (fold(&self.family), fold(&self.given));
        let mut terms = vec![(NAME, format!("{g}{f}")), (NAME, format!("{f}{g}")), (NAME, f), (NAME, g)];
        terms.extend(self.username.as_deref().map(|u| (NAME, fold(u))));
        terms.push((CODE, self.matricule.to_uppercase()));
        terms.extend(self.idnat.clone().map(|i| (CODE, i)));
        terms.retain(|(_, t)| !t.is_empty());
        terms.sort();
        terms.dedup();
        terms
    }
}

/// The range `[low, high)` of the terms that start with `prefix`: 0xFF never occurs in UTF-8.
pub(crate) fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let low = prefix.as_bytes().to_vec();
    let mut high = low.clone();
    high.push(0xFF);
    (low, high)
}

/// What the terms of one person are made from, by id.
const ENTRY: &str = "SELECT i.id, i.family_name AS family, i.given_name AS given, i.matricule, i.idnat, \
     a.username FROM identities i LEFT JOIN accounts a ON a.identity_id = i.id WHERE i.id = $1";

/// Rewrites the search terms of the person `id` inside the caller's write transaction: every
/// writer of names, matricule, idNat or login calls it before committing.
pub(crate) async fn index_person(tx: &mut Tx, id: &str) -> Result<(), DirectoryError> {
    let entry = on_tx!(tx, |c| sqlx::query_as::<_, Entry>(ENTRY).bind(id).fetch_optional(&mut *c).await)
        .map_err(|e| failed("reading a person to index", &e))?;
    match entry {
        Some(entry) => write(tx, &[entry]).await,
        None => Ok(()),
    }
}

/// Replaces the rows of these people in both tables.
async fn write(tx: &mut Tx, entries: &[Entry]) -> Result<(), DirectoryError> {
    for chunk in entries.chunks(CHUNK) {
        for table in ["people_search_terms", "people_search"] {
            on_tx!(tx, |c| {
                let mut q = QueryBuilder::new(format!("DELETE FROM {table} WHERE identity_id IN ("));
                let mut ids = q.separated(", ");
                for e in chunk {
                    ids.push_bind(e.id.as_str());
                }
                q.push(")");
                q.build().execute(&mut *c).await.map(drop)
            })
            .map_err(|e| failed("clearing search terms", &e))?;
        }
        on_tx!(tx, |c| {
            let mut q =
                QueryBuilder::new("INSERT INTO people_search (identity_id, family, given, source, terms_version) ");
            q.push_values(chunk, |mut row, e| {
                row.push_bind(e.id.as_str())
                    .push_bind(fold(&e.family).into_bytes())
                    .push_bind(fold(&e.given).into_bytes())
                    .push_bind(e.source())
                    .push_bind(TERMS_VERSION);
            });
            q.build().execute(&mut *c).await.map(drop)
        })
        .map_err(|e| failed("indexing people", &e))?;
        let terms: Vec<(&str, &'static str, String)> =
            chunk.iter().flat_map(|e| e.terms().into_iter().map(move |(k, t)| (e.id.as_str(), k, t))).collect();
        on_tx!(tx, |c| {
            let mut q = QueryBuilder::new("INSERT INTO people_search_terms (identity_id, kind, term) ");
            q.push_values(&terms, |mut row, (id, kind, term)| {
                row.push_bind(*id).push_bind(*kind).push_bind(term.as_bytes());
            });
            q.build().execute(&mut *c).await.map(drop)
        })
        .map_err(|e| failed("indexing people", &e))?;
    }
    Ok(())
}

/// Whether a row is below [`TERMS_VERSION`] (a range of `people_search_by_version`) or an identity
/// has none (written before migration 0015): read-only, and neither reads nor folds a name.
/// (An integer: SQLite has no boolean type for an expression.)
const ANY_STALE: &str = "SELECT CASE WHEN EXISTS (SELECT 1 FROM people_search WHERE terms_version < $1) \
     OR EXISTS (SELECT 1 FROM identities i WHERE NOT EXISTS \
     (SELECT 1 FROM people_search s WHERE s.identity_id = i.id)) THEN 1 ELSE 0 END";

/// The people [`ANY_STALE`] finds, with what their terms are made from.
const STALE: &str = "SELECT i.id, i.family_name AS family, i.given_name AS given, i.matricule, i.idnat, \
     a.username FROM identities i LEFT JOIN accounts a ON a.identity_id = i.id \
     WHERE i.id IN (SELECT identity_id FROM people_search WHERE terms_version < $1) \
     OR NOT EXISTS (SELECT 1 FROM people_search s WHERE s.identity_id = i.id)";

impl SqlDirectory {
    /// Indexes the people the search index lacks (identities present before migration 0015) or
    /// holds from an older version of the terms (rows written before migration 0018, or by a
    /// replica one release older during a rolling upgrade). Returns how many were (re)indexed.
    ///
    /// Every open calls it, `vigie` commands included: when nothing is stale it is one read-only
    /// statement on indexes, with no write transaction and no lock.
    pub async fn refresh_people_search(&self) -> Result<usize, DirectoryError> {
        let any =
            on_pool!(self.pool, |c| sqlx::query_scalar::<_, i32>(ANY_STALE).bind(TERMS_VERSION).fetch_one(c).await)
                .map_err(|e| failed("reading the search index", &e))?;
        if any == 0 {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        if self.dialect() == Dialect::Postgres {
            // Replicas opening together: one refreshes, the others then find nothing stale.
            on_tx!(tx, |c| sqlx::query("SELECT pg_advisory_xact_lock(7017015)").execute(&mut *c).await.map(drop))
                .map_err(|e| failed("locking the search index", &e))?;
        }
        let stale = on_tx!(tx, |c| sqlx::query_as::<_, Entry>(STALE).bind(TERMS_VERSION).fetch_all(&mut *c).await)
            .map_err(|e| failed("reading the search index", &e))?;
        if !stale.is_empty() {
            write(&mut tx, &stale).await?;
        }
        tx.commit().await.map_err(|e| failed("indexing people", &e))?;
        Ok(stale.len())
    }
}
