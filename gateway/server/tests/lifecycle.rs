//! The life cycle of a person against the real binary (docs/identity-lifecycle.md): the HR feed
//! from the command line (dry run, idempotence, the safety stop, `--force`), the feed run by
//! `serve` from a drop directory, an end date that ends an open session and refresh token on
//! time, time-bounded people and the lists an auditor reads.
use std::path::PathBuf;

use serde_json::Value;

use crate::cli::{run, stdout};
use crate::common::*;

const COLUMNS: &str =
    "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username,start_date,end_date,sponsor,kind";

/// `n` people of the HR export, `H00001`… in unit UF7001.
pub(crate) fn people(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("H{i:05},Nom{i},Prénom{i},1980-01-01,Infirmier,IDE,,UF7001:100,hr.p{i},2020-01-01,,,staff"))
        .collect()
}

pub(crate) fn feed_text(rows: &[String]) -> String {
    format!("{COLUMNS}\n{}\n", rows.join("\n"))
}

fn feed(gw: &Gateway, file: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let mut args = vec!["users", "feed", file.to_str().expect("UTF-8 path"), "--data-dir", dir];
    args.extend(extra);
    run(&args)
}

pub(crate) fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success() || !out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

pub(crate) fn listed(gw: &Gateway, extra: &[&str]) -> Vec<Value> {
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let mut args = vec!["users", "list", "--json", "--data-dir", dir];
    args.extend(extra);
    let out = run(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

pub(crate) fn person<'a>(list: &'a [Value], matricule: &str) -> &'a Value {
    list.iter().find(|p| p["matricule"] == matricule).unwrap_or_else(|| panic!("{matricule} not listed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hr_feed_dry_run_changes_nothing_a_second_run_is_a_no_op_and_a_truncated_feed_is_stopped() {
    let gw = Gateway::start(&[]).await;
    let rows = people(40);
    let file = temp_file("feed.csv", &feed_text(&rows));

    // The dry run shows the 40 joiners and writes nothing.
    let dry = json_of(&feed(&gw, &file, &["--dry-run", "--json"]));
    assert_eq!(dry["result"], "dry_run", "{dry}");
    assert_eq!(dry["diff"]["joiners"].as_array().map(Vec::len), Some(40), "{dry}");
    assert!(listed(&gw, &[]).iter().all(|p| p["matricule"] != "H00001"), "a dry run created people");
    let text = stdout(&feed(&gw, &file, &["--dry-run"]));
    assert!(
        text.contains("40 joiner(s), 0 mover(s), 0 leaver(s)") && text.contains("joiner    H00007 (hr.p7)"),
        "{text}"
    );

    let applied = json_of(&feed(&gw, &file, &["--json"]));
    assert_eq!(
        (applied["result"].clone(), applied["applied"]["joiners"].clone()),
        ("applied".into(), 40.into()),
        "{applied}"
    );
    let again = json_of(&feed(&gw, &file, &["--json"]));
    assert_eq!(again["result"], "unchanged", "the same feed twice: {again}");
    assert_eq!(again["diff"]["unchanged"], 40);

    // A mover (unit, field by field) and one leaver of 40 (2.5 %, under the 5 % stop).
    let mut moved = rows.clone();
    moved[2] = moved[2].replace("UF7001:100", "UF7002:100");
    moved.remove(39);
    let file2 = temp_file("feed.csv", &feed_text(&moved));
    let out = json_of(&feed(&gw, &file2, &["--json"]));
    assert_eq!(out["result"], "applied", "{out}");
    let mover = &out["diff"]["movers"][0];
    assert_eq!(mover["matricule"], "H00003");
    assert_eq!(
        mover["changes"][0],
        serde_json::json!({"field": "units", "before": "UF7001:100", "after": "UF7002:100"})
    );
    assert_eq!(out["diff"]["leavers"][0]["why"], "no longer in the HR feed", "{out}");
    let list = listed(&gw, &[]);
    assert_eq!(person(&list, "H00040")["disabled"], true, "a leaver's account is disabled");
    assert_eq!(person(&list, "H00040")["status"], "left");
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["object"] == "person:H00040").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.starts_with("ended: no longer in the HR feed")), "{line}");
    assert!(line["actor"].as_str().is_some_and(|a| a.starts_with("hr-feed:")), "by which feed run: {line}");

    // A truncated export: half the people gone. Refused whole, nothing written, audited.
    let file3 = temp_file("feed.csv", &feed_text(&moved[..20]));
    let out = feed(&gw, &file3, &[]);
    assert!(!out.status.success(), "a truncated feed was applied: {}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("safety stop: 19 leaver(s) of 39 HR-fed people (48.7 %) no longer in the feed")
            && err.contains("--force"),
        "{err}"
    );
    assert!(
        listed(&gw, &[])
            .iter()
            .filter(|p| p["source"] == "hr")
            .all(|p| p["matricule"] == "H00040" || p["disabled"] == false)
    );
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["outcome"] == "failure").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.contains("safety stop")), "{line}");
    // HR says it is right: `--force` applies it.
    let out = json_of(&feed(&gw, &file3, &["--force", "--json"]));
    assert_eq!((out["result"].clone(), out["applied"]["leavers"].clone()), ("applied".into(), 19.into()), "{out}");
    // And HR brings back H00040 with the full export.
    let out = json_of(&feed(&gw, &file2, &["--force", "--json"]));
    assert_eq!(out["applied"]["returning"], 19, "{out}");
    let back = json_of(&feed(&gw, &file, &["--json"]));
    assert_eq!(back["diff"]["returning"][0]["matricule"], "H00040", "{back}");
    assert_eq!(person(&listed(&gw, &[]), "H00040")["disabled"], false);
    for f in [file, file2, file3] {
        remove_temp(&f);
    }
}

