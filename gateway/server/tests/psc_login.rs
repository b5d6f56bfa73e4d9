//! Login through Pro Santé Connect, end to end: the real `vigie` binary and the PSC stand-in
//! (`conformance/psc-sandbox`, npm `oidc-provider`), a browser going back and forth between them.
//! Needs Node.js and `npm ci` in conformance/psc-sandbox: the tests fail saying so otherwise.
use crate::common;

use std::process::Command;

use common::psc::PscSandbox;
use common::*;
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

const CLIENT_ID: &str = "vigie";
const CLIENT_SECRET: &str = "s3cret-of-the-psc-test-client";

fn psc_env(port: u16, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("VIGIE_PSC__ISSUER".to_owned(), format!("http://127.0.0.1:{port}/auth/realms/esante-wallet")),
        ("VIGIE_PSC__CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
        ("VIGIE_PSC__CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS".to_owned(), "1".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

async fn start_gateway(env: &[(String, String)]) -> Gateway {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Gateway::start(&env).await
}

/// Two gateways on one stand-in: `jit` off (the default) and on. The stand-in's state (next login,
/// misbehaviour, log) is global, so the tests that use it take turns ([`World::turn`]).
struct World {
    gw: Gateway,
    jit: Gateway,
    psc: PscSandbox,
    turn: Mutex<()>,
}

static WORLD: OnceCell<World> = OnceCell::const_new();

async fn world() -> &'static World {
    WORLD
        .get_or_init(|| async {
            let port = free_port();
            let gw = start_gateway(&psc_env(port, &[])).await;
            let jit = start_gateway(&psc_env(port, &[("VIGIE_PSC__JIT", "true")])).await;
            let psc = PscSandbox::start(port, CLIENT_SECRET, &[gw.port, jit.port]);
            World { gw, jit, psc, turn: Mutex::new(()) }
        })
        .await
}

impl World {
    async fn turn(&self) -> MutexGuard<'_, ()> {
        let guard = self.turn.lock().await;
        self.psc.reset().await;
        guard
    }
}

/// Authorization request → login page (which offers e-CPS once PSC is reachable) → `/login/psc`
/// → PSC (which completes at once, see [`PscSandbox::next_login`]) → Vigie's callback. Returns the
/// callback's response and the callback URL PSC sent the browser to.
async fn through_psc(b: &mut Browser<'_>, psc: &PscSandbox, a: &Authz) -> (Resp, String) {
    let r = b.authorize(a).await;
    assert_eq!(r.status, 303, "authorize redirects to the login page: {}", r.body);
    let login_page = r.location();
    psc.login_page_offering_psc(b, &login_page).await;
    let flow = query_of(&format!("https://x{login_page}"))["flow"].clone();
    let go = b.get(&format!("/login/psc?flow={flow}")).await;
    assert_eq!(go.status, 302, "off to PSC: {}", go.body);
    let url = go.location();
    assert!(url.starts_with(&psc.issuer), "the browser is sent to PSC's authorization endpoint: {url}");
    let sent = query_of(&url);
    assert_eq!(sent.get("acr_values").map(String::as_str), Some("eidas1"), "{url}");
    assert_eq!(sent.get("code_challenge_method").map(String::as_str), Some("S256"), "PKCE: {url}");
    assert!(sent.get("scope").is_some_and(|s| s.contains("scope_all")), "{url}");
    let callback = psc.through(b, &url).await;
    let registered = format!("https://127.0.0.1:{}/login/psc/callback?", b.gw.port);
    assert!(callback.starts_with(&registered), "PSC goes straight back to Vigie with a code: {callback}");
    (psc.back_at_vigie(b, &callback).await, callback)
}

/// A PSC login as `idnat` that must succeed: the client's tokens.
async fn psc_login(gw: &Gateway, psc: &PscSandbox, client: &str, idnat: &str, means: &str) -> (Tokens, Authz) {
    let mut b = gw.browser();
    let a = Authz::new(gw, client);
    psc.next_login(idnat, means).await;
    let (done, _) = through_psc(&mut b, psc, &a).await;
    assert_eq!(done.status, 303, "the PSC login ends at the client: {}", done.body);
    let code = done.redirect_params().get("code").cloned().unwrap_or_else(|| panic!("a code: {}", done.location()));
    (redeem(gw, &a, &code).await, a)
}

/// The `sub` Vigie gives `username` (logged in with password + TOTP).
async fn sub_of(gw: &Gateway, username: &str) -> String {
    let (_, _, _, t) = logged_in(gw, "demo-app", &[username]).await;
    jwt_part(&t.id, 1)["sub"].as_str().expect("sub").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_logs_in_with_e_cps_and_is_linked_by_idnat() {
    let w = world().await;
    let _turn = w.turn().await;
    let (tokens, a) = psc_login(&w.gw, &w.psc, "demo-app", "810001234567", "ecps").await;
    let claims = w.gw.verify_jwt(&tokens.id, "demo-app", "ES256").await;
    assert_eq!(claims["nonce"], a.nonce.as_str());
    assert_eq!(claims["sub"], sub_of(&w.gw, "demo.durand").await, "linked to Dr Marie Durand by her idNat");
    assert_eq!(claims["acr"], ACR_2FA, "e-CPS is a two-factor MIE, not phishing-resistant: {claims}");
    let amr: Vec<&str> = claims["amr"].as_array().expect("amr").iter().filter_map(Value::as_str).collect();
    // docs/psc.md fixes two factors and no card; which others is the establishment's choice.
    assert!(amr.contains(&"mfa") && !amr.contains(&"sc"), "e-CPS factors: {amr:?}");
    let line =
        w.gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "success" && l["username"] == "810001234567").await;
    assert_eq!(line["method"], "ecps", "{line}");
    // PSC was called as the contract says: token with the client's secret, then userinfo.
    let log = w.psc.log().await;
    let token = log.iter().rev().find(|e| e["endpoint"] == "token").expect("a token call in PSC's log");
    assert_eq!(token["client_auth"], "client_secret_basic", "{token}");
    assert!(log.iter().any(|e| e["endpoint"] == "userinfo"), "userinfo was read: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_used_at_psc_is_a_phishing_resistant_cps_via_psc_login() {
    let w = world().await;
    let _turn = w.turn().await;
    // The DPI is sensitive: e-CPS or a card at PSC (both of the RIE) let the professional in.
    let (tokens, _) = psc_login(&w.gw, &w.psc, "demo-dpi", "0751234567", "card").await;
    let claims = w.gw.verify_jwt(&tokens.id, "demo-dpi", "ES256").await;
    assert_eq!(claims["acr"], "urn:vigie:loa:2fa-phr", "{claims}");
    let amr: Vec<&str> = claims["amr"].as_array().expect("amr").iter().filter_map(Value::as_str).collect();
    // docs/psc.md: a CPS at PSC is two factors, the card and its PIN (RFC 8176 §2 names).
    assert_eq!(amr, ["sc", "pin", "mfa"], "a card and its PIN: {amr:?}");
    assert_eq!(claims["sub"], sub_of(&w.gw, "demo.petit").await, "linked to Luc Petit by his idNat 0+ADELI");
    w.gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "success" && l["method"] == "cps_via_psc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_professional_gets_a_clear_page_and_an_audit_line() {
    let w = world().await;
    let _turn = w.turn().await;
    let mut b = w.gw.browser();
    w.psc.next_login("810000000001", "ecps").await;
    let (done, _) = through_psc(&mut b, &w.psc, &Authz::new(&w.gw, "demo-app")).await;
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(done.body.contains("pas connu(e) de l&#39;établissement"), "{}", done.body);
    let line =
        w.gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "failure" && l["username"] == "810000000001").await;
    assert_eq!(line["reason"], "unknown_professional", "{line}");
}

async fn announce(gw: &Gateway, idnat: &str, unit: &str) {
    let out = Command::new(BIN)
        .args(["users", "announce", idnat, "--family", "Martin", "--given", "Paul", "--unit", unit, "--days", "2"])
        .arg("--data-dir")
        .arg(&gw.data_dir)
        .env_remove("VIGIE_PSC__JIT")
        .output()
        .expect("vigie users announce");
    assert!(out.status.success(), "announce: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jit_an_announced_professional_is_created_at_the_first_login_and_only_then() {
    let w = world().await;
    let _turn = w.turn().await;
    // Not announced: refused, even with jit on.
    let mut b = w.jit.browser();
    w.psc.next_login("810005555555", "ecps").await;
    let (refused, _) = through_psc(&mut b, &w.psc, &Authz::new(&w.jit, "demo-app")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("pas connu(e)"), "{}", refused.body);

    // Announced by HR: created at the first login, with the announced unit, audited.
    announce(&w.jit, "810009876543", "UF4001").await;
    let line = w.jit.audit_line(|l| l["kind"] == "identity_announced").await;
    assert_eq!(line["object"], "announcement:810009876543", "{line}");
    assert!(line["reason"].as_str().unwrap_or_default().starts_with("announced until"), "{line}");
    let listed = Command::new(BIN).args(["users", "announced", "--data-dir"]).arg(&w.jit.data_dir).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("810009876543"), "listed: {listed:?}");
    let (tokens, _) = psc_login(&w.jit, &w.psc, "demo-app", "810009876543", "ecps").await;
    let sub = jwt_part(&tokens.id, 1)["sub"].as_str().expect("sub").to_owned();
    let line = w.jit.audit_line(|l| l["method"] == "psc_jit" && l["username"] == "810009876543").await;
    assert_eq!(line["subject"], sub.as_str(), "{line}");
    assert!(line["reason"].as_str().unwrap_or_default().contains("UF4001"), "{line}");
    // Used up: the next login links to the same identity, nothing new is created.
    let (again, _) = psc_login(&w.jit, &w.psc, "demo-app", "810009876543", "ecps").await;
    assert_eq!(jwt_part(&again.id, 1)["sub"], sub.as_str());
    let created = w.jit.settled_audit().await.iter().filter(|l| l["method"] == "psc_jit").count();
    assert_eq!(created, 1, "one identity created");

    // Without jit, an announcement changes nothing.
    announce(&w.gw, "810009876543", "UF4001").await;
    let mut b = w.gw.browser();
    w.psc.next_login("810009876543", "ecps").await;
    let (refused, _) = through_psc(&mut b, &w.psc, &Authz::new(&w.gw, "demo-app")).await;
    assert_eq!(refused.status, 403, "jit is off on this gateway: {}", refused.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_of_psc_is_refused_with_a_clear_page_and_its_code_audited() {
    let w = world().await;
    let _turn = w.turn().await;
    for (mode, code) in [
        ("wrong_iss", "wrong_issuer"),
        ("wrong_aud", "wrong_audience"),
        ("expired", "expired"),
        ("wrong_nonce", "wrong_nonce"),
        ("wrong_at_hash", "wrong_at_hash"),
        ("alg_none", "alg_not_allowed"),
        ("unknown_kid", "unknown_kid"),
        ("userinfo_sub_mismatch", "userinfo_sub_mismatch"),
        ("token_error", "token_error"),
    ] {
        w.psc.reset().await;
        let mut b = w.gw.browser();
        w.psc.next_login("810001234567", "ecps").await;
        w.psc.misbehave(mode).await;
        let (done, _) = through_psc(&mut b, &w.psc, &Authz::new(&w.gw, "demo-app")).await;
        // PSC answered, wrongly: the upstream's fault, 502 Bad Gateway (RFC 9110 §15.6.3).
        assert_eq!(done.status, 502, "{mode}: {}", done.body);
        assert!(done.body.contains("Pro Santé Connect"), "{mode}: the page says what failed: {}", done.body);
        assert!(done.body.contains(code), "{mode}: the page names {code}: {}", done.body);
        assert!(done.header("location").is_none(), "{mode}: no code for the client");
        let line =
            w.gw.audit_line(|l| {
                l["kind"] == "login"
                    && l["outcome"] == "failure"
                    && l["reason"].as_str().is_some_and(|r| r.starts_with(&format!("psc:{code}")))
            })
            .await;
        assert_eq!(line["client_id"], "demo-app", "{mode}: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_foreign_callback_is_refused() {
    let w = world().await;
    let _turn = w.turn().await;
    // Replay: the callback that logged someone in, once more.
    let mut b = w.gw.browser();
    w.psc.next_login("810001234567", "ecps").await;
    let (done, callback) = through_psc(&mut b, &w.psc, &Authz::new(&w.gw, "demo-app")).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let replay = w.psc.back_at_vigie(&mut b, &callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("déjà utilisée"), "{}", replay.body);
    w.gw.audit_line(|l| l["reason"] == "psc:state_unknown_or_replayed").await;

    // Login CSRF: a callback URL taken from one browser and opened in another.
    let mut attacker = w.gw.browser();
    w.psc.next_login("810001234567", "ecps").await;
    let a = Authz::new(&w.gw, "demo-app");
    let r = attacker.authorize(&a).await;
    let flow = query_of(&format!("https://x{}", r.location()))["flow"].clone();
    let go = attacker.get(&format!("/login/psc?flow={flow}")).await;
    let callback = w.psc.through(&mut attacker, &go.location()).await;
    let mut victim = w.gw.browser();
    let r = w.psc.back_at_vigie(&mut victim, &callback).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(victim.cookie(SESSION_COOKIE).is_none(), "the victim's browser got no session");
    w.gw.audit_line(|l| l["reason"] == "psc:browser_mismatch").await;
}

/// A browser signed in to the demo app with an e-CPS through PSC; the app's logout URL (its
/// ID token as the hint, state `au-revoir`) and its post-logout URI.
async fn signed_in_through_psc(w: &World) -> (Browser<'_>, String, String) {
    let mut b = w.gw.browser();
    let a = Authz::new(&w.gw, "demo-app");
    w.psc.next_login("810001234567", "ecps").await;
    let (done, _) = through_psc(&mut b, &w.psc, &a).await;
    let code = done.redirect_params()["code"].clone();
    let tokens = redeem(&w.gw, &a, &code).await;
    let post_logout = w.gw.client("demo-app").post_logout_redirect_uris[0].clone();
    let mut logout = url::Url::parse(&w.gw.url("/logout")).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &tokens.id)
        .append_pair("post_logout_redirect_uri", &post_logout)
        .append_pair("state", "au-revoir");
    (b, logout.into(), post_logout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_at_vigie_ends_the_psc_session_with_its_id_token() {
    let w = world().await;
    let _turn = w.turn().await;
    let (mut b, logout, post_logout) = signed_in_through_psc(w).await;
    let r = b.get(&logout).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to_psc = r.location();
    assert!(to_psc.starts_with(&w.psc.issuer), "the browser goes through PSC's logout: {to_psc}");
    let hint = query_of(&to_psc).get("id_token_hint").cloned().expect("PSC's id_token_hint");
    assert_eq!(jwt_part(&hint, 1)["iss"], w.psc.issuer.as_str(), "the hint is PSC's own ID token");
    assert!(b.cookie(SESSION_COOKIE).is_none(), "Vigie's session cookie is cleared");

    let back_at_vigie = w.psc.through(&mut b, &to_psc).await;
    let log = w.psc.log().await;
    let entry = log.iter().rev().find(|e| e["endpoint"] == "logout").expect("PSC's logout was called");
    assert_eq!(entry["params"]["id_token_hint"], hint.as_str(), "{entry}");
    assert_eq!(entry["logged_out"], true, "PSC's session ended: {entry}");
    // PSC sends the browser back to Vigie (the registered post-logout URI), which continues to the
    // client's post-logout URI.
    let registered = format!("https://127.0.0.1:{}/logout/psc?", w.gw.port);
    assert!(back_at_vigie.starts_with(&registered), "back at Vigie: {back_at_vigie}");
    let back = b.get(&back_at_vigie).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(query_of(&back.location()).get("state").map(String::as_str), Some("au-revoir"));
    assert!(back.location().starts_with(&post_logout), "{}", back.location());
    w.gw.audit_line(|l| l["kind"] == "logout" && l["method"] == "psc_end_session").await;
    // The session is over at Vigie: a new request needs a login.
    let again = b.authorize(&Authz::new(&w.gw, "demo-app")).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert!(again.location().starts_with("/login?flow="), "{}", again.location());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_hint_from_another_browser_never_reveals_psc_id_token_nor_ends_the_session() {
    let w = world().await;
    let _turn = w.turn().await;
    let (mut victim, logout, post_logout) = signed_in_through_psc(w).await;
    // The victim's Vigie ID token, replayed from a browser without the victim's session.
    let r = w.gw.browser().get(&logout).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with(&post_logout), "straight back, not through PSC: {}", r.location());
    assert!(!r.location().contains("id_token_hint"), "PSC's ID token is not revealed: {}", r.location());
    victim.code_without_login(&Authz::new(&w.gw, "demo-app").with("prompt", "none")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_shows_psc_up_then_down_without_making_vigie_unready() {
    // Its own stand-in: `down` lasts until reset, and the other tests' logins need PSC.
    let port = free_port();
    // The ops listener's `/readyz` names PSC's issuer and the probe's error (the public one keeps
    // them to the log).
    let ops = format!("127.0.0.1:{}", free_port());
    let mut env = psc_env(port, &[]);
    env.push(("VIGIE_SERVER__OPS_LISTEN".to_owned(), ops.clone()));
    let gw = start_gateway(&env).await;
    let psc = PscSandbox::start(port, CLIENT_SECRET, &[gw.port]);
    let http = reqwest::Client::new();
    let readyz = || async {
        let r = http.get(format!("http://{ops}/readyz")).send().await.expect("readyz");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.expect("readyz JSON"))
    };
    let up = eventually(15, || async {
        let (s, body) = readyz().await;
        (body["checks"]["psc"]["status"] == "up").then_some((s, body))
    })
    .await
    .expect("PSC shows up in /readyz after a probe");
    assert_eq!(up.0, 200, "{}", up.1);
    assert_eq!(up.1["checks"]["psc"]["issuer"], psc.issuer.as_str());

    psc.control("misbehave", json!({ "mode": "down" })).await;
    let down = eventually(15, || async {
        let (s, body) = readyz().await;
        (body["checks"]["psc"]["status"] == "down").then_some((s, body))
    })
    .await
    .expect("PSC shows down in /readyz after a failed probe");
    assert_eq!(down.0, 200, "PSC down does not make Vigie unready: {}", down.1);
    assert_eq!(down.1["status"], "ready");
    assert!(down.1["checks"]["psc"]["last_probe"]["error"].is_string(), "{}", down.1);
    let metrics = http.get(format!("http://{ops}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"vigie_upstream_up{upstream="psc"} 0"#), "{metrics}");

    // Once PSC's circuit breaker opens (`health.failure_threshold` failed probes), the login page
    // says e-CPS is unavailable instead of offering it; other means stay.
    let page = eventually(15, || async {
        let mut b = gw.browser();
        let r = b.authorize(&Authz::new(&gw, "demo-app")).await;
        let page = b.get(&r.location()).await;
        page.body.contains("e-CPS (Pro Santé Connect) est indisponible pour le moment").then_some(page)
    })
    .await
    .expect("the login page says e-CPS is unavailable once PSC's breaker is open");
    assert!(!page.body.contains("/login/psc?flow="), "{}", page.body);
    assert!(page.body.contains(r#"action="/login/password""#), "{}", page.body);

    psc.reset().await;
    eventually(15, || async { (readyz().await.1["checks"]["psc"]["status"] == "up").then_some(()) })
        .await
        .expect("PSC back up after reset");
}

#[test]
fn check_config_names_each_bad_psc_key_and_never_prints_the_secret() {
    let config = temp_file(
        "vigie.toml",
        r#"
issuer = "https://vigie.chu.example"
[server]
tls_cert = "/nonexistent/tls.crt"
tls_key = "/nonexistent/tls.key"
[directory]
url = "sqlite:///tmp/vigie-check-config-psc.db"
[keys]
file = "/tmp/vigie-check-config-psc-keys.json"

[psc]
enabled = true
issuer = "http://psc.example/auth/realms/esante-wallet"
client_id = "vigie"
client_secret = "the-very-secret-value"
id_token_algs = ["none"]
userinfo = "xml"
amr_map = { sc = "card" }
probe_interval_secs = 0
colour = "blue"
"#,
    );
    let out = Command::new(BIN).arg("check-config").arg(&config).output().expect("vigie check-config");
    remove_temp(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad [psc] fails: {stderr}");
    for key in [
        "psc.issuer",
        "psc.id_token_algs[0]",
        "psc.userinfo",
        "psc.amr_map.sc",
        "psc.probe_interval_secs",
        "psc.colour",
    ] {
        let lines = stderr.lines().filter(|l| l.contains(&format!("`{key}`"))).count();
        assert_eq!(lines, 1, "one line names `{key}`:\n{stderr}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stderr.contains("the-very-secret-value") && !stdout.contains("the-very-secret-value"), "{stderr}");
}
