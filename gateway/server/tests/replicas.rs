//! Two `vigie` replicas sharing one real Redis serve one login flow alternately: no replica
//! keeps login state in memory. Authorize on A, log in on B, token on A, refresh on B,
//! userinfo on A; an authorization code is redeemed once across both.
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::common::redis::{RedisServer, Replica, ReplicaDemo};
use crate::common::{free_port, query_of};

/// What Kubernetes adds for a Service named `vigie`: not configuration, must not stop the start.
const KUBERNETES_ENV: [(&str, &str); 2] =
    [("VIGIE_PORT", "tcp://10.96.0.12:443"), ("VIGIE_SERVICE_HOST", "10.96.0.12")];

pub(crate) fn set_cookie(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

pub(crate) const VERIFIER: &str = "replica-test-verifier-0123456789-0123456789-abcdef";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:8765/callback";

pub(crate) fn authorize_url(base: &str) -> String {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, VERIFIER.as_bytes()));
    let mut u = url::Url::parse(&format!("{base}/authorize")).expect("url");
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "demo-cli")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", "st")
        .append_pair("nonce", "nn")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    u.to_string()
}

/// GET /userinfo on one replica with a bearer access token.
async fn userinfo(http: &reqwest::Client, base: &str, access_token: &str) -> reqwest::Response {
    http.get(format!("{base}/userinfo")).bearer_auth(access_token).send().await.expect("userinfo")
}

