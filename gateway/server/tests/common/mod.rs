//! Harness of the integration tests: runs the real `vigie` binary on the embedded demo, and
//! plays a browser (cookies by hand, no redirect following) and the demo clients against it.
//! Each gateway lives in `target/tmp/vigie-it-<pid>-<n>/` (its log in `vigie.log`), removed
//! when the gateway is stopped unless `VIGIE_KEEP_TEST_DATA` is set.
#![allow(dead_code)] // Each test file uses its own part of the harness.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use totp::STEP_SECS;

pub mod cluster;
pub mod configured;
pub mod crl;
pub mod echo;
pub mod fido2;
pub mod ingress;
pub mod ldap;
pub mod nginx;
pub mod postgres;
pub mod proxy_process;
pub mod psc;
pub mod psc_client_auth;
pub mod redis;
pub mod rsyslog;
pub mod totp;
pub mod traefik;

pub const BIN: &str = env!("CARGO_BIN_EXE_vigie");
pub const ACR_2FA: &str = "urn:vigie:loa:2fa";
pub const SESSION_COOKIE: &str = "__Host-vigie-session";
pub const BROWSER_COOKIE: &str = "__Host-vigie-browser";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The shell between the test process and `vigie`: it kills `vigie` when the test process
/// closes its end of the pipe, which the kernel does when the test binary exits however it
/// exits; a gateway kept in a `static` is never dropped.
const WATCHDOG: &str = r#"dir=$1; keep=$2; shift 2
exec 3<&0
"$@" &
vigie=$!
( read -r _ <&3; kill -9 "$vigie" 2>/dev/null ) &
wait "$vigie"
rc=$?
if [ "$rc" -eq 137 ] && [ -z "$keep" ]; then rm -rf "$dir"; fi
exit "$rc"
"#;

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

/// `n` random bytes, base64url.
pub fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("random");
    B64.encode(b)
}

pub fn sha256_b64(s: &str) -> String {
    B64.encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

/// OIDC Core §3.1.3.6: base64url of the left half of SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    B64.encode(&digest::digest(&digest::SHA256, access_token.as_bytes()).as_ref()[..16])
}

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

/// The JSON of one part of a JWT (0: header, 1: claims), unverified.
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("JWT part");
    serde_json::from_slice(&B64.decode(part).expect("base64url JWT part")).expect("JSON JWT part")
}

