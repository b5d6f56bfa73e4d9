//! Load benchmark of the SSO round trip (authorize with an existing session → code → token
//! with a signed ID token) and of refresh, against the release `vigie` binary, with the
//! in-process store and with Redis. Prints throughput, latency percentiles and the gateway's
//! resident memory.
//!
//! Also card logins (TLS handshake with a card certificate + validation against a 10,000-entry CRL
//! + session + code) with `--store cards` (part of `both`).
//!
//! And full logins through Pro Santé Connect's stand-in (`conformance/psc-sandbox`, needs Node.js
//! and `npm ci` there) with `--store psc` (not part of `both`).
//!
//! And, with `--store postgres` (not part of `both`), SSO round trips, refreshes and card logins
//! on Redis + SQLite against Redis + PostgreSQL (a server the bench starts with
//! `tests/postgres.sh`), with one replica and with three sharing the cores, the load spread
//! round-robin over them; each replica's resident memory after the run.
//!
//! And forward-auth checks through a real nginx in front of a tiny backend, with one live
//! session, with `--store forward-auth` (not part of `both`; `--nginx-workers N`, 2 by default).
//!
//! And what the durable audit trail costs (trail on against off, two gateways side by side, the
//! phases interleaved over `--rounds N`, 5 by default) with `--store audit`.
//!
//! Over 600 lines: the driver, the phases and the SSO, refresh and card bodies are private
//! helpers that the modes in `load/` share; each new mode goes there.
//!
//! `cargo bench -p vigie-gateway --bench load [-- --secs 10 --concurrency 32 --store both|embedded|redis|cards|psc|postgres|forward-auth|audit] [--rounds 5]`
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;

#[path = "load/audit.rs"]
mod audit;
mod common;
#[path = "load/forward_auth.rs"]
mod forward_auth;
#[path = "load/psc.rs"]
mod psc;
use common::{CardSetup, Kill, Postgres, RemoveDir, arg, card_setup, cookie_of, free_port, load_average};

/// One or more `vigie` processes on one data directory (one demo: signing keys, TLS
/// certificate, clients), with the servers they share.
struct Gateway {
    /// The replicas: process, pid, base URL.
    replicas: Vec<(Kill, u32, String)>,
    /// Dropped after the replicas: the data directory goes when they have stopped.
    _dir: RemoveDir,
    /// The first replica's, for the figures of a single node.
    pid: u32,
    base: String,
    demo: Value,
    _redis: Option<Kill>,
    postgres: Option<Postgres>,
}

/// Where the gateway keeps its state.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    /// The in-process store, the directory in SQLite.
    Embedded,
    /// Redis, the directory in SQLite.
    Redis,
    /// Redis, the directory in PostgreSQL.
    Postgres,
}

fn start(backend: Backend, replicas: usize, env: &[(String, String)]) -> Gateway {
    let ports: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
    let dir = std::env::temp_dir().join(format!("vigie-bench-{}-{}", std::process::id(), ports[0]));
    let _ = std::fs::remove_dir_all(&dir);
    let mut shared: Vec<(String, String)> = vec![
        ("VIGIE_LOG".into(), "warn".into()),
        // One load driver (127.0.0.1) opens every login flow and authenticates as the client on
        // every token request: no per-address cap in the way. (The client authentication
        // counter is raised before the secret is checked and reset after a success: more
        // concurrent token requests from one address than its limit are refused, whatever
        // their credentials.)
        ("VIGIE_LOGIN__MAX_FLOWS_PER_IP".into(), "1000000".into()),
        ("VIGIE_TOKENS__CLIENT_AUTH_MAX_FAILURES".into(), "1000000".into()),
        // Every replica is one issuer, as behind one Service.
        ("VIGIE_ISSUER".into(), format!("https://localhost:{}", ports[0])),
    ];
    let redis = (backend != Backend::Embedded).then(|| {
        let rport = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &rport.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", rport)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        shared.push(("VIGIE_STORE__KIND".into(), "redis".into()));
        shared.push(("VIGIE_STORE__URL".into(), format!("redis://127.0.0.1:{rport}")));
        Kill(child)
    });
    let postgres = (backend == Backend::Postgres).then(|| {
        let pg = Postgres::start();
        shared.push(("VIGIE_DIRECTORY__URL".into(), pg.url.clone()));
        pg
    });
    shared.extend(env.iter().cloned());
    let mut procs = Vec::new();
    let mut demo = Value::Null;
    // One after the other: the first prepares the demo (and migrates the directory).
    for port in ports {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
        cmd.args(["serve", "--data-dir"]).arg(&dir).args(["--listen", &format!("127.0.0.1:{port}")]);
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).envs(shared.iter().map(|(k, v)| (k, v)));
        let child = Kill(cmd.spawn().expect("start vigie"));
        let pid = child.0.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(t) = std::fs::read_to_string(dir.join("demo.json"))
                && let Ok(v) = serde_json::from_str::<Value>(&t)
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                demo = v;
                break;
            }
            assert!(Instant::now() < deadline, "gateway did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        procs.push((child, pid, format!("https://localhost:{port}")));
    }
    Gateway {
        pid: procs[0].1,
        base: procs[0].2.clone(),
        replicas: procs,
        _dir: RemoveDir(dir),
        demo,
        _redis: redis,
        postgres,
    }
}

