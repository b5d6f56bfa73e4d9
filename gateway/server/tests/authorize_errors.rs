//! Authorization requests that fail: an error page when the client or its redirect URI cannot
//! be trusted, otherwise an error sent back to the client with `state` and `iss`
//! (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6, RFC 9207).
use crate::common;

use common::*;
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

/// The request is refused on a page shown to the user: 400 HTML and no redirect.
async fn assert_error_page(a: &Authz) -> Resp {
    let gw = gw().await;
    let r = gw.browser().authorize(a).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.header("location").is_none(), "never redirect to an unverified URI: {:?}", r.header("location"));
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    r
}

/// The request is refused back at the client with `error`, the request's `state` and `iss`.
async fn assert_redirected_error(a: &Authz, error: &str) {
    let gw = gw().await;
    let r = gw.browser().authorize(a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with(&format!("{}?", a.redirect_uri)), "back to the registered URI: {}", r.location());
    let p = r.redirect_params();
    assert_eq!(p.get("error").map(String::as_str), Some(error), "{p:?}");
    assert_eq!(p.get("state"), Some(&a.state), "state comes back with the error");
    assert_eq!(p.get("iss"), Some(&gw.issuer), "RFC 9207 iss comes back with the error");
    assert!(!p.contains_key("code"));
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_not_a_redirect() {
    let gw = gw().await;
    let r = assert_error_page(&Authz::new(gw, "demo-app").with("client_id", "no-such-client")).await;
    assert!(r.body.contains("no-such-client"), "the page says which client: {}", r.body);
    assert_error_page(&Authz::new(gw, "demo-app").without("client_id")).await;
}

#[tokio::test]
async fn unregistered_or_missing_redirect_uri_gets_an_error_page_not_a_redirect() {
    let gw = gw().await;
    assert_error_page(&Authz::new(gw, "demo-app").with("redirect_uri", "https://attacker.example/cb")).await;
    // Exact matching (RFC 9700 §2.1): a longer path or a query is another URI.
    let registered = gw.client("demo-app").redirect_uris[0].clone();
    assert_error_page(&Authz::new(gw, "demo-app").with("redirect_uri", &format!("{registered}/x"))).await;
    assert_error_page(&Authz::new(gw, "demo-app").with("redirect_uri", &format!("{registered}?a=b"))).await;
    // Another client's redirect URI.
    assert_error_page(&Authz::new(gw, "demo-app").with("redirect_uri", "http://127.0.0.1:8765/callback")).await;
    assert_error_page(&Authz::new(gw, "demo-app").without("redirect_uri")).await;
}

#[tokio::test]
async fn repeated_client_id_or_redirect_uri_gets_an_error_page() {
    let gw = gw().await;
    assert_error_page(&Authz::new(gw, "demo-app").also("client_id", "demo-app")).await;
    let registered = gw.client("demo-app").redirect_uris[0].clone();
    assert_error_page(&Authz::new(gw, "demo-app").also("redirect_uri", &registered)).await;
}

#[tokio::test]
async fn missing_response_type_is_invalid_request() {
    assert_redirected_error(&Authz::new(gw().await, "demo-app").without("response_type"), "invalid_request").await;
}

#[tokio::test]
async fn response_type_token_or_id_token_is_unsupported_response_type() {
    let gw = gw().await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("response_type", "token"), "unsupported_response_type")
        .await;
    assert_redirected_error(
        &Authz::new(gw, "demo-spa").with("response_type", "code id_token"),
        "unsupported_response_type",
    )
    .await;
}

#[tokio::test]
async fn scope_without_openid_or_not_allowed_is_invalid_scope() {
    let gw = gw().await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("scope", "profile"), "invalid_scope").await;
    assert_redirected_error(&Authz::new(gw, "demo-app").without("scope"), "invalid_scope").await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("scope", "openid admin"), "invalid_scope").await;
}

#[tokio::test]
async fn missing_pkce_or_plain_method_is_invalid_request() {
    let gw = gw().await;
    for client in ["demo-app", "demo-spa"] {
        let a = Authz::new(gw, client).without("code_challenge").without("code_challenge_method");
        assert_redirected_error(&a, "invalid_request").await;
    }
    let a = Authz::new(gw, "demo-app");
    let verifier = a.verifier.clone();
    let plain = a.with("code_challenge", &verifier).with("code_challenge_method", "plain");
    assert_redirected_error(&plain, "invalid_request").await;
    // No method means plain (RFC 7636 §4.3).
    assert_redirected_error(&Authz::new(gw, "demo-app").without("code_challenge_method"), "invalid_request").await;
}

#[tokio::test]
async fn repeated_parameter_is_invalid_request() {
    let gw = gw().await;
    // RFC 6749 §4.1.2.1 invalid_request: "includes a parameter more than once".
    assert_redirected_error(&Authz::new(gw, "demo-app").also("scope", "openid"), "invalid_request").await;
    assert_redirected_error(&Authz::new(gw, "demo-app").also("nonce", "other"), "invalid_request").await;
}