#[derive(Clone, Debug)]
pub struct User {
    pub username: String,
    pub password: String,
    pub totp_key: Vec<u8>,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct DemoClient {
    pub client_id: String,
    pub secret: Option<String>,
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub private_key_pem: Option<String>,
    pub kid: Option<String>,
    pub alg: String,
}

/// A running gateway on the embedded demo, in its own data directory.
pub struct Gateway {
    pub issuer: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub demo: Value,
    pub users: Vec<User>,
    pub clients: Vec<DemoClient>,
    ca_pem: String,
    child: Mutex<Option<Child>>,
    stdin: Mutex<Option<ChildStdin>>,
    /// (username, TOTP step) already sent in a login: the gateway accepts each once.
    used_steps: Mutex<HashSet<(String, i64)>>,
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Why a gateway did not start, with its log.
#[derive(Debug)]
enum StartFailure {
    /// Its port, free when chosen, was bound by another process first: another port may do.
    PortTaken(String),
    Other(String),
}

/// A port free now, for a server a test starts later (a gateway, a stand-in). Taken below the
/// kernel's ephemeral range (`ip_local_port_range`, from 32768 by default): a port the kernel hands
/// out for `bind(0)` may go to another test's outgoing connection before the server binds it (a PSC
/// stand-in failed so, `EADDRINUSE`, on 6 December 2026), and no connection takes one below that
/// range. Each call of this process takes the next one, from a start that differs per run.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768)
        .min(65_536);
    if ephemeral > FIRST + 1_000 {
        let span = ephemeral - FIRST;
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            let port = u16::try_from(port).expect("below 65536");
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The value in `gw`'s `/metrics` of a sample with these labels (a counter, a histogram's
/// `_count`), 0 when absent.
pub async fn counter(gw: &Gateway, name_and_labels: &str) -> f64 {
    let text = gw.http().get(gw.url("/metrics")).send().await.expect("/metrics").text().await.expect("text");
    text.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

impl Gateway {
    /// Starts `vigie serve` on the demo, with extra environment (e.g. `VIGIE_LOGIN__…`), and
    /// waits until `/healthz` answers. A gateway that fails to start fails the test at once with
    /// its log, but for one race: its port, free when chosen, taken before `vigie` binds it.
    pub async fn start(env: &[(&str, &str)]) -> Gateway {
        Self::start_wrapped(env, &[]).await
    }

    /// [`Gateway::start`] on a port chosen by the caller, whose settings name the gateway's own
    /// issuer (`https://localhost:PORT`): a SAML SP's client registers `<issuer>/saml/callback`.
    pub async fn start_on(port: u16, env: &[(&str, &str)]) -> Gateway {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        match Self::try_start(env, &[], port).await {
            Ok(g) => g,
            Err(StartFailure::PortTaken(log) | StartFailure::Other(log)) => panic!("the gateway did not start: {log}"),
        }
    }

    /// [`Gateway::start`], `vigie` run through `wrapper` (a command that ends by running its
    /// arguments: e.g. a mount namespace with a small tmpfs, `audit_trail`).
    pub async fn start_wrapped(env: &[(&str, &str)], wrapper: &[&str]) -> Gateway {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut attempt = 1;
        loop {
            match Self::try_start(env, wrapper, free_port()).await {
                Ok(g) => return g,
                Err(StartFailure::PortTaken(log)) if attempt < 3 => {
                    eprintln!("the gateway's port was taken before it bound it, trying another: {log}");
                    attempt += 1;
                }
                Err(StartFailure::PortTaken(log) | StartFailure::Other(log)) => {
                    panic!("the gateway did not start: {log}")
                }
            }
        }
    }

    async fn try_start(env: &[(&str, &str)], wrapper: &[&str], port: u16) -> Result<Gateway, StartFailure> {
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vigie-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let other = |e: std::io::Error| StartFailure::Other(e.to_string());
        std::fs::create_dir_all(&dir).map_err(other)?;
        let log = std::fs::File::create(dir.join("vigie.log")).map_err(other)?;
        let mut cmd = Command::new("sh");
        let keep = std::env::var("VIGIE_KEEP_TEST_DATA").unwrap_or_default();
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("vigie-watchdog")
            .arg(&dir)
            .arg(keep)
            .args(wrapper)
            .arg(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.join("data"));
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("VIGIE_")) {
            cmd.env_remove(k);
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(other)?)
            .stderr(log)
            .spawn()
            .map_err(|e| StartFailure::Other(format!("spawning {BIN}: {e}")))?;
        let stdin = child.stdin.take();
        let data_dir = dir.join("data");
        let issuer = format!("https://localhost:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("vigie.log")).unwrap_or_default();
                let _ = std::fs::remove_dir_all(&dir);
                let taken =
                    format!("binding 127.0.0.1:{port}: check `server.listen` / --listen: Address already in use");
                let failure = format!("vigie exited with {status}: {log}");
                return Err(if log.contains(&taken) {
                    StartFailure::PortTaken(failure)
                } else {
                    StartFailure::Other(failure)
                });
            }
            if data_dir.join("demo.json").is_file() {
                let demo: Value = std::fs::read_to_string(data_dir.join("demo.json"))
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or(Value::Null);
                if let Some(ca) = demo["ca_pem"].as_str() {
                    let http = client_for(Some(ca), port);
                    if let Ok(r) = http.get(format!("{issuer}/healthz")).send().await
                        && r.status() == 200
                    {
                        // A gateway behind a proxy (`VIGIE_ISSUER` its address) is known by its issuer.
                        let issuer =
                            env.iter().find(|(k, _)| *k == "VIGIE_ISSUER").map_or(issuer, |(_, v)| (*v).into());
                        let gw = Gateway::from_demo(demo, issuer, port, data_dir, child, stdin);
                        return Ok(gw);
                    }
                }
            }
            if Instant::now() > deadline {
                drop(stdin);
                let _ = child.wait();
                let log = std::fs::read_to_string(dir.join("vigie.log")).unwrap_or_default();
                return Err(StartFailure::Other(format!("no answer from /healthz within 60 s: {log}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn from_demo(
        demo: Value,
        issuer: String,
        port: u16,
        data_dir: PathBuf,
        child: Child,
        stdin: Option<ChildStdin>,
    ) -> Self {
        assert_eq!(demo["issuer"], issuer.as_str(), "demo.json names this gateway's issuer");
        let s = |v: &Value| v.as_str().map(str::to_owned);
        let list = |v: &Value| v.as_array().map(|a| a.iter().filter_map(s).collect()).unwrap_or_default();
        let users = demo["users"]
            .as_array()
            .expect("demo.json users")
            .iter()
            .map(|u| User {
                username: s(&u["username"]).expect("username"),
                password: s(&u["password"]).expect("password"),
                totp_key: totp::decode_base32(u["totp_secret"].as_str().expect("totp_secret")),
                name: s(&u["name"]).unwrap_or_default(),
            })
            .collect();
        let clients = demo["clients"]
            .as_array()
            .expect("demo.json clients")
            .iter()
            .map(|c| DemoClient {
                client_id: s(&c["client_id"]).expect("client_id"),
                secret: s(&c["client_secret"]),
                auth_method: s(&c["auth_method"]).expect("auth_method"),
                redirect_uris: list(&c["redirect_uris"]),
                post_logout_redirect_uris: list(&c["post_logout_redirect_uris"]),
                private_key_pem: s(&c["private_key_pem"]),
                kid: s(&c["kid"]),
                alg: s(&c["id_token_signed_response_alg"]).unwrap_or_else(|| "ES256".into()),
            })
            .collect();
        Gateway {
            ca_pem: demo["ca_pem"].as_str().expect("ca_pem").to_owned(),
            issuer,
            port,
            data_dir,
            users,
            clients,
            demo,
            child: Mutex::new(Some(child)),
            stdin: Mutex::new(stdin),
            used_steps: Mutex::new(HashSet::new()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.issuer)
        }
    }

    /// A fresh HTTP client trusting only the demo CA; redirects are not followed.
    pub fn http(&self) -> reqwest::Client {
        client_for(Some(&self.ca_pem), self.port)
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser { gw: self, http: self.http(), cookies: BTreeMap::new() }
    }

    /// The pid of the `vigie serve` process (found by its data directory), for signals.
    pub fn gateway_pid(&self) -> u32 {
        let data_dir = self.data_dir.display().to_string();
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
            .find(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
                args.first().is_some_and(|a| a.ends_with(b"vigie"))
                    && args.contains(&b"serve".as_slice())
                    && args.contains(&data_dir.as_bytes())
            })
            .expect("the vigie serve process")
    }

    /// A browser presenting the demo card of `username` (demo.json `users[].card`).
    pub fn browser_with_demo_card(&self, username: &str) -> Browser<'_> {
        let user = self.demo["users"].as_array().and_then(|u| u.iter().find(|u| u["username"] == username));
        let card = &user.unwrap_or_else(|| panic!("no demo user {username}"))["card"];
        let pem = |k: &str| card[k].as_str().unwrap_or_else(|| panic!("{username} has no demo card {k}")).to_owned();
        self.browser_with_card(&pem("chain_pem"), &pem("key_pem"))
    }

    /// A browser whose TLS connections present this card (certificate chain PEM + PKCS#8 key PEM),
    /// as the card middleware does once the PIN is entered.
    pub fn browser_with_card(&self, chain_pem: &str, key_pem: &str) -> Browser<'_> {
        let identity = reqwest::Identity::from_pem(format!("{chain_pem}{key_pem}").as_bytes()).expect("card identity");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], self.port)))
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("demo CA PEM")])
            .identity(identity)
            .build()
            .expect("HTTP client with a card");
        Browser { gw: self, http, cookies: BTreeMap::new() }
    }

    pub fn client(&self, id: &str) -> &DemoClient {
        self.clients.iter().find(|c| c.client_id == id).unwrap_or_else(|| panic!("demo client {id}"))
    }

    pub fn user(&self, username: &str) -> &User {
        self.users.iter().find(|u| u.username == username).unwrap_or_else(|| panic!("demo user {username}"))
    }

    /// The audit trail written so far, without the tests' markers (see [`Gateway::settled_audit`]).
    /// What it lacks may still be queued: to check that a line is *absent*, use `settled_audit`.
    pub fn audit_lines(&self) -> Vec<Value> {
        self.audit_file_lines().into_iter().filter(|l| !is_audit_marker(l)).collect()
    }

    fn audit_file_lines(&self) -> Vec<Value> {
        let path =
            self.demo["audit_file"].as_str().map(PathBuf::from).unwrap_or_else(|| self.data_dir.join("audit.jsonl"));
        std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The whole audit trail of everything the gateway did before this call. The gateway's
    /// audit writer is one FIFO queue: this sends a request the gateway audits (an `/authorize`
    /// without parameters, refused, under a user agent of its own) and waits until that line is
    /// written, so every event recorded before it is written too. Checks that something was *not*
    /// audited read this, not [`Gateway::audit_lines`], which may be read while a line is queued.
    pub async fn settled_audit(&self) -> Vec<Value> {
        let marker = format!("{AUDIT_MARKER}{}", random(12));
        let r = self
            .http()
            .get(self.url("/authorize"))
            .header(reqwest::header::USER_AGENT, &marker)
            .send()
            .await
            .expect("the audit marker request");
        assert_eq!(r.status(), 400, "an /authorize without parameters is refused (the audit marker)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.audit_file_lines();
            if let Some(at) = lines.iter().position(|l| l["user_agent"] == marker.as_str()) {
                return lines.into_iter().take(at).filter(|l| !is_audit_marker(l)).collect();
            }
            assert!(Instant::now() < deadline, "the audit marker was not written within 10 s: {lines:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first audit line matching `what`, waiting for the audit writer (it writes from its own
    /// thread) up to 5 s; panics with the whole trail otherwise.
    pub async fn audit_line(&self, what: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(l) = self.audit_lines().into_iter().find(|l| what(l)) {
                return l;
            }
            if Instant::now() > deadline {
                panic!("no such audit line in {:#?}", self.audit_lines());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn keys_file(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.data_dir.join("keys.json")).expect("keys.json"))
            .expect("keys.json is JSON")
    }

    /// A TOTP code of `username` that this gateway has not seen yet. The gateway accepts the
    /// previous, current and next step, each once; past those, this waits for the next step.
    pub async fn totp(&self, username: &str) -> String {
        let key = self.user(username).totp_key.clone();
        loop {
            let now = now();
            let current = now.div_euclid(STEP_SECS);
            let left = STEP_SECS - now.rem_euclid(STEP_SECS);
            {
                let mut used = self.used_steps.lock().expect("TOTP steps");
                // The previous step only while it stays acceptable long enough to reach the gateway.
                let candidates = [(current - 1, left > 4), (current, true), (current + 1, true)];
                for (step, usable) in candidates {
                    if usable && used.insert((username.to_owned(), step)) {
                        return totp::code(&key, step);
                    }
                }
            }
            // A clock step: a code the gateway has not seen comes only with the next TOTP step.
            tokio::time::sleep(Duration::from_secs(left as u64) + Duration::from_millis(200)).await;
        }
    }

    /// Like [`Gateway::totp`] for whichever of `users` has a code available first.
    pub async fn any_user_totp(&self, users: &[&str]) -> (User, String) {
        loop {
            let now = now();
            let current = now.div_euclid(STEP_SECS);
            let left = STEP_SECS - now.rem_euclid(STEP_SECS);
            {
                let mut used = self.used_steps.lock().expect("TOTP steps");
                for username in users {
                    let user = self.user(username);
                    let candidates = [(current - 1, left > 4), (current, true), (current + 1, true)];
                    for (step, usable) in candidates {
                        if usable && used.insert((user.username.clone(), step)) {
                            return (user.clone(), totp::code(&user.totp_key, step));
                        }
                    }
                }
            }
            // A clock step: a code the gateway has not seen comes only with the next TOTP step.
            tokio::time::sleep(Duration::from_secs(left as u64) + Duration::from_millis(200)).await;
        }
    }

    pub fn all_usernames(&self) -> Vec<&str> {
        self.users.iter().map(|u| u.username.as_str()).collect()
    }

    /// A token request from `client_id`, authenticated the way the client is registered.
    pub async fn token(&self, client_id: &str, params: &[(&str, &str)]) -> Resp {
        self.authenticated_post(client_id, "/token", params).await
    }

    /// Sends an endpoint a form with client authentication (for introspection, revocation).
    pub async fn authenticated_post(&self, client_id: &str, path: &str, params: &[(&str, &str)]) -> Resp {
        let c = self.client(client_id).clone();
        let mut form: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut req = self.http().post(self.url(path));
        match c.auth_method.as_str() {
            "client_secret_basic" => req = req.basic_auth(&c.client_id, c.secret.as_deref()),
            "client_secret_post" => {
                form.push(("client_id".into(), c.client_id.clone()));
                form.push(("client_secret".into(), c.secret.clone().unwrap_or_default()));
            }
            "private_key_jwt" => {
                form.push(("client_assertion_type".into(), JWT_BEARER.into()));
                form.push(("client_assertion".into(), self.client_assertion(client_id, &self.url("/token"))));
            }
            _ => form.push(("client_id".into(), c.client_id.clone())),
        }
        Resp::of(req.form(&form).send().await.expect("endpoint reachable")).await
    }

    /// An RFC 7523 §3 client assertion of a `private_key_jwt` client, for audience `aud`.
    pub fn client_assertion(&self, client_id: &str, aud: &str) -> String {
        let now = now();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": aud, "jti": random(16), "iat": now, "exp": now + 60,
        });
        self.client_assertion_with(client_id, &claims)
    }

    /// A client assertion of a `private_key_jwt` client with these claims, signed with its key.
    pub fn client_assertion_with(&self, client_id: &str, claims: &Value) -> String {
        let c = self.client(client_id);
        let pem = c.private_key_pem.as_deref().expect("private_key_pem");
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("EC private key");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = c.kid.clone();
        jsonwebtoken::encode(&header, claims, &key).expect("signing the assertion")
    }

    pub async fn introspect(&self, client_id: &str, token: &str) -> Value {
        let r = self.authenticated_post(client_id, "/introspect", &[("token", token)]).await;
        assert_eq!(r.status, 200, "introspection answers 200: {}", r.body);
        r.json()
    }

    pub async fn userinfo(&self, access_token: &str) -> Resp {
        Resp::of(self.http().get(self.url("/userinfo")).bearer_auth(access_token).send().await.expect("userinfo")).await
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.http().get(self.url("/jwks")).send().await.expect("jwks").json().await.expect("JWK Set")
    }

    /// Verifies a token Vigie signed as a relying party holding only `/jwks` would, and returns
    /// its claims. `alg` is the algorithm registered for `audience`: the header must name it
    /// (RFC 8725 §3.1) and the `kid` of exactly one published signing key of that type. The
    /// public key is rebuilt from the JWK's own numbers (RFC 7518 §6.2.1 `x`/`y`, §6.3.1 `n`/`e`)
    /// and the signature checked by aws-lc for `alg`: no code of the gateway's JOSE stack
    /// (jsonwebtoken) takes part. Then iss, aud and exp (OIDC Core §3.1.3.7).
    pub async fn verify_jwt(&self, token: &str, audience: &str, alg: &str) -> Value {
        use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
        let [signed_header, signed_claims, sig] = token.split('.').collect::<Vec<_>>()[..] else {
            panic!("a JWS in compact form has three parts: {token}")
        };
        let header = jwt_part(token, 0);
        assert_eq!(header["alg"], alg, "signed with the client's registered algorithm: {header}");
        let kid = header["kid"].as_str().expect("kid in the JOSE header");
        let jwks: Value = self.http().get(self.url("/jwks")).send().await.expect("jwks").json().await.expect("JWK Set");
        let named: Vec<&Value> = jwks["keys"].as_array().expect("keys").iter().filter(|k| k["kid"] == kid).collect();
        let [jwk] = named[..] else { panic!("one published key has kid {kid}: {jwks}") };
        assert_eq!(jwk["use"], "sig", "{jwk}");
        assert!(jwk.get("alg").is_none_or(|a| a == alg), "the published key {kid} is for {alg}: {jwk}");
        let member = |name: &str| B64.decode(jwk[name].as_str().expect("JWK member")).expect("base64url JWK member");
        let (message, sig) = (format!("{signed_header}.{signed_claims}"), B64.decode(sig).expect("base64url"));
        let verified = match alg {
            "ES256" => {
                assert_eq!((&jwk["kty"], &jwk["crv"]), (&json!("EC"), &json!("P-256")), "{jwk}");
                // SEC 1 §2.3.3 uncompressed point; RFC 7518 §6.2.1.2: coordinates are full length.
                let (x, y) = (member("x"), member("y"));
                assert_eq!((x.len(), y.len()), (32, 32), "P-256 coordinates: {jwk}");
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, [&[4][..], &x, &y].concat())
                    .verify(message.as_bytes(), &sig)
            }
            "RS256" | "PS256" => {
                assert_eq!(jwk["kty"], "RSA", "{jwk}");
                let params = if alg == "RS256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n: member("n"), e: member("e") }.verify(params, message.as_bytes(), &sig)
            }
            other => panic!("Vigie signs with ES256, RS256 or PS256, not {other}"),
        };
        verified.unwrap_or_else(|_| panic!("the {alg} signature verifies with published key {kid}"));
        let claims = jwt_part(token, 1);
        assert_eq!(claims["iss"], self.issuer.as_str(), "iss is exactly the issuer");
        let aud = &claims["aud"];
        assert!(
            aud == audience || aud.as_array().is_some_and(|a| a.iter().any(|v| v == audience)),
            "aud {aud} names {audience}"
        );
        let exp = claims["exp"].as_i64().expect("exp");
        assert!(exp > now(), "exp {exp} is in the future");
        claims
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog kill `vigie`.
        drop(self.stdin.lock().map(|mut s| s.take()).ok().flatten());
        if let Ok(mut c) = self.child.lock()
            && let Some(mut child) = c.take()
        {
            let _ = child.wait();
        }
    }
}

