//! The authorization code flow with PKCE as each kind of demo client lives it, single sign-on,
//! and the session cookie (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1, RFC 7523).
use crate::common;

use common::*;
use serde_json::Value;
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

/// One browser signed in for the SSO tests: its cookies and the claims of its first ID token.
static SSO: OnceCell<(std::collections::BTreeMap<String, String>, Value)> = OnceCell::const_new();

async fn sso_browser() -> Browser<'static> {
    let gw = gw().await;
    let (cookies, _) = SSO
        .get_or_init(|| async {
            let (b, _, a, t) = logged_in(gw, "demo-app", &gw.all_usernames()).await;
            let claims = gw.verify_jwt(&t.id, &a.client_id, "ES256").await;
            (b.cookies, claims)
        })
        .await;
    let mut b = gw.browser();
    b.cookies = cookies.clone();
    b
}

async fn first_sso_claims() -> Value {
    sso_browser().await;
    SSO.get().expect("SSO session").1.clone()
}

/// OIDC Core §3.1.3.7 and §3.1.3.6, checked as a careful relying party would, for a client
/// registered with ID token algorithm `alg`.
async fn check_id_token(gw: &Gateway, a: &Authz, t: &Tokens, alg: &str, signed_in_after: i64) -> Value {
    let header = jwt_part(&t.id, 0);
    assert_eq!(header["typ"], "JWT", "ID token typ");
    let c = gw.verify_jwt(&t.id, &a.client_id, alg).await;
    let now = now();
    assert_eq!(c["iss"], gw.issuer.as_str(), "iss is exactly the issuer");
    assert_eq!(c["aud"], a.client_id.as_str(), "aud is the client");
    assert_eq!(c["azp"], a.client_id.as_str(), "azp is the client");
    let (iat, exp, auth_time) =
        (c["iat"].as_i64().expect("iat"), c["exp"].as_i64().expect("exp"), c["auth_time"].as_i64().expect("auth_time"));
    assert!(exp > now, "exp {exp} is in the future");
    assert!((now - 60..=now + 1).contains(&iat), "iat {iat} is about now ({now})");
    assert!(
        auth_time >= signed_in_after - 1 && auth_time <= iat,
        "auth_time {auth_time} is the login ({signed_in_after})"
    );
    assert_eq!(c["nonce"], a.nonce.as_str(), "nonce is the request's");
    assert_eq!(c["acr"], ACR_2FA, "password + TOTP is two factors");
    let mut amr: Vec<&str> = c["amr"].as_array().expect("amr").iter().filter_map(Value::as_str).collect();
    amr.sort();
    assert_eq!(amr, ["mfa", "otp", "pwd"], "amr (RFC 8176) names both factors");
    assert!(c["sid"].as_str().is_some_and(|s| s.len() >= 16), "sid names the session");
    assert_eq!(c["at_hash"], at_hash(&t.access).as_str(), "at_hash binds the access token");
    assert!(c["sub"].as_str().is_some_and(|s| !s.is_empty()), "sub");
    c
}

/// The whole flow for a demo client registered with token endpoint authentication `auth_method`
/// and ID token algorithm `alg`: what the demo registers, written here rather than read back
/// from the gateway, so that a client registered otherwise fails.
async fn full_flow(client_id: &str, auth_method: &str, alg: &str) {
    let gw = gw().await;
    let registered = gw.client(client_id);
    // The code is redeemed with the method demo.json shows.
    assert_eq!((registered.auth_method.as_str(), registered.alg.as_str()), (auth_method, alg), "demo.json");
    let started = now();
    let mut b = gw.browser();
    let a = Authz::new(gw, client_id);
    let (user, code) = b.sign_in(&a, &gw.all_usernames()).await;
    let r = a.redeem(gw, &code).await;
    assert_eq!(r.header("cache-control"), Some("no-store"), "RFC 6749 §5.1: token responses are not cached");
    let t = Tokens::of(&r);
    assert!(t.raw["token_type"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("bearer")));
    assert!(t.raw["expires_in"].as_u64().is_some_and(|e| e > 0));
    assert_eq!(t.raw["scope"], "openid profile hospital offline_access");
    let claims = check_id_token(gw, &a, &t, alg, started).await;
    assert_eq!(claims["name"], user.name.as_str(), "profile claims are the user's");
    // RFC 9068 §2.1: the access token is a JWT typed `at+jwt`; Vigie signs it like the ID token.
    assert_eq!(jwt_part(&t.access, 0)["typ"], "at+jwt", "RFC 9068 access token");
    let access = gw.verify_jwt(&t.access, client_id, alg).await;
    assert_eq!((&access["client_id"], &access["sub"]), (&Value::from(client_id), &claims["sub"]));

    let info = gw.userinfo(&t.access).await;
    assert_eq!(info.status, 200, "userinfo: {}", info.body);
    assert_eq!(info.json()["sub"], claims["sub"], "userinfo sub equals the ID token sub (OIDC Core §5.3.2)");
}

