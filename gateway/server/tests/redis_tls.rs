//! `vigie serve` on a Redis reached over TLS only (`rediss://`, `tls-auth-clients yes`): the
//! replica reads `store.ca_file`, `store.client_cert` and `store.client_key` and keeps its login
//! flows in that Redis. (Bad files: `predeploy.rs`; the store over TLS: the Redis store's tests.)
use crate::common::free_port;
use crate::common::redis::tls_pki::{TestPki, tls_args};
use crate::common::redis::{RedisServer, Replica, ReplicaDemo, redis_server::ask};
use crate::replicas::authorize_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_keeps_its_login_flows_in_a_redis_reached_over_mutual_tls() {
    let pki = TestPki::new(&format!("gateway-tls-{}", free_port()));
    let (ca, server, client) = pki.ca("redis");
    let tls_port = free_port();
    let args = tls_args(tls_port, &ca, &server, true);
    let redis = RedisServer::start_on(free_port(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let path = |p: &std::path::Path| p.display().to_string();
    let (ca, cert, key) = (path(&ca), path(&client.cert), path(&client.key));
    let env = [
        ("VIGIE_STORE__URL", url.as_str()),
        ("VIGIE_STORE__CA_FILE", ca.as_str()),
        ("VIGIE_STORE__CLIENT_CERT", cert.as_str()),
        ("VIGIE_STORE__CLIENT_KEY", key.as_str()),
    ];
    let dir = pki.dir.join("replica");
    let port = free_port();
    let replica = Replica::start(&dir, port, &redis, &format!("https://localhost:{port}"), &env);

    let demo = ReplicaDemo::read(&dir);
    let r = demo.http.get(authorize_url(&replica.base())).send().await.expect("authorize");
    assert_eq!(r.status(), 303, "authorize: {:?}", r.text().await);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let flow = location.strip_prefix("/login?flow=").unwrap_or_else(|| panic!("not the login page: {location}"));
    // The flow is in that Redis (read on its plain port, which only the test uses).
    let stored = ask(redis.port, &format!("EXISTS vigie:flow:{flow}"));
    assert_eq!(stored.trim(), ":1", "the login flow {flow} is not in the Redis reached over TLS");
    drop(replica);
}

#[test]
fn serve_refuses_a_store_ca_file_without_a_certificate_saying_so() {
    let pki = TestPki::new(&format!("gateway-bad-ca-{}", free_port()));
    let garbage = pki.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    let out = std::process::Command::new(crate::common::BIN)
        .args(["serve", "--data-dir"])
        .arg(pki.dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("VIGIE_STORE__KIND", "redis")
        .env("VIGIE_STORE__URL", "rediss://127.0.0.1:1/0")
        .env("VIGIE_STORE__CA_FILE", &garbage)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("vigie serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started with a CA file holding no certificate: {stderr}");
    let expected = format!("`store.ca_file`: {} holds no PEM certificate", garbage.display());
    assert!(stderr.contains(&expected), "{stderr}");
}
