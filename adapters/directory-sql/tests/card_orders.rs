//! Card orders for joiners (`card_orders.rs`, migration `0018_card_orders.sql`) on a real SQLite
//! file and a real PostgreSQL server: one open order a person, received or cancelled once, a new
//! one after, listed by status and by person, a métier the rule leaves out ordering nothing.
#[macro_use]
mod common;

use common::{camille, ines};
use vigie_core::directory::Directory;
use vigie_directory_sql::SqlDirectory;

async fn order(dir: &SqlDirectory, matricule: &str) -> Option<vigie_directory_sql::card_orders::CardOrder> {
    dir.order_card(matricule, &medecins_only, Some("FINESS 1"), "hr-feed:t", "2030-01-01T00:00:00Z").await.unwrap()
}

fn medecins_only(metier: Option<&str>) -> Option<&'static str> {
    (metier == Some("Médecin")).then_some("cps")
}

#[tokio::test]
async fn one_open_order_a_person_settled_once_then_a_new_one_on_both_databases() {
    for db in common::each_db("card_orders").await {
        let dir = SqlDirectory::open(&db.url()).await.unwrap();
        let id = dir.upsert_identity(&camille()).await.unwrap();
        dir.upsert_identity(&ines()).await.unwrap();
        let first = order(&dir, "004512").await.expect("an order for the médecin");
        assert_eq!((first.kind.as_str(), first.status.as_str()), ("cps", "ordered"), "on {}", db.url());
        assert_eq!((first.idnat.as_deref(), first.structure.as_deref()), (Some("810002004512"), Some("FINESS 1")));
        assert_eq!(order(&dir, "004512").await, None, "a second open order on {}", db.url());
        assert_eq!(order(&dir, &ines().matricule).await, None, "not a médecin");
        assert_eq!(order(&dir, "nobody").await, None);

        let got = dir.settle_card_order(&id, "received", "card X", "2030-01-02T00:00:00Z").await.unwrap();
        assert_eq!(got.map(|o| (o.status, o.reason)), Some(("received".into(), Some("card X".into()))));
        assert_eq!(dir.settle_card_order("004512", "cancelled", "left", "2030-01-03T00:00:00Z").await.unwrap(), None);

        let second = order(&dir, "004512").await.expect("a new order once the first is settled");
        let cancelled = dir.settle_card_order("004512", "cancelled", "left", "2030-01-03T00:00:00Z").await.unwrap();
        assert_eq!(cancelled.map(|o| o.id), Some(second.id.clone()));
        let all = dir.card_orders(None, Some(&id)).await.unwrap();
        assert_eq!(
            all.iter().map(|o| o.status.as_str()).collect::<Vec<_>>(),
            ["cancelled", "received"],
            "newest first"
        );
        assert_eq!(dir.card_orders(Some("received"), None).await.unwrap().len(), 1, "on {}", db.url());
        assert!(dir.card_orders(Some("ordered"), None).await.unwrap().is_empty());
        assert!(dir.card_orders(None, Some("no-such-id")).await.unwrap().is_empty());
    }
}

/// Only a card of the order's kind, registered at or after the order was placed, receives it: a
/// CPE does not receive a CPS order, nor a CPS the holder had before the order; a CPS registered
/// in the very second the order was placed does.
#[tokio::test]
async fn a_cpe_or_an_older_card_does_not_receive_a_cps_order_a_new_cps_does_on_both_databases() {
    for db in common::each_db("card_orders_kind").await {
        let dir = SqlDirectory::open(&db.url()).await.unwrap();
        let id = dir.upsert_identity(&camille()).await.unwrap();
        let placed = order(&dir, "004512").await.expect("a CPS order");
        let receive = |kind: &'static str, at: &'static str| {
            let (dir, id) = (&dir, &id);
            async move { dir.receive_card_order(id, kind, at, "a card", "2030-01-05T00:00:00Z").await.unwrap() }
        };
        assert_eq!(receive("cpe", "2030-01-02T00:00:00Z").await, None, "a CPE on {}", db.url());
        assert_eq!(receive("cps", "2029-12-31T23:59:59Z").await, None, "a CPS older than the order on {}", db.url());
        let open = dir.card_orders(Some("ordered"), Some(&id)).await.unwrap();
        assert_eq!(open.len(), 1, "still ordered on {}", db.url());
        let got = receive("cps", "2030-01-01T00:00:00Z").await.expect("a CPS registered as the order was placed");
        assert_eq!((got.id, got.status.as_str()), (placed.id, "received"), "on {}", db.url());
        assert_eq!(receive("cps", "2030-01-02T00:00:00Z").await, None, "received once on {}", db.url());
    }
}
