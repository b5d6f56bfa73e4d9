//! Roles in the HR feed against the real binary (docs/identity-lifecycle.md, "Roles"): a mover's
//! new role, applied by `serve`'s periodic feed, decides the very next login (the feed tells the
//! replicas: no principal cached for `directory.identity_cache_secs` outlives it), and a role the
//! feed no longer lists is taken back.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::lifecycle::feed_text;
use crate::policy::policy_dir;

/// Test policy: people of the card office (role `cards`) do not use the demo app.
const CARD_OFFICE_NOT_ON_DEMO_APP: &str = r#"
@id("test-card-office-not-on-demo-app")
forbid (principal is Vigie::Identity, action == Vigie::Action::"login_to_client", resource == Vigie::Client::"demo-app")
when { principal.roles.contains("cards") };
"#;

const NURSE: &str = "M000101,Martin,Camille,1988-03-14,Infirmier,IDE,,UF1203:100,demo.infirmiere,,,,staff";

/// A password + TOTP login of the demo nurse to the demo app in a fresh browser: its status.
async fn nurse_login(gw: &Gateway) -> u16 {
    let mut browser = gw.browser();
    let r = browser.authorize(&Authz::new(gw, "demo-app")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let user = gw.user("demo.infirmiere").clone();
    let totp = gw.totp("demo.infirmiere").await;
    browser.submit_login(&r.location(), &user.username, &user.password, &totp).await.status
}

/// Waits (30 s at most) for the feed run that applied `text`'s change; then the login status,
/// polled a few seconds only: far less than the identity cache, so a stale principal would show.
async fn after_feed(gw: &Gateway, drop: &std::path::Path, n: usize, row: &str, roles: &str, want: u16) {
    let text = feed_text(&[format!("{row},{roles}")]).replacen(",kind\n", ",kind,roles\n", 1);
    std::fs::write(drop.join(format!("sirh-{n}.csv")), text).unwrap();
    let line = gw
        .audit_line(|l| {
            l["kind"] == "lifecycle"
                && l["object"] == "person:M000101"
                && l["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("roles of the HR feed") && r.ends_with(roles_shown(roles)))
        })
        .await;
    assert!(line["actor"].as_str().is_some_and(|a| a.starts_with("hr-feed:")), "{line}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = nurse_login(gw).await;
    while status != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = nurse_login(gw).await;
    }
    assert_eq!(status, want, "the login after the feed gave {roles:?}");
}

fn roles_shown(roles: &str) -> &str {
    if roles.is_empty() { "-> -" } else { roles }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_movers_new_role_from_the_feed_decides_the_next_login_and_is_taken_back() {
    let policies = policy_dir("feed-roles");
    std::fs::write(policies.join("90_test.cedar"), CARD_OFFICE_NOT_ON_DEMO_APP).unwrap();
    let drop = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hr-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&drop);
    std::fs::create_dir_all(&drop).unwrap();
    let (policies_s, drop_s) = (policies.display().to_string(), drop.display().to_string());
    let gw = Gateway::start(&[
        ("VIGIE_POLICY__DIR", policies_s.as_str()),
        ("VIGIE_LIFECYCLE__HR_FEED__PATH", drop_s.as_str()),
        ("VIGIE_LIFECYCLE__HR_FEED__INTERVAL_SECS", "1"),
        // A principal cached this long would outlive the test: only the feed's signal can apply it.
        ("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "600"),
    ])
    .await;
    assert_eq!(nurse_login(&gw).await, 303, "the nurse uses the demo app before any role");

    // HR moves her to the card office: the next login is refused by the policy on her new role.
    after_feed(&gw, &drop, 1, NURSE, "cards", 403).await;
    let refusal = gw
        .audit_line(|l| {
            l["kind"] == "policy_decision"
                && l["outcome"] == "failure"
                && l["object"].as_str().is_some_and(|o| o.contains("test-card-office-not-on-demo-app"))
        })
        .await;
    assert_eq!(refusal["client_id"], "demo-app", "{refusal}");

    // HR no longer lists the role: taken back, the next login is let in again.
    after_feed(&gw, &drop, 2, NURSE, "", 303).await;
    let _ = std::fs::remove_dir_all(&drop);
    let _ = std::fs::remove_dir_all(&policies);
}
