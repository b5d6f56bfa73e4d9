//! The establishment's directory (`[directory.ldap]`) against a real slapd holding AD's
//! attributes: a nurse logs in with her directory password and Vigie's TOTP, her nested groups
//! give her a role the administration policy then reads; a wrong password gets the generic
//! page, a disabled account its own; with the directory down, password logins get a page that
//! says so while a card login goes on; `vigie directory sync` brings joiners in and disables an
//! account the directory disabled, whose card then no longer logs in; a renamed login keeps its
//! identity; a leaver gone from the directory, or an account disabled there and synced by `serve`
//! on its own period, loses their SSO session and refresh family, audited; the directory is an
//! upstream whose breaker answers password logins at once while it is down.
use crate::common;

use common::ldap::{self as slapd, Slapd};
use common::*;

pub(crate) const NURSE: &str = "demo.infirmiere";
const DISABLED: &str = "demo.interne";

/// The gateway's environment for this slapd (the AD profile; slapd has no IN_CHAIN rule).
pub(crate) fn ldap_env(s: &Slapd) -> Vec<(String, String)> {
    let people = format!("ou=people,{}", slapd::BASE);
    let groups = format!("ou=groups,{}", slapd::BASE);
    [
        ("PROFILE", "ad".to_owned()),
        ("URLS", format!("[\"{}\"]", s.ldaps_url)),
        ("CA_FILE", s.ca_file.display().to_string()),
        ("BIND_DN", slapd::SERVICE_DN.to_owned()),
        ("BIND_PASSWORD_FILE", s.password_file.display().to_string()),
        ("USER_BASE", people),
        ("GROUP_BASE", groups),
        ("GROUP_EXPANSION", "client".to_owned()),
        ("CONNECT_TIMEOUT_MS", "2000".to_owned()),
        ("GROUP_ROLES", "{\"GG-Admin-Cartes\"=\"cards\"}".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("VIGIE_DIRECTORY__LDAP__{k}"), v))
    .chain([("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP".to_owned(), "1000".to_owned())])
    .collect()
}

pub(crate) async fn start(s: &Slapd) -> Gateway {
    let env = ldap_env(s);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Gateway::start(&env).await
}

/// A fresh flow's login page, and the answer to these credentials.
pub(crate) async fn try_login<'g>(
    gw: &'g Gateway,
    user: &str,
    password: &str,
    totp: &str,
) -> (Browser<'g>, Authz, Resp) {
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let done = b.submit_login(&r.location(), user, password, totp).await;
    (b, a, done)
}

#[tokio::test]
async fn a_directory_user_logs_in_with_the_directory_password_and_totp_and_groups_become_roles() {
    let s = Slapd::start();
    let gw = start(&s).await;

    // Vigie's own password no longer opens the account: the directory's does.
    let totp = gw.totp(NURSE).await;
    let own = gw.user(NURSE).password.clone();
    let (_, _, refused) = try_login(&gw, NURSE, &own, &totp).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("Identifiant, mot de passe ou code incorrect"), "{}", refused.body);
    let line = gw.audit_line(|l| l["username"] == NURSE && l["reason"] == "wrong directory password").await;
    assert_eq!(line["outcome"], "failure");

    let totp = gw.totp(NURSE).await;
    let (mut b, a, done) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
    assert_eq!(done.status, 303, "the directory password and the TOTP log in: {}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("a code");
    let tokens = redeem(&gw, &a, &code).await;
    let claims = jwt_part(&tokens.id, 1);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");

    // GG-Soins ⊂ GG-Admin-Cartes → the role `cards`: the administration page now finds the role
    // and asks the policy, which wants a card or a key for administration.
    let page = b.get("/admin/cards").await;
    assert_ne!(page.status, 200, "a password session does not administer: {}", page.body);
    let line = gw
        .audit_line(|l| {
            l["kind"] == "refused"
                && l["reason"].as_str().is_some_and(|r| r.starts_with("administration refused by policy"))
        })
        .await;
    assert_eq!(line["actor"], format!("staff:{}", claims["sub"].as_str().expect("sub")));

    // An unknown login and a wrong password read the same.
    let totp = gw.totp("demo.medecin").await;
    let (_, _, unknown) = try_login(&gw, "nobody.here", slapd::PASSWORD, &totp).await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("Identifiant, mot de passe ou code incorrect"), "{}", unknown.body);
    let (_, _, disabled) = try_login(&gw, DISABLED, slapd::PASSWORD, "000000").await;
    assert_eq!(disabled.status, 401, "{}", disabled.body);
    assert!(disabled.body.contains("est désactivé"), "the disabled account's page: {}", disabled.body);
    gw.audit_line(|l| l["username"] == DISABLED && l["reason"] == "directory account disabled").await;
    let (_, _, wrong) = try_login(&gw, DISABLED, "not-her-password", "000000").await;
    assert!(!wrong.body.contains("est désactivé"), "the state is told to whoever knows the password only");
    let log =
        std::fs::read_to_string(gw.data_dir.parent().expect("the gateway dir").join("vigie.log")).unwrap_or_default();
    assert!(!log.contains(slapd::PASSWORD) && !log.contains(slapd::SERVICE_PASSWORD), "no password in the log");
}

