//! What the benches share: child processes killed on drop, free ports, command-line options,
//! cookies, the PSC stand-in, a throw-away PostgreSQL and a test card with its CRL. Each bench uses
//! part of it.
#![allow(dead_code)]

use std::io::BufRead;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A child process killed (and reaped) when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed when dropped: put it after the [`Kill`] of the process using it.
pub struct RemoveDir(pub std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_owned())
}

/// `name=value` of the `Set-Cookie` header setting `name`.
pub fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// The PSC stand-in on `port`, its client `vigie` (secret `bench-secret`) redirecting to the
/// gateway on `gateway_port`; `public_origin` when it is reached through a proxy. Returns it with
/// the issuer it announced.
pub fn start_psc_sandbox(port: u16, public_origin: Option<&str>, gateway_port: u16) -> (Kill, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/psc-sandbox");
    let mut config = serde_json::json!({
        "listen": format!("127.0.0.1:{port}"),
        "clients": [{
            "client_id": "vigie", "client_secret": "bench-secret", "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": [format!("https://127.0.0.1:{gateway_port}/login/psc/callback")],
            "post_logout_redirect_uris": [format!("https://127.0.0.1:{gateway_port}/logout/psc")],
        }],
    });
    if let Some(origin) = public_origin {
        config["public_origin"] = origin.into();
    }
    let file = std::env::temp_dir().join(format!("vigie-bench-psc-{}.json", std::process::id()));
    std::fs::write(&file, config.to_string()).expect("stand-in config");
    let mut child = Command::new("node")
        .arg(dir.join("server.mjs"))
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node must be installed, and `npm ci` run in conformance/psc-sandbox");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let issuer = lines
        .find_map(|l| l.ok().and_then(|l| l.strip_prefix("PSC-SANDBOX READY ").map(str::to_owned)))
        .expect("the PSC stand-in prints PSC-SANDBOX READY");
    std::thread::spawn(move || lines.for_each(drop));
    let _ = std::fs::remove_file(&file);
    (Kill(child), issuer)
}

/// A throw-away PostgreSQL server, started and stopped by `tests/postgres.sh` (initdb and pg_ctl
/// into a temp dir, a free port), stopped and removed when dropped.
pub struct Postgres {
    /// `postgres://…` of its maintenance database, which the bench uses as the directory.
    pub url: String,
    dir: String,
    run_as: String,
}

fn postgres_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/postgres.sh")
}

impl Postgres {
    pub fn start() -> Self {
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$0" && pg_start && printf '%s\n%s\n%s\n' "$VIGIE_TEST_POSTGRES_URL" "$PG_DIR" "${PG_AS[*]}""#)
            .arg(postgres_script())
            .stderr(Stdio::inherit())
            .output()
            .expect("bash");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let (url, dir) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
        assert!(out.status.success() && url.starts_with("postgres://"), "PostgreSQL did not start (tests/postgres.sh)");
        Self { url: url.to_owned(), dir: dir.to_owned(), run_as: lines.next().unwrap_or_default().to_owned() }
    }

    /// Transactions committed or rolled back in its database so far (`pg_stat_database`, which
    /// the server updates within a second or so).
    pub fn transactions(&self) -> u64 {
        let sql = "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()";
        let out = Command::new("psql").args([&self.url, "-Atc", sql]).output().expect("psql");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let stop = r#"source "$0"; PG_DIR="$1"; read -ra PG_AS <<< "$2"
            PATH="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1):$PATH"; pg_stop"#;
        let _ =
            Command::new("bash").arg("-c").arg(stop).arg(postgres_script()).arg(&self.dir).arg(&self.run_as).status();
    }
}

/// Waits (up to 120 s) until the `vigie serve` on `data_dir` has written its demo and listens on
/// `port`; returns the demo (`demo.json`).
pub fn wait_for_demo(data_dir: &std::path::Path, port: u16) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Ok(t) = std::fs::read_to_string(data_dir.join("demo.json"))
            && let Ok(demo) = serde_json::from_str(&t)
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return demo;
        }
        assert!(std::time::Instant::now() < deadline, "vigie did not start: see its log above");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Serves `crl` over plain HTTP (a CRL distribution point) from a thread; returns its URL.
pub fn serve_crl(crl: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}/ca.crl", listener.local_addr().expect("addr").port());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", crl.len());
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&crl);
        }
    });
    url
}

/// The card, its trust anchors and the CRL a card login bench needs; with the gateway's
/// settings naming them.
pub struct CardSetup {
    pub identity: reqwest::Identity,
    pub env: Vec<(String, String)>,
    _dir: RemoveDir,
}

pub fn card_setup() -> CardSetup {
    use vigie_igc_sante::testpki::{CardSpec, TestPki};
    let pki = TestPki::generate().expect("test PKI");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let revoked: Vec<(Vec<u8>, i64)> =
        (0..10_000u32).map(|i| ([0x7e, 0x01].iter().copied().chain(i.to_be_bytes()).collect(), now - 3600)).collect();
    let crl_url = serve_crl(pki.crl_der(&revoked, now - 60, now + 86_400).expect("CRL"));
    let card = pki.issue(&CardSpec::cps("810100000011", "DURAND", "PAUL", "Médecin").crl_url(&crl_url)).expect("card");
    let dir = std::env::temp_dir().join(format!("vigie-bench-cards-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("anchors.pem"), pki.anchors_pem()).expect("anchors");
    let env = vec![
        ("VIGIE_CARDS__TRUST__ANCHORS".to_owned(), format!("[{:?}]", dir.join("anchors.pem").display().to_string())),
        ("VIGIE_CARDS__TRUST__CRL_URLS".to_owned(), format!("[{crl_url:?}]")),
    ];
    let identity = reqwest::Identity::from_pem(format!("{}{}", card.chain_pem, card.key_pem).as_bytes()).expect("id");
    CardSetup { identity, env, _dir: RemoveDir(dir) }
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), to print with each figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
