//! The directory port on real SQLite files and a real PostgreSQL server, as one or two gateway
//! processes (replicas) use it.
#[macro_use]
mod common;

use common::{TestDb, account, camille, ines};
use vigie_core::IdNat;
use vigie_core::directory::{Account, Affectation, Directory, DirectoryError, Identity};
use vigie_directory_sql::SqlDirectory;

fn invalid(r: Result<impl std::fmt::Debug, DirectoryError>) -> String {
    match r {
        Err(DirectoryError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

on_both! {
async fn an_identity_reads_back_as_written_main_unit_first(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let mut written = camille();
    written.units.reverse(); // 40 % first: read back, the 60 % main unit comes first
    let id = dir.upsert_identity(&written).await.unwrap();

    let read = dir.identity(&id).await.unwrap().unwrap();
    let expected = Identity { id: id.clone(), ..camille() };
    assert_eq!(read, expected);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "id {id} is a UUID");

    let id = dir.upsert_identity(&ines()).await.unwrap();
    let read = dir.identity(&id).await.unwrap().unwrap();
    assert_eq!(read, Identity { id, ..ines() });
}
}

on_both! {
async fn unknown_ids_and_usernames_are_absent_not_errors(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    assert_eq!(dir.identity("no-such-id").await.unwrap(), None);
    assert_eq!(dir.account_by_username("nobody").await.unwrap(), None);
    assert_eq!(dir.username_of("no-such-id").await.unwrap(), None);
    dir.ping().await.unwrap();
}
}

on_both! {
async fn upsert_by_matricule_keeps_the_id_and_replaces_the_affectations(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&camille()).await.unwrap();

    let moved = Identity {
        id: "ignored".into(),
        family_name: "Lefèvre-Martin".into(),
        grade: None,
        units: vec![Affectation { uf: "UF9000".into(), share: 100 }],
        ..camille()
    };
    assert_eq!(dir.upsert_identity(&moved).await.unwrap(), id);
    let read = dir.identity(&id).await.unwrap().unwrap();
    assert_eq!(read, Identity { id, ..moved });
}
}

on_both! {
async fn accounts_read_back_with_their_credentials_and_are_replaced_whole(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&camille()).await.unwrap();

    let mut acc = account(&id, "clefevre");
    acc.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    acc.totp_secret = Some(vec![0, 1, 2, 255, 0x80]);
    dir.upsert_account(&acc).await.unwrap();
    assert_eq!(dir.account_by_username("clefevre").await.unwrap(), Some(acc.clone()));
    assert_eq!(dir.username_of(&id).await.unwrap().as_deref(), Some("clefevre"));

    let renamed = Account { disabled: true, ..account(&id, "camille.lefevre") };
    dir.upsert_account(&renamed).await.unwrap();
    assert_eq!(dir.account_by_username("clefevre").await.unwrap(), None);
    assert_eq!(dir.account_by_username("camille.lefevre").await.unwrap(), Some(renamed));
    assert_eq!(dir.username_of(&id).await.unwrap().as_deref(), Some("camille.lefevre"));
}
}

on_both! {
async fn a_username_taken_by_another_identity_is_refused_naming_its_holder(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let camille_id = dir.upsert_identity(&camille()).await.unwrap();
    let ines_id = dir.upsert_identity(&ines()).await.unwrap();
    dir.upsert_account(&account(&camille_id, "clefevre")).await.unwrap();

    let message = invalid(dir.upsert_account(&account(&ines_id, "clefevre")).await);
    assert!(message.contains("\"clefevre\""), "{message}");
    assert!(message.contains("004512"), "{message}");
    // Camille keeps her login.
    assert_eq!(dir.account_by_username("clefevre").await.unwrap().unwrap().identity_id, camille_id);
}
}

on_both! {
async fn an_account_needs_an_existing_identity(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let message = invalid(dir.upsert_account(&account("no-such-id", "ghost")).await);
    assert!(message.contains("no identity"), "{message}");
}
}

