//! The confirmed professionals' standing refreshed from the Annuaire Santé's FHIR API against the
//! real binary and the stand-in (`conformance/annuaire-sandbox/server.py`, resources validated by
//! pip `fhir.resources`): an outage and a dry run change nobody, a Practitioner no longer active
//! loses the VIHF under `deny_dmp` while a colleague stays exercising, roles whose period ended flag
//! their holder, and one listed active again gets the DMP back.
use serde_json::{Value, json};

use crate::cli::stdout;
use crate::common::*;
use crate::derivation::{edited, load, medecin, rpps, vihf};
use crate::derivation_fhir::Annuaire;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practitioner_no_longer_active_loses_the_vihf_after_a_refresh_and_an_outage_or_dry_run_changes_nobody() {
    // The demo card holder Paul Durand in the extraction the stand-in serves, and in the directory.
    let file = edited(None, &[medecin("10100000011", "DURAND", "Paul")]);
    let api = Annuaire::start_with(Some(&file));
    let gw = Gateway::start(&[]).await;
    let url = format!("{}/fhir/v2", api.base);
    let key = api.key_file.to_str().expect("UTF-8 path").to_owned();
    let env = [
        ("VIGIE_DERIVATION__FHIR_URL", url.as_str()),
        ("VIGIE_DERIVATION__FHIR_API_KEY_FILE", key.as_str()),
        ("VIGIE_DERIVATION__FHIR_TIMEOUT_SECS", "20"),
        ("VIGIE_DERIVATION__ON_STRUCK_OFF", "deny_dmp"),
    ];
    load(&gw, &file, &env);
    stdout(&rpps(&gw, &["confirm", "M000102", "810100000011"], &env));
    stdout(&rpps(&gw, &["confirm", "M000101", "810100000045"], &env));
    let refresh = |extra: &[&str]| {
        let mut args = vec!["refresh"];
        args.extend(extra);
        rpps(&gw, &args, &env)
    };
    let struck_off = || -> Vec<String> {
        let listed: Value = serde_json::from_str(&stdout(&rpps(&gw, &["list", "--json"], &env))).expect("JSON");
        listed["struck_off"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["matricule"].as_str().unwrap().to_owned())
            .collect()
    };
    let text = stdout(&refresh(&[]));
    assert!(text.contains("0 professional(s) changed"), "both exercise: {text}");

    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-dpi");
    let code = b.sign_in_with_card(&a).await;
    let t = redeem(&gw, &a, &code).await;
    assert_eq!(vihf(&gw, &t.access).await.status, 200, "a VIHF while exercising");

    // The Annuaire now lists Paul's Practitioner as no longer active.
    api.control(json!({"mode": "500", "inactive": ["810100000011"]})).await;
    let out = refresh(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("nobody was changed"), "an outage: {err}");
    assert!(struck_off().is_empty());
    api.mode("ok").await;
    let text = stdout(&refresh(&["--dry-run"]));
    assert!(text.contains("would change M000102 (810100000011): struck off: the Annuaire Santé lists the Practitioner as no longer active"), "{text}");
    assert!(!text.contains("M000101"), "Camille still exercises: {text}");
    assert!(struck_off().is_empty(), "a dry run wrote");
    assert_eq!(vihf(&gw, &t.access).await.status, 200, "a dry run took the DMP");

    let text = stdout(&refresh(&[]));
    assert!(text.contains("M000102 (810100000011): struck off") && text.contains("VIHF issuance withheld"), "{text}");
    assert_eq!(struck_off(), ["M000102"]);
    let line = gw.audit_line(|l| l["object"] == "derivation:M000102" && l["actor"] == "rpps-refresh:fhir").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.starts_with("rpps_exercise_ended: struck off")), "{line}");
    let r = vihf(&gw, &t.access).await;
    assert_eq!(r.status, 400, "{}", r.body);

    // Paul active again; every role of Camille's ended (PractitionerRole.period.end passed).
    api.control(json!({"mode": "ok", "inactive": [], "ended": ["810100000045"]})).await;
    let text = stdout(&refresh(&[]));
    assert!(text.contains("M000102 (810100000011): exercising again"), "{text}");
    assert!(
        text.contains("M000101 (810100000045): struck off: every PractitionerRole in the Annuaire Santé has ended"),
        "{text}"
    );
    assert_eq!(struck_off(), ["M000101"]);
    assert_eq!(vihf(&gw, &t.access).await.status, 200, "the DMP is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refreshes_on_its_period_and_flags_a_practitioner_no_longer_active() {
    let file = edited(None, &[medecin("10100000011", "DURAND", "Paul")]);
    let api = Annuaire::start_with(Some(&file));
    let url = format!("{}/fhir/v2", api.base);
    let key = api.key_file.to_str().expect("UTF-8 path").to_owned();
    let env = [
        ("VIGIE_DERIVATION__FHIR_URL", url.as_str()),
        ("VIGIE_DERIVATION__FHIR_API_KEY_FILE", key.as_str()),
        ("VIGIE_DERIVATION__REFRESH_INTERVAL_SECS", "1"),
    ];
    let gw = Gateway::start(&env).await;
    load(&gw, &file, &env);
    stdout(&rpps(&gw, &["confirm", "M000102", "810100000011"], &env));
    api.control(json!({"mode": "ok", "inactive": ["810100000011"]})).await;
    let line = gw.audit_line(|l| l["object"] == "derivation:M000102" && l["actor"] == "rpps-refresh:fhir").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("no longer active")), "{line}");
    let listed: Value = serde_json::from_str(&stdout(&rpps(&gw, &["list", "--json"], &env))).expect("JSON");
    assert_eq!(listed["struck_off"][0]["matricule"], "M000102", "{listed}");
}
