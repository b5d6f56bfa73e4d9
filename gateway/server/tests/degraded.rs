//! Degraded mode end to end (issue 7): the real `vigie` binary, the PSC stand-in
//! (`conformance/psc-sandbox`) and a CRL distribution point, both reached THROUGH a TCP proxy that
//! the test cuts (every connection closed, new ones refused) and restores. While the link is cut,
//! card and FIDO2 logins go on with zero failures, sessions refresh, userinfo answers, e-CPS is
//! not offered; after restore a PSC login succeeds again; each switch is in `/metrics` and the
//! audit trail. A soak flaps the link every 2–3 s and counts the mode switches.
//! The figures (time to degraded / back to normal, local-login p50/p99, how fast `/login/psc`
//! answers) are measured by `benches/degraded.rs`; these tests check outcomes, not speed.
//! `VIGIE_SOAK_SECS` makes the soak longer (default 30 s).
//! Needs Node.js and `npm ci` in conformance/psc-sandbox (as `tests/psc_login.rs`).
use crate::common;
use crate::proxy;
use crate::softkey;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::crl::CrlServer;
use common::fido2::add_key;
use common::psc::PscSandbox;
use common::*;
use proxy::Proxy;
use serde_json::Value;
use softkey::{SoftKey, VIRTUAL_AAGUID};
use vigie_igc_sante::testpki::{CardSpec, TestCard, TestPki};

const CLIENT_ID: &str = "vigie";
const CLIENT_SECRET: &str = "s3cret-of-the-degraded-test-client";
/// The hysteresis of the gateways under test (`health.min_state_ms`).
const MIN_STATE_MS: u64 = 4000;

/// The tests take turns: each starts a gateway and stand-ins, on a machine with few cores.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The gateway, the stand-in and the CRL source behind their proxies; a card and a FIDO2 key.
struct World {
    gw: Gateway,
    psc: PscSandbox,
    psc_link: Proxy,
    crl_link: Proxy,
    _crl: CrlServer,
    card: TestCard,
    key: tokio::sync::Mutex<SoftKey>,
    /// A session opened before any cut, and its tokens.
    session: (Authz, Tokens),
    /// Audit lines before the test proper (PSC's breaker may open while the stand-in starts).
    audit_before: usize,
    /// The ops listener (`server.ops_listen`): `/readyz` with each upstream's last error.
    ops: String,
    _pki_dir: PathBuf,
}

fn toml_list(items: &[&str]) -> String {
    format!("[{}]", items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", "))
}

