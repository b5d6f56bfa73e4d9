//! The PSC stand-in (`conformance/psc-sandbox`, npm `oidc-provider`) started from a test: one
//! client `vigie` whose redirect URIs are those of the gateways given; killed when the test
//! process ends (the same pipe watchdog as the gateway's) or when dropped.
//! Needs Node.js and `npm ci` in conformance/psc-sandbox: the tests fail saying so otherwise.
#![allow(dead_code)] // Each test file uses its own part.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Browser, Resp, eventually, query_of, remove_temp, temp_file};

/// The client id of the gateways at the stand-in.
pub const PSC_CLIENT_ID: &str = "vigie";

/// Redirects followed at PSC before a chain is called a loop: the stand-in's login, completed at
/// once, and its logout each take one.
const MAX_PSC_HOPS: usize = 8;

const WATCHDOG: &str = r#"exec 3<&0
"$@" &
child=$!
( read -r _ <&3; kill -9 "$child" 2>/dev/null ) &
wait "$child"
"#;

pub fn psc_sandbox_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/psc-sandbox")
}

/// A running PSC stand-in.
pub struct PscSandbox {
    /// The issuer it announces (`PSC-SANDBOX READY <issuer>`).
    pub issuer: String,
    /// The issuer's origin: where the browser is sent (a proxy's, when started behind one).
    pub origin: String,
    /// Its own listener, for the control API: reachable whatever a proxy in front does.
    pub control: String,
    child: Mutex<Option<Child>>,
    stdin: Mutex<Option<ChildStdin>>,
    http: reqwest::Client,
}

impl PscSandbox {
    /// Starts the stand-in on `port`, announcing its own address; its stderr is the test's.
    pub fn start(port: u16, client_secret: &str, gateway_ports: &[u16]) -> PscSandbox {
        Self::launch(port, None, client_secret, gateway_ports)
    }

    /// Starts the stand-in on `port`, announcing `public_origin` (a TCP proxy the test cuts) as
    /// its origin; its stderr is discarded (its errors while the link is cut are expected).
    pub fn start_behind(port: u16, public_origin: &str, client_secret: &str, gateway_ports: &[u16]) -> PscSandbox {
        let psc = Self::launch(port, Some(public_origin), client_secret, gateway_ports);
        assert!(psc.issuer.starts_with(public_origin), "the stand-in announces the proxy's origin: {}", psc.issuer);
        psc
    }

