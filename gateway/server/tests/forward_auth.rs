//! Forward-auth through a real nginx and a real Traefik (configured with docs/forward-auth.md's
//! snippets) in front of an app that echoes the headers it gets: the app is reached only after a
//! login at Vigie, sees Vigie's identity headers and never a client's, a sensitive app asks for a
//! card, a logout ends access through both proxies, codes are single-use and `rd` goes nowhere
//! but a configured app.
use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::echo::EchoApp;
use common::proxy_process::ProxyProcess;
use common::*;
use serde_json::Value;

const PHR: &str = "urn:vigie:loa:2fa-phr";
/// The apps' hosts: loopback addresses (an `http` app is allowed on the loopback only), one per
/// app so that each has its own cookie jar, as separate hosts do in a browser.
const LAB: &str = "127.0.0.2";
const PHARMA: &str = "127.0.0.3";
const RH: &str = "127.0.0.4";
/// Headers a client forges, in the spellings app frameworks read as `X-Vigie-User`.
const FORGED: [(&str, &str); 5] = [
    ("X-Vigie-User", "forged"),
    ("X-Vigie-Level", "forged"),
    ("X-Vigie-Roles", "forged"),
    ("X_Vigie_User", "forged"),
    ("X.Vigie.User", "forged"),
];

/// The gateway, the app behind both proxies, nginx (hosts `lab` and the sensitive `pharma`) and
/// Traefik (host `rh`).
struct Estate {
    gw: Gateway,
    /// Vigie's plain-HTTP listener, where the proxies call it.
    vigie: String,
    nginx: ProxyProcess,
    traefik: ProxyProcess,
    _app: EchoApp,
}

impl Estate {
    async fn start() -> Estate {
        Estate::start_with(&[]).await
    }

    /// With more settings for the gateway (`VIGIE_…` variables).
    async fn start_with(extra: &[(&str, &str)]) -> Estate {
        let app = EchoApp::start().await;
        let (plain, nginx_port, traefik_port) = (free_port(), free_port(), free_port());
        let vigie = format!("127.0.0.1:{plain}");
        let lab = format!("http://{LAB}:{nginx_port}");
        let pharma = format!("http://{PHARMA}:{nginx_port}");
        let rh = format!("http://{RH}:{traefik_port}");
        let client = |id: &str, url: &str, sensitive: bool| {
            format!(
                r#"{{client_id="{id}", auth_method="none", redirect_uris=["{url}/.vigie/callback"], sensitive={sensitive}}}"#
            )
        };
        let clients = format!(
            "[{}, {}, {}]",
            client("lab", &lab, false),
            client("pharma", &pharma, true),
            client("rh", &rh, false)
        );
        let apps = format!(
            r#"{{apps=[{{url="{lab}", client_id="lab"}}, {{url="{pharma}", client_id="pharma"}}, {{url="{rh}/", client_id="rh"}}]}}"#
        );
        let mut env = vec![
            ("VIGIE_SERVER__PLAIN_HTTP_LISTEN", vigie.as_str()),
            ("VIGIE_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#),
            ("VIGIE_CLIENTS", &clients),
            ("VIGIE_FORWARD_AUTH", &apps),
        ];
        env.extend_from_slice(extra);
        let gw = Gateway::start(&env).await;
        let backend = app.addr.to_string();
        let nginx = common::nginx::start(nginx_port, &vigie, &backend, &[LAB, PHARMA]).await;
        let traefik = common::traefik::start(traefik_port, &vigie, &backend, RH).await;
        Estate { gw, vigie, nginx, traefik, _app: app }
    }

    fn lab(&self, path: &str) -> String {
        format!("http://{LAB}:{}{path}", self.nginx.port)
    }

    fn pharma(&self, path: &str) -> String {
        format!("http://{PHARMA}:{}{path}", self.nginx.port)
    }

    fn rh(&self, path: &str) -> String {
        format!("http://{RH}:{}{path}", self.traefik.port)
    }
}

/// The browser on the apps' side: one cookie jar per host, as browsers keep them.
#[derive(Clone)]
struct AppSide {
    http: reqwest::Client,
    jars: BTreeMap<String, BTreeMap<String, String>>,
}

impl AppSide {
    fn new() -> AppSide {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        AppSide { http, jars: BTreeMap::new() }
    }

