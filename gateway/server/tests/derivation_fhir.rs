//! The idNat derived from the Annuaire Santé's FHIR API against the real binary and the real
//! stand-in (`conformance/annuaire-sandbox/server.py`, R4 resources built and validated by pip
//! `fhir.resources`): `vigie rpps lookup` by idNat and by names, `propose` from FHIR when no
//! extraction is loaded, HR's confirmation reaching the ID token, and every way the server
//! misbehaves giving its precise error and changing nothing.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{run_with, stdout};
use crate::common::*;
use crate::derivation::{infirmiere_id_token, proposed};

/// The stand-in, killed on drop.
pub(crate) struct Annuaire {
    child: Child,
    pub(crate) base: String,
    pub(crate) key_file: std::path::PathBuf,
}

impl Annuaire {
    fn start() -> Annuaire {
        Annuaire::start_with(None)
    }

    /// The stand-in serving `extraction` (default: its own test extraction).
    pub(crate) fn start_with(extraction: Option<&std::path::Path>) -> Annuaire {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/annuaire-sandbox");
        let setup = Command::new(root.join("setup")).status().expect("running conformance/annuaire-sandbox/setup");
        assert!(
            setup.success(),
            "conformance/annuaire-sandbox/setup failed (python3 with venv, and pip access, are needed)"
        );
        let key_file = temp_file("esante-api-key", "test-key-0f3a\n");
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("server.py"))
            .args(["--port", "0", "--page-size", "1", "--api-key-file"])
            .arg(&key_file)
            .args(extraction.map(|e| ["--extraction".as_ref(), e.as_os_str()]).into_iter().flatten())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the Annuaire Santé stand-in");
        let out = child.stdout.take().expect("its stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Importing the pydantic models takes seconds on a loaded machine.
        let line = rx.recv_timeout(Duration::from_secs(90)).expect("the stand-in did not start within 90 s");
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("stand-in said {line:?}"));
        Annuaire { child, base: format!("http://127.0.0.1:{port}"), key_file }
    }

    pub(crate) async fn mode(&self, mode: &str) {
        self.control(serde_json::json!({"mode": mode})).await;
    }

    /// `POST /_control` with this body.
    pub(crate) async fn control(&self, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_control", self.base))
            .json(&body)
            .send()
            .await
            .expect("the stand-in's control");
        assert!(r.status().is_success());
    }
}

impl Drop for Annuaire {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_annuaire_api_is_looked_up_proposes_and_hr_confirms_and_a_misbehaving_one_changes_nothing() {
    let api = Annuaire::start();
    let gw = Gateway::start(&[]).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path").to_owned();
    let url = format!("{}/fhir/v2", api.base);
    let key = api.key_file.to_str().expect("UTF-8 path").to_owned();
    let env = |timeout: &'static str, key: &str| -> Vec<(String, String)> {
        vec![
            ("VIGIE_DERIVATION__FHIR_URL".into(), url.clone()),
            ("VIGIE_DERIVATION__FHIR_API_KEY_FILE".into(), key.to_owned()),
            ("VIGIE_DERIVATION__FHIR_TIMEOUT_SECS".into(), timeout.into()),
        ]
    };
    let rpps = |args: &[&str], env: &[(String, String)]| {
        let mut all = vec!["rpps"];
        all.extend(args);
        all.extend(["--data-dir", &dir]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_with(&all, &env)
    };
    let ok = env("20", &key);

    // By idNat: profession, category, exercise mode as the API codes them (TRE_G15, R09, R23).
    let text = stdout(&rpps(&["lookup", "810100000045"], &ok));
    assert!(
        text.contains("810100000045 (RPPS 10100000045) MARTIN Camille — Infirmier (60); category Civil (C); specialty: none; exercising (Salarié)"),
        "{text}"
    );
    assert!(text.contains("1 candidate(s)"), "{text}");
    // By names, accent and case blind, across pages (one a page: the next links are followed).
    let text = stdout(&rpps(&["lookup", "lefevre zoe", "--json"], &ok));
    let found: Value = serde_json::from_str(&text).expect("JSON");
    let idnats: Vec<&str> = found.as_array().unwrap().iter().map(|p| p["idnat"].as_str().unwrap()).collect();
    assert_eq!(idnats, ["810100000078", "810100000086"], "{text}");
    assert_eq!(found[0]["specialties"][0][0], "SM54", "{text}");

    // A wrong key: refused, and said so without the key.
    let wrong = temp_file("wrong-key", "not-the-key\n");
    let out = rpps(&["lookup", "810100000045"], &env("20", wrong.to_str().unwrap()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("refused the API key (HTTP 401: missing or unknown ESANTE-API-KEY header)"), "{err}");
    assert!(!err.contains("not-the-key"), "{err}");

    // No extraction loaded: propose asks the API, by the extraction's rules.
    let found: Value = serde_json::from_str(&stdout(&rpps(&["propose", "--json"], &ok))).expect("JSON");
    let of = |m: &str| proposed(&found, m);
    assert_eq!(of("M000101"), [("810100000045".to_owned(), "strong".to_owned())], "{found}");
    assert_eq!(of("M000104"), [("810100000060".to_owned(), "weak".to_owned())], "{found}");
    let before: Value = serde_json::from_str(&stdout(&rpps(&["list", "--json"], &ok))).expect("JSON");
    assert_eq!(before["proposals"].as_array().map(Vec::len), Some(2), "{before}");

    // Each misbehaviour: its own error, and the pending proposals untouched.
    for (mode, timeout, said) in [
        ("500", "20", "the Annuaire Santé failed (HTTP 500: the stand-in was told to fail): try again later"),
        ("slow", "2", "did not answer within 2 s: try again later, or raise derivation.fhir_timeout_secs"),
        ("malformed", "20", "the answer is not JSON (EOF while parsing"),
        ("not_fhir", "20", "the answer is not JSON (expected value"),
        ("not_bundle", "20", "the answer is a FHIR Practitioner where a search Bundle was expected"),
    ] {
        api.mode(mode).await;
        let out = rpps(&["propose"], &env(timeout, &key));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(err.contains(said) && err.contains("nothing was changed"), "{mode}: {err}");
        let after: Value = serde_json::from_str(&stdout(&rpps(&["list", "--json"], &ok))).expect("JSON");
        assert_eq!(after, before, "{mode} changed the proposals");
    }
    api.mode("ok").await;

    // HR confirms from the API (no extraction): the idNat reaches the ID token.
    let text = stdout(&rpps(&["confirm", "M000101", "810100000045"], &ok));
    assert!(text.contains("M000101: idNat 810100000045 (MARTIN Camille, Infirmier) — strong proposal"), "{text}");
    let out = rpps(&["confirm", "M000104", "810999999999"], &ok);
    assert!(String::from_utf8_lossy(&out.stderr).contains("810999999999 is not in the Annuaire Santé"), "{out:?}");
    let claims = infirmiere_id_token(&gw).await;
    assert_eq!(claims["idnat"], "810100000045", "{claims}");
}
