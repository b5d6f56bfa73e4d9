//! Degraded mode figures (issue 7): the release `vigie` binary reaches the PSC stand-in
//! (`conformance/psc-sandbox`, needs Node.js and `npm ci` there) and a card CRL distribution point
//! THROUGH two TCP proxies. A steady loop of card logins (TLS handshake with the card certificate →
//! authorize → `/login/cps` → code → tokens) runs normally, then the bench cuts both links (every
//! connection closed, new ones refused; with `--link drop`, accepted and never answered), keeps the
//! loop going, then restores them. Prints the time from the cut to degraded mode and from the restore
//! to normal (as `/readyz` shows them, polled every 10 ms), the local-login p50/p99 in each phase and
//! the failures (which must be 0).
//!
//! `cargo bench -p vigie-gateway --bench degraded [-- --secs 10 --rate 20 --concurrency 4 --link refuse|drop
//!  --settings test|defaults]`: `test` is the settings of `tests/degraded.rs` (probes every second,
//! 4 s hysteresis), `defaults` those of a deployment (PSC probed every 30 s, 10 s hysteresis).
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use vigie_igc_sante::testpki::{CardSpec, TestPki};

mod common;
#[path = "../tests/degraded/proxy.rs"]
mod proxy;
use common::{Kill, arg, cookie_of, free_port, start_psc_sandbox};
use proxy::Proxy;

/// Serves `crl` over plain HTTP/1.1 (GET and HEAD, the breaker's probe) from a thread.
fn serve_crl(crl: Vec<u8>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                crl.len()
            );
            let _ = conn.write_all(head.as_bytes());
            if !buf[..n].starts_with(b"HEAD ") {
                let _ = conn.write_all(&crl);
            }
        }
    });
    addr
}

