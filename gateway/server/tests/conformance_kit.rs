//! The conformance kit (`conformance/kit`) run against the real `vigie serve` on the embedded
//! demo: every module passes or says why it does not apply; against a gateway weakened in one
//! way, exactly the module that checks it fails (a check that cannot fail is a defect).
use std::path::PathBuf;

use vigie_conformance::profile::Profile;
use vigie_conformance::{RunOptions, Verdict};

use crate::common::*;

async fn run_kit(gw: &Gateway, out: Option<PathBuf>) -> vigie_conformance::Report {
    let profile = Profile::from_demo(&gw.demo).expect("a profile from demo.json");
    vigie_conformance::run(RunOptions {
        target: gw.issuer.clone(),
        profile,
        ca_pem: gw.demo["ca_pem"].as_str().map(str::to_owned),
        out,
        only: vec![],
    })
    .await
    .expect("the kit runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_against_the_demo_and_its_reports_mask_every_secret() {
    let gw = Gateway::start(&[]).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("conformance-kit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let report = run_kit(&gw, Some(out.clone())).await;

    let ids: Vec<&str> = report.outcomes.iter().map(|o| o.id.as_str()).collect();
    let all: Vec<&str> = vigie_conformance::modules().iter().map(|m| m.id).collect();
    assert_eq!(ids, all, "every module of every plan ran, none silently skipped");
    for o in &report.outcomes {
        match &o.verdict {
            Verdict::Pass => {}
            Verdict::NotApplicable(why) => {
                assert!(!why.trim().is_empty(), "{} is not applicable without a reason", o.id)
            }
            Verdict::Fail(why) => panic!("{} failed against the demo: {why}\n{:#?}", o.id, o.evidence),
        }
        assert!(!o.evidence.is_empty(), "{} kept no evidence", o.id);
    }

    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase ").count(), all.len(), "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let fr = std::fs::read_to_string(out.join("report.fr.html")).expect("report.fr.html");
    let en = std::fs::read_to_string(out.join("report.en.html")).expect("report.en.html");
    assert!(fr.contains("Rapport de conformité") && fr.contains("CONFORME") && fr.contains("report.en.html"));
    assert!(en.contains("conformance report") && en.contains("PASS") && en.contains("RFC 9207 §2"));
    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    assert!(json.contains("\"oidcc-codereuse-30seconds\""));

    // The evidence shows requests and answers, never a password, TOTP seed, client secret or
    // token: each file is searched for every secret the profile and the run handled.
    let mut secrets: Vec<String> = Vec::new();
    for u in gw.demo["users"].as_array().expect("users") {
        secrets.push(u["password"].as_str().expect("password").into());
        secrets.push(u["totp_secret"].as_str().expect("totp secret").into());
    }
    for c in gw.demo["clients"].as_array().expect("clients") {
        secrets.extend(c["client_secret"].as_str().map(str::to_owned));
    }
    let tokens = report.outcomes.iter().flat_map(|o| &o.evidence).filter(|e| e.status == 200).count();
    assert!(tokens > 0, "the run has answers to show");
    for (name, text) in
        [("junit.xml", &junit), ("report.fr.html", &fr), ("report.en.html", &en), ("report.json", &json)]
    {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{name} shows a secret of the profile");
        }
        assert!(!text.contains("eyJ"), "{name} shows a JWT (a token) in clear");
        if name != "junit.xml" {
            assert!(text.contains("masked"), "{name} says where it masked secrets");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// `policy.password_totp_transition_until` in the future lets password + TOTP open a sensitive
/// client: the kit flags exactly that rule of the RIE and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_flags_a_gateway_where_password_totp_opens_a_sensitive_client() {
    let gw = Gateway::start(&[("VIGIE_POLICY__PASSWORD_TOTP_TRANSITION_UNTIL", "2099-12-31")]).await;
    let report = run_kit(&gw, None).await;
    let failed: Vec<&str> = report.failures().iter().map(|o| o.id.as_str()).collect();
    assert_eq!(failed, ["rie-password-totp-sensitive-refused"], "{:#?}", report.failures());
}
