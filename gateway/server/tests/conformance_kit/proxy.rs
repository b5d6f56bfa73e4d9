//! A deliberately broken target for the kit's can-fail proofs: a TLS proxy in front of the real
//! gateway (the demo's certificate, the gateway's issuer set to the proxy's address) that alters
//! some requests and answers the way a faulty provider would.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};

/// What the proxy breaks.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    /// The end-session endpoint redirects to whatever `post_logout_redirect_uri` it is given,
    /// adding a state when none was sent, and ends nothing (an open redirect that forgets logout).
    pub open_logout: bool,
    /// The authorization request's `claims` parameter is dropped (essential claims ignored).
    pub drop_claims: bool,
    /// `iss` is removed from the authorization response (RFC 9207 not implemented).
    pub drop_iss: bool,
    /// `HttpOnly` is removed from every cookie.
    pub cookies_not_httponly: bool,
    // OIDC checks (broken_oidc.rs)
    /// The discovery document lacks `code_challenge_methods_supported`.
    pub discovery_without_pkce: bool,
    /// The authorization request's `nonce` is dropped (the ID token carries none).
    pub drop_nonce: bool,
    /// A byte of every ID token's signature in the token endpoint's answers is changed.
    pub id_token_bad_signature: bool,
    /// UserInfo by GET answers for another `sub`.
    pub userinfo_get_other_sub: bool,
    /// UserInfo refuses the access token in a form body (it reads the header only).
    pub userinfo_refuses_post_body: bool,
    /// `prompt` is dropped from the authorization request (a login page instead of an error).
    pub ignore_prompt: bool,
    /// `max_age` is dropped from the authorization request (the session is reused however old).
    pub ignore_max_age: bool,
    /// An authorization request the gateway refuses with an error page is redirected to its
    /// `redirect_uri` with the error instead, registered or not (RFC 6749 §4.1.2.1 forbids it).
    pub errors_to_any_redirect_uri: bool,
    /// The refresh grant answers the refresh token it was given (no rotation).
    pub refresh_not_rotated: bool,
    /// The refresh grant answers the access token issued with the refresh token it was given.
    pub refresh_same_access_token: bool,
    /// PKCE not checked: the proxy swaps every challenge and verifier for one pair of its own,
    /// so any `code_verifier` redeems the code.
    pub pkce_not_checked: bool,
    /// Every `code_verifier` swapped for the proxy's, the challenge left alone: the token
    /// endpoint refuses the right verifier.
    pub valid_verifier_refused: bool,
    // security and VIHF checks (broken_security.rs)
    /// A code redeemed without `code_verifier` gets a 200 token answer (PKCE downgrade let through).
    pub pkce_verifier_ignored: bool,
    /// A refresh token presented again gets the answer of its first use (no rotation, no replay
    /// detection).
    pub refresh_replay_answered: bool,
    /// An unsigned (`alg` `none`) `id_token_hint` is trusted at logout: redirected as accepted.
    pub alg_none_hint_trusted: bool,
    /// The VIHF of a token exchange has one attribute value changed after it was signed.
    pub vihf_value_altered: bool,
    /// The VIHF of a token exchange gets a second `Subject` wrapped in a `ds:Object` of its
    /// signature (which the enveloped signature does not cover: signature wrapping).
    pub vihf_second_subject: bool,
    /// The VIHF of a token exchange gets a second professional's name (XSPA `subject-id`) in an
    /// `AttributeStatement` wrapped the same way.
    pub vihf_second_subject_id: bool,
}

/// What the running proxy breaks, changed between runs.
pub type Switch = Arc<std::sync::Mutex<Faults>>;

