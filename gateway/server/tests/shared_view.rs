//! One view across replicas (issue 15): two `vigie` replicas on one real Redis. PSC's breaker,
//! opened by one replica's probes, is the other's at once (login page, `/readyz`, `/metrics`, one
//! audit line for the deployment), and both close together; an account made generic by `vigie
//! users` (another process) is refused by every replica at the next SSO round trip, well under
//! `directory.identity_cache_secs`.
//! Needs Node.js and `npm ci` in conformance/psc-sandbox (as `tests/psc_login.rs`).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::psc::PscSandbox;
use crate::common::redis::{RedisServer, Replica, each_replica_refuses, sso_round_trip};
use crate::common::{BIN, eventually, free_port, query_of};
use crate::replicas::{authorize_url, set_cookie};

const PSC_SECRET: &str = "s3cret-of-the-shared-view-test";
/// The hysteresis of the replicas under test (`health.min_state_ms`).
const MIN_STATE: Duration = Duration::from_secs(4);

/// A replica's view through its public port: the demo's CA trusted, no redirect followed.
struct Deployment {
    dir: PathBuf,
    http: reqwest::Client,
    demo: Value,
}

impl Deployment {
    fn of(dir: &Path) -> Deployment {
        let demo: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).expect("demo.json")).expect("json");
        let ca = reqwest::Certificate::from_pem(demo["ca_pem"].as_str().expect("ca").as_bytes()).expect("CA");
        let http =
            reqwest::Client::builder().add_root_certificate(ca).redirect(reqwest::redirect::Policy::none()).build();
        Deployment { dir: dir.to_owned(), http: http.expect("client"), demo }
    }

    async fn readyz(&self, base: &str) -> Value {
        self.http.get(format!("{base}/readyz")).send().await.expect("/readyz").json().await.expect("JSON")
    }

    async fn psc_state(&self, base: &str) -> String {
        self.readyz(base).await["checks"]["upstreams"]["psc"]["state"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `base`'s PSC breaker is in `state` (30 s at most); when that happened.
    async fn until_psc(&self, base: &str, state: &str) -> Instant {
        eventually(30, || async { (self.psc_state(base).await == state).then(Instant::now) })
            .await
            .unwrap_or_else(|| panic!("{base}: PSC's breaker not {state} within 30 s"))
    }

    /// Whether `base`'s login page offers e-CPS (a link to `/login/psc`).
    async fn offers_ecps(&self, base: &str) -> bool {
        let r = self.http.get(authorize_url(base)).send().await.expect("authorize");
        let login = r.headers()["location"].to_str().expect("location").to_owned();
        let page = self.http.get(format!("{base}{login}")).send().await.expect("login page");
        page.text().await.expect("html").contains("/login/psc?flow=")
    }

    /// `vigie_upstream_state{upstream="psc"}` in `base`'s `/metrics`.
    async fn psc_gauge(&self, base: &str) -> String {
        let text = self.http.get(format!("{base}/metrics")).send().await.expect("/metrics").text().await.unwrap();
        let line = text.lines().find(|l| l.starts_with("vigie_upstream_state{") && l.contains("upstream=\"psc\""));
        line.and_then(|l| l.rsplit(' ').next()).unwrap_or_default().to_owned()
    }

    /// The transitions of PSC's breaker in the audit trail every replica appends to.
    fn psc_transitions(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["kind"] == "upstream_state" && l["object"] == "psc")
            .map(|l| l["method"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn psc_env(issuer: &str, probe_secs: &str) -> Vec<(String, String)> {
    [
        ("VIGIE_PSC__ISSUER", issuer),
        ("VIGIE_PSC__CLIENT_ID", "vigie"),
        ("VIGIE_PSC__CLIENT_SECRET", PSC_SECRET),
        ("VIGIE_PSC__PROBE_INTERVAL_SECS", probe_secs),
        ("VIGIE_PSC__TIMEOUT_MS", "1000"),
        ("VIGIE_HEALTH__MIN_STATE_MS", "4000"),
        ("VIGIE_HEALTH__BACKOFF_INITIAL_MS", "200"),
        ("VIGIE_HEALTH__BACKOFF_MAX_MS", "1000"),
        ("VIGIE_HEALTH__PROBE_TIMEOUT_MS", "1000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Replica A probes PSC each second; replica B probed it once, at its start, and not again for an
/// hour: whatever B knows of PSC after that, it knows from the deployment's shared state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psc_down_for_one_replica_is_down_for_every_replica_and_both_close_together() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("vigie-shared-health-{}-{}", std::process::id(), free_port()));
    let (pa, pb, psc_port) = (free_port(), free_port(), free_port());
    let psc_issuer = format!("http://127.0.0.1:{psc_port}/auth/realms/esante-wallet");
    let psc = PscSandbox::start(psc_port, PSC_SECRET, &[pa, pb]);
    let issuer = format!("https://localhost:{pa}");
    let (env_a, env_b) = (psc_env(&psc_issuer, "1"), psc_env(&psc_issuer, "3600"));
    let replica_a = Replica::start(&dir, pa, &redis, &issuer, &env_refs(&env_a));
    let replica_b = Replica::start(&dir, pb, &redis, &issuer, &env_refs(&env_b));
    let (a, b) = (replica_a.base(), replica_b.base());
    let d = Deployment::of(&dir);
    d.until_psc(&a, "closed").await;
    d.until_psc(&b, "closed").await;
    assert!(d.offers_ecps(&b).await, "PSC up: B offers e-CPS");
    let before = d.psc_transitions().len();

    drop(psc);
    let opened = d.until_psc(&a, "open").await;
    let seen = d.until_psc(&b, "open").await;
    let lag = seen.saturating_duration_since(opened);
    eprintln!("B took A's opening {lag:?} after A's /readyz showed it");
    assert!(lag < Duration::from_secs(3), "B took {lag:?} to follow A's opening (it reads the store each second)");
    assert!(!d.offers_ecps(&b).await, "B, which did not probe PSC since its start, no longer offers e-CPS");
    assert!(!d.offers_ecps(&a).await);
    assert_eq!(d.readyz(&b).await["degraded"], true);
    assert_eq!((d.psc_gauge(&a).await, d.psc_gauge(&b).await), ("2".to_owned(), "2".to_owned()));
    let opening = d.readyz(&b).await["checks"]["upstreams"]["psc"]["deployment_version"].clone();
    assert_eq!(opening, d.readyz(&a).await["checks"]["upstreams"]["psc"]["deployment_version"]);

    let psc = PscSandbox::start(psc_port, PSC_SECRET, &[pa, pb]);
    let closed_a = d.until_psc(&a, "closed").await;
    let closed_b = d.until_psc(&b, "closed").await;
    let apart = closed_b.saturating_duration_since(closed_a);
    eprintln!("B closed {apart:?} after A; A closed {:?} after it opened", closed_a.duration_since(opened));
    assert!(apart < Duration::from_secs(3), "B closed {apart:?} after A");
    // The hysteresis holds for the deployment: no closing within `min_state` of the opening.
    assert!(closed_a.duration_since(opened) >= MIN_STATE - Duration::from_millis(500));
    assert!(d.offers_ecps(&b).await, "PSC back: B offers e-CPS again");
    assert_eq!(d.psc_gauge(&b).await, "0");
    // One audit line per transition for the deployment, not one per replica.
    let transitions = d.psc_transitions()[before..].to_vec();
    assert_eq!(transitions, ["closed->open", "open->half_open", "half_open->closed"], "{transitions:?}");
    drop(psc);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The DPI (a sensitive client of the demo) with the PKCE challenge of RFC 7636 appendix B.
fn dpi_authorize(base: &str) -> String {
    format!(
        "{base}/authorize?response_type=code&client_id=demo-dpi&redirect_uri=http://127.0.0.1:8768/callback\
         &scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    )
}

/// A card session used for SSO into the DPI on both replicas (each caches the principal it
/// decided on); `vigie users set-kind … generic` in another process (a shared account never
/// reaches a sensitive client: `generic-account-never-sensitive`); both refuse the next SSO round
/// trip at once, though `directory.identity_cache_secs` is ten minutes and the change ends no
/// session (nothing else would refuse it before the cache expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_made_generic_from_the_command_line_is_refused_by_every_replica_at_once() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("vigie-shared-access-{}-{}", std::process::id(), free_port()));
    let (pa, pb) = (free_port(), free_port());
    let issuer = format!("https://localhost:{pa}");
    let env = [("VIGIE_DIRECTORY__IDENTITY_CACHE_SECS", "600")];
    let replica_a = Replica::start(&dir, pa, &redis, &issuer, &env);
    let replica_b = Replica::start(&dir, pb, &redis, &issuer, &env);
    let (a, b) = (replica_a.base(), replica_b.base());
    let d = Deployment::of(&dir);
    let users = d.demo["users"].as_array().expect("users");
    let medecin = users.iter().find(|u| u["username"] == "demo.medecin").expect("demo.medecin");
    let card = |k: &str| medecin["card"][k].as_str().expect("the médecin's demo card").to_owned();
    let identity = reqwest::Identity::from_pem(format!("{}{}", card("chain_pem"), card("key_pem")).as_bytes());
    let ca = reqwest::Certificate::from_pem(d.demo["ca_pem"].as_str().expect("ca").as_bytes()).expect("CA");
    let reader = reqwest::Client::builder()
        .add_root_certificate(ca)
        .identity(identity.expect("card identity"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a browser with a card reader");

    // Card login into the DPI on A.
    let r = reader.get(dpi_authorize(&a)).send().await.expect("authorize on A");
    let browser = set_cookie(&r, "__Host-vigie-browser");
    let login = r.headers()["location"].to_str().expect("location").to_owned();
    let flow = query_of(&format!("https://x{login}")).remove("flow").expect("flow");
    let r = reader.get(format!("{a}/login/cps?flow={flow}")).header("cookie", &browser).send().await.expect("card");
    assert_eq!(r.status(), 303, "card login on A");
    assert!(r.headers()["location"].to_str().unwrap().contains("code="), "card login on A gives a code");
    let session = set_cookie(&r, "__Host-vigie-session");
    // SSO into the DPI on each replica (no card presented: the session is enough).
    let (http, session) = (&d.http, session.as_str());
    let sso = move |base: String| sso_round_trip(http, dpi_authorize(&base), session, "http://127.0.0.1:8768/callback");
    assert!(sso(b.clone()).await.contains_key("code"), "SSO on B gives a code");
    assert!(sso(a.clone()).await.contains_key("code"), "SSO on A gives a code");

    // The account becomes a shared one, from a terminal: another process, on the same directory
    // and Redis.
    let out = Command::new(BIN)
        .args(["users", "set-kind", "demo.medecin", "generic", "--data-dir"])
        .arg(&dir)
        .env("VIGIE_STORE__KIND", "redis")
        .env("VIGIE_STORE__URL", redis.url())
        .output()
        .expect("vigie users set-kind");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The cache lives 600 s, the change takes ~1 s.
    each_replica_refuses(&[("B", &b), ("A", &a)], Instant::now(), Duration::from_secs(5), "access_denied", sso).await;
    let _ = std::fs::remove_dir_all(&dir);
}
