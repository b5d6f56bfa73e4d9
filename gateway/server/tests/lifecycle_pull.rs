//! The HR feed pulled over HTTPS by `serve` and by `vigie users feed` (docs/identity-lifecycle.md,
//! "Pulled over HTTPS"), against a real HTTPS server (`lifecycle/hr_server.py`: Python's
//! http.server under an rcgen CA, a bearer token, ETag / Last-Modified, 304).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{run_with, stdout};
use crate::common::*;
use crate::lifecycle::{feed_text, json_of, listed, people, person};

const TOKEN: &str = "sirh-export-token-3f9Q";

/// The HR server, stopped on drop.
struct HrServer {
    child: Child,
    dir: PathBuf,
    url: String,
    ca: PathBuf,
    export: PathBuf,
    /// Vigie's copy of the token (`lifecycle.hr_feed.token_file`).
    token_file: PathBuf,
    /// The token the HR server takes, read at each request.
    accepted: PathBuf,
    log: PathBuf,
}

impl HrServer {
    fn start(export_text: &str) -> HrServer {
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hr-https-{}-{}", std::process::id(), free_port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("HR server dir");
        let (ca, cert, key) = crate::common::ldap::tls_files(&dir);
        let export = dir.join("export.csv");
        std::fs::write(&export, export_text).expect("the export");
        let token_file = dir.join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("the token");
        let accepted = dir.join("accepted-token");
        std::fs::write(&accepted, format!("{TOKEN}\n")).expect("the token");
        let log = dir.join("requests.log");
        std::fs::write(&log, "").expect("the log");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lifecycle/hr_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .args([&cert, &key, &export, &accepted, &log])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (the HR export server of this test needs Python 3)");
        // It prints `ready` once listening.
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
            .expect("the HR server's first line");
        assert_eq!(line.trim(), "ready", "the HR server did not start");
        HrServer {
            child,
            dir,
            url: format!("https://localhost:{port}/exports/sirh.csv"),
            ca,
            export,
            token_file,
            accepted,
            log,
        }
    }

    /// The answers so far, `<status> if-none-match=<yes|no>`.
    fn answers(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VIGIE_LIFECYCLE__HR_FEED__URL", self.url.clone()),
            ("VIGIE_LIFECYCLE__HR_FEED__CA_FILE", self.ca.display().to_string()),
            ("VIGIE_LIFECYCLE__HR_FEED__TOKEN_FILE", self.token_file.display().to_string()),
        ]
    }
}

