//! Certificate revocation lists (RFC 5280 §5) of the CAs that issue cards: fetched from the cards'
//! distribution points or configured URLs, verified, kept parsed in memory for the validation hot
//! path, and on disk so that a restart without network still knows which cards are revoked.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::ca::{CaCert, IssuerKey, hex, rfc3339, serial_key};
use crate::config::{AfterGrace, TrustConfig};
use crate::validate::{RevocationCheck, TrustError};
pub use vigie_core::cards::{CrlOrigin, CrlStatus};

/// The largest CRL accepted from a source (a 10,000-entry CRL is about 400 KB).
pub const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;

/// RFC 5280 §5.2.4 deltaCRLIndicator.
const DELTA_CRL_INDICATOR: &str = "2.5.29.27";
/// RFC 5280 §5.3.3 certificateIssuer (entries of indirect CRLs).
const CERTIFICATE_ISSUER: &str = "2.5.29.29";

/// Why a CRL is not used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// Not a DER (or PEM `X509 CRL`) CertificateList.
    #[error("not an X.509 CRL (DER or PEM): {0}")]
    NotCrl(String),
    /// Bytes follow the DER CertificateList.
    #[error("{0} bytes follow the CRL")]
    TrailingBytes(usize),
    /// RFC 5280 §5.1.1.2: signatureAlgorithm must equal the TBSCertList's signature field.
    #[error("the CRL's outer and inner signature algorithms differ (RFC 5280 §5.1.1.2)")]
    AlgorithmMismatch,
    /// RFC 5280 §5.1.2.5: conforming CRL issuers MUST include nextUpdate; without it staleness is unknowable.
    #[error("the CRL has no nextUpdate (required by RFC 5280 §5.1.2.5)")]
    NoNextUpdate,
    /// RFC 5280 §5.2.4: a delta CRL only lists changes since a base CRL.
    #[error("the CRL is a delta CRL (RFC 5280 §5.2.4); only complete CRLs are supported")]
    Delta,
    /// RFC 5280 §5.2.5: an indirect CRL lists certificates of other issuers.
    #[error("the CRL is an indirect CRL (RFC 5280 §5.2.5), which is not supported")]
    Indirect,
    /// RFC 5280 §5.2.5: onlySomeReasons or onlyContainsAttributeCerts make the CRL incomplete for cards.
    #[error("the CRL does not cover every revocation of user certificates: {0} (RFC 5280 §5.2.5)")]
    Partial(&'static str),
    /// RFC 5280 §5.2: a CRL with a critical extension the reader does not process must not be used.
    #[error("the CRL has critical extension {0}, which is not supported (RFC 5280 §5.2)")]
    UnsupportedCritical(String),
    /// An extension of the CRL or of an entry does not parse.
    #[error("extension {oid} of the CRL does not parse: {reason}")]
    BadExtension {
        /// Dotted OID.
        oid: String,
        /// Parser message.
        reason: String,
    },
    /// No trusted CA has the CRL's issuer name.
    #[error("the CRL is issued by '{0}', which is not a trusted CA")]
    UnknownIssuer(String),
    /// A trusted CA has the name, but the signature does not verify with its key.
    #[error("the CRL claims to be issued by '{0}' but its signature does not verify with that CA's key")]
    BadSignature(String),
    /// RFC 5280 §4.2.1.3: the CA's keyUsage lacks cRLSign.
    #[error("the CA '{0}' is not allowed to sign CRLs (keyUsage without cRLSign, RFC 5280 §4.2.1.3)")]
    NotCrlSigner(String),
    /// A distribution point learned from a card served the CRL of another CA.
    #[error("the CRL at {url} is issued by '{found}', but cards of '{expected}' point to it")]
    WrongIssuer {
        /// The source.
        url: String,
        /// Issuer of the CRL served.
        found: String,
        /// Issuer of the cards naming the URL.
        expected: String,
    },
    /// A source served an older CRL than the one held (replay of a stale list).
    #[error("the CRL of '{issuer}' issued {this_update} is older than the one held, issued {held}")]
    Older {
        /// CRL issuer.
        issuer: String,
        /// thisUpdate of the CRL served (RFC 3339).
        this_update: String,
        /// thisUpdate of the CRL held (RFC 3339).
        held: String,
    },
    /// The download failed.
    #[error("fetching {url} failed: {reason}")]
    Fetch {
        /// The source.
        url: String,
        /// What went wrong (connection, timeout, HTTP status, size).
        reason: String,
    },
}

