//! The `vigie` command line, as an operator meets it.
use crate::common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};
use vigie_igc_sante::testpki::{CardSpec, TestPki};

pub(crate) fn run(args: &[&str]) -> std::process::Output {
    run_with(args, &[])
}

/// `vigie ARGS` with only `PATH` and `env` in its environment (no `VIGIE_…` of the test's own).
pub(crate) fn run_with(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("running vigie")
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    assert_eq!(out.status.code(), Some(2), "a bad file fails: {stderr}");
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
    // A usable TLS pair: `check-config` reads it as `serve` does.
    let key = rcgen::KeyPair::generate().expect("TLS key");
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".into()]).and_then(|p| p.self_signed(&key)).expect("certificate");
    let dir = temp_file("tls.crt", &cert.pem());
    let base = dir.parent().expect("dir").to_owned();
    std::fs::write(base.join("tls.key"), key.serialize_pem()).expect("write");
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
    let path_arg = path.to_str().expect("UTF-8 path");
    let out = run(&["check-config", path_arg]);
    remove_temp(&path);
    assert_eq!(stdout(&out), format!("{path_arg}: valid (1 clients, store Embedded)\n"));
}

/// `vigie clients new-secret`: (secret, hash).
pub(crate) fn new_secret() -> (String, String) {
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
    let help = stdout(&run(&["--help"]));
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The subcommands the README's operator sections use, and clap's own `help`.
    let every = [
        "serve",
        "check-config",
        "migrate",
        "keys",
        "users",
        "clients",
        "totp",
        "cards",
        "people",
        "admin",
        "policy",
        "directory",
        "audit",
        "rpps",
        "feeds",
        "help",
    ];
    assert_eq!(listed, every, "{help}");
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
    assert_eq!(line["reason"], "employment status left: 1 session(s) ended", "{line}");
    // The browser's SSO session is gone too: back to the login page.
    let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
    assert!(r.location().starts_with("/login?flow="), "{}", r.location());
}

