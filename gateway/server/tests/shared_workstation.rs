//! A shared workstation: when a second professional logs in on a browser where someone else
//! was signed in, the first one is logged out of everything, not left signed in behind.
use crate::common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_user_logging_in_on_the_same_browser_logs_the_first_one_out() {
    let gw = Gateway::start(&[]).await;
    let mut browser = gw.browser();

    // The nurse logs in and an application gets her tokens.
    let a = Authz::new(&gw, "demo-cli");
    let (_, code) = browser.sign_in(&a, &["demo.infirmiere"]).await;
    let nurse_tokens = redeem(&gw, &a, &code).await;
    let nurse_info = gw.userinfo(&nurse_tokens.access).await;
    assert_eq!(nurse_info.status, 200, "{}", nurse_info.body);
    assert_eq!(nurse_info.json()["name"], "Camille Martin", "{}", nurse_info.body);
    let nurse_id = gw.verify_jwt(&nurse_tokens.id, "demo-cli", "RS256").await;
    let nurse_sid = nurse_id["sid"].clone();

    // The doctor takes the workstation: a login is forced, on the same browser.
    let b = Authz::new(&gw, "demo-cli").with("prompt", "login");
    let (_, code) = browser.sign_in(&b, &["demo.medecin"]).await;
    let doctor_tokens = redeem(&gw, &b, &code).await;
    let doctor_id = gw.verify_jwt(&doctor_tokens.id, "demo-cli", "RS256").await;
    assert_ne!(doctor_id["sub"], nurse_id["sub"], "the tokens are the doctor's");
    assert_ne!(doctor_id["sid"], nurse_sid, "a new session for the new user");

    // The nurse's session is over: her tokens are refused, the doctor's work.
    assert_eq!(gw.userinfo(&nurse_tokens.access).await.status, 401, "the previous user's access token is revoked");
    let r = gw.token("demo-cli", &[("grant_type", "refresh_token"), ("refresh_token", &nurse_tokens.refresh)]).await;
    assert_eq!(r.status, 400, "the previous user's refresh token is revoked: {}", r.body);
    let doctor_info = gw.userinfo(&doctor_tokens.access).await;
    assert_eq!(doctor_info.status, 200, "{}", doctor_info.body);
    assert_eq!(doctor_info.json()["name"], "Paul Durand", "{}", doctor_info.body);
    let trail = gw.settled_audit().await;
    let logouts = trail.iter().filter(|l| l["kind"] == "logout" && l["sid"] == nurse_sid).count();
    assert_eq!(logouts, 1, "the logout of the previous user is audited once: {trail:#?}");

    // The same person logging in again keeps what they had: only a change of person logs out.
    let c = Authz::new(&gw, "demo-cli").with("prompt", "login");
    let (_, code) = browser.sign_in(&c, &["demo.medecin"]).await;
    let again = gw.verify_jwt(&redeem(&gw, &c, &code).await.id, "demo-cli", "RS256").await;
    assert_eq!(again["sub"], doctor_id["sub"], "the doctor again");
    assert_eq!(gw.userinfo(&doctor_tokens.access).await.status, 200, "re-authentication of the same user");
    let trail = gw.settled_audit().await;
    let ended = trail.iter().filter(|l| l["kind"] == "logout" && l["sid"] == doctor_id["sid"]).count();
    assert_eq!(ended, 0, "the doctor's session was not logged out: {trail:#?}");
}