#[tokio::test]
async fn the_directory_down_password_logins_get_a_clear_page_and_cards_go_on() {
    let mut s = Slapd::start();
    let gw = start(&s).await;
    s.stop();
    let totp = gw.totp(NURSE).await;
    let (_, _, down) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.body.contains("établissement ne répond pas"), "{}", down.body);
    assert!(!down.body.contains("127.0.0.1"), "no internals on the page: {}", down.body);
    gw.audit_line(|l| l["username"] == NURSE && l["reason"] == "directory unavailable").await;

    let mut card = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-app");
    let code = card.sign_in_with_card(&a).await;
    redeem(&gw, &a, &code).await;

    s.restart();
    let totp = gw.totp(NURSE).await;
    let (_, _, back) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
    assert_eq!(back.status, 303, "the directory back, the password works again: {}", back.body);
}

/// `vigie directory sync` on the demo's data directory of `gw`, with the gateway's environment.
fn sync(s: &Slapd, gw: &Gateway) -> String {
    sync_with(s, gw, &[])
}

/// [`sync`] with more environment.
pub(crate) fn sync_with(s: &Slapd, gw: &Gateway, more: &[(&str, &str)]) -> String {
    sync_args(s, gw, &[], more)
}

/// [`sync_with`] with more arguments (`--changed`).
pub(crate) fn sync_args(s: &Slapd, gw: &Gateway, args: &[&str], more: &[(&str, &str)]) -> String {
    let data_dir = gw.data_dir.display().to_string();
    let out = std::process::Command::new(BIN)
        .args(["directory", "sync", "--data-dir", &data_dir])
        .args(args)
        .envs(ldap_env(s))
        .envs(more.iter().copied())
        .output()
        .expect("vigie directory sync");
    assert!(out.status.success(), "sync failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_sync_brings_joiners_in_and_an_account_disabled_in_the_directory_loses_its_card_login() {
    let s = Slapd::start();
    let gw = start(&s).await;
    let a = Authz::new(&gw, "demo-app");
    let code = gw.browser_with_demo_card("demo.medecin").sign_in_with_card(&a).await;
    redeem(&gw, &a, &code).await;

    s.modify(&format!(
        "dn: uid=demo.medecin,ou=people,{}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n",
        slapd::BASE
    ));
    // 6 entries: 3 joiners (ad.locked, ad.expired, ad.mustchange); demo.interne and demo.medecin
    // disabled there (updated), ad.expired expired (created disabled); demo.infirmiere linked to
    // her entry's objectGUID (updated).
    assert_eq!(
        sync(&s, &gw),
        "directory sync (full pass, 6 read): 3 created, 3 updated, 0 unchanged, 3 disabled, 0 skipped (no matricule), 0 refused (matricule changed), 0 left"
    );

    // The same person as the card's (linked by matricule): disabled, the card no longer logs in.
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let r = b.authorize(&a).await;
    let flow = query_of(&format!("https://x{}", r.location())).get("flow").cloned().expect("a login flow");
    let refused = b.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(refused.status, 403, "a disabled account's card does not log in: {}", refused.body);
    assert!(refused.body.contains("Votre compte est désactivé"), "{}", refused.body);

    assert_eq!(
        sync(&s, &gw),
        "directory sync (full pass, 6 read): 0 created, 0 updated, 6 unchanged, 0 disabled, 0 skipped (no matricule), 0 refused (matricule changed), 0 left"
    );

    // A renamed login keeps the identity (and Vigie's TOTP): the same `sub` under the new name.
    let totp = gw.totp(NURSE).await;
    let (_, a, before) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
    let code = before.redirect_params().get("code").cloned().expect("a code");
    let sub = jwt_part(&redeem(&gw, &a, &code).await.id, 1)["sub"].clone();
    s.modify(&format!(
        "dn: uid={NURSE},ou=people,{}\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: cmartin\n",
        slapd::BASE
    ));
    let renamed = sync(&s, &gw);
    assert_eq!(
        renamed,
        "directory sync (full pass, 6 read): 0 created, 1 updated, 5 unchanged, 0 disabled, 0 skipped (no matricule), 0 refused (matricule changed), 0 left"
    );
    let totp = gw.totp(NURSE).await;
    let (_, a, after) = try_login(&gw, "cmartin", slapd::PASSWORD, &totp).await;
    assert_eq!(after.status, 303, "the new login name logs in: {}", after.body);
    let code = after.redirect_params().get("code").cloned().expect("a code");
    assert_eq!(jwt_part(&redeem(&gw, &a, &code).await.id, 1)["sub"], sub);
}

/// The figures of docs/directory.md: a full sync of 10,000 entries into the demo's SQLite
/// directory, its time and the sync process's peak memory (`/usr/bin/time`), then a second full
/// pass, then a changed-since pass after 100 changes.
/// `cargo test -p vigie-gateway --test integration ldap::sync_figures -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn sync_figures() {
    let s = Slapd::start_with(10_000);
    let gw = start(&s).await;
    let changes: String = (0..100)
        .map(|n| {
            format!(
                "dn: uid=agent.{},ou=people,{}\nchangetype: modify\nreplace: sn\nsn: Change{n}\n\n",
                n * 97,
                slapd::BASE
            )
        })
        .collect();
    for (pass, args) in [("first", &[][..]), ("second", &[][..]), ("changed-since, 100 changes", &["--changed"][..])] {
        if args.contains(&"--changed") {
            s.modify(&changes);
        }
        let started = std::time::Instant::now();
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "peak RSS %M KiB", BIN, "directory", "sync", "--data-dir", &gw.data_dir.display().to_string()])
            .args(args)
            .envs(ldap_env(&s))
            .output()
            .expect("vigie directory sync");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rss = String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_owned();
        println!("{pass} pass: {:?}, {rss}: {}", started.elapsed(), String::from_utf8_lossy(&out.stdout).trim());
    }
}

