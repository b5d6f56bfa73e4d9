//! The Redis store through Redis Sentinel, against real processes (a primary, a replica, three
//! sentinels): it finds the primary, follows a failover after the primary is killed and after
//! it is demoted (`READONLY`), and names `store.sentinel` when no sentinel knows the name.
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_core::store::{EphemeralStore, StoreError};
use vigie_core::testkit;
use vigie_store_redis::{RedisOptions, RedisSentinel, RedisStore};

#[path = "common/redis_server.rs"]
mod redis_server;
use redis_server::{MASTER_NAME, Sentinel, ask};

fn options(topology: &Sentinel, master_name: &str) -> RedisOptions {
    RedisOptions {
        sentinel: Some(RedisSentinel {
            master_name: master_name.to_owned(),
            nodes: topology.nodes(),
            password: topology.password.clone(),
            tls: false,
        }),
        // The host is not used: the sentinels name the primary.
        ..RedisOptions::new("redis://vigie/0", "vigie-sentinel:")
    }
}

async fn open(topology: &Sentinel) -> RedisStore {
    RedisStore::open(&options(topology, MASTER_NAME))
        .await
        .unwrap_or_else(|e| panic!("cannot open the store through the sentinels: {e}"))
}

/// Until the replica has every write the primary acknowledged (`WAIT 1`), so that a test
/// knows what a failover may not lose.
fn replicated(primary: u16) {
    let answer = ask(primary, "WAIT 1 5000");
    assert!(answer.starts_with(":1"), "the replica did not acknowledge the writes: {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_through_sentinel_keeps_every_port_guarantee() {
    let topology = Sentinel::start();
    let store = open(&topology).await;
    assert_eq!(store.node(), format!("127.0.0.1:{}", topology.nodes[0].port), "not the primary");
    testkit::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_follows_the_new_primary_after_the_primary_is_killed() {
    let mut topology = Sentinel::start();
    let store = open(&topology).await;
    store.put("session:kept", b"replicated", Duration::from_secs(60)).await.unwrap();
    replicated(topology.nodes[0].port);

    let started = Instant::now();
    let old = topology.kill_primary();
    let mut failed = 0;
    loop {
        match store.put("session:after", b"written", Duration::from_secs(60)).await {
            Ok(()) => break,
            Err(StoreError::Unavailable(message)) => {
                failed += 1;
                assert!(message.contains("primary 127.0.0.1:"), "{message}");
            }
            Err(e) => panic!("a write during the failover failed otherwise than Unavailable: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the store did not reach a new primary within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let new = topology.wait_for_new_primary(old, Duration::from_secs(10));
    println!("failover after SIGKILL: writable again after {:?}, {failed} writes refused meanwhile", started.elapsed());
    assert_eq!(store.node(), format!("127.0.0.1:{new}"));
    assert_eq!(store.get("session:kept").await.unwrap(), Some(b"replicated".to_vec()), "a replicated write was lost");
    assert_eq!(store.get("session:after").await.unwrap(), Some(b"written".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_follows_the_new_primary_after_the_primary_is_demoted() {
    let topology = Sentinel::start();
    let store = open(&topology).await;
    store.put("flow:kept", b"replicated", Duration::from_secs(60)).await.unwrap();
    let old = topology.nodes[0].port;
    replicated(old);

    let answer = ask(topology.sentinels[0].port, &format!("SENTINEL FAILOVER {MASTER_NAME}"));
    assert!(answer.starts_with("+OK"), "SENTINEL FAILOVER: {answer:?}");
    let new = topology.wait_for_new_primary(old, Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ask(old, "ROLE").contains("slave") {
        assert!(Instant::now() < deadline, "the old primary was not made a replica within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The store still holds a connection to the old primary, now a replica: its first write
    // meets READONLY, which must lead to the new primary and succeed, not fail.
    store
        .put("flow:after", b"written", Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("the first write after the demotion failed: {e}"));
    assert_eq!(store.node(), format!("127.0.0.1:{new}"));
    assert_eq!(store.take("flow:kept").await.unwrap(), Some(b"replicated".to_vec()));
    assert_eq!(store.take("flow:kept").await.unwrap(), None, "a code was taken twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_master_name_is_refused_naming_the_sentinel_keys() {
    let topology = Sentinel::start();
    let result = RedisStore::open(&options(&topology, "not-monitored")).await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("a master name no sentinel monitors was accepted: {result:?}");
    };
    assert!(message.contains("`store.sentinel.master_name`"), "{message}");
    assert!(message.contains("not-monitored"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinels_with_a_password_are_asked_with_it_and_a_wrong_one_is_refused_unshown() {
    let topology = Sentinel::start_with_password(Some("sentinel-Pa55"));
    let store = open(&topology).await;
    store.put("k", b"v", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));

    let mut wrong = options(&topology, MASTER_NAME);
    if let Some(sentinel) = wrong.sentinel.as_mut() {
        sentinel.password = Some("wr0ng-Pa55".to_owned());
    }
    let result = RedisStore::open(&wrong).await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("sentinels accepted a wrong password: {result:?}");
    };
    assert!(message.contains("`store.sentinel.password`"), "{message}");
    assert!(!message.contains("wr0ng-Pa55"), "the password leaked into: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_url_naming_a_replica_is_reported_as_read_only_pointing_at_sentinel() {
    let primary = redis_server::RedisServer::start();
    let port = primary.port.to_string();
    let replica = redis_server::RedisServer::start_on(redis_server::free_port(), &["--replicaof", "127.0.0.1", &port]);
    let store = RedisStore::connect(&replica.url(), "t:").await.expect("a replica answers PING");
    let Err(StoreError::Unavailable(message)) = store.put("k", b"v", Duration::from_secs(60)).await else {
        panic!("a write to a replica did not fail as Unavailable");
    };
    assert!(message.contains("is a read-only replica"), "{message}");
    assert!(message.contains("`[store.sentinel]`"), "{message}");
}