#[tokio::test]
async fn demo_app_with_client_secret_basic_gets_verified_es256_id_token() {
    full_flow("demo-app", "client_secret_basic", "ES256").await;
}

#[tokio::test]
async fn demo_cli_with_client_secret_post_gets_rs256_id_token() {
    full_flow("demo-cli", "client_secret_post", "RS256").await;
}

#[tokio::test]
async fn demo_spa_public_client_gets_ps256_id_token() {
    full_flow("demo-spa", "none", "PS256").await;
}

#[tokio::test]
async fn demo_jwt_client_authenticates_with_a_signed_assertion_used_once() {
    let gw = gw().await;
    full_flow("demo-jwt", "private_key_jwt", "ES256").await;

    let token_endpoint = gw.url("/token");
    let bogus_code = [
        ("grant_type", "authorization_code"),
        ("code", "no-such-code"),
        ("redirect_uri", "http://127.0.0.1:8767/callback"),
    ];
    let send = |assertion: String| async move {
        let mut form: Vec<(&str, String)> = bogus_code.iter().map(|(k, v)| (*k, v.to_string())).collect();
        form.push(("client_assertion_type", JWT_BEARER.into()));
        form.push(("client_assertion", assertion));
        Resp::of(gw.http().post(gw.url("/token")).form(&form).send().await.expect("token endpoint")).await
    };
    // Accepted once: the client is authenticated, then the code is refused.
    let assertion = gw.client_assertion("demo-jwt", &token_endpoint);
    let first = send(assertion.clone()).await;
    assert_eq!((first.status, first.json()["error"].as_str()), (400, Some("invalid_grant")), "{}", first.body);
    // RFC 7523 §3: the same jti again is a replay.
    let replay = send(assertion).await;
    assert_eq!((replay.status, replay.json()["error"].as_str()), (401, Some("invalid_client")), "{}", replay.body);
    // RFC 7523 §3: the audience must identify this authorization server.
    let elsewhere = send(gw.client_assertion("demo-jwt", "https://other-idp.example/token")).await;
    assert_eq!(
        (elsewhere.status, elsewhere.json()["error"].as_str()),
        (401, Some("invalid_client")),
        "{}",
        elsewhere.body
    );
    // Signed by a key the client never registered.
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .expect("P-256 key");
    let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = gw.client("demo-jwt").kid.clone();
    let n = now();
    let claims = serde_json::json!({"iss": "demo-jwt", "sub": "demo-jwt", "aud": token_endpoint, "jti": random(16), "iat": n, "exp": n + 60});
    let forged = send(jsonwebtoken::encode(&header, &claims, &key).expect("signing")).await;
    assert_eq!((forged.status, forged.json()["error"].as_str()), (401, Some("invalid_client")), "{}", forged.body);
}

