//! The console's people search (issue 17 figures): `--identities` people (100,000 by default, and
//! 10,000) with accounts, written straight into a new directory as an older replica or the data
//! before migration 0015 would leave them, then opened (the index of every one is built at open:
//! its time is printed), then `--queries` searches as HR types them (the first letters of a name,
//! a full name in either order, a login, a matricule, an idNat; accents and case mixed): p50 and
//! p99 of a page of 20, on SQLite and on PostgreSQL (`VIGIE_TEST_POSTGRES_URL`, or a server started
//! with `tests/postgres.sh`).
//!
//! `cargo bench -p vigie-gateway --bench people [-- --identities 100000 --queries 400 --store both|sqlite|postgres]`
//! (release build); `cargo test -p vigie-gateway --bench people -- --identities 10000` runs it on
//! the debug build.
use std::time::{Duration, Instant};

use sqlx::QueryBuilder;
use vigie_directory_sql::SqlDirectory;

mod common;
use common::{Postgres, arg};

const FAMILIES: &[&str] = &[
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefebvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
    "Morin",
    "Mathieu",
    "Clément",
    "Gauthier",
    "Dumont",
    "Lopez",
    "Fontaine",
    "Chevalier",
    "Robin",
    "Masson",
    "Sanchez",
    "Gérard",
    "Nguyen",
    "Boyer",
    "Denis",
    "Lemaire",
    "Duval",
    "Joly",
    "Gautier",
    "Roger",
    "Roche",
    "Roy",
    "Noël",
    "Meyer",
    "Lucas",
    "Meunier",
    "Jean",
    "Pérez",
    "Marchand",
    "Dufour",
    "Blanchard",
    "Marie",
    "Barbier",
    "Brun",
    "Dumas",
    "Brunet",
    "Schmitt",
    "Leroux",
    "Colin",
    "Fernandez",
    "Pierre",
    "Renard",
    "Arnaud",
    "Rolland",
    "Caron",
    "Aubert",
    "Giraud",
    "Leclerc",
    "Vidal",
    "Bourgeois",
    "Renaud",
    "Lemoine",
    "Picard",
    "Gaillard",
    "Philippe",
    "Le Goff",
];
const GIVEN: &[&str] = &[
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Inès",
    "Jade",
    "Louise",
    "Zoé",
    "Hélène",
    "Anaïs",
    "Élodie",
    "Margaux",
    "Sophie",
    "Nathalie",
    "Isabelle",
    "Céline",
    "Julie",
    "Émilie",
    "Aurélie",
    "Claire",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Arthur",
    "Jules",
    "Raphaël",
    "Noé",
    "Théo",
    "Mathéo",
    "Nicolas",
    "Julien",
    "Thomas",
    "Antoine",
    "Maxime",
    "Jérôme",
    "François",
    "Stéphane",
    "Frédéric",
    "Sébastien",
    "Éric",
    "Olivier",
    "Jean-Pierre",
    "Marie-Christine",
    "Anne-Sophie",
    "Pierre",
    "Paul",
    "Yves",
    "Bruno",
    "Loïc",
    "Gaëlle",
    "Maëlle",
    "Noémie",
    "Benoît",
    "Cédric",
    "Xavier",
    "Yann",
    "Agnès",
    "Béatrice",
    "Sylvie",
    "Véronique",
];

/// Person `i`: family and given names (a family name in five is double-barrelled), matricule,
/// login and, for two in three, an idNat.
fn person(i: usize) -> (String, String, String, String, Option<String>) {
    let family = FAMILIES[i % FAMILIES.len()];
    let family = if i.is_multiple_of(5) {
        format!("{family}-{}", FAMILIES[(i / 7) % FAMILIES.len()])
    } else {
        family.to_owned()
    };
    let given = GIVEN[(i / FAMILIES.len()) % GIVEN.len()].to_owned();
    let idnat = (!i.is_multiple_of(3)).then(|| format!("8{:010}", 100_000_000 + i));
    (family, given, format!("M{i:06}"), format!("agent{i}"), idnat)
}

