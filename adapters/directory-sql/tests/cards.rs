//! The card registry, roles and identity search on real SQLite files and a real PostgreSQL server.
#[macro_use]
mod common;

use common::{TestDb, camille, ines};
use proptest::prelude::*;
use vigie_core::cards::{CardRegistry, CardStatus};
use vigie_core::directory::{Directory, DirectoryError};
use vigie_core::roles::{IdentitySearch, Role, Roles};
use vigie_directory_sql::SqlDirectory;

const ISSUER: &str = "C=FR, O=ASIP-SANTE, OU=IGC-SANTE TEST, CN=TEST AC IGC-SANTE ELEMENTAIRE PERSONNES";

/// The card life cycle, by label, in life-cycle order: the rows and columns of [`LIFE_CYCLE`].
const STATUSES: [&str; 8] =
    ["requested", "ordered", "received", "handed_over", "returned", "lost", "stolen", "expired"];

/// Which declared change (`set_status`) each status allows, written out as the contract the
/// directory must keep rather than read from `CardStatus::may_become`, which it checks. From
/// DESIGN.md ("requested → ordered → received → handed_over → returned / lost / stolen / expired")
/// and the README's "Cards" section: `handed_over` is entered only by binding (its column is
/// empty), statuses only move forward, stolen and returned are the end of a card's life. The
/// side steps the docs leave open are the reviewed ones of `CardStatus::next`: a requested card
/// may arrive unordered or be cancelled (returned), an ordered one may be lost in transit, a lost
/// one may turn out stolen or be found and given back, an expired one given back.
#[rustfmt::skip]
const LIFE_CYCLE: [[bool; 8]; 8] = {
    const Y: bool = true;
    const N: bool = false;
    [
        // to:         requested ordered received handed_over returned lost stolen expired
        /* requested   */ [N,    Y,      Y,       N,          Y,       N,   N,     N],
        /* ordered     */ [N,    N,      Y,       N,          Y,       Y,   N,     N],
        /* received    */ [N,    N,      N,       N,          Y,       Y,   Y,     Y],
        /* handed_over */ [N,    N,      N,       N,          Y,       Y,   Y,     Y],
        /* returned    */ [N,    N,      N,       N,          N,       N,   N,     N],
        /* lost        */ [N,    N,      N,       N,          Y,       N,   Y,     N],
        /* stolen      */ [N,    N,      N,       N,          N,       N,   N,     N],
        /* expired     */ [N,    N,      N,       N,          Y,       N,   N,     N],
    ]
};

/// Whether the life cycle allows a declared change from `from` to `to`.
fn allowed(from: CardStatus, to: CardStatus) -> bool {
    LIFE_CYCLE[position(from)][position(to)]
}

fn position(status: CardStatus) -> usize {
    STATUSES.iter().position(|s| *s == status.as_str()).expect("every status is in the table")
}

fn status(label: &str) -> CardStatus {
    CardStatus::parse(label).expect("a status of the table")
}