/// Starts `vigie serve` with `env`; returns it, its base URL and `demo.json`.
fn start_gateway(port: u16, dir: &std::path::Path, env: &[(String, String)]) -> (Kill, String, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    cmd.args(["serve", "--data-dir"]).arg(dir.join("data")).args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.env("VIGIE_LOG", "error").stdout(Stdio::null()).stderr(Stdio::inherit());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let child = Kill(cmd.spawn().expect("start vigie"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(t) = std::fs::read_to_string(dir.join("data/demo.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&t)
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return (child, format!("https://localhost:{port}"), v);
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const VERIFIER: &str = "bench-verifier-bench-verifier-bench-verifier-0123";

struct Target {
    base: String,
    authorize: String,
    redirect: String,
    secret: String,
    ca: reqwest::Certificate,
    card: reqwest::Identity,
}

/// One card login on a new connection (full TLS handshake with the card's certificate) to tokens.
async fn card_login(t: &Target) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .tls_certs_only([t.ca.clone()])
        .identity(t.card.clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let r = http.get(&t.authorize).send().await.map_err(|e| format!("authorize: {e}"))?;
    let browser = cookie_of(&r, "__Host-vigie-browser").ok_or("no browser cookie")?;
    let flow = r.headers().get("location").and_then(|l| l.to_str().ok()).and_then(|l| l.split("flow=").nth(1));
    let flow = flow.ok_or_else(|| format!("authorize: {}", r.status()))?;
    let d = http.get(format!("{}/login/cps?flow={flow}", t.base)).header("cookie", browser).send().await;
    let d = d.map_err(|e| format!("/login/cps: {e}"))?;
    let location = d.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default();
    let code = url::Url::parse(location)
        .ok()
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()))
        .ok_or_else(|| format!("/login/cps: {} {location}", d.status()))?;
    let tokens = http
        .post(format!("{}/token", t.base))
        .basic_auth("demo-app", Some(&t.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &t.redirect),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .map_err(|e| format!("/token: {e}"))?;
    let status = tokens.status();
    let v: Value = tokens.json().await.map_err(|e| format!("/token {status}: {e}"))?;
    v["id_token"].as_str().map(drop).ok_or_else(|| format!("/token {status}: {v}"))
}

/// Latencies and failures of one phase.
#[derive(Default)]
struct Phase {
    times: Vec<Duration>,
    failures: Vec<String>,
}

impl Phase {
    fn pct(&self, p: f64) -> f64 {
        let mut t = self.times.clone();
        t.sort();
        let i = ((t.len() as f64 * p).ceil() as usize).saturating_sub(1).min(t.len().saturating_sub(1));
        t.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    }

    fn report(&self, label: &str, secs: f64) {
        let max = self.times.iter().max().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
        println!(
            "[degraded] card login, {label:<26} {:>5.1}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} logins, {} failures, {secs:.1} s)",
            self.times.len() as f64 / secs,
            self.pct(0.50),
            self.pct(0.99),
            max,
            self.times.len(),
            self.failures.len()
        );
        for f in self.failures.iter().take(5) {
            println!("[degraded]   failure: {f}");
        }
    }
}

const PHASES: [&str; 3] = ["normal", "link cut", "after restore"];

/// Polls `/readyz` every 10 ms until `want` holds; how long that took since `from`.
async fn until(http: &reqwest::Client, base: &str, from: Instant, want: impl Fn(&Value) -> bool) -> Duration {
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && let Ok(v) = r.json::<Value>().await
            && want(&v)
        {
            return from.elapsed();
        }
        assert!(from.elapsed() < Duration::from_secs(120), "/readyz did not reach the state within 120 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn state(v: &Value, upstream: &str) -> String {
    v["checks"]["upstreams"][upstream]["state"].as_str().unwrap_or_default().to_owned()
}

async fn bench(secs: u64, rate: f64, concurrency: usize, drop_packets: bool, test_settings: bool) {
    let dir = std::env::temp_dir().join(format!("vigie-bench-degraded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let pki = TestPki::generate().expect("test PKI");
    std::fs::write(dir.join("anchors.pem"), pki.anchors_pem()).expect("anchors");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let crl_link = Proxy::start(serve_crl(pki.crl_der(&[], now - 60, now + 86_400).expect("CRL"))).await;
    let crl_url = format!("http://{}/ACI-EL-PP-TEST.crl", crl_link.addr);
    let card = pki.issue(&CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin").crl_url(&crl_url)).expect("card");
    let psc_port = free_port();
    let psc_link = Proxy::start(format!("127.0.0.1:{psc_port}").parse().expect("addr")).await;
    let psc_origin = format!("http://{}", psc_link.addr);

    let mut env: Vec<(String, String)> = [
        ("VIGIE_PSC__ISSUER", format!("{psc_origin}/auth/realms/esante-wallet")),
        ("VIGIE_PSC__CLIENT_ID", "vigie".into()),
        ("VIGIE_PSC__CLIENT_SECRET", "bench-secret".into()),
        ("VIGIE_CARDS__TRUST__ANCHORS", format!("[{:?}]", dir.join("anchors.pem").display().to_string())),
        ("VIGIE_CARDS__TRUST__CRL_URLS", format!("[{crl_url:?}]")),
        ("VIGIE_CARDS__TRUST__CRL_CACHE_DIR", dir.join("crl-cache").display().to_string()),
        ("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "1000000".into()),
        ("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "1000000".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if test_settings {
        for (k, v) in [
            ("VIGIE_PSC__PROBE_INTERVAL_SECS", "1"),
            ("VIGIE_PSC__TIMEOUT_MS", "1000"),
            ("VIGIE_CARDS__TRUST__REFRESH_SECS", "1"),
            ("VIGIE_HEALTH__MIN_STATE_MS", "4000"),
            ("VIGIE_HEALTH__PROBE_INTERVAL_MS", "1000"),
            ("VIGIE_HEALTH__BACKOFF_INITIAL_MS", "200"),
            ("VIGIE_HEALTH__BACKOFF_MAX_MS", "1000"),
            ("VIGIE_HEALTH__PROBE_TIMEOUT_MS", "1000"),
        ] {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    let port = free_port();
    let (_gw, base, demo) = start_gateway(port, &dir, &env);
    let (_sandbox, _) = start_psc_sandbox(psc_port, Some(&psc_origin), port);

    let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().unwrap_or_default().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = format!("{base}/demo-app/callback");
    let challenge = B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, VERIFIER.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{base}/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "demo-app")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let card = reqwest::Identity::from_pem(format!("{}{}", card.chain_pem, card.key_pem).as_bytes()).expect("card");
    let secret = demo["clients"][0]["client_secret"].as_str().unwrap_or_default().to_owned();
    let target = Arc::new(Target { base: base.clone(), authorize: authorize.to_string(), redirect, secret, ca, card });

    // Everything up: both breakers closed, not degraded, a card logs in (the CRL is cached).
    let started = Instant::now();
    until(&http, &base, started, |v| state(v, "psc") == "closed" && state(v, "crl") == "closed").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = card_login(&target).await {
        assert!(Instant::now() < deadline, "no card login within 30 s: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A fresh login page: whether it offers e-CPS, and how `/login/psc` answers for its flow.
    let offered = |http: reqwest::Client, t: Arc<Target>| async move {
        let r = http.get(&t.authorize).send().await.ok()?;
        let (browser, loc) = (cookie_of(&r, "__Host-vigie-browser")?, r.headers().get("location")?.to_str().ok()?);
        let flow = loc.split("flow=").nth(1)?.to_owned();
        let page = http.get(format!("{}{loc}", t.base)).header("cookie", &browser).send().await.ok()?;
        let offered = page.text().await.ok()?.contains("/login/psc?flow=");
        let asked = Instant::now();
        let go = http.get(format!("{}/login/psc?flow={flow}", t.base)).header("cookie", browser).send().await.ok()?;
        Some((offered, go.status().as_u16(), asked.elapsed()))
    };
    let before = offered(http.clone(), target.clone()).await;
    assert!(before.is_some_and(|(o, s, _)| o && s == 302), "e-CPS is offered before the cut: {before:?}");

    // The loop: `concurrency` tasks paced to `rate` logins/s in all, each login counted in the
    // phase it started in.
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (t, phase, stop) = (target.clone(), phase.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut out: [Phase; 3] = Default::default();
            let period = Duration::from_secs_f64(concurrency as f64 / rate);
            let mut next = Instant::now() + period.mul_f64(i as f64 / concurrency as f64);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(next.into()).await;
                next += period;
                let p = usize::from(phase.load(Ordering::Relaxed));
                let t0 = Instant::now();
                match card_login(&t).await {
                    Ok(()) => out[p].times.push(t0.elapsed()),
                    Err(e) => out[p].failures.push(e),
                }
            }
            out
        }));
    }
    let mut spans = [0.0f64; 3];
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    spans[0] = t0.elapsed().as_secs_f64();

    // The cut.
    if drop_packets {
        psc_link.blackhole().await;
        crl_link.blackhole().await;
    } else {
        psc_link.cut().await;
        crl_link.cut().await;
    }
    let cut_at = Instant::now();
    phase.store(1, Ordering::Relaxed);
    let (psc_open, crl_open, degraded) = tokio::join!(
        until(&http, &base, cut_at, |v| state(v, "psc") == "open"),
        until(&http, &base, cut_at, |v| state(v, "crl") == "open"),
        until(&http, &base, cut_at, |v| v["degraded"] == true),
    );
    let during = offered(http.clone(), target.clone()).await;
    // Degraded for at least `secs`, and past the hysteresis (10 s at most) so that the restore
    // measures the return itself.
    let hold = Duration::from_secs(secs).max(psc_open.max(crl_open) + Duration::from_secs(11));
    tokio::time::sleep(hold.saturating_sub(cut_at.elapsed())).await;
    spans[1] = cut_at.elapsed().as_secs_f64();

    psc_link.restore().await;
    crl_link.restore().await;
    let restored_at = Instant::now();
    phase.store(2, Ordering::Relaxed);
    let (psc_closed, crl_closed, normal) = tokio::join!(
        until(&http, &base, restored_at, |v| state(v, "psc") == "closed"),
        until(&http, &base, restored_at, |v| state(v, "crl") == "closed"),
        until(&http, &base, restored_at, |v| v["degraded"] == false),
    );
    let after = offered(http.clone(), target.clone()).await;
    tokio::time::sleep((Duration::from_secs(secs / 2) + normal).saturating_sub(restored_at.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    spans[2] = restored_at.elapsed().as_secs_f64();
    let mut phases: [Phase; 3] = Default::default();
    for task in tasks {
        for (all, one) in phases.iter_mut().zip(task.await.expect("login task")) {
            all.times.extend(one.times);
            all.failures.extend(one.failures);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let link = if drop_packets { "dropped (accepted, never answered)" } else { "refused (closed + refused)" };
    println!(
        "[degraded] link {link}; cut → PSC open {psc_open:.2?}, CRL open {crl_open:.2?}, /readyz degraded {degraded:.2?}"
    );
    println!(
        "[degraded] restore → PSC closed {psc_closed:.2?}, CRL closed {crl_closed:.2?}, /readyz normal {normal:.2?} \
         (link cut for {:.1} s)",
        spans[1]
    );
    let show = |o: Option<(bool, u16, Duration)>| match o {
        Some((offered, status, took)) => format!("e-CPS offered {offered}, /login/psc {status} in {took:.2?}"),
        None => "no login page".to_owned(),
    };
    println!("[degraded] during the cut: {}; after restore: {}", show(during), show(after));
    for ((p, label), secs) in phases.iter().zip(PHASES).zip(spans) {
        p.report(label, secs);
    }
    let failures: usize = phases.iter().map(|p| p.failures.len()).sum();
    assert_eq!(failures, 0, "local logins failed");
    assert!(during.is_some_and(|(o, s, _)| !o && s == 503), "e-CPS withdrawn during the cut: {during:?}");
    assert!(after.is_some_and(|(o, s, _)| o && s == 302), "e-CPS offered again after restore: {after:?}");
}

fn main() {
    let secs: u64 = arg("--secs", "10").parse().expect("--secs N");
    let rate: f64 = arg("--rate", "20").parse().expect("--rate logins/s");
    let concurrency: usize = arg("--concurrency", "4").parse().expect("--concurrency N");
    let link = arg("--link", "refuse");
    let settings = arg("--settings", "test");
    assert!(["refuse", "drop"].contains(&link.as_str()), "--link refuse|drop");
    assert!(["test", "defaults"].contains(&settings.as_str()), "--settings test|defaults");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    println!(
        "Vigie degraded-mode benchmark: card logins at {rate}/s ({concurrency} loops), {secs} s normal, link {link}, \
         {settings} settings; driver, gateway and stand-ins on this machine"
    );
    rt.block_on(bench(secs, rate, concurrency, link == "drop", settings == "test"));
}