/// Writes `n` people and their accounts with plain SQL, a few thousand per statement.
async fn load<'c, DB, E>(db: E, n: usize)
where
    DB: sqlx::Database,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    E: sqlx::Executor<'c, Database = DB> + Copy,
{
    const AT: &str = "2026-01-01T00:00:00Z";
    for start in (0..n).step_by(2000) {
        let people: Vec<_> = (start..n.min(start + 2000)).map(|i| (i, person(i))).collect();
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO identities (id, matricule, family_name, given_name, idnat, created_at, updated_at) ",
        );
        q.push_values(&people, |mut row, (i, (family, given, matricule, _, idnat))| {
            row.push_bind(format!("id{i}"))
                .push_bind(matricule.clone())
                .push_bind(family.clone())
                .push_bind(given.clone())
                .push_bind(idnat.clone())
                .push_bind(AT.to_owned())
                .push_bind(AT.to_owned());
        });
        q.build().execute(db).await.expect("writing identities");
        let mut q = QueryBuilder::<DB>::new("INSERT INTO accounts (identity_id, username) ");
        q.push_values(&people, |mut row, (i, (_, _, _, login, _))| {
            row.push_bind(format!("id{i}")).push_bind(login.clone());
        });
        q.build().execute(db).await.expect("writing accounts");
    }
}

/// `--queries` searches as HR types them, from the people there are.
fn queries(n: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|k| {
            let i = (k * 7919) % n;
            let (family, given, matricule, login, idnat) = person(i);
            match k % 8 {
                0 => family.chars().take(3).collect(),
                1 => family.to_uppercase().chars().take(5).collect(),
                2 => format!("{given} {family}"),
                3 => format!("{} {}", family.to_lowercase(), given.chars().take(2).collect::<String>()),
                4 => login,
                5 => matricule.to_lowercase(),
                6 => idnat.unwrap_or_else(|| matricule.clone()),
                _ => given.chars().take(4).collect(),
            }
        })
        .collect()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn run(kind: &str, url: &str, n: usize, count: usize) {
    SqlDirectory::open(url).await.expect("creating the directory").close().await;
    let started = Instant::now();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("SQLite");
        load(&pool, n).await;
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("PostgreSQL");
        load(&pool, n).await;
        pool.close().await;
    }
    let loaded = started.elapsed();
    let started = Instant::now();
    let dir = SqlDirectory::open(url).await.expect("opening the directory");
    let indexed = started.elapsed();
    let mut took = Vec::new();
    let mut found = 0;
    for q in queries(n, count) {
        let started = Instant::now();
        let page = dir.search_people(&q, 0, 20).await.expect("searching");
        took.push(started.elapsed());
        assert!(page.total > 0, "{q:?} found nobody: the bench searches for people it wrote");
        found += page.total;
    }
    took.sort();
    println!(
        "{kind}, {n} identities: written in {:.1} s, indexed at open in {:.1} s; {count} searches (page of 20, \
         {} found on average): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        loaded.as_secs_f64(),
        indexed.as_secs_f64(),
        found / count,
        quantile(&took, 0.5).as_secs_f64() * 1e3,
        quantile(&took, 0.99).as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3,
    );
    dir.close().await;
}

/// A new database `name` on the server of `admin` (a URL to its maintenance database); its URL.
async fn fresh_pg_database(admin: &str, name: &str) -> String {
    let pool = sqlx::PgPool::connect(admin).await.expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&pool)
        .await
        .expect("dropping");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("creating");
    pool.close().await;
    let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
    format!("{base}/{name}")
}

#[tokio::main]
async fn main() {
    let largest: usize = arg("--identities", "100000").parse().expect("--identities: a number");
    let count: usize = arg("--queries", "400").parse().expect("--queries: a number");
    let store = arg("--store", "both");
    let sizes: Vec<usize> = if largest > 10_000 { vec![10_000, largest] } else { vec![largest] };
    let dir = std::env::temp_dir().join(format!("vigie-bench-people-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _remove = common::RemoveDir(dir.clone());
    if store != "postgres" {
        for &n in &sizes {
            run("SQLite", &format!("sqlite://{}/people-{n}.db", dir.display()), n, count).await;
        }
    }
    if store != "sqlite" {
        let started;
        let admin = match std::env::var("VIGIE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) => {
                started = None;
                url
            }
            None => {
                let pg = Postgres::start();
                let url = pg.url.clone();
                started = Some(pg);
                url
            }
        };
        for &n in &sizes {
            let name = format!("vigie_bench_people_{}_{n}", std::process::id());
            run("PostgreSQL", &fresh_pg_database(&admin, &name).await, n, count).await;
        }
        drop(started);
    }
}
