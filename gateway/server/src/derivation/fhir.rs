//! The client of the Annuaire Santé FHIR API v2 (annuaire-sante.md §4): Practitioner searches by
//! identifier or by exercise names, PractitionerRoles `_revinclude`d, `Bundle.link[next]` followed,
//! the API key in its header. Every way the server misbehaves gives an error that says what to do.
use std::time::Duration;

use anyhow::Context;
use url::Url;

use super::bundle::{self, BundleError, Professional};
use super::config::DerivationConfig;

/// Pages followed at most (50 a page: 1000 professionals), against a `next` that never ends.
const MAX_PAGES: usize = 20;
/// Bytes of one answer at most (a page of 50 with roles is ~200 kB).
const MAX_BYTES: usize = 8 << 20;

/// Whether `url` names a loopback host (plain http allowed there only).
pub fn loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// The API configured under `[derivation]`.
pub struct Fhir {
    client: reqwest::Client,
    base: Url,
    header: reqwest::header::HeaderName,
    key: String,
    timeout: u64,
}

impl Fhir {
    /// `None` when `derivation.fhir_url` is not set; reads the key and CA files.
    pub fn from_config(c: &DerivationConfig) -> anyhow::Result<Option<Fhir>> {
        let Some(url) = &c.fhir_url else { return Ok(None) };
        let mut base = Url::parse(url).with_context(|| format!("`derivation.fhir_url` {url:?} is not a URL"))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let path = c.fhir_api_key_file.as_ref().context("`derivation.fhir_api_key_file` is required with fhir_url")?;
        let key = std::fs::read_to_string(path)
            .with_context(|| format!("reading `derivation.fhir_api_key_file` {}", path.display()))?
            .trim()
            .to_owned();
        anyhow::ensure!(!key.is_empty(), "`derivation.fhir_api_key_file` {} is empty", path.display());
        let header = reqwest::header::HeaderName::from_bytes(c.fhir_api_key_header.as_bytes())
            .context("`derivation.fhir_api_key_header` is not a header name")?;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(c.fhir_timeout_secs))
            .connect_timeout(Duration::from_secs(c.fhir_timeout_secs.min(10)))
            // A redirect could carry the key elsewhere: the API answers at its base.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &c.fhir_ca_file {
            let pem =
                std::fs::read(ca).with_context(|| format!("reading `derivation.fhir_ca_file` {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("`derivation.fhir_ca_file` {}: expected PEM certificates", ca.display()))?;
            anyhow::ensure!(!certs.is_empty(), "`derivation.fhir_ca_file` {} holds no certificate", ca.display());
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().context("building the Annuaire Santé client")?;
        Ok(Some(Fhir { client, base, header, key, timeout: c.fhir_timeout_secs }))
    }

    /// Practitioners with this idNat_PS or RPPS number.
    pub async fn by_identifier(&self, id: &str) -> anyhow::Result<Vec<Professional>> {
        self.search(&[("identifier", id)]).await
    }

    /// Practitioners whose exercise names start with these (FHIR string search); callers compare
    /// the normalised names themselves.
    pub async fn by_name(&self, family: &str, given: &str) -> anyhow::Result<Vec<Professional>> {
        let mut q = vec![("family", family)];
        if !given.is_empty() {
            q.push(("given", given));
        }
        self.search(&q).await
    }

    async fn search(&self, query: &[(&str, &str)]) -> anyhow::Result<Vec<Professional>> {
        let mut url = self.base.join("Practitioner").context("the Practitioner endpoint")?;
        url.query_pairs_mut().extend_pairs(query).append_pair("_revinclude", "PractitionerRole:practitioner");
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.page(&url).await?;
            found.extend(page.professionals);
            let Some(next) = page.next else { return Ok(found) };
            let next = Url::parse(&next).or_else(|_| self.base.join(&next)).map_err(|_| {
                anyhow::anyhow!("the Annuaire Santé gave a next page link that is not a URL; report it to the ANS")
            })?;
            // The key goes only where the base is: a next link elsewhere is not followed.
            anyhow::ensure!(
                next.origin() == self.base.origin(),
                "the Annuaire Santé's next page is on another server ({}): not followed with the API key",
                next.origin().ascii_serialization()
            );
            url = next;
        }
        anyhow::bail!("more than {MAX_PAGES} pages of results: search with more of the name, or by idNat")
    }

    async fn page(&self, url: &Url) -> anyhow::Result<bundle::Page> {
        let at = self.base.as_str();
        let sent = self
            .client
            .get(url.clone())
            .header(&self.header, &self.key)
            .header(reqwest::header::ACCEPT, "application/fhir+json")
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => anyhow::bail!(
                "the Annuaire Santé at {at} did not answer within {} s: try again later, or raise \
                 derivation.fhir_timeout_secs; nothing was changed",
                self.timeout
            ),
            Err(e) if e.is_connect() => anyhow::bail!(
                "cannot reach the Annuaire Santé at {at} ({}): check derivation.fhir_url and the outbound link; \
                 nothing was changed",
                root_cause(&e)
            ),
            Err(e) => {
                anyhow::bail!("asking the Annuaire Santé at {at} failed ({}); nothing was changed", root_cause(&e))
            }
        };
        let status = resp.status();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) if body.len() + c.len() <= MAX_BYTES => body.extend_from_slice(&c),
                Ok(Some(_)) => anyhow::bail!("the Annuaire Santé's answer is over {MAX_BYTES} bytes: refused"),
                Ok(None) => break,
                Err(e) if e.is_timeout() => anyhow::bail!(
                    "the Annuaire Santé at {at} did not finish its answer within {} s: try again later, or raise \
                     derivation.fhir_timeout_secs; nothing was changed",
                    self.timeout
                ),
                Err(e) => anyhow::bail!("the Annuaire Santé's answer was cut ({}); try again", root_cause(&e)),
            }
        }
        let said = bundle::outcome(&body).map(|d| format!(": {d}")).unwrap_or_default();
        match status.as_u16() {
            200 => {}
            401 | 403 => anyhow::bail!(
                "the Annuaire Santé refused the API key (HTTP {}{said}): check derivation.fhir_api_key_file and \
                 the header derivation.fhir_api_key_header ({})",
                status.as_u16(),
                self.header
            ),
            429 => anyhow::bail!("the Annuaire Santé limits calls (HTTP 429{said}): try again in a minute"),
            300..=399 => anyhow::bail!(
                "the Annuaire Santé redirected (HTTP {}): set derivation.fhir_url to the API's base itself",
                status.as_u16()
            ),
            500..=599 => anyhow::bail!(
                "the Annuaire Santé failed (HTTP {}{said}): try again later; nothing was changed",
                status.as_u16()
            ),
            s => anyhow::bail!("the Annuaire Santé refused the search (HTTP {s}{said}); nothing was changed"),
        }
        bundle::read(&body)
            .map_err(|e: BundleError| anyhow::anyhow!("the Annuaire Santé at {at}: {e}; nothing was changed"))
    }
}

/// The innermost error, without the URL reqwest puts in its own message (it carries the query).
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(s) = source.source() {
        source = s;
    }
    source.to_string()
}
