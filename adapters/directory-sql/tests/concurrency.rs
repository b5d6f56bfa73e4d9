//! Two replicas writing the same thing at the same moment: each invariant the directory promises
//! ("a card bound once", "an announcement used once", "a key registered once", "a pending card
//! handed over once", "a card's history in step with its status") holds on SQLite (write lock
//! taken up front) and on PostgreSQL (row locks, `DELETE … RETURNING`, unique keys), through two
//! separate handles, each with its own connections, as two gateway processes have.
#[macro_use]
mod common;

use common::{TestDb, camille};
use vigie_core::IdNat;
use vigie_core::cards::{CardRegistry, CardStatus};
use vigie_core::directory::{Directory, DirectoryError};
use vigie_core::fido2::{Fido2Credential, Fido2Credentials};
use vigie_directory_sql::SqlDirectory;
use vigie_directory_sql::announced::NewAnnouncement;

const ISSUER: &str = "C=FR, O=ASIP-SANTE, OU=IGC-SANTE TEST, CN=TEST AC IGC-SANTE ELEMENTAIRE PERSONNES";
/// Races tried per test: one may happen to run one after the other; several rarely all do.
const ROUNDS: usize = 8;

/// Two handles on one database, as two replicas, and Camille's identity id.
async fn two_replicas(db: &TestDb) -> (SqlDirectory, SqlDirectory, String) {
    let a = SqlDirectory::open(&db.url()).await.unwrap();
    let b = SqlDirectory::open(&db.url()).await.unwrap();
    let id = a.upsert_identity(&camille()).await.unwrap();
    (a, b, id)
}

/// Exactly one of two results is a success; the other is a refusal (never "unavailable": a
/// race must not surface as a database failure). Returns the refusal.
fn one_wins<T: std::fmt::Debug>(a: Result<T, DirectoryError>, b: Result<T, DirectoryError>) -> String {
    match (a, b) {
        (Ok(_), Err(DirectoryError::Invalid(m))) | (Err(DirectoryError::Invalid(m)), Ok(_)) => m,
        other => panic!("expected one success and one refusal, got {other:?}"),
    }
}

on_both! {
async fn a_card_read_at_two_desks_at_once_is_bound_to_one_certificate(db: TestDb) {
    let (a, b, id) = two_replicas(&db).await;
    for round in 0..ROUNDS {
        let card = a.create_card(&id, "cps", CardStatus::Received, "staff:rh", None).await.unwrap();
        let (first, second) = (format!("a{round:02x}"), format!("b{round:02x}"));
        let (ra, rb) = tokio::join!(
            a.bind(&card.id, ISSUER, &first, "810002004512", "staff:rh1", None),
            b.bind(&card.id, ISSUER, &second, "810002004512", "staff:rh2", None),
        );
        let refusal = one_wins(ra, rb);
        assert!(refusal.contains("is handed_over: only a requested, ordered or received card"), "{refusal}");
        let bound = a.card(&card.id).await.unwrap().unwrap();
        let events = a.events(&card.id).await.unwrap();
        assert_eq!(events.len(), 2, "created, then bound once: {events:?}");
        let winner = bound.serial_hex.clone().unwrap();
        assert!(events[1].comment.as_deref().unwrap().contains(&winner), "the history names the certificate kept");
    }
}
}

on_both! {
async fn one_certificate_bound_to_two_cards_at_once_goes_to_one_of_them(db: TestDb) {
    let (a, b, id) = two_replicas(&db).await;
    for round in 0..ROUNDS {
        let one = a.create_card(&id, "cps", CardStatus::Received, "staff:rh", None).await.unwrap();
        let two = a.create_card(&id, "cps", CardStatus::Received, "staff:rh", None).await.unwrap();
        let serial = format!("c{round:02x}");
        let (ra, rb) = tokio::join!(
            a.bind(&one.id, ISSUER, &serial, "810002004512", "staff:rh1", None),
            b.bind(&two.id, ISSUER, &serial, "810002004512", "staff:rh2", None),
        );
        let refusal = one_wins(ra, rb);
        assert!(refusal.contains("this certificate is already bound to card"), "{refusal}");
        assert!(refusal.contains("004512"), "names the holder: {refusal}");
        let holder = a.card_by_certificate(ISSUER, &serial).await.unwrap().unwrap();
        let other = if holder.id == one.id { &two.id } else { &one.id };
        assert_eq!(a.card(other).await.unwrap().unwrap().status, CardStatus::Received, "the other is left as it was");
        assert_eq!(a.events(other).await.unwrap().len(), 1);
    }
}
}

