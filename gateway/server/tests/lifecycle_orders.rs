//! Card orders for joiners against the real binary (docs/identity-lifecycle.md, "Card orders"):
//! a feed orders a CPS or a CPE for each eligible joiner (once, however often it runs), the
//! holder's first card login or HR registering their card marks it received, a leaver's open
//! order is cancelled (by the feed, or by the end-date watch) and a person who comes back gets a
//! new one; listed by `GET /admin/cards/orders` and `vigie cards orders`, shown on the person's
//! page and the cards page, each change audited.
use serde_json::Value;
use vigie_igc_sante::testpki::CardSpec;

use crate::card_login::card_login;
use crate::cards_admin::{call, demo_token};
use crate::cli::run_with;
use crate::common::*;
use crate::lifecycle::{feed_text, json_of};

/// A médecin (CPS), a secretary (CPE) and a stretcher-bearer (no card under this rule).
const MEDECIN: &str =
    "J10001,Martin,Claire,1985-04-02,Médecin,PH,899700075122,UF1203:100,claire.martin,2020-01-01,,,staff";
const SECRETAIRE: &str =
    "J10002,Durand,Yves,1979-10-11,Secrétaire médicale,AA,,UF1203:100,yves.durand,2020-01-01,,,staff";
/// A pharmacist whose mission is cut short before the card comes.
const PHARMACIEN: &str = "J10004,Roux,Inès,1992-01-15,Pharmacien,PH,,UF1203:100,ines.roux,2020-01-01,,,staff";
const BRANCARDIER: &str = "J10003,Petit,Noé,1990-06-30,Brancardier,ASH,,UF1203:100,noe.petit,2020-01-01,,,staff";