fn client(demo: &Value) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().unwrap_or_default().as_bytes()).expect("CA");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client")
}

fn field<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).expect("form field");
    &html[start..start + html[start..].find('"').expect("end of value")]
}

const VERIFIER: &str = "bench-verifier-bench-verifier-bench-verifier-0123";

fn authorize_url(base: &str, redirect: &str) -> String {
    let challenge = B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, VERIFIER.as_bytes()));
    let mut u = url::Url::parse(&format!("{base}/authorize")).expect("url");
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "demo-app")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    u.to_string()
}

/// Logs the demo nurse in once; returns the SSO cookie header.
async fn login(http: &reqwest::Client, gw: &Gateway, url: &str) -> String {
    let r = http.get(url).send().await.expect("authorize");
    let browser = cookie_of(&r, "__Host-vigie-browser").expect("browser cookie");
    let loc = r.headers()["location"].to_str().expect("location").to_owned();
    let page = http.get(format!("{}{loc}", gw.base)).send().await.expect("login page").text().await.expect("html");
    let user = &gw.demo["users"][0];
    let secret = vigie_gateway::totp::from_base32(user["totp_secret"].as_str().unwrap_or_default()).expect("totp");
    let code = vigie_gateway::totp::code_at_step(&secret, vigie_gateway::now() / vigie_gateway::totp::STEP_SECS);
    let r = http
        .post(format!("{}/login/password", gw.base))
        .header("cookie", &browser)
        .form(&[
            ("flow", field(&page, "flow")),
            ("csrf", field(&page, "csrf")),
            ("username", user["username"].as_str().unwrap_or_default()),
            ("password", user["password"].as_str().unwrap_or_default()),
            ("totp", &code),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303, "login must succeed");
    cookie_of(&r, "__Host-vigie-session").expect("session cookie")
}

fn code_of(location: &str) -> String {
    url::Url::parse(location)
        .expect("redirect")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code")
}

/// One SSO round trip; returns the refresh token.
async fn round_trip(
    http: &reqwest::Client,
    base: &str,
    url: &str,
    cookie: &str,
    redirect: &str,
    secret: &str,
) -> Option<String> {
    let r = http.get(url).header("cookie", cookie).send().await.ok()?;
    note_hold(r.headers());
    let code = code_of(r.headers().get("location")?.to_str().ok()?);
    let answer = http
        .post(format!("{base}/token"))
        .basic_auth("demo-app", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .ok()?;
    note_hold(answer.headers());
    let t: Value = answer.json().await.ok()?;
    t["id_token"].as_str()?;
    t["refresh_token"].as_str().map(String::from)
}

struct Run {
    ops: usize,
    errors: usize,
    secs: f64,
    latencies: Vec<Duration>,
    /// Of each latency (same index), what its answers said they waited for their traces
    /// ([`note_hold`]; zero without `audit.server_timing`).
    held: Vec<Duration>,
}

tokio::task_local! {
    /// What the running operation's answers waited for their traces, summed by [`note_hold`].
    static HELD: std::cell::Cell<Duration>;
}

/// Adds to the running operation's hold what an answer says it waited for its trace: the
/// gateway's `Server-Timing: audit;dur=<ms>` (`audit.server_timing`). Other metrics of the header
/// are skipped; a value that does not parse counts nothing.
fn note_hold(headers: &reqwest::header::HeaderMap) {
    let ms: f64 = headers
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|m| m.trim().strip_prefix("audit;dur="))
        .filter_map(|d| d.split(';').next()?.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .sum();
    if ms > 0.0 {
        let _ = HELD.try_with(|h| h.set(h.get() + Duration::from_secs_f64(ms / 1e3)));
    }
}

impl Run {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        quantile(&mut self.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(), p)
    }
}

/// The `p` quantile of `values` (sorted here), in their unit; 0 when empty.
fn quantile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((values.len() as f64 * p) as usize).min(values.len().saturating_sub(1))).copied().unwrap_or(0.0)
}