/// The world, with `extra` configuration on top of the tests' settings.
async fn world(name: &str, extra: &[(&str, &str)]) -> World {
    let pki_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("degraded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pki_dir);
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = TestPki::generate().expect("test PKI");
    std::fs::write(pki_dir.join("anchors.pem"), pki.anchors_pem()).unwrap();
    let t = now();
    let crl = CrlServer::start(pki.crl_der(&[], t - 60, t + 3600).unwrap()).await;
    let crl_link = Proxy::start(crl.addr).await;
    let crl_url = format!("http://{}/ACI-EL-PP-TEST.crl", crl_link.addr);
    let card = pki
        .issue(&CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin").profession(10, "SM26").crl_url(&crl_url))
        .expect("a test card");

    let psc_port = free_port();
    let psc_link = Proxy::start(format!("127.0.0.1:{psc_port}").parse().unwrap()).await;
    let psc_origin = format!("http://{}", psc_link.addr);
    let ops = format!("127.0.0.1:{}", free_port());
    let env = [
        ("VIGIE_PSC__ISSUER".to_owned(), format!("{psc_origin}/auth/realms/esante-wallet")),
        ("VIGIE_PSC__CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
        ("VIGIE_PSC__CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS".to_owned(), "1".to_owned()),
        ("VIGIE_PSC__TIMEOUT_MS".to_owned(), "1000".to_owned()),
        ("VIGIE_CARDS__TRUST__ANCHORS".to_owned(), toml_list(&[&pki_dir.join("anchors.pem").display().to_string()])),
        ("VIGIE_CARDS__TRUST__CRL_URLS".to_owned(), toml_list(&[&crl_url])),
        ("VIGIE_CARDS__TRUST__CRL_CACHE_DIR".to_owned(), pki_dir.join("crl-cache").display().to_string()),
        ("VIGIE_CARDS__TRUST__REFRESH_SECS".to_owned(), "1".to_owned()),
        // One workstation (127.0.0.1) logs in many times: no per-IP limit in the way.
        ("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP".to_owned(), "1000000".to_owned()),
        ("VIGIE_LOGIN__MAX_FLOWS_PER_IP".to_owned(), "1000000".to_owned()),
        ("VIGIE_HEALTH__MIN_STATE_MS".to_owned(), MIN_STATE_MS.to_string()),
        ("VIGIE_HEALTH__PROBE_INTERVAL_MS".to_owned(), "1000".to_owned()),
        ("VIGIE_HEALTH__BACKOFF_INITIAL_MS".to_owned(), "200".to_owned()),
        ("VIGIE_HEALTH__BACKOFF_MAX_MS".to_owned(), "1000".to_owned()),
        ("VIGIE_HEALTH__PROBE_TIMEOUT_MS".to_owned(), "1000".to_owned()),
        ("VIGIE_SERVER__OPS_LISTEN".to_owned(), ops.clone()),
    ];
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend_from_slice(extra);
    let gw = Gateway::start(&env).await;
    let psc = PscSandbox::start_behind(psc_port, &psc_origin, CLIENT_SECRET, &[gw.port]);

    // A session opened with password + TOTP, which then registers a FIDO2 key.
    let (mut b, _, a, tokens) = logged_in(&gw, "demo-app", &gw.all_usernames()).await;
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé du poste").await;

    let w = World {
        gw,
        psc,
        psc_link,
        crl_link,
        _crl: crl,
        card,
        key: tokio::sync::Mutex::new(key),
        session: (a, tokens),
        audit_before: 0,
        ops,
        _pki_dir: pki_dir,
    };
    // Everything up: both breakers closed and the CRL in the cache.
    w.until_state("psc", "closed", 30).await;
    w.until_state("crl", "closed", 30).await;
    eventually(30, || async { w.card_login().await.ok() }).await.expect("a card logs in once the CRL is cached");
    let mut w = w;
    w.audit_before = w.gw.settled_audit().await.len();
    w
}

impl World {
    /// `/readyz` on the ops listener (the public port keeps the upstreams' errors to the log).
    async fn readyz(&self) -> Value {
        let url = format!("http://{}/readyz", self.ops);
        reqwest::get(url).await.expect("/readyz").json().await.expect("JSON")
    }

    async fn state(&self, upstream: &str) -> String {
        self.readyz().await["checks"]["upstreams"][upstream]["state"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `upstream`'s breaker is in `state`; how long that took.
    async fn until_state(&self, upstream: &str, state: &str, secs: u64) -> Duration {
        let started = Instant::now();
        loop {
            if self.state(upstream).await == state {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "{upstream} did not become {state} within {secs} s: {}",
                self.readyz().await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// One card login on a fresh connection, to a code redeemed for tokens: its duration.
    async fn card_login(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let mut b = self.gw.browser_with_card(&self.card.chain_pem, &self.card.key_pem);
        let a = Authz::new(&self.gw, "demo-dpi");
        let r = b.authorize(&a).await;
        if r.status != 303 {
            return Err(format!("authorize: {} {}", r.status, r.body));
        }
        let flow = query_of(&format!("https://x{}", r.location())).get("flow").cloned().ok_or("no login flow")?;
        let done = b.get(&format!("/login/cps?flow={flow}")).await;
        if done.status != 303 {
            return Err(format!("card: {} {}", done.status, done.body));
        }
        let code = done.redirect_params().get("code").cloned().ok_or_else(|| format!("card: {}", done.body))?;
        let t = a.redeem(&self.gw, &code).await;
        if t.status != 200 {
            return Err(format!("card tokens: {}", t.body));
        }
        Ok(started.elapsed())
    }

    /// One FIDO2 login from the login page, to tokens: its duration.
    async fn key_login(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let mut b = self.gw.browser();
        let a = Authz::new(&self.gw, "demo-app");
        let r = b.authorize(&a).await;
        if r.status != 303 {
            return Err(format!("authorize: {} {}", r.status, r.body));
        }
        let page = b.get(&r.location()).await;
        let (flow, csrf) = (page.hidden("flow").ok_or("no flow")?, page.hidden("csrf").ok_or("no csrf")?);
        let opts = b.post_form("/login/fido2/options", &[("flow", &flow), ("csrf", &csrf)]).await;
        if opts.status != 200 {
            return Err(format!("fido2 options: {}", opts.body));
        }
        let assertion = self.key.lock().await.assert(&opts.json());
        let done = b
            .post_form("/login/fido2", &[("flow", &flow), ("csrf", &csrf), ("credential", &assertion.to_string())])
            .await;
        if done.status != 303 {
            return Err(format!("fido2: {} {}", done.status, done.body));
        }
        let code = done.redirect_params().get("code").cloned().ok_or_else(|| format!("fido2: {}", done.body))?;
        let t = a.redeem(&self.gw, &code).await;
        if t.status != 200 {
            return Err(format!("fido2 tokens: {}", t.body));
        }
        Ok(started.elapsed())
    }

    /// Card and FIDO2 logins, alternately, until `stop` says so (it is given how many were
    /// made): durations and failures.
    async fn login_loop(&self, stop: impl Fn(usize) -> bool) -> (Vec<Duration>, Vec<String>) {
        let (mut times, mut failures) = (Vec::new(), Vec::new());
        let mut i = 0usize;
        while !stop(i) {
            let r = if i.is_multiple_of(2) { self.card_login().await } else { self.key_login().await };
            match r {
                Ok(d) => times.push(d),
                Err(e) => failures.push(e),
            }
            i += 1;
        }
        (times, failures)
    }

    /// Once the link is down: logins while the monitor notices (both breakers open within `secs`),
    /// then [`DEGRADED_LOGINS`] in degraded mode, none failing: their durations.
    async fn logins_until_degraded(&self, secs: u64) -> Vec<Duration> {
        let done = std::sync::atomic::AtomicBool::new(false);
        let ((mut times, failed), ()) =
            tokio::join!(self.login_loop(|_| done.load(std::sync::atomic::Ordering::SeqCst)), async {
                self.until_state("psc", "open", secs).await;
                self.until_state("crl", "open", secs).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
        assert!(failed.is_empty(), "{} local logins failed while the link went down: {failed:?}", failed.len());
        let (degraded, failed) = self.login_loop(|n| n >= DEGRADED_LOGINS).await;
        assert!(failed.is_empty(), "{} local logins failed in degraded mode: {failed:?}", failed.len());
        times.extend(degraded);
        times
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.ops)).await.unwrap().text().await.unwrap()
    }

    /// The login page of a fresh flow of `demo-app`.
    async fn login_page(&self) -> (Browser<'_>, String, String) {
        let mut b = self.gw.browser();
        let r = b.authorize(&Authz::new(&self.gw, "demo-app")).await;
        let location = r.location();
        let page = b.get(&location).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let flow = query_of(&format!("https://x{location}"))["flow"].clone();
        (b, page.body, flow)
    }

    /// A login through PSC (e-CPS at the stand-in, through the proxy), to tokens.
    async fn psc_login(&self) -> Result<(), String> {
        self.psc.next_login("810001234567", "ecps").await;
        let (mut b, page, flow) = self.login_page().await;
        if !page.contains("/login/psc?flow=") {
            return Err("e-CPS not offered".into());
        }
        let go = b.get(&format!("/login/psc?flow={flow}")).await;
        if go.status != 302 {
            return Err(format!("/login/psc: {} {}", go.status, go.body));
        }
        let mut url = go.location();
        for _ in 0..10 {
            let r = b.get(&url).await;
            if url.contains("/login/psc/callback") {
                let r = if r.status == 302 && r.location().starts_with(&b.gw.issuer) {
                    b.get(&r.location()).await
                } else {
                    r
                };
                return match r.status == 303 && r.redirect_params().contains_key("code") {
                    true => Ok(()),
                    false => Err(format!("callback: {} {}", r.status, r.body)),
                };
            }
            if !matches!(r.status, 302 | 303) {
                return Err(format!("at PSC: {} {}", r.status, r.body));
            }
            let next = r.location();
            url = if next.starts_with('/') { format!("{}{next}", self.psc_link_origin()) } else { next };
        }
        Err("PSC did not send the browser back".into())
    }

    fn psc_link_origin(&self) -> String {
        format!("http://{}", self.psc_link.addr)
    }

    async fn cut(&self) {
        self.psc_link.cut().await;
        self.crl_link.cut().await;
    }

    async fn restore(&self) {
        self.psc_link.restore().await;
        self.crl_link.restore().await;
    }

    /// Mode switches of `upstream` in the audit trail (into degraded, back to normal) since the
    /// world was ready, every one made so far (the settled trail: these are counted).
    async fn switches(&self, upstream: &str) -> Vec<String> {
        self.gw
            .settled_audit()
            .await
            .into_iter()
            .skip(self.audit_before)
            .filter(|l| l["kind"] == "upstream_state" && l["object"] == upstream)
            .filter_map(|l| l["method"].as_str().map(str::to_owned))
            .filter(|m| m.starts_with("closed->") || m.ends_with("->closed"))
            .collect()
    }
}

/// Logins made in degraded mode, once both breakers are open.
const DEGRADED_LOGINS: usize = 10;

/// `/login/psc` in degraded mode: a 503 saying what works instead, audited as the breaker's
/// refusal (the answer of a gateway that tried PSC would be a 502 after PSC's timeout).
async fn psc_refused_at_once(w: &World, b: &mut Browser<'_>, flow: &str) {
    let go = b.get(&format!("/login/psc?flow={flow}")).await;
    assert_eq!(go.status, 503, "{}", go.body);
    assert!(go.body.contains("utilisez votre carte CPS/CPE ou votre clé FIDO2"), "{}", go.body);
    let request_id = go.header("x-request-id").expect("a request id").to_owned();
    let line = w.gw.audit_line(|l| l["kind"] == "login" && l["request_id"] == request_id.as_str()).await;
    assert_eq!((&line["method"], &line["reason"]), (&Value::from("ecps"), &Value::from("psc:breaker_open")), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psc_down_card_and_fido2_logins_sessions_and_userinfo_go_on_and_e_cps_returns_after_restore() {
    let _turn = TURN.lock().await;
    let w = world("cut", &[]).await;
    assert!(w.psc.issuer.starts_with(&w.psc_link_origin()));
    w.psc_login().await.expect("a PSC login works before the cut");

    // Normal: local logins.
    let (_, failed) = w.login_loop(|n| n >= DEGRADED_LOGINS).await;
    assert!(failed.is_empty(), "local logins fail with everything up: {failed:?}");

    // The link goes down; logins keep running while the monitor notices, and once degraded.
    w.cut().await;
    w.logins_until_degraded(20).await;
    let ready = w.readyz().await;
    assert_eq!(ready["status"], "ready", "an open breaker does not make Vigie unready: {ready}");
    assert_eq!(ready["degraded"], true, "{ready}");
    let psc = &ready["checks"]["upstreams"]["psc"];
    assert!(psc["consecutive_failures"].as_u64().is_some_and(|n| n >= 1), "{psc}");
    // The link refuses connections (its proxy's socket is closed): that is the probe's error.
    let refused = psc["last_error"].as_str().is_some_and(|e| e.contains("Connection refused"));
    assert!(refused && psc["since"].is_string(), "{psc}");

    // The session opened before the cut refreshes its tokens; userinfo answers.
    let (_, tokens) = &w.session;
    let refreshed =
        w.gw.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh)]).await;
    assert_eq!(refreshed.status, 200, "refresh during the cut: {}", refreshed.body);
    let access = refreshed.json()["access_token"].as_str().expect("access_token").to_owned();
    let info = w.gw.userinfo(&access).await;
    assert_eq!(info.status, 200, "userinfo during the cut: {}", info.body);

    // The login page says e-CPS is unavailable and what works instead; /login/psc answers at once.
    let (mut b, page, flow) = w.login_page().await;
    assert!(!page.contains("/login/psc?flow="), "e-CPS is not offered: {page}");
    assert!(
        page.contains("e-CPS (Pro Santé Connect) est indisponible pour le moment : utilisez votre carte CPS/CPE ou votre clé FIDO2"),
        "{page}"
    );
    assert!(page.contains("/login/cps?flow=") && page.contains("/login/fido2/options"), "card and key offered: {page}");
    psc_refused_at_once(&w, &mut b, &flow).await;
    let m = w.metrics().await;
    assert!(m.contains(r#"vigie_upstream_state{upstream="psc"} 2"#), "{m}");
    assert!(m.contains(r#"vigie_upstream_state{upstream="crl"} 2"#), "{m}");

    // The link returns: normal mode without a restart, and a PSC login succeeds.
    w.restore().await;
    w.until_state("psc", "closed", 30).await;
    w.until_state("crl", "closed", 30).await;
    w.psc_login().await.expect("a PSC login succeeds after restore");
    let m = w.metrics().await;
    assert!(m.contains(r#"vigie_upstream_state{upstream="psc"} 0"#), "{m}");
    for to in ["open", "half_open", "closed"] {
        assert!(m.contains(&format!(r#"vigie_upstream_transitions_total{{upstream="psc",to="{to}"}}"#)), "{to}: {m}");
    }
    // `/readyz` may show the last switch just before its audit line is queued: wait for it.
    for upstream in ["psc", "crl"] {
        let switches = eventually(5, || async {
            let s = w.switches(upstream).await;
            (s.len() >= 2).then_some(s)
        })
        .await
        .unwrap_or_else(|| panic!("the audit trail has {upstream}'s switches"));
        assert_eq!(switches, ["closed->open", "half_open->closed"], "{upstream}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_a_link_flapping_every_few_seconds_fails_no_local_login_and_does_not_flap_the_mode() {
    let _turn = TURN.lock().await;
    let secs: u64 = std::env::var("VIGIE_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let w = world("soak", &[]).await;
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let changes = std::sync::atomic::AtomicU32::new(0);
    let ((times, failed), ()) = tokio::join!(w.login_loop(|_| Instant::now() > until), async {
        let mut up = true;
        let mut n = 0u64;
        while Instant::now() < until {
            // 2 to 3 s between two changes of the link: the scenario's own clock, shorter than the
            // hysteresis (`MIN_STATE_MS`) so that a mode following the link would flap.
            n += 1;
            tokio::time::sleep(Duration::from_millis(2000 + (n * 397) % 1000)).await;
            if up {
                w.cut().await;
            } else {
                w.restore().await;
            }
            changes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            up = !up;
        }
        if !up {
            w.restore().await;
        }
    });
    let changes = changes.into_inner();
    let switches = w.switches("psc").await;
    let crl_switches = w.switches("crl").await;
    // Measured after reading the switches: none of them is later than `elapsed`.
    let elapsed = started.elapsed();
    // One switch at most per hysteresis period, plus the first one.
    let bound = elapsed.as_millis() as u64 / MIN_STATE_MS + 1;
    assert!(failed.is_empty(), "{} local logins failed while the link flapped: {failed:?}", failed.len());
    // One login a second is a tenth of what one loop makes on a loaded 2-core machine: a floor
    // that only a loop stalled on the link (not a slow machine) falls under.
    assert!(times.len() >= secs as usize, "logins ran all along: {} in {secs} s", times.len());
    // Without hysteresis each change of the link would switch the mode: the bound is a real limit.
    assert!(u64::from(changes) > bound, "the link changed more often ({changes}) than the mode may switch ({bound})");
    assert!(!switches.is_empty(), "the flapping link put PSC in degraded mode at least once");
    assert!(switches.len() as u64 <= bound, "{} mode switches in {elapsed:?}: {switches:?}", switches.len());
    assert!(crl_switches.len() as u64 <= bound, "{crl_switches:?}");
}

/// A DMP SOAP 1.2 envelope (TD0.2) as a DPI sends it to the relay.
fn td02() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><wsa:Action soap:mustUnderstand="true">urn:hl7-org:v3:PRPA_IN201307UV02</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID></soap:Header><soap:Body><PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"/></soap:Body></soap:Envelope>"#,
        random(16)
    )
}

/// What the relay answers while the DMP's breaker is open.
const DMP_BREAKER_OPEN: &str =
    "the DMP is unreachable at the moment (its circuit breaker is open after repeated failures); try again later";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmp_down_answers_503_problem_at_once_and_its_breaker_closes_when_it_answers_again() {
    let _turn = TURN.lock().await;
    // The DMP's address: nothing listens there at first.
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}/si-dmp-server/v2/services/");
    let ops = format!("127.0.0.1:{}", free_port());
    let gw = Gateway::start(&[
        ("VIGIE_DMP__RELAY__BASE_URL", base.as_str()),
        ("VIGIE_SERVER__OPS_LISTEN", ops.as_str()),
        ("VIGIE_HEALTH__MIN_STATE_MS", "2000"),
        ("VIGIE_HEALTH__PROBE_INTERVAL_MS", "500"),
        ("VIGIE_HEALTH__BACKOFF_INITIAL_MS", "100"),
        ("VIGIE_HEALTH__BACKOFF_MAX_MS", "500"),
    ])
    .await;
    // The ops listener's `/readyz`: with each upstream's last error.
    let readyz =
        || async { reqwest::get(format!("http://{ops}/readyz")).await.unwrap().json::<Value>().await.unwrap() };
    eventually(15, || async { (readyz().await["checks"]["upstreams"]["dmp"]["state"] == "open").then_some(()) })
        .await
        .expect("the DMP's breaker opens when its address refuses connections");
    let ready = readyz().await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let dmp = &ready["checks"]["upstreams"]["dmp"];
    let refused =
        dmp["last_error"].as_str().is_some_and(|e| e.contains(&port.to_string()) && e.contains("Connection refused"));
    assert!(refused, "{dmp}");
    assert!(dmp["consecutive_failures"].as_u64().is_some_and(|n| n >= 3), "{dmp}");

    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-dpi");
    let code = b.sign_in_with_card(&a).await;
    let tokens = redeem(&gw, &a, &code).await;
    let r = gw
        .http()
        .post(gw.url("/dmp/relay/patients"))
        .bearer_auth(&tokens.access)
        .header("content-type", "application/soap+xml; charset=utf-8")
        .header("x-vigie-patient-ins", "207058575627097")
        .body(td02())
        .send()
        .await
        .unwrap();
    let r = Resp::of(r).await;
    // The breaker answers, not a call to the DMP (which would be "the DMP is unreachable at the
    // moment; try again later", after trying).
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["detail"], DMP_BREAKER_OPEN, "{}", r.body);
    let line = gw.audit_line(|l| l["kind"] == "dmp_call" && l["outcome"] == "failure").await;
    assert!(line["reason"].as_str().is_some_and(|m| m.contains(&format!("; {DMP_BREAKER_OPEN}; "))), "{line}");

    // Something answers at the DMP's address again: the breaker closes, no restart.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the DMP's port");
    let accept = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    eventually(15, || async { (readyz().await["checks"]["upstreams"]["dmp"]["state"] == "closed").then_some(()) })
        .await
        .expect("the DMP's breaker closes once its address answers");
    accept.abort();
    let m = reqwest::get(format!("http://{ops}/metrics")).await.unwrap().text().await.unwrap();
    assert!(m.contains(r#"vigie_upstream_state{upstream="dmp"} 0"#), "{m}");
    assert!(m.contains(r#"vigie_upstream_transitions_total{upstream="dmp",to="open"} 1"#), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_dropping_packets_opens_the_breakers_by_timeouts_and_local_logins_never_wait() {
    let _turn = TURN.lock().await;
    // A PSC call or a CRL fetch on the dead link would wait 20 s (only the probes keep their 1 s
    // limit, so that the breakers open as fast as before).
    let w =
        world("blackhole", &[("VIGIE_PSC__TIMEOUT_MS", "20000"), ("VIGIE_CARDS__TRUST__FETCH_TIMEOUT_MS", "20000")])
            .await;
    let (_, failed) = w.login_loop(|n| n >= DEGRADED_LOGINS).await;
    assert!(failed.is_empty(), "{failed:?}");

    // Nothing answers any more, and nothing refuses either: only the probes' timeouts tell.
    w.psc_link.blackhole().await;
    w.crl_link.blackhole().await;
    let during = w.logins_until_degraded(30).await;
    let slowest = during.iter().max().copied().unwrap_or_default();
    // 10 s: ten times a login on a loaded 2-core machine, half of what a login waiting on the dead
    // link would take. The logins' figures are in `benches/degraded.rs --link drop`.
    assert!(slowest < Duration::from_secs(10), "a local login waited on the dead link: {slowest:?}");
    let psc = &w.readyz().await["checks"]["upstreams"]["psc"];
    assert_eq!(psc["last_error"], "no answer within 1000 ms", "the probe's own timeout: {psc}");
    let (mut b, page, flow) = w.login_page().await;
    assert!(!page.contains("/login/psc?flow="), "{page}");
    psc_refused_at_once(&w, &mut b, &flow).await;

    w.restore().await;
    w.until_state("psc", "closed", 30).await;
    w.psc_login().await.expect("a PSC login succeeds after the link returns");
}
