//! FIDO2 / WebAuthn against the real binary over HTTPS, with a software authenticator
//! (`fido2/softkey.rs`: P-256 keys, authenticator data and signatures built as WebAuthn lays
//! them out): the login page's section, the challenge endpoints bound to the flow and CSRF,
//! key registration (recent two-factor login or HR's one-time code, attestation verified to a
//! test attestation root, AAGUID allow-list, user verification), login with `acr`
//! phishing-resistant and `hwk` only for an attested key, a cloned key refused, revocation ending
//! the key's sessions. The real browser ceremony is in `tests/browser/fido2.test.mjs`.
use crate::common;
use crate::softkey;

use common::fido2::{key_assertion, login_page, register};
use common::*;
use serde_json::Value;
use softkey::{Attestation, AttestationPki, SoftKey, VIRTUAL_AAGUID};

const ACR_PHR: &str = "urn:vigie:loa:2fa-phr";
/// A real hardware key model's AAGUID (YubiKey 5 NFC), which any software authenticator can claim.
const YUBIKEY_AAGUID: &str = "2fc0579f-8113-47ea-b116-555a8db03202";
const HR_TOKEN: &str = "hr-test-token-0123456789abcdefghijklmnopqrstuvwxyz";

fn admin_env() -> String {
    format!(
        r#"[{{name="hr",token_hash="sha256:{}",roles=["fido2"],scopes=["keys:read","keys:enrol","keys:revoke"]}}]"#,
        sha256_b64(HR_TOKEN)
    )
}

/// The last audit line matching `pred` in the settled trail (everything done before is written):
/// "the last line" of a trail still being written depends on the writer's pace (the key's
/// registration line once answered for its login's). A predicate must tell its line from earlier ones.
async fn audit_with(gw: &Gateway, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    gw.settled_audit().await.into_iter().rev().find(|l| pred(l))
}

#[tokio::test]
async fn login_page_offers_the_security_key_and_its_challenge_is_bound_to_flow_and_browser() {
    let gw = Gateway::start(&[]).await;
    let mut b = gw.browser();
    let a = Authz::new(&gw, "demo-app");
    let page = login_page(&mut b, &a).await;
    assert!(page.body.contains("Se connecter avec ma clé de sécurité FIDO2"), "{}", page.body);
    assert!(page.body.contains(r#"<script src="/static/fido2.js" defer></script>"#));
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");

    let js = b.get("/static/fido2.js").await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").is_some_and(|c| c.starts_with("text/javascript")));
    assert!(js.body.contains("navigator.credentials.get") && js.body.contains("navigator.credentials.create"));

    let flow = page.hidden("flow").expect("flow");
    let csrf = page.hidden("csrf").expect("csrf");
    let wrong = b.post_form("/login/fido2/options", &[("flow", &flow), ("csrf", "forged")]).await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(wrong.header("content-type"), Some("application/problem+json"));
    let mut other = gw.browser();
    let elsewhere = other.post_form("/login/fido2/options", &[("flow", &flow), ("csrf", &csrf)]).await;
    assert_eq!(elsewhere.status, 403, "another browser cannot use this flow: {}", elsewhere.body);

    let opts = b.post_form("/login/fido2/options", &[("flow", &flow), ("csrf", &csrf)]).await;
    assert_eq!(opts.status, 200, "{}", opts.body);
    assert_eq!(opts.header("cache-control"), Some("no-store"));
    let pk = &opts.json()["publicKey"];
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "required");
    assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 43), "a 32-byte challenge: {pk}");
    assert!(pk["allowCredentials"].as_array().is_none_or(|l| l.is_empty()), "discoverable: no list of keys");

    // Without JavaScript the form arrives empty: refused, audited, and the challenge is used up.
    let empty = b.post_form("/login/fido2", &[("flow", &flow), ("csrf", &csrf)]).await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert!(empty.body.contains("JavaScript"), "{}", empty.body);
    let line = audit_with(&gw, |l| l["method"] == "fido2" && l["outcome"] == "failure").await.expect("audit line");
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("no WebAuthn assertion")), "{line}");
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    let late = key.assert(&opts.json());
    let replay =
        b.post_form("/login/fido2", &[("flow", &flow), ("csrf", &csrf), ("credential", &late.to_string())]).await;
    assert_eq!(replay.status, 400, "a challenge serves once: {}", replay.body);
    assert!(replay.body.contains("expiré"), "{}", replay.body);
}

