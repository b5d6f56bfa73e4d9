//! Vigie as Pro Santé Connect's FI tiers (reference/psc.md §3, docs/fi-tiers.md), against the
//! real binary: the demo's `demo-psc` client plays PSC's broker. Its ID tokens and userinfo carry
//! `tid` (the constant tenant id), `oid` (the person's immutable directory id, PSC's pairing
//! pivot) and PSC's `amr`; `acr_values` and an idNat `login_hint` are honoured; an
//! authentication older than `fi_tiers.max_auth_age_secs` is never reused for it. Other
//! clients see none of this.
use crate::common;
use crate::softkey;

use common::fido2::{add_key, assert_from, login_page};
use common::psc::PscSandbox;
use common::*;
use serde_json::Value;
use softkey::{AttestationPki, VIRTUAL_AAGUID};

const ACR_PHR: &str = "urn:vigie:loa:2fa-phr";
const PSC: &str = "demo-psc";
/// The demo's tenant id: `VIGIE_` + the demo establishment's structure id.
const DEMO_TID: &str = "VIGIE_1760000018";
/// idNat of the demo médecin, who holds the demo CPS.
const MEDECIN_IDNAT: &str = "810100000011";

/// PSC's authorization request: code + PKCE + nonce, the phishing-resistant acr.
fn psc_request(gw: &Gateway) -> Authz {
    Authz::new(gw, PSC).with("scope", "openid profile").with("acr_values", ACR_PHR)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").into())
        .collect()
}

/// RFC 9562 §5.7: a UUID version 7 (time-ordered, random: never handed out twice).
fn assert_uuid_v7(oid: &str) {
    let u = uuid::Uuid::parse_str(oid).unwrap_or_else(|e| panic!("oid {oid:?} is a UUID: {e}"));
    assert_eq!(u.get_version_num(), 7, "oid {oid} is a UUID v7");
}

/// The ID token of a code for PSC, verified against /jwks like PSC's broker would (RS256, as
/// registered), with the request's nonce.
async fn psc_id_token(gw: &Gateway, a: &Authz, code: &str) -> (Tokens, Value) {
    let t = redeem(gw, a, code).await;
    let claims = gw.verify_jwt(&t.id, PSC, "RS256").await;
    assert_eq!(claims["nonce"], a.nonce.as_str(), "nonce");
    (t, claims)
}

#[tokio::test]
async fn card_login_for_psc_carries_tid_oid_card_amr_and_the_requested_acr() {
    let gw = Gateway::start(&[]).await;
    let meta = gw.http().get(gw.url("/.well-known/openid-configuration")).send().await.expect("discovery");
    let meta: Value = meta.json().await.expect("JSON metadata");
    let supported = strings(&meta["claims_supported"]);
    assert!(supported.iter().any(|c| c == "tid") && supported.iter().any(|c| c == "oid"), "{supported:?}");
    assert_eq!(
        gw.demo["clients"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["client_id"] == PSC))
            .map(|c| c["fi_tiers"]["tid"].clone()),
        Some(DEMO_TID.into()),
        "demo.json gives the tid"
    );

    let before = now();
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = psc_request(&gw).with("login_hint", MEDECIN_IDNAT);
    let code = b.sign_in_with_card(&a).await;
    let (t, claims) = psc_id_token(&gw, &a, &code).await;
    assert_eq!(claims["tid"], DEMO_TID, "{claims}");
    let oid = claims["oid"].as_str().unwrap_or_else(|| panic!("oid in {claims}")).to_owned();
    assert_uuid_v7(&oid);
    assert_eq!(claims["sub"], oid.as_str(), "oid is the directory id, as sub");
    // reference/psc.md §3: the FI-tiers guides send `sc pin mfa hwk` for a CPx and its PIN.
    assert_eq!(strings(&claims["amr"]), ["sc", "pin", "mfa", "hwk"]);
    assert_eq!(claims["acr"], ACR_PHR);
    let auth_time = claims["auth_time"].as_i64().expect("auth_time, always");
    assert!((before - 1..=now() + 1).contains(&auth_time), "auth_time {auth_time} is this login");

    // Userinfo tells PSC the same.
    let ui = gw.userinfo(&t.access).await;
    assert_eq!(ui.status, 200, "{}", ui.body);
    let ui = ui.json();
    assert_eq!(
        (ui["tid"].as_str(), ui["oid"].as_str(), ui["sub"].as_str()),
        (Some(DEMO_TID), Some(oid.as_str()), Some(oid.as_str()))
    );
    assert_eq!(strings(&ui["amr"]), ["sc", "pin", "mfa", "hwk"]);

    // Another day, another browser, the same card: the same oid (the pairing at PSC holds).
    let mut later = gw.browser_with_demo_card("demo.medecin");
    let a2 = psc_request(&gw);
    let code = later.sign_in_with_card(&a2).await;
    let (_, again) = psc_id_token(&gw, &a2, &code).await;
    assert_eq!(again["oid"], oid.as_str(), "oid is stable across logins");
    assert_ne!(again["sid"], claims["sid"], "a new session");

    // A request asking for a weaker acr is still answered with what the login reached.
    let a3 = psc_request(&gw).with("acr_values", "urn:vigie:loa:2fa");
    let code = later.code_without_login(&a3).await;
    let (_, sso) = psc_id_token(&gw, &a3, &code).await;
    assert_eq!((sso["acr"].as_str(), sso["oid"].as_str()), (Some(ACR_PHR), Some(oid.as_str())));
}

