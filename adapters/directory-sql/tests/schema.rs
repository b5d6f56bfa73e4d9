//! The schema across versions: a rolling upgrade runs an old and a new version side by side, so
//! an old version opens a schema with migrations it does not know ([`NewerSchema`]), and every
//! migration is an expand step unless marked as a contract step (docs/operations.md, "Upgrades
//! (expand/contract)").
mod common;

use vigie_core::directory::{Directory, DirectoryError};
use vigie_directory_sql::{NewerSchema, OpenOptions, SqlDirectory};

/// A newer version's migration, recorded as sqlx records one (its own table and an added column).
const NEWER: [&str; 3] = [
    "CREATE TABLE future_things (id TEXT PRIMARY KEY)",
    "ALTER TABLE identities ADD COLUMN future_note TEXT",
    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
     VALUES (99990101000000, 'newer', TRUE, x'00', 1)",
];
/// The same record on PostgreSQL (a `bytea` literal).
const NEWER_PG_RECORD: &str = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                               VALUES (99990101000000, 'newer', TRUE, '\\x00', 1)";

on_both! {
    /// serve (the default) runs on it and says the schema is ahead; a refusing open (`vigie
    /// migrate`) stops with a message saying what to run, and records nothing.
    async fn a_schema_newer_than_the_migrations_is_accepted_by_default_and_refused_on_demand(db: TestDb) {
        let first = SqlDirectory::open(&db.url()).await.unwrap();
        let known = first.schema_versions().known;
        assert_eq!(first.schema_versions().after, Some(known));
        assert!(!first.schema_versions().is_newer_than_known());
        first.close().await;
        common::execute(&db, NEWER[0]).await;
        common::execute(&db, NEWER[1]).await;
        common::execute(&db, if db.is_postgres() { NEWER_PG_RECORD } else { NEWER[2] }).await;

        let accepted = SqlDirectory::open(&db.url()).await.expect("an old version runs on a newer schema");
        let versions = accepted.schema_versions();
        assert_eq!((versions.before, versions.after, versions.known), (Some(99990101000000), Some(99990101000000), known));
        assert!(versions.is_newer_than_known());
        // Its writes go on, the unknown column left to its default.
        accepted.upsert_identity(&common::camille()).await.expect("a write on the expanded schema");
        accepted.close().await;

        let refuse = OpenOptions { newer_schema: NewerSchema::Refuse, ..Default::default() };
        match SqlDirectory::open_with(&db.url(), &refuse).await {
            Err(DirectoryError::Unavailable(m)) => {
                assert!(m.contains("newer than this Vigie's latest migration"), "{m}");
                assert!(m.contains("`directory.accept_newer_schema`"), "{m}");
            }
            other => panic!("expected a refusal, got {:?}", other.map(|d| d.schema_versions())),
        }
    }
}

/// What a migration may do in the release that introduces it: add. Anything an old version
/// running beside the new one would break on (a column it reads gone or renamed, a type it
/// writes changed, a column it does not fill made mandatory) needs `-- contract: <reason>` at the
/// top of the file, one release after the expand step it follows.
fn expand_violations(sql: &str) -> Vec<&'static str> {
    let marked = sql.lines().take_while(|l| l.trim_start().starts_with("--")).any(|l| {
        l.trim_start()
            .trim_start_matches('-')
            .trim_start()
            .strip_prefix("contract:")
            .is_some_and(|r| !r.trim().is_empty())
    });
    if marked {
        return Vec::new();
    }
    // Comments out, whitespace folded, upper case: the statements as the server reads them.
    let code: String = sql.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
    let code = code.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase();
    let mut found = Vec::new();
    for (pattern, what) in [
        ("DROP COLUMN", "DROP COLUMN"),
        ("DROP TABLE", "DROP TABLE"),
        ("RENAME ", "RENAME"),
        ("SET NOT NULL", "SET NOT NULL"),
    ] {
        if code.contains(pattern) {
            found.push(what);
        }
    }
    // ADD COLUMN … NOT NULL without a DEFAULT: an old version's INSERT, which does not name it,
    // fails.
    for statement in code.split(';') {
        if statement.contains("ALTER COLUMN") && statement.contains(" TYPE ") {
            found.push("ALTER … TYPE");
        }
        if statement.contains("ADD COLUMN") && statement.contains("NOT NULL") && !statement.contains("DEFAULT") {
            found.push("ADD COLUMN … NOT NULL without DEFAULT");
        }
    }
    found
}

#[test]
fn every_migration_is_an_expand_step_or_a_contract_step_with_its_reason() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 8, "the migrations are read from {}", dir.display());
    let refused: Vec<String> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "sql"))
        .filter_map(|f| {
            let found = expand_violations(&std::fs::read_to_string(f).unwrap());
            (!found.is_empty()).then(|| format!("{}: {}", f.display(), found.join(", ")))
        })
        .collect();
    assert!(
        refused.is_empty(),
        "migrations that would break the version still running during a rolling upgrade; make them \
         expand steps, or mark a contract step with `-- contract: <reason>` one release after its \
         expand step (docs/operations.md):\n{}",
        refused.join("\n")
    );
}

#[test]
fn the_expand_check_refuses_each_breaking_change_unless_marked_as_a_contract_step() {
    let breaking = [
        ("ALTER TABLE accounts DROP COLUMN kind;", "DROP COLUMN"),
        ("DROP TABLE cards;", "DROP TABLE"),
        ("ALTER TABLE accounts RENAME COLUMN kind TO account_kind;", "RENAME"),
        ("ALTER TABLE cards RENAME TO smart_cards;", "RENAME"),
        ("ALTER TABLE accounts ALTER COLUMN kind TYPE VARCHAR(20);", "ALTER … TYPE"),
        ("alter table identities\n  alter column email\n  set not null;", "SET NOT NULL"),
        ("ALTER TABLE identities ADD COLUMN rpps TEXT NOT NULL;", "ADD COLUMN … NOT NULL without DEFAULT"),
    ];
    for (sql, what) in breaking {
        assert_eq!(expand_violations(sql), vec![what], "{sql}");
        let contract = format!(
            "-- Contract step of 0009 (expand in 0009, every replica on it since 1.4).\n-- contract: no version reads it any more\n{sql}"
        );
        assert!(expand_violations(&contract).is_empty(), "{contract}");
        let no_reason = format!("-- contract:\n{sql}");
        assert_eq!(expand_violations(&no_reason), vec![what], "a contract step says why");
    }
    for expand in [
        "CREATE TABLE things (id TEXT PRIMARY KEY);",
        "ALTER TABLE identities ADD COLUMN rpps TEXT;",
        "ALTER TABLE accounts ADD COLUMN kind TEXT NOT NULL DEFAULT 'personal';",
        "CREATE INDEX cards_by_serial ON cards (serial_hex);",
        "CREATE TABLE notices (id TEXT, type TEXT NOT NULL);",
        "-- a type of card, a column rename would break: not done here\nCREATE TABLE t (a TEXT);",
    ] {
        assert!(expand_violations(expand).is_empty(), "{expand}");
    }
}
