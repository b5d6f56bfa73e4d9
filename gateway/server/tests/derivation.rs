//! The idNat derived from the RPPS against the real binary (docs/identity-lifecycle.md,
//! "Derivation from the RPPS"): the test extraction of `conformance/annuaire-sandbox` loaded,
//! matches proposed (strong, weak, none), HR's confirmation giving the ID token its `idnat`, and a
//! reload that strikes a professional off, per `derivation.on_struck_off`, taking the DMP away.
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::{run, run_with, stdout};
use crate::common::*;

fn extraction() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/annuaire-sandbox/extraction.txt"))
}

pub(crate) fn rpps(gw: &Gateway, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["rpps"];
    all.extend(args);
    all.extend(["--data-dir", gw.data_dir.to_str().expect("UTF-8 path")]);
    run_with(&all, env)
}

pub(crate) fn load(gw: &Gateway, file: &Path, env: &[(&str, &str)]) -> String {
    stdout(&rpps(gw, &["load", file.to_str().expect("UTF-8 path")], env))
}

pub(crate) fn json(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The (idNat, strength) proposed for a matricule in `vigie rpps propose --json`'s answer.
pub(crate) fn proposed(found: &Value, matricule: &str) -> Vec<(String, String)> {
    found
        .as_array()
        .expect("a list of proposals")
        .iter()
        .filter(|f| f["matricule"] == matricule)
        .map(|f| (f["idnat"].as_str().unwrap().to_owned(), f["strength"].as_str().unwrap().to_owned()))
        .collect()
}

/// The claims of the ID token a fresh login of the demo infirmière gets at `demo-app`.
pub(crate) async fn infirmiere_id_token(gw: &Gateway) -> Value {
    let mut b = gw.browser();
    let a = Authz::new(gw, "demo-app");
    let (_, code) = b.sign_in(&a, &["demo.infirmiere"]).await;
    let t = redeem(gw, &a, &code).await;
    gw.verify_jwt(&t.id, "demo-app", "ES256").await
}

/// The test extraction with `line` (by its idNat) removed, or with lines added.
pub(crate) fn edited(drop: Option<&str>, add: &[String]) -> PathBuf {
    let text = std::fs::read_to_string(extraction()).expect("the test extraction");
    let mut lines: Vec<String> =
        text.lines().filter(|l| drop.is_none_or(|d| !l.contains(&format!("|{d}|")))).map(str::to_owned).collect();
    lines.extend(add.iter().cloned());
    temp_file("extraction.txt", &(lines.join("\n") + "\n"))
}

/// A line shaped like the test extraction's, for a médecin.
pub(crate) fn medecin(rpps: &str, family: &str, given: &str) -> String {
    let text = std::fs::read_to_string(extraction()).expect("the test extraction");
    let model = text.lines().find(|l| l.contains("|10100000094|")).expect("the model line");
    model
        .replace("|10100000094|810100000094|", &format!("|{rpps}|8{rpps}|"))
        .replace("N'DIAYE-KOUAMÉ|Jean-Noël", &format!("{family}|{given}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derivation_is_proposed_confirmed_by_hr_and_the_idnat_reaches_the_id_token() {
    // The login before HR confirms must not keep the identity cached past the confirmation.
    let gw = Gateway::start(&[("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "1")]).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path");

    let out = rpps(&gw, &["propose"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `vigie rpps load FILE` first"));

    // A malformed line is named by line and column, and nothing is loaded.
    let bad = edited(None, &[medecin("10100000300", "FAUX", "Faux").replacen("|810100000300|", "|810100000399|", 1)]);
    let out = rpps(&gw, &["load", bad.to_str().unwrap()], &[]);
    assert!(!out.status.success(), "a bad file was loaded: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 40, column \"Identification nationale PP\": \"810100000399\" is not")
            && err.contains("nothing loaded"),
        "{err}"
    );
    assert!(!rpps(&gw, &["propose"], &[]).status.success(), "the bad load left an index");

    let text = load(&gw, &extraction(), &[]);
    assert!(text.contains("38 line(s) loaded (utf-8)"), "{text}");
    // Loading again replaces, it does not add.
    assert!(load(&gw, &extraction(), &[]).contains("38 line(s) loaded"));

    // Two Zoé Lefèvre, médecins, in the RPPS (accents differ): HR's one gets two weak proposals.
    let feed = temp_file(
        "feed.csv",
        "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username,start_date,end_date,sponsor,kind\n\
         H09001,Lefèvre,Zoé,1985-04-01,Médecin,PH,,UF2101:100,z.lefevre,2020-01-01,,,staff\n",
    );
    stdout(&run(&["users", "feed", feed.to_str().unwrap(), "--data-dir", dir]));

    let found = json(&rpps(&gw, &["propose", "--json"], &[]));
    let of = |m: &str| proposed(&found, m);
    // Camille Martin, infirmière: one infirmière of that name (the médecin namesake does not count).
    assert_eq!(of("M000101"), [("810100000045".to_owned(), "strong".to_owned())], "{found}");
    // Sophie Lambert: HR gives no health profession: weak.
    assert_eq!(of("M000104"), [("810100000060".to_owned(), "weak".to_owned())], "{found}");
    assert_eq!(
        of("H09001"),
        [("810100000078".to_owned(), "weak".to_owned()), ("810100000086".to_owned(), "weak".to_owned())],
        "{found}"
    );
    let listed = json(&rpps(&gw, &["list", "--json"], &[]));
    assert_eq!(listed["proposals"].as_array().map(Vec::len), Some(4), "{listed}");

    // Nothing is applied before HR confirms.
    let claims = infirmiere_id_token(&gw).await;
    assert!(claims.get("idnat").is_none(), "an idNat before confirmation: {claims}");

    let out = rpps(&gw, &["confirm", "M000101", "810999999999"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in the loaded RPPS extraction"), "{out:?}");
    let text = stdout(&rpps(&gw, &["confirm", "M000101", "810100000045"], &[]));
    assert!(text.contains("M000101: idNat 810100000045 (MARTIN Camille, Infirmier) — strong proposal"), "{text}");
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["object"] == "derivation:M000101").await;
    assert_eq!(line["idnat"], "810100000045", "{line}");
    assert!(line["actor"].as_str().is_some_and(|a| a.starts_with("cli:")), "{line}");
    // An idNat already someone's is refused.
    let out = rpps(&gw, &["confirm", "M000104", "810100000045"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already belongs to identity"), "{out:?}");
    let listed = json(&rpps(&gw, &["list", "--json"], &[]));
    assert!(listed["proposals"].as_array().unwrap().iter().all(|p| p["matricule"] != "M000101"), "{listed}");

    // A new login (fresh SSO session) carries it.
    let claims = infirmiere_id_token(&gw).await;
    assert_eq!(claims["idnat"], "810100000045", "{claims}");
}

/// RFC 8693 token exchange of a `demo-dpi` access token for a VIHF (docs/dmp.md).
pub(crate) async fn vihf(gw: &Gateway, access: &str) -> Resp {
    gw.token(
        "demo-dpi",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", access),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("requested_token_type", "urn:ietf:params:oauth:token-type:saml2"),
            ("patient_ins", "207058575627097"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_professional_struck_off_is_flagged_and_under_deny_dmp_loses_the_vihf() {
    let gw = Gateway::start(&[]).await;
    // The demo card holder Paul Durand (idNat 810100000011) in the RPPS; HR confirms him.
    let with = edited(None, &[medecin("10100000011", "DURAND", "Paul")]);
    let without = edited(None, &[]);
    load(&gw, &with, &[]);
    stdout(&rpps(&gw, &["confirm", "M000102", "810100000011"], &[]));

    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(&gw, "demo-dpi");
    let code = b.sign_in_with_card(&a).await;
    let t = redeem(&gw, &a, &code).await;
    let r = vihf(&gw, &t.access).await;
    assert_eq!(r.status, 200, "a VIHF while in the RPPS: {}", r.body);

    // Gone from the extraction, `flag` (the default): flagged and audited, the DMP stays.
    let text = load(&gw, &without, &[]);
    assert!(text.contains("M000102 (810100000011): struck off: absent from the RPPS extraction"), "{text}");
    let line = gw.audit_line(|l| l["object"] == "derivation:M000102" && l["outcome"] == "failure").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.starts_with("struck off: absent")), "{line}");
    let listed = json(&rpps(&gw, &["list", "--json"], &[]));
    assert_eq!(listed["struck_off"][0]["matricule"], "M000102", "{listed}");
    assert_eq!(vihf(&gw, &t.access).await.status, 200, "`flag` only flags");

    // The same under `deny_dmp`: no VIHF any more, whatever the card says.
    let deny = [("VIGIE_DERIVATION__ON_STRUCK_OFF", "deny_dmp")];
    let text = load(&gw, &without, &deny);
    assert!(text.contains("VIHF issuance withheld"), "{text}");
    let r = vihf(&gw, &t.access).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let d = r.json()["error_description"].as_str().unwrap_or_default().to_owned();
    assert!(d.contains("the DMP is withheld from this professional: struck off the RPPS"), "{d}");

    // Listed again: reinstated, audited, the DMP back.
    let text = load(&gw, &with, &deny);
    assert!(text.contains("M000102 (810100000011): listed active in the RPPS again"), "{text}");
    assert_eq!(vihf(&gw, &t.access).await.status, 200, "the DMP is back");
}