/// A gateway on the demo whose issuer is a proxy in front of it (breaking nothing yet): the
/// gateway, the issuer, the proxy's switch.
pub async fn gateway_behind() -> (crate::common::Gateway, String, Switch) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy's port");
    let issuer = format!("https://localhost:{}", listener.local_addr().expect("an address").port());
    let gw = crate::common::Gateway::start(&[("VIGIE_ISSUER", &issuer)]).await;
    let switch = start(listener, gw.port, &gw.data_dir, gw.demo["ca_pem"].as_str().expect("the CA"));
    (gw, issuer, switch)
}

/// Listens on `listener` (127.0.0.1) and forwards to the gateway on `upstream`, one thread per
/// connection, one request per connection (`connection: close` both ways); breaks nothing until
/// the returned switch says so.
pub fn start(listener: TcpListener, upstream: u16, data_dir: &std::path::Path, ca_pem: &str) -> Switch {
    let switch = Switch::default();
    let faults = switch.clone();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(data_dir.join("tls.crt"))
        .expect("the demo's TLS certificate")
        .collect::<Result<_, _>>()
        .expect("PEM");
    let key = PrivateKeyDer::from_pem_file(data_dir.join("tls.key")).expect("the demo's TLS key");
    let server = Arc::new(
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(Arc::new(AnyCard::default()))
            .with_single_cert(chain, key)
            .expect("a server config"),
    );
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("the demo's CA")).expect("a root");
    }
    let client = Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    std::thread::spawn(move || {
        for inbound in listener.incoming().flatten() {
            let (server, client) = (server.clone(), client.clone());
            let faults = *faults.lock().unwrap_or_else(|e| e.into_inner());
            std::thread::spawn(move || {
                let _ = serve(inbound, server, client, upstream, faults);
            });
        }
    });
    switch
}

fn serve(
    inbound: TcpStream,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    upstream: u16,
    faults: Faults,
) -> std::io::Result<()> {
    inbound.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut tls =
        rustls::StreamOwned::new(rustls::ServerConnection::new(server).map_err(std::io::Error::other)?, inbound);
    let request = read_request(&mut tls)?;
    let request = oidc_request(&faults, request);
    let (head, body) = split(&request);
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default().to_owned();
    let mut parts = first.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let url = url::Url::parse("https://proxy").and_then(|b| b.join(&target)).expect("a request target");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if let Some(answer) = oidc_instead(&faults, method, &url).or_else(|| security_answer(&faults, method, &url, body)) {
        tls.write_all(&answer)?;
        return tls.flush();
    }

    if faults.open_logout && url.path() == "/logout" && method == "GET" {
        let to = query.iter().find(|(k, _)| k == "post_logout_redirect_uri").map(|(_, v)| v.clone());
        if let Some(to) = to {
            let mut u = url::Url::parse(&to).expect("a URL");
            let state = query.iter().find(|(k, _)| k == "state").map_or("injected".to_owned(), |(_, v)| v.clone());
            u.query_pairs_mut().append_pair("state", &state);
            let answer =
                format!("HTTP/1.1 303 See Other\r\nlocation: {u}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            tls.write_all(answer.as_bytes())?;
            return tls.flush();
        }
    }
    let mut target = target;
    if faults.drop_claims && url.path() == "/authorize" {
        let mut u = url.clone();
        u.query_pairs_mut().clear().extend_pairs(query.iter().filter(|(k, _)| k != "claims"));
        target = format!("{}?{}", u.path(), u.query().unwrap_or_default());
    }
    let mut out = format!("{method} {target} {version}\r\n");
    for l in lines.filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
        out.push_str(l);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    let client = card_client(&tls, upstream).unwrap_or(client);
    let mut up = rustls::StreamOwned::new(
        rustls::ClientConnection::new(client, ServerName::try_from("localhost").expect("a name"))
            .map_err(std::io::Error::other)?,
        TcpStream::connect(("127.0.0.1", upstream))?,
    );
    up.write_all(out.as_bytes())?;
    up.write_all(body)?;
    up.flush()?;
    let mut answer = Vec::new();
    // The gateway closes after answering (connection: close); a TLS close without close_notify
    // still ends the answer.
    let _ = up.read_to_end(&mut answer);
    let answer = oidc_answer(&faults, method, &url, body, answer);
    let answer = security_altered(&faults, method, &url, body, answer);
    let (head, body) = split(&answer);
    let mut new_head = String::new();
    for l in head.lines() {
        let lower = l.to_ascii_lowercase();
        let mut l = l.to_owned();
        if faults.drop_iss && lower.starts_with("location:") && l.contains("code=") {
            let value = l.split_once(':').map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
            if let Ok(mut u) = url::Url::parse(&value) {
                let kept: Vec<(String, String)> = u.query_pairs().into_owned().filter(|(k, _)| k != "iss").collect();
                u.query_pairs_mut().clear().extend_pairs(kept);
                l = format!("location: {u}");
            }
        }
        if faults.cookies_not_httponly && lower.starts_with("set-cookie:") {
            l = l.split(';').filter(|a| !a.trim().eq_ignore_ascii_case("httponly")).collect::<Vec<_>>().join(";");
        }
        new_head.push_str(&l);
        new_head.push_str("\r\n");
    }
    new_head.push_str("\r\n");
    tls.write_all(new_head.as_bytes())?;
    tls.write_all(body)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()
}

/// A request's head and its `content-length` body.
fn read_request(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let (head, body) = split(&buf);
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(buf);
            }
        }
    }
}