/// slapd gives every entry an `entryUUID`; of the test DIT's, only `demo.infirmiere` carries an
/// `objectGUID`: the leaver tests link everyone by the former.
pub(crate) const BY_ENTRY_UUID: (&str, &str) = ("VIGIE_DIRECTORY__LDAP__ATTRIBUTES__ID", "entryUUID");

/// The doctor's card session in a browser, and its tokens for `demo-cli` (a refresh family).
async fn doctor_signed_in(gw: &Gateway) -> (Browser<'_>, Tokens) {
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(gw, "demo-cli");
    let code = b.sign_in_with_card(&a).await;
    let t = redeem(gw, &a, &code).await;
    assert!(!t.refresh.is_empty(), "demo-cli gets a refresh token: {}", t.raw);
    (b, t)
}

/// Polls the audit trail (for up to `secs`) for a line `what` accepts: the periodic sync and the
/// sweep that ends access each run every few seconds.
async fn audited_within(gw: &Gateway, secs: u64, what: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        if let Some(line) = gw.settled_audit().await.into_iter().find(|l| what(l)) {
            return line;
        }
        assert!(started.elapsed().as_secs() < secs, "no such audit line within {secs} s");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The refresh family is refused.
async fn assert_refresh_refused(gw: &Gateway, t: &Tokens) {
    let r = gw.token("demo-cli", &[("grant_type", "refresh_token"), ("refresh_token", &t.refresh)]).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, serde_json::json!("invalid_grant")), "{}", r.body);
}