on_both! {
async fn an_idnat_names_one_person_only(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    dir.upsert_identity(&camille()).await.unwrap();
    let impostor = Identity { idnat: camille().idnat, ..ines() };
    let message = invalid(dir.upsert_identity(&impostor).await);
    assert!(message.contains("810002004512"), "{message}");
    assert!(message.contains("004512"), "{message}");

    // Staff without an idNat do not conflict with each other.
    dir.upsert_identity(&ines()).await.unwrap();
    let other = Identity { matricule: "009999".into(), ..ines() };
    dir.upsert_identity(&other).await.unwrap();
}
}

on_both! {
async fn inconsistent_identities_are_refused_with_the_reason(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let with_units = |units: Vec<(&str, u8)>| Identity {
        units: units.into_iter().map(|(uf, share)| Affectation { uf: uf.into(), share }).collect(),
        ..ines()
    };
    for (identity, expected) in [
        (with_units(vec![("UF1", 0)]), "from 1 to 100"),
        (with_units(vec![("UF1", 101)]), "from 1 to 100"),
        (with_units(vec![("UF1", 60), ("UF2", 50)]), "110%"),
        (with_units(vec![("UF1", 10), ("UF1", 10)]), "twice"),
        (with_units(vec![("UF 1", 10)]), "unit code"),
        (Identity { matricule: String::new(), ..ines() }, "matricule is empty"),
        (Identity { birth_date: Some("14/03/1979".into()), ..ines() }, "YYYY-MM-DD"),
        (Identity { birth_date: Some("1979-02-30".into()), ..ines() }, "not a calendar date"),
    ] {
        let message = invalid(dir.upsert_identity(&identity).await);
        assert!(message.contains(expected), "{message}");
    }
}
}

on_both! {
async fn a_second_process_sees_what_the_first_wrote(db: TestDb) {
    let first = SqlDirectory::open(&db.url()).await.unwrap();
    let second = SqlDirectory::open(&db.url()).await.unwrap();

    let id = first.upsert_identity(&camille()).await.unwrap();
    first.upsert_account(&account(&id, "clefevre")).await.unwrap();
    assert_eq!(second.identity(&id).await.unwrap().unwrap().matricule, "004512");
    assert_eq!(second.account_by_username("clefevre").await.unwrap().unwrap().identity_id, id);
    // And the other way round, on the same matricule.
    let renamed = Identity { given_name: "Camille-Anne".into(), ..camille() };
    assert_eq!(second.upsert_identity(&renamed).await.unwrap(), id);
    assert_eq!(first.identity(&id).await.unwrap().unwrap().given_name, "Camille-Anne");
}
}

on_both! {
async fn two_processes_writing_at_once_wait_for_each_other_instead_of_failing(db: TestDb) {
    let first = SqlDirectory::open(&db.url()).await.unwrap();
    let second = SqlDirectory::open(&db.url()).await.unwrap();

    let writer = |dir: SqlDirectory, prefix: &'static str| async move {
        for i in 0..50 {
            let person = Identity {
                matricule: format!("{prefix}{i:04}"),
                units: vec![Affectation { uf: "UF1234".into(), share: 100 }],
                ..ines()
            };
            let id = dir.upsert_identity(&person).await?;
            // Every other write, read then write again: the pattern that deadlocks deferred
            // transactions across processes.
            if i % 2 == 0 {
                dir.identity(&id).await?;
                dir.upsert_account(&account(&id, &format!("{prefix}-{i}"))).await?;
            }
        }
        Ok::<_, DirectoryError>(())
    };
    let (a, b) = tokio::join!(tokio::spawn(writer(first.clone(), "A")), tokio::spawn(writer(second.clone(), "B")));
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    assert!(first.account_by_username("B-48").await.unwrap().is_some());
    assert!(second.account_by_username("A-48").await.unwrap().is_some());
}
}

on_both! {
/// SQLite: three processes create the same file at once. PostgreSQL: three replicas start at once
/// on an empty database; the migrator's advisory lock makes two of them wait, then find the
/// migrations applied.
async fn two_processes_creating_the_same_file_at_once_both_open_it(db: TestDb) {
    for round in 0..5 {
        let db = db.another(&format!("concurrent_open_{round}")).await;
        let url = db.url();
        let (a, b, c) = tokio::join!(SqlDirectory::open(&url), SqlDirectory::open(&url), SqlDirectory::open(&url));
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        let id = a.upsert_identity(&camille()).await.unwrap();
        assert!(b.identity(&id).await.unwrap().is_some());
        assert!(c.identity(&id).await.unwrap().is_some());
        for dir in [a, b, c] {
            dir.close().await;
        }
    }
}
}

