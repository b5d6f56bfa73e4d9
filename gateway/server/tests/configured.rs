//! `vigie serve --config FILE`, as operators run it: deploy/config's example file with this
//! machine's paths, a TLS certificate of its own, users imported from an HR export and enrolled
//! with the CLI, and the example's `dpi` client, whose back-channel logout endpoint is the test's.
//! Also the home page (`GET /`), and a back-channel logout endpoint that fails or hangs.
use crate::cli::{new_secret, run, run_with, stdout};
use crate::common;
use crate::logout::logout_url;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/config/vigie.example.toml");
const HR_EXPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../adapters/directory-sql/examples/hr-export.csv");
/// A médecin of the example HR export.
const USERNAME: &str = "clefevre";
const PASSWORD: &str = "correct horse battery staple";

/// A deployment's files in a fresh directory: the example configuration with this directory's
/// paths, a listener certificate, keys, and the directory with one user enrolled.
struct Deployment {
    dir: PathBuf,
    config: PathBuf,
    file: toml::Table,
    ca_pem: String,
    user: User,
    client: DemoClient,
}

fn deploy(backchannel_logout_uri: &str) -> Deployment {
    let dir = temp_file("vigie.toml", "").parent().expect("a directory").to_owned();
    let path = |name: &str| dir.join(name).to_str().expect("UTF-8 path").to_owned();
    let port = free_port();
    let issuer = format!("https://localhost:{port}");

    // The listener's certificate: self-signed, trusted by the test's HTTP client alone.
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate");
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    std::fs::write(path("tls.crt"), cert.pem()).expect("tls.crt");
    std::fs::write(path("tls.key"), key.serialize_pem()).expect("tls.key");
    // Card login needs anchors: a test PKI's CA stands for IGC-Santé's.
    let pki = vigie_igc_sante::testpki::TestPki::generate().expect("test PKI");
    std::fs::write(path("card-ca.pem"), pki.anchors_pem()).expect("card-ca.pem");
    std::fs::write(path("psc-secret"), "unused: PSC is disabled").expect("psc-secret");
    stdout(&run(&["keys", "generate", "--out", &path("keys.json")]));
    let (secret, hash) = new_secret();

    let mut file: toml::Table = toml::from_str(&std::fs::read_to_string(EXAMPLE).expect("the example")).expect("TOML");
    let set = |file: &mut toml::Table, key: &str, value: toml::Value| {
        let (section, key) = key.split_once('.').expect("section.key");
        file[section].as_table_mut().expect("a section").insert(key.to_owned(), value);
    };
    file.insert("issuer".into(), issuer.clone().into());
    set(&mut file, "server.listen", format!("127.0.0.1:{port}").into());
    set(&mut file, "server.tls_cert", path("tls.crt").into());
    set(&mut file, "server.tls_key", path("tls.key").into());
    set(&mut file, "store.kind", "embedded".into());
    set(&mut file, "directory.url", format!("sqlite://{}", path("directory.db")).into());
    set(&mut file, "keys.file", path("keys.json").into());
    set(&mut file, "audit.file", path("audit.jsonl").into());
    set(&mut file, "psc.client_secret_file", path("psc-secret").into());
    let trust = file["cards"]["trust"].as_table_mut().expect("cards.trust");
    trust.insert("anchors".into(), vec![path("card-ca.pem")].into());
    trust.insert("crl_cache_dir".into(), path("crl").into());
    let dpi = file["clients"].as_array_mut().and_then(|c| c.first_mut()).and_then(|c| c.as_table_mut());
    let dpi = dpi.expect("the example's first client");
    assert_eq!(dpi["client_id"].as_str(), Some("dpi"));
    let redirect_uri = "https://dpi.chu-exemple.fr/oidc/callback";
    let back = "https://dpi.chu-exemple.fr/";
    dpi.insert("client_secret_hash".into(), hash.into());
    dpi.insert("backchannel_logout_uri".into(), backchannel_logout_uri.into());
    // Password + TOTP opens a sensitive client only until `policy.password_totp_transition_until`:
    // not sensitive, the login below does not depend on today's date.
    dpi.insert("sensitive".into(), false.into());
    let config = dir.join("vigie.toml");
    std::fs::write(&config, toml::to_string(&file).expect("TOML")).expect("vigie.toml");

    let config_arg = config.to_str().expect("UTF-8 path");
    assert_eq!(
        stdout(&run(&["check-config", config_arg])),
        format!("{config_arg}: valid (3 clients, store Embedded)\n")
    );
    stdout(&run(&["users", "import", HR_EXPORT, "--config", config_arg]));
    let mut set_password = std::process::Command::new(BIN)
        .args(["users", "set-password", USERNAME, "--config", config_arg])
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vigie users set-password");
    use std::io::Write;
    writeln!(set_password.stdin.take().expect("stdin"), "{PASSWORD}").expect("the password on stdin");
    let out = set_password.wait_with_output().expect("set-password");
    assert_eq!(stdout(&out), format!("password of {USERNAME} set\n"));
    let enrolled = stdout(&run(&["users", "enroll-totp", USERNAME, "--config", config_arg]));
    let totp_secret = enrolled
        .lines()
        .find_map(|l| l.strip_prefix("totp secret (base32): "))
        .unwrap_or_else(|| panic!("the secret in {enrolled}"))
        .to_owned();

    let user = User {
        username: USERNAME.into(),
        password: PASSWORD.into(),
        totp_key: totp::decode_base32(&totp_secret),
        name: "Camille Lefèvre".into(),
    };
    let client = DemoClient {
        client_id: "dpi".into(),
        secret: Some(secret),
        auth_method: "client_secret_basic".into(),
        redirect_uris: vec![redirect_uri.into()],
        post_logout_redirect_uris: vec![back.into()],
        private_key_pem: None,
        kid: None,
        alg: "ES256".into(),
    };
    Deployment { dir, config, file, ca_pem: cert.pem(), user, client }
}