    fn host(url: &str) -> String {
        url::Url::parse(url).expect("URL").host_str().expect("host").to_owned()
    }

    async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> Resp {
        let host = Self::host(url);
        let mut req = self.http.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let jar = self.jars.entry(host.clone()).or_default();
        if !jar.is_empty() {
            req = req.header("cookie", jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "));
        }
        let r = Resp::of(req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"))).await;
        for c in r.set_cookies() {
            let mut parts = c.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { continue };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        r
    }

    fn cookie(&self, url: &str) -> Option<String> {
        self.jars.get(&Self::host(url)).and_then(|j| j.get("vigie-app")).cloned()
    }
}

/// The app's page → the app's `/.vigie/start` (the login URL the proxy redirected to) → Vigie's
/// `/authorize`, whose URL is returned; checked on the way.
async fn to_login(app: &mut AppSide, gw: &Gateway, page: &str) -> String {
    let r = app.get(page, &FORGED).await;
    assert_eq!(r.status, 302, "no session: the proxy redirects to the login: {} {}", r.status, r.body);
    let origin = page.split('/').take(3).collect::<Vec<_>>().join("/");
    let expected: String = url::form_urlencoded::byte_serialize(page.as_bytes()).collect();
    assert_eq!(r.location(), format!("{origin}/.vigie/start?rd={expected}"), "the login URL names the original URL");
    let r = app.get(&r.location(), &[]).await;
    assert_eq!(r.status, 303, "start sends the browser to Vigie: {}", r.body);
    assert!(r.set_cookie("vigie-app-login").is_some(), "and marks it on the app's host: {:?}", r.set_cookies());
    let authorize = r.location();
    assert!(authorize.starts_with(&gw.url("/authorize?")), "{authorize}");
    authorize
}

/// The médecin logs in with password + TOTP from the app's `page`: the code Vigie sends back to the
/// app's callback (not yet followed).
async fn password_login(app: &mut AppSide, vigie: &mut Browser<'_>, page: &str) -> String {
    let authorize = to_login(app, vigie.gw, page).await;
    let r = vigie.get(&authorize).await;
    let (user, totp) = vigie.gw.any_user_totp(&["demo.medecin"]).await;
    let done = vigie.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    assert_eq!(done.status, 303, "{}", done.body);
    done.location()
}

/// Vigie's answer for the app → the app's callback (through the proxy) → the original URL with the
/// app's cookie.
async fn through_callback(app: &mut AppSide, page: &str, callback: &str) {
    assert!(callback.contains("/.vigie/callback?code="), "Vigie sends the code to the app's host: {callback}");
    let r = app.get(callback, &[]).await;
    assert_eq!(r.status, 303, "the callback sets the app's cookie: {}", r.body);
    assert_eq!(r.location(), page, "and goes back to the original URL");
    assert!(
        r.set_cookie("vigie-app").is_some_and(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax")),
        "{:?}",
        r.set_cookies()
    );
    assert!(r.set_cookie(SESSION_COOKIE).is_none(), "Vigie's session cookie never goes to the app's host");
}

/// The app's page as the echo app saw the request: its headers.
async fn app_sees(app: &mut AppSide, page: &str) -> Value {
    let r = app.get(page, &FORGED).await;
    assert_eq!(r.status, 200, "the app answers: {} {}", r.status, r.body);
    r.json()
}

/// What the app got is Vigie's word only: none of the client's forged headers in any spelling.
fn assert_vigie_headers(seen: &Value, user: &str, level: &str) {
    assert_eq!(seen["x-vigie-user"], user, "{seen}");
    assert_eq!(seen["x-vigie-level"], level, "{seen}");
    assert!(seen["x-vigie-matricule"].as_str().is_some_and(|m| !m.is_empty() && m != "forged"), "{seen}");
    assert_ne!(seen["x-vigie-roles"], "forged", "{seen}");
    let spoofed: Vec<_> = seen.as_object().expect("headers").iter().filter(|(_, v)| *v == "forged").collect();
    assert!(spoofed.is_empty(), "forged headers reached the app: {spoofed:?}");
    assert!(!seen.to_string().contains(SESSION_COOKIE), "the app never sees Vigie's session cookie: {seen}");
}

#[tokio::test]
async fn apps_behind_nginx_and_traefik_see_vigie_identity_only_after_login_until_logout() {
    let e = Estate::start().await;
    let (mut app, mut vigie) = (AppSide::new(), e.gw.browser());

    // nginx, no session: to Vigie's login; the password + TOTP login comes back with a code.
    let page = e.lab("/results?id=42");
    let callback = password_login(&mut app, &mut vigie, &page).await;
    assert!(callback.starts_with(&e.lab("/.vigie/callback?")), "{callback}");
    // Opened in another browser, the callback logs nobody in (login CSRF); nor does it spend the
    // login of the browser that started it.
    let elsewhere = AppSide::new().get(&callback, &[]).await;
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.body);
    assert!(elsewhere.set_cookie("vigie-app").is_none());
    through_callback(&mut app, &page, &callback).await;
    assert_vigie_headers(&app_sees(&mut app, &page).await, "demo.medecin", ACR_2FA);

    // The code was for one use.
    let replay = app.get(&callback, &[("accept-language", "en")]).await;
    assert_eq!(replay.status, 400, "a replayed code is refused: {}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);

    // Traefik, same Vigie session: SSO, no login page.
    let rh = e.rh("/paie?mois=3");
    let authorize = to_login(&mut app, &e.gw, &rh).await;
    let r = vigie.get(&authorize).await;
    assert_eq!(r.status, 303, "{}", r.body);
    through_callback(&mut app, &rh, &r.location()).await;
    assert_vigie_headers(&app_sees(&mut app, &rh).await, "demo.medecin", ACR_2FA);

    // Logout on the lab's host ends the Vigie session: the lab's old cookie and Traefik's app
    // both send the browser to log in again — at once, though both were let in just before (the
    // replica's answers of the last second are not reused after a logout).
    assert_vigie_headers(&app_sees(&mut app, &page).await, "demo.medecin", ACR_2FA);
    assert_vigie_headers(&app_sees(&mut app, &rh).await, "demo.medecin", ACR_2FA);
    let old = app.cookie(&page).expect("the lab's cookie");
    let out = app.get(&e.lab("/.vigie/logout"), &[]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(app.cookie(&page).is_none(), "the logout clears the app's cookie");
    let again = app.get(&page, &[("cookie", &format!("vigie-app={old}"))]).await;
    assert_eq!(again.status, 302, "the old cookie names an ended session: {}", again.body);
    let r = app.get(&rh, &[]).await;
    assert_eq!(r.status, 302, "Traefik's app is logged out too: {}", r.body);
    assert!(r.location().starts_with(&e.rh("/.vigie/start?rd=")), "{}", r.location());
}

#[tokio::test]
async fn a_sensitive_app_asks_for_the_card_and_rd_goes_only_to_configured_apps() {
    let e = Estate::start().await;
    let (mut app, mut vigie) = (AppSide::new(), e.gw.browser());

    // `rd` elsewhere than a configured app, or another app than the host's: refused, no redirect.
    for rd in [
        "http://127.0.0.9/".to_owned(),
        format!("http://{LAB}:{}@evil.example/", e.nginx.port),
        e.gw.url("/admin/cards"),
        format!("https://{LAB}:{}/", e.nginx.port),
        "//evil.example/".to_owned(),
        e.pharma("/"),
    ] {
        let q: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let r = app.get(&e.lab(&format!("/.vigie/start?rd={q}")), &[]).await;
        assert_eq!(r.status, 400, "rd={rd}: {}", r.body);
        assert!(r.header("location").is_none(), "rd={rd}");
    }
    // Nor does Vigie's own host start a login for an app (the login cookie belongs on the app's).
    let q: String = url::form_urlencoded::byte_serialize(e.lab("/").as_bytes()).collect();
    let r = vigie.get(&format!("/forward-auth/start?rd={q}")).await;
    assert_eq!(r.status, 400, "{}", r.body);

    // A password + TOTP session opens the lab…
    let lab = e.lab("/");
    let callback = password_login(&mut app, &mut vigie, &lab).await;
    through_callback(&mut app, &lab, &callback).await;

    // …not the sensitive pharmacy: the way back leads to a login page offering the card only.
    let pharma = e.pharma("/dispensations");
    let authorize = to_login(&mut app, &e.gw, &pharma).await;
    let r = vigie.get(&authorize).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/login?flow="), "step-up, not a code: {}", r.location());
    let page = vigie.get(&r.location()).await;
    assert!(page.body.contains("/login/cps?flow="), "the card is offered: {}", page.body);
    assert!(!page.body.contains(r#"action="/login/password""#), "password + TOTP is not: {}", page.body);

    // The same browser presents the card: the pharmacy sees the phishing-resistant level.
    let flow = query_of(&format!("https://x{}", r.location())).get("flow").cloned().expect("a flow");
    let mut card = e.gw.browser_with_demo_card("demo.medecin");
    card.cookies = vigie.cookies.clone();
    let done = card.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(done.status, 303, "the card logs in: {}", done.body);
    assert!(done.location().starts_with(&e.pharma("/.vigie/callback?")), "{}", done.location());
    through_callback(&mut app, &pharma, &done.location()).await;
    assert_vigie_headers(&app_sees(&mut app, &pharma).await, "demo.medecin", PHR);
}

#[tokio::test]
async fn someone_who_left_loses_the_app_at_their_next_request() {
    let e = Estate::start().await;
    let (mut app, mut vigie) = (AppSide::new(), e.gw.browser());
    let rh = e.rh("/conges");
    let callback = password_login(&mut app, &mut vigie, &rh).await;
    through_callback(&mut app, &rh, &callback).await;
    assert_vigie_headers(&app_sees(&mut app, &rh).await, "demo.medecin", ACR_2FA);

    // HR records the departure: the session ends (or the policy refuses it) within the sweep.
    let dir = e.gw.data_dir.display().to_string();
    let out = std::process::Command::new(BIN)
        .args(["users", "set-status", "demo.medecin", "left", "--data-dir", &dir])
        .output()
        .expect("vigie users set-status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = eventually(30, || {
        let (mut app, rh) = (app.clone(), rh.clone());
        async move {
            let r = app.get(&rh, &[]).await;
            (r.status != 200).then_some(r)
        }
    })
    .await
    .expect("the app's access ends within 30 s of the departure");
    assert!(matches!(refused.status, 302 | 403), "a login or a refusal, not the app: {}", refused.status);
    let again = app.get(&rh, &[]).await;
    assert_ne!(again.status, 200, "and it stays ended: {}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_opened_with_a_sponsorship_closes_when_the_temporary_credential_ends() {
    const TTL: i64 = 8;
    let e = Estate::start_with(&[("VIGIE_SPONSORSHIP__CREDENTIAL_TTL_SECS", &TTL.to_string())]).await;
    // Paul, signed in with his card (from the lab), vouches for Camille, who has no usable card.
    let mut paul = e.gw.browser_with_demo_card("demo.medecin");
    let r = paul.get(&to_login(&mut AppSide::new(), &e.gw, &e.lab("/")).await).await;
    let flow = query_of(&format!("https://x{}", r.location())).get("flow").cloned().expect("a flow");
    let done = paul.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(done.status, 303, "the card logs in: {}", done.body);
    let code = crate::sponsorship::sponsor(&mut paul, "martin", "demo.infirmiere", "awaiting").await;
    let until = crate::sponsorship::credential_until(&e.gw.audit_line(|l| l["kind"] == "sponsorship_granted").await);

    // Camille opens the lab with the temporary code.
    let (mut app, mut vigie) = (AppSide::new(), e.gw.browser());
    let page = e.lab("/results");
    let authorize = to_login(&mut app, &e.gw, &page).await;
    let r = vigie.get(&authorize).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let login = vigie.get(&r.location()).await;
    let flow = query_of(&format!("https://x{}", r.location())).get("flow").cloned().expect("a flow");
    let csrf = login.hidden("csrf").expect("the login page's csrf");
    let form = [("flow", flow.as_str()), ("csrf", &csrf), ("username", "demo.infirmiere"), ("code", &code)];
    let done = vigie.post_form("/login/sponsorship", &form).await;
    assert_eq!(done.status, 303, "the code logs in: {}", done.body);
    through_callback(&mut app, &page, &done.location()).await;
    assert_eq!(app_sees(&mut app, &page).await["x-vigie-user"], "demo.infirmiere");

    // The app stays open while the credential stands, and closes at the first check after its
    // end — not when the Vigie session (hours) would.
    let ended = eventually(TTL as u64 + 20, || {
        let (mut app, page) = (app.clone(), page.clone());
        async move {
            let r = app.get(&page, &[]).await;
            (r.status != 200).then(|| (r, now()))
        }
    })
    .await;
    let (refused, at) = ended.expect("the app's access ends with the temporary credential");
    assert!(at >= until, "refused at {at}, before the credential's end {until}");
    assert!(at <= until + 3, "refused at {at}, long after the credential's end {until}");
    assert_eq!(refused.status, 302, "to the login, not the app: {}", refused.body);
    assert!(refused.location().starts_with(&e.lab("/.vigie/start?rd=")), "{}", refused.location());
    let ends = |l: &Value| l["reason"].as_str().is_some_and(|r| r.contains("the sponsorship of this login has ended"));
    let line = e.gw.audit_line(|l| l["kind"] == "refused" && l["client_id"] == "lab" && ends(l)).await;
    assert_eq!(line["subject"], e.gw.audit_line(|l| l["kind"] == "sponsorship_opened").await["subject"], "{line}");
    let again = app.get(&page, &[]).await;
    assert_eq!(again.status, 302, "and it stays closed: {}", again.body);
}

/// The figure of docs/forward-auth.md: checks per second through nginx with a live session (every
/// request of the app is checked), and their latency. A measurement, not a gate:
/// `cargo test -p vigie-gateway --test integration forward_auth::checks_per_second -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn checks_per_second_through_nginx_with_a_live_session() {
    let e = Estate::start().await;
    let (mut app, mut vigie) = (AppSide::new(), e.gw.browser());
    let page = e.lab("/");
    let callback = password_login(&mut app, &mut vigie, &page).await;
    through_callback(&mut app, &page, &callback).await;
    let cookie = format!("vigie-app={}", app.cookie(&page).expect("the app's cookie"));

    // Through nginx (the app answering too), then Vigie's check alone on its plain listener.
    let direct = format!("http://{}/forward-auth/nginx", e.vigie);
    let origin = e.lab("");
    let host = origin.trim_start_matches("http://").to_owned();
    let through_nginx = load(&page, &[("cookie", &cookie)]).await;
    report("through nginx", &through_nginx);
    let alone = load(&direct, &[("cookie", &cookie), ("x-forwarded-proto", "http"), ("x-forwarded-host", &host)]).await;
    report("Vigie's check alone", &alone);
}

const LOAD_TASKS: usize = 32;
const LOAD_SECS: u64 = 10;

/// GETs `url` with `headers` from [`LOAD_TASKS`] connections for [`LOAD_SECS`]: the latencies,
/// sorted. Every answer must let the médecin in.
async fn load(url: &str, headers: &[(&str, &str)]) -> Vec<Duration> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(LOAD_TASKS).build().expect("HTTP client");
    let deadline = std::time::Instant::now() + Duration::from_secs(LOAD_SECS);
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut handles = Vec::new();
    for _ in 0..LOAD_TASKS {
        let (http, url, headers) = (http.clone(), url.to_owned(), headers.clone());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while std::time::Instant::now() < deadline {
                let t = std::time::Instant::now();
                let mut req = http.get(&url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let r = req.send().await.expect("an answer");
                assert_eq!(r.status(), 200, "every check lets the session in");
                let user = r.headers().get("x-vigie-user").map(|v| v.as_bytes().to_vec());
                let seen: Value = r.json().await.unwrap_or_default();
                assert!(
                    user.as_deref() == Some(b"demo.medecin".as_slice()) || seen["x-vigie-user"] == "demo.medecin",
                    "the médecin is named: {seen}"
                );
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("a load task"));
    }
    all.sort();
    all
}

fn report(what: &str, all: &[Duration]) {
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    eprintln!(
        "forward-auth, {what}: {} checks in {LOAD_SECS} s = {:.0}/s with {LOAD_TASKS} connections; p50 {:?}, p99 {:?}",
        all.len(),
        all.len() as f64 / LOAD_SECS as f64,
        p(0.5),
        p(0.99)
    );
}