/// Runs `concurrency` loops for `secs`; with `rate`, each loop paces itself to rate/concurrency,
/// its starts a Poisson process (gaps drawn from an exponential law): together, the arrivals of
/// that many people acting independently at `rate` per second, as at a hospital's busy hour (until
/// 6 December 2026 every loop started within the same 50 ms of each period: bursts of
/// `concurrency` requests, then silence).
async fn drive<F, Fut>(concurrency: usize, secs: u64, rate: Option<f64>, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let op = op.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut held) = (Vec::new(), Vec::new());
            let mut errors = 0;
            let period = rate.map(|r| concurrency as f64 / r);
            let mut gaps = Dice(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
            let first = period.map_or(Duration::from_millis((i * 7 % 50) as u64), |p| gaps.next(p));
            let mut next = Instant::now() + first;
            while !stop.load(Ordering::Relaxed) {
                if let Some(p) = period {
                    tokio::time::sleep_until(next.into()).await;
                    next += gaps.next(p);
                }
                let t = Instant::now();
                let (ok, hold) = HELD
                    .scope(std::cell::Cell::new(Duration::ZERO), async {
                        (op(i).await, HELD.with(std::cell::Cell::get))
                    })
                    .await;
                if ok {
                    lat.push(t.elapsed());
                    held.push(hold);
                } else {
                    errors += 1;
                }
            }
            (lat, held, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut run = Run { ops: 0, errors: 0, secs: 0.0, latencies: Vec::new(), held: Vec::new() };
    for t in tasks {
        let (l, h, e) = t.await.expect("task");
        run.ops += l.len();
        run.errors += e;
        run.latencies.extend(l);
        run.held.extend(h);
    }
    run.secs = started.elapsed().as_secs_f64();
    run
}

/// A bench's dice: a xorshift generator (no crate for it).
struct Dice(u64);

impl Dice {
    /// The next 64 random bits.
    fn bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// One of `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }

    /// The next gap of a Poisson process: exponentially distributed, of mean `mean` seconds.
    fn next(&mut self, mean: f64) -> Duration {
        // In (0, 1]: never ln(0).
        let u = ((self.bits() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        Duration::from_secs_f64(-u.ln() * mean)
    }
}

/// The process's resident memory, its peak, and of it now: its own (heap, stacks: `RssAnon`) and
/// the files it maps (`RssFile`: mostly the binary's code, shared page cache the kernel can drop
/// and read again: measured on the bench machine, 31 of the release binary's 33 MiB of `.text` were
/// mapped 4 s after the start, idle).
fn rss_kib(pid: u32) -> (u64, u64, u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"), get("RssAnon:"), get("RssFile:"))
}

/// CPU seconds the process has used (user + system), from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn report(label: &str, r: &Run, gateway_cpu: f64) {
    println!(
        "{label:<44} {:>6.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  gateway {:>4.0} µs CPU/op  ({} ops, {} errors, {:.1} s)",
        r.rate(),
        r.pct(0.50),
        r.pct(0.99),
        gateway_cpu * 1e6 / r.ops.max(1) as f64,
        r.ops,
        r.errors,
        r.secs
    );
}

/// Runs a phase and reports it with the gateway's CPU time per operation (every replica's).
async fn phase<F, Fut>(label: &str, pids: &[u32], concurrency: usize, secs: u64, rate: Option<f64>, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let cpu = || pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let (before, load) = (cpu(), load_average());
    let run = drive(concurrency, secs, rate, op).await;
    report(label, &run, cpu() - before);
    println!("  (load average before the phase: {load})");
    run
}

impl Gateway {
    fn pids(&self) -> Vec<u32> {
        self.replicas.iter().map(|r| r.1).collect()
    }

    /// Each replica's resident memory now and at its peak.
    fn print_rss(&self, label: &str, start_rss: &[u64]) {
        let mib = |k: u64| k as f64 / 1024.0;
        for (i, (_, pid, _)) in self.replicas.iter().enumerate() {
            let (rss, hwm, anon, file) = rss_kib(*pid);
            let at_start = start_rss.get(i).map(|k| format!("{:.1} MiB at start, ", mib(*k))).unwrap_or_default();
            println!(
                "[{label}] replica {} resident memory: {at_start}{:.1} MiB now ({:.1} MiB peak); now {:.1} MiB its own (anonymous), {:.1} MiB mapped files (its code)",
                i + 1,
                mib(rss),
                mib(hwm),
                mib(anon),
                mib(file)
            );
        }
    }
}

/// The next replica, round-robin over the run.
fn next_replica(n: usize) -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) % n
}

