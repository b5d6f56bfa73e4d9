//! The audit trail against the real binary (docs/audit.md): the chain and the signed checkpoints
//! of a live gateway verified by `vigie audit verify`, which names a removed line; every login a
//! client saw succeed is in the trail after a SIGKILL under load; a full disk (a real tmpfs of a
//! few KiB, in a mount namespace of our own: `unshare -rm`) refuses logins with a 503 and the
//! replica goes not ready (fail closed), then recovers when space is back; or spools; `vigie audit
//! purge` stubs what is past retention and `verify` reports it purged by policy.
use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// `vigie audit verify` on `files`: exit status and standard output.
fn verify(key: &Path, files: &[PathBuf]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--key"])
        .arg(key)
        .args(files)
        .output()
        .expect("running vigie audit verify");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

fn verifier_key(gw: &Gateway) -> PathBuf {
    gw.data_dir.join("audit-checkpoint.pem.pub")
}

/// A card login as the demo médecin to `demo-dpi`: the final response of `/login/cps`.
pub(crate) async fn card_login(gw: &Gateway) -> Resp {
    let mut browser = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(gw, "demo-dpi");
    let r = browser.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let flow = query_of(&format!("https://x{}", r.location()))
        .get("flow")
        .cloned()
        .unwrap_or_else(|| panic!("a login flow: {}", r.location()));
    browser.get(&format!("/login/cps?flow={flow}")).await
}

fn trail(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn logins_in(lines: &[Value]) -> HashSet<String> {
    lines
        .iter()
        .filter(|l| l["kind"] == "login" && l["outcome"] == "success")
        .filter_map(|l| l["request_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_live_trail_verifies_with_its_checkpoints_and_a_removed_line_is_named() {
    let gw = Gateway::start(&[("VIGIE_AUDIT__CHECKPOINT_EVERY", "3")]).await;
    for _ in 0..3 {
        let done = card_login(&gw).await;
        assert_eq!(done.status, 303, "{}", done.body);
        // `audit.server_timing` is off by default: a client is not told how fast the disk is.
        assert_eq!(done.header("server-timing"), None);
    }
    let lines = gw.settled_audit().await;
    assert!(lines.iter().all(|l| l["seq"].is_u64() && l["hash"].is_string()), "every line is sealed: {lines:#?}");
    let file = gw.data_dir.join("audit.jsonl");
    let checkpoints =
        std::fs::read_to_string(gw.data_dir.join("audit.jsonl.checkpoints")).expect("checkpoints beside the trail");
    assert!(checkpoints.contains("\\n\\n\u{2014} vigie.demo/audit "), "a signed note: {checkpoints}");

    let (status, out) = verify(&verifier_key(&gw), std::slice::from_ref(&file));
    assert_eq!(status, 0, "{out}");
    assert!(out.starts_with("intact: "), "{out}");
    assert!(!out.contains(" 0 checkpoints verified"), "the checkpoints are checked: {out}");

    let copy = gw.data_dir.join("copy.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| l).collect();
    std::fs::write(&copy, format!("{}\n", kept.join("\n"))).unwrap();
    let (status, out) = verify(&verifier_key(&gw), &[copy]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("copy.jsonl:2: record seq 3: expected seq 2 here"), "{out}");
}

/// `audit.server_timing`: an answer that waited for its trace says how long (W3C Server Timing,
/// `audit;dur=` in milliseconds), the figure the benchmark sets against each answer's time; an
/// answer that recorded nothing durable says nothing.
#[tokio::test]
async fn an_answer_that_waited_for_its_trace_says_how_long_when_configured() {
    let gw = Gateway::start(&[("VIGIE_AUDIT__SERVER_TIMING", "true")]).await;
    let done = card_login(&gw).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let timing = done.header("server-timing").unwrap_or_else(|| panic!("a Server-Timing header: {:?}", done.headers));
    let dur = timing
        .strip_prefix("audit;dur=")
        .and_then(|t| t.split(';').next())
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("audit;dur=<ms>: {timing}"));
    assert!(dur > 0.0 && dur < 10_000.0, "{timing}");
    assert!(timing.ends_with(";desc=\"trace on disk\""), "{timing}");
    let waited = counter(&gw, "vigie_audit_wait_seconds_sum ").await * 1e3;
    assert!(dur <= waited + 0.001, "{dur} ms is one of the waits the histogram sums ({waited} ms)");
    // Of the hold, the way back from the writer's answer is timed apart (the CPU's share).
    let back = counter(&gw, "vigie_audit_wakeup_seconds_sum ").await * 1e3;
    assert!(counter(&gw, "vigie_audit_wakeup_seconds_count ").await >= 1.0);
    assert!(back <= waited, "the way back ({back} ms) is part of the holds ({waited} ms)");

    let quiet = gw.http().get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(quiet.status(), 200);
    assert!(quiet.headers().get("server-timing").is_none(), "{:?}", quiet.headers());
}

#[tokio::test]
async fn every_login_a_client_saw_succeed_is_in_the_trail_after_a_sigkill() {
    // Outside the data directory: the harness removes that one when `vigie` dies of SIGKILL.
    let dir = mount_point("sigkill");
    let file = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&file);
    let gw = Gateway::start(&[("VIGIE_AUDIT__FILE", file.to_str().unwrap())]).await;
    let key = dir.join("verifier.pub");
    std::fs::copy(verifier_key(&gw), &key).unwrap();
    let pid = gw.gateway_pid();
    let killed = std::sync::atomic::AtomicBool::new(false);
    let seen = std::sync::Mutex::new(HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = |_| async {
        while !killed.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
            let browser = gw.browser_with_demo_card("demo.medecin");
            let a = Authz::new(&gw, "demo-dpi");
            let r = match browser.http.get(a.url(&gw)).send().await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("authorize: {e}");
                    break;
                }
            };
            let Some(location) = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned) else {
                break;
            };
            // The login answers only the browser that started it: its binding cookie goes back.
            let cookies: Vec<String> = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|c| c.to_str().ok()?.split(';').next().map(str::to_owned))
                .collect();
            let flow = query_of(&format!("https://x{location}")).get("flow").cloned().unwrap_or_default();
            let login =
                browser.http.get(gw.url(&format!("/login/cps?flow={flow}"))).header("cookie", cookies.join("; "));
            let Ok(r) = login.send().await else { break };
            if r.status() != 303 {
                eprintln!("login answered {}: {}", r.status(), r.text().await.unwrap_or_default());
                continue;
            }
            {
                let id =
                    r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("a request id").to_owned();
                seen.lock().unwrap().insert(id);
            }
        }
    };
    let kill = async {
        // SIGKILL once the load has run a while: logins are in flight at that moment.
        while seen.lock().unwrap().len() < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // SAFETY: kill(2) on the pid of the `vigie serve` this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        killed.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    tokio::join!(futures_util::future::join_all((0..6).map(client)), kill);
    let seen = seen.into_inner().unwrap();
    eprintln!("{} logins seen succeed before the SIGKILL", seen.len());
    assert!(seen.len() >= 20, "the load ran: {} logins", seen.len());
    let written = logins_in(&trail(&file));
    let missing: Vec<_> = seen.difference(&written).collect();
    assert!(missing.is_empty(), "{} logins answered as successful are not in the trail: {missing:?}", missing.len());
    let (status, out) = verify(&key, &[file]);
    assert_eq!(status, 0, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A mount namespace with a tmpfs of `kib` KiB at `mnt`, filled up by `mnt/filler`; `vigie`
/// runs inside. Needs unprivileged user namespaces (Debian and Ubuntu allow them by default).
fn full_tmpfs(mnt: &Path, kib: u32) -> Vec<String> {
    let ok = Command::new("unshare").args(["-rm", "true"]).status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test mounts a small tmpfs in a user namespace of its own: `unshare -rm` (util-linux) must work for this user (sysctl kernel.unprivileged_userns_clone=1)"
    );
    let script = format!(
        "mount -t tmpfs -o size={kib}k tmpfs \"$0\" && dd if=/dev/zero of=\"$0/filler\" bs=1k count={kib} 2>/dev/null; exec \"$@\""
    );
    ["unshare", "-rm", "sh", "-c", &script, &mnt.display().to_string()].map(String::from).to_vec()
}

/// `mnt` as the gateway sees it (its mount namespace): through /proc.
fn inside(gw: &Gateway, mnt: &Path, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root{}/{name}", gw.gateway_pid(), mnt.display()))
}

/// A demo gateway whose trail is `mnt/audit.jsonl` on a full 64 KiB tmpfs, with `env`.
async fn on_a_full_disk(mnt: &Path, env: &[(&str, &str)]) -> Gateway {
    let wrapper = full_tmpfs(mnt, 64);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let file = format!("{}/audit.jsonl", mnt.display());
    let mut env = env.to_vec();
    env.push(("VIGIE_AUDIT__FILE", &file));
    Gateway::start_wrapped(&env, &wrapper).await
}

pub(crate) async fn readyz(gw: &Gateway) -> (u16, Value) {
    let r = gw.http().get(gw.url("/readyz")).send().await.expect("/readyz");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub(crate) fn mount_point(name: &str) -> PathBuf {
    let mnt = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vigie-audit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&mnt).unwrap();
    mnt
}

#[tokio::test]
async fn a_full_disk_refuses_logins_and_the_replica_goes_not_ready_until_space_is_back() {
    let mnt = mount_point("closed");
    let gw = on_a_full_disk(&mnt, &[]).await;

    let refused = card_login(&gw).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("Audit trail unavailable"), "{}", refused.body);
    assert!(refused.set_cookie("__Host-vigie-session").is_none(), "no session handed out without its trace");
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (503, &Value::from("down")), "{body}");
    let metrics = gw.http().get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("vigie_audit_healthy 0"), "{metrics}");
    assert!(
        metrics.lines().any(|l| l.starts_with("vigie_audit_write_errors_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    std::fs::remove_file(inside(&gw, &mnt, "filler")).expect("freeing the tmpfs");
    let ready = eventually(30, || async { (readyz(&gw).await.0 == 200).then_some(()) }).await;
    assert!(ready.is_some(), "ready again once the trail is written: {}", readyz(&gw).await.1);
    let done = card_login(&gw).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let lines = trail(&inside(&gw, &mnt, "audit.jsonl"));
    let id = done.header("x-request-id").unwrap();
    assert!(logins_in(&lines).contains(id), "the login is in the trail: {lines:#?}");
    let (status, out) = verify(&verifier_key(&gw), &[inside(&gw, &mnt, "audit.jsonl")]);
    assert_eq!(status, 0, "{out}");

    // What each answer waited for its trace, the refused one included, in buckets fine enough for
    // a target under a millisecond; and the sync the successful one waited for.
    let metrics = gw.http().get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(counter(&gw, "vigie_audit_wait_seconds_count ").await >= 2.0, "{metrics}");
    assert!(metrics.contains("vigie_audit_wait_seconds_bucket{le=\"0.0001\"}"), "{metrics}");
    assert!(counter(&gw, "vigie_audit_sync_seconds_count ").await >= 1.0, "{metrics}");
}

#[tokio::test]
async fn a_full_disk_spools_when_configured_and_the_spool_continues_the_chain() {
    let mnt = mount_point("spool");
    let spool = mnt.with_extension("spool.jsonl");
    let _ = std::fs::remove_file(&spool);
    let gw =
        on_a_full_disk(&mnt, &[("VIGIE_AUDIT__ON_FAILURE", "spool"), ("VIGIE_AUDIT__SPOOL", spool.to_str().unwrap())])
            .await;
    let done = card_login(&gw).await;
    assert_eq!(done.status, 303, "spooled, the login goes on: {}", done.body);
    let id = done.header("x-request-id").unwrap();
    assert!(logins_in(&trail(&spool)).contains(id), "the login is in the spool");
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (200, &Value::from("degraded")), "{body}");
    let (status, out) = verify(&verifier_key(&gw), &[inside(&gw, &mnt, "audit.jsonl"), spool.clone()]);
    assert_eq!(status, 0, "the trail and its spool are one chain: {out}");
    let _ = std::fs::remove_file(&spool);
}

/// `vigie audit verify --url URL --key KEY`: the trail in PostgreSQL.
pub(crate) fn verify_table(key: &Path, url: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--url", url, "--key"])
        .arg(key)
        .output()
        .expect("running vigie audit verify");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
}

/// One checkpoint key for several replicas (they share it, as they share the token keys).
pub(crate) fn shared_checkpoint_key(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join("audit-checkpoint.pem");
    let out = Command::new(BIN)
        .args(["audit", "keygen", "--origin", "vigie.demo/audit", "--out"])
        .arg(&key)
        .output()
        .expect("vigie audit keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = PathBuf::from(format!("{}.pub", key.display()));
    (key, public)
}

/// psql that may fail: its exit status and error output.
pub(crate) fn psql_may_fail(url: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .env("PATH", format!("{}:/usr/lib/postgresql/15/bin", std::env::var("PATH").unwrap_or_default()))
        .output()
        .expect("psql");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub(crate) fn table_logins(url: &str) -> HashSet<String> {
    let rows = common::postgres::psql(url, "SELECT record FROM audit_records ORDER BY seq");
    let lines: Vec<Value> = rows.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    logins_in(&lines)
}

#[tokio::test]
async fn two_replicas_on_one_postgresql_make_one_chain_that_verifies_and_each_edit_is_named() {
    let Some(db) = common::postgres::shared_database("audit_two") else { return };
    let dir = mount_point("pg-two");
    let (key, public) = shared_checkpoint_key(&dir);
    let env = [
        ("VIGIE_DIRECTORY__URL", db.url.as_str()),
        ("VIGIE_AUDIT__CHECKPOINT_KEY", key.to_str().unwrap()),
        ("VIGIE_AUDIT__CHECKPOINT_EVERY", "4"),
    ];
    let a = Gateway::start(&env).await;
    let b = Gateway::start(&env).await;
    let mut seen = HashSet::new();
    // Both replicas at once: their batches interleave in the one chain.
    for _ in 0..3 {
        let (x, y) = tokio::join!(card_login(&a), card_login(&b));
        for done in [x, y] {
            assert_eq!(done.status, 303, "{}", done.body);
            seen.insert(done.header("x-request-id").expect("a request id").to_owned());
        }
    }
    drop((a, b));
    let written = table_logins(&db.url);
    let missing: Vec<_> = seen.difference(&written).collect();
    assert!(missing.is_empty(), "logins of either replica missing from audit_records: {missing:?}");
    let (status, out) = verify_table(&public, &db.url);
    eprintln!("{out}");
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("intact: ") && !out.contains(" 0 checkpoints verified"), "{out}");

    // The table refuses what the gateway's role must never do, whoever asks.
    for sql in
        ["UPDATE audit_records SET record = '' WHERE seq = 2", "DELETE FROM audit_records", "TRUNCATE audit_records"]
    {
        let (ok, err) = psql_may_fail(&db.url, sql);
        assert!(!ok && err.contains("append-only"), "{sql}: {err}");
    }
    // A superuser who disables the trigger: the edit is named, then the removal.
    let deleted = common::postgres::psql(&db.url, "SELECT seq, prev, hash, record FROM audit_records WHERE seq = 4");
    common::postgres::psql(
        &db.url,
        "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only; \
         DELETE FROM audit_records WHERE seq = 4",
    );
    let (status, out) = verify_table(&public, &db.url);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("audit_records:4: record seq 5: expected seq 4 here: seq 4..4 removed"), "{out}");
    let fields: Vec<&str> = deleted.trim_end().splitn(4, '|').collect();
    common::postgres::psql(
        &db.url,
        &format!(
            "INSERT INTO audit_records (seq, prev, hash, record) VALUES ({}, '{}', '{}', '{}')",
            fields[0],
            fields[1],
            fields[2],
            fields[3].replace('\'', "''")
        ),
    );
    assert_eq!(verify_table(&public, &db.url).0, 0, "the row put back, the chain verifies again");
    common::postgres::psql(
        &db.url,
        "UPDATE audit_records SET record = replace(record, '\"kind\":', '\"kind\" :') WHERE seq = 3",
    );
    let (status, out) = verify_table(&public, &db.url);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("audit_records:3: record seq 3: its content does not match its hash"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway whose trail is in the PostgreSQL `server` of the test's own (the directory stays
/// the demo's), with `env`.
async fn on_postgres(server: &common::postgres::PgServer, env: &[(&str, &str)]) -> Gateway {
    let url = server.create_database("trail");
    let mut env = env.to_vec();
    env.push(("VIGIE_AUDIT__URL", &url));
    Gateway::start(&env).await
}

#[tokio::test]
async fn a_database_outage_refuses_logins_then_the_trail_goes_on_once_it_is_back() {
    let mut server = common::postgres::PgServer::start("");
    let gw = on_postgres(&server, &[]).await;
    let before = card_login(&gw).await;
    assert_eq!(before.status, 303, "{}", before.body);

    server.stop();
    let refused = card_login(&gw).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("Audit trail unavailable"), "{}", refused.body);
    assert!(refused.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "when to come back");
    assert!(!refused.body.contains("127.0.0.1") && !refused.body.contains("postgres"), "{}", refused.body);
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (503, &Value::from("down")), "{body}");

    server.start_again();
    let ready = eventually(60, || async { (readyz(&gw).await.0 == 200).then_some(()) }).await;
    assert!(ready.is_some(), "ready again once the trail is written: {}", readyz(&gw).await.1);
    let after = card_login(&gw).await;
    assert_eq!(after.status, 303, "{}", after.body);
    let url = server.url("trail");
    let written = table_logins(&url);
    for r in [&before, &after] {
        assert!(written.contains(r.header("x-request-id").unwrap()), "both logins are in the table");
    }
    let (status, out) = verify_table(&verifier_key(&gw), &url);
    assert_eq!(status, 0, "{out}");
}

#[tokio::test]
async fn a_database_outage_spools_when_configured_into_a_chain_verified_apart() {
    let mut server = common::postgres::PgServer::start("");
    let dir = mount_point("pg-spool");
    let spool = dir.join("spool.jsonl");
    let _ = std::fs::remove_file(&spool);
    let gw =
        on_postgres(&server, &[("VIGIE_AUDIT__ON_FAILURE", "spool"), ("VIGIE_AUDIT__SPOOL", spool.to_str().unwrap())])
            .await;
    server.stop();
    let done = card_login(&gw).await;
    assert_eq!(done.status, 303, "spooled, the login goes on: {}", done.body);
    assert!(logins_in(&trail(&spool)).contains(done.header("x-request-id").unwrap()), "the login is in the spool");
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (200, &Value::from("degraded")), "{body}");
    let (status, out) = verify(&verifier_key(&gw), std::slice::from_ref(&spool));
    assert_eq!(status, 0, "the spool is a chain of its own: {out}");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `vigie audit purge` as an operator runs it, on a trail whose first record is past its 1-year
/// retention: the dry run changes nothing, the purge stubs it, `vigie audit verify --config`
/// reports it purged by policy, and a later hand edit is still named.
#[test]
fn the_purge_command_stubs_what_is_past_retention_and_verify_says_purged_by_policy() {
    let dir = std::env::temp_dir().join(format!("vigie-purge-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("checkpoint.pem");
    let vigie = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().expect("running vigie");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    };
    let (status, out) = vigie(&["audit", "keygen", "--origin", "vigie.test/audit", "--out", key.to_str().unwrap()]);
    assert_eq!(status, 0, "{out}");
    let signer = vigie_gateway::audit::note::Signer::load("vigie.test/audit", &key).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut link = vigie_gateway::audit::chain::Link::default();
    let mut lines = String::new();
    for (kind, age) in [("login", 400), ("vihf_issued", 400), ("login", 10)] {
        let at = (now - time::Duration::days(age)).format(&time::format_description::well_known::Rfc3339).unwrap();
        lines.push_str(&link.seal(&format!(r#"{{"at":"{at}","kind":"{kind}","username":"jdupont"}}"#)));
    }
    let trail = dir.join("audit.jsonl");
    std::fs::write(&trail, &lines).unwrap();
    let note = serde_json::json!({"checkpoint": signer.checkpoint(&link, "t")});
    std::fs::write(dir.join("audit.jsonl.checkpoints"), format!("{note}\n")).unwrap();
    let d = dir.display();
    let config = &offline_config(
        &dir,
        &format!(
            "file = \"{d}/audit.jsonl\"\ncheckpoint_key = \"{d}/checkpoint.pem\"\norigin = \"vigie.test/audit\"\n"
        ),
    );

    let (status, out) = vigie(&["audit", "purge", "--dry-run", "--config", config]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("would purge 1 record(s)"), "{out}");
    assert_eq!(std::fs::read_to_string(&trail).unwrap(), lines, "a dry run changes nothing");

    let (status, out) = vigie(&["audit", "purge", "--config", config]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("purged 1 record(s)"), "{out}");
    let purged = std::fs::read_to_string(&trail).unwrap();
    assert!(!purged.lines().next().unwrap().contains("jdupont"), "{purged}");
    let (status, out) = vigie(&["audit", "verify", "--config", config]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("records 1..1 purged by policy on "), "{out}");

    std::fs::write(&trail, purged.replacen("vihf_issued", "login", 1)).unwrap();
    let (status, out) = vigie(&["audit", "verify", "--config", config]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("audit.jsonl:2: record seq 2: its content does not match its hash"), "{out}");
}

/// A configuration in `dir` for the commands that read one without serving (the files it names
/// exist, empty), with `audit` as its `[audit]` table and a one-year retention; its path.
pub(crate) fn offline_config(dir: &Path, audit: &str) -> String {
    for f in ["tls.crt", "tls.key", "keys.json"] {
        std::fs::write(dir.join(f), "").unwrap();
    }
    let path = dir.join("vigie.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"https://vigie.chu.example\"\n[server]\ntls_cert = \"{d}/tls.crt\"\ntls_key = \"{d}/tls.key\"\n\
             [directory]\nurl = \"sqlite://{d}/dir.db\"\n[keys]\nfile = \"{d}/keys.json\"\n\
             [audit]\n{audit}[audit.retention]\ndefault = 365\n",
            d = dir.display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}