async fn token(http: &reqwest::Client, base: &str, secret: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut f: Vec<(&str, &str)> = vec![("client_id", "demo-cli"), ("client_secret", secret)];
    f.extend_from_slice(form);
    http.post(format!("{base}/token")).form(&f).send().await.expect("token request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_serve_one_login_flow_alternately() {
    let redis = RedisServer::start();
    let redis_port = redis.port;
    let dir = std::env::temp_dir().join(format!("vigie-replicas-{}-{}", std::process::id(), free_port()));
    let (pa, pb) = (free_port(), free_port());
    let issuer = format!("https://localhost:{pa}");
    let replica_a = Replica::start(&dir, pa, &redis, &issuer, &KUBERNETES_ENV);
    let replica_b = Replica::start(&dir, pb, &redis, &issuer, &KUBERNETES_ENV);
    let (a, b) = (replica_a.base(), replica_b.base());

    let demo = ReplicaDemo::read(&dir);
    let (http, secret, user) = (demo.http.clone(), demo.secret.clone(), &demo.users[0]);

    // 1. Authorize on A: the login flow goes to Redis.
    let r = http.get(authorize_url(&a)).send().await.expect("authorize on A");
    assert_eq!(r.status(), 303);
    let browser = set_cookie(&r, "__Host-vigie-browser");
    let login_path = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(login_path.starts_with("/login?flow="), "{login_path}");

    // 2. The login page and the login itself on B.
    let r = demo.log_in(&b, &login_path, &browser, user).await;
    assert_eq!(r.status(), 303, "login on B: {:?}", r.text().await);
    let session = set_cookie(&r, "__Host-vigie-session");
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    assert_eq!(query_of(&location).get("iss").map(String::as_str), Some(issuer.as_str()));
    let code = query_of(&location).remove("code").expect("code");

    // 3. Token on A.
    let r = token(
        &http,
        &a,
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status(), 200, "token on A");
    let t: Value = r.json().await.expect("tokens");
    let refresh = t["refresh_token"].as_str().expect("refresh token").to_owned();

    // 4. Refresh on B, then the rotated token is refused on A (the family is shared state).
    let r = token(&http, &b, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(r.status(), 200, "refresh on B");
    let t2: Value = r.json().await.expect("refreshed");
    assert_ne!(t2["refresh_token"], t["refresh_token"]);
    let r = userinfo(&http, &a, t2["access_token"].as_str().expect("at")).await;
    assert_eq!(r.status(), 200, "A accepts the access token B issued");
    let info: Value = r.json().await.expect("userinfo json");
    assert_eq!(info["given_name"], "Camille");
    let r = token(&http, &a, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(r.status(), 400, "a rotated refresh token is refused on the other replica");

    // 5. Userinfo on A with B's access token: the family was revoked by the reuse above.
    let r = userinfo(&http, &a, t2["access_token"].as_str().expect("at")).await;
    assert_eq!(r.status(), 401, "reuse of a rotated refresh token revokes the family on every replica");

    // 6. SSO on B with the session made on B, and a code redeemed once across both replicas.
    let r = http.get(authorize_url(&b)).header("cookie", &session).send().await.expect("SSO on B");
    assert_eq!(r.status(), 303);
    let code = query_of(r.headers()["location"].to_str().expect("location"))
        .remove("code")
        .expect("SSO gives a code without login");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (ra, rb) = tokio::join!(token(&http, &a, &secret, &form), token(&http, &b, &secret, &form));
    let ok = [ra.status(), rb.status()].iter().filter(|s| s.as_u16() == 200).count();
    assert_eq!(ok, 1, "the code is redeemed exactly once across replicas: {} / {}", ra.status(), rb.status());
    let winner = if ra.status() == 200 { ra } else { rb };
    let t3: Value = winner.json().await.expect("tokens");
    let r = userinfo(&http, &b, t3["access_token"].as_str().expect("at")).await;
    // The loser's replay revoked what the code issued (RFC 6749 §4.1.2).
    assert_eq!(r.status(), 401, "a replayed code revokes the tokens it issued, seen by every replica");

    // 7. A family refreshed many times, alternately on A and B, keeps one record in Redis:
    // state grows with families, not with rotations.
    let r = http.get(authorize_url(&a)).header("cookie", &session).send().await.expect("SSO on A");
    let code = query_of(r.headers()["location"].to_str().expect("location")).remove("code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let t: Value = token(&http, &a, &secret, &form).await.json().await.expect("tokens");
    let mut refresh = t["refresh_token"].as_str().expect("refresh token").to_owned();
    let family = refresh.split('.').next().expect("family").to_owned();
    for i in 0..20 {
        let replica = if i % 2 == 0 { &b } else { &a };
        let r = token(&http, replica, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
        assert_eq!(r.status(), 200, "rotation {i}");
        let t: Value = r.json().await.expect("refreshed");
        refresh = t["refresh_token"].as_str().expect("refresh token").to_owned();
    }
    assert!(refresh.starts_with(&format!("{family}.20.")), "generation 20 of the same family: {refresh}");
    let redis_cli = |args: &[&str]| {
        let out =
            Command::new("redis-cli").args(["-p", &redis_port.to_string()]).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let records = redis_cli(&["--scan", "--pattern", &format!("*rt:{family}*")]);
    assert_eq!(records.len(), 1, "one record per family after 20 rotations: {records:?}");
    // The rotated tokens are known by their secrets' hashes, one member of one set per rotation:
    // a rotated token with a made-up secret is no reuse (RFC 9700 §4.14.2).
    let spent = redis_cli(&["--scan", "--pattern", &format!("*rt-spent:{family}")]);
    assert_eq!(spent.len(), 1, "one set of rotated tokens per family: {spent:?}");
    assert_eq!(redis_cli(&["scard", &spent[0]]), ["20"], "one member per rotation");
    // Nothing else per rotation: the record is replaced by compare-and-set, no claim on a
    // generation is kept (issue 15; the claims only while the previous version may still run).
    let claims = redis_cli(&["--scan", "--pattern", &format!("*rt-rotating:{family}:*")]);
    assert!(claims.is_empty(), "no claim kept per rotation: {claims:?}");

    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_redis_down_within_a_probe_timeout() {
    let mut redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("vigie-readyz-{}-{}", std::process::id(), free_port()));
    let port = free_port();
    let _gw = Replica::start(&dir, port, &redis, &format!("https://localhost:{port}"), &KUBERNETES_ENV);
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json")).expect("json");
    let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().expect("ca").as_bytes()).expect("CA");
    let http = reqwest::Client::builder().add_root_certificate(ca).build().expect("client");
    let readyz = format!("https://localhost:{port}/readyz");

    let r = http.get(&readyz).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["checks"]["store"]["status"], "up");

    redis.stop();
    let started = Instant::now();
    let r = http.get(&readyz).send().await.expect("readyz");
    let elapsed = started.elapsed();
    assert_eq!(r.status(), 503, "not ready without Redis");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["store"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["directory"]["status"], "up", "{body}");
    // On the public port, the store's error (its address, the driver's words) stays in the log.
    // Redis gone, its port refuses: the check fails at once rather than running out of time.
    assert_eq!(body["checks"]["store"]["detail"], "the check failed: see the gateway's log", "{body}");
    // The contract is an answer within Kubernetes' default probe timeout (1 s; the checks are
    // cut at 800 ms). It answers in about 10 ms here, so 1 s is two orders of magnitude above.
    assert!(elapsed < Duration::from_secs(1), "readyz answered in {elapsed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