/// One revoked certificate of a CRL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// revocationDate, Unix seconds.
    pub revoked_at: i64,
    /// The reasonCode entry extension (RFC 5280 §5.3.1), e.g. `KeyCompromise`, when present.
    pub reason: Option<String>,
}

/// Which certificates a CRL covers (issuingDistributionPoint, RFC 5280 §5.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrlScope {
    /// Every certificate of the issuer.
    All,
    /// End-entity certificates only (onlyContainsUserCerts).
    UserCerts,
    /// CA certificates only (onlyContainsCACerts).
    CaCerts,
}

/// A CRL read and checked for shape; its signature is checked when it is installed in a [`CrlCache`].
#[derive(Clone, Debug)]
pub struct ParsedCrl {
    /// The issuer DN, RFC 4514-like.
    pub issuer_dn: String,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// Which certificates it covers.
    pub scope: CrlScope,
    issuer_name: Vec<u8>,
    revoked: HashMap<Vec<u8>, Revocation>,
    der: Vec<u8>,
}

impl ParsedCrl {
    /// Number of revoked certificates listed.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// True when no certificate is listed.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// The revocation of the certificate whose serial has these DER INTEGER content bytes, if listed.
    pub fn revocation(&self, raw_serial: &[u8]) -> Option<&Revocation> {
        self.revoked.get(serial_key(raw_serial))
    }

    /// The CRL as DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// Parses a CRL (DER, or PEM `X509 CRL`) and checks what can be checked without its issuer:
/// algorithms agree, nextUpdate present, a complete direct CRL, no unknown critical extension.
pub fn parse_crl(bytes: &[u8]) -> Result<ParsedCrl, CrlError> {
    let pem;
    let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let (_, decoded) =
            x509_parser::pem::parse_x509_pem(bytes).map_err(|e| CrlError::NotCrl(format!("bad PEM: {e}")))?;
        if decoded.label != "X509 CRL" {
            return Err(CrlError::NotCrl(format!("PEM label is '{}', expected 'X509 CRL'", decoded.label)));
        }
        pem = decoded.contents;
        pem.as_slice()
    } else {
        bytes
    };
    let (rest, crl) = CertificateRevocationList::from_der(der).map_err(|e| CrlError::NotCrl(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::TrailingBytes(rest.len()));
    }
    if crl.tbs_cert_list.signature != crl.signature_algorithm {
        return Err(CrlError::AlgorithmMismatch);
    }
    let next_update = crl.next_update().ok_or(CrlError::NoNextUpdate)?.timestamp();
    let mut scope = CrlScope::All;
    for ext in crl.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::IssuingDistributionPoint(idp) => {
                if idp.indirect_crl {
                    return Err(CrlError::Indirect);
                }
                if idp.only_some_reasons.is_some() {
                    return Err(CrlError::Partial("onlySomeReasons"));
                }
                if idp.only_contains_attribute_certs {
                    return Err(CrlError::Partial("onlyContainsAttributeCerts"));
                }
                scope = match (idp.only_contains_user_certs, idp.only_contains_ca_certs) {
                    (true, false) => CrlScope::UserCerts,
                    (false, true) => CrlScope::CaCerts,
                    (false, false) => CrlScope::All,
                    (true, true) => {
                        return Err(CrlError::Partial("both onlyContainsUserCerts and onlyContainsCACerts"));
                    }
                };
            }
            ParsedExtension::ParseError { error } => {
                return Err(CrlError::BadExtension { oid: ext.oid.to_id_string(), reason: error.to_string() });
            }
            _ if ext.oid.to_id_string() == DELTA_CRL_INDICATOR => return Err(CrlError::Delta),
            ParsedExtension::CRLNumber(_)
            | ParsedExtension::AuthorityKeyIdentifier(_)
            | ParsedExtension::IssuerAlternativeName(_) => {}
            _ if ext.critical => return Err(CrlError::UnsupportedCritical(ext.oid.to_id_string())),
            _ => {}
        }
    }
    let mut revoked = HashMap::with_capacity(crl.tbs_cert_list.revoked_certificates.len());
    for entry in crl.iter_revoked_certificates() {
        for ext in entry.extensions() {
            let oid = ext.oid.to_id_string();
            if oid == CERTIFICATE_ISSUER {
                return Err(CrlError::Indirect);
            }
            match ext.parsed_extension() {
                ParsedExtension::ParseError { error } => {
                    return Err(CrlError::BadExtension { oid, reason: error.to_string() });
                }
                ParsedExtension::ReasonCode(_) | ParsedExtension::InvalidityDate(_) => {}
                _ if ext.critical => return Err(CrlError::UnsupportedCritical(oid)),
                _ => {}
            }
        }
        let reason = entry.reason_code().map(|(_, code)| code.to_string());
        revoked.insert(
            serial_key(entry.raw_serial()).to_vec(),
            Revocation { revoked_at: entry.revocation_date.timestamp(), reason },
        );
    }
    Ok(ParsedCrl {
        issuer_dn: crl.issuer().to_string(),
        this_update: crl.last_update().timestamp(),
        next_update,
        scope,
        issuer_name: crl.issuer().as_raw().to_vec(),
        revoked,
        der: der.to_vec(),
    })
}

