//! Is a presented card certificate one to accept? Path to a configured IGC-Santé anchor with every
//! signature checked, validity dates, CA constraints, the card's key usages, and revocation from
//! CRLs held in memory. [`CardValidator::validate`] does no I/O: it is the per-login hot path.
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use x509_parser::asn1_rs::{Any, Class};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::ca::{CaCert, IssuerKey, hex};
use crate::config::TrustConfig;
use crate::crl::{CrlCache, CrlError, Lookup};
use crate::identity::identity_of;
use vigie_core::cards::CardValidation;
pub use vigie_core::cards::{CardRejection, CrlStatus, RevocationCheck, ValidatedCard};

/// The longest path searched, leaf and anchor included (IGC-Santé paths have 2 or 3 certificates).
const MAX_PATH: usize = 6;

/// Why the validator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Neither `anchors` nor `anchors_pem` gives a certificate.
    #[error("no card trust anchor is configured: set `anchors` (PEM files) or `anchors_pem`")]
    NoAnchors,
    /// An anchor file cannot be read.
    #[error("card trust anchor file {path}: {reason}")]
    AnchorFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A certificate in the anchors is not a usable CA certificate.
    #[error("card trust anchor {source_name}: {reason}")]
    BadAnchor {
        /// `<file> #<n>` or `anchors_pem[<i>] #<n>`.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `crl_urls` entry is not an http(s) URL.
    #[error("crl_urls entry '{url}': {reason}")]
    BadCrlUrl {
        /// The entry.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CRL cache directory cannot be created or read.
    #[error("CRL cache directory {path}: {reason}")]
    CacheDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// Validates card certificate chains against the configured anchors and the CRLs it holds.
/// Share it behind an `Arc`; run [`CardValidator::spawn_refresh`] to keep CRLs current.
#[derive(Debug)]
pub struct CardValidator {
    anchors: Vec<Arc<CaCert>>,
    require_client_auth_eku: bool,
    check_revocation: bool,
    refresh_every: Duration,
    crls: CrlCache,
    /// The client CRLs are fetched with through [`CardValidation`] ([`CardValidator::with_http`]).
    http: OnceLock<reqwest::Client>,
}

#[async_trait::async_trait]
impl CardValidation for CardValidator {
    fn validate(&self, chain: &[Vec<u8>], now: i64) -> Result<ValidatedCard, CardRejection> {
        CardValidator::validate(self, chain, now)
    }

    async fn fetch_crls_for(&self, chain: &[Vec<u8>]) -> bool {
        self.ensure_crl_for(chain, self.http()).await
    }

    fn anchor_subjects(&self) -> Vec<Vec<u8>> {
        CardValidator::anchor_subjects(self)
    }

    fn crl_status(&self) -> Vec<CrlStatus> {
        self.status()
    }

    fn keep_crls_fresh(self: Arc<Self>) {
        drop(self.spawn_refresh(self.http().clone()));
    }
}

/// How weak a revocation answer is: the path's weakest is the card's.
fn weakness(check: &RevocationCheck) -> u8 {
    match check {
        RevocationCheck::Fresh { .. } => 0,
        RevocationCheck::WithinGrace { .. } => 1,
        RevocationCheck::PastGraceAccepted { .. } => 2,
        RevocationCheck::NotChecked => 3,
    }
}

/// One link of a path: the certificate `cert` (index in the chain sent) was signed by `issuer`,
/// an anchor or a CA certificate the client sent.
struct Step {
    cert: usize,
    issuer: Arc<CaCert>,
}

impl CardValidator {
    /// Loads the anchors (files, then inline PEM), prepares the CRL cache and loads its disk copy.
    pub fn new(config: TrustConfig) -> Result<CardValidator, TrustError> {
        let mut anchors = Vec::new();
        for path in &config.anchors {
            let pem = std::fs::read(path)
                .map_err(|e| TrustError::AnchorFile { path: path.clone(), reason: e.to_string() })?;
            read_anchors(&pem, &path.display().to_string(), &mut anchors)?;
        }
        for (i, pem) in config.anchors_pem.iter().enumerate() {
            read_anchors(pem.as_bytes(), &format!("anchors_pem[{i}]"), &mut anchors)?;
        }
        if anchors.is_empty() {
            return Err(TrustError::NoAnchors);
        }
        let crls = CrlCache::new(&config, &anchors)?;
        Ok(CardValidator {
            anchors,
            require_client_auth_eku: config.require_client_auth_eku,
            check_revocation: config.check_revocation,
            refresh_every: Duration::from_secs(config.refresh_secs.max(1)),
            crls,
            http: OnceLock::new(),
        })
    }

    /// The same validator, fetching CRLs with `http` when reached through [`CardValidation`]
    /// (the gateway's outgoing client: its proxy and TLS settings). Without one, a default client.
    pub fn with_http(self, http: reqwest::Client) -> Self {
        let _ = self.http.set(http);
        self
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(reqwest::Client::new)
    }

    /// Validates a chain sent by a client: DER certificates, the card's first, then any intermediates.
    /// `now` is Unix seconds. No I/O: revocation comes from the CRLs already held; when the card's CA
    /// has none yet, the answer is `revocation_unknown` and the caller may await
    /// [`CardValidator::ensure_crl_for`] (bounded by a timeout) and validate again.
    ///
    /// Order of checks: parse and read the holder; path to an anchor, each signature verified
    /// (RFC 5280 §6.1.3 (a)(1)) and each issuer a CA allowed to sign certificates (§4.2.1.9,
    /// §4.2.1.3) within its path length; dates of every certificate of the path (§6.1.3 (a)(2));
    /// the card's keyUsage and extendedKeyUsage; revocation of every certificate below the anchor.
    pub fn validate<C: AsRef<[u8]>>(&self, chain: &[C], now: i64) -> Result<ValidatedCard, CardRejection> {
        let certs = parse_chain(chain)?;
        let leaf = &certs[0];
        let identity = identity_of(leaf).map_err(|e| CardRejection::Malformed(e.to_string()))?;
        let path = self.build_path(&certs, now)?;

        check_dates(leaf, "the card certificate".to_owned(), now)?;
        for step in &path {
            let ca = &step.issuer;
            let label = || format!("the CA certificate '{}'", ca.dn);
            if now > ca.not_after {
                return Err(CardRejection::Expired { certificate: label(), not_after: ca.not_after });
            }
            if now < ca.not_before {
                return Err(CardRejection::NotYetValid { certificate: label(), not_before: ca.not_before });
            }
        }
        self.check_leaf_usage(leaf)?;
        let revocation = if self.check_revocation {
            self.check_revocation(&certs, &path, now)?
        } else {
            RevocationCheck::NotChecked
        };
        let anchor = path.last().map(|step| step.issuer.dn.clone()).unwrap_or_default();
        Ok(ValidatedCard { identity, revocation, anchor })
    }

    /// When the CAs on this chain's path have no CRL yet, fetches the sources that can give one
    /// (the certificates' distribution points, configured URLs). Returns true when every CA on the
    /// path now has a CRL. Bound it with a timeout on the request path (`tokio::time::timeout`).
    pub async fn ensure_crl_for<C: AsRef<[u8]>>(&self, chain: &[C], http: &reqwest::Client) -> bool {
        let Some(issuers) = self.path_issuers(chain) else {
            return false;
        };
        if !issuers.iter().all(|k| self.crls.has_crl(k)) {
            self.crls.fetch_for(&issuers, http).await;
        }
        issuers.iter().all(|k| self.crls.has_crl(k))
    }

    /// Fetches every known CRL source once (see [`CrlCache::refresh`]).
    pub async fn refresh(&self, http: &reqwest::Client) -> Vec<(String, Result<(), CrlError>)> {
        self.crls.refresh(http).await
    }

    /// Refreshes CRLs now and then every `refresh_secs`, until the task is aborted. Needs a Tokio runtime.
    pub fn spawn_refresh(self: &Arc<Self>, http: reqwest::Client) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.refresh_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.crls.refresh(&http).await;
            }
        })
    }

    /// Every CRL source and what it last gave, for `/readyz` and metrics.
    pub fn status(&self) -> Vec<CrlStatus> {
        self.crls.status()
    }

    /// The CRL cache.
    pub fn crls(&self) -> &CrlCache {
        &self.crls
    }

    /// Subjects (DER `Name`) of the configured anchors, for a TLS CertificateRequest's
    /// `certificate_authorities`.
    pub fn anchor_subjects(&self) -> Vec<Vec<u8>> {
        let mut subjects: Vec<Vec<u8>> = self.anchors.iter().map(|a| a.key.name.clone()).collect();
        subjects.dedup();
        subjects
    }

    /// Subject DNs of the configured anchors.
    pub fn anchors(&self) -> Vec<String> {
        self.anchors.iter().map(|a| a.dn.clone()).collect()
    }

    /// Issuers of the certificates of the path below the anchor (whose CRLs are needed), learning
    /// their distribution points on the way.
    fn path_issuers<C: AsRef<[u8]>>(&self, chain: &[C]) -> Option<Vec<IssuerKey>> {
        let certs = parse_chain(chain).ok()?;
        let path = self.build_path(&certs, crate::crl::now_unix()).ok()?;
        let mut issuers = Vec::new();
        for step in &path {
            self.learn(&certs[step.cert], step);
            issuers.push(step.issuer.key.clone());
        }
        Some(issuers)
    }

    /// From the card up: find each certificate's issuer among the anchors first (a path ends at the
    /// first anchor), then among the certificates the client sent, verifying the signature. Among
    /// anchors that verify (a CA certified again with the same key), one valid at `now` is preferred.
    fn build_path(&self, certs: &[X509Certificate<'_>], now: i64) -> Result<Vec<Step>, CardRejection> {
        let mut path: Vec<Step> = Vec::new();
        let mut used = vec![false; certs.len()];
        used[0] = true;
        let mut current = 0;
        // Everything tried on the way, for the message: the card's issuer is what the person sees.
        let mut tried = Vec::new();
        let untrusted =
            |detail: String| CardRejection::UntrustedIssuer { issuer: certs[0].issuer().to_string(), detail };
        loop {
            let cert = &certs[current];
            let issuer_name = cert.issuer().as_raw();
            let verifies = |ca: &CaCert, tried: &mut Vec<String>| {
                if ca.key.name != issuer_name {
                    return false;
                }
                match ca.verify(&cert.signature_algorithm, &cert.signature_value, cert.tbs_certificate.as_ref()) {
                    Ok(()) => true,
                    Err(e) => {
                        tried.push(format!("the signature does not verify with the key of '{}' ({e})", ca.dn));
                        false
                    }
                }
            };
            // Certificates below the issuer that are not self-issued: RFC 5280 §4.2.1.9 pathLenConstraint.
            let below = path.len();
            let within_len =
                |ca: &CaCert| ca.path_len.is_none_or(|n| usize::try_from(n).unwrap_or(usize::MAX) >= below);
            let in_date = |ca: &CaCert| ca.not_before <= now && now <= ca.not_after;
            let anchor = (self.anchors.iter().find(|a| in_date(a) && verifies(a, &mut tried)))
                .or_else(|| self.anchors.iter().find(|a| !in_date(a) && verifies(a, &mut tried)));
            if let Some(anchor) = anchor {
                if !anchor.may_sign_certs {
                    return Err(untrusted(format!("the anchor '{}' has no keyCertSign key usage", anchor.dn)));
                }
                if !within_len(anchor) {
                    return Err(untrusted(format!("the path is longer than '{}' allows", anchor.dn)));
                }
                path.push(Step { cert: current, issuer: anchor.clone() });
                return Ok(path);
            }
            if path.len() + 2 > MAX_PATH {
                return Err(untrusted(format!("no trusted CA within {MAX_PATH} certificates")));
            }
            let mut next = None;
            for (i, candidate) in certs.iter().enumerate().filter(|(i, _)| !used[*i]) {
                if candidate.subject().as_raw() != issuer_name {
                    continue;
                }
                let ca = match CaCert::from_cert(candidate, false) {
                    Ok(ca) => ca,
                    Err(reason) => {
                        tried.push(format!("the certificate '{}' sent as its issuer: {reason}", candidate.subject()));
                        continue;
                    }
                };
                if !verifies(&ca, &mut tried) {
                    continue;
                }
                if let Err(reason) = supported_critical_extensions(candidate) {
                    tried.push(format!("the CA certificate '{}': {reason}", ca.dn));
                } else if !ca.may_sign_certs {
                    tried.push(format!("'{}' has no keyCertSign key usage (RFC 5280 §4.2.1.3)", ca.dn));
                } else if !within_len(&ca) {
                    tried.push(format!("the path is longer than '{}' allows (RFC 5280 §4.2.1.9)", ca.dn));
                } else {
                    next = Some((i, ca));
                    break;
                }
            }
            let Some((i, ca)) = next else {
                tried.push(format!("no configured anchor and no certificate sent has the name '{}'", cert.issuer()));
                return Err(untrusted(tried.join("; ")));
            };
            used[i] = true;
            path.push(Step { cert: current, issuer: Arc::new(ca) });
            current = i;
        }
    }

    fn check_leaf_usage(&self, leaf: &X509Certificate<'_>) -> Result<(), CardRejection> {
        if leaf.basic_constraints().ok().flatten().is_some_and(|bc| bc.value.ca) {
            return Err(CardRejection::BadKeyUsage("it is a CA certificate, not a card's".to_owned()));
        }
        // RFC 5280 §4.2.1.3: TLS client authentication signs with the key, so digitalSignature is needed.
        // IGC-Santé authentication certificates always carry keyUsage, so its absence is refused too.
        match leaf.key_usage() {
            Ok(Some(usage)) if usage.value.digital_signature() => {}
            Ok(Some(usage)) => {
                return Err(CardRejection::BadKeyUsage(format!(
                    "its key usage ({}) lacks digitalSignature",
                    usage.value
                )));
            }
            Ok(None) => return Err(CardRejection::BadKeyUsage("it has no key usage extension".to_owned())),
            Err(e) => return Err(CardRejection::Malformed(format!("keyUsage does not parse: {e}"))),
        }
        if self.require_client_auth_eku {
            // RFC 5280 §4.2.1.12: id-kp-clientAuth, "TLS WWW client authentication".
            match leaf.extended_key_usage() {
                Ok(Some(eku)) if eku.value.client_auth => {}
                Ok(_) => return Err(CardRejection::NoClientAuthEku),
                Err(e) => return Err(CardRejection::Malformed(format!("extendedKeyUsage does not parse: {e}"))),
            }
        }
        Ok(())
    }

    /// RFC 5280 §6.3: every certificate below the anchor is checked against its issuer's CRL.
    fn check_revocation(
        &self,
        certs: &[X509Certificate<'_>],
        path: &[Step],
        now: i64,
    ) -> Result<RevocationCheck, CardRejection> {
        let mut weakest: Option<RevocationCheck> = None;
        for step in path {
            let cert = &certs[step.cert];
            self.learn(cert, step);
            let ca = &step.issuer;
            match self.crls.lookup(&ca.key, cert.raw_serial(), step.cert != 0, now) {
                Lookup::Revoked(revocation) => {
                    let certificate = if step.cert == 0 {
                        "the card certificate".to_owned()
                    } else {
                        format!("the CA certificate '{}'", cert.subject())
                    };
                    return Err(CardRejection::Revoked {
                        certificate,
                        serial_hex: hex(cert.raw_serial()),
                        revoked_at: revocation.revoked_at,
                        reason: revocation.reason,
                    });
                }
                Lookup::Unknown(reason) => {
                    return Err(CardRejection::RevocationUnknown { issuer: ca.dn.clone(), reason });
                }
                Lookup::NotRevoked(check) => {
                    if weakest.is_none_or(|w| weakness(&check) > weakness(&w)) {
                        weakest = Some(check);
                    }
                }
            }
        }
        Ok(weakest.unwrap_or(RevocationCheck::NotChecked))
    }

    /// Learns, from a certificate whose signature by `issuer` was just verified, where its CRL is
    /// published, and the issuer itself when the client sent it (so its CRL can be verified).
    fn learn(&self, cert: &X509Certificate<'_>, step: &Step) {
        if !step.issuer.anchor {
            self.crls.learn_ca(&step.issuer);
        }
        self.crls.learn_distribution_points(distribution_points(cert).into_iter(), &step.issuer.key);
    }
}

fn parse_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<Vec<X509Certificate<'_>>, CardRejection> {
    if chain.is_empty() {
        return Err(CardRejection::Malformed("no certificate was presented".to_owned()));
    }
    chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let what = if i == 0 { "the card certificate".to_owned() } else { format!("chain certificate #{i}") };
            let (rest, cert) = X509Certificate::from_der(der.as_ref())
                .map_err(|e| CardRejection::Malformed(format!("{what} is not DER X.509: {e}")))?;
            if !rest.is_empty() {
                return Err(CardRejection::Malformed(format!("{} bytes follow {what}", rest.len())));
            }
            canonical_outside_tbs(&cert).map_err(|e| CardRejection::Malformed(format!("{what}: {e}")))?;
            if i == 0 {
                supported_critical_extensions(&cert).map_err(|e| CardRejection::Malformed(format!("{what}: {e}")))?;
            }
            Ok(cert)
        })
        .collect()
}

