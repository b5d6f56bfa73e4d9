//! The network edge against the real binary: who the client is behind a proxy, what the
//! plain-HTTP and ops listeners serve, and that a card login needs a handshake in which the
//! card signed.
use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Opens the login page of a new flow for `client` (without any forwarded header: the page offers
/// what the test's own address may use) and posts the password form with `forwarded_for` as
/// `X-Forwarded-For` lines.
async fn password_login_through(gw: &Gateway, user: &User, password: &str, totp: &str, forwarded_for: &[&str]) -> Resp {
    let mut b = gw.browser();
    let r = b.authorize(&Authz::new(gw, "demo-app")).await;
    let page = b.get(&r.location()).await;
    let (flow, csrf) = (page.hidden("flow").expect("flow"), page.hidden("csrf").expect("csrf"));
    let mut req = b.http.post(gw.url("/login/password")).form(&[
        ("flow", flow.as_str()),
        ("csrf", &csrf),
        ("username", &user.username),
        ("password", password),
        ("totp", totp),
    ]);
    for line in forwarded_for {
        req = req.header("x-forwarded-for", *line);
    }
    b.send(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_client_cannot_pass_for_internal_by_writing_x_forwarded_for() {
    // The test is the proxy (127.0.0.1), which appends the real client (203.0.113.7) to what the
    // client wrote. Password + TOTP is refused on the demo app from outside the internal zones.
    let gw = Gateway::start(&[("VIGIE_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#)]).await;
    for lines in [&["10.1.2.3, 203.0.113.7"][..], &["10.1.2.3", "203.0.113.7"], &["10.1.2.3", "203.0.113.7, 127.0.0.1"]]
    {
        let (user, totp) = gw.any_user_totp(&gw.all_usernames()).await;
        let r = password_login_through(&gw, &user, &user.password, &totp, lines).await;
        assert_eq!(r.status, 403, "{lines:?}: the client is 203.0.113.7, outside: {}", r.body);
        let request_id = r.header("x-request-id").expect("request id").to_owned();
        gw.audit_line(|l| {
            l["kind"] == "policy_decision"
                && l["request_id"] == request_id.as_str()
                && l["ip"] == "203.0.113.7"
                && l["reason"].as_str().is_some_and(|r| r.contains("zone external"))
        })
        .await;
    }
    // A proxy of ours in front of the client: still the client. Garbage where the client should
    // be: the proxy's own address, not a guess.
    let user = gw.user("demo.interne").clone();
    for (lines, ip) in [(&["203.0.113.7, 127.0.0.1"][..], "203.0.113.7"), (&["203.0.113.7, unknown"], "127.0.0.1")] {
        let r = password_login_through(&gw, &user, "not-the-password", "000000", lines).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let request_id = r.header("x-request-id").expect("request id").to_owned();
        gw.audit_line(|l| l["kind"] == "login" && l["request_id"] == request_id.as_str() && l["ip"] == ip).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_client_has_one_attempt_budget_per_64() {
    let gw = Gateway::start(&[
        ("VIGIE_SERVER__TRUSTED_PROXIES", r#"["127.0.0.1"]"#),
        ("VIGIE_LOGIN__MAX_ATTEMPTS_PER_IP", "2"),
    ])
    .await;
    let user = gw.user("demo.interne").clone();
    let mut statuses = Vec::new();
    for client in ["2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c", "2001:db8:1:3::a"] {
        statuses.push(password_login_through(&gw, &user, "not-the-password", "000000", &[client]).await.status);
    }
    assert_eq!(statuses, [401, 401, 429, 401], "the third address of one /64 is over the budget; another /64 is not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_port_serves_the_proxies_only() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for (proxies, status) in [(r#"["10.0.0.10"]"#, 403), (r#"["10.0.0.0/8", "127.0.0.0/8"]"#, 200)] {
        let gw = Gateway::start(&[
            ("VIGIE_SERVER__PLAIN_HTTP_LISTEN", listen.as_str()),
            ("VIGIE_SERVER__TRUSTED_PROXIES", proxies),
        ])
        .await;
        let r =
            Resp::of(http.get(format!("http://{listen}/.well-known/openid-configuration")).send().await.unwrap()).await;
        assert_eq!(r.status, status, "trusted {proxies}: {}", r.body);
        if status == 403 {
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert!(r.body.contains("connect over HTTPS"), "{}", r.body);
        } else {
            assert_eq!(r.json()["issuer"], gw.issuer.as_str());
        }
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_ops_listener_readiness_and_metrics_leave_the_public_port() {
    let ops = format!("127.0.0.1:{}", free_port());
    let gw = Gateway::start(&[("VIGIE_SERVER__OPS_LISTEN", ops.as_str())]).await;
    let mut b = gw.browser();
    assert_eq!(b.get("/healthz").await.status, 200);
    assert_eq!(b.get("/readyz").await.status, 404);
    assert_eq!(b.get("/metrics").await.status, 404);
    assert!(!b.get("/").await.body.contains("/readyz"), "the home page does not point at it");
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{ops}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = Resp::of(get("/readyz").await.unwrap()).await;
    assert_eq!((ready.status, ready.json()["status"].clone()), (200, "ready".into()), "{}", ready.body);
    let metrics = Resp::of(get("/metrics").await.unwrap()).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("vigie_http_requests_total"), "{}", metrics.body);
    assert_eq!(get("/authorize").await.unwrap().status(), 404, "nothing else is on the ops port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_demo_app_its_routes_do_not_exist() {
    let gw = Gateway::start(&[("VIGIE_DEMO__APP", "false")]).await;
    let mut b = gw.browser();
    assert_eq!(b.get("/demo-app/").await.status, 404);
    let r = b.post_form("/demo-app/backchannel-logout", &[("logout_token", "x")]).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

/// A card in its reader: the certificate and key the middleware signs with once the PIN is
/// typed. `inserted` false: the card is out, nothing is offered when the server asks.
#[derive(Debug)]
struct CardReader {
    card: Arc<rustls::sign::CertifiedKey>,
    inserted: AtomicBool,
}

impl rustls::client::ResolvesClientCert for CardReader {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.inserted.load(Ordering::SeqCst).then(|| self.card.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl CardReader {
    fn new(gw: &Gateway, username: &str) -> CardReader {
        let user = gw.demo["users"].as_array().and_then(|u| u.iter().find(|u| u["username"] == username));
        let card = &user.expect("demo user")["card"];
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(card["chain_pem"].as_str().unwrap().as_bytes())
                .collect::<Result<_, _>>()
                .expect("card chain");
        let key = PrivateKeyDer::from_pem_slice(card["key_pem"].as_str().unwrap().as_bytes()).expect("card key");
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let signer = provider.key_provider.load_private_key(key).expect("card key usable");
        CardReader { card: Arc::new(rustls::sign::CertifiedKey::new(certs, signer)), inserted: AtomicBool::new(true) }
    }
}

/// One TLS connection with `tls` (whose session cache is shared by its connections, as a
/// browser's is): `GET path` with this browser's cookies. Returns how the handshake went and the
/// response, whose cookies the browser keeps.
fn get_over(tls: &Arc<rustls::ClientConfig>, b: &mut Browser<'_>, path: &str) -> (rustls::HandshakeKind, Resp) {
    let server = ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(tls.clone(), server).expect("TLS client");
    let tcp = TcpStream::connect(("127.0.0.1", b.gw.port)).expect("connect");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let cookie = b.cookie_header().map(|c| format!("cookie: {c}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: localhost:{}\r\n{cookie}connection: close\r\n\r\n", b.gw.port)
        .expect("request");
    let mut raw = Vec::new();
    // Read until the server closes; a close without close_notify ends the read as well.
    let _ = stream.read_to_end(&mut raw);
    let kind = stream.conn.handshake_kind().expect("handshake done");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let mut headers = HeaderMap::new();
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        headers.append(HeaderName::try_from(k.trim()).unwrap(), HeaderValue::from_str(v.trim()).unwrap());
    }
    let resp = Resp { status, headers, body: body.to_owned() };
    b.remember(&resp);
    (kind, resp)
}

/// The flow of a new authorization request of the DPI asking for a fresh login.
async fn fresh_login_flow(b: &mut Browser<'_>) -> String {
    let a = Authz::new(b.gw, "demo-dpi").with("prompt", "login").with("max_age", "0");
    let r = b.authorize(&a).await;
    assert_eq!(r.status, 303, "{}", r.body);
    query_of(&format!("https://x{}", r.location()))["flow"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_tls_session_does_not_log_the_card_in_again() {
    let gw = Gateway::start(&[]).await;
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(gw.demo["ca_pem"].as_str().unwrap().as_bytes()) {
            r.add(c.unwrap()).unwrap();
        }
        Arc::new(r)
    };
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let reader = Arc::new(CardReader::new(&gw, "demo.medecin"));
        // One configuration for every connection: one session cache, as in a browser.
        let tls = Arc::new(
            rustls::ClientConfig::builder_with_protocol_versions(&[version])
                .with_root_certificates(roots.clone())
                .with_client_cert_resolver(reader.clone()),
        );
        let mut b = gw.browser();
        // The card logs in: a full handshake in which it signed.
        let flow = fresh_login_flow(&mut b).await;
        let (kind, done) = get_over(&tls, &mut b, &format!("/login/cps?flow={flow}"));
        assert_eq!(kind, rustls::HandshakeKind::Full, "{version:?}");
        assert!(done.redirect_params().contains_key("code"), "{version:?}: {}", done.location());

        // The card is pulled out; the browser connects again and asks for a fresh login.
        reader.inserted.store(false, Ordering::SeqCst);
        let flow = fresh_login_flow(&mut b).await;
        let (kind, again) = get_over(&tls, &mut b, &format!("/login/cps?flow={flow}"));
        assert_eq!(kind, rustls::HandshakeKind::Full, "{version:?}: the gateway offers no resumption to card readers");
        assert_eq!(again.status, 401, "{version:?}: no card, no login: {}", again.body);
        assert!(again.body.contains("Aucune carte"), "{}", again.body);

        // The card back in, the PIN typed: a full handshake with its signature logs in again.
        reader.inserted.store(true, Ordering::SeqCst);
        let (kind, back) = get_over(&tls, &mut b, &format!("/login/cps?flow={flow}"));
        assert_eq!(kind, rustls::HandshakeKind::Full, "{version:?}");
        assert!(back.redirect_params().contains_key("code"), "{version:?}: {}", back.location());
    }
}