/// The head (without its blank line) and the body of an HTTP message.
fn split(msg: &[u8]) -> (String, &[u8]) {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (String::from_utf8_lossy(&msg[..at]).into_owned(), &msg[at + 4..]),
        None => (String::from_utf8_lossy(msg).into_owned(), &[]),
    }
}

/// The verifier the proxy swaps in under `pkce_not_checked` (RFC 7636 §4.1: 43 to 128 characters).
const PROXY_VERIFIER: &str = "the-proxys-own-code-verifier-for-every-request";

/// The request as the OIDC faults alter it before the gateway reads it: authorization request
/// parameters dropped or swapped, the token request's `code_verifier` swapped.
fn oidc_request(faults: &Faults, request: Vec<u8>) -> Vec<u8> {
    let (head, _) = split(&request);
    let Some(target) = head.lines().next().and_then(|l| l.split(' ').nth(1)).map(str::to_owned) else {
        return request;
    };
    let url = url::Url::parse("https://proxy").and_then(|b| b.join(&target)).expect("a request target");
    let alters_authorize =
        faults.drop_nonce || faults.ignore_prompt || faults.ignore_max_age || faults.pkce_not_checked;
    if url.path() == "/authorize" && alters_authorize {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter_map(|(k, v)| match k.as_str() {
                "nonce" if faults.drop_nonce => None,
                "prompt" if faults.ignore_prompt => None,
                "max_age" if faults.ignore_max_age => None,
                "code_challenge" if faults.pkce_not_checked => {
                    Some((k, vigie_conformance::agent::sha256_b64(PROXY_VERIFIER)))
                }
                _ => Some((k, v)),
            })
            .collect();
        let mut u = url.clone();
        u.query_pairs_mut().clear().extend_pairs(kept);
        let altered = format!("{}?{}", u.path(), u.query().unwrap_or_default());
        let first = head.lines().next().unwrap_or_default();
        return [first.replacen(&target, &altered, 1).as_bytes(), &request[first.len()..]].concat();
    }
    if url.path() == "/token" && (faults.pkce_not_checked || faults.valid_verifier_refused) {
        return with_body(&request, |b| {
            let form = url::form_urlencoded::parse(b).into_owned().map(|(k, v)| match k.as_str() {
                "code_verifier" => (k, PROXY_VERIFIER.to_owned()),
                _ => (k, v),
            });
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish().into_bytes()
        });
    }
    request
}

