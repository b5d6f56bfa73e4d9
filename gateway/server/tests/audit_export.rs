//! What the audit trail says and where its copies go, against the real binary: the login lines
//! (and the card accepted past its CRL's grace) name who, which client, from where and which
//! request; no secret reaches the trail; the syslog export reaches a real rsyslogd over TLS as
//! parsed RFC 5424 messages, and a collector outage holds no login.
use crate::card_login::{Pki, card_env, card_login, start};
use crate::common;

use common::crl::CrlServer;
use common::rsyslog::Rsyslog;
use common::*;
use serde_json::Value;
use vigie_igc_sante::testpki::CardSpec;

/// A password + TOTP login at `demo-app` and its tokens; returns what must never be in the
/// trail: the password, the TOTP code, the code and the tokens.
async fn password_login(gw: &Gateway) -> (User, Vec<String>) {
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (user, totp) = gw.any_user_totp(&gw.all_usernames()).await;
    let done = b.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    assert_eq!(done.status, 303, "the login succeeds: {}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("a code");
    let t = redeem(gw, &a, &code).await;
    let secrets = vec![user.password.clone(), totp, code, t.access, t.refresh, t.id];
    (user, secrets)
}

/// The line of a successful login from the trail, with every field a reviewer needs.
fn assert_names_who_what_where(line: &Value, client: &str) {
    for field in ["subject", "client_id", "ip", "request_id", "method", "acr", "sid", "at"] {
        assert!(line[field].as_str().is_some_and(|v| !v.is_empty()), "`{field}` missing in {line}");
    }
    assert_eq!(line["client_id"], client, "{line}");
    assert_eq!(line["outcome"], "success", "{line}");
}

/// Whether a whole-token occurrence of `secret` is anywhere in the trail's text values. A TOTP
/// code is six digits: only a run of digits equal to it counts, not digits inside a timestamp.
fn leaks(trail: &str, secret: &str) -> bool {
    if secret.chars().all(|c| c.is_ascii_digit()) {
        trail.split(|c: char| !c.is_ascii_digit()).any(|run| run == secret)
    } else {
        trail.contains(secret)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_past_its_crl_grace_and_a_password_login_say_who_which_client_where_and_which_request() {
    let pki = Pki::new("audit-grace");
    let now = now();
    // The CRL's nextUpdate and its grace are both over: the card is let through unchecked.
    let crl = CrlServer::start(pki.pki.crl_der(&[], now - 600, now - 120).unwrap()).await;
    let card = pki.issue(CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin"), &crl);
    let env = card_env(
        &pki,
        &crl,
        &pki.dir.join("crl-cache"),
        &[("VIGIE_CARDS__TRUST__GRACE_SECS", "1"), ("VIGIE_CARDS__TRUST__AFTER_GRACE", "accept")],
    );
    let gw = start(&env).await;
    let (_, done) = card_login(&gw, &card, "demo-dpi").await;
    assert_eq!(done.status, 303, "the card logs in past the grace (after_grace = accept): {}", done.body);
    let (user, secrets) = password_login(&gw).await;
    let trail = gw.settled_audit().await;

    let unchecked: Vec<&Value> = trail.iter().filter(|l| l["kind"] == "card_revocation_unchecked").collect();
    assert_eq!(unchecked.len(), 1, "one line for the card let through: {trail:#?}");
    let unchecked = unchecked[0];
    assert_eq!(unchecked["outcome"], "success", "{unchecked}");
    assert_eq!(unchecked["idnat"], "810100000011", "{unchecked}");
    assert!(unchecked["object"].as_str().is_some_and(|o| !o.is_empty()), "the card's fingerprint: {unchecked}");
    for field in ["subject", "client_id", "ip", "request_id"] {
        assert!(unchecked[field].as_str().is_some_and(|v| !v.is_empty()), "`{field}` missing in {unchecked}");
    }
    assert!(trail.iter().all(|l| l["kind"] != "refused" || l["outcome"] != "success"), "{trail:#?}");
    // The login it let through: the same request, the same person.
    let card_login = trail
        .iter()
        .find(|l| l["kind"] == "login" && l["request_id"] == unchecked["request_id"])
        .unwrap_or_else(|| panic!("the card's login line shares the request id: {trail:#?}"));
    assert_names_who_what_where(card_login, "demo-dpi");
    assert_eq!(card_login["subject"], unchecked["subject"]);
    assert_eq!(card_login["method"], "cps");

    let password = trail
        .iter()
        .find(|l| l["kind"] == "login" && l["username"] == user.username.as_str())
        .unwrap_or_else(|| panic!("the password login's line: {trail:#?}"));
    assert_names_who_what_where(password, "demo-app");
    assert_eq!(password["method"], "password_totp");

    let text = std::fs::read_to_string(gw.data_dir.join("audit.jsonl")).expect("audit.jsonl");
    for secret in &secrets {
        assert!(!leaks(&text, secret), "a secret ({} characters) is in the audit trail", secret.len());
    }
}

/// The value of a Prometheus counter with these labels, 0 when absent.
async fn counter(gw: &Gateway, name_and_labels: &str) -> f64 {
    let text = gw.http().get(gw.url("/metrics")).send().await.expect("/metrics").text().await.expect("text");
    text.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_reach_a_real_rsyslog_over_tls_as_rfc5424_and_an_outage_holds_no_login() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rsyslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rsyslog = Rsyslog::start(&dir);
    let url = format!("tls://localhost:{}", rsyslog.port);
    let ca = rsyslog.ca.display().to_string();
    let gw = Gateway::start(&[
        ("VIGIE_AUDIT_EXPORT__SYSLOG__URL", &url),
        ("VIGIE_AUDIT_EXPORT__SYSLOG__CA_FILE", &ca),
        ("VIGIE_AUDIT_EXPORT__SYSLOG__HOSTNAME", "vigie-test"),
        ("VIGIE_AUDIT_EXPORT__SYSLOG__QUEUE", "8"),
    ])
    .await;

    let (user, _) = password_login(&gw).await;
    let line = gw.audit_line(|l| l["kind"] == "login" && l["username"] == user.username.as_str()).await;
    let request_id = line["request_id"].as_str().unwrap().to_owned();
    let m = rsyslog
        .message(30, |m| m["msgid"] == "login" && m["rfc5424-sd"]["vigie@32473"]["request_id"] == request_id.as_str())
        .await;
    // rsyslog parsed it as RFC 5424: version 1, authpriv (10), informational (6), our header.
    assert_eq!(m["protocol"], "1", "{m}");
    assert_eq!(m["facility"], "10", "{m}");
    assert_eq!(m["severity"], "6", "{m}");
    assert_eq!(m["app"], "vigie", "{m}");
    assert!(m["timestamp"].as_str().is_some_and(|t| t.starts_with(&line["at"].as_str().unwrap()[..19])), "{m}");
    let sd = &m["rfc5424-sd"]["vigie@32473"];
    for field in ["subject", "client_id", "ip", "request_id", "method", "acr", "sid"] {
        assert_eq!(sd[field], line[field], "SD param {field}: {m}");
    }
    assert_eq!(sd["kind"], "login");
    assert_eq!(sd["outcome"], "success");
    // MSG: the event itself, after the UTF-8 BOM (RFC 5424 §6.4).
    let msg = m["msg"].as_str().unwrap();
    let event: Value = serde_json::from_str(msg.trim_start_matches('\u{feff}')).expect("MSG is the JSON event");
    assert_eq!(event, line);

    // The collector goes away: logins go on, at their usual pace, and what the queue cannot
    // hold is counted as dropped.
    let port = rsyslog.port;
    rsyslog.stop();
    let started = std::time::Instant::now();
    for _ in 0..4 {
        password_login(&gw).await;
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "logins were held: {:?}", started.elapsed());
    let dropped = eventually(30, || async {
        let n = counter(&gw, "vigie_audit_export_dropped_total{sink=\"syslog\"}").await;
        (n > 0.0).then_some(n)
    })
    .await;
    assert!(dropped.is_some(), "drops during the outage are counted");

    // Back, with the same certificate: the next login reaches the collector again.
    let rsyslog = Rsyslog::start_on(&dir, port);
    let (user, _) = password_login(&gw).await;
    let trail = gw.settled_audit().await;
    let last = trail.iter().rev().find(|l| l["kind"] == "login" && l["username"] == user.username.as_str());
    let request_id = last.expect("the last login's line")["request_id"].as_str().unwrap().to_owned();
    rsyslog.message(60, |m| m["rfc5424-sd"]["vigie@32473"]["request_id"] == request_id.as_str()).await;
}
