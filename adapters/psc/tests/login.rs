//! Logins through the PSC stand-in (a real oidc-provider, contract C1), one per client
//! authentication method, and what Vigie reads from them.
mod common;

use common::{DR_DURAND, Fixture, POST_LOGOUT, REDIRECT};
use serde_json::json;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// The stand-in saw the token request authenticated with `method`.
async fn assert_token_auth(sandbox: &common::Sandbox, method: &str) {
    let tokens = sandbox.log_of("token").await;
    assert_eq!(tokens.len(), 1, "one token request: {tokens:?}");
    assert_eq!(tokens[0]["client_auth"], method, "token request: {}", tokens[0]);
}

#[tokio::test]
async fn dr_durand_logs_in_with_client_secret_basic_and_her_profession_is_read() {
    let fx = Fixture::new(true);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-basic");
    let before = now();
    let login = sb.login(&psc, DR_DURAND).await.expect("login");
    assert_eq!(login.idnat, DR_DURAND);
    assert_eq!(login.family_name.as_deref(), Some("DURAND"), "userinfo: {}", login.userinfo);
    assert_eq!(login.acr.as_deref(), Some("eidas1"));
    assert_eq!(login.professional.profession.as_deref(), Some("10"));
    assert_eq!(login.professional.specialty.as_deref(), Some("SM26"));
    assert_eq!(login.professional.idnat, DR_DURAND);
    assert_eq!(login.professional.source, sb.issuer);
    // The profession code, then TRE_G15's OID (conformance/psc-sandbox/lib/identities.mjs).
    assert_eq!(login.professional.roles, ["10^1.2.250.1.213.1.1.5.5"]);
    // Contract C1 (conformance/psc-sandbox/README.md): an e-CPS login's `amr`; `auth_time` is this login.
    assert_eq!(login.amr, ["mobile", "mfa"]);
    let auth_time = login.auth_time.expect("auth_time from the ID token");
    assert!((before..=now()).contains(&auth_time), "auth_time {auth_time} is this login");
    assert_eq!(login.userinfo["sub"], login.sub.as_str());
    assert_token_auth(&sb, "client_secret_basic").await;
}

#[tokio::test]
async fn the_authorization_request_carries_pkce_nonce_acr_and_scope() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-basic");
    let (url, pending) = psc.begin().await.expect("begin");
    let url = url::Url::parse(&url).expect("URL");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid scope_all");
    assert_eq!(q["acr_values"], "eidas1");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["state"], pending.state);
    assert_eq!(q["nonce"], pending.nonce);
    assert_eq!(pending.nonce.len(), 64, "nonce like ANS's Keycloak extension");
    assert!(pending.nonce.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(pending.check_state("forged").is_err_and(|e| e.code() == "state_mismatch"));
    // The discovery document was fetched at PSC's own path.
    let discovery = sb.log_of("discovery").await;
    assert!(
        discovery.iter().any(|e| e["path"].as_str().is_some_and(|p| p.ends_with("/wallet-openid-configuration"))),
        "{discovery:?}"
    );
}

#[tokio::test]
async fn a_pharmacist_logs_in_with_client_secret_post_over_plain_http() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-post");
    let login = sb.login(&psc, "810009876543").await.expect("login");
    assert_eq!(login.idnat, "810009876543");
    assert_eq!(login.professional.profession.as_deref(), Some("21"));
    assert_token_auth(&sb, "client_secret_post").await;
}

#[tokio::test]
async fn login_with_private_key_jwt_sends_a_short_lived_assertion_for_the_token_endpoint() {
    let fx = Fixture::new(true);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-jwt");
    let login = sb.login(&psc, "810005555555").await.expect("login");
    assert_eq!(login.professional.profession.as_deref(), Some("60"));
    assert_token_auth(&sb, "private_key_jwt").await;
    let token = &sb.log_of("token").await[0];
    let assertion = &token["client_assertion"];
    assert_eq!(assertion["alg"], "ES256");
    assert_eq!(assertion["iss"], "vigie-jwt");
    assert_eq!(assertion["sub"], "vigie-jwt");
    assert_eq!(assertion["aud"], format!("{}/protocol/openid-connect/token", sb.issuer));
    assert!(assertion["jti"].as_str().is_some_and(|j| j.len() >= 32), "{assertion}");
    let exp = assertion["exp"].as_i64().expect("exp");
    let now = now();
    assert!(exp > now && exp <= now + 120, "short exp: {exp} vs now {now}");
}