/// The answer the proxy gives itself, without asking the gateway, under an OIDC fault.
fn oidc_instead(faults: &Faults, method: &str, url: &url::Url) -> Option<Vec<u8>> {
    if faults.userinfo_refuses_post_body && method == "POST" && url.path() == "/userinfo" {
        // RFC 6750 §3.1: what a provider reading only the Authorization header answers.
        let answer = "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer error=\"invalid_request\"\r\n\
                      content-length: 0\r\nconnection: close\r\n\r\n";
        return Some(answer.as_bytes().to_vec());
    }
    None
}

/// Token answers the proxy saw under `refresh_same_access_token`: refresh token → the access
/// token issued with it (tokens are random, so tests sharing the binary do not collide).
static ISSUED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The gateway's answer as the OIDC faults alter it.
fn oidc_answer(faults: &Faults, method: &str, url: &url::Url, request_body: &[u8], answer: Vec<u8>) -> Vec<u8> {
    let status = split(&answer).0.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or_default();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(request_body).into_owned().collect();
    let sent = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let token_faults = faults.id_token_bad_signature || faults.refresh_not_rotated || faults.refresh_same_access_token;
    match (method, url.path()) {
        ("GET", "/.well-known/openid-configuration") if faults.discovery_without_pkce => with_json(&answer, |d| {
            d.as_object_mut().map(|d| d.remove("code_challenge_methods_supported"));
        }),
        ("POST", "/token") if status == 200 && token_faults => with_json(&answer, |t| {
            if faults.id_token_bad_signature
                && let Some(id) = t["id_token"].as_str()
            {
                t["id_token"] = serde_json::Value::from(with_signature_byte_changed(id));
            }
            let refresh = sent("refresh_token").filter(|_| sent("grant_type").as_deref() == Some("refresh_token"));
            if faults.refresh_same_access_token {
                let mut issued = ISSUED.lock().unwrap_or_else(|e| e.into_inner());
                let earlier =
                    refresh.as_ref().and_then(|r| issued.iter().find(|(k, _)| k == r)).map(|(_, a)| a.clone());
                if let Some(a) = earlier {
                    t["access_token"] = serde_json::Value::from(a);
                }
                if let (Some(r), Some(a)) = (t["refresh_token"].as_str(), t["access_token"].as_str()) {
                    issued.push((r.to_owned(), a.to_owned()));
                }
            }
            if let Some(r) = refresh.filter(|_| faults.refresh_not_rotated) {
                t["refresh_token"] = serde_json::Value::from(r);
            }
        }),
        ("GET", "/userinfo") if faults.userinfo_get_other_sub && status == 200 => with_json(&answer, |u| {
            u["sub"] = serde_json::Value::from("someone-else");
        }),
        ("GET", "/authorize") if faults.errors_to_any_redirect_uri && status == 400 => {
            let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            let Some((_, to)) = q.iter().find(|(k, _)| k == "redirect_uri") else { return answer };
            let Ok(mut to) = url::Url::parse(to) else { return answer };
            to.query_pairs_mut().append_pair("error", "invalid_request");
            if let Some((_, s)) = q.iter().find(|(k, _)| k == "state") {
                to.query_pairs_mut().append_pair("state", s);
            }
            format!("HTTP/1.1 303 See Other\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .into_bytes()
        }
        _ => answer,
    }
}

/// A JWS (compact form) with one character of its signature changed: still well-formed, no
/// longer the signer's.
fn with_signature_byte_changed(jws: &str) -> String {
    let dot = jws.rfind('.').expect("a compact JWS");
    let at = dot + 1 + (jws.len() - dot - 1) / 2;
    let mut s = jws.to_owned();
    let now = &s[at..at + 1];
    let other = if now == "A" { "B" } else { "A" };
    s.replace_range(at..at + 1, other);
    s
}

/// `msg` with its JSON body altered by `f` (unchanged when the body is not JSON).
fn with_json(msg: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    with_body(msg, |b| match serde_json::from_slice::<serde_json::Value>(b) {
        Ok(mut v) => {
            f(&mut v);
            serde_json::to_vec(&v).expect("JSON")
        }
        Err(_) => b.to_vec(),
    })
}

/// An HTTP message (request or answer) with its body replaced by `f(body)` and its
/// `content-length` made to match. Shared by the faults that rewrite bodies.
pub fn with_body(msg: &[u8], f: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let (head, body) = split(msg);
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "the proxy rewrites bodies of known length only: {head}"
    );
    let had_length = head.to_ascii_lowercase().contains("content-length:");
    let body = f(body);
    let mut out = String::new();
    for l in head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("content-length:")) {
        out.push_str(l);
        out.push_str("\r\n");
    }
    if had_length || !body.is_empty() {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

// security and VIHF checks (broken_security.rs)

/// The proxy's inbound side asks for a client certificate and takes any (or none), checking only
/// the handshake signature, as the gateway does: the card is judged upstream ([`card_client`]).
#[derive(Debug)]
struct AnyCard(rustls::crypto::WebPkiSupportedAlgorithms);

impl Default for AnyCard {
    fn default() -> AnyCard {
        AnyCard(rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms)
    }
}

impl rustls::server::danger::ClientCertVerifier for AnyCard {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Per gateway port: the test card's leaf and a client configuration presenting that card.
type Cards = std::collections::BTreeMap<u16, (Vec<u8>, Arc<rustls::ClientConfig>)>;
static CARDS: std::sync::Mutex<Cards> = std::sync::Mutex::new(Cards::new());

/// Lets the proxy in front of the gateway on `upstream` carry a card login: a TLS-terminating hop
/// cannot pass the holder's handshake on, so a client that proved it holds the test card (its
/// leaf, `chain_pem` and `key_pem`) is presented to the gateway with that card.
pub fn carry_card(upstream: u16, ca_pem: &str, chain_pem: &str, key_pem: &str) {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>().expect("the card's chain");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("the card's key");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("the demo's CA")).expect("a root");
    }
    let leaf = chain.first().expect("a card certificate").to_vec();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("a client configuration presenting the card");
    CARDS.lock().unwrap_or_else(|e| e.into_inner()).insert(upstream, (leaf, Arc::new(config)));
}

