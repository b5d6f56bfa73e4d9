//! The RPPS index, proposals and confirmed links (migration 0013) on real SQLite files and a real
//! PostgreSQL server: a load replaces the index whole or not at all, a confirmation sets the idNat
//! once, a struck-off link withholds the DMP through the `Directory` port.
#[macro_use]
mod common;

use common::ines;
use vigie_core::IdNat;
use vigie_core::directory::{Directory, DirectoryError, Identity};
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::rpps::RppsEntry;

fn entry(rpps: &str, family: &str, given: &str, line_no: u64) -> RppsEntry {
    RppsEntry {
        idnat: format!("8{rpps}"),
        rpps: rpps.into(),
        family_name: family.into(),
        given_name: given.into(),
        family_norm: family.to_uppercase(),
        given_norm: given.to_uppercase(),
        profession_code: Some("60".into()),
        profession_label: Some("Infirmier".into()),
        activity_end: Some("2026-01-31".into()),
        line_no,
        ..Default::default()
    }
}

async fn load(dir: &SqlDirectory, entries: &[RppsEntry]) -> u64 {
    let mut l = dir.rpps_load().await.unwrap();
    for e in entries {
        l.add(e).await.unwrap();
    }
    l.finish("test.txt", "utf-8").await.unwrap()
}

on_both! {
async fn a_load_replaces_the_index_whole_and_an_abandoned_one_leaves_the_previous(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    assert!(!dir.rpps_loaded().await.unwrap());
    let first = [entry("10100000045", "DA SILVA", "INES", 2), entry("10100000052", "DA SILVA", "INES", 3)];
    assert_eq!(load(&dir, &first).await, 2);
    let read = dir.rpps_by_name("DA SILVA", "INES").await.unwrap();
    assert_eq!(read, first.to_vec(), "rows read back as written, line numbers and dates included");

    // A load given up half way: the first index is still there, whole.
    let mut l = dir.rpps_load().await.unwrap();
    l.add(&entry("10100000060", "AUTRE", "X", 2)).await.unwrap();
    l.abort().await;
    assert_eq!(dir.rpps_by_name("DA SILVA", "INES").await.unwrap().len(), 2);
    assert!(dir.rpps_by_name("AUTRE", "X").await.unwrap().is_empty());

    assert_eq!(load(&dir, &[entry("10100000060", "AUTRE", "X", 2)]).await, 1);
    assert!(dir.rpps_by_name("DA SILVA", "INES").await.unwrap().is_empty(), "a load replaces, never adds");
}
}

on_both! {
async fn a_confirmation_sets_the_idnat_once_and_a_struck_off_link_withholds_the_dmp(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&ines()).await.unwrap();
    let e = entry("10100000045", "DA SILVA", "INES", 2);
    load(&dir, std::slice::from_ref(&e)).await;
    dir.rpps_replace_proposals(&[(id.clone(), e.idnat.clone(), "strong".into(), "names agree".into())], "extraction:x.txt")
        .await
        .unwrap();
    assert_eq!(dir.rpps_proposals().await.unwrap()[0].matricule, "005377");

    let idnat = IdNat::parse(&e.idnat).unwrap();
    dir.rpps_confirm(&id, &idnat, "cli:rh", &e).await.unwrap();
    assert_eq!(dir.identity(&id).await.unwrap().unwrap().idnat, Some(idnat.clone()));
    assert!(dir.rpps_proposals().await.unwrap().is_empty(), "a confirmation clears the proposals");
    // Another identity cannot take it.
    let other = dir.upsert_identity(&Identity { idnat: None, ..common::camille() }).await.unwrap();
    match dir.rpps_confirm(&other, &idnat, "cli:rh", &e).await {
        Err(DirectoryError::Invalid(m)) => assert!(m.contains("already belongs to identity"), "{m}"),
        r => panic!("an idNat given twice: {r:?}"),
    }

    assert_eq!(dir.dmp_withheld(&id).await.unwrap(), None);
    dir.rpps_refresh_link(&id, None, Some("absent"), Some("struck off the RPPS: absent")).await.unwrap();
    assert_eq!(dir.dmp_withheld(&id).await.unwrap().as_deref(), Some("struck off the RPPS: absent"));
    let link = &dir.rpps_links().await.unwrap()[0];
    assert_eq!((link.struck_off.as_deref(), link.profession_code.as_deref()), (Some("absent"), Some("60")), "{link:?}");
    dir.rpps_refresh_link(&id, Some(&e), None, None).await.unwrap();
    assert_eq!(dir.dmp_withheld(&id).await.unwrap(), None);
}
}

on_both! {
async fn a_rejected_proposal_is_not_proposed_again_and_each_keeps_its_source(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&ines()).await.unwrap();
    let (a, b) = ("810100000045".to_owned(), "810100000052".to_owned());
    let rows = [
        (id.clone(), a.clone(), "weak".to_owned(), "one of several".to_owned()),
        (id.clone(), b.clone(), "weak".to_owned(), "one of several".to_owned()),
    ];
    dir.rpps_replace_proposals(&rows, "fhir").await.unwrap();
    let pending = dir.rpps_proposals().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|p| p.source.as_deref() == Some("fhir")), "{pending:?}");

    assert!(dir.rpps_reject(&id, &a, "staff:rh").await.unwrap());
    assert!(!dir.rpps_reject(&id, &a, "staff:rh").await.unwrap(), "nothing left to reject");
    dir.rpps_replace_proposals(&rows, "extraction:PS_LibreAcces.txt").await.unwrap();
    let pending = dir.rpps_proposals().await.unwrap();
    assert_eq!(pending.iter().map(|p| p.idnat.as_str()).collect::<Vec<_>>(), [b.as_str()], "the rejected one stays out");
    assert_eq!(pending[0].source.as_deref(), Some("extraction:PS_LibreAcces.txt"));
}
}

on_both! {
async fn feed_runs_are_listed_newest_first_and_read_back_whole(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let first = vigie_directory_sql::FeedRun {
        started_at: "2026-03-01T08:00:00Z".into(),
        source: "/srv/hr/export.csv".into(),
        started_by: "serve".into(),
        result: "applied".into(),
        joiners: 2,
        unchanged: 5,
        diff: r#"{"joiners":[]}"#.into(),
        error_lines: "[]".into(),
        ..Default::default()
    };
    let id1 = dir.record_feed_run(&first).await.unwrap();
    let second = vigie_directory_sql::FeedRun {
        started_at: "2026-03-02T08:00:00Z".into(),
        dry_run: true,
        result: "failed".into(),
        errors: 1,
        safety_stop: None,
        error_lines: r#"[{"line":3}]"#.into(),
        ..first.clone()
    };
    let id2 = dir.record_feed_run(&second).await.unwrap();
    let runs = dir.feed_runs(10).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [id2.as_str(), id1.as_str()]);
    assert_eq!(dir.feed_run(&id1).await.unwrap(), Some(vigie_directory_sql::FeedRun { id: id1.clone(), ..first }));
    assert_eq!(dir.feed_runs(1).await.unwrap().len(), 1);
    assert_eq!(dir.feed_run("no-such-run").await.unwrap(), None);
}
}