/// RFC 6238 Appendix B's SHA-1 seed, the ASCII "12345678901234567890", in base32 (RFC 4648).
const RFC6238_SEED_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[test]
fn totp_prints_the_code_of_the_current_step_and_refuses_a_secret_that_is_not_base32() {
    // `vigie totp` reads the clock once; when a 30 s step ends while it runs, the run is done
    // again, so that the one right code is known.
    let (printed, step) = loop {
        let before = now().div_euclid(totp::STEP_SECS);
        let out = run(&["totp", RFC6238_SEED_BASE32]);
        if now().div_euclid(totp::STEP_SECS) == before {
            break (stdout(&out), before);
        }
    };
    let seed = b"12345678901234567890";
    assert_eq!(printed, format!("{}\n", totp::code(seed, step)), "RFC 6238 code of step {step}, and nothing else");

    let out = run(&["totp", "GEZDGNBVGY3TQOJQ1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "vigie: the secret is not base32\n");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_role_turns_a_signed_in_holder_away_from_the_card_page_at_the_next_request() {
    let gw = Gateway::start(&[]).await;
    // The demo's HR agent holds the role `cards` and signs in with her CPE, as the policy on
    // administration asks.
    let mut hr = gw.browser_with_demo_card("demo.rh");
    hr.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let r = hr.get("/admin/cards").await;
    assert_eq!(r.status, 200, "{}", r.body);

    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let out = run(&["users", "revoke-role", "demo.rh", "cards", "--data-dir", dir]);
    assert_eq!(stdout(&out), "role cards revoked from demo.rh\n");
    let line = gw.audit_line(|l| l["kind"] == "role_changed" && l["reason"] == "revoked").await;
    assert_eq!((line["username"].clone(), line["object"].clone()), (json!("demo.rh"), json!("role:cards")), "{line}");

    // The same session, a moment later: the role is read at each request, not kept in the session.
    let r = hr.get("/admin/cards").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains(
            "<p role=\"alert\">Votre compte n&#39;a pas le rôle « cards ». Demandez-le à l&#39;équipe informatique \
             (commande : vigie users grant-role VOTRE_IDENTIFIANT cards).</p>"
        ),
        "{}",
        r.body
    );
    let line = gw.audit_line(|l| l["kind"] == "refused" && l["reason"] == "signed-in person without the role").await;
    assert_eq!(line["object"], "role:cards /admin/cards", "{line}");

    let out = run(&["users", "revoke-role", "demo.rh", "cards", "--data-dir", dir]);
    assert_eq!(stdout(&out), "demo.rh did not have the role cards\n");
}

/// Léa Bernard, the demo's interne.
const LEA_IDNAT: &str = "810100000029";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_bind_makes_a_cpe_nobody_held_log_its_holder_in_once_presented() {
    let pki = TestPki::generate().expect("test PKI");
    let anchors = format!("[{:?}]", pki.anchors_pem());
    let gw = Gateway::start(&[
        ("VIGIE_CARDS__ENABLED", "true"),
        ("VIGIE_CARDS__TRUST__ANCHORS_PEM", anchors.as_str()),
        // The card-login tests cover CRLs.
        ("VIGIE_CARDS__TRUST__CHECK_REVOCATION", "false"),
    ])
    .await;
    let token = gw.demo["admin_api"]["token"].as_str().expect("demo.json admin_api.token").to_owned();
    let ca = gw.data_dir.join("ca.pem");
    let api = ["--url", gw.issuer.as_str(), "--ca", ca.to_str().expect("UTF-8 path")];
    let cards = |args: &[&str]| -> Value {
        let out = run_with(&[&["cards"], args, &api[..]].concat(), &[("VIGIE_ADMIN_TOKEN", &token)]);
        serde_json::from_str(&stdout(&out)).expect("the CLI prints the API's JSON")
    };
    let lea = cards(&["list", LEA_IDNAT])["identities"][0]["id"].as_str().expect("Léa's id").to_owned();
    let cpe = pki.issue(&CardSpec::cpe_nominative("CH DE TEST", "1760021832", "000000042", "BERNARD", "LEA")).unwrap();
    let card_login = |a: Authz| {
        let mut browser = gw.browser_with_card(&cpe.chain_pem, &cpe.key_pem);
        async move {
            let r = browser.authorize(&a).await;
            let flow = query_of(&format!("https://x{}", r.location()))["flow"].clone();
            browser.get(&format!("/login/cps?flow={flow}")).await
        }
    };

    // Before: a CPE names no idNat, and nobody bound this one.
    let r = card_login(Authz::new(&gw, "demo-app")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("This CPE card is not bound to an agent yet: HR must bind it."), "{}", r.body);

    let record = cards(&["add", &lea, "--kind", "cpe"])["id"].as_str().expect("card id").to_owned();
    let pem = temp_file("lea-cpe.pem", &cpe.cert_pem);
    let bound = cards(&["bind", &record, "--cert", pem.to_str().expect("UTF-8 path")]);
    remove_temp(&pem);
    assert_eq!(
        (bound["identity_id"].clone(), bound["pending_presentation"].clone(), bound["allows_login"].clone()),
        (json!(lea), json!(true), json!(false)),
        "{bound}"
    );

    // After: the card logs Léa in, which hands the card over.
    let a = Authz::new(&gw, "demo-app");
    let r = card_login(a.clone()).await;
    let code = r.redirect_params().get("code").cloned().unwrap_or_else(|| panic!("a code: {}", r.location()));
    let tokens = redeem(&gw, &a, &code).await;
    assert_eq!(jwt_part(&tokens.id, 1)["sub"], lea.as_str());
    assert_eq!(gw.introspect("demo-app", &tokens.access).await["sub"], lea.as_str());
    let events = cards(&["events", &record])["events"].clone();
    let after = cards(&["list", "--agent", &lea]);
    let card = after["cards"].as_array().and_then(|c| c.iter().find(|c| c["id"] == record.as_str())).expect("the card");
    assert_eq!(
        (card["status"].clone(), card["pending_presentation"].clone()),
        (json!("handed_over"), json!(false)),
        "{events}"
    );
}
