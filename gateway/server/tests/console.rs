//! HR's console for people (issue 17): the search (prefix, accents and case ignored, by pages),
//! a person's record and live sessions, ending one session or all of them (tokens and refresh
//! tokens with them, audited with the operator) — through the API, the `vigie people` CLI and the
//! page, each behind the admin gate.
use crate::common;

use std::path::PathBuf;

use crate::cards_admin::{demo_token, vigie};
use common::*;
use serde_json::{Value, json};

/// The cards admin's helpers: an API call with the demo's token, the `vigie` binary.
async fn call(gw: &Gateway, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    crate::cards_admin::call(gw, Some(token), method, path, body).await
}

fn ids(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["people"]
        .as_array()
        .expect("people")
        .iter()
        .map(|p| p["username"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The refresh grant of `tokens`, as the client would send it.
async fn refresh(gw: &Gateway, tokens: &Tokens) -> Resp {
    gw.token("demo-cli", &[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_finds_a_person_sees_their_sessions_and_ends_them_through_the_api_and_the_cli() {
    let gw = Gateway::start(&[]).await;
    let token = demo_token(&gw);

    // Prefix of the given name, accents and case ignored; of a login; of "given family".
    assert_eq!(ids(&call(&gw, &token, "GET", "/admin/api/people?q=LEA", None).await), ["demo.interne"]);
    assert_eq!(ids(&call(&gw, &token, "GET", "/admin/api/people?q=demo.inte", None).await), ["demo.interne"]);
    assert_eq!(ids(&call(&gw, &token, "GET", "/admin/api/people?q=l%C3%A9a%20bern", None).await), ["demo.interne"]);
    // Not a substring: "ernard" is inside Bernard, at no start.
    assert!(ids(&call(&gw, &token, "GET", "/admin/api/people?q=ernard", None).await).is_empty());
    // Two Durands, by given name, one page at a time.
    let first = call(&gw, &token, "GET", "/admin/api/people?q=durand&limit=1", None).await;
    assert_eq!((ids(&first), first.json()["total"].clone()), (vec!["demo.durand".to_owned()], json!(2)));
    let second = call(&gw, &token, "GET", "/admin/api/people?q=durand&limit=1&offset=1", None).await;
    assert_eq!(ids(&second), ["demo.medecin"]);
    let bad = call(&gw, &token, "GET", "/admin/api/people?q=durand&limit=500", None).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.json()["detail"].as_str().unwrap().contains("`limit` must be an integer from 1 to 100"));

    // Léa logs in twice (two browsers).
    let (mut browser, ..) = logged_in(&gw, "demo-cli", &["demo.interne"]).await;
    let (_, _, _, tokens) = logged_in(&gw, "demo-cli", &["demo.interne"]).await;
    let lea = call(&gw, &token, "GET", "/admin/api/people?q=demo.interne", None).await.json()["people"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let shown = call(&gw, &token, "GET", &format!("/admin/api/people/{lea}"), None).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let v = shown.json();
    assert_eq!(v["person"]["identity"]["family_name"], "Bernard");
    assert_eq!(
        (v["person"]["totp_enrolled"].clone(), v["person"]["username"].clone()),
        (json!(true), json!("demo.interne"))
    );
    let sessions = v["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(
        sessions.iter().all(|s| s["method"] == "password_totp" && s["level"] == "urn:vigie:loa:2fa"),
        "{sessions:?}"
    );
    assert!(v["events"].as_array().unwrap().iter().any(|e| e["what"] == "identity_created"), "{v}");
    let unknown = call(&gw, &token, "GET", "/admin/api/people/nobody", None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // End the first browser's session: its next request goes to the login page; the other lives.
    let before = browser.code_without_login(&Authz::new(&gw, "demo-cli")).await;
    assert!(!before.is_empty());
    // The second login's session is the one its ID token names.
    let kept = jwt_part(&tokens.id, 1)["sid"].as_str().expect("sid claim").to_owned();
    let sid_of_browser = sessions
        .iter()
        .filter_map(|s| s["sid"].as_str())
        .find(|s| *s != kept)
        .expect("the first browser's sid")
        .to_owned();
    let not_theirs =
        call(&gw, &token, "POST", &format!("/admin/api/people/{lea}/sessions/end"), Some(json!({"sid": "x"}))).await;
    assert_eq!(not_theirs.status, 404, "{}", not_theirs.body);
    let r = call(
        &gw,
        &token,
        "POST",
        &format!("/admin/api/people/{lea}/sessions/end"),
        Some(json!({"sid": sid_of_browser})),
    )
    .await;
    assert_eq!((r.status, r.json()["sessions_ended"].clone()), (200, json!(1)), "{}", r.body);
    let r = browser.authorize(&Authz::new(&gw, "demo-cli")).await;
    assert!(r.location().starts_with("/login?flow="), "back to the login page: {}", r.location());
    assert_eq!(refresh(&gw, &tokens).await.status, 200, "the other session's refresh token still works");
    let line = gw.audit_line(|l| l["kind"] == "access_ended" && l["sid"] == sid_of_browser.as_str()).await;
    assert_eq!((line["actor"].clone(), line["subject"].clone()), (json!("token:demo-rh"), json!(lea)), "{line}");

    // The CLI ends the rest: the refresh family goes with its session.
    let ca: PathBuf = gw.data_dir.join("ca.pem");
    let api = ["--url", gw.issuer.as_str(), "--ca", ca.to_str().unwrap()];
    let env = [("VIGIE_ADMIN_TOKEN", token.as_str())];
    let (ok, out, err) = vigie(&[&["people", "search", "bernard"][..], &api].concat(), &env);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("JSON")["people"][0]["id"], json!(lea));
    let (ok, out, err) = vigie(&[&["people", "show", &lea][..], &api].concat(), &env);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("JSON")["sessions"].as_array().map(Vec::len), Some(1));
    let (ok, _, err) = vigie(&[&["people", "end-sessions", &lea, "--session", "nope"][..], &api].concat(), &env);
    assert!(!ok && err.contains("has no session"), "{err}");
    let (ok, out, err) = vigie(&[&["people", "end-sessions", &lea][..], &api].concat(), &env);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("JSON")["sessions_ended"], 1, "{out}");
    let refused = refresh(&gw, &tokens).await;
    assert_eq!((refused.status, refused.json()["error"].clone()), (400, json!("invalid_grant")), "{}", refused.body);
    let after = call(&gw, &token, "GET", &format!("/admin/api/people/{lea}"), None).await;
    assert_eq!(after.json()["sessions"], json!([]), "{}", after.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_people_scope_is_refused_and_the_refusal_names_it() {
    let reader = random(32);
    let tokens = format!(
        "[{{name=\"cards-only\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"cards:read\"]}}, \
         {{name=\"people-reader\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"people:read\"]}}]",
        sha256_b64(&reader),
        sha256_b64(&format!("{reader}2"))
    );
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &tokens)]).await;
    let r = call(&gw, &reader, "GET", "/admin/api/people?q=durand", None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["missing_scope"], "people:read", "{}", r.body);
    let people_reader = format!("{reader}2");
    assert_eq!(call(&gw, &people_reader, "GET", "/admin/api/people?q=durand", None).await.status, 200);
    let end = call(&gw, &people_reader, "POST", "/admin/api/people/x/sessions/end", Some(json!({}))).await;
    assert_eq!(end.status, 403, "reading is not ending: {}", end.body);
    assert_eq!(end.json()["missing_scope"], "people:write", "{}", end.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_ends_a_session_from_the_page_with_the_forms_csrf_token() {
    let gw = Gateway::start(&[]).await;
    let (mut lea, ..) = logged_in(&gw, "demo-cli", &["demo.interne"]).await;

    // Without a session, the page asks to sign in; HR signs in with their CPE.
    let r = gw.browser().get("/admin/people").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let mut hr = gw.browser_with_demo_card("demo.rh");
    hr.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let r = hr.get("/admin/people/login").await;
    let r = hr.get(&r.location()).await;
    assert!(r.location().starts_with(&gw.url("/admin/people?code=")), "{}", r.location());

    let r = hr.get("/admin/people?q=bern").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<th scope=\"col\">Identifiant</th>"), "{}", r.body);
    let link = r.body.split("href=\"/admin/people?person=").nth(1).and_then(|s| s.split('&').next()).expect("link");
    let page = hr.get(&format!("/admin/people?person={link}&lang=en")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for words in ["Bernard Léa", "Live sessions", "End this session", "End all sessions", "TOTP enrolled", "lang=fr"] {
        assert!(page.body.contains(words), "{words:?} in {}", page.body);
    }
    let csrf = page.hidden("csrf").expect("csrf");
    let sid = page.hidden("sid").expect("a session's form");
    let forged =
        hr.post_form("/admin/people/sessions/end", &[("person", link), ("sid", &sid), ("csrf", "forged")]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // The page's button asks first: whose session, what it does; nothing has ended yet.
    let ask =
        hr.post_form("/admin/people/sessions/end?lang=en", &[("person", link), ("sid", &sid), ("csrf", &csrf)]).await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    for words in ["End one session of Léa Bernard?", "back-channel logout", "Yes, end this session", "Cancel"] {
        assert!(ask.body.contains(words), "{words:?} in {}", ask.body);
    }
    assert_eq!(ask.hidden("confirm").as_deref(), Some("yes"), "{}", ask.body);
    let r = lea.authorize(&Authz::new(&gw, "demo-cli")).await;
    assert!(!r.location().starts_with("/login?flow="), "the first POST alone ends nothing: {}", r.location());
    assert!(
        !gw.settled_audit().await.iter().any(|l| l["kind"] == "access_ended" && l["sid"] == sid.as_str()),
        "no ending audited before the confirmation"
    );
    let done = hr
        .post_form(
            "/admin/people/sessions/end?lang=en",
            &[("person", link), ("sid", &sid), ("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after = hr.get(&done.location()).await;
    assert!(after.body.contains("The session has ended") && after.body.contains("No live session."), "{}", after.body);
    let r = lea.authorize(&Authz::new(&gw, "demo-cli")).await;
    assert!(r.location().starts_with("/login?flow="), "Léa is sent to the login page: {}", r.location());
    let line = gw.audit_line(|l| l["kind"] == "access_ended" && l["sid"] == sid.as_str()).await;
    assert!(line["actor"].as_str().unwrap().starts_with("staff:"), "{line}");
}