/// The rule the feed runs under: médecins get a CPS, secretaries a CPE, for the demo's FINESS.
const RULE: [(&str, &str); 3] = [
    ("VIGIE_LIFECYCLE__JOINERS__ORDER_CARD__CPS", r#"["Médecin", "Pharmacien"]"#),
    ("VIGIE_LIFECYCLE__JOINERS__ORDER_CARD__CPE", r#"["Secretaire medicale"]"#),
    ("VIGIE_LIFECYCLE__JOINERS__ORDER_CARD__STRUCTURE", "FINESS 750000001"),
];

fn feed(gw: &Gateway, rows: &[&str], extra: &[&str]) -> Value {
    let file = temp_file("orders.csv", &feed_text(&rows.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>()));
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let mut args = vec!["users", "feed", file.to_str().expect("UTF-8 path"), "--json", "--data-dir", dir];
    args.extend(extra);
    let out = run_with(&args, &RULE);
    remove_temp(&file);
    json_of(&out)
}

async fn orders(gw: &Gateway, query: &str) -> Vec<Value> {
    let r = call(gw, Some(&demo_token(gw)), "GET", &format!("/admin/cards/orders{query}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["orders"].as_array().expect("orders").clone()
}

fn of<'a>(orders: &'a [Value], matricule: &str) -> Vec<&'a Value> {
    orders.iter().filter(|o| o["matricule"] == matricule).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_gets_one_card_order_received_at_their_first_card_login_and_a_leaver_s_is_cancelled() {
    let (gw, pki) = gateway_with_test_cards().await;

    // Three joiners: a CPS and a CPE ordered, the stretcher-bearer is not eligible.
    let out = feed(&gw, &[MEDECIN, SECRETAIRE, BRANCARDIER], &[]);
    assert_eq!(out["applied"]["joiners"], 3, "{out}");
    let all = orders(&gw, "").await;
    assert_eq!(all.len(), 2, "{all:#?}");
    let cps = of(&all, "J10001")[0];
    assert_eq!(
        (&cps["kind"], &cps["status"], &cps["idnat"]),
        (&"cps".into(), &"ordered".into(), &"899700075122".into())
    );
    assert_eq!(
        (&cps["metier"], &cps["structure"], &cps["birth_date"]),
        (&"Médecin".into(), &"FINESS 750000001".into(), &"1985-04-02".into())
    );
    assert_eq!((&of(&all, "J10002")[0]["kind"], &of(&all, "J10002")[0]["status"]), (&"cpe".into(), &"ordered".into()));

    // The same feed again changes nothing, and orders nothing more.
    let again = feed(&gw, &[MEDECIN, SECRETAIRE, BRANCARDIER], &[]);
    assert_eq!(again["result"], "unchanged", "{again}");
    assert_eq!(orders(&gw, "").await.len(), 2);

    // Claire logs in with her new CPS: her order is received, the secretary's still open.
    let card = pki.issue(&CardSpec::cps("899700075122", "MARTIN", "CLAIRE", "Médecin")).expect("a test card");
    let (_, done) = card_login(&gw, &card, "demo-dpi").await;
    assert_eq!(done.status, 303, "the CPS logs in: {}", done.body);
    let all = orders(&gw, "").await;
    let cps = of(&all, "J10001")[0];
    assert_eq!(cps["status"], "received", "{cps}");
    assert!(cps["reason"].as_str().is_some_and(|r| r.contains("899700075122")), "{cps}");
    assert_eq!(orders(&gw, "?status=ordered").await.len(), 1);

    // The secretary leaves before the card came: the order is cancelled.
    let left = feed(&gw, &[MEDECIN, BRANCARDIER], &["--force"]);
    assert_eq!(left["applied"]["leavers"], 1, "{left}");
    let cancelled = orders(&gw, "?status=cancelled").await;
    assert_eq!((cancelled.len(), &cancelled[0]["matricule"]), (1, &"J10002".into()), "{cancelled:#?}");

    // And comes back: a new order, the cancelled one kept.
    let back = feed(&gw, &[MEDECIN, SECRETAIRE, BRANCARDIER], &[]);
    assert_eq!(back["applied"]["returning"], 1, "{back}");
    let his: Vec<String> = of(&orders(&gw, "").await, "J10002")
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(his, ["ordered", "cancelled"], "newest first");

    // The CSV HR sends on, from the CLI (RFC 4180, one header line).
    let ca = gw.data_dir.join("ca.pem");
    let token = demo_token(&gw);
    let csv = run_with(
        &["cards", "orders", "--status", "ordered", "--csv", "--url", &gw.issuer, "--ca", ca.to_str().expect("UTF-8")],
        &[("VIGIE_ADMIN_TOKEN", &token)],
    );
    assert!(csv.status.success(), "{}", String::from_utf8_lossy(&csv.stderr));
    let text = String::from_utf8_lossy(&csv.stdout).into_owned();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("order_id,status,kind,matricule,family_name,given_name,birth_date,idnat"), "{text}");
    assert!(
        lines[1].contains(",ordered,cpe,J10002,Durand,Yves,1979-10-11,,Secrétaire médicale,FINESS 750000001,"),
        "{text}"
    );
    let bad = call(&gw, Some(&token), "GET", "/admin/cards/orders?status=lost", None).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("ordered, received, cancelled"), "{}", bad.body);
    assert_eq!(call(&gw, None, "GET", "/admin/cards/orders", None).await.status, 401);

    // HR registers the card that came for the secretary: his order is received.
    let yves = of(&orders(&gw, "").await, "J10002")[0]["identity_id"].as_str().expect("id").to_owned();
    let body = serde_json::json!({ "identity_id": yves, "kind": "cpe", "status": "received" });
    let made = call(&gw, Some(&token), "POST", "/admin/api/cards", Some(body)).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let his = of(&orders(&gw, "").await, "J10002")[0].clone();
    assert_eq!(his["status"], "received", "{his}");
    assert!(his["reason"].as_str().is_some_and(|r| r.contains("registered by HR")), "{his}");

    // A pharmacist joins, and HR ends her access a few seconds ahead: the end-date watch cancels
    // her order when the date passes, between two runs of the feed.
    let joined = feed(&gw, &[MEDECIN, SECRETAIRE, BRANCARDIER, PHARMACIEN], &[]);
    assert_eq!(joined["applied"]["joiners"], 1, "{joined}");
    assert_eq!(of(&orders(&gw, "?status=ordered").await, "J10004").len(), 1);
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let soon = soon.format(&time::format_description::well_known::Rfc3339).expect("RFC 3339");
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let out = run_with(&["users", "set-end-date", "J10004", &soon, "--data-dir", dir], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cancelled = eventually(30, || async {
        let all = orders(&gw, "?status=cancelled").await;
        of(&all, "J10004").first().map(|o| (*o).clone())
    })
    .await
    .expect("the pharmacist's order cancelled by the end-date watch");
    assert!(cancelled["reason"].as_str().is_some_and(|r| r.starts_with("access ended")), "{cancelled}");

    // On the person's page (API) and in the trail: ordered, received, cancelled, ordered again.
    let claire = of(&orders(&gw, "").await, "J10001")[0]["identity_id"].as_str().expect("id").to_owned();
    let person = call(&gw, Some(&token), "GET", &format!("/admin/api/people/{claire}"), None).await;
    assert_eq!(person.status, 200, "{}", person.body);
    assert_eq!(person.json()["card_orders"][0]["status"], "received", "{}", person.body);
    let trail = gw.settled_audit().await;
    let about = |words: &str| {
        trail
            .iter()
            .filter(|l| l["kind"] == "lifecycle" && l["reason"].as_str().is_some_and(|r| r.starts_with(words)))
            .count()
    };
    assert_eq!(
        (
            about("card ordered: cps"),
            about("card ordered: cpe"),
            about("card order received"),
            about("card order cancelled")
        ),
        (2, 2, 2, 2),
        "{trail:#?}"
    );
}