/// The SSO session of the browser is gone: `prompt=none` gets `login_required`.
async fn assert_sso_refused(gw: &Gateway, b: &mut Browser<'_>) {
    let r = b.authorize(&Authz::new(gw, "demo-app").with("prompt", "none")).await;
    assert_eq!(
        r.redirect_params().get("error").map(String::as_str),
        Some("login_required"),
        "{} {:?}",
        r.status,
        r.headers.get("location")
    );
}

#[tokio::test]
async fn a_leaver_gone_from_the_directory_is_disabled_and_their_sso_and_refresh_end() {
    let s = Slapd::start();
    let gw = start(&s).await;
    let first = sync_with(&s, &gw, &[BY_ENTRY_UUID]);
    assert!(first.ends_with("0 left"), "{first}");
    let (mut b, t) = doctor_signed_in(&gw).await;

    s.modify(&format!("dn: uid=demo.medecin,ou=people,{}\nchangetype: delete\n", slapd::BASE));
    assert_eq!(
        sync_with(&s, &gw, &[BY_ENTRY_UUID]),
        "directory sync (full pass, 5 read): 0 created, 0 updated, 5 unchanged, 0 disabled, 0 skipped (no matricule), 0 refused (matricule changed), 1 left"
    );
    let line = gw.audit_line(|l| l["kind"] == "directory_sync" && l["username"] == "demo.medecin").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("gone from the directory")), "{line}");
    assert_eq!(line["actor"], "directory-sync");
    // The running gateway's sweep ends what the note names: refresh family, SSO session.
    let subject = line["subject"].clone();
    let ended = audited_within(&gw, 60, |l| l["kind"] == "access_ended" && l["subject"] == subject).await;
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("1 session(s) ended")), "{ended}");
    assert_refresh_refused(&gw, &t).await;
    assert_sso_refused(&gw, &mut b).await;

    // Once: a leaver already disabled is not disabled again.
    assert!(
        sync_with(&s, &gw, &[BY_ENTRY_UUID])
            .ends_with("0 disabled, 0 skipped (no matricule), 0 refused (matricule changed), 0 left")
    );
}

#[tokio::test]
async fn serve_syncs_on_its_period_and_an_account_disabled_there_loses_sso_and_refresh() {
    let s = Slapd::start();
    let mut env = ldap_env(&s);
    env.push(("VIGIE_DIRECTORY__LDAP__SYNC_INTERVAL_SECS".into(), "2".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let gw = Gateway::start(&env).await;
    let (mut b, t) = doctor_signed_in(&gw).await;

    s.modify(&format!(
        "dn: uid=demo.medecin,ou=people,{}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n",
        slapd::BASE
    ));
    // No CLI call: within a period (2 s) and a sweep (5 s), with room for a loaded machine.
    let started = std::time::Instant::now();
    let line = audited_within(&gw, 60, |l| l["kind"] == "directory_sync" && l["username"] == "demo.medecin").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("disabled or expired")), "{line}");
    let subject = line["subject"].clone();
    let ended = audited_within(&gw, 60, |l| l["kind"] == "access_ended" && l["subject"] == subject).await;
    assert!(ended["reason"].as_str().is_some_and(|r| r.contains("1 session(s) ended")), "{ended}");
    println!("access ended {:?} after the change in the directory", started.elapsed());
    // The passes after the first read only what changed: here the doctor's entry.
    let log =
        std::fs::read_to_string(gw.data_dir.parent().expect("the gateway dir").join("vigie.log")).unwrap_or_default();
    assert!(log.contains("directory sync (full pass, 6 read)"), "the first pass reads everyone");
    assert!(log.contains("directory sync (changed since the last pass, 1 read)"), "then only the change");
    assert_refresh_refused(&gw, &t).await;
    assert_sso_refused(&gw, &mut b).await;
    let metrics = gw.browser().get("/metrics").await.body;
    assert!(metrics.contains("vigie_directory_sync_total{result=\"ok\"}"), "the passes are counted");
}

