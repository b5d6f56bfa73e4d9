//! Loading the HR export into a real directory: an SQLite file, a PostgreSQL database.
#[macro_use]
mod common;

use common::{account, camille};
use vigie_core::directory::{Account, Directory, DirectoryError, Identity};
use vigie_directory_sql::import::HEADER;
use vigie_directory_sql::{ImportReport, SqlDirectory, import_rows, parse_hr_csv};

const EXAMPLE: &str = include_str!("../examples/hr-export.csv");

on_both! {
async fn the_first_import_creates_everyone_and_their_accounts(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let rows = parse_hr_csv(EXAMPLE).unwrap();

    let report = import_rows(&dir, &rows).await.unwrap();
    assert_eq!(report, ImportReport { identities_created: 5, identities_updated: 0, accounts_created: 4 });

    let acc = dir.account_by_username("clefevre").await.unwrap().unwrap();
    assert_eq!((acc.password_hash, acc.totp_secret, acc.disabled), (None, None, false));
    let identity = dir.identity(&acc.identity_id).await.unwrap().unwrap();
    let expected = Identity { id: acc.identity_id.clone(), ..rows[0].identity() };
    assert_eq!(identity, expected);
}
}

on_both! {
async fn importing_again_updates_identities_and_leaves_accounts_alone(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    import_rows(&dir, &parse_hr_csv(EXAMPLE).unwrap()).await.unwrap();
    let before = dir.account_by_username("clefevre").await.unwrap().unwrap();
    // Camille has since set a password and moved to full time in one unit.
    let with_password =
        Account { password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()), ..before.clone() };
    dir.upsert_account(&with_password).await.unwrap();
    let changed = EXAMPLE.replace("UF1234:60;UF2201:40,clefevre", "UF1234:100,clefevre");

    let report = import_rows(&dir, &parse_hr_csv(&changed).unwrap()).await.unwrap();
    assert_eq!(report, ImportReport { identities_created: 0, identities_updated: 5, accounts_created: 0 });
    assert_eq!(dir.account_by_username("clefevre").await.unwrap(), Some(with_password));
    let identity = dir.identity(&before.identity_id).await.unwrap().unwrap();
    assert_eq!(identity.units.len(), 1);
    assert_eq!(identity.units[0].share, 100);
}
}

