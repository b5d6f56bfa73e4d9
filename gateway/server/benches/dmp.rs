//! The DMP endpoints against the release `vigie` binary on the demo and the DMP stand-in
//! (`conformance/dmp-sandbox`, its venv made by `setup`): token exchanges (a VIHF signed per
//! exchange) per second, and the relay's overhead per call — the same TD0.2 call relayed by Vigie
//! and sent straight to the stand-in with a VIHF obtained beforehand, over the same ORG_AUTH_CLI
//! certificate, one call at a time; the difference is what the relay adds (token and session
//! checks, policy, VIHF, header insertion, the extra hop); then, the stand-in stopped, how fast
//! the relay answers once the DMP's circuit breaker is open (what `tests/degraded.rs` no longer
//! times).
//!
//! `cargo bench -p vigie-gateway --bench dmp [-- --secs 10 --concurrency 16 --calls 200]`
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;

mod common;
use common::{Kill, arg, cookie_of, free_port};

const INS: &str = "207058575627097";
const TD02: &str = "urn:hl7-org:v3:PRPA_IN201307UV02";
const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";

fn envelope() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><wsa:Action soap:mustUnderstand="true">{TD02}</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID></soap:Header><soap:Body><PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"/></soap:Body></soap:Envelope>"#,
        uuid::Uuid::new_v4()
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

/// The demo médecin's card login at the demo DPI: its access token.
async fn card_access_token(base: &str, demo: &Value, ca: &reqwest::Certificate) -> String {
    let card = demo["users"].as_array().and_then(|u| u.iter().find(|u| u["username"] == "demo.medecin")).expect("card");
    let pem = format!("{}{}", card["card"]["chain_pem"].as_str().unwrap(), card["card"]["key_pem"].as_str().unwrap());
    let http = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("card identity"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let dpi = demo["clients"].as_array().and_then(|c| c.iter().find(|c| c["client_id"] == "demo-dpi")).expect("dpi");
    let redirect = dpi["redirect_uris"][0].as_str().unwrap();
    let verifier = "bench-verifier-bench-verifier-bench-verifier-0123";
    let challenge = B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    let mut u = url::Url::parse(&format!("{base}/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "demo-dpi")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let r = http.get(u.as_str()).send().await.expect("authorize");
    let browser = cookie_of(&r, "__Host-vigie-browser").expect("browser cookie");
    let flow = r.headers()["location"].to_str().unwrap().split("flow=").nth(1).unwrap().to_owned();
    let done = http.get(format!("{base}/login/cps?flow={flow}")).header("cookie", browser).send().await.unwrap();
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let t: Value = http
        .post(format!("{base}/token"))
        .basic_auth("demo-dpi", dpi["client_secret"].as_str())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["access_token"].as_str().expect("access token").to_owned()
}

async fn exchange(http: &reqwest::Client, base: &str, secret: &str, access: &str) -> Option<String> {
    let r = http
        .post(format!("{base}/token"))
        .basic_auth("demo-dpi", Some(secret))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", access),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:saml2"),
            ("patient_ins", INS),
        ])
        .send()
        .await
        .ok()?;
    let j: Value = r.json().await.ok()?;
    let xml = B64.decode(j["access_token"].as_str()?).ok()?;
    String::from_utf8(xml).ok()
}

