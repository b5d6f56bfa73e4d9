//! The `vigie` command line, as an operator meets it.
use crate::common;

use std::process::Command;

use common::*;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("running vigie")
}

#[test]
fn check_config_names_each_bad_key_on_its_own_line_and_fails() {
    let config = temp_file(
        "bad.toml",
        r#"
issuer = "http://x"
colour = "blue"

[server]
tls_cert = "/nonexistent/tls.crt"
tls_key = "/nonexistent/tls.key"

[directory]
url = "sqlite:///tmp/vigie-check-config.db"

[keys]
file = "/tmp/vigie-check-config-keys.json"

[[clients]]
client_id = "dpi"
auth_method = "client_secret_basic"
redirect_uris = ["https://dpi.example/cb"]
flavour = "vanilla"
"#,
    );
    let out = run(&["check-config", config.to_str().expect("UTF-8 path")]);
    remove_temp(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file fails: {stderr}");
    // An unknown key hides neither the other unknown keys nor the checks of the known ones.
    for key in
        ["colour", "clients[0].flavour", "issuer", "clients[0].client_secret_hash", "server.tls_cert", "server.tls_key"]
    {
        let lines = stderr.lines().filter(|l| l.contains(&format!("`{key}`:"))).count();
        assert_eq!(lines, 1, "one line names `{key}`:\n{stderr}");
    }
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = temp_file("tls.crt", "");
    let base = dir.parent().expect("dir").to_owned();
    std::fs::write(base.join("tls.key"), "").expect("write");
    let keys = run(&["keys", "generate", "--out", base.join("keys.json").to_str().expect("UTF-8 path")]);
    assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));
    let (_, hash) = new_secret();
    let config = format!(
        r#"
issuer = "https://vigie.chu.example"
[server]
tls_cert = "{crt}"
tls_key = "{key}"
[directory]
url = "sqlite://{db}"
[keys]
file = "{keys}"
[[clients]]
client_id = "dpi"
client_secret_hash = "{hash}"
auth_method = "client_secret_basic"
redirect_uris = ["https://dpi.chu.example/cb"]
"#,
        crt = base.join("tls.crt").display(),
        key = base.join("tls.key").display(),
        db = base.join("dir.db").display(),
        keys = base.join("keys.json").display(),
    );
    let path = base.join("good.toml");
    std::fs::write(&path, config).expect("write");
    let out = run(&["check-config", path.to_str().expect("UTF-8 path")]);
    remove_temp(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

/// `vigie clients new-secret`: (secret, hash).
fn new_secret() -> (String, String) {
    let out = run(&["clients", "new-secret"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
        line.split_once('=').expect("name = value").1.trim().trim_matches('"').to_owned()
    };
    (value("client_secret "), value("client_secret_hash"))
}

#[test]
fn help_lists_every_subcommand() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "check-config", "keys", "users", "clients"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(sub)), "`{sub}` in:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_status_left_ends_the_persons_sessions_and_tokens_on_the_running_gateway() {
    let gw = Gateway::start(&[]).await;
    let (mut browser, user, _, tokens) = logged_in(&gw, "demo-app", &["demo.infirmiere"]).await;
    assert_eq!(gw.introspect("demo-app", &tokens.access).await["active"], true);
    assert_eq!(gw.introspect("demo-app", &tokens.refresh).await["active"], true);

    let data_dir = gw.data_dir.to_str().expect("UTF-8 path").to_owned();
    let out = run(&["users", "set-status", &user.username, "left", "--data-dir", &data_dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The running gateway ends the access the command recorded, within its sweep.
    let ended =
        eventually(15, || async { (gw.introspect("demo-app", &tokens.access).await["active"] == false).then_some(()) })
            .await;
    assert!(ended.is_some(), "the access token of a person who left is still active");
    assert_eq!(gw.introspect("demo-app", &tokens.refresh).await["active"], false, "the refresh family lives on");
    let line = gw.audit_line(|l| l["kind"] == "access_ended").await;
    assert_eq!(line["outcome"], "success", "{line}");
    assert!(
        line["reason"].as_str().unwrap_or_default().contains("employment status left: 1 session(s) ended"),
        "{line}"
    );
    // The browser's SSO session is gone too: back to the login page.
    let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());
}
