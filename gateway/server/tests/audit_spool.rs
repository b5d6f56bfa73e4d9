//! The spool re-joining the PostgreSQL chain (issue 18; docs/audit.md, "When the database
//! fails"), against the real binary and a PostgreSQL of the test's own that it stops: logins made
//! while the database is down succeed (fail open, into the spool), the gateway is SIGKILLed,
//! restarted with the database back, and every login the client saw succeed is in the table
//! exactly once, marked spooled, at its original time, in one chain `vigie audit verify` passes;
//! a second replay of the same spool (a crash after COMMIT, before the spool was removed) adds
//! nothing; a spool that does not verify is kept and `/readyz` says it waits. And without a
//! restart: the database back, the running gateway replays its spool (logins going on meanwhile)
//! and goes back to the table. And a gateway SIGKILLed in the middle of a replay replays the rest at
//! its next start, each event once.
use crate::audit_trail::{card_login, mount_point, readyz, shared_checkpoint_key, table_logins, verify_table};
use crate::common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Login successes in the table by request id: how many records each has, and the records.
fn logins_by_request(url: &str) -> BTreeMap<String, Vec<Value>> {
    let rows = postgres::psql(url, "SELECT record FROM audit_records ORDER BY seq");
    let mut by = BTreeMap::<String, Vec<Value>>::new();
    for record in rows.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        if record["kind"] == "login"
            && record["outcome"] == "success"
            && let Some(id) = record["request_id"].as_str()
        {
            by.entry(id.to_owned()).or_default().push(record);
        }
    }
    by
}

fn spool_lines(spool: &Path) -> Vec<Value> {
    std::fs::read_to_string(spool).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// A PostgreSQL of the test's own (it stops it) with a trail database, a spool and a key.
struct Setup {
    server: postgres::PgServer,
    url: String,
    dir: PathBuf,
    spool: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Self {
        let server = postgres::PgServer::start("");
        let url = server.create_database("trail");
        let dir = mount_point(name);
        let spool = dir.join("spool.jsonl");
        let _ = std::fs::remove_file(&spool);
        let (key, public) = shared_checkpoint_key(&dir);
        Self { server, url, dir, spool, key, public }
    }
}

/// The trail in `url`, spooling to `spool` when the database fails, checkpoints every 2 records.
fn env<'a>(url: &'a str, key: &'a Path, spool: &'a Path) -> Vec<(&'static str, &'a str)> {
    vec![
        ("VIGIE_AUDIT__URL", url),
        ("VIGIE_AUDIT__CHECKPOINT_KEY", key.to_str().unwrap()),
        ("VIGIE_AUDIT__CHECKPOINT_EVERY", "2"),
        ("VIGIE_AUDIT__ON_FAILURE", "spool"),
        ("VIGIE_AUDIT__SPOOL", spool.to_str().unwrap()),
    ]
}

