//! SP metadata by URL (`metadata_url`): fetched over HTTPS when the gateway starts, then again
//! every `metadata_refresh_secs` or sooner when the document's `cacheDuration` or `validUntil`
//! says so (saml-metadata §2.2.1, §4.3), its signature checked with `metadata_cert` when set. A
//! failed fetch keeps the last good copy until its `validUntil` (none: until a fetch succeeds),
//! logs a warning and counts `vigie_saml_metadata_fetch_failures_total`; it never stops Vigie.
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use super::config::SpConfig;
use super::idp::{Idp, Sp, Validity};

/// Metadata larger than this is refused (an SP's metadata is a few KiB).
const MAX_BYTES: usize = 1 << 20;
/// A failed fetch (or none yet) is tried again after at most this long.
const RETRY: Duration = Duration::from_secs(60);

/// The fetched SP of `config` and how long it may be used.
pub async fn fetch(client: &reqwest::Client, config: &SpConfig) -> Result<(Sp, Validity), String> {
    let url = config.metadata_url.as_deref().unwrap_or_default();
    let resp = client.get(url).send().await.map_err(|e| format!("{url}: {}", without_url(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| format!("{url}: {}", without_url(&e)))?;
    if body.len() > MAX_BYTES {
        return Err(format!("{url}: more than {MAX_BYTES} bytes, not an SP's metadata"));
    }
    let xml = String::from_utf8(body.to_vec()).map_err(|_| format!("{url}: not UTF-8"))?;
    Sp::from_metadata(config, xml).map_err(|e| format!("{url}: {e}"))
}

fn without_url(e: &reqwest::Error) -> String {
    use std::error::Error;
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
/// or `validUntil`, never more often than every few seconds.
fn next(config: &SpConfig, validity: &Validity) -> Duration {
    let mut wait = Duration::from_secs(config.metadata_refresh_secs.unwrap_or(3600).max(1));
    if let Some(cache) = validity.cache {
        wait = wait.min(cache);
    }
    if let Some(until) = validity.until {
        let left = (until - chrono::Utc::now()).to_std().unwrap_or_default();
        wait = wait.min(left / 2);
    }
    wait.max(Duration::from_secs(1))
}

/// Keeps the SP of `config` (the `index`th) up to date in `idp` while the gateway lives.
pub async fn keep(idp: Weak<RwLock<Arc<Idp>>>, config: SpConfig, mut validity: Option<Validity>) {
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
        match fetch(&client, &config).await {
            Ok((sp, fresh)) => {
                let mut current = shared.write().unwrap_or_else(|e| e.into_inner());
                *current = Arc::new(current.with_sp(sp));
                validity = Some(fresh);
            }
            Err(e) => {
                metrics::counter!("vigie_saml_metadata_fetch_failures_total", "client" => config.client_id.clone())
                    .increment(1);
                let expired = validity.and_then(|v| v.until).is_some_and(|u| u <= chrono::Utc::now());
                if expired {
                    // saml-metadata §2.2.1: past validUntil the copy may no longer be used.
                    let mut current = shared.write().unwrap_or_else(|e| e.into_inner());
                    let mut without = (**current).clone();
                    without.sps.retain(|s| s.config.client_id != config.client_id);
                    *current = Arc::new(without);
                }
                tracing::warn!(client = %config.client_id, error = %e, expired,
                    "SAML SP metadata not fetched: the last good copy is kept until its validUntil");
                validity = validity.filter(|_| !expired).map(|v| Validity { cache: Some(RETRY), ..v });
            }
        }
    }
}