#[tokio::test]
async fn fido2_login_for_psc_carries_the_key_amr_and_another_person_has_another_oid() {
    // `hwk` needs a key whose attestation is verified (the demo takes any key, without `hwk`).
    let pki = AttestationPki::new("fi-tiers", VIRTUAL_AAGUID);
    let gw = Gateway::start(&[
        ("VIGIE_WEBAUTHN__ATTESTATION", "required"),
        ("VIGIE_WEBAUTHN__ATTESTATION_CA_FILES", &pki.env()),
    ])
    .await;
    // Léa registers a FIDO2 key after a password + TOTP login to the demo app.
    let mut b = gw.browser();
    let app = Authz::new(&gw, "demo-app");
    let (_, code) = b.sign_in(&app, &["demo.interne"]).await;
    let lea_sub = jwt_part(&redeem(&gw, &app, &code).await.id, 1)["sub"].as_str().expect("sub").to_owned();
    let mut key = pki.key("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé de Léa").await;

    // PSC asks; a fresh browser; the key says who it is.
    let mut kb = gw.browser();
    let a = psc_request(&gw);
    let page = login_page(&mut kb, &a).await;
    assert!(!page.body.contains(r#"action="/login/password""#), "PSC asked for phishing-resistant: no password form");
    let done = assert_from(&mut kb, &page, &mut key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("a code for PSC");
    let (_, claims) = psc_id_token(&gw, &a, &code).await;
    assert_eq!(claims["tid"], DEMO_TID);
    assert_eq!(claims["acr"], ACR_PHR);
    // RFC 8176 §2: the key's PIN (user verification), a hardware-secured key (its attestation
    // verified), two factors; no `sc` (no card), no `pwd`.
    assert_eq!(strings(&claims["amr"]), ["pin", "hwk", "mfa"]);
    let oid = claims["oid"].as_str().expect("oid");
    assert_uuid_v7(oid);
    assert_eq!(oid, lea_sub, "oid is Léa's directory id");

    // The médecin, by card: someone else, another oid.
    let mut cb = gw.browser_with_demo_card("demo.medecin");
    let a = psc_request(&gw);
    let code = cb.sign_in_with_card(&a).await;
    let (_, medecin) = psc_id_token(&gw, &a, &code).await;
    assert_uuid_v7(medecin["oid"].as_str().expect("oid"));
    assert_ne!(medecin["oid"].as_str(), Some(oid), "different people, different oid");
}

#[tokio::test]
async fn a_client_that_is_not_psc_gets_no_tid_no_oid_and_the_plain_card_amr() {
    let gw = Gateway::start(&[]).await;
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-dpi");
    let code = b.sign_in_with_card(&a).await;
    let t = redeem(&gw, &a, &code).await;
    let claims = gw.verify_jwt(&t.id, "demo-dpi", "ES256").await;
    assert!(claims.get("tid").is_none() && claims.get("oid").is_none(), "{claims}");
    assert_eq!(strings(&claims["amr"]), ["sc", "pin", "mfa"]);
    let ui = gw.userinfo(&t.access).await.json();
    assert!(ui.get("tid").is_none() && ui.get("oid").is_none() && ui.get("amr").is_none(), "{ui}");

    // The same session then serves PSC (SSO, well within 4 h), with PSC's claims.
    let p = psc_request(&gw);
    let code = b.code_without_login(&p).await;
    let (_, psc) = psc_id_token(&gw, &p, &code).await;
    assert_eq!((psc["tid"].as_str(), psc["oid"].as_str()), (Some(DEMO_TID), claims["sub"].as_str()));
    assert_eq!(strings(&psc["amr"]), ["sc", "pin", "mfa", "hwk"]);
    assert_eq!(psc["auth_time"], claims["auth_time"], "the same authentication");
}

const SHORT_MAX_AGE: i64 = 4;

/// A gateway whose FI-tiers client `psc-test` accepts password + TOTP, with a tiny maximum
/// authentication age and its own `amr` for password + TOTP; `app` is an ordinary client.
async fn short_max_age_gateway(psc_secret: &str, app_secret: &str) -> Gateway {
    let clients = format!(
        r#"[{{client_id="psc-test", client_secret_hash="sha256:{psc}", auth_method="client_secret_basic",
              redirect_uris=["http://127.0.0.1:8769/callback"], scopes=["openid", "profile"],
              id_token_signed_response_alg="RS256",
              fi_tiers={{tid="CHU-TEST-TENANT", max_auth_age_secs={SHORT_MAX_AGE},
                         amr={{password_totp=["pwd", "otp", "mfa", "x-vigie.transition"]}}}}}},
            {{client_id="app", client_secret_hash="sha256:{app}", auth_method="client_secret_basic",
              redirect_uris=["http://127.0.0.1:8770/callback"]}}]"#,
        psc = sha256_b64(psc_secret),
        app = sha256_b64(app_secret),
    );
    let clients = clients.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut gw = Gateway::start(&[("VIGIE_CLIENTS", &clients)]).await;
    for c in gw.clients.iter_mut() {
        c.secret = Some(if c.client_id == "psc-test" { psc_secret } else { app_secret }.to_owned());
    }
    gw
}

