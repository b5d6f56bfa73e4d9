//! The shared suite of the directory's other ports, on a real SQLite file and a real PostgreSQL
//! database: announced professionals (just-in-time creation), sponsorships, policy attributes,
//! pending revocations and FIDO2 credentials.
#[macro_use]
mod common;

use vigie_core::IdNat;
use vigie_core::directory::{
    AccessTarget, Affectation, Directory, DirectoryError, Identity, PendingRevocations, PolicyAttributes,
};
use vigie_core::fido2::{CounterCheck, Fido2Credential, Fido2Credentials};
use vigie_core::policy::AccountKind;
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::announced::NewAnnouncement;
use vigie_directory_sql::sponsorship::{NewSponsorship, Sponsorships};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn idnat(s: &str) -> IdNat {
    IdNat::parse(s).unwrap()
}

fn new<'a>(id: &'a IdNat, days: u32) -> NewAnnouncement<'a> {
    NewAnnouncement {
        idnat: id,
        family_name: "Durand",
        given_name: "Marie",
        unit: Some("UF1203"),
        announced_by: "cli:test",
        days,
    }
}

on_both! {
async fn an_announced_professional_is_created_once_with_the_announced_unit(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = idnat("810001234567");
    dir.announce(&new(&id, 7)).await.unwrap();
    assert_eq!(dir.announcements().await.unwrap().len(), 1);

    let (identity_id, a) = dir.create_announced(&id, Some("DURAND"), Some("Marie")).await.unwrap().unwrap();
    assert_eq!(a.unit.as_deref(), Some("UF1203"));
    let identity = dir.identity(&identity_id).await.unwrap().unwrap();
    assert_eq!(identity.family_name, "DURAND", "names as PSC asserted them");
    assert_eq!(identity.idnat.as_ref(), Some(&id));
    assert_eq!(identity.units, vec![Affectation { uf: "UF1203".into(), share: 100 }]);
    assert_eq!(identity.matricule, "PSC-810001234567");
    assert_eq!(dir.identity_by_idnat(&id).await.unwrap().map(|i| i.id), Some(identity_id));

    // Used up: a second login finds nothing to create, and the idNat cannot be announced again.
    assert!(dir.announcements().await.unwrap().is_empty());
    assert_eq!(dir.create_announced(&id, None, None).await.unwrap(), None);
    let again = dir.announce(&new(&id, 7)).await.unwrap_err().to_string();
    assert!(again.contains("already belongs"), "{again}");
}
}

on_both! {
async fn unannounced_withdrawn_and_lapsed_professionals_are_not_created(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = idnat("810009876543");
    assert_eq!(dir.create_announced(&id, None, None).await.unwrap(), None);

    dir.announce(&new(&id, 7)).await.unwrap();
    assert!(dir.withdraw_announcement(&id).await.unwrap());
    assert!(!dir.withdraw_announcement(&id).await.unwrap());
    assert_eq!(dir.create_announced(&id, None, None).await.unwrap(), None);

    // A lapsed announcement (written as a past date) is removed and creates nothing.
    dir.announce(&new(&id, 1)).await.unwrap();
    common::execute(&db, "UPDATE announced_professionals SET expires_at = '2020-01-01T00:00:00Z'").await;
    assert!(dir.announcements().await.unwrap()[0].expired_at(now()));
    assert_eq!(dir.create_announced(&id, None, None).await.unwrap(), None);
    assert!(dir.announcements().await.unwrap().is_empty());
    assert_eq!(dir.identity_by_idnat(&id).await.unwrap(), None);
}
}

on_both! {
async fn bad_announcements_are_refused_with_the_reason(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = idnat("0751234567");
    let mut a = new(&id, 0);
    assert!(dir.announce(&a).await.unwrap_err().to_string().contains("1 to 366 days"));
    a.days = 3;
    a.unit = Some("UF 12");
    assert!(dir.announce(&a).await.unwrap_err().to_string().contains("unit code"));
    a.unit = None;
    a.family_name = " ";
    assert!(dir.announce(&a).await.unwrap_err().to_string().contains("family name"));
}
}

fn person(matricule: &str, family: &str, given: &str, units: &[&str]) -> Identity {
    Identity {
        id: String::new(),
        matricule: matricule.into(),
        family_name: family.into(),
        given_name: given.into(),
        birth_date: None,
        metier: None,
        grade: None,
        idnat: None,
        units: units.iter().map(|u| Affectation { uf: (*u).into(), share: 50 }).collect(),
    }
}