/// The configuration presenting the test card upstream, when the client presented it here.
fn card_client(
    tls: &rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    upstream: u16,
) -> Option<Arc<rustls::ClientConfig>> {
    let presented = tls.conn.peer_certificates()?.first()?.to_vec();
    let cards = CARDS.lock().unwrap_or_else(|e| e.into_inner());
    cards.get(&upstream).filter(|(leaf, _)| *leaf == presented).map(|(_, config)| config.clone())
}

/// The first answer to each refresh token, for [`Faults::refresh_replay_answered`].
static REFRESH_ANSWERS: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// A request body's form fields.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// An answer of the broken provider's own, without asking the gateway; `None` to forward.
fn security_answer(faults: &Faults, method: &str, url: &url::Url, body: &[u8]) -> Option<Vec<u8>> {
    let token_request = method == "POST" && url.path() == "/token";
    let form = form(body);
    let grant = field(&form, "grant_type");
    if faults.pkce_verifier_ignored
        && token_request
        && grant == Some("authorization_code")
        && field(&form, "code_verifier").is_none()
    {
        // A provider skipping RFC 7636 §4.6 when no verifier comes: it issues tokens anyway.
        let tokens =
            serde_json::json!({"access_token": "issued-without-verifier", "token_type": "Bearer", "expires_in": 300});
        return Some(http("200 OK", &[("content-type", "application/json")], tokens.to_string().as_bytes()));
    }
    if faults.refresh_replay_answered && token_request && grant == Some("refresh_token") {
        let answers = REFRESH_ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(first) = field(&form, "refresh_token").and_then(|t| answers.get(t)) {
            return Some(first.clone());
        }
    }
    if faults.alg_none_hint_trusted && method == "GET" && url.path() == "/logout" {
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let header = field(&q, "id_token_hint").and_then(|h| h.split('.').next()).and_then(|h| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).ok()
        });
        let unsigned = header
            .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
            .is_some_and(|h| h["alg"].as_str().is_some_and(|a| a.eq_ignore_ascii_case("none")));
        if let (true, Some(to)) = (unsigned, field(&q, "post_logout_redirect_uri")) {
            let mut to = url::Url::parse(to).ok()?;
            if let Some(state) = field(&q, "state") {
                to.query_pairs_mut().append_pair("state", state);
            }
            return Some(http("303 See Other", &[("location", to.as_str())], b""));
        }
    }
    None
}

