//! Searching the audit trail against the real binary (issue 18; docs/audit.md, "Searching"):
//! `GET /admin/audit` for a token with the role `audit` and the scope `audit:read` (others are
//! refused), filters by person, kind and result, newest first a page at a time, every search
//! itself in the trail; `vigie audit search` as CSV and JSON lines — on the file trail and on the
//! PostgreSQL table (its indexes used by the same filters).
use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

use crate::audit_trail::card_login;
use serde_json::Value;

async fn get(gw: &Gateway, token: Option<&str>, path: &str) -> Resp {
    let mut req = gw.http().get(gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Resp::of(req.send().await.expect("gateway reachable")).await
}

/// `[admin] tokens`: an auditor, and a cards reader who may not search the trail.
fn tokens() -> (String, String, String) {
    let (auditor, reader) = (random(32), random(32));
    let config = format!(
        "[{{name=\"auditor\", token_hash=\"sha256:{}\", roles=[\"audit\"], scopes=[\"audit:read\"]}}, \
         {{name=\"reader\", token_hash=\"sha256:{}\", roles=[\"cards\"], scopes=[\"cards:read\"]}}]",
        sha256_b64(&auditor),
        sha256_b64(&reader)
    );
    (config, auditor, reader)
}

/// The records of a search, polling (up to 20 s) until `enough` holds of them: the trail's
/// writer appends from its own thread.
async fn search_until(gw: &Gateway, token: &str, query: &str, enough: impl Fn(&[Value]) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(gw, Some(token), &format!("/admin/audit?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        let page = r.json();
        let records = page["records"].as_array().cloned().unwrap_or_default();
        if enough(&records) {
            return page;
        }
        assert!(Instant::now() < deadline, "{query}: not found within 20 s: {page:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole check on a live gateway: returns the médecin's directory id.
async fn searches(gw: &Gateway, auditor: &str, reader: &str) -> String {
    // Who may search: a token with the role and scope, not another, not without one.
    assert_eq!(get(gw, None, "/admin/audit").await.status, 401);
    let r = get(gw, Some(reader), "/admin/audit").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("does not have the role audit"), "{}", r.body);
    let r = get(gw, Some(auditor), "/admin/audit?kind=logn").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains("unknown event kind \"logn\""), "{}", r.body);

    for _ in 0..3 {
        assert_eq!(card_login(gw).await.status, 303);
    }
    let page = search_until(gw, auditor, "kind=login&result=success", |r| r.len() >= 3).await;
    let subject = page["records"][0]["record"]["subject"].as_str().expect("a login's subject").to_owned();
    let idnat = page["records"][0]["record"]["idnat"].as_str().map(str::to_owned);

    // By person (the directory id), one kind: only theirs, newest first.
    let page = search_until(gw, auditor, &format!("person={subject}&kind=login"), |r| r.len() >= 3).await;
    let records = page["records"].as_array().unwrap();
    assert!(records.iter().all(|r| r["record"]["subject"] == subject.as_str() && r["record"]["kind"] == "login"));
    let positions: Vec<u64> = records.iter().map(|r| r["position"].as_u64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "newest first: {positions:?}");
    // …or by their idNat when the line carries it.
    if let Some(idnat) = &idnat {
        let by_idnat = search_until(gw, auditor, &format!("person={idnat}&kind=login"), |r| r.len() >= 3).await;
        assert_eq!(by_idnat["records"].as_array().unwrap().len(), records.len());
    }

    // A page at a time: `next` leads to the older records, none twice.
    let first = search_until(gw, auditor, &format!("person={subject}&kind=login&limit=2"), |r| r.len() == 2).await;
    let next = first["next"].as_u64().expect("a next page");
    let second =
        search_until(gw, auditor, &format!("person={subject}&kind=login&limit=2&before={next}"), |r| !r.is_empty())
            .await;
    let older = second["records"][0]["position"].as_u64().unwrap();
    assert!(older < next && older == positions[2], "the next page starts after the first: {second:#}");

    // The refusals above are found by kind and result; a period in the future holds nothing.
    let refused = search_until(gw, auditor, "kind=refused&result=failure", |r| r.len() >= 2).await;
    assert!(refused["records"].as_array().unwrap().iter().all(|r| r["record"]["outcome"] == "failure"));
    let future = search_until(gw, auditor, &format!("person={subject}&from=2999-01-01"), |_| true).await;
    assert_eq!(future["records"].as_array().unwrap().len(), 0, "{future:#}");
    // From the third newest login's time on: it and the two after it.
    let since = records[2]["record"]["at"].as_str().unwrap().to_owned();
    let period =
        search_until(gw, auditor, &format!("person={subject}&kind=login&from={since}"), |r| r.len() >= 3).await;
    assert!(period["records"].as_array().unwrap().iter().any(|r| r["position"] == positions[2]), "{period:#}");

    // Every search is itself in the trail: who searched what.
    let searched = search_until(gw, auditor, "kind=audit_searched", |r| {
        r.iter().any(|r| r["record"]["reason"].as_str().is_some_and(|w| w.contains("kind=refused result=failure")))
    })
    .await;
    let line = &searched["records"].as_array().unwrap()[0]["record"];
    assert_eq!(line["actor"], "token:auditor", "{line}");
    assert!(line["request_id"].is_string() && line["ip"].is_string(), "{line}");
    subject
}

/// `vigie audit search ARGS`: exit status, stdout, stderr.
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(["audit", "search"]).args(args).output().expect("running vigie audit search");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_cli_finds(target: &[&str], subject: &str) {
    let mut args = vec!["--person", subject, "--kind", "login", "--format", "csv"];
    args.extend(target);
    let (ok, out, err) = cli(&args);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "position,at,kind,outcome,subject,idnat,client_id,method,ip,request_id", "{out}");
    assert!(lines.len() >= 4 && lines[1..].iter().all(|l| l.contains(",login,") && l.contains(subject)), "{out}");
    let mut args = vec!["--person", subject, "--result", "failure", "--format", "jsonl", "--limit", "5"];
    args.extend(target);
    let (ok, out, err) = cli(&args);
    assert!(ok, "{err}");
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["outcome"] == "failure" && (v["subject"] == subject || v["idnat"].is_string()), "{v}");
    }
    let mut args = vec!["--kind", "logn"];
    args.extend(target);
    let (ok, _, err) = cli(&args);
    assert!(!ok && err.contains("unknown event kind \"logn\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_trail_is_searched_by_person_kind_result_and_period_and_each_search_is_audited() {
    let (config, auditor, reader) = tokens();
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &config)]).await;
    let subject = searches(&gw, &auditor, &reader).await;
    let file = gw.data_dir.join("audit.jsonl");
    assert_cli_finds(&[file.to_str().unwrap()], &subject);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_trail_is_searched_through_its_indexes_and_each_search_is_audited() {
    let Some(db) = common::postgres::shared_database("audit_search") else { return };
    let (config, auditor, reader) = tokens();
    let gw = Gateway::start(&[("VIGIE_ADMIN__TOKENS", &config), ("VIGIE_AUDIT__URL", &db.url)]).await;
    let subject = searches(&gw, &auditor, &reader).await;
    assert_cli_finds(&["--url", &db.url], &subject);
    // The person and kind filter is answered by the index, not by reading the table through.
    let plan = common::postgres::psql(
        &db.url,
        &format!(
            "SET enable_seqscan = off; EXPLAIN SELECT seq FROM audit_records WHERE record::jsonb @> '{{\"subject\":\"{subject}\",\"kind\":\"login\"}}'::jsonb"
        ),
    );
    assert!(plan.contains("audit_records_fields"), "{plan}");
}