on_both! {
async fn reopening_keeps_the_data_and_does_not_rerun_migrations(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&camille()).await.unwrap();
    dir.close().await;

    for _ in 0..3 {
        let dir = SqlDirectory::open(&db.url()).await.unwrap();
        assert_eq!(dir.identity(&id).await.unwrap().unwrap().idnat, Some(IdNat::parse("810002004512").unwrap()));
        dir.close().await;
    }

    // One row per migration, applied once.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).unwrap().count();
    let count = "SELECT COUNT(*) FROM _sqlx_migrations";
    let applied: i64 = match &db {
        TestDb::Sqlite(_) => {
            let pool = sqlx::SqlitePool::connect(&db.url()).await.unwrap();
            let applied = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
            // SQLite only: the file is in WAL mode, for processes sharing it.
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
            assert_eq!(mode, "wal");
            pool.close().await;
            applied
        }
        TestDb::Postgres(_) => {
            let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
            let applied = sqlx::query_scalar(count).fetch_one(&pool).await.unwrap();
            pool.close().await;
            applied
        }
    };
    assert_eq!(applied, i64::try_from(migrations).unwrap());
}
}

on_both! {
async fn a_closed_directory_reports_itself_unavailable(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    dir.close().await;
    assert!(matches!(dir.ping().await, Err(DirectoryError::Unavailable(_))));
}
}

