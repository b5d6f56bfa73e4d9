//! The Redis store over TLS (`rediss://`) against a real `redis-server` with a TLS port and a
//! test CA: the shared conformance suite over TLS, a certificate from another CA refused
//! naming `store.ca_file`, and mutual TLS (`tls-auth-clients yes`).
use std::sync::Arc;

use vigie_core::store::StoreError;
use vigie_core::testkit;
use vigie_store_redis::{RedisOptions, RedisStore, RedisTls};

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/tls_pki.rs"]
mod tls_pki;
use redis_server::{RedisServer, free_port};
use tls_pki::{TestPki, tls_args};

/// A `redis-server` with a plain port (for the launcher's readiness check) and a TLS port.
fn tls_server(pki: &TestPki, auth_clients: bool) -> (RedisServer, u16) {
    let (ca, server, _) = pki.ca("redis");
    let tls_port = free_port();
    let args = tls_args(tls_port, &ca, &server, auth_clients);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (RedisServer::start_on(free_port(), &args), tls_port)
}

fn options(tls_port: u16, tls: RedisTls) -> RedisOptions {
    RedisOptions { tls, ..RedisOptions::new(&format!("rediss://127.0.0.1:{tls_port}"), "vigie-tls:") }
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).expect("a PEM file of the test PKI")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_over_tls_with_the_right_ca_keeps_every_port_guarantee() {
    let pki = TestPki::new("tls-conformance");
    let (_server, tls_port) = tls_server(&pki, false);
    let ca = read(&pki.dir.join("redis.pem"));
    let store = RedisStore::open(&options(tls_port, RedisTls { ca_pem: Some(ca), client_pem: None }))
        .await
        .unwrap_or_else(|e| panic!("connecting over TLS with the right CA failed: {e}"));
    testkit::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_certificate_from_another_ca_is_refused_naming_store_ca_file() {
    let pki = TestPki::new("tls-wrong-ca");
    let (_server, tls_port) = tls_server(&pki, false);
    let (other_ca, _, _) = pki.ca("other");

    let result =
        RedisStore::open(&options(tls_port, RedisTls { ca_pem: Some(read(&other_ca)), client_pem: None })).await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("a Redis certificate from another CA was accepted: {result:?}");
    };
    assert!(message.contains("is not trusted"), "{message}");
    assert!(message.contains("`store.ca_file`"), "{message}");
    assert!(message.contains(&format!("rediss://127.0.0.1:{tls_port}")), "{message}");

    // Nor is it trusted through the system's roots (no `store.ca_file`).
    let result = RedisStore::open(&options(tls_port, RedisTls::default())).await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("a test CA's certificate was trusted through the system roots: {result:?}");
    };
    assert!(message.contains("`store.ca_file`"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_asking_for_a_client_certificate_gets_one_and_refuses_a_client_without() {
    let pki = TestPki::new("tls-mutual");
    let (_server, tls_port) = tls_server(&pki, true);
    let ca = read(&pki.dir.join("redis.pem"));

    let without = RedisStore::open(&options(tls_port, RedisTls { ca_pem: Some(ca.clone()), client_pem: None })).await;
    let Err(StoreError::Unavailable(message)) = without else {
        panic!("Redis with tls-auth-clients yes accepted a client without a certificate: {without:?}");
    };
    assert!(message.contains("`store.client_cert`"), "{message}");

    let client = (read(&pki.dir.join("redis-client.pem")), read(&pki.dir.join("redis-client.key")));
    let store = RedisStore::open(&options(tls_port, RedisTls { ca_pem: Some(ca), client_pem: Some(client) }))
        .await
        .unwrap_or_else(|e| panic!("mutual TLS with the client certificate failed: {e}"));
    testkit::replicas_share_state(Arc::new(store.clone()), Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_files_with_a_plain_redis_url_are_refused_naming_the_keys() {
    let result = RedisStore::open(&RedisOptions {
        tls: RedisTls { ca_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()), client_pem: None },
        ..RedisOptions::new("redis://127.0.0.1:1", "t:")
    })
    .await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("a CA with a redis:// URL was accepted: {result:?}");
    };
    assert!(message.contains("not a rediss:// URL"), "{message}");
}