    fn launch(port: u16, public_origin: Option<&str>, client_secret: &str, gateway_ports: &[u16]) -> PscSandbox {
        let dir = psc_sandbox_dir();
        assert!(
            dir.join("server.mjs").is_file(),
            "the PSC stand-in is missing at {}: these tests need it",
            dir.display()
        );
        assert!(
            dir.join("node_modules").is_dir(),
            "run `npm ci` in {} first (tests/run does): the PSC stand-in needs its npm packages",
            dir.display()
        );
        let node = Command::new("node").arg("--version").output();
        assert!(
            node.is_ok_and(|o| o.status.success()),
            "Node.js (`node`) is not installed: the PSC stand-in runs on it (apt-get install nodejs)"
        );
        let redirect: Vec<String> =
            gateway_ports.iter().map(|p| format!("https://127.0.0.1:{p}/login/psc/callback")).collect();
        let logout: Vec<String> = gateway_ports.iter().map(|p| format!("https://127.0.0.1:{p}/logout/psc")).collect();
        let mut config = json!({
            "listen": format!("127.0.0.1:{port}"),
            "clients": [{
                "client_id": PSC_CLIENT_ID, "client_secret": client_secret,
                "token_endpoint_auth_method": "client_secret_basic",
                "redirect_uris": redirect, "post_logout_redirect_uris": logout,
            }],
        });
        if let Some(origin) = public_origin {
            config["public_origin"] = json!(origin);
        }
        let file = temp_file("psc-sandbox.json", &config.to_string());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("psc-sandbox-watchdog")
            .arg("node")
            .arg(dir.join("server.mjs"))
            .arg("--config")
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if public_origin.is_some() { Stdio::null() } else { Stdio::inherit() })
            .spawn()
            .expect("starting node");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stand-in stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("PSC-SANDBOX READY ") {
                    let _ = tx.send(issuer.trim().to_owned());
                }
            }
        });
        let issuer = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the PSC stand-in did not print `PSC-SANDBOX READY` within 30 s")
        });
        remove_temp(&file);
        let origin = url::Url::parse(&issuer).expect("issuer URL").origin().ascii_serialization();
        // A stand-in may outlive each test's runtime (when shared): keep no idle connection, whose
        // I/O task would die with the runtime that opened it ("dispatch task gone").
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .expect("HTTP client");
        PscSandbox {
            issuer,
            origin,
            control: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(Some(child)),
            stdin: Mutex::new(stdin),
            http,
        }
    }

    /// `POST /__control/{path}` (conformance/psc-sandbox/README.md), which must succeed.
    pub async fn control(&self, path: &str, body: Value) {
        let r = self.http.post(format!("{}/__control/{path}", self.control)).json(&body).send().await.expect("control");
        assert!(r.status().is_success(), "__control/{path} {body}: {}", r.status());
    }

    /// The next authorization request completes at once as this professional, by these means.
    pub async fn next_login(&self, idnat: &str, means: &str) {
        self.control("next-login", json!({ "idnat": idnat, "means": means })).await;
    }

    /// The next request misbehaves once this way (`down`, `slow`…).
    pub async fn misbehave(&self, mode: &str) {
        self.control("misbehave", json!({ "mode": mode, "times": 1 })).await;
    }

    pub async fn reset(&self) {
        self.control("reset", json!({})).await;
    }

    /// The browser at PSC, from `url` (PSC's authorization or logout endpoint): follows PSC's own
    /// redirects (302, oidc-provider's, through koa's `ctx.redirect`) until the one that leaves PSC for
    /// Vigie, whose URL is returned unfetched. At most [`MAX_PSC_HOPS`]: a cycle fails with the
    /// chain of URLs instead of hanging.
    pub async fn through(&self, b: &mut Browser<'_>, url: &str) -> String {
        let mut chain = vec![url.to_owned()];
        let mut url = url.to_owned();
        while url.starts_with(&self.origin) {
            assert!(chain.len() <= MAX_PSC_HOPS, "more than {MAX_PSC_HOPS} redirects at PSC: {chain:#?}");
            let r = b.get(&url).await;
            assert_eq!(r.status, 302, "PSC redirects the browser at each step ({url}): {}\n{chain:#?}", r.body);
            let next = r.location();
            url = if next.starts_with('/') { format!("{}{next}", self.origin) } else { next };
            chain.push(url.clone());
        }
        url
    }

    /// The browser arriving at Vigie's callback `callback` (PSC's registered redirect URI, on
    /// `127.0.0.1`): Vigie first sends it to the same callback on its issuer's host, where its
    /// browser-binding cookie lives (302, `login::psc::to_issuer_host`); the answer there.
    pub async fn back_at_vigie(&self, b: &mut Browser<'_>, callback: &str) -> Resp {
        assert!(callback.starts_with("https://127.0.0.1:"), "PSC's registered callback: {callback}");
        let hop = b.get(callback).await;
        assert_eq!(hop.status, 302, "to the issuer's host first: {}", hop.body);
        let on_issuer = hop.location();
        assert!(on_issuer.starts_with(&b.gw.url("/login/psc/callback?")), "{on_issuer}");
        assert_eq!(query_of(&on_issuer), query_of(callback), "the same code and state");
        b.get(&on_issuer).await
    }

    /// The login page at `location` once it offers e-CPS (the gateway's health probe has reached
    /// PSC), within 15 s.
    pub async fn login_page_offering_psc(&self, b: &mut Browser<'_>, location: &str) -> Resp {
        // The browser, and the last page seen for the failure message.
        let polled = tokio::sync::Mutex::new((b, String::new()));
        let page = eventually(15, || {
            let polled = &polled;
            async move {
                let mut polled = polled.lock().await;
                let page = polled.0.get(location).await;
                assert_eq!(page.status, 200, "the login page: {}", page.body);
                if page.body.contains("/login/psc?flow=") {
                    return Some(page);
                }
                polled.1 = page.body;
                None
            }
        })
        .await;
        let last = polled.into_inner().1;
        page.unwrap_or_else(|| panic!("the login page offers e-CPS once PSC answers its probe, within 15 s: {last}"))
    }

    /// The requests the stand-in received.
    pub async fn log(&self) -> Vec<Value> {
        let r = self.http.get(format!("{}/__control/log", self.control)).send().await.expect("control log");
        r.json::<Vec<Value>>().await.expect("the control log is a JSON list")
    }
}

impl Drop for PscSandbox {
    fn drop(&mut self) {
        drop(self.stdin.lock().map(|mut s| s.take()).ok().flatten());
        if let Ok(mut c) = self.child.lock()
            && let Some(mut child) = c.take()
        {
            let _ = child.wait();
        }
    }
}