/// [`start`] with the ops listener on `ops` (`/readyz` with each upstream's last error) and these
/// `[health]` keys (the breakers' pace).
async fn start_with(s: &Slapd, ops: &str, health: &[(&str, &str)]) -> Gateway {
    let mut env = ldap_env(s);
    env.push(("VIGIE_SERVER__OPS_LISTEN".to_owned(), ops.to_owned()));
    env.extend(health.iter().map(|(k, v)| (format!("VIGIE_HEALTH__{k}"), (*v).to_owned())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Gateway::start(&env).await
}

/// The directory as an upstream (issue 16, degraded mode): slapd stopped, its breaker opens from
/// the probes alone within the probe budget, `/readyz` says so and stays ready, the login page
/// says the password method is unavailable, a password login gets its page without calling the
/// directory, a card login goes on; slapd back, the breaker closes and passwords work again.
/// Each switch is audited once and in `/metrics`.
#[tokio::test]
async fn the_directory_down_opens_its_breaker_password_logins_fail_at_once_cards_go_on_and_it_closes_when_back() {
    let mut s = Slapd::start();
    let ops = format!("127.0.0.1:{}", free_port());
    let pace = [
        ("MIN_STATE_MS", "2000"),
        ("PROBE_INTERVAL_MS", "500"),
        ("BACKOFF_INITIAL_MS", "100"),
        ("BACKOFF_MAX_MS", "500"),
    ];
    let gw = start_with(&s, &ops, &pace).await;
    let readyz = || async {
        reqwest::get(format!("http://{ops}/readyz")).await.unwrap().json::<serde_json::Value>().await.unwrap()
    };
    let ldap_state = || async { readyz().await["checks"]["upstreams"]["ldap"]["state"].as_str().map(str::to_owned) };
    assert_eq!(ldap_state().await.as_deref(), Some("closed"), "the directory is watched from the start");

    s.stop();
    let stopped = std::time::Instant::now();
    eventually(15, || async { (ldap_state().await.as_deref() == Some("open")).then_some(()) })
        .await
        .expect("the directory's breaker opens from the probes once slapd is stopped");
    println!("opened {:?} after slapd stopped", stopped.elapsed());
    let ready = readyz().await;
    assert_eq!(ready["status"], "ready", "an upstream never makes Vigie unready: {ready}");
    let ldap = &ready["checks"]["upstreams"]["ldap"];
    assert!(ldap["last_error"].as_str().is_some_and(|e| e.contains("127.0.0.1")), "{ldap}");
    assert!(!ldap.to_string().contains(slapd::SERVICE_PASSWORD), "{ldap}");
    let opened = gw.audit_line(|l| l["kind"] == "upstream_state" && l["object"] == "ldap").await;
    assert_eq!(opened["method"], "closed->open", "{opened}");

    // The page offers no password form but says why; the card and the key stay offered.
    let mut b = gw.browser();
    let a = Authz::new(&gw, "demo-app");
    let r = b.authorize(&a).await;
    let page = b.get(&r.location()).await;
    assert!(page.body.contains(r#"id="password-unavailable""#), "{}", page.body);
    assert!(page.body.contains("connexion par mot de passe est momentanément indisponible"), "{}", page.body);
    assert!(!page.body.contains(r#"action="/login/password""#), "{}", page.body);
    assert!(page.body.contains(r#"id="card-login""#), "{}", page.body);

    // A password posted anyway (a page opened before): its page at once, the directory not called.
    let totp = gw.totp(NURSE).await;
    let asked = std::time::Instant::now();
    let done = b.submit_login(&r.location(), NURSE, slapd::PASSWORD, &totp).await;
    let took = asked.elapsed();
    assert_eq!(done.status, 503, "{}", done.body);
    assert!(done.body.contains("établissement ne répond pas"), "{}", done.body);
    assert!(took < std::time::Duration::from_secs(2), "answered at once, not after the timeouts: {took:?}");
    gw.audit_line(|l| l["username"] == NURSE && l["reason"] == "directory unavailable").await;
    let log =
        std::fs::read_to_string(gw.data_dir.parent().expect("the gateway dir").join("vigie.log")).unwrap_or_default();
    assert!(log.contains("its circuit breaker is open: not called"), "the breaker answered, not a bind");

    let mut card = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-app");
    let code = card.sign_in_with_card(&a).await;
    redeem(&gw, &a, &code).await;

    let metrics = || async { reqwest::get(format!("http://{ops}/metrics")).await.unwrap().text().await.unwrap() };
    let m = metrics().await;
    assert!(m.contains(r#"vigie_upstream_state{upstream="ldap"} 2"#), "{m}");

    s.restart();
    eventually(20, || async { (ldap_state().await.as_deref() == Some("closed")).then_some(()) })
        .await
        .expect("the directory's breaker closes once slapd answers again");
    let m = metrics().await;
    assert!(m.contains(r#"vigie_upstream_state{upstream="ldap"} 0"#), "{m}");
    assert!(m.contains(r#"vigie_upstream_transitions_total{upstream="ldap",to="open"} 1"#), "{m}");
    gw.audit_line(|l| l["kind"] == "upstream_state" && l["object"] == "ldap" && l["method"] == "half_open->closed")
        .await;
    let totp = gw.totp(NURSE).await;
    let (_, _, back) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
    assert_eq!(back.status, 303, "the directory back, the password works again: {}", back.body);
}

/// Password logins feed the directory's breaker as they go (the probe here runs once, at start):
/// wrong passwords are the directory answering and leave it closed; logins that cannot reach it
/// open it at the failure threshold, and the next one does not call it.
#[tokio::test]
async fn password_logins_feed_the_directorys_breaker_outages_count_wrong_passwords_do_not() {
    let mut s = Slapd::start();
    let ops = format!("127.0.0.1:{}", free_port());
    let gw = start_with(&s, &ops, &[("PROBE_INTERVAL_MS", "600000")]).await;
    let ldap = || async {
        let r = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
        r.json::<serde_json::Value>().await.unwrap()["checks"]["upstreams"]["ldap"].clone()
    };
    // The start's probe is done once it has a latency.
    eventually(15, || async { ldap().await["last_latency_ms"].as_u64().map(drop) }).await.expect("the first probe");

    for _ in 0..4 {
        let (_, _, wrong) = try_login(&gw, "demo.medecin", "not-the-password", "000000").await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
    }
    let after_wrong = ldap().await;
    assert_eq!(
        (after_wrong["state"].as_str(), after_wrong["consecutive_failures"].as_u64()),
        (Some("closed"), Some(0))
    );

    s.stop();
    for n in 1..=3 {
        let totp = gw.totp(NURSE).await;
        let (_, _, down) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
        assert_eq!(down.status, 503, "{}", down.body);
        assert_eq!(ldap().await["consecutive_failures"].as_u64(), Some(n), "each outage counts");
    }
    let opened = ldap().await;
    assert_eq!(opened["state"], "open", "three outages open it, no probe involved: {opened}");
    assert!(opened["last_error"].as_str().is_some_and(|e| e.contains("unavailable")), "{opened}");
    let log_path = gw.data_dir.parent().expect("the gateway dir").join("vigie.log");
    assert!(!std::fs::read_to_string(&log_path).unwrap_or_default().contains("not called"));
    let totp = gw.totp(NURSE).await;
    let (_, _, short) = try_login(&gw, NURSE, slapd::PASSWORD, &totp).await;
    assert_eq!(short.status, 503, "{}", short.body);
    assert_eq!(ldap().await["consecutive_failures"].as_u64(), Some(3), "the breaker answered: no call, no count");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(log.contains("its circuit breaker is open: not called"), "the breaker answered");
}