impl Drop for HrServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (generously: a loaded CI machine) for an audit line.
async fn audit_line_within(gw: &Gateway, what: impl Fn(&Value) -> bool, why: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(l) = gw.audit_lines().into_iter().find(|l| what(l)) {
            return l;
        }
        assert!(Instant::now() < deadline, "{why}: no such audit line in {:#?}", gw.audit_lines());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn counter(gw: &Gateway, result: &str) -> f64 {
    let text = gw.http().get(gw.url("/metrics")).send().await.expect("/metrics").text().await.expect("text");
    let name = format!("vigie_hr_feed_total{{result=\"{result}\"}}");
    text.lines().find_map(|l| l.strip_prefix(&name).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

fn feed_line(l: &Value, starts: &str) -> bool {
    l["kind"] == "lifecycle" && l["actor"] == "hr-feed" && l["reason"].as_str().is_some_and(|r| r.starts_with(starts))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_pulls_the_hr_export_over_https_skips_an_unchanged_one_and_a_failed_pull_empties_nobody() {
    let rows = people(10);
    let hr = HrServer::start(&feed_text(&rows));
    let env = hr.env();
    let mut with: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with.push(("VIGIE_LIFECYCLE__HR_FEED__INTERVAL_SECS", "1"));
    let gw = Gateway::start(&with).await;

    // The first pull brings the 10 joiners.
    let line = audit_line_within(&gw, |l| feed_line(l, "applied: 10 joiner(s)"), "the first pull").await;
    assert_eq!(line["outcome"], "success", "{line}");
    assert_eq!(person(&listed(&gw, &[]), "H00007")["username"], "hr.p7");

    // The next pulls ask "changed since?" and the unchanged export is not read again.
    let deadline = Instant::now() + Duration::from_secs(40);
    while !hr.answers().iter().any(|a| a == "304 if-none-match=yes") {
        assert!(Instant::now() < deadline, "no conditional pull answered 304: {:?}", hr.answers());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counter(&gw, "not_modified").await >= 1.0);
    assert_eq!(counter(&gw, "unchanged").await, 0.0, "an unchanged export was run again");

    // HR's next export moves one person: pulled whole (the ETag changed) and applied.
    let mut moved = rows.clone();
    moved[2] = moved[2].replace("UF7001:100", "UF7002:100");
    std::fs::write(&hr.export, feed_text(&moved)).expect("the new export");
    audit_line_within(&gw, |l| feed_line(l, "applied: 0 joiner(s), 1 mover(s)"), "the changed export").await;
    assert_eq!(person(&listed(&gw, &[]), "H00003")["units"][0]["uf"], "UF7002");

    // HR rotates the token and Vigie still has the old one: a failure in the trail and the metric,
    // nobody ended.
    std::fs::write(&hr.accepted, "rotated-by-hr\n").expect("the token");
    let failed = audit_line_within(
        &gw,
        |l| l["kind"] == "lifecycle" && l["actor"] == "hr-feed" && l["outcome"] == "failure",
        "a refused pull",
    )
    .await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("refused the pull (401 Unauthorized)") && reason.contains("token_file"), "{failed}");
    assert!(!failed.to_string().contains(TOKEN), "the token reached the trail: {failed}");
    assert!(counter(&gw, "failed").await >= 1.0);

    // The token right again but an empty export (HR's job died half-way): refused, not applied.
    std::fs::write(&hr.accepted, format!("{TOKEN}\n")).expect("the token");
    std::fs::write(&hr.export, "").expect("an empty export");
    audit_line_within(
        &gw,
        |l| {
            l["kind"] == "lifecycle"
                && l["outcome"] == "failure"
                && l["reason"].as_str().is_some_and(|r| r.contains("sent an empty export"))
        },
        "an empty export",
    )
    .await;
    let hr_fed: Vec<Value> = listed(&gw, &[]).into_iter().filter(|p| p["source"] == "hr").collect();
    assert_eq!(hr_fed.len(), 10, "{hr_fed:?}");
    assert!(hr_fed.iter().all(|p| p["disabled"] == false), "a failed pull ended people: {hr_fed:?}");
    let log = std::fs::read_to_string(gw.data_dir.with_file_name("vigie.log")).expect("the gateway's log");
    assert!(log.contains("HR feed failed") && !log.contains(TOKEN), "the token reached the log, or no failure logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_pulls_the_configured_export_and_refuses_a_server_it_does_not_trust() {
    let hr = HrServer::start(&feed_text(&people(5)));
    let gw = Gateway::start(&[]).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path").to_owned();
    let env = hr.env();
    let with: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let feed = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["users", "feed", "--data-dir", &dir];
        args.extend(extra);
        run_with(&args, env)
    };

    let dry = json_of(&feed(&["--dry-run", "--json"], &with));
    assert_eq!(dry["result"], "dry_run", "{dry}");
    assert_eq!(dry["file"], hr.url.as_str());
    assert_eq!(dry["diff"]["joiners"].as_array().map(Vec::len), Some(5), "{dry}");
    let text = stdout(&feed(&[], &with));
    assert!(text.starts_with(&format!("HR feed {} (applied): 5 joiner(s)", hr.url)), "{text}");

    // Without the CA file the HR server's certificate is not trusted: nothing pulled.
    let untrusted: Vec<(&str, &str)> =
        with.iter().copied().filter(|(k, _)| *k != "VIGIE_LIFECYCLE__HR_FEED__CA_FILE").collect();
    let out = feed(&["--dry-run"], &untrusted);
    assert!(!out.status.success(), "an untrusted HR server was pulled: {}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pulling the HR export"), "{err}");

    // An http:// URL is refused at configuration time.
    let mut plain = with.clone();
    let http = hr.url.replace("https://", "http://");
    plain[0] = ("VIGIE_LIFECYCLE__HR_FEED__URL", http.as_str());
    let out = feed(&["--dry-run"], &plain);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("lifecycle.hr_feed.url") && err.contains("https:// only"), "{err}");
}
