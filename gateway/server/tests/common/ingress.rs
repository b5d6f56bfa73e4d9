//! The Ingress of the rolling-restart tests: an L7 reverse proxy (actix-web), HTTPS at the front
//! with the demo's certificate, each request routed round-robin to a node that its readiness
//! poll (`cluster::Backend`) finds ready, over plain HTTP to the node's `server.plain_http_listen`
//! with `X-Forwarded-For`, as ingress-nginx does. Upstream connections are kept alive and reused
//! (ingress-nginx's `upstream-keepalive-connections`), idle at most 2 s: below the node's own
//! keep-alive (5 s), so that the proxy never reuses a connection the node is closing. No retry:
//! an upstream error is a 502 the client sees and counts.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::cluster::Backend;

/// Headers of one hop only (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"];

struct Routes {
    backends: Arc<Vec<Backend>>,
    /// The plain-HTTP port of each backend, by index.
    plain: Vec<u16>,
    next: AtomicUsize,
    errors: Arc<AtomicU64>,
}

/// A running Ingress; it stops with the test process.
pub struct Ingress {
    pub port: u16,
    /// Requests answered 502 because the node failed them (connection refused, reset, closed).
    pub upstream_errors: Arc<AtomicU64>,
}

impl Ingress {
    /// Serves HTTPS on `port` with the demo's `tls.crt` / `tls.key` from `dir`.
    pub fn start(port: u16, dir: &std::path::Path, backends: Arc<Vec<Backend>>, plain: Vec<u16>) -> Ingress {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("tls.crt"))
            .expect("the demo's TLS certificate")
            .collect::<Result<_, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).expect("the demo's TLS key");
        let mut tls = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).expect("TLS");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let errors = Arc::new(AtomicU64::new(0));
        let routes = web::Data::new(Routes { backends, plain, next: AtomicUsize::new(0), errors: errors.clone() });
        let server = HttpServer::new(move || {
            // One upstream client per worker: its pooled connections live on the worker's runtime.
            let upstream = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("upstream client");
            App::new().app_data(routes.clone()).app_data(web::Data::new(upstream)).default_service(web::to(forward))
        })
        .workers(2)
        .disable_signals()
        .bind_rustls_0_23(SocketAddr::from(([127, 0, 0, 1], port)), tls)
        .expect("the Ingress's port")
        .run();
        tokio::spawn(server);
        Ingress { port, upstream_errors: errors }
    }
}

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    routes: web::Data<Routes>,
    upstream: web::Data<reqwest::Client>,
) -> HttpResponse {
    let Some(i) = routes.pick() else {
        return HttpResponse::ServiceUnavailable().body("no ready endpoint");
    };
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut r = upstream.request(method, format!("http://127.0.0.1:{}{path}", routes.plain[i]));
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            r = r.header(name.as_str(), value.as_bytes());
        }
    }
    if let Some(peer) = req.peer_addr() {
        r = r.header("x-forwarded-for", peer.ip().to_string());
    }
    let resp = match r.body(body.to_vec()).send().await {
        Ok(resp) => resp,
        Err(e) => {
            routes.errors.fetch_add(1, Ordering::Relaxed);
            return HttpResponse::BadGateway().body(format!("upstream: {e}"));
        }
    };
    let mut out = HttpResponse::build(StatusCode::from_u16(resp.status().as_u16()).expect("status"));
    for (name, value) in resp.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            let pair = (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()));
            if let (Ok(n), Ok(v)) = pair {
                out.append_header((n, v));
            }
        }
    }
    match resp.bytes().await {
        Ok(b) => out.body(b.to_vec()),
        Err(e) => {
            routes.errors.fetch_add(1, Ordering::Relaxed);
            HttpResponse::BadGateway().body(format!("upstream body: {e}"))
        }
    }
}

impl Routes {
    /// The next ready backend in turn.
    fn pick(&self) -> Option<usize> {
        let n = self.backends.len();
        (0..n).map(|_| self.next.fetch_add(1, Ordering::Relaxed) % n).find(|&i| self.backends[i].is_ready())
    }
}
