//! SP metadata by URL (`metadata_url`): fetched over HTTPS when the gateway starts, then again
//! every `metadata_refresh_secs` or sooner when the document's `cacheDuration` or `validUntil`
//! says so (saml-metadata §2.2.1, §4.3), its signature checked with `metadata_cert` when set. A
//! failed fetch keeps the last good copy until its `validUntil` (none: until a fetch succeeds),
//! logs a warning and counts `vigie_saml_metadata_fetch_failures_total`; it never stops Vigie.
//! A document naming another entityID than the SP's (pinned) is such a failure.
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use super::config::{SpConfig, redacted_url};
use super::idp::{Idp, Sp, Validity};

/// Metadata larger than this is refused (an SP's metadata is a few KiB).
const MAX_BYTES: usize = 1 << 20;
/// A failed fetch (or none yet) is tried again after at most this long.
const RETRY: Duration = Duration::from_secs(60);
/// A `cacheDuration` shorter than this is read as this: the SP's document cannot make Vigie
/// fetch it in a loop (the configured `metadata_refresh_secs` is the operator's, and stays).
const MIN_CACHE: Duration = Duration::from_secs(60);

/// The fetched SP of `config` and how long it may be used. Errors name the URL without its
/// credentials or query ([`redacted_url`]): they are logged.
pub async fn fetch(client: &reqwest::Client, config: &SpConfig) -> Result<(Sp, Validity), String> {
    let url = config.metadata_url.as_deref().unwrap_or_default();
    let shown = redacted_url(url);
    let mut resp = client.get(url).send().await.map_err(|e| format!("{shown}: {}", said(e)))?;
    if !resp.status().is_success() {
        return Err(format!("{shown}: HTTP {}", resp.status()));
    }
    // Read in chunks and stopped past the limit: a server that streams without end (or lies in
    // its Content-Length) costs at most MAX_BYTES of memory, not the whole timeout's worth.
    let too_big = || format!("{shown}: more than {MAX_BYTES} bytes, not an SP's metadata");
    if resp.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{shown}: {}", said(e)))? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    let xml = String::from_utf8(body).map_err(|_| format!("{shown}: not UTF-8"))?;
    Sp::from_metadata(config, xml).map_err(|e| format!("{shown}: {e}"))
}

/// reqwest's error and its causes, without the URL reqwest puts in its message (it may carry
/// credentials, or a token in its query).
fn said(e: reqwest::Error) -> String {
    use std::error::Error;
    let e = e.without_url();
    let mut said = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        said = format!("{said}: {s}");
        source = s.source();
    }
    said
}

/// The HTTPS client for `config`'s URL: `metadata_ca_file` or the system's roots, no redirects
/// (the metadata is at the URL configured), short timeouts.
pub fn client(config: &SpConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true);
    if let Some(ca) = &config.metadata_ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read metadata_ca_file {ca:?}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| format!("metadata_ca_file {ca:?}: expected PEM certificates"))?;
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(|e| format!("the metadata client: {e}"))
}

/// When to fetch again after a good copy: the configured interval, sooner for `cacheDuration`
/// (never under [`MIN_CACHE`]) or `validUntil`, never more often than every second.
fn next(config: &SpConfig, validity: &Validity) -> Duration {
    let mut wait = Duration::from_secs(config.metadata_refresh_secs.unwrap_or(3600).max(1));
    if let Some(cache) = validity.cache {
        wait = wait.min(cache.max(MIN_CACHE));
    }
    if let Some(until) = validity.until {
        let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
        wait = wait.min(left / 2);
    }
    wait.max(Duration::from_secs(1))
}

/// Keeps the SP of `config` up to date in `idp` while the gateway lives. `pinned` is the
/// entityID every document must name: the configured `entity_id`, else that of the first good
/// fetch (at start, or here).
pub async fn keep(
    idp: Weak<RwLock<Arc<Idp>>>,
    config: SpConfig,
    mut validity: Option<Validity>,
    mut pinned: Option<String>,
) {
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(client = %config.client_id, error = %e, "SAML SP metadata_url cannot be fetched");
            return;
        }
    };
    loop {
        let wait = validity.as_ref().map_or(RETRY, |v| next(&config, v));
        tokio::time::sleep(wait).await;
        let Some(shared) = idp.upgrade() else { return };
        let fetched = fetch(&client, &config).await.and_then(|(sp, fresh)| {
            let entity_id = sp.entity_id.clone();
            let mut current = shared.write().unwrap_or_else(|e| e.into_inner());
            let adopted = current.with_fetched(sp, pinned.as_deref().or(config.entity_id.as_deref()));
            *current = Arc::new(adopted.map_err(|e| format!("{}: {e}", redacted_url(url_of(&config))))?);
            Ok((entity_id, fresh))
        });
        match fetched {
            Ok((entity_id, fresh)) => {
                pinned.get_or_insert(entity_id);
                validity = Some(fresh);
            }
            Err(e) => {
                failed(&config, &e);
                let expired = validity.and_then(|v| v.until).is_some_and(|u| u <= chrono::Utc::now());
                if expired {
                    // saml-metadata §2.2.1: past validUntil the copy may no longer be used.
                    let mut current = shared.write().unwrap_or_else(|e| e.into_inner());
                    let mut without = (**current).clone();
                    without.sps.retain(|s| s.config.client_id != config.client_id);
                    *current = Arc::new(without);
                }
                validity = validity.filter(|_| !expired).map(|v| Validity { cache: Some(RETRY), ..v });
            }
        }
    }
}