/// The gateway's `answer`, kept for a replay or altered as the faults say.
fn security_altered(faults: &Faults, method: &str, url: &url::Url, body: &[u8], answer: Vec<u8>) -> Vec<u8> {
    if method != "POST" || url.path() != "/token" || !answer.starts_with(b"HTTP/1.1 200") {
        return answer;
    }
    let form = form(body);
    let grant = field(&form, "grant_type");
    if faults.refresh_replay_answered
        && grant == Some("refresh_token")
        && let Some(t) = field(&form, "refresh_token")
    {
        REFRESH_ANSWERS.lock().unwrap_or_else(|e| e.into_inner()).entry(t.to_owned()).or_insert(answer.clone());
    }
    if !(faults.vihf_value_altered || faults.vihf_second_subject || faults.vihf_second_subject_id)
        || grant != Some("urn:ietf:params:oauth:grant-type:token-exchange")
    {
        return answer;
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (head, json) = split(&answer);
    let mut json: serde_json::Value = serde_json::from_slice(json).expect("the exchange answers JSON");
    let vihf = json["access_token"].as_str().expect("a VIHF in the exchange's answer").trim_end_matches('=');
    let mut xml = String::from_utf8(b64.decode(vihf).expect("a base64url VIHF")).expect("UTF-8 XML");
    if faults.vihf_value_altered {
        xml = another_structure(&xml);
    }
    if faults.vihf_second_subject {
        let end = xml.find("</ds:Signature>").expect("the VIHF's signature");
        xml.insert_str(
            end,
            "<ds:Object><saml2:Subject><saml2:NameID>899700000000</saml2:NameID></saml2:Subject></ds:Object>",
        );
    }
    if faults.vihf_second_subject_id {
        let end = xml.find("</ds:Signature>").expect("the VIHF's signature");
        xml.insert_str(
            end,
            "<ds:Object><saml2:AttributeStatement><saml2:Attribute Name=\"urn:oasis:names:tc:xspa:1.0:subject:subject-id\"><saml2:AttributeValue>Autre PROFESSIONNEL</saml2:AttributeValue></saml2:Attribute></saml2:AttributeStatement></ds:Object>",
        );
    }
    json["access_token"] = b64.encode(xml).into();
    let kept: Vec<(&str, &str)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("connection"))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    http("200 OK", &kept, json.to_string().as_bytes())
}

/// The VIHF with its `Identifiant_Structure` value replaced by another structure's, after signing.
fn another_structure(xml: &str) -> String {
    let attr = xml.find("Name=\"Identifiant_Structure\"").expect("the VIHF names its structure");
    let value = attr + xml[attr..].find("AttributeValue").expect("a value");
    let start = value + xml[value..].find('>').expect("the value's tag") + 1;
    let end = start + xml[start..].find('<').expect("the value's end");
    let other: String = xml[start..end].chars().rev().collect();
    let other = if other == xml[start..end] { format!("{other}0") } else { other };
    format!("{}{other}{}", &xml[..start], &xml[end..])
}

/// A whole HTTP/1.1 answer whose `content-length` is its body's.
fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}