#[tokio::test]
async fn a_bad_url_says_which_setting_to_check() {
    let missing_folder = std::env::temp_dir().join("vigie-no-such-folder-for-directory").join("dir.db");
    let url = format!("sqlite://{}", missing_folder.display());
    match SqlDirectory::open(&url).await {
        Err(DirectoryError::Unavailable(m)) => {
            assert!(m.contains("directory.url"), "{m}");
            assert!(m.contains(&url), "{m}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }

    // PostgreSQL: a server that is not there (port 1 refuses at once), a URL that does not
    // parse, a scheme that is neither. The password never shows.
    for url in [
        "postgres://vigie:s3cret@127.0.0.1:1/vigie",
        "postgresql://vigie:s3cret@[::1/vigie",
        "mysql://vigie:s3cret@db/vigie",
    ] {
        match SqlDirectory::open(url).await {
            Err(DirectoryError::Unavailable(m)) => {
                assert!(m.contains("directory.url"), "{m}");
                assert!(!m.contains("s3cret"), "the password must not leak: {m}");
            }
            other => panic!("expected unavailable for {url}, got {other:?}"),
        }
    }
}

/// PostgreSQL only (SQLite has no row locks: its busy timeout is tested by the concurrent-writes
/// test above): a row held by a stuck replica makes a write give up after
/// `directory.statement_timeout_ms`, as unavailable, with nothing half-written.
#[tokio::test]
async fn a_write_blocked_past_the_statement_timeout_gives_up_and_writes_nothing() {
    use sqlx::Connection;
    use vigie_core::cards::{CardRegistry, CardStatus};
    use vigie_directory_sql::OpenOptions;

    let Some(db) = TestDb::postgres("statement_timeout").await else {
        eprintln!("skipped: {} is not set (tests/run starts a server and sets it)", common::POSTGRES_URL_VAR);
        return;
    };
    let options = OpenOptions { statement_timeout: Some(std::time::Duration::from_millis(300)), ..Default::default() };
    let dir = SqlDirectory::open_with(&db.url(), &options).await.unwrap();
    let id = dir.upsert_identity(&camille()).await.unwrap();
    let card = dir.create_card(&id, "cps", CardStatus::Received, "staff:rh", None).await.unwrap();

    // Another replica stuck in the middle of a change of this card.
    let mut stuck = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut stuck).await.unwrap();
    sqlx::query("SELECT id FROM cards WHERE id = $1 FOR UPDATE").bind(&card.id).execute(&mut stuck).await.unwrap();

    let started = std::time::Instant::now();
    let result = dir.bind(&card.id, "CN=ISSUER", "0A", "810002004512", "staff:rh", None).await;
    match result {
        Err(DirectoryError::Unavailable(m)) => assert!(m.contains("directory.statement_timeout_ms"), "{m}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "gave up after the timeout");
    sqlx::raw_sql("ROLLBACK").execute(&mut stuck).await.unwrap();
    let unchanged = dir.card(&card.id).await.unwrap().unwrap();
    assert_eq!((unchanged.status, unchanged.serial_hex), (CardStatus::Received, None));
    assert_eq!(dir.events(&card.id).await.unwrap().len(), 1, "no event for the binding that gave up");
}

#[tokio::test]
async fn a_pool_of_no_connection_or_a_zero_timeout_is_refused_naming_the_key() {
    use vigie_directory_sql::OpenOptions;
    let db = TestDb::sqlite("bad_options");
    let none = OpenOptions { max_connections: Some(0), ..Default::default() };
    assert!(invalid(SqlDirectory::open_with(&db.url(), &none).await).contains("`directory.max_connections` is 0"));
    let zero = OpenOptions { statement_timeout: Some(std::time::Duration::ZERO), ..Default::default() };
    assert!(invalid(SqlDirectory::open_with(&db.url(), &zero).await).contains("`directory.statement_timeout_ms` is 0"));
}

/// PostgreSQL only: `sslmode=require` in `directory.url` is honoured (the test server has no TLS,
/// so the connection is refused rather than made in clear), and the error hides the password.
#[tokio::test]
async fn sslmode_require_refuses_a_server_without_tls() {
    let Some(db) = TestDb::postgres("sslmode").await else {
        eprintln!("skipped: {} is not set (tests/run starts a server and sets it)", common::POSTGRES_URL_VAR);
        return;
    };
    let url = db.url().replacen("://vigie@", "://vigie:s3cret@", 1) + "?sslmode=require";
    match SqlDirectory::open(&url).await {
        Err(DirectoryError::Unavailable(m)) => {
            assert!(m.contains("directory.url") && m.contains("sslmode"), "{m}");
            assert!(!m.contains("s3cret"), "the password must not leak: {m}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

on_both! {
async fn a_directory_entry_finds_its_identity_by_link_first_and_a_leaver_is_disabled_once_with_a_note(db: TestDb) {
    use vigie_core::directory::{AccessTarget, PendingRevocations};
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let camille_id = dir.upsert_identity(&camille()).await.unwrap();
    let ines_id = dir.upsert_identity(&ines()).await.unwrap();
    dir.upsert_account(&account(&camille_id, "cmartin")).await.unwrap();
    dir.upsert_account(&account(&ines_id, "ibenali")).await.unwrap();
    let found = |guid: &'static str, matricule: &'static str| {
        let dir = &dir;
        async move { dir.identity_for_directory_entry(guid, matricule).await.unwrap().map(|i| i.id) }
    };

    // Unlinked: by matricule; linked: by the link, even when the matricule names someone else.
    assert_eq!(found("guid-c", "004512").await.as_deref(), Some(camille_id.as_str()));
    assert_eq!(found("guid-c", "no-such").await, None);
    assert!(dir.link_to_directory(&camille_id, "guid-c").await.unwrap());
    assert!(!dir.link_to_directory(&camille_id, "guid-c").await.unwrap(), "linked already: no change");
    assert_eq!(found("guid-c", "005377").await.as_deref(), Some(camille_id.as_str()));
    assert_eq!(found("", "005377").await.as_deref(), Some(ines_id.as_str()), "an entry without an id");

    // An entry re-created with the link of another takes it: one identity per entry.
    assert!(dir.link_to_directory(&ines_id, "guid-c").await.unwrap());
    assert_eq!(found("guid-c", "no-such").await.as_deref(), Some(ines_id.as_str()));
    assert!(dir.link_to_directory(&camille_id, "guid-c2").await.unwrap());
    let linked = dir.directory_linked_enabled().await.unwrap();
    let mut expected = vec![
        (camille_id.clone(), "guid-c2".to_owned(), "cmartin".to_owned()),
        (ines_id.clone(), "guid-c".to_owned(), "ibenali".to_owned()),
    ];
    expected.sort();
    assert_eq!(linked, expected);

    // Disabled with its note of access to end, in one go; a second time changes nothing.
    assert!(dir.disable_account(&camille_id, "gone from the directory").await.unwrap());
    assert!(dir.account_disabled(&camille_id).await.unwrap());
    assert!(!dir.disable_account(&camille_id, "gone from the directory").await.unwrap());
    let notes = dir.pending_revocations().await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!((notes[0].target.clone(), notes[0].reason.as_str()), (AccessTarget::Identity(camille_id.clone()), "gone from the directory"));
    let still = vec![(ines_id.clone(), "guid-c".to_owned(), "ibenali".to_owned())];
    assert_eq!(dir.directory_linked_enabled().await.unwrap(), still, "a disabled account is no leaver to find");
    assert!(!dir.disable_account("no-such-identity", "x").await.unwrap(), "no account: nothing to disable");
}
}

on_both! {
async fn the_directory_sync_state_is_kept_per_source_and_a_matricule_changes_by_identity_id(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    assert_eq!(dir.directory_sync_state("ldap").await.unwrap(), None, "before the first pass");
    dir.set_directory_sync_state("ldap", Some("csn:20261205151000.123456Z#000000#000#000000"), 1_700_000_000).await.unwrap();
    dir.set_directory_sync_state("other", None, 5).await.unwrap();
    dir.set_directory_sync_state("ldap", Some("usn:42:dc1"), 1_700_000_100).await.unwrap();
    assert_eq!(dir.directory_sync_state("ldap").await.unwrap(), Some((Some("usn:42:dc1".to_owned()), 1_700_000_100)));
    assert_eq!(dir.directory_sync_state("other").await.unwrap(), Some((None, 5)));

    let camille_id = dir.upsert_identity(&camille()).await.unwrap();
    let ines_id = dir.upsert_identity(&ines()).await.unwrap();
    assert!(dir.change_matricule(&camille_id, "777001").await.unwrap());
    let camille = dir.identity(&camille_id).await.unwrap().expect("the same identity");
    assert_eq!(camille.matricule, "777001");
    assert!(dir.change_matricule(&ines_id, "777001").await.is_err(), "another identity holds it");
    assert_eq!(dir.identity(&ines_id).await.unwrap().expect("ines").matricule, ines().matricule);
    assert!(!dir.change_matricule("no-such-identity", "777002").await.unwrap());
}
}

on_both! {
/// A directory fenced by a job's lease token (`SqlDirectory::fenced`) refuses, whole and in the
/// write's own transaction, a write whose token is lower than one it has seen for that job: the
/// write of a holder whose lease lapsed, after the next holder's. The same token and greater ones
/// pass; another job's fence is its own; the directory without a fence writes as before.
async fn a_write_fenced_by_a_lower_token_than_the_last_seen_keeps_nothing(db: TestDb) {
    use vigie_core::directory::Fence;
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let later = dir.fenced(Fence::new("ldap", 1_700_000_000_002));
    let lapsed = dir.fenced(Fence::new("ldap", 1_700_000_000_001));
    later.upsert_identity(&camille()).await.expect("the later holder writes");
    later.set_directory_sync_state("ldap", Some("mark"), 1).await.expect("and writes again with its token");

    match lapsed.upsert_identity(&ines()).await {
        Err(DirectoryError::Fenced { job }) => assert_eq!(job, "ldap"),
        other => panic!("expected the lapsed holder's write refused, got {other:?} on {}", db.url()),
    }
    assert!(lapsed.set_directory_sync_state("ldap", Some("stale"), 2).await.is_err());
    assert!(dir.identity_for_directory_entry("", &ines().matricule).await.unwrap().is_none(), "nothing of it");
    assert_eq!(dir.directory_sync_state("ldap").await.unwrap(), Some((Some("mark".into()), 1)));

    dir.fenced(Fence::new("hr-feed", 1)).upsert_identity(&ines()).await.expect("another job's fence is its own");
    dir.upsert_identity(&ines()).await.expect("unfenced, as before");
}
}