#[derive(Clone, Debug)]
struct Source {
    origin: CrlOrigin,
    /// For a distribution point: the CA whose certificates name it; its CRL must be that CA's.
    expected: Option<IssuerKey>,
    status: CrlStatus,
}

/// What [`CrlCache::lookup`] knows about one certificate.
pub(crate) enum Lookup {
    Revoked(Revocation),
    NotRevoked(RevocationCheck),
    Unknown(String),
}

#[derive(Serialize, Deserialize)]
struct DiskMeta {
    url: String,
    origin: CrlOrigin,
    fetched_at: i64,
}

/// The CRLs of every trusted CA, with their sources. All methods take `&self`: the cache is shared
/// between the request path (reads) and a refresh task (writes).
#[derive(Debug)]
pub struct CrlCache {
    grace_secs: i64,
    after_grace: AfterGrace,
    fetch_timeout: Duration,
    cache_dir: Option<PathBuf>,
    cas: RwLock<Vec<Arc<CaCert>>>,
    crls: RwLock<HashMap<IssuerKey, Arc<ParsedCrl>>>,
    sources: RwLock<BTreeMap<String, Source>>,
}

impl CrlCache {
    /// Sets up the cache from the configuration and loads what the disk cache holds.
    pub(crate) fn new(config: &TrustConfig, anchors: &[Arc<CaCert>]) -> Result<CrlCache, TrustError> {
        let cache = CrlCache {
            grace_secs: i64::try_from(config.grace_secs).unwrap_or(i64::MAX),
            after_grace: config.after_grace,
            fetch_timeout: Duration::from_millis(config.fetch_timeout_ms),
            cache_dir: config.crl_cache_dir.clone(),
            cas: RwLock::new(anchors.to_vec()),
            crls: RwLock::new(HashMap::new()),
            sources: RwLock::new(BTreeMap::new()),
        };
        for url in &config.crl_urls {
            check_url(url).map_err(|reason| TrustError::BadCrlUrl { url: url.clone(), reason })?;
            cache.add_source(url, CrlOrigin::Configured, None);
        }
        if let Some(dir) = &cache.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| TrustError::CacheDir { path: dir.clone(), reason: e.to_string() })?;
            cache.load_disk(dir).map_err(|e| TrustError::CacheDir { path: dir.clone(), reason: e.to_string() })?;
        }
        Ok(cache)
    }

    /// What is known of the revocation of a certificate (its serial's raw bytes) issued by `issuer`.
    pub(crate) fn lookup(&self, issuer: &IssuerKey, raw_serial: &[u8], is_ca: bool, now: i64) -> Lookup {
        let crls = self.crls.read().unwrap_or_else(PoisonError::into_inner);
        let Some(crl) = crls.get(issuer) else {
            return Lookup::Unknown("no CRL of this CA has been obtained yet".to_owned());
        };
        let covers = match crl.scope {
            CrlScope::All => true,
            CrlScope::UserCerts => !is_ca,
            CrlScope::CaCerts => is_ca,
        };
        if !covers {
            return Lookup::Unknown(format!("the CRL held for this CA covers {:?} only", crl.scope));
        }
        if let Some(revocation) = crl.revocation(raw_serial) {
            return Lookup::Revoked(revocation.clone());
        }
        let next_update = crl.next_update;
        let grace_until = next_update.saturating_add(self.grace_secs);
        if now <= next_update {
            Lookup::NotRevoked(RevocationCheck::Fresh { next_update })
        } else if now <= grace_until {
            Lookup::NotRevoked(RevocationCheck::WithinGrace { next_update, grace_until })
        } else {
            match self.after_grace {
                AfterGrace::Accept => Lookup::NotRevoked(RevocationCheck::PastGraceAccepted { next_update }),
                AfterGrace::Refuse => Lookup::Unknown(format!(
                    "the newest CRL of this CA was due to be replaced at {} and the grace period ended at {}",
                    rfc3339(next_update),
                    rfc3339(grace_until)
                )),
            }
        }
    }

    /// Records the distribution points of a certificate whose signature by `issuer` was verified
    /// (only then: a URL from an unverified certificate would let anyone make the gateway fetch it).
    pub(crate) fn learn_distribution_points<'a>(&self, urls: impl Iterator<Item = &'a str>, issuer: &IssuerKey) {
        for url in urls {
            let known = self.sources.read().unwrap_or_else(PoisonError::into_inner).contains_key(url);
            if !known && check_url(url).is_ok() {
                self.add_source(url, CrlOrigin::DistributionPoint, Some(issuer.clone()));
            }
        }
    }

    /// Records a CA certificate met in a verified path, so that its CRL can be verified.
    pub(crate) fn learn_ca(&self, ca: &Arc<CaCert>) {
        if self.cas.read().unwrap_or_else(PoisonError::into_inner).iter().any(|c| c.key == ca.key) {
            return;
        }
        let mut cas = self.cas.write().unwrap_or_else(PoisonError::into_inner);
        if !cas.iter().any(|c| c.key == ca.key) {
            cas.push(ca.clone());
        }
    }

    /// True when a CRL of this issuer is held (fresh or not).
    pub(crate) fn has_crl(&self, issuer: &IssuerKey) -> bool {
        self.crls.read().unwrap_or_else(PoisonError::into_inner).contains_key(issuer)
    }

    /// Fetches every known source (concurrently, each bounded by `fetch_timeout_ms`) and installs
    /// what verifies. A source that fails keeps the CRL already held. Returns each URL's outcome.
    pub async fn refresh(&self, http: &reqwest::Client) -> Vec<(String, Result<(), CrlError>)> {
        let urls: Vec<String> = self.sources.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect();
        self.fetch_all(urls, http).await
    }

    /// Fetches the sources that may give a CRL of one of these issuers: those learned from their
    /// certificates, and configured ones that have not given any CRL yet.
    pub(crate) async fn fetch_for(&self, issuers: &[IssuerKey], http: &reqwest::Client) {
        let urls: Vec<String> = self
            .sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, s)| match &s.expected {
                Some(key) => issuers.contains(key),
                None => s.status.last_success.is_none(),
            })
            .map(|(url, _)| url.clone())
            .collect();
        self.fetch_all(urls, http).await;
    }

    /// Every source and the CRL it last gave.
    pub fn status(&self) -> Vec<CrlStatus> {
        self.sources.read().unwrap_or_else(PoisonError::into_inner).values().map(|s| s.status.clone()).collect()
    }

    async fn fetch_all(&self, urls: Vec<String>, http: &reqwest::Client) -> Vec<(String, Result<(), CrlError>)> {
        let fetches = urls.into_iter().map(|url| async move {
            let fetched = self.fetch(&url, http).await;
            let now = now_unix();
            let outcome = fetched.and_then(|bytes| self.install(&url, &bytes, now, true));
            if let Err(e) = &outcome {
                tracing::warn!(url = %url, error = %e, "CRL source failed; the CRL already held (if any) stays in use");
            }
            self.record(&url, now, outcome.as_ref().err().map(ToString::to_string));
            (url, outcome)
        });
        futures_util::future::join_all(fetches).await
    }

    async fn fetch(&self, url: &str, http: &reqwest::Client) -> Result<Vec<u8>, CrlError> {
        let fail = |reason: String| CrlError::Fetch { url: url.to_owned(), reason };
        let mut response =
            http.get(url).timeout(self.fetch_timeout).send().await.map_err(|e| fail(vigie_core::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP status {}", response.status())));
        }
        if response.content_length().is_some_and(|n| n > MAX_CRL_BYTES as u64) {
            return Err(fail(format!("larger than {MAX_CRL_BYTES} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(vigie_core::error_chain(&e)))? {
            if body.len() + chunk.len() > MAX_CRL_BYTES {
                return Err(fail(format!("larger than {MAX_CRL_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Parses, verifies and installs a CRL obtained from `url`, and writes it to the disk cache.
    fn install(&self, url: &str, bytes: &[u8], fetched_at: i64, persist: bool) -> Result<(), CrlError> {
        let crl = parse_crl(bytes)?;
        let ca = self.signer_of(&crl)?;
        let expected =
            self.sources.read().unwrap_or_else(PoisonError::into_inner).get(url).and_then(|s| s.expected.clone());
        if let Some(expected) = expected.filter(|e| e != &ca.key) {
            let cas = self.cas.read().unwrap_or_else(PoisonError::into_inner);
            let expected = cas.iter().find(|c| c.key == expected).map_or_else(|| "?".to_owned(), |c| c.dn.clone());
            return Err(CrlError::WrongIssuer { url: url.to_owned(), found: crl.issuer_dn.clone(), expected });
        }
        let crl = Arc::new(crl);
        {
            // Check and replace under one lock: two sources of one CA may answer at the same time.
            let mut crls = self.crls.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(held) = crls.get(&ca.key)
                && held.this_update > crl.this_update
            {
                return Err(CrlError::Older {
                    issuer: crl.issuer_dn.clone(),
                    this_update: rfc3339(crl.this_update),
                    held: rfc3339(held.this_update),
                });
            }
            crls.insert(ca.key.clone(), crl.clone());
        }
        if let Some(dir) = self.cache_dir.as_ref().filter(|_| persist)
            && let Err(e) = self.write_disk(dir, url, &crl, fetched_at)
        {
            tracing::warn!(url = %url, dir = %dir.display(), error = %e, "could not write the CRL to the disk cache");
        }
        let summary = (crl.issuer_dn.clone(), crl.this_update, crl.next_update, crl.len());
        let mut sources = self.sources.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(source) = sources.get_mut(url) {
            source.expected.get_or_insert(ca.key.clone());
            let status = &mut source.status;
            (status.issuer, status.this_update, status.next_update, status.entries) =
                (Some(summary.0), Some(summary.1), Some(summary.2), Some(summary.3));
            status.last_success = Some(fetched_at);
        }
        Ok(())
    }

    /// The trusted CA that signed this CRL (RFC 5280 §6.3.3 (f): verify the CRL with the issuer's key).
    fn signer_of(&self, crl: &ParsedCrl) -> Result<Arc<CaCert>, CrlError> {
        let (_, parsed) = CertificateRevocationList::from_der(&crl.der).map_err(|e| CrlError::NotCrl(e.to_string()))?;
        let cas = self.cas.read().unwrap_or_else(PoisonError::into_inner);
        let mut named = cas.iter().filter(|ca| ca.key.name == crl.issuer_name).peekable();
        if named.peek().is_none() {
            return Err(CrlError::UnknownIssuer(crl.issuer_dn.clone()));
        }
        for ca in named {
            if ca.verify(&parsed.signature_algorithm, &parsed.signature_value, parsed.tbs_cert_list.as_ref()).is_ok() {
                if !ca.may_sign_crls {
                    return Err(CrlError::NotCrlSigner(ca.dn.clone()));
                }
                return Ok(ca.clone());
            }
        }
        Err(CrlError::BadSignature(crl.issuer_dn.clone()))
    }

    fn add_source(&self, url: &str, origin: CrlOrigin, expected: Option<IssuerKey>) {
        let issuer = expected.as_ref().and_then(|key| {
            let cas = self.cas.read().unwrap_or_else(PoisonError::into_inner);
            cas.iter().find(|c| &c.key == key).map(|c| c.dn.clone())
        });
        let status = CrlStatus {
            url: url.to_owned(),
            origin,
            issuer,
            this_update: None,
            next_update: None,
            entries: None,
            last_attempt: None,
            last_success: None,
            last_error: None,
        };
        self.sources.write().unwrap_or_else(PoisonError::into_inner).entry(url.to_owned()).or_insert(Source {
            origin,
            expected,
            status,
        });
    }

    fn record(&self, url: &str, now: i64, error: Option<String>) {
        if let Some(source) = self.sources.write().unwrap_or_else(PoisonError::into_inner).get_mut(url) {
            source.status.last_attempt = Some(now);
            source.status.last_error = error;
        }
    }

    fn write_disk(&self, dir: &Path, url: &str, crl: &ParsedCrl, fetched_at: i64) -> std::io::Result<()> {
        let origin = self
            .sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(url)
            .map_or(CrlOrigin::Configured, |s| s.origin);
        let name = file_stem(url);
        write_atomic(&dir.join(format!("{name}.crl")), crl.der())?;
        let meta = DiskMeta { url: url.to_owned(), origin, fetched_at };
        write_atomic(
            &dir.join(format!("{name}.json")),
            &serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?,
        )
    }

    /// Loads every `<hash>.json` + `<hash>.crl` pair of the cache directory. A CRL that no longer
    /// verifies against the anchors (e.g. its CA was removed from the configuration) is skipped.
    fn load_disk(&self, dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let loaded = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|meta| {
                let meta: DiskMeta = serde_json::from_slice(&meta).map_err(|e| e.to_string())?;
                let der = std::fs::read(path.with_extension("crl")).map_err(|e| e.to_string())?;
                Ok((meta, der))
            });
            let (meta, der) = match loaded {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable entry in the CRL disk cache");
                    continue;
                }
            };
            let keep_source = meta.origin == CrlOrigin::DistributionPoint
                || self.sources.read().unwrap_or_else(PoisonError::into_inner).contains_key(&meta.url);
            if keep_source {
                self.add_source(&meta.url, meta.origin, None);
            }
            let now = now_unix();
            let outcome = self.install(&meta.url, &der, meta.fetched_at, false);
            match &outcome {
                Ok(()) => tracing::info!(url = %meta.url, "CRL loaded from the disk cache"),
                Err(e) => tracing::warn!(url = %meta.url, error = %e, "CRL in the disk cache not used"),
            }
            if keep_source {
                self.record(&meta.url, now, outcome.err().map(|e| format!("from the disk cache: {e}")));
            }
        }
        Ok(())
    }
}

/// Only http and https sources are fetched (RFC 5280 §4.2.1.13 also allows ldap, not supported).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("scheme '{other}' is not supported (http or https)")),
    }
}

fn file_stem(url: &str) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes()).as_ref())
}

/// Writes a file so that readers see the old content or the new, never a part (temp file + rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("crl");
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
