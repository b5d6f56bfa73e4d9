//! Stopping as Kubernetes stops a pod, and a rolling restart under load: SIGTERM turns
//! `/readyz` to 503 while everything is still served (`server.drain_secs`), then the listeners
//! stop accepting and the requests in flight finish; three nodes on PostgreSQL and Redis behind a
//! readiness-aware proxy (`common/cluster.rs`) are restarted one by one under a load of card
//! logins, SSO round trips and refreshes, and nothing fails.
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::cluster::{Node, client};
use crate::common::free_port;

const DRAIN_SECS: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_finishes_the_request_in_flight_and_exits_0() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "vigie-sigterm-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let (port, plain) = (free_port(), free_port());
    let env: Vec<(String, String)> = [
        ("VIGIE_SERVER__DRAIN_SECS", DRAIN_SECS.to_string()),
        ("VIGIE_SERVER__SHUTDOWN_TIMEOUT_SECS", "20".into()),
        // The request kept in flight is written by hand, over plain HTTP as a TLS-terminating
        // proxy would send it.
        ("VIGIE_SERVER__PLAIN_HTTP_LISTEN", format!("127.0.0.1:{plain}")),
        ("VIGIE_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#.into()),
        ("VIGIE_LOG", "info".into()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec();
    let mut node = Node::spawn(&dir, port, &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("demo.json").is_file() {
        assert!(Instant::now() < deadline, "no demo.json within 60 s: {}", node.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json")).expect("json");
    let http = client(demo["ca_pem"].as_str().expect("ca_pem"), None);
    node.wait_ready(&http).await;

    // A token request whose body is only half sent: in flight for as long as the test wants.
    let body = "grant_type=refresh_token&refresh_token=fam.1.secret&client_id=demo-cli&client_secret=not-the-secret";
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", plain)).expect("plain listener");
    slow.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        slow,
        "POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..20]
    )
    .expect("the first half");
    slow.flush().expect("flush");
    // Let the request reach its handler before the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;

    node.terminate();
    let signalled = Instant::now();
    // The drain: /readyz says 503 `draining`, the rest is served as usual, and every response
    // closes its connection so that keep-alive clients come back through the Service.
    let r = loop {
        let r = http.get(node.url("/readyz")).send().await.expect("readyz while draining");
        if r.status() == 503 {
            break r;
        }
        assert!(signalled.elapsed() < Duration::from_secs(DRAIN_SECS), "/readyz still 200 at the end of the drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let readyz: Value = r.json().await.expect("readyz json");
    assert_eq!(readyz["status"], "draining", "{readyz}");
    assert_eq!(readyz["checks"]["store"]["status"], "up", "the dependencies are still reported: {readyz}");
    let r = http.get(node.url("/healthz")).send().await.expect("healthz while draining");
    assert_eq!(r.status(), 200, "alive while draining");
    let r = http.get(node.url("/.well-known/openid-configuration")).send().await.expect("discovery while draining");
    assert_eq!(r.status(), 200, "served while draining");
    // hyper keeps the `Connection` header to itself: read on the wire.
    let raw = raw_get(plain, "/.well-known/openid-configuration");
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.to_ascii_lowercase().contains("\r\nconnection: close\r\n"), "{raw}");
    assert!(
        signalled.elapsed() < Duration::from_secs(DRAIN_SECS),
        "the checks above ran within the drain ({:?}): too slow a machine for this test",
        signalled.elapsed()
    );

    // After the drain, no new connection.
    let refused_at = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            break signalled.elapsed();
        }
        assert!(signalled.elapsed() < Duration::from_secs(DRAIN_SECS + 15), "still accepting connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused_at >= Duration::from_secs(DRAIN_SECS),
        "stopped accepting after {refused_at:?}, before the drain's end"
    );

    // The request in flight gets its answer: a complete one, from the token endpoint.
    slow.write_all(&body.as_bytes()[20..]).expect("the second half");
    let mut answer = String::new();
    slow.read_to_string(&mut answer).expect("the answer to the request in flight");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_client\""), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");

    let status = node.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let log = node.log_text();
    for phase in ["draining: /readyz answers 503", "drain over: no new connections", "stopped: requests finished"] {
        assert!(log.contains(phase), "the log says `{phase}`: {log}");
    }
    eprintln!("SIGTERM: /readyz 503 at once; connections refused after {refused_at:?} (drain {DRAIN_SECS} s)");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A GET on the plain-HTTP listener, on a connection the client would keep alive; the whole
/// answer as the server wrote it (it must close the connection for this to end).
fn raw_get(port: u16, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("plain listener");
    c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("an answer, then the connection closed");
    answer
}
