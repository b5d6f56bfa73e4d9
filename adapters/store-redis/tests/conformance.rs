//! The Redis store against a real `redis-server` started by each test: the shared conformance
//! suite, two replicas on one server, and what the gateway sees when Redis is down.
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_core::store::{EphemeralStore, StoreError};
use vigie_core::testkit;
use vigie_store_redis::RedisStore;

#[path = "common/redis_server.rs"]
mod redis_server;
use redis_server::{RedisServer, free_port};

async fn connect(url: &str, key_prefix: &str) -> Arc<dyn EphemeralStore> {
    match RedisStore::connect(url, key_prefix).await {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("cannot connect to the test redis-server: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_every_port_guarantee() {
    let server = RedisServer::start();
    testkit::run_all(connect(&server.url(), "vigie-test:").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_redis_share_state_and_take_codes_once() {
    let server = RedisServer::start();
    let replica_a = connect(&server.url(), "vigie-test:").await;
    let replica_b = connect(&server.url(), "vigie-test:").await;
    testkit::replicas_share_state(replica_a.clone(), replica_b).await;

    let other_deployment = connect(&server.url(), "other-deployment:").await;
    replica_a.put("session:1", b"mine", Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        other_deployment.get("session:1").await.unwrap(),
        None,
        "a store with another key prefix sees this deployment's keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_redis_is_reported_quickly_and_clearly() {
    let port = free_port();
    let started = Instant::now();
    let result = RedisStore::connect(&format!("redis://127.0.0.1:{port}/0"), "vigie-test:").await;
    let took = started.elapsed();

    let Err(StoreError::Unavailable(message)) = result else {
        panic!("connect to a closed port did not fail as Unavailable: {result:?}");
    };
    // Refused at once: about 0.3 s (the retries' backoff; `cargo bench --bench unavailable` has
    // the figure). The bound, ten times that, stays to tell "fails" from "hangs", not to time it.
    assert!(took < Duration::from_secs(3), "connect to a closed port took {took:?}");
    assert!(message.contains(&format!("cannot reach Redis at redis://127.0.0.1:{port}/0")), "{message}");
    assert!(message.contains("`store.url`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_redis_password_is_reported_without_leaking_it() {
    let server = RedisServer::start_on(free_port(), &["--requirepass", "right-Pa55word"]);

    let result = RedisStore::connect(&format!("redis://:wr0ng-Pa55word@127.0.0.1:{}", server.port), "t:").await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("connect with a wrong password did not fail as Unavailable: {result:?}");
    };
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(message.contains(&format!("redis://***@127.0.0.1:{}", server.port)), "{message}");
    assert!(!message.contains("wr0ng-Pa55word"), "the password leaked into: {message}");

    let store = RedisStore::connect(&format!("redis://:right-Pa55word@127.0.0.1:{}", server.port), "t:").await;
    assert!(store.is_ok(), "connect with the right password failed: {store:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_fail_fast_while_redis_is_down_and_recover_after() {
    let mut server = RedisServer::start();
    let store = connect(&server.url(), "vigie-test:").await;
    store.put("flow", b"state", Duration::from_secs(60)).await.unwrap();

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let result = store.ping().await;
        let took = started.elapsed();
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "ping with Redis down gave {result:?}");
        // As above: at most about 0.3 s (benchmarked), bounded at ten times that to tell "fails"
        // from "hangs".
        assert!(took < Duration::from_secs(3), "ping with Redis down took {took:?}");
    }
    let Err(StoreError::Unavailable(message)) = store.get("flow").await else {
        panic!("get with Redis down did not fail as Unavailable");
    };
    assert!(message.contains(&server.url()), "{message}");

    let server = RedisServer::start_on(server.port, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the store did not reconnect to {} within 10 s", server.url());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.put("flow", b"again", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get("flow").await.unwrap(), Some(b"again".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_that_never_answers_is_reported_within_bounded_time() {
    // The kernel accepts connections into the backlog; nothing ever reads or answers them.
    let silent = TcpListener::bind("127.0.0.1:0").expect("no free local port");
    let port = silent.local_addr().expect("listener has no address").port();
    let started = Instant::now();
    let result = RedisStore::connect(&format!("redis://127.0.0.1:{port}"), "vigie-test:").await;
    let took = started.elapsed();

    let Err(StoreError::Unavailable(message)) = result else {
        panic!("connect to a silent server did not fail as Unavailable: {result:?}");
    };
    // By design about 1.8 s (3 attempts of 500 ms plus backoff, `RedisTimeouts`; benchmarked by
    // `cargo bench --bench unavailable`); without the timeouts it would hang for good. The
    // bound, ten times that, tells one from the other on a loaded machine.
    assert!(took < Duration::from_secs(20), "connect to a silent server took {took:?}");
    assert!(message.contains("did not answer"), "{message}");
}
