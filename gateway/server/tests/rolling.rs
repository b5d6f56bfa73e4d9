//! Stopping as Kubernetes stops a pod, and a rolling restart under load: SIGTERM turns
//! `/readyz` to 503 while everything is still served (`server.drain_secs`), then the listeners
//! stop accepting and the requests in flight finish; three nodes on PostgreSQL and Redis behind a
//! readiness-aware proxy (`common/cluster.rs`) are restarted one by one under a load of card
//! logins, SSO round trips and refreshes, and nothing fails.
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::cluster::{Cluster, Node, client};
use crate::common::{Resp, free_port};

const DRAIN_SECS: u64 = 4;

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

const REDIRECT: &str = "http://127.0.0.1:8768/callback";
const VERIFIER: &str = "rolling-restart-verifier-0123456789-0123456789-abcdef";

/// What the load did, counted by all its tasks.
#[derive(Default)]
struct Counts {
    card_logins: AtomicU64,
    sso: AtomicU64,
    codes_redeemed: AtomicU64,
    refreshes: AtomicU64,
    failed: AtomicU64,
    sessions_lost: AtomicU64,
    families_broken: AtomicU64,
    /// The first failures, for the test's message.
    failures: Mutex<Vec<String>>,
}

impl Counts {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut f = self.failures.lock().expect("failures");
        if f.len() < 10 {
            f.push(what);
        }
    }
}

/// The demo DPI (a sensitive client: the card's phishing-resistant login satisfies it) and the
/// card the load logs in with.
struct Load {
    base: String,
    /// The card route (TLS to the node): `GET /login/cps`.
    card_base: String,
    ca_pem: String,
    secret: String,
    card: String,
    counts: Counts,
    stop: AtomicBool,
}

/// `name=value` of the cookie the response sets.
fn cookie(r: &Resp, name: &str) -> Option<String> {
    r.set_cookie(name).and_then(|c| c.split(';').next()).map(str::to_owned)
}