/// The bytes of a certificate that its signature does not cover (RFC 5280 §4.1: the SEQUENCE
/// header, the algorithm and the signature around the TBSCertificate) must be the one DER encoding:
/// the parser tolerates other tags and non-minimal lengths there, which would let one card be
/// presented as many byte strings (and many fingerprints). So the certificate is rebuilt from its
/// signed part and compared byte for byte. RFC 5280 §4.1.1.2: signatureAlgorithm MUST contain the
/// same algorithm identifier as the TBSCertificate's signature field (here: the same bytes).
fn canonical_outside_tbs(cert: &X509Certificate<'_>) -> Result<(), String> {
    fn bad(e: impl std::fmt::Display) -> String {
        e.to_string()
    }
    if cert.signature_value.unused_bits != 0 {
        return Err("the signature BIT STRING has unused bits".to_owned());
    }
    // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature AlgorithmIdentifier, … }
    let tbs = cert.tbs_certificate.as_ref();
    let (_, fields) = Any::from_der(tbs).map_err(bad)?;
    let (mut rest, first) = Any::from_der(fields.data).map_err(bad)?;
    if first.header.class() == Class::ContextSpecific {
        rest = Any::from_der(rest).map_err(bad)?.0;
    }
    let (after_alg, _) = Any::from_der(rest).map_err(bad)?;
    let algorithm = &rest[..rest.len() - after_alg.len()];
    let mut bits = Vec::with_capacity(cert.signature_value.data.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&cert.signature_value.data);
    let mut content = Vec::with_capacity(tbs.len() + algorithm.len() + bits.len() + 8);
    content.extend_from_slice(tbs);
    content.extend_from_slice(algorithm);
    push_tlv(&mut content, 0x03, &bits);
    let mut canonical = Vec::with_capacity(content.len() + 4);
    push_tlv(&mut canonical, 0x30, &content);
    if canonical != cert.as_raw() {
        return Err("it is not DER-encoded around its signed part, or its two signature algorithms differ \
                    (RFC 5280 §4.1, §4.1.1.2)"
            .to_owned());
    }
    Ok(())
}