/// One load operation: `true` when it succeeded; its argument is the loop's number.
type Op = Arc<dyn Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync>;

/// Runs `op` as [`drive`] does.
async fn drive_op(concurrency: usize, secs: u64, rate: Option<f64>, op: &Op) -> Run {
    let op = op.clone();
    drive(concurrency, secs, rate, move |i| op(i)).await
}

/// Runs `op` as [`phase`] does.
async fn phase_op(label: &str, pids: &[u32], concurrency: usize, secs: u64, rate: Option<f64>, op: &Op) -> Run {
    let op = op.clone();
    phase(label, pids, concurrency, secs, rate, move |i| op(i)).await
}

/// The demo nurse's SSO session on every replica of a gateway: what the SSO round trip and the
/// refresh operations share.
struct Sso {
    http: reqwest::Client,
    bases: Vec<String>,
    urls: Vec<String>,
    cookie: String,
    redirects: Vec<String>,
    secret: String,
}

impl Sso {
    /// Logs the nurse in once and checks a round trip on each replica.
    async fn of(gw: &Gateway) -> Arc<Self> {
        let http = client(&gw.demo);
        // Each replica registers demo-app with its own address as redirect URI (the demo's clients
        // follow the listener).
        let bases: Vec<String> = gw.replicas.iter().map(|r| r.2.clone()).collect();
        let redirects: Vec<String> = bases.iter().map(|b| format!("{b}/demo-app/callback")).collect();
        let urls: Vec<String> = bases.iter().zip(&redirects).map(|(b, r)| authorize_url(b, r)).collect();
        let cookie = login(&http, gw, &urls[0]).await;
        let secret = gw.demo["clients"][0]["client_secret"].as_str().unwrap_or_default().to_owned();
        let sso = Arc::new(Self { http, bases, urls, cookie, redirects, secret });
        for r in 0..sso.bases.len() {
            assert!(sso.round_trip(r).await.is_some(), "a round trip must work");
        }
        sso
    }

    /// One SSO round trip on replica `r`; returns the refresh token.
    async fn round_trip(&self, r: usize) -> Option<String> {
        round_trip(&self.http, &self.bases[r], &self.urls[r], &self.cookie, &self.redirects[r], &self.secret).await
    }

    /// SSO round trips, round-robin over the replicas.
    fn op(self: &Arc<Self>) -> Op {
        let s = self.clone();
        Arc::new(move |_| {
            let s = s.clone();
            let r = next_replica(s.bases.len());
            Box::pin(async move { s.round_trip(r).await.is_some() })
        })
    }