fn invalid(r: Result<impl std::fmt::Debug, DirectoryError>) -> String {
    match r {
        Err(DirectoryError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn with_camille(db: &TestDb) -> (SqlDirectory, String) {
    let dir = SqlDirectory::open(&db.url()).await.unwrap();
    let id = dir.upsert_identity(&camille()).await.unwrap();
    (dir, id)
}

on_both! {
async fn a_card_bound_without_being_read_waits_for_its_holder_and_a_declared_status_wins(db: TestDb) {
    let (dir, id) = with_camille(&db).await;
    let card = dir.create_card(&id, "cpe", CardStatus::Ordered, "staff:rh", None).await.unwrap();
    let pending = dir.bind_pending(&card.id, ISSUER, "5e", "3760021832/000000018", "token:drh").await.unwrap();
    assert_eq!(pending.status, CardStatus::Received);
    assert!(pending.pending_presentation() && !pending.status.allows_login());
    assert_eq!(dir.card_by_certificate(ISSUER, "5e").await.unwrap().as_ref(), Some(&pending));
    let presented = dir.confirm_presented(&card.id, "vigie").await.unwrap();
    assert_eq!(presented.status, CardStatus::HandedOver);
    assert!(!presented.pending_presentation());
    // Once: a second presentation changes nothing.
    assert_eq!(dir.confirm_presented(&card.id, "vigie").await.unwrap(), presented);
    let events = dir.events(&card.id).await.unwrap();
    let steps: Vec<CardStatus> = events.iter().map(|e| e.status).collect();
    assert_eq!(steps, [CardStatus::Ordered, CardStatus::Received, CardStatus::HandedOver]);
    assert!(events[1].comment.as_deref().unwrap().contains("pending"), "{events:?}");

    // Declared lost while pending: its presentation no longer hands it over.
    let other = dir.create_card(&id, "cpe", CardStatus::Received, "staff:rh", None).await.unwrap();
    dir.bind_pending(&other.id, ISSUER, "5f", "3760021832/000000019", "token:drh").await.unwrap();
    dir.set_status(&other.id, CardStatus::Lost, "staff:rh", None).await.unwrap();
    assert_eq!(dir.confirm_presented(&other.id, "vigie").await.unwrap().status, CardStatus::Lost);
    // A certificate already bound elsewhere is refused as by `bind`.
    let third = dir.create_card(&id, "cpe", CardStatus::Received, "staff:rh", None).await.unwrap();
    let clash = invalid(dir.bind_pending(&third.id, ISSUER, "5e", "3760021832/000000018", "token:drh").await);
    assert!(clash.contains("already bound"), "{clash}");
}
}

on_both! {
async fn a_card_goes_from_request_to_handed_over_with_its_history_in_order(db: TestDb) {
    let (dir, id) = with_camille(&db).await;
    let card = dir.create_card(&id, "cps", CardStatus::Requested, "staff:rh", Some("nouvel interne")).await.unwrap();
    assert_eq!(
        (card.status, card.kind.as_str(), card.identity_id.as_str()),
        (CardStatus::Requested, "cps", id.as_str())
    );
    assert_eq!(card.fingerprint(), None, "not bound yet");

    dir.set_status(&card.id, CardStatus::Ordered, "staff:rh", Some("commande ANS n°123")).await.unwrap();
    dir.set_status(&card.id, CardStatus::Ordered, "staff:rh", Some("relance")).await.unwrap();
    dir.set_status(&card.id, CardStatus::Received, "staff:rh", None).await.unwrap();
    let bound = dir.bind(&card.id, ISSUER, "0a1b2c", "810002004512", "staff:rh", None).await.unwrap();
    assert_eq!(bound.status, CardStatus::HandedOver);
    assert_eq!(bound.fingerprint().as_deref(), Some(format!("card:{ISSUER}#0a1b2c").as_str()));
    assert_eq!(bound.bound_by.as_deref(), Some("staff:rh"));
    assert!(bound.bound_at.is_some() && bound.override_reason.is_none());

    let found = dir.card_by_certificate(ISSUER, "0a1b2c").await.unwrap().expect("found by its certificate");
    assert_eq!(found, bound);
    assert!(found.status.allows_login());
    assert_eq!(dir.card_by_certificate(ISSUER, "0a1b2d").await.unwrap(), None);

    let events = dir.events(&card.id).await.unwrap();
    let steps: Vec<(CardStatus, Option<&str>)> = events.iter().map(|e| (e.status, e.comment.as_deref())).collect();
    assert_eq!(steps.len(), 5, "{events:?}");
    assert_eq!(steps[0], (CardStatus::Requested, Some("nouvel interne")));
    assert_eq!(steps[1], (CardStatus::Ordered, Some("commande ANS n°123")));
    assert_eq!(steps[2], (CardStatus::Ordered, Some("relance")));
    assert_eq!(steps[3], (CardStatus::Received, None));
    assert_eq!(steps[4].0, CardStatus::HandedOver);
    assert!(steps[4].1.unwrap().contains("#0a1b2c"));
    assert!(events.iter().all(|e| e.by == "staff:rh" && e.card_id == card.id));

    // Lost: no way back to handed_over, nor a new binding of that record.
    let lost = dir.set_status(&card.id, CardStatus::Lost, "token:cli", Some("perdue au self")).await.unwrap();
    assert!(!lost.status.allows_login());
    assert_eq!(dir.card_by_certificate(ISSUER, "0a1b2c").await.unwrap().unwrap().status, CardStatus::Lost);
    let back = invalid(dir.set_status(&card.id, CardStatus::HandedOver, "staff:rh", None).await);
    assert!(back.contains("binding"), "{back}");
    let rebind = invalid(dir.bind(&card.id, ISSUER, "0a1b2c", "810002004512", "staff:rh", None).await);
    assert!(rebind.contains("record a new card"), "{rebind}");
    dir.set_status(&card.id, CardStatus::Stolen, "staff:rh", None).await.unwrap();
    let end = invalid(dir.set_status(&card.id, CardStatus::Returned, "staff:rh", None).await);
    assert!(end.contains("end of its life"), "{end}");
    assert_eq!(dir.events(&card.id).await.unwrap().len(), 7);
}
}

on_both! {
async fn refused_changes_say_why_and_leave_no_trace(db: TestDb) {
    let (dir, id) = with_camille(&db).await;
    assert!(invalid(dir.create_card(&id, "cpx", CardStatus::Requested, "staff:rh", None).await).contains("cps"));
    assert!(invalid(dir.create_card(&id, "cps", CardStatus::HandedOver, "staff:rh", None).await).contains("binding"));
    assert!(
        invalid(dir.create_card("nobody", "cps", CardStatus::Requested, "staff:rh", None).await).contains("no agent")
    );
    let card = dir.create_card(&id, "cpe", CardStatus::Received, "staff:rh", None).await.unwrap();
    let same = invalid(dir.set_status(&card.id, CardStatus::Received, "staff:rh", None).await);
    assert!(same.contains("already received"), "{same}");
    let jump = invalid(dir.set_status(&card.id, CardStatus::Requested, "staff:rh", None).await);
    assert!(jump.contains("may become returned, lost, stolen, expired"), "{jump}");
    let long = "x".repeat(1001);
    assert!(invalid(dir.set_status(&card.id, CardStatus::Lost, "staff:rh", Some(&long)).await).contains("longer"));
    assert!(invalid(dir.set_status(&card.id, CardStatus::Lost, "staff:rh", Some("a\u{7}b")).await).contains("control"));
    assert!(invalid(dir.set_status("no-such-card", CardStatus::Lost, "staff:rh", None).await).contains("no card"));
    assert_eq!(dir.events(&card.id).await.unwrap().len(), 1, "only the creation");
    assert_eq!(dir.card(&card.id).await.unwrap().unwrap().status, CardStatus::Received);
    assert_eq!(dir.card("no-such-card").await.unwrap(), None);
}
}

on_both! {
async fn a_certificate_binds_one_card_only_and_the_refusal_names_its_holder(db: TestDb) {
    let (dir, camille_id) = with_camille(&db).await;
    let ines_id = dir.upsert_identity(&ines()).await.unwrap();
    let first = dir.create_card(&camille_id, "cpe", CardStatus::Received, "staff:rh", None).await.unwrap();
    let second = dir.create_card(&ines_id, "cpe", CardStatus::Received, "staff:rh", None).await.unwrap();
    dir.bind(&first.id, ISSUER, "77", "3760021832/000000018", "staff:rh", Some("nom d'usage")).await.unwrap();
    let clash = invalid(dir.bind(&second.id, ISSUER, "77", "3760021832/000000018", "staff:rh", None).await);
    assert!(clash.contains(&first.id) && clash.contains("004512"), "{clash}");
    assert_eq!(dir.card(&second.id).await.unwrap().unwrap().status, CardStatus::Received, "unchanged");
    let overridden = dir.card(&first.id).await.unwrap().unwrap();
    assert_eq!(overridden.override_reason.as_deref(), Some("nom d'usage"));
    let last = dir.events(&first.id).await.unwrap().pop().unwrap();
    assert!(last.comment.unwrap().contains("overridden: nom d'usage"));

    // Newest first.
    let third = dir.create_card(&camille_id, "cps", CardStatus::Requested, "staff:rh", None).await.unwrap();
    let ids: Vec<String> = dir.cards_of(&camille_id).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![third.id, first.id]);
    assert!(dir.cards_of("nobody").await.unwrap().is_empty());
}
}

on_both! {
async fn roles_are_granted_once_revoked_and_only_to_known_identities(db: TestDb) {
    let (dir, id) = with_camille(&db).await;
    assert!(dir.roles_of(&id).await.unwrap().is_empty());
    dir.grant(&id, Role::Cards, "cli").await.unwrap();
    dir.grant(&id, Role::Cards, "cli").await.unwrap();
    assert_eq!(dir.roles_of(&id).await.unwrap(), vec![Role::Cards]);
    dir.grant(&id, Role::Fido2, "cli").await.unwrap();
    assert_eq!(dir.roles_of(&id).await.unwrap(), vec![Role::Cards, Role::Fido2]);
    assert!(dir.revoke(&id, Role::Cards).await.unwrap());
    assert!(!dir.revoke(&id, Role::Cards).await.unwrap());
    assert_eq!(dir.roles_of(&id).await.unwrap(), vec![Role::Fido2]);
    assert!(invalid(dir.grant("nobody", Role::Cards, "cli").await).contains("no identity"));
}
}

on_both! {
async fn hr_finds_an_agent_by_name_without_accents_by_matricule_or_by_idnat(db: TestDb) {
    let (dir, camille_id) = with_camille(&db).await;
    let ines_id = dir.upsert_identity(&ines()).await.unwrap();
    let ids = |v: Vec<vigie_core::directory::Identity>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(dir.search_identities("lefevre", 10).await.unwrap()), vec![camille_id.clone()]);
    assert_eq!(ids(dir.search_identities("LEFÈVRE", 10).await.unwrap()), vec![camille_id.clone()]);
    assert_eq!(ids(dir.search_identities("camille lef", 10).await.unwrap()), vec![camille_id.clone()]);
    assert_eq!(ids(dir.search_identities("dasilva", 10).await.unwrap()), vec![ines_id.clone()]);
    assert_eq!(ids(dir.search_identities("ines", 10).await.unwrap()), vec![ines_id.clone()]);
    assert_eq!(ids(dir.search_identities("005377", 10).await.unwrap()), vec![ines_id.clone()]);
    assert_eq!(ids(dir.search_identities("8100020", 10).await.unwrap()), vec![camille_id.clone()]);
    // Ordered by family name: Da Silva before Lefèvre; limited.
    assert_eq!(ids(dir.search_identities("00", 10).await.unwrap()), vec![ines_id.clone(), camille_id.clone()]);
    assert_eq!(ids(dir.search_identities("00", 1).await.unwrap()), vec![ines_id]);
    assert!(dir.search_identities("  ", 10).await.unwrap().is_empty());
    assert!(dir.search_identities("zzz", 10).await.unwrap().is_empty());
    assert!(invalid(dir.search_identities(&"a".repeat(101), 10).await).contains("longer"));
}
}

/// A new card of `identity` brought to `status` the way HR would: created, bound, then declared.
async fn card_in(dir: &SqlDirectory, identity: &str, status: CardStatus, serial: &str) -> String {
    let start =
        if matches!(status, CardStatus::Requested | CardStatus::Ordered) { status } else { CardStatus::Received };
    let card = dir.create_card(identity, "cps", start, "staff:rh", None).await.unwrap();
    if status != start {
        dir.bind(&card.id, ISSUER, serial, "810002004512", "staff:rh", None).await.unwrap();
        if status != CardStatus::HandedOver {
            dir.set_status(&card.id, status, "staff:rh", None).await.unwrap();
        }
    }
    assert_eq!(dir.card(&card.id).await.unwrap().unwrap().status, status);
    card.id
}

#[test]
fn may_become_and_next_agree_with_the_life_cycle_table() {
    let labels: Vec<&str> = CardStatus::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(labels, STATUSES, "the table covers every status, in life-cycle order");
    for from in STATUSES.map(status) {
        for to in STATUSES.map(status) {
            assert_eq!(from.may_become(to), allowed(from, to), "{from:?} -> {to:?}");
        }
        let mut next: Vec<&str> = from.next().iter().map(|s| s.as_str()).collect();
        next.sort_unstable();
        let mut expected: Vec<&str> = STATUSES.into_iter().filter(|to| allowed(from, status(to))).collect();
        expected.sort_unstable();
        assert_eq!(next, expected, "next() of {from:?}");
    }
}

on_both! {
/// All 64 (from, to) pairs through `set_status`: an allowed change is made and recorded; any
/// other is refused with the reason, and leaves the card and its history as they were.
async fn every_declared_change_is_made_or_refused_exactly_as_the_life_cycle_table_says(db: TestDb) {
    let (dir, id) = with_camille(&db).await;
    for (i, from) in STATUSES.map(status).into_iter().enumerate() {
        for (j, to) in STATUSES.map(status).into_iter().enumerate() {
            let card = card_in(&dir, &id, from, &format!("{i:02x}{j:02x}")).await;
            let history = dir.events(&card).await.unwrap().len();
            let result = dir.set_status(&card, to, "staff:rh", None).await;
            let now = dir.card(&card).await.unwrap().unwrap().status;
            let events = dir.events(&card).await.unwrap();
            if allowed(from, to) {
                let made = result.unwrap_or_else(|e| panic!("{from:?} -> {to:?} is allowed: {e:?}"));
                assert_eq!(made.status, to);
                assert_eq!(now, to);
                assert_eq!(events.len(), history + 1, "{from:?} -> {to:?}: one event");
                assert_eq!(events.last().map(|e| e.status), Some(to));
                continue;
            }
            let (f, t) = (from.as_str(), to.as_str());
            let message = invalid(result);
            let next: Vec<&str> = STATUSES.into_iter().filter(|n| allowed(from, status(n))).collect();
            if from == to {
                assert_eq!(message, format!("card {card} is already {f}: give a comment to add a note to its history"));
            } else if to == CardStatus::HandedOver {
                assert_eq!(
                    message,
                    format!(
                        "card {card} cannot go from {f} to {t}: a card is handed over by binding it (reading it in the reader)"
                    )
                );
            } else if next.is_empty() {
                assert_eq!(
                    message,
                    format!("card {card} cannot go from {f} to {t}: it is at the end of its life: record a new card")
                );
            } else {
                let prefix = format!("card {card} cannot go from {f} to {t}: from {f} it may become ");
                let listed =
                    message.strip_prefix(&prefix).unwrap_or_else(|| panic!("{message:?} starts with {prefix:?}"));
                let mut listed: Vec<&str> = listed.split(", ").collect();
                listed.sort_unstable();
                let mut next = next;
                next.sort_unstable();
                assert_eq!(listed, next, "{from:?} -> {to:?}: the allowed changes, named");
            }
            assert_eq!(now, from, "{from:?} -> {to:?} refused: unchanged");
            assert_eq!(events.len(), history, "{from:?} -> {to:?} refused: no event");
        }
    }
}
}

on_both! {
/// `handed_over` is entered by binding alone, and only a card not yet in use can be bound.
async fn only_a_requested_ordered_or_received_card_can_be_bound(db: TestDb) {
    let (dir, id) = with_camille(&db).await;
    for (i, from) in STATUSES.map(status).into_iter().enumerate() {
        let card = card_in(&dir, &id, from, &format!("b0{i:02x}")).await;
        let result = dir.bind(&card, ISSUER, &format!("b1{i:02x}"), "810002004512", "staff:rh", None).await;
        if matches!(from.as_str(), "requested" | "ordered" | "received") {
            let bound = result.unwrap_or_else(|e| panic!("a {from:?} card binds: {e:?}"));
            assert_eq!(bound.status, CardStatus::HandedOver);
        } else {
            let f = from.as_str();
            assert_eq!(
                invalid(result),
                format!(
                    "card {card} is {f}: only a requested, ordered or received card can be bound; record a new card"
                )
            );
            assert_eq!(dir.card(&card).await.unwrap().unwrap().status, from);
        }
    }
}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever sequence of declared changes is tried, the card's status is always the one its
    /// last event entered, and a card once lost or stolen never allows login again.
    #[test]
    fn any_sequence_of_changes_keeps_status_and_history_in_step(
        steps in proptest::collection::vec((0..CardStatus::ALL.len(), proptest::option::of("[a-z ]{0,12}")), 1..12)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
          for db in common::each_db("card_sequence").await {
            let dir = SqlDirectory::open(&db.url()).await.unwrap();
            let id = dir.upsert_identity(&camille()).await.unwrap();
            let card = dir.create_card(&id, "cps", CardStatus::Received, "p", None).await.unwrap();
            dir.bind(&card.id, ISSUER, "01", "810002004512", "p", None).await.unwrap();
            let mut ended = false;
            for (i, comment) in steps.clone() {
                let to = CardStatus::ALL[i];
                let before = dir.card(&card.id).await.unwrap().unwrap().status;
                let r = dir.set_status(&card.id, to, "p", comment.as_deref()).await;
                let blank = comment.as_deref().is_none_or(|c| c.trim().is_empty());
                let expected_ok = allowed(before, to) || (before == to && !blank);
                prop_assert_eq!(r.is_ok(), expected_ok, "{:?} -> {:?}: {:?}", before, to, r);
                let now = dir.card(&card.id).await.unwrap().unwrap().status;
                ended |= matches!(now, CardStatus::Lost | CardStatus::Stolen);
                prop_assert_eq!(dir.events(&card.id).await.unwrap().last().unwrap().status, now);
                prop_assert!(!(ended && now.allows_login()));
            }
            dir.close().await;
          }
            Ok(())
        })?;
    }
}