/// Appends one DER tag-length-value (definite, minimal length: X.690 §10.1).
fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// RFC 5280 §4.2: a certificate with a critical extension the validator does not process must be
/// rejected. Name constraints and policy constraints are not processed, so they are refused when
/// critical; certificate policies are accepted (any policy).
fn supported_critical_extensions(cert: &X509Certificate<'_>) -> Result<(), String> {
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(format!("extension {} does not parse: {error}", ext.oid.to_id_string()));
            }
            ParsedExtension::BasicConstraints(_)
            | ParsedExtension::KeyUsage(_)
            | ParsedExtension::ExtendedKeyUsage(_)
            | ParsedExtension::SubjectAlternativeName(_)
            | ParsedExtension::IssuerAlternativeName(_)
            | ParsedExtension::CertificatePolicies(_)
            | ParsedExtension::AuthorityKeyIdentifier(_)
            | ParsedExtension::SubjectKeyIdentifier(_)
            | ParsedExtension::CRLDistributionPoints(_)
            | ParsedExtension::AuthorityInfoAccess(_) => {}
            _ if ext.critical => {
                return Err(format!("critical extension {} is not supported (RFC 5280 §4.2)", ext.oid.to_id_string()));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_dates(cert: &X509Certificate<'_>, label: String, now: i64) -> Result<(), CardRejection> {
    let validity = cert.validity();
    let (not_before, not_after) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    if now > not_after {
        return Err(CardRejection::Expired { certificate: label, not_after });
    }
    if now < not_before {
        return Err(CardRejection::NotYetValid { certificate: label, not_before });
    }
    Ok(())
}

/// The http(s) URIs of a certificate's CRL distribution points (RFC 5280 §4.2.1.13) that cover
/// every reason and whose CRL is issued by the certificate's issuer (no cRLIssuer).
fn distribution_points<'a>(cert: &'a X509Certificate<'_>) -> Vec<&'a str> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter().filter(|p| p.reasons.is_none() && p.crl_issuer.is_none()) {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name
                            && (uri.starts_with("http://") || uri.starts_with("https://"))
                        {
                            urls.push(*uri);
                        }
                    }
                }
            }
        }
    }
    urls
}

fn read_anchors(pem: &[u8], source: &str, anchors: &mut Vec<Arc<CaCert>>) -> Result<(), TrustError> {
    let bad = |n: usize, reason: String| TrustError::BadAnchor { source_name: format!("{source} #{n}"), reason };
    let mut found = 0;
    for (n, block) in Pem::iter_from_buffer(pem).enumerate() {
        let block = block.map_err(|e| bad(n + 1, format!("bad PEM: {e}")))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block.parse_x509().map_err(|e| bad(n + 1, format!("not DER X.509: {e}")))?;
        let ca = CaCert::from_cert(&cert, true).map_err(|reason| bad(n + 1, reason))?;
        if !anchors.iter().any(|a| a.key == ca.key) {
            anchors.push(Arc::new(ca));
        }
        found += 1;
    }
    if found == 0 {
        return Err(bad(0, "no CERTIFICATE block".to_owned()));
    }
    Ok(())
}
