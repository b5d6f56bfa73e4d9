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