#[test]
fn the_import_and_feed_help_point_at_the_operators_doc_not_the_source_tree() {
    for command in ["import", "feed"] {
        let help = stdout(&run(&["users", command, "--help"]));
        assert!(help.contains("docs/identity-lifecycle.md"), "{help}");
        assert!(!help.contains("adapters/"), "{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_date_from_the_feed_ends_the_open_session_and_refresh_token_on_time() {
    let drop = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hr-drop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&drop);
    std::fs::create_dir_all(&drop).unwrap();
    let drop_path = drop.to_str().expect("UTF-8 path").to_owned();
    let gw = Gateway::start(&[
        ("VIGIE_LIFECYCLE__HR_FEED__PATH", &drop_path),
        ("VIGIE_LIFECYCLE__HR_FEED__INTERVAL_SECS", "1"),
    ])
    .await;
    let (mut browser, _, _, tokens) = logged_in(&gw, "demo-app", &["demo.infirmiere"]).await;

    // HR's export gives the demo nurse an end date a few seconds ahead; serve picks the newest
    // file of the drop directory (a half-written `.part` is skipped).
    let end = time::OffsetDateTime::now_utc() + time::Duration::seconds(12);
    let end_text = end.format(&time::format_description::well_known::Rfc3339).unwrap();
    let row =
        format!("M000101,Martin,Camille,1988-03-14,Infirmier,IDE,,UF1203:100,demo.infirmiere,,{end_text},,agency");
    std::fs::write(drop.join("sirh.csv.part"), "not,a,feed\n").unwrap();
    std::fs::write(drop.join("sirh-1.csv"), feed_text(&[row])).unwrap();
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["actor"] == "hr-feed").await;
    assert!(line["reason"].as_str().is_some_and(|r| r.starts_with("applied: 0 joiner(s), 1 mover(s)")), "{line}");

    // Before the end, the session and the refresh token work.
    let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
    assert!(r.redirect_params().contains_key("code"), "SSO before the end date: {}", r.location());
    let refreshed = gw.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh)]).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let refresh = refreshed.json()["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
    assert!(time::OffsetDateTime::now_utc() < end, "the machine was too slow to check before the end date");

    // At the end: the SSO session stops within the moment it takes the watch to tell every
    // replica to drop its cached principals; the refresh token is refused (a refresh reads the
    // person now).
    while time::OffsetDateTime::now_utc() < end {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // Once the account is ended, `/authorize` ends the session and sends the person to the
        // login page (a relative `/login?flow=…`), where before the sweep it gave a code.
        let r = browser.authorize(&Authz::new(&gw, "demo-app")).await;
        let code = url::Url::parse(&r.location()).is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "code"));
        if !code {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the SSO session outlived the end date");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let late = time::OffsetDateTime::now_utc() - end;
    assert!(late < time::Duration::seconds(5), "the SSO session lived {late} past the end date");
    let refused = gw.token("demo-app", &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(refused.status, 400, "the refresh token outlived the end date: {}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_grant", "{}", refused.body);
    let line = gw.audit_line(|l| l["kind"] == "lifecycle" && l["actor"] == "lifecycle-watch").await;
    assert_eq!(
        line["reason"],
        format!("ended: end date {} passed", vigie_directory_sql::lifecycle::stamp(end)),
        "{line}"
    );
    assert_eq!(line["username"], "demo.infirmiere");
    let ended = gw.audit_line(|l| l["kind"] == "access_ended").await;
    assert_eq!(ended["outcome"], "success", "{ended}");
    let _ = std::fs::remove_dir_all(&drop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_is_added_for_a_time_listed_as_expiring_and_generic_accounts_are_listed() {
    let gw = Gateway::start(&[]).await;
    let dir = gw.data_dir.to_str().expect("UTF-8 path");
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(3)).date().to_string();
    let add = |until: &str| {
        run(&[
            "users",
            "add-temporary",
            "ext.dupuis",
            "--matricule",
            "EXT0001",
            "--family",
            "Dupuis",
            "--given",
            "Alex",
            "--sponsor",
            "M000102",
            "--kind",
            "contractor",
            "--until",
            until,
            "--unit",
            "UF1203",
            "--data-dir",
            dir,
        ])
    };
    let too_long = (time::OffsetDateTime::now_utc() + time::Duration::days(400)).date().to_string();
    let out = add(&too_long);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 183 days (`lifecycle.max_temporary_days`)"));
    let out = add(&until);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let expiring = listed(&gw, &["--expiring-within", "7d"]);
    assert_eq!(expiring.len(), 1, "{expiring:?}");
    let p = &expiring[0];
    assert_eq!(
        (p["matricule"].clone(), p["sponsor"].clone(), p["kind"].clone()),
        ("EXT0001".into(), "M000102".into(), "contractor".into())
    );
    assert!(listed(&gw, &["--expiring-within", "2d"]).is_empty(), "ends in 3 days, not within 2");

    // An account HR marks as shared is listed for the auditor.
    let out = run(&["users", "set-kind", "demo.petit", "generic", "--data-dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generic = listed(&gw, &["--kind", "generic"]);
    assert_eq!(generic.iter().map(|p| p["username"].clone()).collect::<Vec<_>>(), vec![Value::from("demo.petit")]);
    let text = stdout(&run(&["users", "list", "--kind", "generic", "--data-dir", dir]));
    assert!(text.starts_with("M000106\tdemo.petit\tLuc Petit\tgeneric\t"), "{text}");
}