#[tokio::test]
async fn signed_in_user_gets_a_code_for_another_app_without_logging_in_again() {
    let gw = gw().await;
    let first = first_sso_claims().await;
    let mut b = sso_browser().await;
    let a = Authz::new(gw, "demo-cli");
    let code = b.code_without_login(&a).await;
    let t = redeem(gw, &a, &code).await;
    let c = gw.verify_jwt(&t.id, "demo-cli", "RS256").await;
    assert_eq!(c["sid"], first["sid"], "same SSO session");
    assert_eq!(c["auth_time"], first["auth_time"], "no new authentication");
    assert_eq!(c["sub"], first["sub"]);

    // prompt=none with a live session is answered with a code too.
    let quiet = Authz::new(gw, "demo-spa").with("prompt", "none");
    b.code_without_login(&quiet).await;
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_despite_a_session() {
    let gw = gw().await;
    let mut b = sso_browser().await;
    let r = b.authorize(&Authz::new(gw, "demo-app").with("prompt", "login")).await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login?flow="), "login page, not a code: {}", r.location());
}

#[tokio::test]
async fn max_age_zero_right_after_login_forces_a_new_login() {
    let gw = gw().await;
    let (mut b, _, _, _) = logged_in(gw, "demo-app", &gw.all_usernames()).await;
    // OIDC Core §3.1.2.1: "max_age=0 is equivalent to prompt=login", even within the second
    // of the login.
    let r = b.authorize(&Authz::new(gw, "demo-app").with("max_age", "0")).await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login?flow="), "login page, not a code: {}", r.location());
    // A generous max_age is satisfied by the same session.
    b.code_without_login(&Authz::new(gw, "demo-app").with("max_age", "3600")).await;
}

#[tokio::test]
async fn prompt_none_without_a_session_redirects_with_login_required() {
    let gw = gw().await;
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app").with("prompt", "none");
    let r = b.authorize(&a).await;
    assert!(r.location().starts_with(&a.redirect_uri), "back to the client: {}", r.location());
    let p = r.redirect_params();
    assert_eq!(p.get("error").map(String::as_str), Some("login_required"));
    assert_eq!(p.get("state"), Some(&a.state));
    assert_eq!(p.get("iss"), Some(&gw.issuer));
    assert!(!p.contains_key("code"));
}

#[tokio::test]
async fn form_post_response_mode_returns_a_form_posting_code_and_state_to_the_client() {
    let gw = gw().await;
    let mut b = sso_browser().await;
    let a = Authz::new(gw, "demo-app").with("response_mode", "form_post");
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("location").is_none());
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(
        r.body.contains(&format!(r#"<form method="post" action="{}">"#, a.redirect_uri)),
        "the form posts to the redirect URI: {}",
        r.body
    );
    assert_eq!(r.hidden("state").as_deref(), Some(a.state.as_str()));
    assert_eq!(r.hidden("iss").as_deref(), Some(gw.issuer.as_str()));
    let csp = r.header("content-security-policy").expect("CSP");
    // The client's origin, and the https URLs its answer to the post redirects to: Chromium checks
    // form-action on those redirects too (tests/browser/form-post.test.mjs). Not Vigie's own.
    assert!(
        csp.contains(&format!("; form-action {} https:;", gw.issuer)),
        "the form posts to the client, whose redirects are followed: {csp}"
    );
    assert!(csp.contains("script-src 'nonce-") && csp.contains("base-uri 'none'"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "the code is in the page");
    let code = r.hidden("code").expect("a code in the form");
    redeem(gw, &a, &code).await;
}

#[tokio::test]
async fn session_cookie_is_host_only_secure_httponly_lax_and_renewed_at_each_login() {
    let gw = gw().await;
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let r = b.authorize(&a).await;
    let browser_cookie = r.set_cookie(BROWSER_COOKIE).expect("the login flow binds the browser").to_owned();
    let (user, code) = gw.any_user_totp(&gw.all_usernames()).await;
    let done = b.submit_login(&r.location(), &user.username, &user.password, &code).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let set = done.set_cookie(SESSION_COOKIE).expect("a session cookie after login").to_owned();
    for cookie in [&set, &browser_cookie] {
        let attrs: Vec<String> = cookie.split(';').skip(1).map(|s| s.trim().to_ascii_lowercase()).collect();
        for want in ["secure", "httponly", "samesite=lax", "path=/"] {
            assert!(attrs.iter().any(|a| a == want), "{want} in {cookie}");
        }
        assert!(!attrs.iter().any(|a| a.starts_with("domain")), "__Host- cookies have no Domain: {cookie}");
    }
    let first = b.cookie(SESSION_COOKIE).expect("session cookie kept").to_owned();

    // Log in again (prompt=login): a new session id, and the old one is dead.
    let again = b.authorize(&Authz::new(gw, "demo-app").with("prompt", "login")).await;
    let (user, code) = gw.any_user_totp(&gw.all_usernames()).await;
    let login = b.submit_login(&again.location(), &user.username, &user.password, &code).await;
    assert_eq!(login.status, 303, "{}", login.body);
    let second = b.cookie(SESSION_COOKIE).expect("session cookie").to_owned();
    assert_ne!(first, second, "the session id changes at each login (session fixation)");

    let mut stale = gw.browser();
    stale.cookies.insert(SESSION_COOKIE.into(), first);
    let r = stale.authorize(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(r.redirect_params().get("error").map(String::as_str), Some("login_required"), "the old session is gone");
}