#[tokio::test]
async fn login_with_tls_client_auth_presents_vigies_certificate() {
    let fx = Fixture::new(true);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-mtls");
    let login = sb.login(&psc, "0751234567").await.expect("login");
    assert_eq!(login.idnat, "0751234567", "ADELI-based idNat");
    assert_eq!(login.professional.profession.as_deref(), Some("70"));
    assert_token_auth(&sb, "tls_client_auth").await;
    let token = &sb.log_of("token").await[0];
    assert_eq!(token["tls_client_cert_authorized"], true, "{token}");
    assert_eq!(token["params"].get("client_secret"), None, "no secret with mTLS");
    // The access token is bound to the certificate (RFC 8705 §3): userinfo saw it too.
    let userinfo = &sb.log_of("userinfo").await[0];
    assert_eq!(userinfo["tls_client_cert_authorized"], true, "{userinfo}");
}

#[tokio::test]
async fn a_signed_userinfo_is_verified_and_read() {
    let fx = Fixture::new(true);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-jwt-userinfo");
    let login = sb.login(&psc, DR_DURAND).await.expect("login");
    assert_eq!(login.idnat, DR_DURAND);
    assert_eq!(login.professional.specialty.as_deref(), Some("SM26"));
    // A verified JWT carries iss/aud (OIDC Core §5.3.2): they are in what we kept.
    assert_eq!(login.userinfo["iss"], sb.issuer.as_str(), "{}", login.userinfo);
    // Configured for JSON only, the same answer is refused: no silent downgrade either way.
    let mut s = fx.settings(&sb, "vigie-jwt-userinfo");
    s.userinfo = vigie_psc::UserinfoFormat::Json;
    let json_only = vigie_psc::Psc::new(s).expect("settings");
    let err = sb.login(&json_only, DR_DURAND).await.expect_err("JWT refused when JSON is configured");
    assert_eq!(err.code(), "userinfo_error", "{err}");
}

#[tokio::test]
async fn card_login_at_psc_reports_psc_amr() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-basic");
    sb.next_login_with(json!({"idnat": DR_DURAND, "means": "card"})).await;
    let (url, pending) = psc.begin().await.expect("begin");
    let (code, _) = sb.authorize(&url).await;
    let login = psc.finish(&code, &pending).await.expect("login");
    // Contract C1 (conformance/psc-sandbox/README.md): a card login's `amr`.
    assert_eq!(login.amr, ["sc", "pin", "mfa"]);
}

#[tokio::test]
async fn logout_url_ends_the_psc_session_with_the_id_token_hint() {
    let fx = Fixture::new(false);
    let sb = fx.start();
    let psc = fx.psc(&sb, "vigie-basic");
    let login = sb.login(&psc, DR_DURAND).await.expect("login");
    let url = psc.end_session_url(&login.id_token, Some(POST_LOGOUT), Some("st4te")).expect("PSC has end_session");
    assert!(url.starts_with(&format!("{}/protocol/openid-connect/logout?", sb.issuer)), "{url}");
    let resp = sb.http.get(&url).send().await.expect("logout");
    // RP-Initiated Logout 1.0 §3: back to the post-logout URI, with the state.
    assert_eq!(resp.status(), 302, "logout");
    let back = resp.headers().get("location").and_then(|l| l.to_str().ok());
    assert_eq!(back, Some(format!("{POST_LOGOUT}?state=st4te").as_str()));
    let logout = sb.log_of("logout").await;
    assert_eq!(logout.len(), 1, "{logout:?}");
    assert_eq!(logout[0]["params"]["id_token_hint"], login.id_token.as_str(), "{}", logout[0]);
}