/// `vigie migrate` brings the trail's tables up to date too when the trail is in PostgreSQL (the
/// chart's migration Job runs it): from none to the last version, then nothing applied.
#[test]
fn migrate_brings_the_postgresql_trail_up_to_date_with_its_search_index() {
    let Some(db) = common::postgres::shared_database("audit_migrate") else { return };
    let data = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("audit-migrate-{}", random(8)));
    let migrate = || {
        let out = Command::new(BIN)
            .args(["migrate", "--data-dir", data.to_str().unwrap()])
            .env("VIGIE_AUDIT__URL", &db.url)
            .output()
            .expect("running vigie migrate");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The latest of the trail's migrations (one file each, numbered from 1).
    let latest =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../adapters/directory-sql/audit-migrations"))
            .expect("the trail's migrations")
            .count();
    let first = migrate();
    assert!(
        first.contains(&format!(
            "audit trail (PostgreSQL): schema migrated from version none (new database) to {latest}"
        )),
        "{first}"
    );
    let second = migrate();
    assert!(
        second.contains(&format!("audit trail (PostgreSQL): schema at version {latest}, up to date; nothing applied")),
        "{second}"
    );
    let index = common::postgres::psql(&db.url, "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_records'");
    assert!(index.contains("audit_records_fields") && index.contains("audit_records_written_at"), "{index}");
    let _ = std::fs::remove_dir_all(&data);
}
