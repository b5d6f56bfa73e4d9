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

/// Issue 12: on the public port, `/readyz` gives each check's state and a generic reason, never
/// what describes the inside (Pro Santé Connect's issuer and probe errors, the CRL sources and
/// their errors, the DMP's address, the policy directory): the log has it, and so does `/readyz`
/// on the ops listener (`server.ops_listen`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_readyz_names_no_address_path_or_error_which_the_log_and_the_ops_listener_do() {
    // Nothing listens at these: every probe and fetch fails, with an error naming the address.
    let (psc, crl, dmp) = (free_port(), free_port(), free_port());
    let psc_issuer = format!("http://127.0.0.1:{psc}/auth/realms/esante-wallet");
    let crl_url = format!("http://127.0.0.1:{crl}/ACI-EL-PP-TEST.crl");
    let dmp_base = format!("https://127.0.0.1:{dmp}/si-dmp-server/v2/services/");
    let first = temp_file("00_everywhere.cedar", "");
    let policies = first.parent().expect("policy dir").to_owned();
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default")).expect("policies") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), policies.join(e.file_name())).expect("copy");
    }
    let policy_count = std::fs::read_dir(&policies)
        .expect("dir")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().matches("@id(").count())
        .sum::<usize>();
    let env = vec![
        ("VIGIE_PSC__ISSUER".to_owned(), psc_issuer.clone()),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS".to_owned(), "1".to_owned()),
        ("VIGIE_PSC__TIMEOUT_MS".to_owned(), "500".to_owned()),
        ("VIGIE_CARDS__TRUST__CRL_URLS".to_owned(), format!("[{crl_url:?}]")),
        ("VIGIE_CARDS__TRUST__REFRESH_SECS".to_owned(), "1".to_owned()),
        ("VIGIE_DMP__RELAY__BASE_URL".to_owned(), dmp_base),
        ("VIGIE_HEALTH__PROBE_INTERVAL_MS".to_owned(), "300".to_owned()),
        ("VIGIE_HEALTH__BACKOFF_INITIAL_MS".to_owned(), "100".to_owned()),
        ("VIGIE_HEALTH__BACKOFF_MAX_MS".to_owned(), "300".to_owned()),
        ("VIGIE_HEALTH__MIN_STATE_MS".to_owned(), "300".to_owned()),
        ("VIGIE_POLICY__DIR".to_owned(), policies.display().to_string()),
    ];
    let start = |extra: Vec<(String, String)>| {
        let env: Vec<(String, String)> = env.iter().cloned().chain(extra).collect();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Gateway::start(&env).await
        }
    };
    // What names the inside: the three addresses' ports, the policy directory.
    let inside = [format!(":{psc}"), format!(":{crl}"), format!(":{dmp}"), policies.display().to_string()];

    let gw = start(Vec::new()).await;
    let public = eventually(30, || async {
        let j: Value = gw.http().get(gw.url("/readyz")).send().await.ok()?.json().await.ok()?;
        let checks = &j["checks"];
        (checks["psc"]["status"] == "down"
            && checks["upstreams"]["dmp"]["state"] == "open"
            && checks["upstreams"]["psc"]["state"] == "open")
            .then_some(j)
    })
    .await
    .expect("PSC down and the DMP's breaker open");
    let checks = &public["checks"];
    assert_eq!(
        checks["psc"],
        serde_json::json!({ "status": "down", "informational": true,
            "detail": "Pro Santé Connect did not answer the last probe: see the gateway's log" })
    );
    assert_eq!(
        checks["card_crls"],
        serde_json::json!({ "status": "degraded",
            "detail": "a card CRL is missing or past its nextUpdate: the gateway's log names the source" })
    );
    assert_eq!(
        checks["policy"],
        serde_json::json!({ "status": "up", "engine": "cedar", "source": "directory", "policies": policy_count })
    );
    for upstream in ["psc", "crl", "dmp"] {
        let u = checks["upstreams"][upstream].as_object().expect("an upstream");
        let mut keys: Vec<&str> = u.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["consecutive_failures", "consecutive_successes", "last_latency_ms", "since", "state", "transitions"],
            "{upstream}: states and counts, no error"
        );
    }
    let text = public.to_string();
    for secret in &inside {
        assert!(!text.contains(secret.as_str()), "{secret} on the public port: {text}");
    }
    // The log has what the public answer leaves out.
    let log = std::fs::read_to_string(gw.data_dir.parent().expect("test dir").join("vigie.log")).expect("log");
    for secret in &inside[..3] {
        assert!(log.contains(secret.as_str()), "{secret} in the log");
    }
    drop(gw);

    let ops = format!("127.0.0.1:{}", free_port());
    let _gw = start(vec![("VIGIE_SERVER__OPS_LISTEN".to_owned(), ops.clone())]).await;
    let http = reqwest::Client::new();
    let detailed = eventually(30, || async {
        let j: Value = http.get(format!("http://{ops}/readyz")).send().await.ok()?.json().await.ok()?;
        let checks = &j["checks"];
        (checks["psc"]["last_probe"]["error"].is_string()
            && checks["upstreams"]["dmp"]["last_error"].is_string()
            && checks["card_crls"]["sources"].as_array().is_some_and(|s| s.iter().any(|s| s["last_error"].is_string())))
        .then_some(j)
    })
    .await
    .expect("the errors on the ops listener");
    let checks = &detailed["checks"];
    assert_eq!(checks["psc"]["issuer"], psc_issuer.as_str());
    assert_eq!(checks["policy"]["source"], policies.display().to_string().as_str());
    assert!(
        checks["upstreams"]["dmp"]["last_error"].as_str().is_some_and(|e| e.contains(&dmp.to_string())),
        "{detailed}"
    );
    assert!(
        checks["card_crls"]["sources"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["url"] == crl_url.as_str() && s["last_error"].is_string())),
        "{detailed}"
    );
    remove_temp(&first);
}
