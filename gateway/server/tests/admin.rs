//! What the directory's administrators do from the command line, and what staff see after.
use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn vigie(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running vigie");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing stdin");
    }
    child.wait_with_output().expect("vigie output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurse_imported_from_hr_gets_a_password_and_totp_and_logs_in() {
    let gw = Gateway::start(&[]).await;
    let dir = gw.data_dir.to_str().expect("utf-8 path");
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../adapters/directory-sql/examples/hr-export.csv");

    let out = vigie(&["users", "import", csv, "--data-dir", dir], None);
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("import report");
    assert_eq!(report["identities_created"], 5, "{report}");

    // Imported accounts have no credentials yet: no login is possible.
    let short = vigie(&["users", "set-password", "tnguyen", "--data-dir", dir], Some("too short\n"));
    assert!(!short.status.success(), "a short password is refused");
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
    let unknown = vigie(&["users", "set-password", "nobody", "--data-dir", dir], Some("a long enough password\n"));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account \"nobody\""));

    let password = "Pas-de-post-it-sur-l-écran";
    let out = vigie(&["users", "set-password", "tnguyen", "--data-dir", dir], Some(&format!("{password}\n")));
    assert!(out.status.success(), "set-password: {}", String::from_utf8_lossy(&out.stderr));
    let out = vigie(&["users", "enroll-totp", "tnguyen", "--data-dir", dir], None);
    assert!(out.status.success(), "enroll-totp: {}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let secret = printed.lines().find_map(|l| l.strip_prefix("totp secret (base32): ")).expect("secret printed").trim();
    let uri = printed.lines().find(|l| l.starts_with("otpauth://totp/")).expect("otpauth URI printed");
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("Vigie%3Atnguyen"), "{uri}");

    // The nurse logs in to an application with them.
    let code = crate::common::totp::now_code(secret);
    let authz = Authz::new(&gw, "demo-cli");
    let mut browser = gw.browser();
    let r = browser.authorize(&authz).await;
    let done = browser.submit_login(&r.location(), "tnguyen", password, &code).await;
    assert_eq!(done.status, 303, "login with the enrolled credentials: {}", done.body);
    let tokens = authz.redeem(&gw, &done.redirect_params()["code"]).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let id = gw.verify_jwt(tokens.json()["id_token"].as_str().expect("id token"), "demo-cli", "RS256").await;
    assert_eq!(id["family_name"], "Nguyen");
    assert_eq!(id["acr"], ACR_2FA);
}
