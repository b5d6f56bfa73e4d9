//! HR's console for the HR feed and the RPPS proposals (issue 17) against the real binary: every
//! run (dry, applied, malformed) recorded with its counts, bounded diff and error lines, read
//! through the API and `vigie feeds`; proposals with their evidence and source, confirmed or
//! rejected through the API (audited with the operator) and the page (CSRF), behind the scopes.
use crate::common;

use crate::cards_admin::demo_token;
use crate::cli::{run, stdout};
use crate::lifecycle::{feed_text, people};
use common::*;
use serde_json::{Value, json};

async fn call(gw: &Gateway, token: &str, method: &str, path: &str) -> Resp {
    crate::cards_admin::call(gw, Some(token), method, path, None).await
}

fn vigie_json(args: &[&str]) -> Value {
    let out = run(args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_runs_dry_applied_and_malformed_are_listed_with_counts_diff_and_errors_in_api_and_cli() {
    let gw = Gateway::start(&[]).await;
    let token = demo_token(&gw);
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let feed = |file: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["users", "feed", file.to_str().expect("UTF-8 path"), "--data-dir", dir];
        args.extend(extra);
        run(&args)
    };

    // 53 joiners: the recorded diff keeps the first 50 and counts the rest.
    let rows = people(53);
    let first = temp_file("feed.csv", &feed_text(&rows));
    assert!(feed(&first, &["--dry-run"]).status.success());
    assert!(feed(&first, &[]).status.success());
    // A mover whose birth date changes: the change is recorded, its values are not.
    let mut moved = rows.clone();
    moved[0] = moved[0].replace("1980-01-01,Infirmier,IDE,,UF7001:100", "1981-02-02,Infirmier,IDE,,UF7002:100");
    assert!(feed(&temp_file("feed.csv", &feed_text(&moved)), &[]).status.success());
    // Line 3 has a bad date: nothing applied, the error line recorded.
    let mut bad = rows.clone();
    bad[1] = bad[1].replace("2020-01-01", "2020-13-45");
    assert!(!feed(&temp_file("feed.csv", &feed_text(&bad)), &[]).status.success());

    let listed = call(&gw, &token, "GET", "/admin/api/feeds").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let runs = listed.json()["runs"].as_array().expect("runs").clone();
    let results: Vec<(&str, bool)> =
        runs.iter().map(|r| (r["result"].as_str().unwrap(), r["dry_run"].as_bool().unwrap())).collect();
    assert_eq!(
        results,
        [("failed", false), ("applied", false), ("applied", false), ("dry_run", true)],
        "newest first: {runs:?}"
    );
    assert_eq!(runs[3]["counts"]["joiners"], 53, "{runs:?}");
    assert_eq!(runs[2]["counts"]["joiners"], 53, "{runs:?}");
    assert_eq!((runs[1]["counts"]["movers"].clone(), runs[1]["counts"]["unchanged"].clone()), (json!(1), json!(52)));
    assert_eq!(runs[0]["counts"]["errors"], 1, "{runs:?}");
    assert!(runs.iter().all(|r| r["started_by"].as_str().unwrap().starts_with("cli:")), "{runs:?}");
    assert!(runs[0]["source"].as_str().unwrap().ends_with("feed.csv"), "{runs:?}");

    let dry = call(&gw, &token, "GET", &format!("/admin/api/feeds/{}", runs[3]["id"].as_str().unwrap())).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    let joiners = &dry.json()["diff"]["joiners"];
    assert_eq!(
        (joiners["people"].as_array().map(Vec::len), joiners["more"].clone()),
        (Some(50), json!(3)),
        "{joiners}"
    );
    assert_eq!(joiners["people"][0]["matricule"], "H00001", "{joiners}");

    let mover = call(&gw, &token, "GET", &format!("/admin/api/feeds/{}", runs[1]["id"].as_str().unwrap())).await;
    let changes = mover.json()["diff"]["movers"]["people"][0]["changes"].clone();
    assert!(
        changes
            .as_array()
            .unwrap()
            .contains(&json!({"field": "birth_date", "before": "(not recorded)", "after": "(not recorded)"})),
        "{changes}"
    );
    assert!(
        changes.as_array().unwrap().contains(&json!({"field": "units", "before": "UF7001:100", "after": "UF7002:100"})),
        "{changes}"
    );
    assert!(!mover.body.contains("1981-02-02"), "a birth date in the record: {}", mover.body);

    let failed = call(&gw, &token, "GET", &format!("/admin/api/feeds/{}", runs[0]["id"].as_str().unwrap())).await;
    let errors = failed.json()["errors"].clone();
    assert_eq!(errors[0]["line"], 3, "{errors}");
    assert_eq!(errors[0]["column"], "start_date", "{errors}");
    assert_eq!(call(&gw, &token, "GET", "/admin/api/feeds/nope").await.status, 404);
    assert_eq!(call(&gw, &token, "GET", "/admin/api/feeds?limit=0").await.status, 400);

    // The CLI reads the same record.
    let cli = vigie_json(&["feeds", "runs", "--json", "--data-dir", dir]);
    let ids = |v: &Value| v["runs"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&cli), runs.iter().map(|r| r["id"].clone()).collect::<Vec<_>>());
    let shown = stdout(&run(&["feeds", "show", runs[0]["id"].as_str().unwrap(), "--data-dir", dir]));
    assert!(shown.contains("error: line 3, column `start_date`"), "{shown}");
    let shown = stdout(&run(&["feeds", "show", runs[3]["id"].as_str().unwrap(), "--data-dir", dir]));
    assert!(shown.contains("joiners:\n  H00001 (hr.p1)") && shown.contains("… and 3 more"), "{shown}");
    let out = run(&["feeds", "show", "nope", "--data-dir", dir]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no feed run \"nope\""), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_confirms_and_rejects_proposals_through_the_api_and_the_page_behind_scopes_and_csrf() {
    let hr = random(32);
    let reader = random(32);
    let tokens = format!(
        "[{{name=\"feeds-hr\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"feeds:read\", \"proposals:write\", \"people:read\"]}}, \
         {{name=\"feeds-reader\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"feeds:read\"]}}]",
        sha256_b64(&hr),
        sha256_b64(&reader)
    );
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &tokens), ("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "1")]).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let extraction = concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/annuaire-sandbox/extraction.txt");
    stdout(&run(&["rpps", "load", extraction, "--data-dir", dir]));
    stdout(&run(&["rpps", "propose", "--data-dir", dir]));

    let listed = call(&gw, &reader, "GET", "/admin/api/proposals").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let proposals = listed.json()["proposals"].as_array().expect("proposals").clone();
    let of = |m: &str| {
        proposals.iter().find(|p| p["matricule"] == m).unwrap_or_else(|| panic!("{m}: {proposals:?}")).clone()
    };
    let camille = of("M000101");
    assert_eq!(
        (camille["strength"].clone(), camille["source"].clone(), camille["rpps_profession"].clone()),
        (json!("strong"), json!("extraction:extraction.txt"), json!("Infirmier")),
        "{camille}"
    );
    assert_eq!((camille["family_name"].clone(), camille["weak_because"].clone()), (json!("Martin"), Value::Null));
    let sophie = of("M000104");
    assert!(sophie["weak_because"].as_str().unwrap().contains("métier gives no profession"), "{sophie}");

    // Reading is not deciding.
    let id = camille["id"].as_str().unwrap();
    let refused = call(&gw, &reader, "POST", &format!("/admin/api/proposals/{id}/confirm")).await;
    assert_eq!(
        (refused.status, refused.json()["missing_scope"].clone()),
        (403, json!("proposals:write")),
        "{}",
        refused.body
    );

    let done = call(&gw, &hr, "POST", &format!("/admin/api/proposals/{id}/confirm")).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        (done.json()["decision"].clone(), done.json()["idnat"].clone()),
        (json!("confirmed"), json!("810100000045"))
    );
    let person =
        call(&gw, &hr, "GET", &format!("/admin/api/people/{}", camille["identity_id"].as_str().unwrap())).await;
    assert_eq!(person.json()["person"]["identity"]["idnat"], "810100000045", "{}", person.body);
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["object"] == "derivation:M000101").await;
    assert_eq!(
        (line["actor"].clone(), line["idnat"].clone()),
        (json!("token:feeds-hr"), json!("810100000045")),
        "{line}"
    );
    assert!(line["reason"].as_str().unwrap().contains("strong proposal (extraction:extraction.txt)"), "{line}");
    let again = call(&gw, &hr, "POST", &format!("/admin/api/proposals/{id}/confirm")).await;
    assert_eq!(again.status, 404, "decided already: {}", again.body);

    // The page: HR signs in with their CPE; a form without its CSRF token is refused.
    let mut browser = gw.browser_with_demo_card("demo.rh");
    browser.sign_in_with_card(&Authz::new(&gw, "demo-cli")).await;
    let r = browser.get("/admin/feeds/login").await;
    let r = browser.get(&r.location()).await;
    assert!(r.location().starts_with(&gw.url("/admin/feeds?code=")), "{}", r.location());
    let page = browser.get("/admin/feeds?lang=en").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for words in [
        "Last runs of the HR feed",
        "RPPS derivation proposals to confirm",
        "A weak match is never confirmed automatically",
        "extraction:extraction.txt",
    ] {
        assert!(page.body.contains(words), "{words:?} in {}", page.body);
    }
    let csrf = page.hidden("csrf").expect("csrf");
    let sophie_id = sophie["id"].as_str().unwrap();
    let forged = browser
        .post_form(
            "/admin/feeds/proposals/decide",
            &[("proposal", sophie_id), ("decision", "reject"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let missing =
        browser.post_form("/admin/feeds/proposals/decide", &[("proposal", sophie_id), ("decision", "reject")]).await;
    assert_eq!(missing.status, 403, "{}", missing.body);
    let done = browser
        .post_form(
            "/admin/feeds/proposals/decide?lang=en",
            &[("proposal", sophie_id), ("decision", "reject"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after = browser.get(&done.location()).await;
    assert!(after.body.contains("Proposal rejected"), "{}", after.body);
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["object"] == "derivation:M000104").await;
    assert!(line["actor"].as_str().unwrap().starts_with("staff:"), "{line}");

    // A rejected proposal is not made again.
    let found = vigie_json(&["rpps", "propose", "--json", "--data-dir", dir]);
    assert!(crate::derivation::proposed(&found, "M000104").is_empty(), "{found}");
    let listed = call(&gw, &reader, "GET", "/admin/api/proposals").await.json();
    assert!(listed["proposals"].as_array().unwrap().iter().all(|p| p["matricule"] != "M000104"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_run_by_serve_is_recorded_once_and_its_unchanged_repeats_are_not() {
    let drop = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("feeds-drop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&drop);
    std::fs::create_dir_all(&drop).unwrap();
    let drop_path = drop.to_str().expect("UTF-8 path").to_owned();
    let gw = Gateway::start(&[
        ("VIGIE_LIFECYCLE__HR_FEED__PATH", &drop_path),
        ("VIGIE_LIFECYCLE__HR_FEED__INTERVAL_SECS", "1"),
    ])
    .await;
    let token = demo_token(&gw);
    std::fs::write(drop.join("sirh-1.csv"), feed_text(&people(3))).unwrap();
    // The period runs every second: the applied run, then unchanged ones, recorded once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let runs = loop {
        let runs = call(&gw, &token, "GET", "/admin/api/feeds").await.json()["runs"].clone();
        let results: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap()).collect();
        if results.first() == Some(&"unchanged") {
            break runs;
        }
        assert!(std::time::Instant::now() < deadline, "no unchanged run recorded after the applied one: {runs}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    // A few more periods pass.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let later = call(&gw, &token, "GET", "/admin/api/feeds").await.json()["runs"].clone();
    assert_eq!(later, runs, "unchanged repeats are not recorded");
    let list = runs.as_array().unwrap();
    assert_eq!(list.len(), 2, "{runs}");
    assert_eq!(
        (list[1]["result"].clone(), list[1]["counts"]["joiners"].clone()),
        (json!("applied"), json!(3)),
        "{runs}"
    );
    assert!(
        list.iter().all(|r| r["started_by"] == "schedule" && r["source"].as_str().unwrap().ends_with("sirh-1.csv")),
        "{runs}"
    );
}
