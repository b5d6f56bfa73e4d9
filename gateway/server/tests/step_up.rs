//! Step-up: an application the policy calls sensitive (or a request that asks for a
//! phishing-resistant level) is not offered password + TOTP, and a password session does not get
//! in by SSO: it is asked for a card or a key, without losing its SSO elsewhere.
use crate::common;

use common::*;

const PHR: &str = "urn:vigie:loa:2fa-phr";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_session_is_asked_for_a_card_or_key_by_a_client_that_needs_one() {
    let gw = Gateway::start(&[]).await;
    let dpi = gw.demo["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == "demo-dpi").unwrap().clone();
    assert_eq!(dpi["sensitive"], true, "{dpi}");
    let mut browser = gw.browser();

    // Signed in with password + TOTP for the demo app: SSO works there.
    let app = Authz::new(&gw, "demo-app");
    let (_, code) = browser.sign_in(&app, &["demo.medecin"]).await;
    let tokens = app.redeem(&gw, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let id = jwt_part(tokens.json()["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["acr"], "urn:vigie:loa:2fa");
    let _ = browser.code_without_login(&Authz::new(&gw, "demo-app")).await;

    // The DPI needs more: no code by SSO, but a login page offering only phishing-resistant MIE.
    let dpi = Authz::new(&gw, "demo-dpi");
    let r = browser.authorize(&dpi).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.location();
    assert!(location.starts_with("/login?flow="), "step-up goes to the login page, not to the client: {location}");
    let page = browser.get(&location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("/login/cps?flow="), "the card is offered: {}", page.body);
    assert!(!page.body.contains(r#"action="/login/password""#), "password + TOTP is not offered: {}", page.body);

    // Posting the password form anyway (a forged or stale form) does not get a code.
    let flow = query_of(&format!("https://x{location}"))["flow"].clone();
    let csrf = page.hidden("csrf").expect("csrf of the flow");
    let user = gw.user("demo.medecin").clone();
    let totp = gw.totp("demo.medecin").await;
    let refused = browser
        .post_form(
            "/login/password",
            &[
                ("flow", &flow),
                ("csrf", &csrf),
                ("username", &user.username),
                ("password", &user.password),
                ("totp", &totp),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("plus fort"), "the page says a stronger MIE is needed: {}", refused.body);
    assert!(refused.body.contains("/login/cps?flow="), "and offers the card again: {}", refused.body);
    assert!(!refused.body.contains(r#"action="/login/password""#), "not the password form: {}", refused.body);
    gw.audit_line(|l| {
        l["kind"] == "login"
            && l["outcome"] == "failure"
            && l["client_id"] == "demo-dpi"
            && l["reason"].as_str().is_some_and(|r| r.contains("login-sensitive-no-password-totp"))
    })
    .await;
    // And the decision itself, with the policy that decided and the MIE that would do.
    gw.audit_line(|l| {
        l["kind"] == "policy_decision"
            && l["client_id"] == "demo-dpi"
            && l["outcome"] == "failure"
            && l["reason"].as_str().is_some_and(|r| r.contains("would do: [cps, cpe, fido2, cps_via_psc, ecps]"))
    })
    .await;

    // The password session still serves the demo app (nothing was lost).
    let _ = browser.code_without_login(&Authz::new(&gw, "demo-app")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acr_values_asking_for_phishing_resistance_hide_the_password_form() {
    let gw = Gateway::start(&[]).await;
    let mut browser = gw.browser();
    let a = Authz::new(&gw, "demo-app").with("acr_values", PHR);
    let r = browser.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = browser.get(&r.location()).await;
    assert!(!page.body.contains(r#"action="/login/password""#), "{}", page.body);
    // Asking for the weaker level, or nothing, keeps every method.
    let a = Authz::new(&gw, "demo-app").with("acr_values", "urn:vigie:loa:2fa");
    let r = browser.authorize(&a).await;
    let page = browser.get(&r.location()).await;
    assert!(page.body.contains(r#"action="/login/password""#), "{}", page.body);
    // Discovery lists both levels.
    let d = gw.http().get(gw.url("/.well-known/openid-configuration")).send().await.unwrap();
    let d: serde_json::Value = d.json().await.unwrap();
    // Vigie's levels, then the values of other schemes it maps to them (PSC's eidas1).
    assert_eq!(d["acr_values_supported"], serde_json::json!(["urn:vigie:loa:2fa", PHR, "eidas1"]));
}
