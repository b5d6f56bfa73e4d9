//! A joiner's HR enrolment code against the real binary (docs/identity-lifecycle.md, "Enrolment
//! codes"): `vigie users feed` adds a joiner and shows their code once; they register a FIDO2 key
//! with it at `/account/enrol` and log in with the key; a code serves once, a re-issued one
//! replaces the old, and no code reaches the audit trail.
use serde_json::Value;

use crate::cli::{run, stdout};
use crate::common::fido2::{add_key, key_login};
use crate::common::*;
use crate::lifecycle::{feed_text, json_of};
use crate::softkey::{SoftKey, VIRTUAL_AAGUID};

const JOINER: &str = "J00001,Neuf,Léa,1999-02-03,Infirmier,IDE,,UF1203:100,lea.neuf,2020-01-01,,,staff";

/// Posts `code` at `/account/enrol` from `b`: the answer.
async fn type_code(b: &mut Browser<'_>, code: &str) -> Resp {
    let csrf = b.get("/account/enrol").await.hidden("csrf").expect("csrf");
    b.post_form("/account/enrol", &[("csrf", &csrf), ("code", code)]).await
}

fn issue(gw: &Gateway) -> String {
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let out = json_of(&run(&["users", "enrolment-codes", "--issue", "lea.neuf", "--json", "--data-dir", dir]));
    out["code"].as_str().unwrap_or_else(|| panic!("a code: {out}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_of_the_feed_enrols_a_key_with_the_hr_code_and_logs_in_with_it() {
    let gw = Gateway::start(&[]).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let file = temp_file("feed.csv", &feed_text(&[JOINER.to_owned()]));
    let out = json_of(&run(&["users", "feed", file.to_str().expect("UTF-8 path"), "--json", "--data-dir", dir]));
    assert_eq!(out["applied"]["joiners"], 1, "{out}");
    let codes = out["enrolment_codes"].as_array().unwrap_or_else(|| panic!("the joiner's code is shown: {out}"));
    assert_eq!((codes.len(), &codes[0]["matricule"], &codes[0]["username"]), (1, &"J00001".into(), &"lea.neuf".into()));
    let code = codes[0]["code"].as_str().expect("code").to_owned();
    assert!(codes[0]["enrol_url"].as_str().is_some_and(|u| u.ends_with("/account/enrol")), "{out}");

    // The joiner types it (in lower case, as people do) and registers a key; the code serves once.
    let mut b = gw.browser();
    let r = type_code(&mut b, &code.to_lowercase()).await;
    assert_eq!((r.status, r.location()), (303, "/account/keys".to_owned()), "{}", r.body);
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé de Léa").await;
    assert_eq!(type_code(&mut gw.browser(), &code).await.status, 400, "a code serves once");

    // Then logs in with the key: a code for the demo app, an ID token, her login on the record.
    let mut fresh = gw.browser();
    let a = Authz::new(&gw, "demo-app");
    let auth_code = key_login(&mut fresh, &a, &mut key).await;
    let tokens = redeem_tokens(&gw, &a, &auth_code).await;
    assert!(tokens["sub"].as_str().is_some_and(|s| !s.is_empty()), "{tokens}");
    let line = gw.audit_line(|l| l["kind"] == "login" && l["username"] == "fido2:Clé de Léa").await;
    assert_eq!((&line["outcome"], &line["method"]), (&"success".into(), &"fido2".into()), "{line}");

    // HR re-issues: the older code stops working, the newer one works.
    let (older, newer) = (issue(&gw), issue(&gw));
    assert_ne!(older, newer);
    assert_eq!(type_code(&mut gw.browser(), &older).await.status, 400, "a re-issued code replaces the old");
    assert_eq!(type_code(&mut gw.browser(), &newer).await.status, 303);

    // No code in the audit trail, nor on the feed's error output.
    let trail = gw.settled_audit().await;
    for c in [&code, &older, &newer] {
        assert!(!trail.iter().any(|l| l.to_string().contains(c.as_str())), "a code reached the audit trail");
    }
    let text = stdout(&run(&["users", "enrolment-codes", "--issue", "J00001", "--data-dir", dir]));
    assert!(text.starts_with("enrolment code J00001 (lea.neuf)  "), "{text}");
    let unknown = run(&["users", "enrolment-codes", "--issue", "nobody", "--data-dir", dir]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no person with login name or matricule \"nobody\""));
    remove_temp(&file);
}

/// The ID token's claims of the code `code` of `a`.
async fn redeem_tokens(gw: &Gateway, a: &Authz, code: &str) -> Value {
    let t = redeem(gw, a, code).await;
    gw.verify_jwt(&t.id, "demo-app", "ES256").await
}