fn main() {
    let secs: u64 = arg("--secs", "10").parse().expect("--secs N");
    let concurrency: usize = arg("--concurrency", "16").parse().expect("--concurrency N");
    let calls: usize = arg("--calls", "200").parse().expect("--calls N");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sandbox = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/dmp-sandbox"));
    let python = sandbox.join(".venv/bin/python");
    assert!(python.is_file(), "run conformance/dmp-sandbox/setup first ({} is missing)", python.display());

    let port = free_port();
    let sandbox_port = free_port();
    let dir = std::env::temp_dir().join(format!("vigie-bench-dmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    cmd.args(["serve", "--data-dir"]).arg(&dir).args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.env("VIGIE_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
    // One load driver (127.0.0.1) opens every login flow: no per-address cap in the way.
    cmd.env("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "1000000");
    cmd.env("VIGIE_DMP__RELAY__BASE_URL", format!("https://127.0.0.1:{sandbox_port}/si-dmp-server/v2/services/"));
    let gw = Kill(cmd.spawn().expect("start vigie"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let demo: Value = loop {
        if let Ok(t) = std::fs::read_to_string(dir.join("demo.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&t)
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            break v;
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stand_in = Command::new(&python);
    stand_in.current_dir(&sandbox).arg("server.py").args(["--listen", &format!("127.0.0.1:{sandbox_port}")]);
    stand_in.arg("--cert").arg(dir.join("tls.crt")).arg("--key").arg(dir.join("tls.key"));
    stand_in.arg("--client-ca").arg(dir.join("dmp-org-ca.pem")).arg("--seal-ca").arg(dir.join("dmp-org-ca.pem"));
    let stand_in = Kill(stand_in.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start the stand-in"));
    let base_url = format!("https://127.0.0.1:{sandbox_port}/si-dmp-server/v2/services/");
    let base = format!("https://localhost:{port}");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        // The stand-in is ready when its TLS port answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", sandbox_port)).await.is_err() {
            assert!(Instant::now() < deadline, "the stand-in did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ca_pem = demo["ca_pem"].as_str().unwrap().as_bytes().to_vec();
        let ca = reqwest::Certificate::from_pem(&ca_pem).expect("demo CA");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        let read = |f: &str| std::fs::read(dir.join(f)).expect("demo DMP files");
        let direct = reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .identity(reqwest::Identity::from_pem(&[read("dmp-auth.pem"), read("dmp-auth.key")].concat()).unwrap())
            .build()
            .expect("mTLS client");
        let access = card_access_token(&base, &demo, &ca).await;
        let secret =
            demo["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == "demo-dpi").unwrap()["client_secret"]
                .as_str()
                .unwrap()
                .to_owned();

        // Token exchanges per second.
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (http, base, secret, access) = (http.clone(), base.clone(), secret.clone(), access.clone());
            let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match exchange(&http, &base, &secret, &access).await {
                        Some(_) => done.fetch_add(1, Ordering::Relaxed),
                        None => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        println!(
            "token exchange (VIHF RSA-2048 signed, audited): {rate:.0}/s at concurrency {concurrency}, {} failed",
            failed.load(Ordering::Relaxed)
        );

        // Relay overhead, one call at a time, relayed and direct calls alternating so that the
        // stand-in's own drift (Python, one thread per connection) weighs on both alike.
        // A TD0.2 through the relay: its answer, when it was sent.
        let relayed_td02 = || async {
            let t = Instant::now();
            let r = http
                .post(format!("{base}/dmp/relay/patients"))
                .bearer_auth(&access)
                .header("content-type", "application/soap+xml; charset=utf-8")
                .header("x-vigie-patient-ins", INS)
                .body(envelope())
                .send()
                .await
                .expect("relay");
            (r, t)
        };
        let relay_call = || async {
            let (r, t) = relayed_td02().await;
            assert_eq!(r.status(), 200, "relayed call accepted");
            let _ = r.bytes().await;
            t.elapsed().as_secs_f64() * 1000.0
        };
        let direct_call = || async {
            let vihf = exchange(&http, &base, &secret, &access).await.expect("a VIHF");
            let body = envelope().replacen(
                "<soap:Header>",
                &format!(r#"<soap:Header><wsse:Security xmlns:wsse="{WSSE}">{vihf}</wsse:Security>"#),
                1,
            );
            let t = Instant::now();
            let r = direct
                .post(format!("{base_url}patients"))
                .header("content-type", "application/soap+xml; charset=utf-8")
                .body(body)
                .send()
                .await
                .expect("stand-in");
            assert_eq!(r.status(), 200, "direct call accepted");
            let _ = r.bytes().await;
            t.elapsed().as_secs_f64() * 1000.0
        };
        // Warm both connections first.
        relay_call().await;
        direct_call().await;
        let (mut relayed, mut straight) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
        for _ in 0..calls {
            relayed.push(relay_call().await);
            straight.push(direct_call().await);
        }
        let (r50, r99) = (pct(&mut relayed, 0.5), pct(&mut relayed, 0.99));
        let (d50, d99) = (pct(&mut straight, 0.5), pct(&mut straight, 0.99));
        println!("TD0.2 through the relay: p50 {r50:.2} ms, p99 {r99:.2} ms ({calls} calls)");
        println!("TD0.2 straight to the stand-in: p50 {d50:.2} ms, p99 {d99:.2} ms");
        println!("relay overhead per call: p50 {:.2} ms", r50 - d50);

        // The DMP goes down: once its breaker is open, the relay answers for it at once.
        drop(stand_in);
        let breaker_call = || async {
            let (r, t) = relayed_td02().await;
            let status = r.status().as_u16();
            let open = r.text().await.unwrap_or_default().contains("circuit breaker is open");
            (status == 503 && open, t.elapsed().as_secs_f64() * 1000.0)
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !breaker_call().await.0 {
            assert!(Instant::now() < deadline, "the DMP's breaker did not open within 60 s");
        }
        let mut open = Vec::with_capacity(calls);
        for _ in 0..calls {
            let (answered_by_breaker, ms) = breaker_call().await;
            assert!(answered_by_breaker, "the breaker answers while the DMP is down");
            open.push(ms);
        }
        println!(
            "TD0.2 while the DMP's breaker is open (503 at once): p50 {:.2} ms, p99 {:.2} ms ({calls} calls)",
            pct(&mut open, 0.5),
            pct(&mut open, 0.99)
        );
    });
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}
