//! The policy set of a running gateway: a changed set decides the next login without a restart,
//! an invalid change keeps the set in force, and ops can check a set before deploying it.
use crate::common;
use crate::softkey;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fido2::{add_key, key_assertion};
use common::psc::PscSandbox;
use common::*;
use softkey::{SoftKey, VIRTUAL_AAGUID};

/// A copy of the default policy set that the test may change.
pub(crate) fn policy_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("policies-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let defaults = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default");
    for f in std::fs::read_dir(defaults).unwrap().flatten() {
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    dir
}

/// Logs in to the demo app with password + TOTP in a fresh browser: the final response.
async fn password_login(gw: &Gateway) -> Resp {
    let mut browser = gw.browser();
    let r = browser.authorize(&Authz::new(gw, "demo-app")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let user = gw.user("demo.infirmiere").clone();
    let totp = gw.totp("demo.infirmiere").await;
    browser.submit_login(&r.location(), &user.username, &user.password, &totp).await
}

const NO_PASSWORD_ON_DEMO_APP: &str = r#"
// Test: from now on the demo app needs a card or a key.
@id("test-demo-app-needs-rie-mie")
forbid (principal, action == Vigie::Action::"login_to_client", resource == Vigie::Client::"demo-app")
when { context.authentication.mie == "password_totp" };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_set_decides_the_next_login_without_a_restart() {
    let dir = policy_dir("reload");
    let dir_s = dir.display().to_string();
    let gw = Gateway::start(&[("VIGIE_POLICY__DIR", dir_s.as_str()), ("VIGIE_POLICY__RELOAD_POLL_SECS", "1")]).await;

    let ok = password_login(&gw).await;
    assert_eq!(ok.status, 303, "the default set lets password + TOTP into the demo app: {}", ok.body);
    assert!(ok.location().contains("code="), "{}", ok.location());

    // An invalid change: the set in force stays, and says why.
    std::fs::write(
        dir.join("90_broken.cedar"),
        "@id(\"broken\") permit (principal, action, resource) when { context.nope };\n",
    )
    .unwrap();
    let rejected = gw
        .audit_line(|l| {
            l["kind"] == "policy_reloaded"
                && l["outcome"] == "failure"
                && l["reason"].as_str().is_some_and(|r| r.contains("90_broken.cedar:1:"))
        })
        .await;
    assert!(rejected["reason"].as_str().unwrap().contains("previous kept"), "{rejected}");
    assert_eq!(password_login(&gw).await.status, 303, "the previous set is still in force");
    let metrics = gw.http().get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"vigie_policy_reload_total{result="rejected"}"#), "{metrics}");

    // A valid change: the next login is decided by it.
    std::fs::remove_file(dir.join("90_broken.cedar")).unwrap();
    std::fs::write(dir.join("90_test.cedar"), NO_PASSWORD_ON_DEMO_APP).unwrap();
    gw.audit_line(|l| {
        l["kind"] == "policy_reloaded"
            && l["outcome"] == "success"
            && l["reason"].as_str().is_some_and(|r| r.contains("test-demo-app-needs-rie-mie"))
    })
    .await;
    // The reload is audited once the new set is in force: the very next login is decided by it.
    let refused = password_login(&gw).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("plus fort"), "{}", refused.body);
    gw.audit_line(|l| {
        l["kind"] == "policy_decision"
            && l["client_id"] == "demo-app"
            && l["outcome"] == "failure"
            && l["object"].as_str().is_some_and(|o| o.contains("test-demo-app-needs-rie-mie"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_set() {
    let dir = policy_dir("sighup");
    let dir_s = dir.display().to_string();
    // No polling: only the signal reloads.
    let gw = Gateway::start(&[("VIGIE_POLICY__DIR", dir_s.as_str()), ("VIGIE_POLICY__RELOAD_POLL_SECS", "0")]).await;
    assert_eq!(password_login(&gw).await.status, 303);
    std::fs::write(dir.join("90_test.cedar"), NO_PASSWORD_ON_DEMO_APP).unwrap();
    // A clock step: longer than the shortest polling interval (1 s), so that a reload by polling
    // would have happened by now; an absence gives no condition to wait on.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(password_login(&gw).await.status, 303, "not reloaded before the signal");
    let trail = gw.settled_audit().await;
    assert!(!trail.iter().any(|l| l["kind"] == "policy_reloaded"), "no reload before the signal: {trail:#?}");
    let pid = gw.gateway_pid();
    let sent = Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
    assert!(sent.success());
    gw.audit_line(|l| l["kind"] == "policy_reloaded" && l["outcome"] == "success").await;
    assert_eq!(password_login(&gw).await.status, 403, "the next login is decided by the new set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_set_stops_the_start_with_file_and_line() {
    let dir = policy_dir("invalid");
    std::fs::write(
        dir.join("50_typo.cedar"),
        "@id(\"typo\")\n\npermit (principal, action, resource) when { resource.sensitiv };\n",
    )
    .unwrap();
    let data = dir.join("data");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("VIGIE_POLICY__DIR", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vigie serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vigie started with an invalid policy set");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("50_typo.cedar:3:"), "names the file and line: {err}");
    assert!(err.contains("sensitiv"), "and the reason: {err}");
}

#[test]
fn ops_validate_and_evaluate_a_policy_set_before_deploying_it() {
    let out = Command::new(BIN).args(["policy", "validate"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid against the schema"));

    let dir = policy_dir("cli");
    std::fs::write(dir.join("90_test.cedar"), NO_PASSWORD_ON_DEMO_APP).unwrap();
    let out = Command::new(BIN).args(["policy", "validate"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join("91_bad.cedar"), "@id(\"bad\") forbid (principal, action, resource) when { 1 + \"a\" };")
        .unwrap();
    let out = Command::new(BIN).args(["policy", "validate"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("91_bad.cedar:1:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A nurse with password + TOTP on a sensitive client: refused, the card, the key or e-CPS would do.
    let eval = |args: &[&str]| Command::new(BIN).args(["policy", "eval"]).args(args).output().unwrap();
    let out = eval(&[
        "--principal",
        r#"{"category": "paramedical", "profession_code": "60"}"#,
        "--action",
        "login_to_client",
        "--resource",
        r#"{"type": "client", "id": "dpi", "sensitive": true}"#,
        "--context",
        r#"{"authentication": {"mie": "password_totp"}}"#,
    ]);
    assert_eq!(out.status.code(), Some(3), "refused: {}", String::from_utf8_lossy(&out.stderr));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["allowed"], false);
    assert_eq!(d["step_up"], serde_json::json!(["cps", "cpe", "fido2", "cps_via_psc", "ecps"]));
    assert!(d["policies"].as_array().unwrap().iter().any(|p| p == "login-sensitive-no-password-totp"), "{d}");
    // A physician with a CPS on the DMP: allowed.
    let out = eval(&[
        "--principal",
        r#"{"category": "medical", "profession_code": "10", "has_idnat": true}"#,
        "--action",
        "access_dmp",
        "--resource",
        r#""dmp""#,
        "--context",
        r#"{"authentication": {"mie": "cps"}}"#,
    ]);
    assert!(out.status.success(), "{} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // A typo in the question is an error, not a different question.
    let out = eval(&["--action", "login_to_client", "--resource", r#""dmp""#, "--context", r#"{"authentcation": {}}"#]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_outside_the_internal_zones_password_and_totp_is_not_enough() {
    // This machine's loopback is not in the establishment's only zone: the caller is `external`.
    let gw = Gateway::start(&[("VIGIE_POLICY__ZONES", r#"{internal=["10.0.0.0/8"]}"#)]).await;
    let refused = password_login(&gw).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("/login/cps?flow="), "a card is offered instead: {}", refused.body);
    gw.audit_line(|l| {
        l["kind"] == "policy_decision"
            && l["client_id"] == "demo-app"
            && l["reason"].as_str().is_some_and(|r| r.contains("zone external"))
            && l["object"].as_str().is_some_and(|o| o.contains("external-zone-rie-mie-only"))
    })
    .await;
    // The card does it from anywhere.
    let mut card = gw.browser_with_demo_card("demo.medecin");
    let code = card.sign_in_with_card(&Authz::new(&gw, "demo-app")).await;
    assert!(!code.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_account_stays_off_sensitive_clients() {
    let gw = Gateway::start(&[]).await;
    let dir = gw.data_dir.display().to_string();
    let vigie = |args: &[&str]| Command::new(BIN).args(args).args(["--data-dir", &dir]).output().unwrap();
    // The médecin's account becomes a shared one: even with the card, not the DPI (no MIE would do).
    let out = vigie(&["users", "set-kind", "demo.medecin", "generic"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut card = gw.browser_with_demo_card("demo.medecin");
    let r = card.authorize(&Authz::new(&gw, "demo-dpi")).await;
    let flow = query_of(&format!("https://x{}", r.location()))["flow"].clone();
    let refused = card.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("les règles de l&#39;établissement ne permettent pas"), "{}", refused.body);
    gw.audit_line(|l| {
        l["kind"] == "policy_decision"
            && l["object"].as_str().is_some_and(|o| o.contains("generic-account-never-sensitive"))
    })
    .await;
    // …but a non-sensitive client, yes.
    assert!(!card.sign_in_with_card(&Authz::new(&gw, "demo-app")).await.is_empty());
}

/// The demo's persons each hold some of the MIE: the médecin a CPS, the HR officer a CPE, Dr Marie
/// Durand an e-CPS and a CPS at the PSC stand-in; each can register a FIDO2 key after a password +
/// TOTP login. Once they have left, every one of these is refused by `employment-not-active`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_who_left_gets_nowhere_whatever_the_mie() {
    const PSC_SECRET: &str = "s3cret-of-the-policy-test";
    let psc_port = free_port();
    let issuer = format!("http://127.0.0.1:{psc_port}/auth/realms/esante-wallet");
    let gw = Gateway::start(&[
        ("VIGIE_PSC__ISSUER", issuer.as_str()),
        ("VIGIE_PSC__CLIENT_ID", "vigie"),
        ("VIGIE_PSC__CLIENT_SECRET", PSC_SECRET),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS", "1"),
    ])
    .await;
    let psc = PscSandbox::start(psc_port, PSC_SECRET, &[gw.port]);
    // While still active, the médecin registers a key (the demo takes it without attestation).
    let (mut b, _, _, _) = logged_in(&gw, "demo-app", &["demo.medecin"]).await;
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé du médecin").await;
    let dir = gw.data_dir.display().to_string();
    for who in ["demo.medecin", "demo.rh", "demo.durand"] {
        let out = Command::new(BIN).args(["users", "set-status", who, "left", "--data-dir", &dir]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(BIN).args(["users", "set-status", "demo.interne", "retired", "--data-dir", &dir]).output();
    let err = String::from_utf8_lossy(&out.as_ref().unwrap().stderr).into_owned();
    assert!(!out.unwrap().status.success() && err.contains("unknown employment status"), "{err}");
    let app = || Authz::new(&gw, "demo-app");

    let mut b = gw.browser();
    let r = b.authorize(&app()).await;
    let user = gw.user("demo.medecin").clone();
    let totp = gw.totp("demo.medecin").await;
    let password = b.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    refused_as_left(&gw, &password, "password_totp").await;

    let mut card = gw.browser_with_demo_card("demo.medecin");
    refused_as_left(&gw, &card_login(&mut card, &app()).await, "cps").await;
    let mut card = gw.browser_with_demo_card("demo.rh");
    refused_as_left(&gw, &card_login(&mut card, &app()).await, "cpe").await;

    refused_as_left(&gw, &key_assertion(&mut gw.browser(), &app(), &mut key).await, "fido2").await;

    let offers_psc = || async {
        let mut b = gw.browser();
        let r = b.authorize(&app()).await;
        b.get(&r.location()).await.body.contains("/login/psc?flow=").then_some(())
    };
    eventually(15, offers_psc).await.expect("the login page offers PSC once its probe reaches it");
    for (means, mie) in [("ecps", "ecps"), ("card", "cps_via_psc")] {
        let mut b = gw.browser();
        let r = b.authorize(&app()).await;
        let page = b.get(&r.location()).await;
        psc.next_login("810001234567", means).await;
        let flow = page.hidden("flow").expect("flow");
        let (_, callback) = b.follow(&format!("/login/psc?flow={flow}"), |u| u.contains("/login/psc/callback")).await;
        let (done, _) = b.follow(&callback.expect("PSC sends the browser back"), |_| false).await;
        refused_as_left(&gw, &done, mie).await;
    }
}

/// Authorization request → `/login/cps` with the card the browser presents: the answer.
async fn card_login(b: &mut Browser<'_>, a: &Authz) -> Resp {
    let r = b.authorize(a).await;
    let flow = query_of(&format!("https://x{}", r.location()))["flow"].clone();
    b.get(&format!("/login/cps?flow={flow}")).await
}

/// `r`, the end of a login with `mie` by someone who has left, is the policy's refusal, audited
/// as decided by `employment-not-active` with nothing else that would do.
async fn refused_as_left(gw: &Gateway, r: &Resp, mie: &str) {
    assert_eq!(r.status, 403, "{mie}: {} {:?}", r.body, r.header("location"));
    assert!(r.body.contains("les règles de l&#39;établissement ne permettent pas"), "{mie}: {}", r.body);
    let request_id = r.header("x-request-id").expect("a request id").to_owned();
    let line = gw.audit_line(|l| l["kind"] == "policy_decision" && l["request_id"] == request_id.as_str()).await;
    assert_eq!(
        (line["method"].as_str(), line["object"].as_str(), line["outcome"].as_str()),
        (Some(mie), Some("employment-not-active"), Some("failure")),
        "{line}"
    );
    let reason = line["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("refused by [employment-not-active]; would do: []; "), "{mie}: {reason}");
}
