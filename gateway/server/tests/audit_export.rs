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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_reach_a_real_rsyslog_over_tls_as_rfc5424_and_an_outage_holds_no_login() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rsyslog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rsyslog = Rsyslog::start(&dir);
    let url = format!("tls://localhost:{}", rsyslog.port);
    let ca = rsyslog.ca.display().to_string();
    let gw = Gateway::start(&[
        ("VIGIE_AUDIT__SYSLOG__URL", &url),
        ("VIGIE_AUDIT__SYSLOG__CA_FILE", &ca),
        ("VIGIE_AUDIT__SYSLOG__HOSTNAME", "vigie-test"),
        ("VIGIE_AUDIT__SYSLOG__QUEUE", "8"),
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
    // The trail's line is the event with its place in the chain around it (docs/audit.md): the
    // copy carries the event alone.
    let mut chained = line.clone();
    for field in ["seq", "prev", "hash"] {
        assert!(chained.as_object_mut().unwrap().remove(field).is_some(), "the trail's line has no {field}: {line}");
    }
    assert_eq!(event, chained);

    // The collector goes away: logins go on, at their usual pace, and what the queue cannot
    // hold is counted as dropped.
    let port = rsyslog.port;
    let rsyslog_count_before_restart = rsyslog.received().len();
    let outage_began = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
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

    // Back, with the same certificate: once the writer is through its backoff and has sent what
    // its queue held (the queue is full of the outage's events: until it drains, new events are
    // the ones dropped), the next login reaches the collector again.
    let before = rsyslog_count_before_restart;
    let rsyslog = Rsyslog::start_on(&dir, port);
    rsyslog.message(60, |m| m["timestamp"].as_str().is_some_and(|t| t > outage_began.as_str())).await;
    assert!(rsyslog.received().len() > before, "the queued events reached the collector once it was back");
    let (user, _) = password_login(&gw).await;
    let trail = gw.settled_audit().await;
    let last = trail.iter().rev().find(|l| l["kind"] == "login" && l["username"] == user.username.as_str());
    let request_id = last.expect("the last login's line")["request_id"].as_str().unwrap().to_owned();
    rsyslog.message(60, |m| m["rfc5424-sd"]["vigie@32473"]["request_id"] == request_id.as_str()).await;
}

/// `tests/fhir-audit`'s venv (pip `fhir.resources`), made when missing.
fn fhir_validator() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fhir-audit");
    let setup = std::process::Command::new(root.join("setup")).status().expect("running tests/fhir-audit/setup");
    assert!(setup.success(), "tests/fhir-audit/setup failed (python3 with venv, and pip access, are needed)");
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_exports_as_fhir_audit_events_that_fhir_resources_validates() {
    let gw = Gateway::start(&[]).await;
    let (user, _) = password_login(&gw).await;
    let mut card = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-dpi");
    let code = card.sign_in_with_card(&a).await;
    redeem(&gw, &a, &code).await;
    let trail = gw.settled_audit().await;
    let medecin = trail
        .iter()
        .find(|l| l["kind"] == "login" && l["method"] == "cps")
        .and_then(|l| l["subject"].as_str())
        .expect("the card login's line")
        .to_owned();

    // A trail written with a sequence and hashes around each event, a checkpoint among them, and
    // a VIHF line (the professional's idNat, the patient's INS hashed).
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fhir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chained = dir.join("chained.jsonl");
    let vihf = serde_json::json!({
        "seq": 7, "prev": "sha256:aa", "hash": "sha256:bb",
        "event": {
            "at": "2025-12-05T10:00:00.123456789Z", "kind": "vihf_issued", "outcome": "success",
            "subject": medecin, "idnat": "810100000011", "client_id": "demo-dpi", "ip": "10.1.2.3",
            "request_id": "req-vihf", "object": "_vihf-1", "patient": "sha256:0123abcd", "sid": "s1",
            "method": "cps", "acr": "urn:vigie:loa:2fa-phr", "future_field": 1
        }
    });
    let checkpoint = serde_json::json!({"checkpoint": {"size": 7, "head": "sha256:bb"}});
    std::fs::write(&chained, format!("{vihf}\n{checkpoint}\n")).unwrap();

    let export = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(["audit", "export"])
            .args(args)
            .output()
            .expect("running vigie audit export");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "vigie audit export {args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let file = gw.data_dir.join("audit.jsonl");
    let file = file.to_str().unwrap();
    let fhir = export(&["--format", "fhir", "--observer", &gw.issuer, file, chained.to_str().unwrap()]);
    let resources: Vec<Value> = fhir.lines().map(|l| serde_json::from_str(l).expect("one resource a line")).collect();
    let events = std::fs::read_to_string(file).unwrap().lines().count();
    assert_eq!(resources.len(), events + 1, "every event of both files, not the checkpoint");

    let out = dir.join("export.ndjson");
    std::fs::write(&out, &fhir).unwrap();
    let root = fhir_validator();
    let checked = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("validate.py"))
        .arg(&out)
        .output()
        .expect("running tests/fhir-audit/validate.py");
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success(), "fhir.resources refuses the export: {said}");
    assert!(said.contains(&format!("valid: {} AuditEvent", resources.len())), "{said}");

    let vihf = resources.iter().find(|r| r["subtype"][1]["code"] == "vihf_issued").expect("the VIHF's resource");
    assert_eq!(vihf["agent"][0]["who"]["identifier"]["system"], "urn:oid:1.2.250.1.71.4.2.1");
    assert_eq!(vihf["agent"][0]["who"]["identifier"]["value"], "810100000011");
    assert_eq!(vihf["agent"][1]["who"]["identifier"]["value"], "demo-dpi");
    assert_eq!(vihf["entity"][0]["what"]["identifier"]["value"], "sha256:0123abcd");
    let login = resources
        .iter()
        .find(|r| r["subtype"][0]["code"] == "110122" && r["agent"][0]["name"] == user.username.as_str())
        .expect("the password login's resource");
    assert_eq!(login["type"]["code"], "110114");
    assert_eq!(login["outcome"], "0");

    // One professional over a period: the médecin's events of today, by directory id and idNat.
    let today = &trail[0]["at"].as_str().unwrap()[..10];
    let theirs =
        export(&["--from", today, "--subject", &medecin, "--subject", "810100000011", file, chained.to_str().unwrap()]);
    let theirs: Vec<Value> = theirs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!theirs.is_empty());
    assert!(theirs.iter().all(|e| e["subject"] == medecin.as_str()), "{theirs:#?}");
    assert!(
        theirs.iter().all(|e| e["kind"] != "vihf_issued"),
        "the VIHF of a year ago is outside the period: {theirs:#?}"
    );

    hands_over(&dir, &root, file, &chained, &medecin, theirs.len()).await;
}

