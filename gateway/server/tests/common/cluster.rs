//! A local deployment for the rolling-restart tests: `vigie serve` nodes started as children of
//! the test (so that it can SIGTERM them), on one Redis and one PostgreSQL database of their own,
//! behind what Kubernetes puts in front of pods, readiness-aware: like the endpoints
//! controller, each node's `/readyz` is polled every 200 ms and only ready nodes get traffic.
//!
//! - The Ingress (`ingress.rs`, the issuer's address): L7, HTTPS terminated, each request routed
//!   round-robin over plain HTTP to a node's `server.plain_http_listen`.
//! - The card route ([`Proxy`]): L4, per connection, TLS passed through to the node, as an
//!   ingress-nginx `ssl-passthrough` host does for card logins: the card's client certificate
//!   reaches Vigie's own handshake (no header mode to trust). A connection already open stays
//!   with its node until either side closes it, so a draining node's `Connection: close` is
//!   what moves keep-alive clients off it.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::BIN;
use super::redis::RedisServer;

/// A `vigie serve` process on the demo data directory `dir`, HTTPS on `port`, with `env` (and
/// nothing else of the test's `VIGIE_*`); killed when dropped. Its log: `<dir>/node-<port>.log`
/// (appended across restarts).
pub struct Node {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Node {
    /// Starts the process; does not wait for it (see [`Node::wait_ready`]).
    pub fn spawn(dir: &Path, port: u16, env: &[(String, String)]) -> Node {
        std::fs::create_dir_all(dir).expect("the nodes' data directory");
        let log = dir.join(format!("node-{port}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("the node's log");
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--data-dir"]).arg(dir).args(["--listen", &format!("127.0.0.1:{port}")]);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VIGIE_")) {
            cmd.env_remove(k);
        }
        let child = cmd
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the node's log"))
            .stderr(out)
            .spawn()
            .expect("start vigie");
        Node { child, port, log }
    }

    /// Waits until `/readyz` answers 200 (60 s at most: a debug build on a loaded machine);
    /// a process that exits fails the test with its log.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the node on {} exited with {status}: {}", self.port, self.log_text());
            }
            if let Ok(r) = http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "the node on {} not ready within 60 s: {}", self.port, self.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SIGTERM, as the kubelet does to a pod that goes.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped before `wait_exit`.
        let rc = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to the node on {}", self.port);
    }

    /// Waits for the process to exit, `within` at most; kills it and fails the test past that.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the node on {} did not exit within {within:?}: {}", self.port, self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client trusting the demo CA, for `localhost` on any port; no redirects followed.
pub fn client(ca_pem: &str, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        // The nodes listen on 127.0.0.1 only; the URL's port is kept.
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("demo CA PEM")]);
    if let Some(identity) = identity {
        b = b.identity(identity);
    }
    b.build().expect("HTTP client")
}