#[tokio::test]
async fn request_objects_and_registration_are_not_supported() {
    let gw = gw().await;
    let a = Authz::new(gw, "demo-app");
    assert_redirected_error(&a.clone().with("request", "eyJhbGciOiJub25lIn0.e30."), "request_not_supported").await;
    assert_redirected_error(&a.clone().with("request_uri", "https://rp.example/req.jwt"), "request_uri_not_supported")
        .await;
    assert_redirected_error(&a.with("registration", "{}"), "registration_not_supported").await;
}

#[tokio::test]
async fn prompt_none_with_another_value_is_invalid_request() {
    let gw = gw().await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("prompt", "none login"), "invalid_request").await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("prompt", "bogus"), "invalid_request").await;
}

#[tokio::test]
async fn malformed_max_age_or_response_mode_is_invalid_request() {
    let gw = gw().await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("max_age", "-1"), "invalid_request").await;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("response_mode", "fragment"), "invalid_request").await;
}

#[tokio::test]
async fn unmet_essential_acr_is_reported() {
    let gw = gw().await;
    // A level no login method here reaches (eIDAS high is not offered).
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["http://eidas.europa.eu/LoA/high"]}}}"#;
    assert_redirected_error(&Authz::new(gw, "demo-app").with("claims", claims), "unmet_authentication_requirements")
        .await;
    // The phishing-resistant level is reached by a card or a FIDO2 key: the login page, not an error.
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["urn:vigie:loa:2fa-phr"]}}}"#;
    let r = gw.browser().authorize(&Authz::new(gw, "demo-app").with("claims", claims)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());
}

#[tokio::test]
async fn a_valid_request_by_post_leads_to_the_login_page() {
    let gw = gw().await;
    let a = Authz::new(gw, "demo-app");
    let form: Vec<(&str, &str)> = a.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = gw.browser().post_form("/authorize", &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());
}

#[tokio::test]
async fn an_address_opening_too_many_login_flows_is_sent_back_temporarily_unavailable() {
    let gw = Gateway::start(&[("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "3")]).await;
    for i in 0..3 {
        let r = gw.browser().authorize(&Authz::new(&gw, "demo-app")).await;
        assert!(r.location().starts_with("/login?flow="), "flow {i}: {}", r.location());
    }
    // RFC 6749 §4.1.2.1: the client learns the server cannot take the request now.
    let a = Authz::new(&gw, "demo-app");
    let r = gw.browser().authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with(&format!("{}?", a.redirect_uri)), "back to the client: {}", r.location());
    let p = r.redirect_params();
    assert_eq!(p.get("error").map(String::as_str), Some("temporarily_unavailable"), "{p:?}");
    assert_eq!(p.get("state"), Some(&a.state));
    let line = gw.audit_line(|l| l["kind"] == "refused" && l["client_id"] == "demo-app").await;
    assert_eq!(line["reason"], "too many login flows from this address", "{line}");
}

/// What the store said when it failed, which a browser or a client must never be shown.
fn assert_no_store_detail(text: &str, redis_port: u16) {
    for internal in ["ephemeral store", "redis", "Redis", &redis_port.to_string()] {
        assert!(!text.contains(internal), "{internal:?} revealed: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_shows_a_generic_page_or_error_and_keeps_the_detail_in_the_log() {
    let mut redis = crate::common::redis::RedisServer::start();
    let (url, redis_port) = (redis.url(), redis.port);
    let gw = Gateway::start(&[("VIGIE_STORE__KIND", "redis"), ("VIGIE_STORE__URL", &url)]).await;
    let (mut b, _, _, _) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    let confirm = b.get("/logout").await.hidden("confirm").expect("a logout confirmation");
    let login = gw.browser().authorize(&Authz::new(&gw, "demo-app")).await.location();
    redis.stop();

    // /authorize, with a session to read or a login flow to store: RFC 6749 §4.1.2.1, back to
    // the client with temporarily_unavailable and nothing of the cause.
    for browser in [&mut b, &mut gw.browser()] {
        let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
        assert_eq!(r.status, 303, "{}", r.body);
        let p = r.redirect_params();
        assert_eq!(p.get("error").map(String::as_str), Some("temporarily_unavailable"), "{p:?}");
        assert_no_store_detail(&r.location(), redis_port);
    }
    // /logout, and any login page: a page saying to try again, with a reference for support.
    let pages = [b.post_form("/logout", &[("confirm", &confirm)]).await, b.get("/logout").await, b.get(&login).await];
    for r in pages {
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("Réessayez"), "{}", r.body);
        assert_no_store_detail(&r.body, redis_port);
    }
    // The operator finds the detail in the log.
    let log = std::fs::read_to_string(gw.data_dir.parent().expect("test dir").join("vigie.log")).expect("log");
    assert!(log.contains("ephemeral store unavailable"), "the log has the cause");
}
