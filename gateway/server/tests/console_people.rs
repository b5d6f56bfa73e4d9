//! A person's recent logins and policy refusals on HR's console (issue 17): read from the audit
//! trail through the API, `vigie people show` and the page, the reading itself audited; when the
//! trail cannot be read, the rest of the person's page is still shown and says so.
use crate::common;

use std::path::PathBuf;

use crate::cards_admin::{call, demo_token, vigie};
use common::*;
use serde_json::{Value, json};

/// The `recent` of the person `id` through the API.
async fn recent_of(gw: &Gateway, token: &str, id: &str) -> Value {
    let r = call(gw, Some(token), "GET", &format!("/admin/api/people/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["person"]["identity"]["id"], json!(id), "the record is there whatever the trail: {}", r.body);
    r.json()["recent"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_login_and_policy_refusal_are_listed_on_their_page_api_and_cli() {
    let gw = Gateway::start(&[]).await;
    let token = demo_token(&gw);

    // The médecin logs in with password + TOTP for the demo app, then opens the DPI, which the
    // policy calls sensitive: refused at that level (a card or a key would do).
    let mut browser = gw.browser();
    let app = Authz::new(&gw, "demo-app");
    let (_, code) = browser.sign_in(&app, &["demo.medecin"]).await;
    assert_eq!(app.redeem(&gw, &code).await.status, 200);
    let r = browser.authorize(&Authz::new(&gw, "demo-dpi")).await;
    assert!(r.location().starts_with("/login?flow="), "step-up to the login page: {}", r.location());
    gw.settled_audit().await;

    let found = call(&gw, Some(&token), "GET", "/admin/api/people?q=demo.medecin", None).await;
    let id = found.json()["people"][0]["id"].as_str().expect("the médecin").to_owned();
    let recent = recent_of(&gw, &token, &id).await;
    assert_eq!(recent["status"], "available", "{recent}");
    let entries = recent["entries"].as_array().expect("entries").clone();
    let login = entries
        .iter()
        .find(|e| e["what"] == "login" && e["outcome"] == "success")
        .unwrap_or_else(|| panic!("the login in {entries:#?}"));
    assert_eq!(
        (login["client"].clone(), login["mie"].clone(), login["level"].clone()),
        (json!("demo-app"), json!("password_totp"), json!("urn:vigie:loa:2fa")),
        "{login}"
    );
    let refusal =
        entries.iter().find(|e| e["what"] == "policy_refused").unwrap_or_else(|| panic!("the refusal in {entries:#?}"));
    assert_eq!((refusal["client"].clone(), refusal["outcome"].clone()), (json!("demo-dpi"), json!("failure")));
    assert!(refusal["reason"].as_str().unwrap_or_default().contains("would do"), "what would do: {refusal}");
    assert!(
        entries.iter().all(|e| e["request_id"].as_str().is_some_and(|r| !r.is_empty())),
        "each entry names its request: {entries:#?}"
    );
    // Newest first: the refusal came after the login.
    let at = |e: &Value| entries.iter().position(|x| x == e).unwrap();
    assert!(at(refusal) < at(login), "{entries:#?}");

    // Reading the trail is audited as a search is: who, for whom, how many records.
    let searched = gw
        .audit_line(|l| l["kind"] == "audit_searched" && l["reason"].as_str().is_some_and(|r| r.contains(id.as_str())))
        .await;
    assert_eq!(searched["actor"], "token:demo-rh", "{searched}");

    // `vigie people show` prints the same.
    let ca: PathBuf = gw.data_dir.join("ca.pem");
    let api = ["--url", gw.issuer.as_str(), "--ca", ca.to_str().unwrap()];
    let (ok, out, err) =
        vigie(&[&["people", "show", &id][..], &api].concat(), &[("VIGIE_ADMIN_TOKEN", token.as_str())]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("JSON");
    let whats: Vec<&str> =
        shown["recent"]["entries"].as_array().expect("entries").iter().filter_map(|e| e["what"].as_str()).collect();
    assert!(whats.contains(&"login") && whats.contains(&"policy_refused"), "{out}");

    // The page, for HR signed in with their CPE.
    let mut hr = gw.browser_with_demo_card("demo.rh");
    hr.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let r = hr.get("/admin/people/login").await;
    hr.get(&r.location()).await;
    let page = hr.get(&format!("/admin/people?person={id}&lang=en")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let table = page.body.split("id=\"recent-logins\"").nth(1).expect("the recent logins table");
    for words in ["Recent logins and refusals", "Login", "Policy refusal", "demo-dpi", "demo-app", "password_totp"] {
        assert!(table.contains(words) || page.body.contains(words), "{words:?} in {}", page.body);
    }

    // A trail that cannot be read (a compressed rotation beside it): the page and the API still
    // show the person, and say the history is unavailable.
    let file = gw.demo["audit_file"].as_str().map(PathBuf::from).unwrap_or_else(|| gw.data_dir.join("audit.jsonl"));
    let gz = PathBuf::from(format!("{}.1.gz", file.display()));
    std::fs::write(&gz, b"\x1f\x8b").expect("a compressed rotation");
    assert_eq!(recent_of(&gw, &token, &id).await, json!({ "status": "unavailable" }));
    let page = hr.get(&format!("/admin/people?person={id}&lang=en")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("The login history is unavailable"), "{}", page.body);
    assert!(page.body.contains("Live sessions") && page.body.contains("Life-cycle events"), "{}", page.body);
    std::fs::remove_file(&gz).expect("removing it");
    assert_eq!(recent_of(&gw, &token, &id).await["status"], "available");
}
