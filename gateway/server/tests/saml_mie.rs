//! An `exact` `RequestedAuthnContext` narrows the login to the MIE of the classes named
//! (saml-core §3.3.2.2.1), against pysaml2 as the SP (the helpers of `saml.rs`): the login page
//! shows only those, a session with another MIE is not reused, a login with another MIE is
//! refused at the login (the card by GET, the password form posted anyway), and the Response
//! names a class that was asked.
use crate::common::*;
use crate::saml::{CARD_CLASS, Sp, estate, leads_to_the_login_page};

const TOTP_CLASS: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken";
const MFA_CLASS: &str = "https://refeds.org/profile/mfa";

/// The refusal page of a MIE the request does not accept, in either language.
fn says_not_accepted(body: &str) -> bool {
    body.contains("accepte pas ce moyen d") || body.contains("does not accept this means of identification")
}

/// The demo card of `demo.medecin` presented again: `leads_to_the_login_page` opens a new
/// connection (without a card) for each request.
fn with_the_card(b: &mut Browser<'_>) {
    let http = b.gw.browser_with_demo_card("demo.medecin").http;
    b.http = http;
}

fn flow_of(url: &str) -> String {
    url.split_once("flow=").map(|(_, f)| f.split('&').next().unwrap_or(f).to_owned()).expect("a flow")
}

/// The callback's Response to `req`, as pysaml2 read it.
async fn answered(lab: &Sp, b: &mut Browser<'_>, req: &serde_json::Value, callback: &str) -> serde_json::Value {
    assert!(callback.contains("/saml/callback?"), "back to the SAML callback: {callback}");
    let page = b.get(callback).await;
    let response = page.hidden("SAMLResponse").unwrap_or_else(|| panic!("a SAMLResponse: {}", page.body));
    lab.parse(req["id"].as_str().expect("id"), &response).unwrap_or_else(|e| panic!("pysaml2 refused: {e}"))
}

#[tokio::test]
async fn an_exact_request_offers_only_the_mie_of_its_class_and_refuses_the_others() {
    let (gw, lab, _rh, dir) = estate("exact-mie").await;
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let card_link = "/login/cps?flow=";
    let fido2_form = r#"id="fido2-login""#;
    let password_form = r#"name="totp""#;

    // Exact SmartcardPKI: the card only, not the FIDO2 key that reaches the same level.
    let card_req = ["redirect", "--context", CARD_CLASS];
    let (req, next) = leads_to_the_login_page(&lab, &mut b, &card_req, "no session yet").await;
    let page = b.get(&next).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(card_link), "the card is offered: {}", page.body);
    assert!(!page.body.contains(fido2_form), "a FIDO2 key is not a SmartcardPKI login: {}", page.body);
    assert!(!page.body.contains(password_form), "no password form: {}", page.body);
    // The password form posted anyway to the card-only login: refused (the page carries no
    // form token to post with).
    let flow = flow_of(&next);
    let forged = b
        .post_form(
            "/login/password",
            &[("flow", &flow), ("username", "demo.medecin"), ("password", "guess"), ("totp", "123456")],
        )
        .await;
    assert_eq!(forged.status, 403, "the password form posted to a card-only login: {}", forged.body);
    with_the_card(&mut b);
    let done = b.get(&format!("{card_link}{flow}")).await;
    assert_eq!(done.status, 303, "the card logs in: {}", done.body);
    let read = answered(&lab, &mut b, &req, &done.location()).await;
    assert_eq!(read["authn_context"][0], CARD_CLASS, "{read}");

    // Exact TimeSyncToken with the card's session: the session does not answer it (it would
    // have been a NoAuthnContext), the page offers password + TOTP only, and the card presented
    // anyway is refused at the login.
    let totp_req = ["redirect", "--context", TOTP_CLASS];
    let (req, next) =
        leads_to_the_login_page(&lab, &mut b, &totp_req, "a card session does not answer a TimeSyncToken request")
            .await;
    let page = b.get(&next).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(password_form), "the password form is offered: {}", page.body);
    assert!(!page.body.contains(card_link) && !page.body.contains(fido2_form), "nothing else: {}", page.body);
    let flow = flow_of(&next);
    with_the_card(&mut b);
    let refused = b.get(&format!("{card_link}{flow}")).await;
    assert_eq!(refused.status, 403, "a card login where the SP asked for TimeSyncToken: {}", refused.body);
    assert!(says_not_accepted(&refused.body), "the page says why: {}", refused.body);
    // The flow stands: the password login answers it, with the class asked.
    let location = next.split_once(&gw.issuer).map(|(_, p)| p.to_owned()).expect("a gateway URL");
    let (user, code) = gw.any_user_totp(&["demo.medecin"]).await;
    let done = b.submit_login(&location, &user.username, &user.password, &code).await;
    assert_eq!(done.status, 303, "password + TOTP logs in: {}", done.body);
    let read = answered(&lab, &mut b, &req, &done.location()).await;
    assert_eq!(read["authn_context"][0], TOTP_CLASS, "{read}");

    // Exact REFEDS MFA: the FIDO2 key only; its form token does not let the password form in.
    let mfa_req = ["redirect", "--context", MFA_CLASS];
    let (_, next) =
        leads_to_the_login_page(&lab, &mut b, &mfa_req, "a password session does not answer an MFA request").await;
    let page = b.get(&next).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(fido2_form), "the FIDO2 key is offered: {}", page.body);
    assert!(!page.body.contains(card_link) && !page.body.contains(password_form), "nothing else: {}", page.body);
    let csrf = page.hidden("csrf").expect("the FIDO2 form's token");
    // The right password: refused before it is checked (a wrong one would be refused alike).
    let forged = b
        .post_form(
            "/login/password",
            &[
                ("flow", &flow_of(&next)),
                ("csrf", &csrf),
                ("username", &user.username),
                ("password", &user.password),
                ("totp", "123456"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "the password form posted to a FIDO2-only login: {}", forged.body);
    assert!(says_not_accepted(&forged.body), "the page says why: {}", forged.body);
    let line = gw
        .audit_line(|l| {
            l["method"] == "password_totp"
                && l["reason"].as_str().is_some_and(|r| r.contains("does not accept this MIE"))
        })
        .await;
    assert_eq!(line["outcome"], "failure", "{line}");
    let _ = std::fs::remove_dir_all(dir);
}
