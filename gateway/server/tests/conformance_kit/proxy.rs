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
}

/// What the running proxy breaks, changed between runs.
pub type Switch = Arc<std::sync::Mutex<Faults>>;

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
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).expect("a server config"),
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