on_both! {
async fn a_row_that_clashes_with_the_directory_imports_nothing_and_names_its_line(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    // Someone outside the export already logs in as `emoreau`.
    let other = Identity { matricule: "000001".into(), idnat: None, ..camille() };
    let other_id = dir.upsert_identity(&other).await.unwrap();
    dir.upsert_account(&account(&other_id, "emoreau")).await.unwrap();

    let rows = parse_hr_csv(EXAMPLE).unwrap();
    match import_rows(&dir, &rows).await {
        Err(DirectoryError::Invalid(m)) => {
            assert!(m.starts_with("line 6 (matricule \"005402\")"), "{m}");
            assert!(m.contains("000001"), "{m}");
            assert!(m.contains("nothing was imported"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(dir.account_by_username("clefevre").await.unwrap(), None);
}
}

on_both! {
async fn an_idnat_already_held_in_the_directory_stops_the_import(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let holder = Identity { matricule: "000001".into(), ..camille() };
    dir.upsert_identity(&holder).await.unwrap();
    let rows = parse_hr_csv(EXAMPLE).unwrap();
    match import_rows(&dir, &rows).await {
        Err(DirectoryError::Invalid(m)) => {
            assert!(m.starts_with("line 2 "), "{m}");
            assert!(m.contains("810002004512"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
}

on_both! {
async fn an_empty_export_changes_nothing(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let rows = parse_hr_csv(HEADER).unwrap();
    assert_eq!(import_rows(&dir, &rows).await.unwrap(), ImportReport::default());
}
}

/// The HR feed (docs/identity-lifecycle.md): the example with the life-cycle columns.
fn feed(extra_rows: &str) -> String {
    let mut out = String::from(
        "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username,start_date,end_date,sponsor,kind\n",
    );
    for line in EXAMPLE.lines().skip(1) {
        out.push_str(line);
        out.push_str(",2020-01-01,,,staff\n");
    }
    out.push_str(extra_rows);
    out
}

fn now() -> String {
    vigie_directory_sql::lifecycle::stamp(time::OffsetDateTime::now_utc())
}

async fn run_feed(
    dir: &SqlDirectory,
    text: &str,
) -> (vigie_directory_sql::lifecycle::FeedDiff, vigie_directory_sql::Applied) {
    let rows = parse_hr_csv(text).unwrap();
    let diff = vigie_directory_sql::lifecycle::diff(&dir.people().await.unwrap(), &rows, &now());
    let applied = dir.apply_feed(&diff, &rows, "test-run").await.unwrap();
    (diff, applied)
}

on_both! {
async fn the_same_feed_twice_changes_nothing_the_second_time(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let (first, applied) = run_feed(&dir, &feed("")).await;
    assert_eq!((first.joiners.len(), first.population, applied.accounts_created), (5, 0, 4), "{first}");
    let (second, applied) = run_feed(&dir, &feed("")).await;
    assert!(second.is_empty(), "{second}");
    assert_eq!((second.unchanged, second.population), (5, 5));
    assert_eq!(applied, vigie_directory_sql::Applied::default());
}
}

on_both! {
async fn a_mover_is_listed_field_by_field_and_a_leaver_is_ended_then_brought_back(db: TestDb) {
    use vigie_core::directory::{PendingRevocations, PolicyAttributes};
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    run_feed(&dir, &feed("")).await;
    let moved = feed("").replace("UF1234:60;UF2201:40,clefevre", "UF3050:100,clefevre");
    let without_nguyen: String = moved.lines().filter(|l| !l.starts_with("004873")).map(|l| format!("{l}\n")).collect();
    let (diff, applied) = run_feed(&dir, &without_nguyen).await;
    assert_eq!(diff.movers.len(), 1, "{diff}");
    let change = &diff.movers[0].changes;
    assert_eq!((change[0].field, change[0].before.as_deref(), change[0].after.as_deref()), ("units", Some("UF1234:60;UF2201:40"), Some("UF3050:100")));
    assert_eq!(diff.leavers.len(), 1, "{diff}");
    assert_eq!((applied.movers, applied.leavers), (1, 1));
    let nguyen = dir.account_by_username("tnguyen").await.unwrap().unwrap();
    assert!(nguyen.disabled, "a leaver's account is disabled");
    assert_eq!(dir.policy_attributes(&nguyen.identity_id).await.unwrap().1, "left");
    let notes = dir.pending_revocations().await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].reason, "no longer in the HR feed (HR feed run test-run)");

    // HR puts her back: reinstated, and nothing else moves.
    let (diff, applied) = run_feed(&dir, &moved).await;
    assert_eq!((diff.returning.len(), diff.movers.len(), diff.leavers.len(), applied.returning), (1, 0, 0, 1), "{diff}");
    let nguyen = dir.account_by_username("tnguyen").await.unwrap().unwrap();
    assert!(!nguyen.disabled);
    assert_eq!(dir.policy_attributes(&nguyen.identity_id).await.unwrap().1, "active");
}
}

on_both! {
async fn an_end_date_holds_at_each_decision_and_the_watch_ends_the_access_once(db: TestDb) {
    use vigie_core::directory::PolicyAttributes;
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let soon = vigie_directory_sql::lifecycle::stamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(2));
    let later = "2099-01-01";
    let text = feed(&format!(
        "009001,Martin,Lou,,Interne,,,UF2201:100,lmartin,,{soon},004512,intern\n009002,Petit,Noa,,Infirmier,,,UF2201:100,npetit,{later},,004512,agency\n"
    ));
    run_feed(&dir, &text).await;
    let lou = dir.account_by_username("lmartin").await.unwrap().unwrap();
    let noa = dir.account_by_username("npetit").await.unwrap().unwrap();
    assert_eq!(dir.policy_attributes(&lou.identity_id).await.unwrap().1, "active");
    assert_eq!(dir.policy_attributes(&noa.identity_id).await.unwrap().1, "suspended", "not active before the start");
    assert_eq!(dir.next_lifecycle_instant(&now()).await.unwrap().as_deref(), Some(soon.as_str()));
    assert!(dir.end_due(&now()).await.unwrap().is_empty());

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // Past the end, before any run: the decision already says left.
    assert_eq!(dir.policy_attributes(&lou.identity_id).await.unwrap().1, "left");
    let ended = dir.end_due(&now()).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].username.as_deref(), ended[0].why.as_str()), (Some("lmartin"), format!("end date {soon} passed").as_str()));
    assert!(dir.account_by_username("lmartin").await.unwrap().unwrap().disabled);
    assert!(dir.end_due(&now()).await.unwrap().is_empty(), "ended once");
    // The same feed again: Lou stays ended, nothing to do.
    let (diff, _) = run_feed(&dir, &text).await;
    assert!(diff.is_empty(), "{diff}");
    // `set-status active` cannot bring back someone whose end date passed.
    assert!(matches!(dir.reinstate("lmartin", &now()).await, Err(DirectoryError::Invalid(m)) if m.contains("has passed")));
}
}

/// The feed with a `roles` column: `roles_of` each person by matricule prefix of the example.
fn feed_with_roles(roles: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, line) in feed("").lines().enumerate() {
        let extra =
            if i == 0 { "roles" } else { roles.iter().find(|(m, _)| line.starts_with(m)).map_or("", |(_, r)| r) };
        out.push_str(&format!("{line},{extra}\n"));
    }
    out
}

on_both! {
async fn the_feed_grants_and_takes_back_its_own_roles_and_leaves_the_others_alone(db: TestDb) {
    use vigie_core::roles::{Role, Roles};
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    // A feed without the column grants nothing and takes nothing back.
    run_feed(&dir, &feed("")).await;
    let id = dir.account_by_username("clefevre").await.unwrap().unwrap().identity_id;
    dir.grant(&id, Role::Fido2, "admin:someone").await.unwrap();

    // A mover gets `cards` from HR; `fido2` from an admin is listed too but stays the admin's.
    let (diff, applied) = run_feed(&dir, &feed_with_roles(&[("004512", "cards; fido2")])).await;
    assert_eq!((diff.movers.len(), applied.movers), (1, 1), "{diff}");
    let c = &diff.movers[0].changes[0];
    assert_eq!((c.field, c.before.as_deref(), c.after.as_deref()), ("roles", None, Some("cards")), "{diff}");
    assert!(diff.to_string().contains("roles: - -> cards"), "the dry run shows role changes: {diff}");
    assert_eq!(dir.roles_of(&id).await.unwrap(), [Role::Cards, Role::Fido2]);
    let again = run_feed(&dir, &feed_with_roles(&[("004512", "fido2;cards")])).await.0;
    assert!(again.is_empty(), "the same roles in another order change nothing: {again}");

    // HR no longer lists them: the feed's `cards` goes, the admin's `fido2` stays.
    let (diff, _) = run_feed(&dir, &feed_with_roles(&[])).await;
    let c = &diff.movers[0].changes[0];
    assert_eq!((c.field, c.before.as_deref(), c.after.as_deref()), ("roles", Some("cards"), None), "{diff}");
    assert_eq!(dir.roles_of(&id).await.unwrap(), [Role::Fido2]);
    let people = dir.people().await.unwrap();
    let p = people.iter().find(|p| p.identity.id == id).unwrap();
    assert_eq!((p.roles.clone(), p.feed_roles.clone()), (vec!["fido2".to_owned()], vec![]));

    // A joiner listed with a role is shown with it, and an unknown role refuses the file.
    let joiner = "009100,Neuf,Léa,,Infirmier,,,UF2201:100,lneuf,2020-01-01,,,staff,cards\n";
    let rows = parse_hr_csv(&format!("{}{joiner}", feed_with_roles(&[]))).unwrap();
    let diff = vigie_directory_sql::lifecycle::diff(&dir.people().await.unwrap(), &rows, &now());
    assert_eq!(diff.joiners[0].changes[0].after.as_deref(), Some("cards"), "{diff}");
    let bad = parse_hr_csv(&feed_with_roles(&[("004512", "chef")])).unwrap_err();
    assert_eq!(bad.column, Some("roles"));
    assert!(bad.reason.contains("expected one of cards, fido2, provisioning"), "{bad}");
}
}

on_both! {
async fn an_hr_enrolment_code_is_taken_once_before_it_expires_and_a_new_one_replaces_it(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    run_feed(&dir, &feed("")).await;
    let id = dir.account_by_username("clefevre").await.unwrap().unwrap().identity_id;
    let (now, later) = ("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z");
    dir.put_hr_enrolment_code(&id, "hash-1", later, "hr-feed").await.unwrap();
    dir.put_hr_enrolment_code(&id, "hash-2", later, "cli").await.unwrap();
    assert_eq!(dir.take_hr_enrolment_code("hash-1", now).await.unwrap(), None, "replaced by the newer");
    assert_eq!(dir.take_hr_enrolment_code("hash-2", now).await.unwrap(), Some((id.clone(), "cli".into())));
    assert_eq!(dir.take_hr_enrolment_code("hash-2", now).await.unwrap(), None, "taken once");
    dir.put_hr_enrolment_code(&id, "hash-3", later, "cli").await.unwrap();
    assert_eq!(dir.take_hr_enrolment_code("hash-3", later).await.unwrap(), None, "expired at its instant");
    let unknown = dir.put_hr_enrolment_code("no-such-id", "hash-4", later, "cli").await.unwrap_err();
    assert!(matches!(unknown, DirectoryError::Invalid(m) if m.contains("no identity")));
}
}
