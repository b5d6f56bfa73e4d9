//! The HTTP clients that talk to PSC (our reqwest 0.13, short timeouts, no redirects, bounded
//! bodies) and their adapter to `openidconnect`'s async HTTP client trait.
use crate::error::{Op, PscError};
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

/// Largest body read from PSC: metadata, keys and tokens are a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// Builds a client; `identity` is the TLS client certificate for `tls_client_auth` (RFC 8705).
pub(crate) fn client(
    timeout_ms: u64,
    extra_ca_pem: Option<&str>,
    allow_http: bool,
    identity: Option<reqwest::Identity>,
) -> Result<reqwest::Client, PscError> {
    let timeout = Duration::from_millis(timeout_ms);
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // Back-channel calls never follow redirects: a redirect could carry the code or the
        // client credentials to another host (RFC 9700 §4.11).
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!allow_http)
        .user_agent(concat!("vigie-psc/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = extra_ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| PscError::Config(format!("extra_ca_pem is not a PEM certificate bundle: {e}")))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().map_err(|e| PscError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Runs one request, reading at most [`MAX_BODY`] bytes of the answer.
pub(crate) async fn send(client: &reqwest::Client, op: Op, req: reqwest::Request) -> Result<HttpResponse, PscError> {
    let unreachable = |e: reqwest::Error| PscError::Unreachable { op, detail: plain(&e) };
    let mut resp = client.execute(req).await.map_err(unreachable)?;
    let out = http_response_builder(resp.status().as_u16(), resp.headers());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(PscError::Unreachable { op, detail: "the answer is larger than 1 MiB".into() });
        }
        body.extend_from_slice(&chunk);
    }
    out.body(body).map_err(|e| PscError::Unreachable { op, detail: e.to_string() })
}

fn http_response_builder(status: u16, headers: &reqwest::header::HeaderMap) -> openidconnect::http::response::Builder {
    let mut b = openidconnect::http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_bytes());
    }
    b
}

/// A reqwest error in words, with its causes (the TLS or connection reason). Back-channel URLs
/// carry no secret (the code and credentials go in bodies and headers).
fn plain(e: &reqwest::Error) -> String {
    let chain = vigie_core::error_chain(e);
    if e.is_timeout() { format!("timed out: {chain}") } else { chain }
}

/// `openidconnect`'s view of our client, for one exchange; remembers the HTTP status seen.
pub(crate) struct OidcHttp<'a> {
    pub(crate) client: &'a reqwest::Client,
    pub(crate) op: Op,
    pub(crate) status: Mutex<Option<u16>>,
}

impl<'a> OidcHttp<'a> {
    pub(crate) fn new(client: &'a reqwest::Client, op: Op) -> Self {
        Self { client, op, status: Mutex::new(None) }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Transport failure seen by `openidconnect`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TransportError(pub(crate) String);

impl<'c> AsyncHttpClient<'c> for OidcHttp<'_> {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let req = reqwest::Request::try_from(openidconnect::http::Request::from_parts(parts, body))
                .map_err(|e| TransportError(e.to_string()))?;
            let resp = send(self.client, self.op, req).await.map_err(|e| TransportError(e.to_string()))?;
            *self.status.lock().unwrap_or_else(|p| p.into_inner()) = Some(resp.status().as_u16());
            Ok(resp)
        })
    }
}
