//! Password + TOTP logins per second with the password checked by LDAP bind (a real slapd on the
//! same machine, LDAPS, the AD profile) against the same logins with the password in Vigie's SQL
//! directory (argon2id), and what the bind adds to the login's p50 / p99.
//!
//! One data directory, two `vigie` processes on it: one with `[directory.ldap]`, one without.
//! `--users` agents are in slapd (`agent.<n>`), brought into Vigie by `vigie directory sync`, each
//! given a TOTP secret (and, for the SQL side, the same password's hash); each login uses a user
//! not used before, since a TOTP code is accepted once per user and step (RFC 6238 §5.2).
//!
//! And the sync (`vigie directory sync`, another process, as ops run it): a full pass over
//! `--entries` agents (10,000 by default; the login agents are among them) into a new directory,
//! its time and the peak resident memory of the process; then `--changes` entries modified in
//! slapd (100 by default) and a changed-since pass (`--changed`), its time and memory.
//!
//! `cargo bench -p vigie-gateway --bench ldap [-- --users 1200 --entries 10000 --changes 100 --concurrency 8]`
//! (release `vigie`); `cargo test -p vigie-gateway --bench ldap` runs it on the debug build.
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
#[path = "../tests/common/ldap.rs"]
mod slapd;
use common::{Kill, RemoveDir, arg, cookie_of, free_port, wait_for_demo};
use slapd::Slapd;

/// The TOTP secret of agent `n`: derived, so that the driver computes the codes itself.
fn secret_of(n: usize) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("bench-totp-{n}").as_bytes()).as_ref()[..20].to_vec()
}

/// The gateway's `[directory.ldap]` for this slapd, as environment variables.
fn ldap_env(s: &Slapd) -> Vec<(String, String)> {
    [
        ("PROFILE", "ad".to_owned()),
        ("URLS", format!("[\"{}\"]", s.ldaps_url)),
        ("CA_FILE", s.ca_file.display().to_string()),
        ("BIND_DN", slapd::SERVICE_DN.to_owned()),
        ("BIND_PASSWORD_FILE", s.password_file.display().to_string()),
        ("USER_BASE", format!("ou=people,{}", slapd::BASE)),
        ("GROUP_BASE", format!("ou=groups,{}", slapd::BASE)),
        ("GROUP_EXPANSION", "client".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("VIGIE_DIRECTORY__LDAP__{k}"), v))
    .collect()
}