#[tokio::test]
async fn a_key_registered_after_a_password_login_signs_in_phishing_resistant_and_a_clone_is_refused() {
    let pki = AttestationPki::new("vendor", VIRTUAL_AAGUID);
    let gw = Gateway::start(&[
        ("VIGIE_WEBAUTHN__ATTESTATION", "required"),
        ("VIGIE_WEBAUTHN__ATTESTATION_CA_FILES", &pki.env()),
    ])
    .await;
    let users = gw.all_usernames();
    let (mut b, user, _, first) = logged_in(&gw, "demo-app", &users).await;
    let sub = jwt_part(&first.id, 1)["sub"].as_str().expect("sub").to_owned();

    let page = b.get("/account/keys").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Mes clés de sécurité") && page.body.contains("Aucune clé"), "{}", page.body);
    let csrf = page.hidden("csrf").expect("csrf");
    let opts = b.post_form("/account/keys/options", &[("csrf", &csrf), ("name", "Clé bleue")]).await;
    let o = opts.json();
    assert_eq!(o["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(o["publicKey"]["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(o["publicKey"]["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(o["publicKey"]["attestation"], "direct");

    let mut key = pki.key("localhost", &gw.issuer, VIRTUAL_AAGUID);
    let credential = key.register(&o);
    let added = b.post_form("/account/keys", &[("csrf", &csrf), ("credential", &credential.to_string())]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.location(), "/account/keys?done=added");
    let replay = b.post_form("/account/keys", &[("csrf", &csrf), ("credential", &credential.to_string())]).await;
    assert_eq!(replay.status, 400, "a registration challenge serves once: {}", replay.body);
    let listed = b.get("/account/keys").await;
    assert!(listed.body.contains("Clé bleue"), "{}", listed.body);
    assert!(listed.body.contains("01020304-0506-0708-0102-030405060708"), "the AAGUID is shown");
    assert!(listed.body.contains(&key.id_b64()));
    let registered =
        audit_with(&gw, |l| l["kind"] == "key_registered" && l["outcome"] == "success").await.expect("audit");
    assert_eq!(registered["subject"], sub.as_str());
    assert_eq!(registered["reason"], "AAGUID 01020304-0506-0708-0102-030405060708, attestation verified");

    // A fresh browser: no username, the key says who it is.
    let mut kb = gw.browser();
    let a = Authz::new(&gw, "demo-app");
    let done = key_assertion(&mut kb, &a, &mut key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location().starts_with(&a.redirect_uri), "{}", done.location());
    let code = done.redirect_params().get("code").cloned().expect("code");
    let tokens = redeem(&gw, &a, &code).await;
    let claims = jwt_part(&tokens.id, 1);
    assert_eq!(claims["sub"], sub.as_str(), "the key logs in its owner ({})", user.username);
    assert_eq!(claims["acr"], ACR_PHR);
    let amr: Vec<&str> = claims["amr"].as_array().expect("amr").iter().filter_map(Value::as_str).collect();
    assert_eq!(amr, ["pin", "hwk", "mfa"], "an attested key is a hardware key");
    let ok = audit_with(&gw, |l| l["kind"] == "login" && l["method"] == "fido2" && l["outcome"] == "success")
        .await
        .expect("audit");
    assert_eq!(ok["acr"], ACR_PHR);

    // A copy of the key whose counter lags behind the one the gateway saw: refused, audited.
    let mut clone = key.clone_at(0);
    let mut cb = gw.browser();
    let refused = key_assertion(&mut cb, &Authz::new(&gw, "demo-app"), &mut clone).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("copiée"), "a clear page: {}", refused.body);
    assert!(cb.cookie(SESSION_COOKIE).is_none(), "no session for the clone");
    let line = audit_with(&gw, |l| {
        l["method"] == "fido2"
            && l["outcome"] == "failure"
            && l["reason"].as_str().is_some_and(|r| r.contains("cloned"))
    })
    .await
    .expect("audit");
    let reason = line["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cloned") && reason.contains("stored 1, presented 1"), "{line}");
    // The stored counter did not move: the genuine key goes on.
    let again = key_assertion(&mut gw.browser(), &Authz::new(&gw, "demo-app"), &mut key).await;
    assert_eq!(again.status, 303, "{}", again.body);

    // The owner revokes it: the session it opened ends, and it no longer logs in.
    let page = b.get("/account/keys").await;
    let csrf = page.hidden("csrf").expect("csrf");
    let forged = b.post_form("/account/keys/revoke", &[("csrf", "x"), ("id", &key.id_b64())]).await;
    assert_eq!(forged.status, 403);
    let revoked = b.post_form("/account/keys/revoke", &[("csrf", &csrf), ("id", &key.id_b64())]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let r = kb.authorize(&Authz::new(&gw, "demo-app")).await;
    assert!(r.location().starts_with("/login?flow="), "the key's session ended: {}", r.location());
    let line = audit_with(&gw, |l| l["kind"] == "key_revoked").await.expect("audit");
    assert!(line["reason"].as_str().is_some_and(|r| r.starts_with("2 session")), "{line}");
    let gone = key_assertion(&mut gw.browser(), &Authz::new(&gw, "demo-app"), &mut key).await;
    assert_eq!(gone.status, 401, "{}", gone.body);
}

#[tokio::test]
async fn enrolment_needs_a_recent_two_factor_login_or_a_single_use_code_from_hr() {
    let allowed = YUBIKEY_AAGUID;
    let aaguid = *uuid::Uuid::parse_str(allowed).expect("uuid").as_bytes();
    let (vendor, other_model) = (AttestationPki::new("yubico", aaguid), AttestationPki::new("virtual", VIRTUAL_AAGUID));
    let roots = format!(r#"["{}", "{}"]"#, vendor.ca_file.display(), other_model.ca_file.display());
    let tokens = admin_env();
    let gw = Gateway::start(&[
        ("VIGIE_WEBAUTHN__ATTESTATION_CA_FILES", &roots),
        ("VIGIE_WEBAUTHN__ATTESTATION", "required"),
        ("VIGIE_WEBAUTHN__ENROLMENT_MAX_AUTH_AGE_SECS", "1"),
        ("VIGIE_WEBAUTHN__AAGUID_ALLOW_LIST", &format!(r#"["{allowed}"]"#)),
        ("VIGIE_ADMIN__TOKENS", &tokens),
    ])
    .await;
    // Nobody signed in: the page points to the code form; the API refuses.
    let mut anon = gw.browser();
    let page = anon.get("/account/keys").await;
    assert!(page.body.contains(r#"href="/account/enrol""#) && !page.body.contains("register-key"), "{}", page.body);
    let r = anon.post_form("/account/keys/options", &[("csrf", "x")]).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // Signed in, but the login is older than `enrolment_max_auth_age_secs`.
    let (mut b, _, _, first) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    let sub = jwt_part(&first.id, 1)["sub"].as_str().expect("sub").to_owned();
    // The login grows too old for an enrolment within a second; ten times that is the bound.
    let too_old = eventually(10, || {
        let (http, cookie, url) = (b.http.clone(), b.cookie_header(), gw.url("/account/keys"));
        async move {
            let r = Resp::of(http.get(url).header("cookie", cookie?).send().await.ok()?).await;
            r.body.contains(r#"id="add-refused""#).then_some(())
        }
    });
    too_old.await.expect("the keys page refuses a key once the login is older than enrolment_max_auth_age_secs");
    let page = b.get("/account/keys").await;
    assert!(page.body.contains(r#"id="add-refused""#), "{}", page.body);
    let csrf = page.hidden("csrf").unwrap_or_default();
    let r = b.post_form("/account/keys/options", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // HR issues a code (bearer token with role fido2).
    let http = gw.http();
    let url = gw.url(&format!("/admin/api/identities/{sub}/fido2/enrolment-code"));
    let denied = http.post(&url).send().await.expect("reachable");
    assert_eq!(denied.status(), 401);
    let issue = || async {
        let r = http.post(&url).bearer_auth(HR_TOKEN).send().await.expect("reachable");
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.expect("JSON")["code"].as_str().expect("code").to_owned()
    };
    let code = issue().await;
    assert_eq!(code.len(), 19, "{code}");
    let issued = audit_with(&gw, |l| l["kind"] == "enrolment_code").await.expect("audit");
    assert!(!issued.to_string().contains(&code), "the code is never in the audit trail");

    // The agent types it on a browser with no session (no JavaScript needed up to here).
    let mut c = gw.browser();
    let form = c.get("/account/enrol").await;
    let token = form.hidden("csrf").expect("csrf");
    let forged = c.post_form("/account/enrol", &[("csrf", "forged"), ("code", &code)]).await;
    assert_eq!(forged.status, 403);
    let ok = c.post_form("/account/enrol", &[("csrf", &token), ("code", &code.to_lowercase())]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let mut d = gw.browser();
    let token_d = d.get("/account/enrol").await.hidden("csrf").expect("csrf");
    let reused = d.post_form("/account/enrol", &[("csrf", &token_d), ("code", &code)]).await;
    assert_eq!(reused.status, 400, "a code serves once: {}", reused.body);

    // A key model outside the allow-list (attested by a trusted root), then a key that skips
    // user verification: refused.
    let mut virtual_key = other_model.key("localhost", &gw.issuer, VIRTUAL_AAGUID);
    let r = register(&mut c, &mut virtual_key, "Clé virtuelle").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let line = audit_with(&gw, |l| l["kind"] == "key_registered" && l["outcome"] == "failure").await.expect("audit");
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("aaguid_allow_list")), "{line}");
    let mut lazy = vendor.key("localhost", &gw.issuer, aaguid);
    lazy.user_verified = false;
    let r = register(&mut c, &mut lazy, "Sans PIN").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut synced = vendor.key("localhost", &gw.issuer, aaguid);
    synced.backup_eligible = true;
    let r = register(&mut c, &mut synced, "Passkey du téléphone").await;
    assert_eq!(r.status, 403, "a synchronised passkey is not a hardware key: {}", r.body);
    let mut good = vendor.key("localhost", &gw.issuer, aaguid);
    let r = register(&mut c, &mut good, "Clé RH").await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The agent ends the enrolment: the next person at this workstation finds nothing open.
    let page = c.get("/account/keys").await;
    assert!(page.body.contains("Clé RH") && page.body.contains(r#"id="end-enrolment""#), "{}", page.body);
    let csrf = page.hidden("csrf").expect("csrf");
    assert_eq!(c.post_form("/account/enrol/done", &[("csrf", "forged")]).await.status, 403);
    let done = c.post_form("/account/enrol/done", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let after = c.get("/account/keys").await;
    assert!(after.body.contains(r#"href="/account/enrol""#) && !after.body.contains("Clé RH"), "{}", after.body);

    // HR lists and revokes it.
    let list_url = gw.url(&format!("/admin/api/identities/{sub}/fido2"));
    let list: Value = http.get(&list_url).bearer_auth(HR_TOKEN).send().await.expect("up").json().await.expect("JSON");
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(
        (keys[0]["name"].as_str(), keys[0]["aaguid"].as_str(), keys[0]["attested"].as_bool()),
        (Some("Clé RH"), Some(allowed), Some(true))
    );
    let del = http
        .delete(gw.url(&format!("/admin/api/identities/{sub}/fido2/{}", good.id_b64())))
        .bearer_auth(HR_TOKEN)
        .send()
        .await
        .expect("up");
    assert_eq!(del.status(), 204);
    let list: Value = http.get(&list_url).bearer_auth(HR_TOKEN).send().await.expect("up").json().await.expect("JSON");
    assert_eq!(list["keys"], serde_json::json!([]));
}

/// The red-team finding (issue 12): a software authenticator claiming a hardware key's model.
/// With attestation required, only a key whose packed attestation chains to a configured root
/// registers; `none`, self attestation, or a chain to another root is refused, whatever AAGUID
/// the key claims (WebAuthn §7.1 steps 19–21).
#[tokio::test]
async fn a_software_key_claiming_an_allowed_hardware_model_is_refused_when_attestation_is_required() {
    let aaguid = *uuid::Uuid::parse_str(YUBIKEY_AAGUID).expect("uuid").as_bytes();
    let (vendor, forger) = (AttestationPki::new("trusted", aaguid), AttestationPki::new("forger", aaguid));
    let gw = Gateway::start(&[
        ("VIGIE_WEBAUTHN__ATTESTATION", "required"),
        ("VIGIE_WEBAUTHN__ATTESTATION_CA_FILES", &vendor.env()),
        ("VIGIE_WEBAUTHN__AAGUID_ALLOW_LIST", &format!(r#"["{YUBIKEY_AAGUID}"]"#)),
    ])
    .await;
    let (mut b, _, _, first) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    let sub = jwt_part(&first.id, 1)["sub"].as_str().expect("sub").to_owned();
    let mut none = SoftKey::new("localhost", &gw.issuer, aaguid);
    let mut self_attested = SoftKey::new("localhost", &gw.issuer, aaguid);
    self_attested.attestation = Attestation::SelfSigned;
    let mut forged = forger.key("localhost", &gw.issuer, aaguid);
    for (key, how) in [(&mut none, "none"), (&mut self_attested, "self"), (&mut forged, "an untrusted root")] {
        let r = register(&mut b, key, "Fausse clé").await;
        assert_eq!(r.status, 403, "attestation {how}: {}", r.body);
        assert!(r.body.contains("pas autorisé par l"), "a clear page: {}", r.body);
        let line = audit_with(&gw, |l| l["kind"] == "key_registered" && l["outcome"] == "failure").await;
        let reason = line.as_ref().and_then(|l| l["reason"].as_str()).unwrap_or_default().to_owned();
        assert!(reason.starts_with("attestation not verified to a trusted root"), "{how}: {reason}");
    }
    let refused = key_assertion(&mut gw.browser(), &Authz::new(&gw, "demo-app"), &mut none).await;
    assert_eq!(refused.status, 401, "a refused key was not stored: {}", refused.body);

    let mut genuine = vendor.key("localhost", &gw.issuer, aaguid);
    let r = register(&mut b, &mut genuine, "Vraie clé").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get("/account/keys").await;
    assert!(page.body.contains(YUBIKEY_AAGUID), "the attested model is shown: {}", page.body);
    let a = Authz::new(&gw, "demo-app");
    let done = key_assertion(&mut gw.browser(), &a, &mut genuine).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let claims = jwt_part(&redeem(&gw, &a, &done.redirect_params()["code"]).await.id, 1);
    assert_eq!((claims["sub"].as_str(), claims["acr"].as_str()), (Some(sub.as_str()), Some(ACR_PHR)));
    assert_eq!(claims["amr"], serde_json::json!(["pin", "hwk", "mfa"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_is_emailed_when_a_key_is_added_to_their_account() {
    let sink = crate::sponsorship::SmtpSink::start(0);
    let env = sink.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gw = Gateway::start(&env).await;
    let (mut b, user, _, _) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    key.attestation = Attestation::SelfSigned;
    let added = register(&mut b, &mut key, "Clé bleue").await;
    assert_eq!(added.status, 303, "{}", added.body);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0]["rcpt_tos"], serde_json::json!([format!("{}@chu-demo.example", user.username)]), "{mails:#?}");
    let subject = mails[0]["subject"].as_str().unwrap();
    assert!(subject.contains("une clé de sécurité a été ajoutée à votre compte"), "{subject}");
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.contains("« Clé bleue »") && body.contains("Si ce n'est pas vous"), "{body}");
    assert!(body.contains("A security key (\"Clé bleue\") was added"), "{body}");
    let line = audit_with(&gw, |l| l["kind"] == "credential_notice").await.expect("audit");
    let got = (line["outcome"].clone(), line["object"].clone());
    assert_eq!(got, (serde_json::json!("success"), serde_json::json!("fido2")), "{line}");
}

/// With `webauthn.attestation = "none"` (the demo's setting) any authenticator registers, but
/// what it claims of its model is not recorded and its logins never carry `hwk` (RFC 8176 §2):
/// it is still phishing-resistant (WebAuthn binds the origin), not a hardware key.
#[tokio::test]
async fn a_key_without_verified_attestation_signs_in_without_hwk_and_its_claimed_model_is_not_recorded() {
    let tokens = admin_env();
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &tokens)]).await;
    let (mut b, _, _, first) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    let sub = jwt_part(&first.id, 1)["sub"].as_str().expect("sub").to_owned();
    let page = b.get("/account/keys").await;
    let csrf = page.hidden("csrf").expect("csrf");
    let opts = b.post_form("/account/keys/options", &[("csrf", &csrf), ("name", "Clé logicielle")]).await;
    assert_eq!(opts.json()["publicKey"]["attestation"], "none", "no attestation asked for that is not checked");
    let aaguid = *uuid::Uuid::parse_str(YUBIKEY_AAGUID).expect("uuid").as_bytes();
    let mut key = SoftKey::new("localhost", &gw.issuer, aaguid);
    key.attestation = Attestation::SelfSigned;
    let credential = key.register(&opts.json());
    let added = b.post_form("/account/keys", &[("csrf", &csrf), ("credential", &credential.to_string())]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let line = audit_with(&gw, |l| l["kind"] == "key_registered" && l["outcome"] == "success").await.expect("audit");
    assert_eq!(line["reason"], "no attestation (webauthn.attestation = \"none\"): not a hardware key");
    let list: Value = gw
        .http()
        .get(gw.url(&format!("/admin/api/identities/{sub}/fido2")))
        .bearer_auth(HR_TOKEN)
        .send()
        .await
        .expect("up")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (list["keys"][0]["aaguid"].as_str(), list["keys"][0]["attested"].as_bool()),
        (Some("00000000-0000-0000-0000-000000000000"), Some(false)),
        "the claimed model is not recorded: {list}"
    );

    let a = Authz::new(&gw, "demo-app");
    let done = key_assertion(&mut gw.browser(), &a, &mut key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let claims = jwt_part(&redeem(&gw, &a, &done.redirect_params()["code"]).await.id, 1);
    assert_eq!(claims["acr"], ACR_PHR, "origin-bound: still phishing-resistant");
    assert_eq!(claims["amr"], serde_json::json!(["pin", "swk", "mfa"]), "never hwk");
}

/// Two replicas sharing one real Redis: every WebAuthn ceremony begun on one is finished on the
/// other (challenges live in the ephemeral store, not in a replica's memory).
mod replicas {
    use std::collections::BTreeMap;

    use base64::Engine;
    use serde_json::Value;

    use super::common::free_port;
    use super::common::redis::{RedisServer, Replica};
    use super::softkey::{SoftKey, VIRTUAL_AAGUID};

    /// A cookie jar over plain requests, sent to whichever replica.
    struct Jar(BTreeMap<String, String>);
    impl Jar {
        async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, String, String) {
            let cookie = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            let r = req.header("cookie", cookie).send().await.expect("replica reachable");
            for c in r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
                if let Some((k, v)) = c.split(';').next().and_then(|kv| kv.split_once('=')) {
                    self.0.insert(k.to_owned(), v.to_owned());
                }
            }
            let status = r.status().as_u16();
            let location = r.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
            (status, location, r.text().await.unwrap_or_default())
        }
    }

    fn authorize_url(base: &str) -> String {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            b"fido2-replica-verifier-0123456789-abcdefgh",
        ));
        format!(
            "{base}/authorize?response_type=code&client_id=demo-cli&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback\
             &scope=openid&state=st&nonce=nn&code_challenge={challenge}&code_challenge_method=S256"
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_ceremonies_begun_on_one_replica_finish_on_the_other() {
        let redis = RedisServer::start();
        let dir = std::env::temp_dir().join(format!("vigie-fido2-replicas-{}-{}", std::process::id(), free_port()));
        let (pa, pb) = (free_port(), free_port());
        let issuer = format!("https://localhost:{pa}");
        let replica_a = Replica::start(&dir, pa, &redis, &issuer, &[]);
        let replica_b = Replica::start(&dir, pb, &redis, &issuer, &[]);
        let (a, b) = (replica_a.base(), replica_b.base());
        let demo: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json"))
            .expect("demo.json is JSON");
        let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().expect("ca").as_bytes()).expect("CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let user = &demo["users"][0];

        // Password + TOTP on A.
        let mut jar = Jar(BTreeMap::new());
        let (_, login, _) = jar.send(http.get(authorize_url(&a))).await;
        let (_, _, html) = jar.send(http.get(format!("{a}{login}"))).await;
        let code = crate::common::totp::now_code(user["totp_secret"].as_str().expect("totp"));
        let form = [
            ("flow", super::hidden_input(&html, "flow").expect("flow")),
            ("csrf", super::hidden_input(&html, "csrf").expect("csrf")),
            ("username", user["username"].as_str().expect("username").to_owned()),
            ("password", user["password"].as_str().expect("password").to_owned()),
            ("totp", code),
        ];
        let (status, _, body) = jar.send(http.post(format!("{a}/login/password")).form(&form)).await;
        assert_eq!(status, 303, "{body}");

        // Registration: options from A, credential to B.
        let (_, _, page) = jar.send(http.get(format!("{b}/account/keys"))).await;
        let csrf = super::hidden_input(&page, "csrf").expect("csrf on B's page");
        let (status, _, options) = jar
            .send(http.post(format!("{a}/account/keys/options")).form(&[("csrf", csrf.as_str()), ("name", "Clé")]))
            .await;
        assert_eq!(status, 200, "{options}");
        let mut softkey = SoftKey::new("localhost", &issuer, VIRTUAL_AAGUID);
        let credential = softkey.register(&serde_json::from_str(&options).expect("options JSON")).to_string();
        let (status, _, body) = jar
            .send(http.post(format!("{b}/account/keys")).form(&[("csrf", csrf.as_str()), ("credential", &credential)]))
            .await;
        assert_eq!(status, 303, "B finishes the registration A began: {body}");

        // Login with the key: flow and challenge on B, assertion checked on A.
        let mut fresh = Jar(BTreeMap::new());
        let (_, login, _) = fresh.send(http.get(authorize_url(&b))).await;
        let (_, _, html) = fresh.send(http.get(format!("{b}{login}"))).await;
        let flow = super::hidden_input(&html, "flow").expect("flow");
        let csrf = super::hidden_input(&html, "csrf").expect("csrf");
        let (status, _, options) =
            fresh.send(http.post(format!("{b}/login/fido2/options")).form(&[("flow", &flow), ("csrf", &csrf)])).await;
        assert_eq!(status, 200, "{options}");
        let assertion = softkey.assert(&serde_json::from_str(&options).expect("options JSON")).to_string();
        let (status, location, body) = fresh
            .send(http.post(format!("{a}/login/fido2")).form(&[
                ("flow", flow.as_str()),
                ("csrf", csrf.as_str()),
                ("credential", &assertion),
            ]))
            .await;
        assert_eq!(status, 303, "A finishes the login B began: {body}");
        assert!(location.starts_with("http://127.0.0.1:8765/callback?code="), "{location}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