on_both! {
async fn logins_with_the_same_new_card_at_once_register_it_once_for_its_holder_and_never_for_another(db: TestDb) {
    let (dir, camille_id) = with_camille(&db).await;
    let ines_id = dir.upsert_identity(&ines()).await.unwrap();
    let certificate = (ISSUER, "0a51", "810002004512");
    let by = "vigie (first login with this CPS)";
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (dir, id) = (dir.clone(), camille_id.clone());
            tokio::spawn(async move { dir.register_presented(&id, "cps", certificate, by).await })
        })
        .collect();
    let mut registered = Vec::new();
    for login in logins {
        registered.push(login.await.unwrap().expect("every login registers or finds the card"));
    }
    assert_eq!(registered.iter().filter(|(_, new)| *new).count(), 1, "registered once: {registered:?}");
    let id = &registered[0].0.id;
    assert!(registered.iter().all(|(card, _)| &card.id == id), "one record for all: {registered:?}");
    assert_eq!(registered[0].0.status, CardStatus::HandedOver);
    let cards = dir.cards_of(&camille_id).await.unwrap();
    assert_eq!(cards.iter().map(|c| &c.id).collect::<Vec<_>>(), [id], "no second record of the card");

    let again = dir.register_presented(&camille_id, "cps", certificate, by).await.unwrap();
    assert_eq!((again.0.id.as_str(), again.1), (id.as_str(), false), "a later login finds it");
    let other = invalid(dir.register_presented(&ines_id, "cps", certificate, by).await);
    assert!(other.contains(id.as_str()), "{other}");
    assert!(dir.cards_of(&ines_id).await.unwrap().is_empty(), "nothing registered for another agent");
}
}
