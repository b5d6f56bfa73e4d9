//! The directory sync on two real `vigie serve` replicas (one PostgreSQL, one Redis, one slapd,
//! a 2 s period): exactly one pass per period whichever replica runs it, a change applied once
//! (one audit line), the survivor taking over when the other is SIGKILLed, and `vigie directory
//! sync` kept apart by the same lease (it says who holds it, or waits).
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::BIN;
use crate::common::cluster::{Cluster, Node};
use crate::common::ldap::{self as slapd, Slapd};
use crate::ldap::ldap_env;

const EVERY: u64 = 2;

/// The periods of the passes `node` ran, from its JSON log (`directory_sync::once`).
fn passes(node: &Node) -> Vec<u64> {
    node.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("directory sync (")))
        .filter_map(|l| l["fields"]["period"].as_u64())
        .collect()
}

/// Polls (for up to `secs`) until `done` holds; the test fails with `what` otherwise.
async fn within(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(secs), "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `vigie directory sync` on the cluster's configuration, with `args`.
fn cli_sync(cluster: &Cluster, ldap: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["directory", "sync", "--data-dir"]).arg(&cluster.dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VIGIE_")) {
        cmd.env_remove(k);
    }
    cmd.envs(cluster.env.iter().map(|(k, v)| (k, v))).envs(ldap.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("vigie directory sync")
}

fn redis_cli(cluster: &Cluster, args: &[&str]) -> String {
    let url = cluster.env.iter().find(|(k, _)| k == "VIGIE_STORE__URL").map(|(_, v)| v.clone()).expect("store url");
    let out = Command::new("redis-cli")
        .args(["-u", &url])
        .args(args)
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sync_once_per_period_apply_a_change_once_and_the_survivor_takes_over_a_killed_one() {
    let s = Slapd::start();
    let mut env = ldap_env(&s);
    env.push(("VIGIE_DIRECTORY__LDAP__SYNC_INTERVAL_SECS".into(), EVERY.to_string()));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let Some(cluster) = Cluster::start("dir-replicas", 2, &refs).await else {
        eprintln!("skipped: needs VIGIE_TEST_POSTGRES_URL (tests/postgres.sh, started by tests/run)");
        return;
    };

    // A few periods: each run by one replica only.
    within(90, "six passes between the two replicas", || {
        passes(&cluster.nodes[0]).len() + passes(&cluster.nodes[1]).len() >= 6
    })
    .await;
    let (a, b) = (passes(&cluster.nodes[0]), passes(&cluster.nodes[1]));
    let mut all: Vec<u64> = a.iter().chain(&b).copied().collect();
    all.sort_unstable();
    let runs = all.len();
    all.dedup();
    assert_eq!(all.len(), runs, "a period synced twice: replica A {a:?}, replica B {b:?}");
    // Consecutive periods (a loaded machine may make a replica wake late, never twice).
    let (first, last) = (all[0], all[all.len() - 1]);
    assert!((last - first + 1) as usize <= all.len() + 2, "periods missed: {all:?}");

    // A change in the directory: applied once, by whichever replica's pass, one audit line.
    s.modify(&format!(
        "dn: uid=demo.medecin,ou=people,{}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n",
        slapd::BASE
    ));
    let disabled = "SELECT count(*) FROM audit_records WHERE record::text LIKE '%\"kind\":\"directory_sync\"%' \
                    AND record::text LIKE '%\"username\":\"demo.medecin\"%' AND record::text LIKE '%disabled or expired%'";
    within(60, "the doctor's account disabled by the sync", || cluster.db.execute(disabled) != "0").await;
    let seen = passes(&cluster.nodes[0]).len() + passes(&cluster.nodes[1]).len();
    within(60, "three more passes", || passes(&cluster.nodes[0]).len() + passes(&cluster.nodes[1]).len() >= seen + 3)
        .await;
    assert_eq!(cluster.db.execute(disabled), "1", "the change was applied more than once");

    // The replica that ran the last pass is killed (no drain, no release): the other runs the
    // following periods, within the lease's time (3 periods) and a period.
    let last_of = |n: &Node| passes(n).into_iter().max().unwrap_or(0);
    let victim = usize::from(last_of(&cluster.nodes[1]) > last_of(&cluster.nodes[0]));
    let survivor = 1 - victim;
    // SAFETY: kill(2) on the test's own child, not yet reaped.
    unsafe { libc::kill(cluster.nodes[victim].pid(), libc::SIGKILL) };
    let killed_at = Instant::now();
    let before = last_of(&cluster.nodes[survivor]).max(last_of(&cluster.nodes[victim]));
    within(30, "the survivor syncing after the kill", || last_of(&cluster.nodes[survivor]) > before).await;
    let took = killed_at.elapsed();
    assert!(took <= Duration::from_secs(3 * EVERY + EVERY + 10), "took over after {took:?}");
    let after: Vec<u64> = passes(&cluster.nodes[survivor]).into_iter().filter(|p| *p > before).collect();
    within(30, "the survivor's next passes", || {
        passes(&cluster.nodes[survivor]).into_iter().filter(|p| *p > before).count() >= after.len() + 2
    })
    .await;

    // `vigie directory sync` takes the same lease: held by another, it says by whom and syncs
    // nothing; with `--wait`, it runs once the holder is done.
    let key = "vigie:lease:directory-sync:ldap";
    let holder = "c0ffee vigie directory sync on ops-host (pid 4242) since 2026-01-01T00:00:00Z";
    let set = redis_cli(&cluster, &["SET", key, holder, "PX", "60000"]);
    assert_eq!(set, "OK");
    let refused = cli_sync(&cluster, &env, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("another directory sync is running (vigie directory sync on ops-host (pid 4242)")
            && err.contains("--wait"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&refused.stdout).is_empty(), "nothing synced");
    let releaser = {
        let url = cluster.env.iter().find(|(k, _)| k == "VIGIE_STORE__URL").map(|(_, v)| v.clone()).expect("url");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            Command::new("redis-cli").args(["-u", &url, "DEL", key]).output().expect("redis-cli")
        })
    };
    let waited = cli_sync(&cluster, &env, &["--wait", "60"]);
    releaser.join().expect("released");
    assert!(waited.status.success(), "{}", String::from_utf8_lossy(&waited.stderr));
    assert!(String::from_utf8_lossy(&waited.stdout).starts_with("directory sync (full pass"), "{:?}", waited);
}
