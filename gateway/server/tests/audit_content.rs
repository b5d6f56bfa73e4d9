//! What the audit lines hold, against the real binary (issue 18, "Minimal and safe content"): a
//! professional's login and token lines carry their idNat, so that `vigie audit search --person
//! <idNat>` and the DMP handover select them by it.
use crate::common;

use common::*;
use serde_json::Value;

const MEDECIN_IDNAT: &str = "810100000011";

/// A password + TOTP login of the demo médecin at `demo-app`: the request and its code.
async fn medecin_login(gw: &Gateway) -> (Authz, String) {
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (user, totp) = gw.any_user_totp(&["demo.medecin"]).await;
    let done = b.submit_login(&r.location(), &user.username, &user.password, &totp).await;
    assert_eq!(done.status, 303, "the médecin logs in: {}", done.body);
    let code = done.redirect_params().get("code").cloned().expect("a code");
    (a, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_s_login_and_token_lines_carry_their_idnat_and_search_selects_by_it() {
    let gw = Gateway::start(&[]).await;
    let (a, code) = medecin_login(&gw).await;
    redeem(&gw, &a, &code).await;

    let login = gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "success").await;
    assert_eq!(login["idnat"], MEDECIN_IDNAT, "the login line names the professional by idNat: {login}");
    let token = gw.audit_line(|l| l["kind"] == "token_issued").await;
    assert_eq!(token["idnat"], MEDECIN_IDNAT, "the token line too: {token}");

    let file = gw.data_dir.join("audit.jsonl");
    let out = std::process::Command::new(BIN)
        .args(["audit", "search", "--person", MEDECIN_IDNAT, "--format", "jsonl"])
        .arg(&file)
        .output()
        .expect("running vigie audit search");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = found.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert!(kinds.contains(&"login") && kinds.contains(&"token_issued"), "search by idNat: {found:#?}");
    assert!(found.iter().all(|l| l["idnat"] == MEDECIN_IDNAT), "{found:#?}");
}

/// `vigie audit ins-hash ARGS`: its output, checked to succeed.
fn ins_hash(args: &[&str]) -> String {
    let out =
        std::process::Command::new(BIN).args(["audit", "ins-hash"]).args(args).output().expect("vigie audit ins-hash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vihf_line_names_the_patient_by_a_keyed_hmac_that_only_the_key_s_holder_matches() {
    let gw = Gateway::start(&[]).await;
    let t = crate::dmp::card_token(&gw).await;
    crate::dmp::vihf_of(&gw, &t.access).await;
    let line = gw.audit_line(|l| l["kind"] == "vihf_issued").await;
    assert_eq!(line["idnat"], MEDECIN_IDNAT, "{line}");
    let patient = line["patient"].as_str().expect("the patient's reference");
    assert!(patient.starts_with("hmac-sha256:"), "{line}");
    // The former unkeyed reference, which anyone reverses by enumerating INS-NIRs, is nowhere.
    let text = line.to_string();
    let plain = sha256_b64(PATIENT_INS);
    assert!(!text.contains(&plain) && !text.contains(PATIENT_INS), "no plain hash, no INS: {text}");

    // The auditor with the key matches the INS to the line; another key does not.
    let key = gw.data_dir.join("audit-ins.key");
    assert_eq!(ins_hash(&[PATIENT_INS, "--key", key.to_str().unwrap()]), patient);
    let other = gw.data_dir.join("other-ins.key");
    let made = std::process::Command::new(BIN)
        .args(["audit", "keygen", "--ins-key", other.to_str().unwrap()])
        .output()
        .expect("vigie audit keygen --ins-key");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert_ne!(ins_hash(&[PATIENT_INS, "--key", other.to_str().unwrap()]), patient);
    let out = std::process::Command::new(BIN)
        .args(["audit", "ins-hash", "207058575627098", "--key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("is not an INS-NIR"));
}

const PATIENT_INS: &str = "207058575627097";

/// `vigie audit ARGS`: success, stdout and stderr.
fn vigie_audit(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(BIN).arg("audit").args(args).output().expect("running vigie audit");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_handover_verifies_with_the_verifier_key_and_an_altered_one_is_named() {
    let gw = Gateway::start(&[]).await;
    medecin_login(&gw).await;
    gw.audit_line(|l| l["kind"] == "login" && l["idnat"] == MEDECIN_IDNAT).await;

    let trail = gw.data_dir.join("audit.jsonl");
    let key = gw.data_dir.join("audit-checkpoint.pem");
    let public = gw.data_dir.join("audit-checkpoint.pem.pub");
    let archive = gw.data_dir.join("handover.tar");
    let (ok, said) = vigie_audit(&[
        "handover",
        "--subject",
        MEDECIN_IDNAT,
        "--from",
        "2025-01-01",
        "--to",
        "2100-01-01",
        "--key",
        key.to_str().unwrap(),
        "--origin",
        "vigie.demo/audit",
        "--out",
        archive.to_str().unwrap(),
        trail.to_str().unwrap(),
    ]);
    assert!(ok && !said.contains("not signed"), "{said}");
    let listed = std::process::Command::new("tar").arg("-tf").arg(&archive).output().expect("tar");
    assert!(String::from_utf8_lossy(&listed.stdout).lines().any(|l| l == "SHA256SUMS.sig"), "tar reads it");

    let (ok, said) = vigie_audit(&["verify-handover", archive.to_str().unwrap(), "--key", public.to_str().unwrap()]);
    assert!(ok && said.contains("intact") && said.contains("traces.jsonl"), "{said}");

    // One byte of the traces changed on the way: named, exit status 1.
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.windows(MEDECIN_IDNAT.len()).position(|w| w == MEDECIN_IDNAT.as_bytes()).expect("a trace");
    bytes[at] = b'9';
    let altered = gw.data_dir.join("altered.tar");
    std::fs::write(&altered, &bytes).unwrap();
    let (ok, said) = vigie_audit(&["verify-handover", altered.to_str().unwrap(), "--key", public.to_str().unwrap()]);
    assert!(!ok && said.contains("ALTERED") && said.contains("was altered"), "{said}");

    // Another key's verifier does not vouch for it.
    let other = gw.data_dir.join("other-checkpoint.pem");
    assert!(vigie_audit(&["keygen", "--out", other.to_str().unwrap(), "--origin", "vigie.demo/audit"]).0);
    let other_pub = gw.data_dir.join("other-checkpoint.pem.pub");
    let (ok, said) = vigie_audit(&["verify-handover", archive.to_str().unwrap(), "--key", other_pub.to_str().unwrap()]);
    assert!(!ok && said.contains("no signature by the key"), "{said}");
}

/// What `vigie ARGS` prints about `audit.ins_key_file` for the configuration `audit` + `extra`.
fn ins_key_lines(dir: &std::path::Path, command: &str, audit: &str, extra: &str) -> Vec<String> {
    let path = crate::audit_trail::offline_config(dir, audit);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    let mut cmd = std::process::Command::new(common::BIN);
    match command {
        "serve" => cmd.args(["serve", "--config", &path]),
        _ => cmd.args(["check-config", &path]),
    };
    let out = cmd.output().expect("running vigie");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the offline configuration has empty TLS files: refused anyway\n{stderr}");
    stderr.lines().filter(|l| l.contains("`audit.ins_key_file`")).map(str::to_owned).collect()
}

#[test]
fn with_the_dmp_on_a_configuration_without_the_ins_key_is_refused_and_without_it_the_process_key_stays() {
    let dir = std::env::temp_dir().join(format!("vigie-ins-key-decision-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let file = format!("file = \"{d}/audit.jsonl\"\n");
    let dmp = "[dmp]\nenabled = true\n";
    for command in ["check-config", "serve"] {
        let refused = ins_key_lines(&dir, command, &file, dmp);
        assert_eq!(refused.len(), 1, "{command}: {refused:?}");
        assert!(
            refused[0].contains("required when `dmp.enabled`") && refused[0].contains("vigie audit keygen --ins-key"),
            "{command}: {refused:?}"
        );
    }
    assert_eq!(ins_key_lines(&dir, "check-config", &file, ""), Vec::<String>::new(), "no DMP: no patient, no key");
    let key = dir.join("audit-ins.key");
    let out = std::process::Command::new(common::BIN)
        .args(["audit", "keygen", "--ins-key", key.to_str().unwrap()])
        .output()
        .expect("vigie audit keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keyed = format!("{file}ins_key_file = \"{}\"\n", key.display());
    assert_eq!(ins_key_lines(&dir, "check-config", &keyed, dmp), Vec::<String>::new(), "the key given");
    let _ = std::fs::remove_dir_all(&dir);
}