fn url_of(config: &SpConfig) -> &str {
    config.metadata_url.as_deref().unwrap_or_default()
}

/// A fetch that gave no usable document: counted and logged (the reason names the URL
/// redacted), the last good copy kept.
pub fn failed(config: &SpConfig, error: &str) {
    metrics::counter!("vigie_saml_metadata_fetch_failures_total", "client" => config.client_id.clone()).increment(1);
    tracing::warn!(client = %config.client_id, error = %error,
        "SAML SP metadata not fetched or refused: the last good copy is kept until its validUntil");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn sp(url: &str) -> SpConfig {
        SpConfig {
            metadata: String::new(),
            metadata_url: Some(url.into()),
            metadata_ca_file: None,
            metadata_refresh_secs: None,
            entity_id: None,
            client_id: "lab".into(),
            nameid: "persistent".into(),
            attributes: Vec::new(),
            require_signed_requests: false,
            metadata_cert: None,
            encrypt_assertions: false,
            encryption_cert: None,
        }
    }

    /// A plain-HTTP client for the local test servers (the real one is https-only).
    fn plain() -> reqwest::Client {
        reqwest::Client::builder().build().expect("a client")
    }

    #[tokio::test]
    async fn a_metadata_server_that_streams_without_end_is_cut_past_1_mib() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("address").port();
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("the fetch connects");
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request).await;
            let head =
                b"HTTP/1.1 200 OK\r\nContent-Type: application/samlmetadata+xml\r\nTransfer-Encoding: chunked\r\n\r\n";
            conn.write_all(head).await.expect("the head");
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            // Without end, until the reader hangs up.
            while conn.write_all(chunk.as_bytes()).await.is_ok() {
                counted.fetch_add(0x10000, Ordering::Relaxed);
            }
        });
        let config = sp(&format!("http://127.0.0.1:{port}/metadata"));
        let fetched = tokio::time::timeout(Duration::from_secs(10), fetch(&plain(), &config))
            .await
            .expect("the fetch ends by itself, long before the client's timeout");
        let said = fetched.err().expect("refused");
        assert!(said.contains(&format!("more than {MAX_BYTES} bytes")), "{said}");
        tokio::time::timeout(Duration::from_secs(10), server).await.expect("the server sees the hang-up").ok();
        // What was read is 1 MiB and what the socket buffers held, not the server's endless flow.
        let total = sent.load(Ordering::Relaxed);
        assert!((MAX_BYTES..16 * MAX_BYTES).contains(&total), "{total} bytes sent before the hang-up");
    }

    #[tokio::test]
    async fn metadata_url_credentials_and_query_never_appear_in_errors() {
        // Nothing listens on port 1: the fetch fails, and says where, without the secrets.
        let config = sp("http://metadata-user:s3cret-pw@127.0.0.1:1/md?token=t0ken-value");
        let said = fetch(&plain(), &config).await.err().expect("nothing listens there");
        for secret in ["metadata-user", "s3cret-pw", "t0ken-value"] {
            assert!(!said.contains(secret), "{secret} in {said}");
        }
        assert!(said.contains("http://***@127.0.0.1:1/md?***"), "{said}");
        assert_eq!(redacted_url("https://lab.chu.example/md"), "https://lab.chu.example/md");
        assert_eq!(redacted_url("https://u@lab.chu.example/md?a=b#c"), "https://***@lab.chu.example/md?***");
        assert_eq!(redacted_url("not a url"), "(not a URL)");
    }

    #[test]
    fn a_cache_duration_cannot_bring_the_refresh_under_a_minute() {
        let cache = |secs| Validity { until: None, cache: Some(Duration::from_secs(secs)) };
        let default = sp("https://lab.chu.example/md");
        assert_eq!(next(&default, &cache(1)), MIN_CACHE, "PT1S from the SP is read as a minute");
        assert_eq!(next(&default, &cache(600)), Duration::from_secs(600));
        assert_eq!(next(&default, &Validity::default()), Duration::from_secs(3600));
        // The operator's own interval stays theirs.
        let often = SpConfig { metadata_refresh_secs: Some(2), ..default };
        assert_eq!(next(&often, &cache(1)), Duration::from_secs(2));
    }
}
