//! The directory's schema on PostgreSQL, as a deployment meets it: `vigie migrate` on an empty
//! database then again, replicas migrating one database at the same moment, and a rolling
//! upgrade (an old version running on a schema a newer one expanded; migrate never goes back).
use crate::common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::postgres::{psql, shared_database};
use common::*;

use crate::cli::{run_with, stdout};

/// A data directory of its own for the demo configuration `vigie migrate --data-dir` reads.
fn data_dir() -> PathBuf {
    let marker = temp_file("marker", "");
    marker.parent().expect("temp dir").join("data")
}

fn migrate(dir: &std::path::Path, url: &str) -> std::process::Output {
    run_with(&["migrate", "--data-dir", dir.to_str().expect("UTF-8 path")], &[("VIGIE_DIRECTORY__URL", url)])
}

fn applied(url: &str) -> (i64, i64, i64) {
    let out = psql(url, "SELECT count(*), count(DISTINCT version), max(version) FROM _sqlx_migrations WHERE success");
    let v: Vec<i64> = out.trim().split('|').map(|n| n.parse().expect("a number")).collect();
    (v[0], v[1], v[2])
}

#[tokio::test]
async fn migrate_brings_a_new_postgres_directory_up_to_date_once_then_serve_starts() {
    let Some(db) = shared_database("migrate_once") else { return };
    let dir = data_dir();
    let first = stdout(&migrate(&dir, &db.url));
    assert!(
        first.starts_with("directory (PostgreSQL): schema migrated from version none (new database) to "),
        "{first}"
    );
    // The first line is the directory's; the audit trail's (in PostgreSQL too) follows.
    let directory_line = first.lines().next().expect("the directory's line");
    let version = directory_line.rsplit(' ').next().expect("the version reached").to_owned();
    assert!(first.lines().nth(1).is_some_and(|l| l.starts_with("audit trail (PostgreSQL): ")), "{first}");
    let (rows, distinct, latest) = applied(&db.url);
    assert_eq!((rows, latest.to_string()), (distinct, version.clone()), "each migration recorded once");
    let second = stdout(&migrate(&dir, &db.url));
    assert_eq!(
        second.lines().next(),
        Some(format!("directory (PostgreSQL): schema at version {version}, up to date; nothing applied").as_str())
    );
    assert!(second.lines().nth(1).is_some_and(|l| l.contains("up to date; nothing applied")), "{second}");
    assert_eq!(applied(&db.url), (rows, distinct, latest), "a second run applies nothing");

    let gw = Gateway::start(&[("VIGIE_DIRECTORY__URL", &db.url)]).await;
    let (_, user, _, tokens) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    assert!(!tokens.id.is_empty(), "{} logged in on the PostgreSQL directory", user.username);
}

/// Three replicas' migration jobs started at the same moment on one empty database: each
/// succeeds, the schema is applied once, and exactly one of them says it migrated it (each reads
/// the version under the migration lock).
#[test]
fn three_migrations_started_at_once_on_one_empty_database_apply_the_schema_once() {
    let Some(db) = shared_database("migrate_race") else { return };
    let dirs: Vec<PathBuf> = (0..3).map(|_| data_dir()).collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            Command::new(BIN)
                .args(["migrate", "--data-dir", d.to_str().expect("UTF-8 path")])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("VIGIE_DIRECTORY__URL", &db.url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning vigie migrate")
        })
        .collect();
    let outputs: Vec<String> =
        children.into_iter().map(|c| stdout(&c.wait_with_output().expect("vigie migrate"))).collect();
    // Each store (the directory, then the audit trail in the same database) is migrated by
    // exactly one of the three and found up to date by the two others.
    for store in ["directory (PostgreSQL): ", "audit trail (PostgreSQL): "] {
        let lines: Vec<&str> = outputs.iter().flat_map(|o| o.lines()).filter(|l| l.starts_with(store)).collect();
        let migrated = lines.iter().filter(|l| l.contains("schema migrated from version none (new database)")).count();
        let up_to_date = lines.iter().filter(|l| l.contains("up to date; nothing applied")).count();
        assert_eq!((migrated, up_to_date), (1, 2), "{store}{outputs:#?}");
    }
    let (rows, distinct, _) = applied(&db.url);
    assert_eq!(rows, distinct, "no migration recorded twice");
    assert!(psql(&db.url, "SELECT count(*) FROM identities").trim() == "0", "the schema is there");
}

/// A rolling upgrade: a newer version migrated (expand: a table and a nullable column this
/// version does not know). This version's `serve` runs on it, says so in its log, and serves
/// logins (its writes ignore the new column); its `migrate` refuses to go back, without the
/// password of the URL; `directory.accept_newer_schema = false` makes `serve` refuse too.
#[tokio::test]
async fn an_older_version_serves_on_a_schema_a_newer_one_expanded_and_never_migrates_it_back() {
    let Some(db) = shared_database("newer_schema") else { return };
    let dir = data_dir();
    let version = stdout(&migrate(&dir, &db.url))
        .lines()
        .next()
        .and_then(|directory_line| directory_line.rsplit(' ').next())
        .expect("version")
        .to_owned();
    psql(
        &db.url,
        "CREATE TABLE future_things (id TEXT PRIMARY KEY); \
         ALTER TABLE identities ADD COLUMN future_note TEXT; \
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'a newer version''s expand step', true, '\\x00', 1)",
    );

    let with_password = db.url.replacen("://vigie@", "://vigie:s3cret-pw@", 1);
    let refused = migrate(&dir, &with_password);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "migrate refuses a newer schema");
    assert!(
        stderr.contains("schema is at version 99990101000000, newer than this Vigie's latest migration"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "the password stays out of the message: {stderr}");
    assert_eq!(applied(&db.url).2, 99990101000000, "nothing taken back");

    let gw = Gateway::start(&[("VIGIE_DIRECTORY__URL", &db.url)]).await;
    let (_, _, _, tokens) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    assert!(!tokens.id.is_empty());
    let log = std::fs::read_to_string(gw.data_dir.parent().expect("the gateway's dir").join("vigie.log"))
        .expect("the gateway's log");
    assert!(log.contains("newer than this version's migrations"), "the log says it: {log}");
    assert!(log.contains(&format!("\"known\":{version}")), "{log}");
    drop(gw);

    let strict = run_with(
        &["serve", "--data-dir", dir.to_str().expect("UTF-8"), "--listen", &format!("127.0.0.1:{}", free_port())],
        &[("VIGIE_DIRECTORY__URL", &db.url), ("VIGIE_DIRECTORY__ACCEPT_NEWER_SCHEMA", "false")],
    );
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(!strict.status.success(), "serve refuses when told to");
    assert!(stderr.contains("`directory.accept_newer_schema`"), "{stderr}");
}