    /// Refreshes, round-robin over the replicas: each of `concurrency` loops rotates its own
    /// refresh token chain.
    async fn refresh_op(self: &Arc<Self>, concurrency: usize) -> Op {
        let mut chains = Vec::new();
        for _ in 0..concurrency {
            chains.push(tokio::sync::Mutex::new(self.round_trip(0).await.unwrap_or_default()));
        }
        let chains = Arc::new(chains);
        let s = self.clone();
        Arc::new(move |i: usize| {
            let (s, chains) = (s.clone(), chains.clone());
            let r = next_replica(s.bases.len());
            Box::pin(async move {
                let mut rt = chains[i].lock().await;
                let sent = s
                    .http
                    .post(format!("{}/token", s.bases[r]))
                    .basic_auth("demo-app", Some(&s.secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
                    .send()
                    .await;
                let Ok(answer) = sent else { return false };
                note_hold(answer.headers());
                let Ok(v) = answer.json::<Value>().await else { return false };
                match v["refresh_token"].as_str() {
                    Some(n) => {
                        *rt = n.to_owned();
                        true
                    }
                    None => false,
                }
            })
        })
    }
}

/// SSO round trips and refreshes; `full` adds the phases at half the load (single-node modes).
async fn bench(label: &str, gw: &Gateway, secs: u64, concurrency: usize, full: bool) {
    let start_rss: Vec<u64> = gw.pids().iter().map(|p| rss_kib(*p).0).collect();
    let pids = gw.pids();
    let sso = Sso::of(gw).await;
    let op = sso.op();
    // Warm up connections and caches.
    drive_op(concurrency, 2, None, &op).await;
    let transactions = gw.postgres.as_ref().map(Postgres::transactions);
    let max = phase_op(&format!("[{label}] SSO round trip, max"), &pids, concurrency, secs, None, &op).await;
    if let (Some(pg), Some(before)) = (&gw.postgres, transactions) {
        // The hot path must not reach the database: what the phase cost PostgreSQL, per round trip.
        let spent = pg.transactions().saturating_sub(before);
        println!("[{label}] PostgreSQL transactions per SSO round trip: {:.4}", spent as f64 / max.ops.max(1) as f64);
    }
    if full {
        let half = Some(max.rate() / 2.0);
        phase_op(&format!("[{label}] SSO round trip, at half that load"), &pids, concurrency, secs, half, &op).await;
        // The target: 3,000/s in-process and 1,500/s with Redis, p99 under 10 ms at half that.
        let target = if label == "embedded" { 3000.0 } else { 1500.0 };
        let label = format!("[{label}] SSO round trip, at half the target ({:.0}/s)", target / 2.0);
        phase_op(&label, &pids, concurrency, secs, Some(target / 2.0), &op).await;
    }

    let refresh = sso.refresh_op(concurrency).await;
    let rmax = phase_op(&format!("[{label}] refresh (rotation), max"), &pids, concurrency, secs, None, &refresh).await;
    if full {
        let half = Some(rmax.rate() / 2.0);
        phase_op(&format!("[{label}] refresh (rotation), at half"), &pids, concurrency, secs, half, &refresh).await;
    }
    gw.print_rss(label, &start_rss);
}

/// An authorization request that opens a login flow: the browser cookie and the flow id.
async fn open_flow(http: &reqwest::Client, url: &str) -> Option<(String, String)> {
    let r = http.get(url).send().await.ok()?;
    note_hold(r.headers());
    let browser = cookie_of(&r, "__Host-vigie-browser")?;
    let location = r.headers().get("location")?.to_str().ok()?;
    Some((browser, location.split("flow=").nth(1)?.to_owned()))
}

/// One card login on a new connection: TLS handshake with the card's certificate (full handshake,
/// no resumption: a new client each time), authorize → `/login/cps` → code.
async fn card_login(identity: &reqwest::Identity, ca: &reqwest::Certificate, url: &str, base: &str) -> bool {
    let Ok(http) = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .identity(identity.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
    else {
        return false;
    };
    let Some((browser, flow)) = open_flow(&http, url).await else { return false };
    let done = http.get(format!("{base}/login/cps?flow={flow}")).header("cookie", browser).send().await;
    done.is_ok_and(|d| {
        note_hold(d.headers());
        d.status() == 303
            && d.headers().get("location").and_then(|l| l.to_str().ok()).is_some_and(|l| l.contains("code="))
    })
}

/// Card logins, round-robin over every replica of `gw` (started with `card_setup`'s settings),
/// checked once on each.
async fn card_op(gw: &Gateway, cards: &CardSetup) -> Op {
    let ca = reqwest::Certificate::from_pem(gw.demo["ca_pem"].as_str().unwrap_or_default().as_bytes()).expect("CA");
    let targets: Vec<(String, String)> =
        gw.replicas.iter().map(|r| (authorize_url(&r.2, &format!("{}/demo-app/callback", r.2)), r.2.clone())).collect();
    for (url, base) in &targets {
        assert!(card_login(&cards.identity, &ca, url, base).await, "a card login must work");
    }
    let shared = Arc::new((cards.identity.clone(), ca, targets));
    Arc::new(move |_| {
        let s = shared.clone();
        let r = next_replica(s.2.len());
        Box::pin(async move { card_login(&s.0, &s.1, &s.2[r].0, &s.2[r].1).await })
    })
}

/// Card logins per second with a 10,000-entry CRL (issue 3: at least 500/s on 2 cores), over
/// every replica of `gw` (started with `card_setup`'s settings).
async fn bench_cards(label: &str, gw: &Gateway, cards: &CardSetup, secs: u64, concurrency: usize, full: bool) {
    let op = card_op(gw, cards).await;
    drive_op(concurrency, 2, None, &op).await;
    let pids = gw.pids();
    let max_label = format!("[{label}] card login (TLS + CRL 10k + session), max");
    let max = phase_op(&max_label, &pids, concurrency, secs, None, &op).await;
    if full {
        let label = format!("[{label}] card login, at half that load");
        phase_op(&label, &pids, concurrency, secs, Some(max.rate() / 2.0), &op).await;
    }
}

fn main() {
    let secs: u64 = arg("--secs", "10").parse().expect("--secs N");
    let concurrency: usize = arg("--concurrency", "32").parse().expect("--concurrency N");
    let store = arg("--store", "both");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    println!(
        "Vigie load benchmark: {concurrency} concurrent loops, {secs} s per phase, driver and gateway on this machine"
    );
    rt.block_on(async {
        if store == "both" || store == "embedded" {
            bench("embedded", &start(Backend::Embedded, 1, &[]), secs, concurrency, true).await;
        }
        if store == "both" || store == "redis" {
            bench("redis", &start(Backend::Redis, 1, &[]), secs, concurrency, true).await;
        }
        if store == "both" || store == "cards" {
            let cards = card_setup();
            let gw = start(Backend::Embedded, 1, &cards.env);
            bench_cards("embedded", &gw, &cards, secs, concurrency, true).await;
        }
        // Redis + SQLite against Redis + PostgreSQL, one node and three sharing the cores: the
        // same phases, each deployment with the card settings so that card logins run on it too.
        if store == "postgres" {
            for (label, backend, replicas) in [
                ("redis+sqlite", Backend::Redis, 1),
                ("redis+postgres", Backend::Postgres, 1),
                ("redis+sqlite x3", Backend::Redis, 3),
                ("redis+postgres x3", Backend::Postgres, 3),
            ] {
                let cards = card_setup();
                let gw = start(backend, replicas, &cards.env);
                bench(label, &gw, secs, concurrency, false).await;
                bench_cards(label, &gw, &cards, secs, concurrency, false).await;
                gw.print_rss(label, &[]);
            }
        }
        if store == "psc" {
            psc::bench_psc(secs, concurrency).await;
        }
        if store == "audit" {
            let rounds: usize = arg("--rounds", "5").parse().expect("--rounds N");
            audit::bench_audit(secs, concurrency, rounds).await;
        }
        if store == "forward-auth" {
            forward_auth::bench_forward_auth(secs, concurrency).await;
        }
    });
}