/// `vigie audit handover`: the archive opens with `tar`, its manifest checks with `sha256sum -c`
/// and has the digest the command printed, its traces are the professional's over the period,
/// its FHIR file validates; a changed trace fails the check.
async fn hands_over(
    dir: &std::path::Path,
    fhir: &std::path::Path,
    trail: &str,
    chained: &std::path::Path,
    who: &str,
    today: usize,
) {
    let archive = dir.join("handover.tar");
    let out = std::process::Command::new(BIN)
        .args(["audit", "handover", "--subject", who, "--subject", "810100000011", "--from", "2025-01-01"])
        .args(["--to", "2100-01-01", "--out", archive.to_str().unwrap(), trail, chained.to_str().unwrap()])
        .output()
        .expect("running vigie audit handover");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "handover: {said}{}", String::from_utf8_lossy(&out.stderr));
    let digest =
        said.split("SHA-256 of SHA256SUMS: ").nth(1).and_then(|r| r.split_whitespace().next()).expect("the digest");
    let opened = dir.join("opened");
    std::fs::create_dir_all(&opened).unwrap();
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .current_dir(&opened)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    };
    assert!(run("tar", &["-xf", archive.to_str().unwrap()]).status.success(), "tar reads the archive");
    let sums = run("sha256sum", &["SHA256SUMS"]);
    assert!(String::from_utf8_lossy(&sums.stdout).starts_with(digest), "the manifest's digest is the printed one");
    let check = run("sha256sum", &["-c", "SHA256SUMS"]);
    assert!(check.status.success(), "sha256sum -c: {}", String::from_utf8_lossy(&check.stdout));
    assert!(std::fs::read_to_string(opened.join("LISEZMOI.txt")).unwrap().contains(digest));
    let traces: Vec<Value> = std::fs::read_to_string(opened.join("traces.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(traces.len(), today + 1, "today's events of the médecin and the VIHF of a year ago");
    let valid = std::process::Command::new(fhir.join(".venv/bin/python"))
        .arg(fhir.join("validate.py"))
        .arg(opened.join("traces.fhir.ndjson"))
        .status()
        .unwrap();
    assert!(valid.success(), "the archive's FHIR file validates");
    // One trace removed on the way: the check names the file.
    let kept: Vec<String> = traces.iter().skip(1).map(Value::to_string).collect();
    std::fs::write(opened.join("traces.jsonl"), kept.join("\n") + "\n").unwrap();
    let check = run("sha256sum", &["-c", "SHA256SUMS"]);
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("traces.jsonl: FAILED"));
}