on_both! {
async fn colleagues_share_a_unit_grants_expire_and_answers_replace(db: TestDb) {
    let d = SqlDirectory::open(&db.url()).await.unwrap();
    let a = d.upsert_identity(&person("A1", "Durand", "Paul", &["UF1", "UF2"])).await.unwrap();
    let b = d.upsert_identity(&person("B1", "Martin", "Camille", &["UF1"])).await.unwrap();
    let c = d.upsert_identity(&person("C1", "Petit", "Luc", &["UF3"])).await.unwrap();
    let names = |v: Vec<Identity>| v.into_iter().map(|i| i.family_name).collect::<Vec<_>>();
    assert_eq!(names(d.colleagues(&a, "", 10).await.unwrap()), ["Martin"]);
    let found = d.colleagues(&a, "cam", 10).await.unwrap();
    assert_eq!(found[0].units.iter().map(|u| u.uf.as_str()).collect::<Vec<_>>(), ["UF1"], "with their units");
    assert_eq!(found[0].id, b);
    assert_eq!(names(d.colleagues(&a, "MARTÍN", 10).await.unwrap()), ["Martin"]);
    assert!(d.colleagues(&a, "petit", 10).await.unwrap().is_empty(), "no unit in common");
    assert!(d.colleagues(&c, "", 10).await.unwrap().is_empty());

    assert!(d.set_email(&b, Some("camille.martin@chu.example")).await.unwrap());
    assert_eq!(d.email_of(&b).await.unwrap().as_deref(), Some("camille.martin@chu.example"));
    assert!(d.set_email(&b, Some("x@y\r\nBcc: z@w")).await.is_err());
    assert_eq!(d.email_of(&c).await.unwrap(), None);

    d.set_security_answers(&b, &[("q1".into(), "h1".into()), ("q2".into(), "h2".into())]).await.unwrap();
    d.set_security_answers(&b, &[("q3".into(), "h3".into())]).await.unwrap();
    assert_eq!(d.security_answers(&b).await.unwrap(), [("q3".to_owned(), "h3".to_owned())]);
    assert!(d.set_security_answers("nobody", &[("q1".into(), "h".into())]).await.is_err());

    let s = NewSponsorship {
        sponsor_id: &a,
        sponsored_id: &b,
        reason: "forgotten",
        at: 1_000,
        code_hash: "hash",
        expires_at: 2_000,
    };
    d.record_sponsorship(&s).await.unwrap();
    assert_eq!(d.sponsorships_by_since(&a, 900).await.unwrap(), 1);
    assert_eq!(d.sponsorships_by_since(&a, 1_001).await.unwrap(), 0);
    assert_eq!(d.active_grants(&b, 1_999).await.unwrap().len(), 1);
    assert!(d.active_grants(&b, 2_000).await.unwrap().is_empty(), "expired at its end");
    assert_eq!(d.revoke_grants(&b).await.unwrap(), 1);
    assert!(d.active_grants(&b, 1_500).await.unwrap().is_empty(), "revoked");
}
}

on_both! {
async fn a_person_who_leaves_loses_access_and_the_note_to_end_it_is_kept(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&person("L1", "Leroy", "Anne", &["UF1"])).await.unwrap();
    dir.upsert_account(&vigie_core::directory::Account {
        identity_id: id.clone(),
        username: "aleroy".into(),
        password_hash: None,
        totp_secret: None,
        disabled: false,
    })
    .await
    .unwrap();
    assert_eq!(dir.policy_attributes(&id).await.unwrap(), (AccountKind::Personal, "active".to_owned()));
    assert!(dir.set_account_kind("aleroy", AccountKind::Generic).await.unwrap());
    assert!(!dir.set_account_kind("nobody", AccountKind::Generic).await.unwrap());
    let refused = dir.set_employment_status("aleroy", "gone").await;
    assert!(matches!(refused, Err(DirectoryError::Invalid(ref m)) if m.contains("unknown employment status")));
    assert!(dir.pending_revocations().await.unwrap().is_empty(), "a refused change notes nothing");

    assert!(dir.set_employment_status("aleroy", "left").await.unwrap());
    assert_eq!(dir.policy_attributes(&id).await.unwrap(), (AccountKind::Generic, "left".to_owned()));
    // The note to end their sessions was committed with the status.
    let pending = dir.pending_revocations().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].target, AccessTarget::Identity(id.clone()));
    assert_eq!(pending[0].reason, "employment status left");

    let key = dir.add_pending_revocation(&AccessTarget::Credential("fido2:KEY".into()), "key revoked").await.unwrap();
    assert_eq!(dir.pending_revocations().await.unwrap().len(), 2);
    dir.revocation_done(&pending[0].id).await.unwrap();
    let left: Vec<String> = dir.pending_revocations().await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(left, [key]);
}
}

on_both! {
async fn a_security_key_keeps_its_counter_moving_forward(db: TestDb) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let who = dir.upsert_identity(&person("K1", "Keller", "Jean", &[])).await.unwrap();
    let key = Fido2Credential {
        id: "AAEC".into(),
        identity_id: who.clone(),
        user_handle: "0191c8a4-0000-7000-8000-000000000001".into(),
        name: "Clé bleue".into(),
        aaguid: "01020304-0506-0708-0102-030405060708".into(),
        attested: true,
        public_key: "{}".into(),
        sign_count: 5,
        created_at: "2026-11-22T09:00:00Z".into(),
        last_used_at: None,
    };
    dir.add_credential(&key).await.unwrap();
    assert_eq!(dir.credentials_of(&who).await.unwrap(), vec![key.clone()], "read back as stored");
    let again = dir.add_credential(&key).await;
    assert!(matches!(again, Err(DirectoryError::Invalid(ref m)) if m.contains("already registered")), "{again:?}");
    assert_eq!(dir.record_use("AAEC", 6, "{\"v\":6}", "t6").await.unwrap(), CounterCheck::Accepted);
    assert_eq!(dir.record_use("AAEC", 6, "{}", "t7").await.unwrap(), CounterCheck::Regressed { stored: 6 });
    assert_eq!(dir.record_use("nope", 9, "{}", "t").await.unwrap(), CounterCheck::Unknown);
    let stored = dir.credential("AAEC").await.unwrap().unwrap();
    assert_eq!((stored.sign_count, stored.last_used_at.as_deref()), (6, Some("t6")));
    assert!(!dir.remove_credential("someone-else", "AAEC").await.unwrap());
    assert!(dir.remove_credential(&who, "AAEC").await.unwrap());
    assert_eq!(dir.credential("AAEC").await.unwrap(), None);
}
}