async fn start(d: &Deployment) -> Gateway {
    Gateway::start_configured(&d.dir, &d.config, &d.ca_pem, vec![d.user.clone()], vec![d.client.clone()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_config_runs_the_example_file_and_its_client_logs_an_imported_user_in() {
    let d = deploy("https://dpi.chu-exemple.fr/oidc/backchannel-logout");
    let gw = start(&d).await;
    let issuer = d.file["issuer"].as_str().expect("issuer");

    let health = gw.browser().get("/healthz").await;
    assert_eq!((health.status, health.json()), (200, json!({ "status": "ok" })));
    let discovery = gw.browser().get("/.well-known/openid-configuration").await;
    assert_eq!(discovery.status, 200, "{}", discovery.body);
    let discovery = discovery.json();
    assert_eq!(discovery["issuer"], issuer);
    assert_eq!(discovery["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(discovery["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(discovery["jwks_uri"], format!("{issuer}/jwks"));
    // No demo: its application is not served.
    assert_eq!(gw.browser().get("/demo-app/").await.status, 404);

    let (_, user, _, tokens) = logged_in(&gw, "dpi", &[USERNAME]).await;
    let claims = gw.verify_jwt(&tokens.id, "dpi", "ES256").await;
    assert_eq!((claims["iss"].as_str(), claims["acr"].as_str()), (Some(issuer), Some(ACR_2FA)), "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(
        (claims["given_name"].as_str(), claims["family_name"].as_str()),
        (Some("Camille"), Some("Lefèvre")),
        "the names of the HR export: {claims}"
    );
    let introspected = gw.introspect("dpi", &tokens.access).await;
    assert_eq!((introspected["active"].clone(), introspected["sub"].clone()), (json!(true), claims["sub"].clone()));
    let line = gw.audit_line(|l| l["kind"] == "login" && l["outcome"] == "success").await;
    assert_eq!((line["username"].as_str(), line["client_id"].as_str()), (Some(user.username.as_str()), Some("dpi")));
}

/// `GET /`: a page of links, the demo application's only on the demo; `/readyz` only when the
/// probes are not on their own listener (`server.ops_listen`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_page_links_discovery_and_readyz_and_the_demo_app_only_on_the_demo() {
    let configured = start(&deploy("https://dpi.chu-exemple.fr/oidc/backchannel-logout")).await;
    let demo = Gateway::start(&[]).await;
    let ops_port = free_port().to_string();
    let ops_listen = format!("127.0.0.1:{ops_port}");
    let demo_with_ops = Gateway::start(&[("VIGIE_SERVER__OPS_LISTEN", &ops_listen)]).await;
    // (gateway, the demo app's link, /readyz's link)
    for (gw, demo_app, readyz) in [(&configured, false, true), (&demo, true, true), (&demo_with_ops, true, false)] {
        for (query, lang, discovery, other) in [
            ("/", "fr", "Découverte OpenID Connect", r#"<a href="/?lang=en" lang="en">English</a>"#),
            ("/?lang=en", "en", "OpenID Connect discovery", r#"<a href="/?lang=fr" lang="fr">Français</a>"#),
        ] {
            let r = gw.browser().get(query).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
            let b = &r.body;
            assert!(b.starts_with(&format!("<!doctype html>\n<html lang=\"{lang}\">")), "{query}: {b}");
            assert!(
                b.contains(&format!(r#"<li><a href="/.well-known/openid-configuration">{discovery}</a></li>"#)),
                "{query}: {b}"
            );
            assert_eq!(b.contains(r#"<li><a href="/readyz">/readyz</a></li>"#), readyz, "{query}: {b}");
            assert_eq!(b.contains(r#"href="/demo-app/""#), demo_app, "{query}: {b}");
            assert!(b.contains(other), "{query}: the other language's link: {b}");
            assert!(b.ends_with("</main></body></html>"), "{query}: {b}");
        }
    }
}

#[test]
fn serve_config_refuses_a_bad_file_naming_the_key_and_never_listens() {
    let d = deploy("https://dpi.chu-exemple.fr/oidc/backchannel-logout");
    let mut file = d.file.clone();
    let issuer = format!("{}/", file["issuer"].as_str().expect("issuer"));
    file.insert("issuer".into(), issuer.into());
    let bad = d.dir.join("bad.toml");
    std::fs::write(&bad, toml::to_string(&file).expect("TOML")).expect("bad.toml");
    let out = run_with(&["serve", "--config", bad.to_str().expect("UTF-8 path")], &[("VIGIE_LOG", "off")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "vigie: config: `issuer`: must not end with '/' (OIDC Discovery §4.3 compares it exactly)\n"
    );
    assert!(out.stdout.is_empty());
    let listen = file["server"]["listen"].as_str().expect("server.listen");
    assert!(std::net::TcpStream::connect(listen).is_err(), "nothing listens on {listen}");
    remove_temp(&d.config);
}

/// What a relying party's back-channel logout endpoint does with each logout token.
#[derive(Clone, Copy)]
enum Endpoint {
    /// Answers 500 (Back-Channel Logout §2.8 lets an RP answer an error).
    Fails,
    /// Reads the request and never answers.
    Hangs,
}

/// A relying party's back-channel logout endpoint on loopback (plain HTTP, which the gateway
/// allows there): the logout tokens it was sent, in order.
struct RelyingParty {
    uri: String,
    tokens: Arc<std::sync::Mutex<Vec<String>>>,
    behaviour: Arc<std::sync::Mutex<Endpoint>>,
}

impl RelyingParty {
    async fn start(behaviour: Endpoint) -> RelyingParty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let uri = format!("http://{}/backchannel-logout", listener.local_addr().expect("address"));
        let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
        let behaviour = Arc::new(std::sync::Mutex::new(behaviour));
        let (seen, now) = (tokens.clone(), behaviour.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (seen, now) = (seen.clone(), now.clone());
                tokio::spawn(async move {
                    let Some(body) = read_request_body(&mut conn).await else { return };
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    seen.lock().expect("tokens").push(token);
                    let behaviour = *now.lock().expect("behaviour");
                    match behaviour {
                        Endpoint::Fails => {
                            let answer =
                                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                            let _ = conn.write_all(answer.as_bytes()).await;
                        }
                        // Held open until the gateway gives up and closes it.
                        Endpoint::Hangs => while conn.read(&mut [0u8; 64]).await.is_ok_and(|n| n > 0) {},
                    }
                });
            }
        });
        RelyingParty { uri, tokens, behaviour }
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().expect("tokens").clone()
    }
}

/// The body of one HTTP/1.1 request with a `content-length` (what the gateway sends).
async fn read_request_body(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())?;
            if body.len() >= length {
                return Some(body.to_owned());
            }
        }
    }
}

/// The value of `vigie_backchannel_logout_total` for this client and result, 0 when absent.
async fn backchannel_count(gw: &Gateway, client: &str, result: &str) -> f64 {
    let metrics = gw.browser().get("/metrics").await.body;
    let labels = format!(r#"vigie_backchannel_logout_total{{client="{client}",result="{result}"}} "#);
    metrics.lines().find_map(|l| l.strip_prefix(&labels)).map_or(0.0, |v| v.parse().expect("a number"))
}

/// RP-initiated logout of a fresh session of `dpi`: the user is back at the client with their
/// state, the session and its tokens are over; returns the session's `sid`.
async fn log_in_and_out(gw: &Gateway) -> String {
    let (mut b, _, _, t) = logged_in(gw, "dpi", &[USERNAME]).await;
    let sid = jwt_part(&t.id, 1)["sid"].as_str().expect("sid in the ID token").to_owned();
    let back = gw.client("dpi").post_logout_redirect_uris[0].clone();
    let logout =
        logout_url(gw, &[("id_token_hint", &t.id), ("post_logout_redirect_uri", &back), ("state", "au-revoir")]);
    let r = b.get(&logout).await;
    assert_eq!((r.status, r.location()), (303, format!("{back}?state=au-revoir")), "{}", r.body);
    let again = b.authorize(&Authz::new(gw, "dpi").with("prompt", "none")).await;
    assert_eq!(again.redirect_params().get("error").map(String::as_str), Some("login_required"));
    assert_eq!(gw.introspect("dpi", &t.access).await, json!({ "active": false }));
    sid
}

/// The claims of a logout token, verified against the gateway's JWKS (Back-Channel Logout §2.4).
async fn logout_token_claims(gw: &Gateway, token: &str) -> Value {
    assert_eq!(jwt_part(token, 0)["typ"], "logout+jwt", "{token}");
    gw.verify_jwt(token, "dpi", "ES256").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_channel_logout_endpoint_that_fails_or_hangs_leaves_the_logout_complete_and_is_counted_once() {
    let rp = RelyingParty::start(Endpoint::Fails).await;
    let gw = start(&deploy(&rp.uri)).await;

    // An endpoint that answers 500: the user's logout is complete all the same.
    let first = log_in_and_out(&gw).await;
    let failed = eventually(10, || async { (backchannel_count(&gw, "dpi", "failed").await == 1.0).then_some(()) });
    assert!(failed.await.is_some(), "the refused logout token is counted as failed");
    let tokens = rp.tokens();
    assert_eq!(tokens.len(), 1, "one logout token for one session");
    let claims = logout_token_claims(&gw, &tokens[0]).await;
    assert_eq!(claims["sid"], first.as_str(), "{claims}");
    assert_eq!(claims["events"], json!({ "http://schemas.openid.net/event/backchannel-logout": {} }));

    // An endpoint that never answers: the user's logout does not wait for it. The gateway gives up
    // after its HTTP client's timeout (5 s) and counts the failure then: had the logout waited,
    // that count would be in before the user's answer; it is not, in the next few milliseconds.
    *rp.behaviour.lock().expect("behaviour") = Endpoint::Hangs;
    let second = log_in_and_out(&gw).await;
    assert_eq!(backchannel_count(&gw, "dpi", "failed").await, 1.0, "the logout answered before giving up on the RP");
    // Bound: the 5 s timeout, with room for a loaded machine.
    let failed = eventually(20, || async { (backchannel_count(&gw, "dpi", "failed").await == 2.0).then_some(()) });
    assert!(failed.await.is_some(), "the unanswered logout token is counted as failed");
    assert_eq!(backchannel_count(&gw, "dpi", "ok").await, 0.0);

    // No retry: each session's token was sent once, the first one's still once after the
    // second's whole timeout.
    let sids: Vec<Value> = futures_util::future::join_all(rp.tokens().iter().map(|t| logout_token_claims(&gw, t)))
        .await
        .into_iter()
        .map(|c| c["sid"].clone())
        .collect();
    assert_eq!(sids, [json!(first), json!(second)]);
    let log = std::fs::read_to_string(gw.data_dir.join("vigie.log")).expect("vigie.log");
    let warnings: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "back-channel logout was not acknowledged")
        .collect();
    assert_eq!(warnings.len(), 2, "{log}");
    for w in &warnings {
        assert_eq!((w["level"].as_str(), w["fields"]["client"].as_str()), (Some("WARN"), Some("dpi")), "{w}");
    }
    // The logouts themselves are audited, one per session.
    let trail = gw.settled_audit().await;
    let logouts: Vec<&Value> = trail.iter().filter(|l| l["kind"] == "logout").collect();
    assert_eq!(logouts.iter().map(|l| l["sid"].clone()).collect::<Vec<_>>(), [json!(first), json!(second)]);
}