#[tokio::test]
async fn a_spool_rejoins_the_postgresql_chain_after_a_sigkill_each_login_once() {
    let Setup { mut server, url, dir, spool, key, public } = Setup::new("pg-rejoin");
    let env = env(&url, &key, &spool);
    let gw = Gateway::start(&env).await;
    let before = card_login(&gw).await;
    assert_eq!(before.status, 303, "{}", before.body);

    server.stop();
    let mut seen = vec![before.header("x-request-id").unwrap().to_owned()];
    for _ in 0..3 {
        let done = card_login(&gw).await;
        assert_eq!(done.status, 303, "spooled, the login goes on: {}", done.body);
        seen.push(done.header("x-request-id").unwrap().to_owned());
    }
    let spooled: Vec<Value> = spool_lines(&spool);
    let at_of = |id: &str| {
        let login = |l: &&Value| l["request_id"] == id && l["kind"] == "login" && l["outcome"] == "success";
        spooled.iter().find(login).map(|l| l["at"].clone())
    };
    assert!(seen[1..].iter().all(|id| at_of(id).is_some()), "the logins are in the spool: {spooled:#?}");
    // SIGKILL: no drain, no goodbye; the spool on disk is all that is left of those logins.
    // SAFETY: kill(2) on the pid of the `vigie serve` this test started.
    assert_eq!(unsafe { libc::kill(gw.gateway_pid() as i32, libc::SIGKILL) }, 0);
    drop(gw);
    // What a crash after the replay's COMMIT, before the spool was removed, leaves behind.
    let copy = dir.join("spool.copy");
    std::fs::copy(&spool, &copy).unwrap();

    server.start_again();
    let gw = Gateway::start(&env).await;
    assert!(!spool.exists(), "the spool is moved aside once replayed");
    assert_eq!(
        archived(&dir).first().map(|a| std::fs::read(a).unwrap()),
        Some(std::fs::read(&copy).unwrap()),
        "the replayed spool is archived as it was, not deleted"
    );
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (200, &Value::from("up")), "{body}");
    let after = card_login(&gw).await;
    assert_eq!(after.status, 303, "{}", after.body);
    seen.push(after.header("x-request-id").unwrap().to_owned());
    let check = |replays: &str| {
        let by = logins_by_request(&url);
        for (i, id) in seen.iter().enumerate() {
            let records = by.get(id).map_or(&[][..], Vec::as_slice);
            assert_eq!(records.len(), 1, "{replays}: login {id} is in the table exactly once: {records:#?}");
            let spooled_here = (1..=3).contains(&i);
            assert_eq!(records[0]["spooled"].is_string(), spooled_here, "{replays}: says whether it was spooled");
            if spooled_here {
                assert_eq!(Some(records[0]["at"].clone()), at_of(id), "{replays}: its original time");
            }
        }
        assert_eq!(table_logins(&url).len(), seen.len(), "{replays}: no other login");
        let (status, out) = verify_table(&public, &url);
        assert_eq!(status, 0, "{replays}: one chain with the spooled events: {out}");
        assert!(out.contains("intact: ") && !out.contains(" 0 checkpoints verified"), "{out}");
    };
    check("after the replay");

    drop(gw);
    std::fs::copy(&copy, &spool).unwrap();
    let gw = Gateway::start(&env).await;
    assert!(!spool.exists(), "the spool replayed again is moved aside");
    check("after a second replay of the same spool");

    // A spool edited while it waited is not replayed: kept, and the replica says so.
    drop(gw);
    let text = std::fs::read_to_string(&copy).unwrap().replacen("\"kind\":\"login\"", "\"kind\":\"logout\"", 1);
    std::fs::write(&spool, text).unwrap();
    let gw = Gateway::start(&env).await;
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (200, &Value::from("degraded")), "{body}");
    assert!(body["checks"]["audit"]["detail"].as_str().unwrap().contains("spool"), "{body}");
    assert!(body["checks"]["audit"]["detail"].as_str().unwrap().contains("does not verify"), "{body}");
    assert!(spool.exists(), "a spool that does not verify is kept");
    check("after a spool that does not verify");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The replayed spools archived in `dir` (`spool.jsonl.replayed-<UTC time>`), oldest first.
fn archived(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.to_str().unwrap().contains("spool.jsonl.replayed-") && !p.to_str().unwrap().ends_with(".checkpoints")
        })
        .collect();
    found.sort();
    found
}

/// The value of `vigie_audit_spool_pending` in `/metrics`.
async fn spool_pending(gw: &Gateway) -> f64 {
    let metrics = gw.http().get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|l| l.starts_with("vigie_audit_spool_pending ")).unwrap_or_default();
    line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(-1.0)
}

