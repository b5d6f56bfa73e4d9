//! The DMP SOAP relay: one mutual-TLS client (the establishment's ORG_AUTH_CLI certificate,
//! EX_GEN-1450 / EX_AIR-080) that POSTs a SOAP 1.2 call to `<base_url><service>` and hands back
//! the answer unread, for streaming: vigie-core's `SoapRelay` port.

use std::time::{Duration, Instant};

use async_trait::async_trait;
pub use vigie_core::dmp::RelayError;
use vigie_core::dmp::{RelayAnswer, SoapRelay};

/// A service path segment the relay may name under the DMP's base URL: letters, digits, `_`,
/// `-`, `.`, not starting with a `.` (so neither `.` nor `..`), at most 64 bytes.
pub fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Connection to the DMP: cheap to clone (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct DmpRelay {
    base_url: String,
    client: reqwest::Client,
}

/// How long one read of the answer may wait: DMP searches can take seconds.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

impl DmpRelay {
    /// `base_url` like `https://lps.dev1.dmp.gouv.fr/si-dmp-server/v2/services/` (HTTPS only: the DMP
    /// requires mutual TLS); the client certificate and key in PEM (key PKCS#8 or PKCS#1), with the
    /// chain after the certificate if the DMP needs it; `extra_ca_pem` trusted besides the system
    /// roots (the IGC-Santé server CA); `timeout_ms` bounds connecting (TCP + TLS), `deadline_ms`
    /// the whole call, from connecting to the answer's last byte.
    pub fn new(
        base_url: &str,
        client_cert_pem: &str,
        client_key_pem: &str,
        extra_ca_pem: Option<&str>,
        timeout_ms: u64,
        deadline_ms: u64,
    ) -> Result<Self, RelayError> {
        let url =
            reqwest::Url::parse(base_url).map_err(|e| RelayError::Config(format!("base_url {base_url:?}: {e}")))?;
        if url.scheme() != "https" {
            return Err(RelayError::Config(format!("base_url {base_url:?} must be https (mutual TLS)")));
        }
        let identity = reqwest::Identity::from_pem(format!("{client_cert_pem}\n{client_key_pem}").as_bytes())
            .map_err(|e| RelayError::Config(format!("client certificate and key are not a usable PEM pair: {e}")))?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(timeout_ms))
            .read_timeout(READ_TIMEOUT)
            .timeout(Duration::from_millis(deadline_ms))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .identity(identity)
            .user_agent(concat!("vigie-dmp/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| RelayError::Config(format!("extra CA is not a PEM certificate bundle: {e}")))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let client = b.build().map_err(|e| RelayError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut base_url = url.to_string();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Ok(DmpRelay { base_url, client })
    }

    /// POSTs `body` to `<base_url><service>`. SOAP 1.2 has no `SOAPAction` header: the action is the
    /// `action` parameter of the content type (RFC 3902 §6.5), added here when the caller's content
    /// type lacks it. Any HTTP status is an answer (a SOAP fault comes with 500); only transport
    /// failures (the deadline included) are errors. Timed in `vigie_upstream_request_seconds{upstream="dmp",op="soap"}`
    /// (until the answer's headers), failures counted in `vigie_upstream_errors_total`.
    pub async fn send(
        &self,
        service: &str,
        content_type: &str,
        soap_action: Option<&str>,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, RelayError> {
        if !is_service_name(service) {
            return Err(RelayError::Service(service.to_string()));
        }
        let content_type = with_action(content_type, soap_action)?;
        let started = Instant::now();
        let result = self
            .client
            .post(format!("{}{}", self.base_url, service))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await;
        metrics::histogram!("vigie_upstream_request_seconds", "upstream" => "dmp", "op" => "soap")
            .record(started.elapsed().as_secs_f64());
        result.map_err(|e| {
            metrics::counter!("vigie_upstream_errors_total", "upstream" => "dmp", "op" => "soap").increment(1);
            let e = transport(&e);
            tracing::warn!(service, error = %e, "DMP call failed");
            e
        })
    }
}

#[async_trait]
impl SoapRelay for DmpRelay {
    async fn send(&self, service: &str, content_type: &str, body: Vec<u8>) -> Result<Box<dyn RelayAnswer>, RelayError> {
        let answer = DmpRelay::send(self, service, content_type, None, body).await?;
        Ok(Box::new(Answer(answer)))
    }
}

/// The DMP's answer as reqwest receives it.
struct Answer(reqwest::Response);

#[async_trait]
impl RelayAnswer for Answer {
    fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    fn content_type(&self) -> Option<String> {
        self.0.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from)
    }

    fn content_length(&self) -> Option<u64> {
        self.0.content_length()
    }

    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, RelayError> {
        // A timeout here is the call's deadline.
        self.0.chunk().await.map(|c| c.map(Vec::from)).map_err(|e| transport(&e))
    }
}

/// A transport failure: the deadline, or the DMP out of reach.
fn transport(e: &reqwest::Error) -> RelayError {
    let detail = vigie_core::error_chain(e);
    if e.is_timeout() { RelayError::Timeout(detail) } else { RelayError::Unreachable(detail) }
}

/// The content type with `action="…"` when the caller gave an action and the type has none.
pub fn with_action(content_type: &str, soap_action: Option<&str>) -> Result<String, RelayError> {
    let Some(action) = soap_action.filter(|a| !a.is_empty()) else {
        return Ok(content_type.to_string());
    };
    if action.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(RelayError::Action(action.to_string()));
    }
    let has_action = crate::envelope::parse_media_type(content_type)
        .map(|(_, p)| p.iter().any(|(k, _)| k == "action"))
        .unwrap_or(false);
    if has_action {
        Ok(content_type.to_string())
    } else {
        Ok(format!("{}; action=\"{action}\"", content_type.trim_end_matches([' ', ';'])))
    }
}