fn client_for(ca_pem: Option<&str>, port: u16) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)));
    if let Some(ca) = ca_pem {
        b = b.tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("demo CA PEM")]);
    }
    b.build().expect("HTTP client")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub async fn of(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        Resp { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("a Location header in {} {}", self.status, self.body))
            .to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.body))
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect()
    }

    /// The `Set-Cookie` header that sets `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies().into_iter().find(|c| c.split('=').next() == Some(name))
    }

    /// The query parameters of the `Location` (an authorization response).
    pub fn redirect_params(&self) -> BTreeMap<String, String> {
        assert_eq!(self.status, 303, "a redirect: {}", self.body);
        query_of(&self.location())
    }

    /// The value of a hidden input of an HTML form in the body.
    pub fn hidden(&self, name: &str) -> Option<String> {
        hidden_input(&self.body, name)
    }
}

pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("{url} is a URL: {e}"));
    u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// `<input type="hidden" name="NAME" value="VALUE">` in HTML (values are HTML-escaped).
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// An authorization request of the code flow with PKCE, state and nonce; parameters can be
/// changed, removed or repeated to build the broken ones.
#[derive(Clone, Debug)]
pub struct Authz {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub params: Vec<(String, String)>,
}

impl Authz {
    pub fn new(gw: &Gateway, client_id: &str) -> Self {
        let c = gw.client(client_id);
        let redirect_uri = c.redirect_uris[0].clone();
        let state = random(12);
        let nonce = random(12);
        let verifier = random(32);
        let params = vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), redirect_uri.clone()),
            ("scope".into(), "openid profile hospital offline_access".into()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("code_challenge".into(), sha256_b64(&verifier)),
            ("code_challenge_method".into(), "S256".into()),
        ];
        Authz { client_id: client_id.into(), redirect_uri, state, nonce, verifier, params }
    }

    /// Sets `k` (replacing it if present).
    pub fn with(mut self, k: &str, v: &str) -> Self {
        vigie_conformance::flow::set_param(&mut self.params, k, v);
        self
    }

    /// Adds `k` once more, whether or not it is there.
    pub fn also(mut self, k: &str, v: &str) -> Self {
        self.params.push((k.into(), v.into()));
        self
    }

    pub fn without(mut self, k: &str) -> Self {
        self.params.retain(|(n, _)| n != k);
        self
    }

    pub fn url(&self, gw: &Gateway) -> String {
        vigie_conformance::flow::authorize_url(&gw.url("/authorize"), &self.params)
    }

    /// Redeems `code` at the token endpoint as this request's client.
    pub async fn redeem(&self, gw: &Gateway, code: &str) -> Resp {
        gw.token(
            &self.client_id,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
                ("code_verifier", &self.verifier),
            ],
        )
        .await
    }
}