#[tokio::test]
async fn a_running_gateway_rejoins_the_postgresql_chain_once_the_database_is_back_each_login_once() {
    let Setup { mut server, url, dir, spool, key, public } = Setup::new("pg-live");
    let mut env = env(&url, &key, &spool);
    // Logins in a loop while the spool rejoins: a few hundred a minute from one address.
    env.push(("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "100000"));
    let gw = Gateway::start(&env).await;
    let id = |r: &Resp| r.header("x-request-id").unwrap().to_owned();
    let before = card_login(&gw).await;
    assert_eq!(before.status, 303, "{}", before.body);

    server.stop();
    let mut spooled = Vec::new();
    for _ in 0..3 {
        let done = card_login(&gw).await;
        assert_eq!(done.status, 303, "spooled, the login goes on: {}", done.body);
        spooled.push(id(&done));
    }
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (200, &Value::from("degraded")), "{body}");
    assert!(spool_pending(&gw).await >= 3.0, "the spool's records are counted");

    // Logins go on while the database comes back and the spool is replayed: each goes to the
    // spool behind the replayed ones or, after the switch, to the table; none is lost or doubled.
    server.start_again();
    let rejoined = AtomicBool::new(false);
    let during = Mutex::new(Vec::new());
    let logins = async {
        while !rejoined.load(Ordering::Relaxed) {
            let done = card_login(&gw).await;
            assert_eq!(done.status, 303, "a login while the spool rejoins: {}", done.body);
            during.lock().unwrap().push(id(&done));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let wait = async {
        // The writer asks again 5 s after the outage, then after 10, 20, 40 s.
        let back = eventually(120, || async {
            let (status, body) = readyz(&gw).await;
            (status == 200 && body["checks"]["audit"]["status"] == "up" && !spool.exists()).then_some(())
        })
        .await;
        rejoined.store(true, Ordering::Relaxed);
        back
    };
    let (back, ()) = tokio::join!(wait, logins);
    assert!(back.is_some(), "no restart: the spool is replayed and removed, ready again: {}", readyz(&gw).await.1);
    assert_eq!(spool_pending(&gw).await, 0.0, "nothing waits in a spool any more");
    assert_eq!(archived(&dir).len(), 1, "the replayed spool is archived, not deleted");
    let after = card_login(&gw).await;
    assert_eq!(after.status, 303, "{}", after.body);

    let by = logins_by_request(&url);
    let once = |id: &String| -> &Value {
        let records = by.get(id).map_or(&[][..], Vec::as_slice);
        assert_eq!(records.len(), 1, "login {id} is in the table exactly once: {records:#?}");
        &records[0]
    };
    for id in &spooled {
        assert!(once(id)["spooled"].is_string(), "login {id} made while the database was down says it was spooled");
    }
    for id in [id(&before), id(&after)] {
        assert!(once(&id)["spooled"].is_null(), "login {id} went straight to the table");
    }
    let during = during.into_inner().unwrap();
    for id in &during {
        once(id);
    }
    assert_eq!(table_logins(&url).len(), 2 + spooled.len() + during.len(), "no other login");
    let seq_of = |id: &String| once(id)["seq"].as_u64().unwrap();
    let order: Vec<u64> = spooled.iter().chain(&during).map(seq_of).collect();
    assert!(order.is_sorted(), "the spooled logins, then those made during the replay, in their order: {order:?}");
    let (status, out) = verify_table(&public, &url);
    assert_eq!(status, 0, "one chain with the spooled events: {out}");
    assert!(out.contains("intact: ") && !out.contains(" 0 checkpoints verified"), "{out}");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes at `spool` a spool of `n` records as the writer writes one: a chain of its own from seq 1,
/// and in `<spool>.checkpoints` a note signed with `key` every `every` records and at its end, each
/// naming that chain. Returns the records' hashes in order: the events' ids in the table once
/// replayed.
fn written_spool(spool: &Path, key: &Path, n: usize, every: usize) -> Vec<String> {
    use vigie_gateway::audit::{chain, note::Signer};
    let signer = Signer::load("vigie.demo/audit", key).unwrap();
    let at = "2026-12-06T07:00:00Z";
    let (mut link, mut first) = (chain::Link::default(), None);
    let (mut lines, mut notes, mut ids) = (String::new(), String::new(), Vec::new());
    for i in 1..=n {
        let event = format!(r#"{{"at":"{at}","kind":"login","outcome":"success","request_id":"spooled-{i}"}}"#);
        lines.push_str(&link.seal(&event));
        ids.push(chain::hex(&link.head));
        first.get_or_insert(link.head);
        if i % every == 0 || i == n {
            let note = signer.checkpoint_of(&link, first.as_ref(), at);
            notes.push_str(&format!("{}\n", serde_json::json!({ "checkpoint": note })));
        }
    }
    std::fs::write(format!("{}.checkpoints", spool.display()), notes).unwrap();
    std::fs::write(spool, lines).unwrap();
    ids
}

#[tokio::test]
async fn a_gateway_killed_in_the_middle_of_a_replay_replays_the_rest_at_its_next_start_each_event_once() {
    const N: usize = 20_000;
    let Setup { server: _server, url, dir, spool, key, public } = Setup::new("pg-kill-replay");
    let ids = written_spool(&spool, &key, N, 1_000);
    let mut env = env(&url, &key, &spool);
    // Small transactions, so that the replay lasts long enough for the kill to land in it.
    env.push(("VIGIE_AUDIT__REPLAY_BATCH", "50"));
    // (The table is made when `serve` opens the trail.)
    let replayed = || {
        if postgres::psql(&url, "SELECT to_regclass('audit_records')").trim().is_empty() {
            return 0;
        }
        let n = postgres::psql(&url, "SELECT count(*) FROM audit_records WHERE event_id IS NOT NULL");
        n.trim().parse::<usize>().unwrap()
    };

    // `serve` replays the spool when it opens the trail, before it answers anything.
    let owned: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let node = cluster::Node::spawn(&dir.join("first"), free_port(), &owned);
    let deadline = Instant::now() + Duration::from_secs(120);
    while replayed() == 0 {
        assert!(Instant::now() < deadline, "the replay did not begin: {}", node.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: kill(2) on the pid of the `vigie serve` this test started, not reaped yet.
    assert_eq!(unsafe { libc::kill(node.pid(), libc::SIGKILL) }, 0);
    drop(node);
    let at_kill = replayed();
    eprintln!("killed with {at_kill} of the {N} spooled records in the table");
    assert!(0 < at_kill && at_kill < N, "killed in the middle of the replay: {at_kill} of {N} records in the table");
    assert!(spool.exists() && archived(&dir).is_empty(), "a replay cut short leaves its spool where it was");

    let gw = Gateway::start(&env).await;
    assert!(!spool.exists(), "the spool is moved aside once replayed");
    assert_eq!(archived(&dir).len(), 1, "the replayed spool is archived, not deleted");
    let in_table = postgres::psql(&url, "SELECT event_id FROM audit_records WHERE event_id IS NOT NULL ORDER BY seq");
    let in_table: Vec<&str> = in_table.lines().collect();
    let first_wrong = in_table.iter().zip(&ids).position(|(row, id)| *row != id.as_str());
    assert!(
        in_table.len() == N && first_wrong.is_none(),
        "every spooled event in the table exactly once, in the spool's order: {} rows ({at_kill} at the kill), \
         the first wrong at {first_wrong:?}",
        in_table.len()
    );
    assert_eq!(spool_pending(&gw).await, 0.0, "nothing waits in a spool any more");
    let (status, body) = readyz(&gw).await;
    assert_eq!((status, &body["checks"]["audit"]["status"]), (200, &Value::from("up")), "{body}");
    let (status, out) = verify_table(&public, &url);
    assert_eq!(status, 0, "one chain with the spooled events, across the kill: {out}");
    assert!(out.contains("intact: "), "{out}");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}
