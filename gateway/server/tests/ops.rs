//! What operations rely on: probes, metrics, discovery, error shapes and size limits.
use crate::common;

use common::*;
use serde_json::Value;
use tokio::sync::OnceCell;

static GW: OnceCell<Gateway> = OnceCell::const_new();

async fn gw() -> &'static Gateway {
    GW.get_or_init(|| Gateway::start(&[])).await
}

#[tokio::test]
async fn healthz_answers_200() {
    let r = gw().await.browser().get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn readyz_reports_store_and_directory_up() {
    let r = gw().await.browser().get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    let j = r.json();
    assert_eq!(j["status"], "ready", "{j}");
    assert_eq!(j["checks"]["store"]["status"], "up", "{j}");
    assert_eq!(j["checks"]["directory"]["status"], "up", "{j}");
    assert_eq!(j["checks"]["signing_keys"]["status"], "up", "{j}");
}

#[tokio::test]
async fn metrics_count_http_requests_and_logins() {
    let gw = gw().await;
    // One failed login, so that the login counter exists.
    let mut b = gw.browser();
    let r = b.authorize(&Authz::new(gw, "demo-app")).await;
    let user = gw.users[0].clone();
    let failed = b.submit_login(&r.location(), &user.username, "not-the-password", "000000").await;
    assert_eq!(failed.status, 401, "{}", failed.body);

    let m = b.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    let has = |prefix: &str, parts: &[&str]| {
        m.body.lines().any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
    };
    assert!(has("vigie_http_requests_total{", &[r#"route="/authorize""#, r#"status="303""#]), "{}", m.body);
    assert!(has("vigie_login_total{", &[r#"result="failure""#]), "{}", m.body);
}

#[tokio::test]
async fn unknown_path_is_404_problem_json() {
    let r = gw().await.browser().get("/no/such/thing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let j = r.json();
    assert_eq!(j["status"], 404, "{j}");
    assert!(j["title"].is_string() && j["type"].is_string(), "RFC 9457 members: {j}");
}

#[tokio::test]
async fn discovery_names_every_endpoint_under_the_issuer() {
    let gw = gw().await;
    let r = gw.browser().get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, 200);
    let d: Value = r.json();
    assert_eq!(d["issuer"], gw.issuer.as_str(), "OIDC Discovery §4.3: the issuer is exactly the one asked");
    for endpoint in
        ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint"]
    {
        let url = d[endpoint].as_str().unwrap_or_else(|| panic!("{endpoint} in {d}"));
        assert!(url.starts_with(&format!("{}/", gw.issuer)), "{endpoint} {url}");
    }
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    let jwks = gw.jwks().await;
    assert!(jwks.keys.len() >= 2 && jwks.keys.iter().all(|k| k.common.key_id.is_some()), "keys with kids");
}

#[tokio::test]
async fn request_body_over_64_kib_is_413() {
    let gw = gw().await;
    let big = format!("grant_type=authorization_code&code={}", "a".repeat(70 * 1024));
    for path in ["/token", "/login/password", "/introspect"] {
        let r = gw
            .http()
            .post(gw.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .expect("gateway");
        assert_eq!(r.status(), 413, "{path}");
        let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(ct, "application/problem+json", "{path}: RFC 9457 problem details");
        let body: serde_json::Value = r.json().await.expect("problem body");
        assert_eq!(body["status"], 413);
    }
    // Just under the limit is read (and refused for what it says, not for its size).
    let fits = format!("grant_type=authorization_code&code={}", "a".repeat(60 * 1024));
    let r = gw.http().post(gw.url("/token")).header("content-type", "application/x-www-form-urlencoded").body(fits);
    assert_eq!(r.send().await.expect("gateway").status(), 401);
}

#[tokio::test]
async fn request_headers_over_16_kib_are_431() {
    let gw = gw().await;
    let r = gw.http().get(gw.url("/healthz")).header("x-padding", "a".repeat(17 * 1024)).send().await.expect("gateway");
    assert_eq!(r.status(), 431);
    let split: Vec<(String, String)> = (0..6).map(|i| (format!("x-pad-{i}"), "b".repeat(3 * 1024))).collect();
    let mut req = gw.http().get(gw.url("/healthz"));
    for (k, v) in &split {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.expect("gateway").status(), 431, "the limit is on the total");
    let r = gw.http().get(gw.url("/healthz")).header("x-padding", "a".repeat(8 * 1024)).send().await.expect("gateway");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn responses_carry_security_headers_and_a_request_id() {
    let r = gw().await.browser().get("/healthz").await;
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("strict-transport-security").is_some());
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
}