/// A database of the test's own on the PostgreSQL server of `VIGIE_TEST_POSTGRES_URL`
/// (`tests/postgres.sh`), made and dropped with `psql`.
pub struct PgDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    /// `None` when `VIGIE_TEST_POSTGRES_URL` is not set.
    pub fn create(test: &str) -> Option<PgDatabase> {
        let admin = std::env::var("VIGIE_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())?;
        let name = format!("t_{test}_{}_{}", std::process::id(), super::free_port());
        psql(&admin, &format!("CREATE DATABASE \"{name}\""));
        let (base, _) = admin.rsplit_once('/').expect("a URL ending in /database");
        Some(PgDatabase { url: format!("{base}/{name}"), admin, name })
    }

    /// Runs SQL on this database (the test's own schema changes).
    pub fn execute(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([self.admin.as_str(), "-q", "-c", &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)])
            .output();
    }
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql (apt-get install postgresql-client)");
    assert!(out.status.success(), "psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One node behind the proxy: its port, whether its `/readyz` said 200 at the last poll, and
/// how many connections went to it.
pub struct Backend {
    pub port: u16,
    ready: AtomicBool,
    pub connections: AtomicU64,
}

impl Backend {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// The round-robin L4 proxy (see the module's doc). Stops with the test's runtime.
pub struct Proxy {
    pub port: u16,
    pub backends: Arc<Vec<Backend>>,
    /// Connections whose first choice refused (a node past its drain still marked ready): tried
    /// on the next ready node, as an ingress retries a connect error. Expected to stay 0: the
    /// drain lasts far longer than a poll.
    pub connect_retries: Arc<AtomicU64>,
}

impl Proxy {
    /// Binds `port` (the issuer's, known before the proxy starts), polls each of `ports`'
    /// `/readyz` with `http`, and serves.
    pub async fn start_on(port: u16, ports: &[u16], http: reqwest::Client) -> Proxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the proxy's port");
        let backends: Arc<Vec<Backend>> = Arc::new(
            ports
                .iter()
                .map(|&port| Backend { port, ready: AtomicBool::new(false), connections: AtomicU64::new(0) })
                .collect(),
        );
        let b = backends.clone();
        tokio::spawn(async move {
            loop {
                // All nodes at once: one slow node does not delay what the others say.
                futures_util::future::join_all(b.iter().map(|backend| async {
                    let ready = http
                        .get(format!("https://localhost:{}/readyz", backend.port))
                        .timeout(Duration::from_secs(1))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    backend.ready.store(ready, Ordering::SeqCst);
                }))
                .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let retries = Arc::new(AtomicU64::new(0));
        let (b, r) = (backends.clone(), retries.clone());
        tokio::spawn(async move {
            let next = Arc::new(AtomicUsize::new(0));
            while let Ok((inbound, _)) = listener.accept().await {
                let (b, r, next) = (b.clone(), r.clone(), next.clone());
                tokio::spawn(async move {
                    let _ = inbound.set_nodelay(true);
                    let Some(mut outbound) = connect_to_ready(&b, &next, &r).await else { return };
                    let mut inbound = inbound;
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Proxy { port, backends, connect_retries: retries }
    }

    /// Whether the proxy's last poll found the node on `port` ready.
    pub fn is_ready(&self, port: u16) -> bool {
        self.backends.iter().any(|b| b.port == port && b.ready.load(Ordering::SeqCst))
    }

    /// Waits until the proxy's own poll sees the node on `port` as `ready` (or not), 30 s at most.
    pub async fn wait_for(&self, port: u16, ready: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.is_ready(port) != ready {
            assert!(Instant::now() < deadline, "the proxy did not see the node on {port} as ready={ready} within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The next ready node in turn, connected; waits up to 10 s for one to be ready (a Service with
/// no ready endpoint refuses; here every node restarts only once another is ready).
async fn connect_to_ready(
    backends: &[Backend],
    next: &AtomicUsize,
    retries: &AtomicU64,
) -> Option<tokio::net::TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = false;
    while Instant::now() < deadline {
        for _ in 0..backends.len() {
            let backend = &backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
            if !backend.ready.load(Ordering::SeqCst) {
                continue;
            }
            match tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], backend.port))).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    backend.connections.fetch_add(1, Ordering::Relaxed);
                    if refused {
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                    return Some(s);
                }
                Err(_) => refused = true,
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Three (or `n`) nodes on one Redis and one PostgreSQL database, one data directory (the demo's
/// signing keys, TLS and card PKI, client secrets: shared, as a mounted Secret would be), the
/// demo seeded once in the database (the seed adds only what is missing), the issuer being the
/// proxy's address.
pub struct Cluster {
    pub dir: PathBuf,
    pub nodes: Vec<Node>,
    /// The plain-HTTP port of each node (the Ingress's upstream).
    plain: Vec<u16>,
    /// The card route (L4).
    pub proxy: Proxy,
    pub ingress: super::ingress::Ingress,
    pub demo: Value,
    pub ca_pem: String,
    pub db: PgDatabase,
    pub env: Vec<(String, String)>,
    _redis: RedisServer,
}

impl Cluster {
    /// `None` (the caller says it is skipped) without `VIGIE_TEST_POSTGRES_URL`.
    pub async fn start(name: &str, n: usize, env: &[(&str, &str)]) -> Option<Cluster> {
        let db = PgDatabase::create(name)?;
        let redis = RedisServer::start();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vigie-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // The first node prepares the data directory (PKI, keys, secrets) and seeds the database
        // alone; then the proxy's port, the issuer, is known and the others start on it.
        let ports: Vec<u16> = (0..n).map(|_| super::free_port()).collect();
        let plain: Vec<u16> = (0..n).map(|_| super::free_port()).collect();
        let (proxy_port, ingress_port) = (super::free_port(), super::free_port());
        let mut all_env: Vec<(String, String)> = vec![
            ("VIGIE_STORE__KIND".into(), "redis".into()),
            ("VIGIE_STORE__URL".into(), redis.url()),
            ("VIGIE_DIRECTORY__URL".into(), db.url.clone()),
            ("VIGIE_ISSUER".into(), format!("https://localhost:{ingress_port}")),
            ("VIGIE_SERVER__TRUSTED_PROXIES".into(), r#"["127.0.0.1"]"#.into()),
            ("VIGIE_LOG".into(), "info".into()),
        ];
        all_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut first = Node::spawn(&dir, ports[0], &with_plain(&all_env, plain[0]));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.join("demo.json").is_file() {
            assert!(Instant::now() < deadline, "no demo.json within 60 s: {}", first.log_text());
            if let Ok(Some(s)) = first.child.try_wait() {
                panic!("the first node exited with {s}: {}", first.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let demo: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json")).expect("json");
        let ca_pem = demo["ca_pem"].as_str().expect("ca_pem").to_owned();
        let http = client(&ca_pem, None);
        first.wait_ready(&http).await;
        let mut nodes = vec![first];
        for i in 1..n {
            nodes.push(Node::spawn(&dir, ports[i], &with_plain(&all_env, plain[i])));
        }
        for node in &mut nodes[1..] {
            node.wait_ready(&http).await;
        }
        let proxy = Proxy::start_on(proxy_port, &ports, http).await;
        for &port in &ports {
            proxy.wait_for(port, true).await;
        }
        let ingress = super::ingress::Ingress::start(ingress_port, &dir, proxy.backends.clone(), plain.clone());
        Some(Cluster { dir, nodes, plain, proxy, ingress, demo, ca_pem, db, env: all_env, _redis: redis })
    }

    /// The address clients use: the issuer, through the Ingress.
    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.ingress.port)
    }

    /// The card route: the same host, TLS passed through to a node.
    pub fn card_base(&self) -> String {
        format!("https://localhost:{}", self.proxy.port)
    }

    /// The secret of a demo client (demo.json `clients[]`).
    pub fn demo_secret(&self, client_id: &str) -> String {
        let clients = self.demo["clients"].as_array().map(Vec::as_slice).unwrap_or_default();
        let client = clients.iter().find(|c| c["client_id"] == client_id);
        client.and_then(|c| c["client_secret"].as_str()).unwrap_or_else(|| panic!("no secret for {client_id}")).into()
    }

    /// The first demo card: its chain and key in one PEM, as [`reqwest::Identity::from_pem`] reads.
    pub fn demo_card(&self) -> String {
        let users = self.demo["users"].as_array().map(Vec::as_slice).unwrap_or_default();
        let card = users.iter().map(|u| &u["card"]).find(|c| c.is_object()).expect("a demo user with a card");
        let pem = |k: &str| card[k].as_str().unwrap_or_else(|| panic!("the demo card's {k}"));
        format!("{}{}", pem("chain_pem"), pem("key_pem"))
    }

    /// A client of the cluster (through the proxy), presenting `identity` if given.
    pub fn client(&self, identity: Option<reqwest::Identity>) -> reqwest::Client {
        client(&self.ca_pem, identity)
    }

    /// Restarts node `i` as the orchestrator does in a rolling update: SIGTERM; the proxy sees it
    /// unready at its next poll; the process exits 0 once its requests are done; `before_start`
    /// runs (a migration job), then the new process starts on the same port and is waited for
    /// until ready in the proxy's own eyes. Returns how long the node was gone.
    pub async fn restart(&mut self, i: usize, before_start: impl FnOnce(&Cluster)) -> Duration {
        let started = Instant::now();
        let port = self.nodes[i].port;
        self.nodes[i].terminate();
        self.proxy.wait_for(port, false).await;
        let status = self.nodes[i].wait_exit(Duration::from_secs(40)).await;
        assert!(
            status.success(),
            "the node on {port} exited with {status} after SIGTERM: {}",
            self.nodes[i].log_text()
        );
        before_start(self);
        let node = Node::spawn(&self.dir, port, &with_plain(&self.env, self.plain[i]));
        // The old process is reaped: dropping it kills nothing.
        self.nodes[i] = node;
        let http = self.client(None);
        self.nodes[i].wait_ready(&http).await;
        self.proxy.wait_for(port, true).await;
        started.elapsed()
    }
}

impl Drop for Cluster {
    /// The nodes stopped first, then their data directory removed (kept with
    /// `VIGIE_KEEP_TEST_DATA`, as the other gateways' are).
    fn drop(&mut self) {
        self.nodes.clear();
        if std::env::var_os("VIGIE_KEEP_TEST_DATA").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `env` with the node's own plain-HTTP listener (the Ingress's upstream).
fn with_plain(env: &[(String, String)], port: u16) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.push(("VIGIE_SERVER__PLAIN_HTTP_LISTEN".into(), format!("127.0.0.1:{port}")));
    env
}