/// The `code` of a redirect to the client; `None` for any other place.
fn code_of(location: &str) -> Option<String> {
    let u = url::Url::parse(location).ok().filter(|_| location.starts_with(REDIRECT))?;
    u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

impl Load {
    fn authorize_url(&self) -> String {
        let mut u = url::Url::parse(&format!("{}/authorize", self.base)).expect("url");
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "demo-dpi")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid profile")
            .append_pair("state", "st")
            .append_pair("code_challenge", &crate::common::sha256_b64(VERIFIER))
            .append_pair("code_challenge_method", "S256");
        u.to_string()
    }

    /// A card login in a new browser: authorize → login page's flow → `GET /login/cps` with the
    /// card → a code. Returns the browser's cookies and the code.
    async fn card_login(&self) -> Result<(String, String), String> {
        let http = client(&self.ca_pem, None);
        let r = Resp::of(http.get(self.authorize_url()).send().await.map_err(|e| format!("authorize: {e}"))?).await;
        let (flow, browser) = (r.header("location").unwrap_or_default(), cookie(&r, crate::common::BROWSER_COOKIE));
        let (Some(flow), Some(browser)) = (flow.strip_prefix("/login?flow="), browser) else {
            return Err(format!("authorize: {} to {flow:?}", r.status));
        };
        let identity = reqwest::Identity::from_pem(self.card.as_bytes()).expect("card identity");
        let card = client(&self.ca_pem, Some(identity));
        let login = card.get(format!("{}/login/cps?flow={flow}", self.card_base)).header("cookie", &browser);
        let r = Resp::of(login.send().await.map_err(|e| format!("card login: {e}"))?).await;
        let to = r.header("location").unwrap_or_default();
        let (Some(session), Some(code)) = (cookie(&r, crate::common::SESSION_COOKIE), code_of(to)) else {
            return Err(format!("card login: {} to {to:?}", r.status));
        };
        self.counts.card_logins.fetch_add(1, Ordering::Relaxed);
        Ok((format!("{browser}; {session}"), code))
    }

    /// An SSO round trip: authorize with the session → a code at once. `Ok(None)`: the session
    /// no longer works (sent to the login page).
    async fn sso(&self, http: &reqwest::Client, cookies: &str) -> Result<Option<String>, String> {
        let r =
            http.get(self.authorize_url()).header("cookie", cookies).send().await.map_err(|e| format!("SSO: {e}"))?;
        let r = Resp::of(r).await;
        let to = r.header("location").unwrap_or_default();
        if r.status == 303 && to.starts_with("/login") {
            return Ok(None);
        }
        match code_of(to) {
            Some(code) if r.status == 303 => {
                self.counts.sso.fetch_add(1, Ordering::Relaxed);
                Ok(Some(code))
            }
            _ => Err(format!("SSO: {} to {to:?}", r.status)),
        }
    }

    async fn token(&self, http: &reqwest::Client, form: &[(&str, &str)]) -> Result<Value, (u16, String)> {
        let r = http
            .post(format!("{}/token", self.base))
            .basic_auth("demo-dpi", Some(&self.secret))
            .form(form)
            .send()
            .await
            .map_err(|e| (0, format!("token: {e}")))?;
        let status = r.status().as_u16();
        let body = r.text().await.map_err(|e| (status, format!("token body: {e}")))?;
        match status {
            200 => serde_json::from_str(&body).map_err(|e| (status, format!("token json: {e}"))),
            _ => Err((status, body)),
        }
    }

    /// The code redeemed: the refresh token.
    async fn redeem(&self, http: &reqwest::Client, code: &str) -> Result<String, String> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        let t = self.token(http, &form).await.map_err(|(s, e)| format!("code redeemed: {s} {e}"))?;
        self.counts.codes_redeemed.fetch_add(1, Ordering::Relaxed);
        t["refresh_token"].as_str().map(str::to_owned).ok_or_else(|| format!("no refresh token: {t}"))
    }

    /// New browsers logging in with the card, each code redeemed.
    async fn card_logins(self: Arc<Self>) {
        let http = client(&self.ca_pem, None);
        while !self.stop.load(Ordering::SeqCst) {
            match self.card_login().await {
                Ok((_, code)) => {
                    if let Err(e) = self.redeem(&http, &code).await {
                        self.counts.fail(e);
                    }
                }
                Err(e) => self.counts.fail(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One browser's session, used again and again: each round trip's code redeemed.
    async fn sso_round_trips(self: Arc<Self>) {
        let (cookies, _) = self.card_login().await.expect("the SSO task's first login");
        let http = client(&self.ca_pem, None);
        while !self.stop.load(Ordering::SeqCst) {
            match self.sso(&http, &cookies).await {
                Ok(Some(code)) => {
                    if let Err(e) = self.redeem(&http, &code).await {
                        self.counts.fail(e);
                    }
                }
                Ok(None) => {
                    self.counts.sessions_lost.fetch_add(1, Ordering::Relaxed);
                    self.counts.fail("a session stopped working".into());
                    return;
                }
                Err(e) => self.counts.fail(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One refresh family, each rotation's new token used next (RFC 6749 §6, RFC 9700 §4.14.2).
    async fn refreshes(self: Arc<Self>) {
        let http = client(&self.ca_pem, None);
        let (_, code) = self.card_login().await.expect("the refresh task's login");
        let mut latest = self.redeem(&http, &code).await.expect("the refresh task's first token");
        while !self.stop.load(Ordering::SeqCst) {
            match self.token(&http, &[("grant_type", "refresh_token"), ("refresh_token", &latest)]).await {
                Ok(t) => {
                    self.counts.refreshes.fetch_add(1, Ordering::Relaxed);
                    latest = t["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
                }
                Err((400, body)) if body.contains("invalid_grant") => {
                    // The family's latest token refused: the family is broken.
                    self.counts.families_broken.fetch_add(1, Ordering::Relaxed);
                    self.counts.fail(format!("refresh family broken: {body}"));
                    return;
                }
                Err((status, e)) => self.counts.fail(format!("refresh: {status} {e}")),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_load_loses_no_request_session_or_refresh_family() {
    let env = [
        // Fifteen polls of the proxy: margin for a loaded machine.
        ("VIGIE_SERVER__DRAIN_SECS", "3"),
        // The load stands for many browsers, all from this one address (the Ingress's
        // X-Forwarded-For names it): the login flows per address (300 a minute by default)
        // would be spent.
        ("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "100000"),
    ];
    let Some(mut cluster) = Cluster::start("rolling", 3, &env).await else {
        eprintln!("skipped: VIGIE_TEST_POSTGRES_URL is not set (tests/run starts a PostgreSQL server and sets it)");
        return;
    };
    let started = Instant::now();
    let card = cluster.demo_card();
    let secret = cluster.demo_secret("demo-dpi");
    let load = Arc::new(Load {
        base: cluster.base(),
        card_base: cluster.card_base(),
        ca_pem: cluster.ca_pem.clone(),
        secret,
        card,
        counts: Counts::default(),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = [0, 1, 1, 2, 2]
        .into_iter()
        .map(|kind| {
            let l = load.clone();
            match kind {
                0 => tokio::spawn(l.card_logins()),
                1 => tokio::spawn(l.sso_round_trips()),
                _ => tokio::spawn(l.refreshes()),
            }
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A rolling restart: one node at a time, the next only once the new process is ready.
    let mut gone = Vec::new();
    for i in 0..cluster.nodes.len() {
        gone.push(cluster.restart(i, |_| {}).await);
    }
    let after_restart = load.counts.sso.load(Ordering::Relaxed);

    // 2. An upgrade: the newer version's schema change, written expand-only (a nullable column,
    // a new table), applied while the running version serves; then each new process runs
    // `vigie migrate` first, as the chart's Job does. The binary is the same (sqlx embeds its
    // migrations at build time): this proves the running version keeps serving on the expanded
    // schema and that migrate + restart loses nothing; not a real newer binary's migrations.
    cluster.db.execute(
        "ALTER TABLE accounts ADD COLUMN rolling_upgrade_note TEXT; \
         CREATE TABLE rolling_upgrade_marker (id TEXT NOT NULL PRIMARY KEY)",
    );
    for i in 0..cluster.nodes.len() {
        gone.push(
            cluster
                .restart(i, |c| {
                    let out = Command::new(crate::common::BIN)
                        .args(["migrate", "--data-dir"])
                        .arg(&c.dir)
                        .env_clear()
                        .env("PATH", std::env::var("PATH").unwrap_or_default())
                        .envs(c.env.iter().map(|(k, v)| (k, v)))
                        .output()
                        .expect("vigie migrate");
                    let said = String::from_utf8_lossy(&out.stdout);
                    assert!(out.status.success(), "vigie migrate: {said} {}", String::from_utf8_lossy(&out.stderr));
                    assert!(said.contains("PostgreSQL"), "{said}");
                })
                .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    load.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a load task");
    }

    let c = &load.counts;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let per_node: Vec<u64> = cluster.proxy.backends.iter().map(|b| b.connections.load(Ordering::Relaxed)).collect();
    eprintln!(
        "rolling restart, 3 nodes, 6 restarts in {:?} (each node gone {:?}): card logins {}, SSO round trips {}, \
         codes redeemed {}, refreshes {}; failed {}, sessions lost {}, refresh families broken {}; \
         card-route connections per node {per_node:?}, connect retries {}, Ingress upstream errors {}",
        started.elapsed(),
        gone,
        n(&c.card_logins),
        n(&c.sso),
        n(&c.codes_redeemed),
        n(&c.refreshes),
        n(&c.failed),
        n(&c.sessions_lost),
        n(&c.families_broken),
        n(&cluster.proxy.connect_retries),
        n(&cluster.ingress.upstream_errors),
    );
    let failures = c.failures.lock().expect("failures").clone();
    assert_eq!(n(&c.failed), 0, "failed requests: {failures:#?}");
    assert_eq!(n(&c.sessions_lost), 0);
    assert_eq!(n(&c.families_broken), 0);
    // A Service (kube-proxy) does not retry a refused connection: none may have been needed.
    assert_eq!(n(&cluster.proxy.connect_retries), 0, "connections refused by a node the proxy still routed to");
    assert_eq!(n(&cluster.ingress.upstream_errors), 0, "requests the Ingress could not pass to a node");
    assert!(n(&c.sso) > after_restart, "SSO round trips went on through the upgrade");
    for (kind, count) in [("card logins", &c.card_logins), ("SSO", &c.sso), ("refreshes", &c.refreshes)] {
        assert!(n(count) > 3, "the load ran: {kind} {}", n(count));
    }
}