/// `vigie serve` on `dir`, on a free port, once it answers; with the demo it prepared.
fn serve(dir: &std::path::Path, env: &[(String, String)]) -> (Kill, String, Value) {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigie"));
    cmd.args(["serve", "--data-dir"]).arg(dir).args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.env("VIGIE_LOG", "error")
        // One driver address opens every flow and posts every password.
        .env("VIGIE_LOGIN__MAX_FLOWS_PER_IP", "1000000")
        .env("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "1000000")
        .env("VIGIE_ISSUER", format!("https://localhost:{port}"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let child = Kill(cmd.spawn().expect("start vigie"));
    let demo = wait_for_demo(dir, port);
    (child, format!("https://localhost:{port}"), demo)
}

/// `vigie directory sync [extra]` on `dir`: its wall time, peak resident memory (KiB: the last
/// `VmHWM` read before it exits, polled every 5 ms) and its report line.
fn timed_sync(dir: &std::path::Path, s: &Slapd, extra: &[&str]) -> (Duration, u64, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .args(["directory", "sync", "--data-dir"])
        .arg(dir)
        .args(extra)
        .envs(ldap_env(s))
        .env("VIGIE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("vigie directory sync");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        let text = std::fs::read_to_string(&status_file).unwrap_or_default();
        let hwm = text.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next());
        peak = peak.max(hwm.and_then(|v| v.parse().ok()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out).expect("report");
    assert!(status.success(), "vigie directory sync {extra:?} failed: see above");
    (took, peak, out.trim().to_owned())
}

/// The agents' accounts (made by the sync) get their TOTP secret and the SQL side's password.
async fn enroll(dir: &std::path::Path, users: usize) {
    let url = format!("sqlite://{}", dir.join("directory.db").display());
    let directory = vigie_directory_sql::SqlDirectory::open(&url).await.expect("the demo's directory");
    // One hash for all: the SQL side still runs argon2id at each login, which is what is measured.
    let hash = vigie_gateway::secrets::hash_password(slapd::PASSWORD);
    for n in 0..users {
        use vigie_core::directory::Directory;
        let login = format!("agent.{n}");
        let mut account =
            directory.account_by_username(&login).await.expect("directory").expect("the sync made the account");
        account.totp_secret = Some(secret_of(n));
        account.password_hash = Some(hash.clone());
        directory.upsert_account(&account).await.expect("enrolled");
    }
}

/// One login of agent `n`: authorize → login page → password + TOTP posted. The post's latency,
/// or why it failed.
async fn login(http: &reqwest::Client, base: &str, n: usize) -> Result<Duration, String> {
    let callback: String =
        url::form_urlencoded::byte_serialize(format!("{base}/demo-app/callback").as_bytes()).collect();
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id=demo-app&redirect_uri={callback}&scope=openid&state=s&nonce=n\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let r = http.get(authorize).send().await.map_err(|e| e.to_string())?;
    let browser = cookie_of(&r, "__Host-vigie-browser").ok_or("no browser cookie")?;
    let page = r.headers().get("location").and_then(|l| l.to_str().ok()).ok_or("no login page")?.to_owned();
    let html = http.get(format!("{base}{page}")).send().await.map_err(|e| e.to_string())?;
    let html = html.text().await.map_err(|e| e.to_string())?;
    let hidden = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).map(|i| i + marker.len())?;
        html[start..].split('"').next().map(str::to_owned)
    };
    let (flow, csrf) = (hidden("flow").ok_or("no flow")?, hidden("csrf").ok_or("no csrf")?);
    let totp = vigie_gateway::totp::code_at_step(&secret_of(n), vigie_gateway::now() / vigie_gateway::totp::STEP_SECS);
    let login = format!("agent.{n}");
    let posted = Instant::now();
    let r = http
        .post(format!("{base}/login/password"))
        .header("cookie", browser)
        .form(&[
            ("flow", &flow),
            ("csrf", &csrf),
            ("username", &login),
            ("password", &slapd::PASSWORD.to_owned()),
            ("totp", &totp),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let took = posted.elapsed();
    match r.status().as_u16() {
        303 => Ok(took),
        s => Err(format!("agent.{n}: status {s}")),
    }
}

/// Logs in each of `users` once, `concurrency` at a time: logins per second and the posts' latencies.
async fn run(
    http: &reqwest::Client,
    base: &str,
    users: std::ops::Range<usize>,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(users.start));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, base, next, end) = (http.clone(), base.to_owned(), next.clone(), users.end);
            tokio::spawn(async move {
                let mut took = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= end {
                        return took;
                    }
                    took.push(login(&http, &base, n).await.unwrap_or_else(|e| panic!("a login failed: {e}")));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

fn at(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let users: usize = arg("--users", "1200").parse().expect("--users N");
    let concurrency: usize = arg("--concurrency", "8").parse().expect("--concurrency N");
    let entries: usize = arg("--entries", "10000").parse().expect("--entries N");
    let changes: usize = arg("--changes", "100").parse().expect("--changes N");
    let s = Slapd::start_with(entries.max(users));
    // The agents of the harness have no password: the same one as the test users.
    let ldif: String = (0..users)
        .map(|n| {
            format!(
                "dn: uid=agent.{n},ou=people,{}\nchangetype: modify\nreplace: userPassword\nuserPassword: {}\n\n",
                slapd::BASE,
                slapd::PASSWORD
            )
        })
        .collect();
    s.modify(&ldif);

    let dir = std::env::temp_dir().join(format!("vigie-bench-ldap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (sql_gw, sql_base, demo) = serve(&dir, &[]);
    let (took, peak, report) = timed_sync(&dir, &s, &[]);
    println!(
        "full sync of {} entries: {:.2} s, {:.0} entries/s, peak resident memory {:.1} MiB\n  {report}",
        entries.max(users),
        took.as_secs_f64(),
        entries.max(users) as f64 / took.as_secs_f64(),
        peak as f64 / 1024.0
    );
    // Changed since: `changes` agents beyond the login ones get a new surname in slapd.
    let changed: String = (0..changes)
        .map(|i| {
            let n = entries.max(users) - 1 - i;
            format!("dn: uid=agent.{n},ou=people,{}\nchangetype: modify\nreplace: sn\nsn: Change{n}\n\n", slapd::BASE)
        })
        .collect();
    s.modify(&changed);
    let (took, peak, report) = timed_sync(&dir, &s, &["--changed"]);
    println!(
        "changed-since sync of {changes} changes: {:.2} s, peak resident memory {:.1} MiB\n  {report}",
        took.as_secs_f64(),
        peak as f64 / 1024.0
    );
    assert!(report.contains(&format!("{changes} updated")), "the changed-since pass updates each change: {report}");
    enroll(&dir, users).await;
    let (ldap_gw, ldap_base, _) = serve(&dir, &ldap_env(&s));

    let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().unwrap_or_default().as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let half = users / 2;
    // A few logins each first (connections, caches), not counted.
    let warm = 16.min(half / 4);
    run(&http, &sql_base, 0..warm, 2).await;
    run(&http, &ldap_base, half..half + warm, 2).await;
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("password + TOTP logins, {} users per side, {concurrency} at a time, {build} build:", half - warm);
    let mut p = Vec::new();
    for (label, base, range) in
        [("SQL (argon2id)", &sql_base, warm..half), ("LDAP bind (slapd, LDAPS)", &ldap_base, half + warm..users)]
    {
        let (rate, took) = run(&http, base, range, concurrency).await;
        println!(
            "{label:<26} {rate:>6.0} logins/s   POST /login/password p50 {:>6.1} ms  p99 {:>6.1} ms",
            at(&took, 0.5),
            at(&took, 0.99)
        );
        p.push((at(&took, 0.5), at(&took, 0.99)));
    }
    println!("the bind instead of argon2id: p50 {:+.1} ms, p99 {:+.1} ms", p[1].0 - p[0].0, p[1].1 - p[0].1);
    drop((ldap_gw, sql_gw));
    drop(RemoveDir(dir));
}