#[tokio::test]
async fn a_session_older_than_the_fi_tiers_max_age_forces_a_new_login_for_psc_only() {
    let gw = short_max_age_gateway(&random(32), &random(32)).await;
    let mut b = gw.browser();

    // PSC names the professional by idNat: the login page pre-fills their login name.
    let a = Authz::new(&gw, "psc-test").with("scope", "openid profile").with("login_hint", MEDECIN_IDNAT);
    let r = b.authorize(&a).await;
    let page = b.get(&r.location()).await;
    assert!(
        page.body.contains(r#"name="username" type="text" autocomplete="username" required value="demo.medecin""#),
        "{}",
        page.body
    );
    let user = gw.user("demo.medecin").clone();
    let totp = gw.totp(&user.username).await;
    let done = b.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("code");
    let t = redeem(&gw, &a, &code).await;
    let first = gw.verify_jwt(&t.id, "psc-test", "RS256").await;
    assert_eq!(first["tid"], "CHU-TEST-TENANT");
    assert_eq!(strings(&first["amr"]), ["pwd", "otp", "mfa", "x-vigie.transition"], "fi_tiers.amr as configured");
    assert_eq!(first["acr"], ACR_2FA);
    let auth_time = first["auth_time"].as_i64().expect("auth_time");

    // Within the maximum age: SSO.
    let sso = Authz::new(&gw, "psc-test").with("scope", "openid profile");
    let code = b.code_without_login(&sso).await;
    let again = gw.verify_jwt(&redeem(&gw, &sso, &code).await.id, "psc-test", "RS256").await;
    assert_eq!(again["auth_time"], auth_time);

    // Past it: PSC's request leads to the login page, even with a longer max_age; prompt=none
    // gets login_required; the ordinary client keeps its SSO. Polled with prompt=none, which
    // answers with a code until the authentication is too old, and never before it is.
    let none = eventually(SHORT_MAX_AGE as u64 + 10, || {
        let (b, gw) = (&b, &gw);
        async move {
            let mut b = Browser { gw, http: b.http.clone(), cookies: b.cookies.clone() };
            let r =
                b.authorize(&Authz::new(gw, "psc-test").with("scope", "openid profile").with("prompt", "none")).await;
            let error = r.redirect_params().get("error").cloned();
            error.map(|e| (e, now()))
        }
    })
    .await;
    let (error, at) = none.expect("prompt=none is refused once the authentication is older than the maximum age");
    assert_eq!(error, "login_required");
    assert!(at >= auth_time + SHORT_MAX_AGE, "refused at {at}, before auth_time {auth_time} + {SHORT_MAX_AGE}");
    let stale = Authz::new(&gw, "psc-test").with("scope", "openid profile").with("max_age", "3600");
    let r = b.authorize(&stale).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/login?flow="), "a fresh login: {}", r.location());
    let app = Authz::new(&gw, "app").with("scope", "openid profile");
    let code = b.code_without_login(&app).await;
    let app_claims = gw.verify_jwt(&redeem(&gw, &app, &code).await.id, "app", "ES256").await;
    assert_eq!(app_claims["auth_time"], auth_time, "the ordinary client reuses the session");
    assert!(app_claims.get("tid").is_none());

    // The new login gives PSC a new auth_time.
    let totp = gw.totp(&user.username).await;
    let done = b.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    let code = done.redirect_params().get("code").cloned().expect("code");
    let fresh = gw.verify_jwt(&redeem(&gw, &stale, &code).await.id, "psc-test", "RS256").await;
    assert!(fresh["auth_time"].as_i64().expect("auth_time") > auth_time, "{fresh}");
    assert_eq!(fresh["oid"], first["oid"]);
}

/// Pro Santé Connect's own request (reference/psc.md §1: `acr_values=eidas1`, eIDAS
/// substantial), to a FI-tiers client that has no `acr` floor of its own.
fn eidas1_request(gw: &Gateway) -> Authz {
    Authz::new(gw, "psc-test").with("scope", "openid profile").with("acr_values", "eidas1")
}

#[tokio::test]
async fn psc_asking_eidas1_gets_only_a_card_or_a_key_and_eidas1_back_even_without_an_acr_floor() {
    let gw = short_max_age_gateway(&random(32), &random(32)).await;

    // A fresh browser: the login page offers the card and the FIDO2 key, not the password form.
    let mut b = gw.browser();
    let r = b.authorize(&eidas1_request(&gw)).await;
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());
    let page = b.get(&r.location()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(r#"action="/login/password""#), "eidas1: no password form: {}", page.body);
    assert!(page.body.contains("/login/cps?flow="), "eidas1: the card is offered: {}", page.body);

    // A password + TOTP session (an ordinary client's) does not answer eidas1: a new login.
    let (_, _) = b.sign_in(&Authz::new(&gw, "app").with("scope", "openid"), &["demo.interne"]).await;
    let r = b.authorize(&eidas1_request(&gw)).await;
    assert!(r.location().starts_with("/login?flow="), "a password session is stepped up: {}", r.location());
    let page = b.get(&r.location()).await;
    assert!(!page.body.contains(r#"action="/login/password""#), "{}", page.body);
    // Asked as essential (OIDC Core §5.5.1.1), eidas1 is known here: a login, not an error.
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["eidas1"]}}}"#;
    let r = b.authorize(&Authz::new(&gw, "psc-test").with("scope", "openid profile").with("claims", claims)).await;
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());

    // A card login gets through, and PSC is answered in its own terms: acr eidas1.
    let mut card = gw.browser_with_demo_card("demo.medecin");
    let a = eidas1_request(&gw);
    let code = card.sign_in_with_card(&a).await;
    let t = redeem(&gw, &a, &code).await;
    let claims = gw.verify_jwt(&t.id, "psc-test", "RS256").await;
    assert_eq!(claims["acr"], "eidas1", "{claims}");
    assert_eq!(strings(&claims["amr"]), ["sc", "pin", "mfa", "hwk"]);
    // A refresh keeps the answer.
    let r = gw.token("psc-test", &[("grant_type", "refresh_token"), ("refresh_token", &t.refresh)]).await;
    let refreshed = gw.verify_jwt(&Tokens::of(&r).id, "psc-test", "RS256").await;
    assert_eq!(refreshed["acr"], "eidas1", "{refreshed}");
}