on_both! {
async fn a_pending_card_presented_twice_at_once_is_handed_over_once(db: TestDb) {
    let (a, b, id) = two_replicas(&db).await;
    for round in 0..ROUNDS {
        let card = a.create_card(&id, "cps", CardStatus::Received, "staff:rh", None).await.unwrap();
        a.bind_pending(&card.id, ISSUER, &format!("d{round:02x}"), "810002004512", "staff:rh").await.unwrap();
        let (ra, rb) = tokio::join!(a.confirm_presented(&card.id, "card:1"), b.confirm_presented(&card.id, "card:2"));
        assert_eq!(ra.unwrap().status, CardStatus::HandedOver);
        assert_eq!(rb.unwrap().status, CardStatus::HandedOver);
        let events = a.events(&card.id).await.unwrap();
        let handed: Vec<_> = events.iter().filter(|e| e.status == CardStatus::HandedOver).collect();
        assert_eq!(handed.len(), 1, "one presentation hands it over: {events:?}");
    }
}
}

on_both! {
async fn two_declarations_at_once_keep_the_status_and_the_history_in_step(db: TestDb) {
    let (a, b, id) = two_replicas(&db).await;
    for round in 0..ROUNDS {
        let card = a.create_card(&id, "cps", CardStatus::Received, "staff:rh", None).await.unwrap();
        a.bind(&card.id, ISSUER, &format!("e{round:02x}"), "810002004512", "staff:rh", None).await.unwrap();
        // Returned and stolen are both final: whichever comes first, the other is refused.
        let (ra, rb) = tokio::join!(
            a.set_status(&card.id, CardStatus::Returned, "staff:rh1", None),
            b.set_status(&card.id, CardStatus::Stolen, "staff:rh2", None),
        );
        let refusal = one_wins(ra, rb);
        assert!(refusal.contains("it is at the end of its life"), "{refusal}");
        let now = a.card(&card.id).await.unwrap().unwrap().status;
        let events = a.events(&card.id).await.unwrap();
        assert_eq!(events.len(), 3, "created, bound, declared once: {events:?}");
        assert_eq!(events.last().unwrap().status, now);
    }
}
}

on_both! {
async fn an_announcement_used_by_two_logins_at_once_creates_one_identity(db: TestDb) {
    let (a, b, _) = two_replicas(&db).await;
    for round in 0..ROUNDS {
        let idnat = IdNat::parse(&format!("8100012345{round:02}")).unwrap();
        let announcement = NewAnnouncement {
            idnat: &idnat,
            family_name: "Durand",
            given_name: "Marie",
            unit: Some("UF1203"),
            announced_by: "cli:test",
            days: 7,
        };
        a.announce(&announcement).await.unwrap();
        let (ra, rb) = tokio::join!(a.create_announced(&idnat, None, None), b.create_announced(&idnat, None, None));
        let created: Vec<_> = [ra.unwrap(), rb.unwrap()].into_iter().flatten().collect();
        assert_eq!(created.len(), 1, "one login creates the identity, the other finds nothing to create");
        let identity = a.identity_by_idnat(&idnat).await.unwrap().unwrap();
        assert_eq!(identity.id, created[0].0);
        assert!(a.announcements().await.unwrap().is_empty(), "used up");
    }
}
}

on_both! {
async fn a_security_key_registered_twice_at_once_is_stored_once(db: TestDb) {
    let (a, b, id) = two_replicas(&db).await;
    for round in 0..ROUNDS {
        let key = |name: &str| Fido2Credential {
            id: format!("KEY{round}"),
            identity_id: id.clone(),
            user_handle: "0191c8a4-0000-7000-8000-000000000001".into(),
            name: name.into(),
            aaguid: "01020304-0506-0708-0102-030405060708".into(),
            attested: true,
            public_key: "{}".into(),
            sign_count: 0,
            created_at: "2026-11-22T09:00:00Z".into(),
            last_used_at: None,
        };
        let (first, second) = (key("first"), key("second"));
        let (ra, rb) = tokio::join!(a.add_credential(&first), b.add_credential(&second));
        let refusal = one_wins(ra, rb);
        assert_eq!(refusal, "this security key is already registered");
        assert_eq!(a.credentials_of(&id).await.unwrap().iter().filter(|k| k.id == format!("KEY{round}")).count(), 1);
    }
}
}
