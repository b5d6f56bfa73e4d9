//! Stateless replicas: a real `redis-server` (the Redis store's own test launcher) and `vigie`
//! replicas sharing it, one data directory and one issuer; a Sentinel topology (primary, replica,
//! three sentinels) for failovers.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../../adapters/store-redis/tests/common/redis_server.rs"]
pub mod redis_server;
pub use redis_server::{RedisServer, Sentinel};

/// A `vigie serve` replica on the Redis store, killed when dropped; its log in
/// `<data dir>/replica-<port>.log`.
pub struct Replica {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Replica {
    /// Starts a replica on the shared data directory (the first one writes the demo there),
    /// Redis and issuer, with `env` on top, and waits until it listens and `demo.json` is written.
    /// A replica that exits fails the test at once with its log.
    pub fn start(dir: &Path, port: u16, redis: &RedisServer, issuer: &str, env: &[(&str, &str)]) -> Replica {
        std::fs::create_dir_all(dir).expect("the replicas' data directory");
        let log = dir.join(format!("replica-{port}.log"));
        let out = std::fs::File::create(&log).expect("the replica's log");
        let child = Command::new(super::BIN)
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("VIGIE_STORE__KIND", "redis")
            .env("VIGIE_STORE__URL", redis.url())
            .env("VIGIE_ISSUER", issuer)
            .env("VIGIE_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the replica's log"))
            .stderr(out)
            .spawn()
            .expect("start vigie");
        let mut replica = Replica { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !dir.join("demo.json").is_file() {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("the replica on {port} exited with {status}: {}", replica.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the replica on {port} did not start within 60 s: {}",
                replica.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        replica
    }

    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SSO round trip: `authorize` (an authorization request's URL) with the `session` cookie
/// only, which must go back to the client at `redirect`: its redirect parameters.
pub async fn sso_round_trip(
    http: &reqwest::Client,
    authorize: String,
    session: &str,
    redirect: &str,
) -> std::collections::BTreeMap<String, String> {
    let r = http.get(&authorize).header("cookie", session).send().await.expect("SSO");
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with(redirect), "{authorize}: SSO went to {location}");
    super::query_of(&location)
}

/// Polls `sso` (an SSO round trip to a replica's base URL: the client's redirect parameters) on
/// each of `replicas` (name, base URL) in turn until it gives no code, for at most 15 s each, and
/// asserts that each refused with `error`, within `within` of `since` (the change).
pub async fn each_replica_refuses<F, Fut>(
    replicas: &[(&str, &str)],
    since: Instant,
    within: Duration,
    error: &str,
    sso: F,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::collections::BTreeMap<String, String>>,
{
    for (name, base) in replicas {
        let refused = super::eventually(15, || async {
            let params = sso(base.to_string()).await;
            (!params.contains_key("code")).then_some(params)
        })
        .await
        .unwrap_or_else(|| panic!("{name} still gives a code 15 s after the change"));
        let after = since.elapsed();
        eprintln!("{name} refused SSO {after:?} after the change");
        assert_eq!(refused.get("error").map(String::as_str), Some(error), "{name}: {refused:?}");
        assert!(after < within, "{name} took {after:?} to follow the change");
    }
}

/// What the replicas' demo wrote in their data directory (`demo.json`): an HTTP client that
/// trusts the demo CA and follows no redirect, the `demo-cli` client's secret, the demo's users.
pub struct ReplicaDemo {
    pub http: reqwest::Client,
    pub secret: String,
    pub users: Vec<serde_json::Value>,
}

impl ReplicaDemo {
    pub fn read(dir: &Path) -> ReplicaDemo {
        let text = std::fs::read_to_string(dir.join("demo.json")).expect("the replicas' demo.json");
        let demo: serde_json::Value = serde_json::from_str(&text).expect("demo.json is JSON");
        let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().expect("ca_pem").as_bytes()).expect("CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let clients = demo["clients"].as_array().expect("clients");
        let cli = clients.iter().find(|c| c["client_id"] == "demo-cli").expect("demo-cli");
        let secret = cli["client_secret"].as_str().expect("client_secret").to_owned();
        ReplicaDemo { http, secret, users: demo["users"].as_array().expect("users").clone() }
    }
}

impl ReplicaDemo {
    /// Opens the login page at `login_path` on `base` (it must be found: 200) and logs `user` in
    /// with password and TOTP, with the browser cookie the authorization request set; gives the
    /// answer (303 to the client with a code, and the session cookie, when it worked).
    pub async fn log_in(
        &self,
        base: &str,
        login_path: &str,
        browser: &str,
        user: &serde_json::Value,
    ) -> reqwest::Response {
        let page = self.http.get(format!("{base}{login_path}")).send().await.expect("login page");
        assert_eq!(page.status(), 200, "the login page {login_path} on {base}");
        let html = page.text().await.expect("html");
        let code = super::totp::now_code(user["totp_secret"].as_str().expect("totp"));
        self.http
            .post(format!("{base}/login/password"))
            .header("cookie", browser)
            .form(&[
                ("flow", super::hidden_input(&html, "flow").expect("flow")),
                ("csrf", super::hidden_input(&html, "csrf").expect("csrf")),
                ("username", user["username"].as_str().expect("username").to_owned()),
                ("password", user["password"].as_str().expect("password").to_owned()),
                ("totp", code),
            ])
            .send()
            .await
            .expect("login")
    }
}

/// The Redis store's test PKI (a CA, a server and a client certificate for 127.0.0.1) and the
/// `redis-server` arguments of a TLS port.
#[path = "../../../../adapters/store-redis/tests/common/tls_pki.rs"]
pub mod tls_pki;