#[tokio::test]
async fn a_login_hint_that_is_not_a_known_idnat_is_left_as_it_came() {
    let gw = short_max_age_gateway(&random(32), &random(32)).await;
    for (hint, shown) in [("810000000001", "810000000001"), ("demo.interne", "demo.interne")] {
        let mut b = gw.browser();
        let a = Authz::new(&gw, "psc-test").with("scope", "openid profile").with("login_hint", hint);
        let r = b.authorize(&a).await;
        let page = b.get(&r.location()).await;
        assert!(page.body.contains(&format!(r#"required value="{shown}""#)), "{hint}: {}", page.body);
    }
    // An ordinary client's idNat hint is not looked up (no username disclosed for an idNat).
    let mut b = gw.browser();
    let r = b.authorize(&Authz::new(&gw, "app").with("scope", "openid").with("login_hint", MEDECIN_IDNAT)).await;
    let page = b.get(&r.location()).await;
    assert!(page.body.contains(&format!(r#"required value="{MEDECIN_IDNAT}""#)), "{}", page.body);
}

#[test]
fn check_config_refuses_a_bad_fi_tiers_table_naming_each_key() {
    let config = temp_file(
        "fi-tiers.toml",
        r#"
issuer = "https://vigie.chu.example"
[directory]
url = "sqlite:///tmp/vigie-fi-tiers-check.db"
[keys]
file = "/nonexistent/keys.json"
[login]
acr_values_map = { eidas2 = "high" }

[[clients]]
client_id = "psc"
client_secret_hash = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
auth_method = "client_secret_basic"
redirect_uris = ["https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet/broker/chu/endpoint"]
fi_tiers = { tid = "", max_auth_age_secs = 0, amr = { card = ["sc"], fido2 = ["hwk", "not a token"] } }

[[clients]]
client_id = "psc-public"
auth_method = "none"
redirect_uris = ["https://psc.example/cb"]
fi_tiers = { tid = "VIGIE_1760000018", colour = "blue" }

[[clients]]
client_id = "psc-good"
client_secret_hash = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
auth_method = "client_secret_basic"
redirect_uris = ["https://psc.example/cb"]
fi_tiers = { tid = "VIGIE_1760000018", amr = { cps = ["sc", "pin", "mfa", "hwk"] } }

[[clients]]
client_id = "psc-bad-map"
client_secret_hash = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
auth_method = "client_secret_basic"
redirect_uris = ["https://psc.example/cb"]
acr_values_map = { eidas1 = "urn:vigie:loa:3fa" }
fi_tiers = { tid = "VIGIE_1760000018" }
"#,
    );
    let out = std::process::Command::new(BIN)
        .args(["check-config", config.to_str().expect("UTF-8 path")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("running vigie");
    remove_temp(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for key in [
        "clients[0].fi_tiers.tid",
        "clients[0].fi_tiers.max_auth_age_secs",
        "clients[0].fi_tiers.amr.card",
        "clients[0].fi_tiers.amr.fido2",
        "clients[1].fi_tiers.colour",
        "clients[1].fi_tiers",
        "login.acr_values_map.eidas2",
        "clients[3].acr_values_map.eidas1",
    ] {
        assert!(stderr.lines().any(|l| l.contains(&format!("`{key}`:"))), "a line names `{key}`:\n{stderr}");
    }
    assert!(stderr.contains("must be confidential"), "{stderr}");
    assert!(!stderr.contains("clients[2]"), "the good FI-tiers client passes:\n{stderr}");
}

const PSC_CLIENT_SECRET: &str = "s3cret-of-the-fi-tiers-test";

#[tokio::test]
async fn a_login_through_psc_is_neither_offered_to_psc_nor_reused_for_it() {
    let psc_port = free_port();
    let issuer = format!("http://127.0.0.1:{psc_port}/auth/realms/esante-wallet");
    let gw = Gateway::start(&[
        ("VIGIE_PSC__ISSUER", issuer.as_str()),
        ("VIGIE_PSC__CLIENT_ID", "vigie"),
        ("VIGIE_PSC__CLIENT_SECRET", PSC_CLIENT_SECRET),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS", "1"),
    ])
    .await;
    let psc = PscSandbox::start(psc_port, PSC_CLIENT_SECRET, &[gw.port]);

    // Dr Marie Durand logs into the demo app with her CPS at PSC (a phishing-resistant MIE).
    let mut b = gw.browser();
    let app = Authz::new(&gw, "demo-app");
    let r = b.authorize(&app).await;
    let page = psc.login_page_offering_psc(&mut b, &r.location()).await;
    let flow = page.hidden("flow").expect("flow");
    psc.next_login("810001234567", "card").await;
    let to_psc = b.get(&format!("/login/psc?flow={flow}")).await;
    assert_eq!(to_psc.status, 302, "{}", to_psc.body);
    let callback = psc.through(&mut b, &to_psc.location()).await;
    let done = psc.back_at_vigie(&mut b, &callback).await;
    assert!(done.location().starts_with(&app.redirect_uri), "{}", done.location());
    let code = done.redirect_params().get("code").cloned().expect("a code for the demo app");
    let claims = jwt_part(&redeem(&gw, &app, &code).await.id, 1);
    assert_eq!(claims["acr"], ACR_PHR, "a CPS at PSC is phishing-resistant: {claims}");

    // The session serves the demo app (SSO), but not PSC: a fresh local login, PSC not offered.
    b.code_without_login(&Authz::new(&gw, "demo-app")).await;
    let r = b.authorize(&psc_request(&gw)).await;
    assert!(r.location().starts_with("/login?flow="), "a new login for PSC: {}", r.location());
    let page = b.get(&r.location()).await;
    assert!(page.body.contains("/login/cps?flow="), "the card is offered: {}", page.body);
    assert!(!page.body.contains("/login/psc?flow="), "PSC is not offered to PSC: {}", page.body);
    let fi_flow = page.hidden("flow").expect("flow");
    let forced = b.get(&format!("/login/psc?flow={fi_flow}")).await;
    assert_eq!(forced.status, 403, "going to PSC anyway is refused: {}", forced.body);
    let line = gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "failure" && l["method"] == "ecps").await;
    assert_eq!((line["client_id"].as_str(), line["reason"].as_str()), (Some(PSC), Some("psc_not_offered")), "{line}");
    let authorizations = psc.log().await.into_iter().filter(|e| e["endpoint"] == "auth").count();
    assert_eq!(authorizations, 1, "PSC saw the demo app's login only");
}