/// The most redirects a browser follows in one go ([`Browser::follow`]), as browsers cap them
/// (Chromium and Firefox at 20): more is a cycle.
pub const MAX_REDIRECTS: usize = 20;

/// A browser: a cookie jar, and redirects seen rather than followed.
pub struct Browser<'g> {
    pub gw: &'g Gateway,
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl<'g> Browser<'g> {
    /// The `Cookie` header this browser sends, if it holds cookies.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty())
            .then(|| self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    /// Keeps the cookies a response sets (and forgets those it expires).
    pub fn remember(&mut self, r: &Resp) {
        for c in r.set_cookies() {
            let mut parts = c.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { continue };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    pub async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Resp {
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let r = Resp::of(req.send().await.expect("gateway reachable")).await;
        self.remember(&r);
        r
    }

    pub async fn get(&mut self, url: &str) -> Resp {
        let req = self.http.get(self.gw.url(url));
        self.send(req).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Resp {
        let req = self.http.post(self.gw.url(url)).form(form);
        self.send(req).await
    }

    pub async fn authorize(&mut self, a: &Authz) -> Resp {
        self.get(&a.url(self.gw)).await
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// GETs `url` and follows the redirects (a relative `Location` read against the URL that sent
    /// it) up to the response whose next URL satisfies `until`, returned with that URL, or up to a
    /// response that is no redirect, returned alone. A chain longer than [`MAX_REDIRECTS`] (a
    /// cycle) fails with the URLs it went through.
    pub async fn follow(&mut self, url: &str, until: impl Fn(&str) -> bool) -> (Resp, Option<String>) {
        let mut chain = vec![self.gw.url(url)];
        loop {
            let here = chain.last().expect("a URL").clone();
            let r = self.get(&here).await;
            if !matches!(r.status, 301 | 302 | 303 | 307 | 308) {
                return (r, None);
            }
            let next = url::Url::parse(&here)
                .and_then(|u| u.join(&r.location()))
                .unwrap_or_else(|e| panic!("{here} redirects to {}: {e}", r.location()))
                .to_string();
            if until(&next) {
                return (r, Some(next));
            }
            chain.push(next);
            assert!(chain.len() <= MAX_REDIRECTS, "more than {MAX_REDIRECTS} redirects, a cycle: {chain:#?}");
        }
    }

    /// Opens the login page at `location` and submits the form with these credentials.
    pub async fn submit_login(&mut self, location: &str, username: &str, password: &str, totp: &str) -> Resp {
        assert!(location.starts_with("/login?flow="), "the authorization request leads to the login page: {location}");
        let page = self.get(location).await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let flow = page.hidden("flow").expect("hidden flow input");
        let csrf = page.hidden("csrf").expect("hidden csrf input");
        self.post_form(
            "/login/password",
            &[("flow", &flow), ("csrf", &csrf), ("username", username), ("password", password), ("totp", totp)],
        )
        .await
    }

    /// Authorization request → login page → login as one of `users` → authorization code.
    pub async fn sign_in(&mut self, a: &Authz, users: &[&str]) -> (User, String) {
        let r = self.authorize(a).await;
        assert_eq!(r.status, 303, "authorize redirects to the login page: {}", r.body);
        let (user, code) = self.gw.any_user_totp(users).await;
        let done = self.submit_login(&r.location(), &user.username, &user.password, &code).await;
        assert_eq!(done.status, 303, "a successful login redirects to the client: {}", done.body);
        let p = done.redirect_params();
        assert_eq!(p.get("state"), Some(&a.state), "state comes back");
        (user, p.get("code").cloned().unwrap_or_else(|| panic!("a code in {p:?}")))
    }

    /// Authorization request → login page → `GET /login/cps` with the card this browser presents
    /// (see [`Gateway::browser_with_card`]) → authorization code.
    pub async fn sign_in_with_card(&mut self, a: &Authz) -> String {
        let r = self.authorize(a).await;
        assert_eq!(r.status, 303, "authorize redirects to the login page: {}", r.body);
        let flow = query_of(&format!("https://x{}", r.location())).get("flow").cloned().expect("a login flow");
        let done = self.get(&format!("/login/cps?flow={flow}")).await;
        assert_eq!(done.status, 303, "the card logs in: {}", done.body);
        done.redirect_params().get("code").cloned().unwrap_or_else(|| panic!("a code: {}", done.location()))
    }

    /// With a live session: an authorization request answered at once with a code.
    pub async fn code_without_login(&mut self, a: &Authz) -> String {
        let r = self.authorize(a).await;
        assert_eq!(r.status, 303, "SSO answers with a redirect: {}", r.body);
        let p = r.redirect_params();
        assert!(
            r.location().starts_with(&a.redirect_uri),
            "redirect to the client, not the login page: {}",
            r.location()
        );
        p.get("code").cloned().unwrap_or_else(|| panic!("a code in {p:?}"))
    }
}

/// Tokens from a code: access, refresh, ID.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub id: String,
    pub raw: Value,
}

impl Tokens {
    pub fn of(r: &Resp) -> Tokens {
        assert_eq!(r.status, 200, "token response: {}", r.body);
        let raw = r.json();
        let s = |k: &str| raw[k].as_str().unwrap_or_else(|| panic!("{k} in {raw}")).to_owned();
        Tokens { access: s("access_token"), refresh: s("refresh_token"), id: s("id_token"), raw }
    }
}

/// A code redeemed by its client, asserting success.
pub async fn redeem(gw: &Gateway, a: &Authz, code: &str) -> Tokens {
    Tokens::of(&a.redeem(gw, code).await)
}

/// A fresh logged-in browser and its first tokens for `client_id`.
pub async fn logged_in<'g>(gw: &'g Gateway, client_id: &str, users: &[&str]) -> (Browser<'g>, User, Authz, Tokens) {
    let mut b = gw.browser();
    let a = Authz::new(gw, client_id);
    let (user, code) = b.sign_in(&a, users).await;
    let t = redeem(gw, &a, &code).await;
    (b, user, a, t)
}

/// The demo gateway trusting a fresh test card PKI as well, revocation unchecked (the card-login
/// tests cover CRLs): cards of any holder the test issues log in.
pub async fn gateway_with_test_cards() -> (Gateway, vigie_igc_sante::testpki::TestPki) {
    let pki = vigie_igc_sante::testpki::TestPki::generate().expect("test PKI");
    let anchors = format!("[{:?}]", pki.anchors_pem());
    let env = [
        ("VIGIE_CARDS__ENABLED", "true"),
        ("VIGIE_CARDS__TRUST__ANCHORS_PEM", anchors.as_str()),
        ("VIGIE_CARDS__TRUST__CHECK_REVOCATION", "false"),
    ];
    (Gateway::start(&env).await, pki)
}

/// Writes a file in a fresh directory under the test temp dir and returns its path.
pub fn temp_file(name: &str, content: &str) -> PathBuf {
    let n = STARTED.fetch_add(1, Ordering::SeqCst);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vigie-it-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::File::create(&path).and_then(|mut f| f.write_all(content.as_bytes())).expect("writing a temp file");
    path
}

pub fn remove_temp(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

const AUDIT_MARKER: &str = "vigie-tests-audit-marker/";

fn is_audit_marker(line: &Value) -> bool {
    line["user_agent"].as_str().is_some_and(|ua| ua.starts_with(AUDIT_MARKER))
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The marker of [`Gateway::settled_audit`] comes after what was audited before it and is not
/// itself part of the trail the tests read.
#[tokio::test]
async fn the_settled_audit_holds_what_was_audited_before_it_and_no_marker() {
    let gw = Gateway::start(&[]).await;
    let r = gw
        .http()
        .get(gw.url("/authorize?client_id=no-such-client"))
        .header(reqwest::header::USER_AGENT, "before-the-marker")
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), 400);
    let trail = gw.settled_audit().await;
    assert_eq!(trail.iter().filter(|l| l["user_agent"] == "before-the-marker").count(), 1, "{trail:#?}");
    assert!(!trail.iter().chain(gw.audit_lines().iter()).any(is_audit_marker));
}

/// The harness tries another port only when the gateway's own port was taken; any other failure
/// to start is reported as it is, with the log that says why.
#[tokio::test]
async fn a_start_failure_is_retried_only_when_the_gateways_port_was_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port to take");
    let port = taken.local_addr().expect("its address").port();
    match Gateway::try_start(&[], &[], port).await {
        Err(StartFailure::PortTaken(log)) => assert!(log.contains("Address already in use"), "{log}"),
        other => panic!("a taken port is retried: {:?}", other.map(|g| g.port)),
    }
    drop(taken);
    match Gateway::try_start(&[("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "many")], &[], free_port()).await {
        Err(StartFailure::Other(log)) => {
            assert!(log.contains(r#"expected u64 for key "LOGIN.MAX_ATTEMPTS_PER_IP""#), "{log}")
        }
        other => panic!("a bad configuration fails at once: {:?}", other.map(|g| g.port)),
    }
}
