//! The IdP as loaded from `[saml]`: its signing key and certificate, the pairwise secret, and
//! each SP's metadata parsed by samael (entityID, AssertionConsumerService URLs, signing
//! certificates, `AuthnRequestsSigned`). Loaded by `wiring::build` into the gateway's state (the
//! part [`super::SamlIdp`]), one per gateway; `vigie check-config` loads it too.
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::metadata::EntityDescriptor;

use super::config::{SamlConfig, SpConfig};
use super::signed;

/// `urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST`: the only binding Vigie answers an SP with.
pub const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const HTTP_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// The loaded IdP (cloned, cheaply, when an SP's metadata is fetched again).
#[derive(Clone)]
pub struct Idp {
    pub entity_id: String,
    /// The signing key, DER (what xmlsec loads).
    pub key_der: Vec<u8>,
    /// The key is ECDSA P-256: assertions are signed `ecdsa-sha256` (RFC 6931 §2.3.6), else
    /// RSA-SHA256.
    pub ecdsa: bool,
    pub cert_der: Vec<u8>,
    pub pairwise_secret: Vec<u8>,
    pub sps: Vec<std::sync::Arc<Sp>>,
}

/// A registered service provider.
pub struct Sp {
    pub entity_id: String,
    /// Its HTTP-POST AssertionConsumerService URLs, from its metadata: the only places a
    /// Response goes (saml-profiles §4.1.4.1).
    pub acs: Vec<String>,
    /// The signing certificates of its metadata (DER).
    pub certs: Vec<Vec<u8>>,
    /// Its requests must be signed (`require_signed_requests`, or `AuthnRequestsSigned`).
    pub signed_requests: bool,
    /// Its SingleLogoutService endpoints (saml-metadata §2.4.2): (Binding, Location,
    /// ResponseLocation).
    pub slo: Vec<(String, String, Option<String>)>,
    /// Its assertions are encrypted to this key (`encrypt_assertions`).
    pub encryption: Option<super::encrypt::Encryption>,
    pub config: SpConfig,
}

type Problems = Vec<(String, String)>;

impl Idp {
    /// Loads the key, certificate, secret and every SP's metadata; each problem with its key.
    pub fn load(config: &SamlConfig, issuer: &str) -> Result<Idp, Problems> {
        let mut problems = Problems::new();
        let mut read = |key: &str, path: &Option<String>| -> Option<String> {
            let path = path.as_deref()?;
            match std::fs::read_to_string(path) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push((format!("saml.{key}"), format!("cannot read {path:?}: {e}")));
                    None
                }
            }
        };
        let key = read("key_file", &config.key_file);
        let cert = read("cert_file", &config.cert_file);
        let secret = read("pairwise_secret_file", &config.pairwise_secret_file);
        let mut ecdsa = false;
        let key_der = key.and_then(|k| match signing_key(&k) {
            Ok((der, is_ecdsa)) => {
                ecdsa = is_ecdsa;
                Some(der)
            }
            Err(why) => {
                problems.push(("saml.key_file".into(), why.into()));
                None
            }
        });
        let cert_der = cert.and_then(|c| {
            pem_der(&c, &["CERTIFICATE"]).or_else(|| {
                problems.push(("saml.cert_file".into(), "expected a PEM certificate".into()));
                None
            })
        });
        let secret = secret.map(|s| s.trim().as_bytes().to_vec());
        if secret.as_ref().is_some_and(|s| s.len() < 32) {
            problems.push(("saml.pairwise_secret_file".into(), "expected at least 32 bytes of secret".into()));
        }
        let mut sps = Vec::new();
        // SPs with `metadata_url` join when their metadata is fetched (saml/fetch.rs).
        for (i, sp) in config.sps.iter().enumerate().filter(|(_, sp)| sp.metadata_url.is_none()) {
            match Sp::load(sp) {
                Ok(loaded) if sps.iter().any(|s: &std::sync::Arc<Sp>| s.entity_id == loaded.entity_id) => problems
                    .push((
                        format!("saml.sps[{i}].metadata"),
                        format!("the entityID {:?} is already another SP's", loaded.entity_id),
                    )),
                Ok(loaded) => sps.push(std::sync::Arc::new(loaded)),
                Err(e) => problems.push((format!("saml.sps[{i}].metadata"), e)),
            }
        }
        match (key_der, cert_der, secret) {
            (Some(key_der), Some(cert_der), Some(pairwise_secret)) if problems.is_empty() => {
                Ok(Idp { entity_id: config.entity_id(issuer), key_der, ecdsa, cert_der, pairwise_secret, sps })
            }
            _ => Err(problems),
        }
    }

    pub fn sp(&self, entity_id: &str) -> Option<&Sp> {
        self.sps.iter().find(|s| s.entity_id == entity_id).map(|s| &**s)
    }

    /// This IdP with `sp`, fetched, in place of the SP of the same client (or added). The
    /// document must name `pinned` (the configured `entity_id`, else what the first good fetch
    /// named) and no other client's entityID: fetched metadata never replaces another SP.
    pub fn with_fetched(&self, sp: Sp, pinned: Option<&str>) -> Result<Idp, String> {
        let client = &sp.config.client_id;
        if let Some(pinned) = pinned.filter(|p| *p != sp.entity_id) {
            return Err(format!(
                "the document names the entityID {:?}, but the SP of client {client:?} is {pinned:?}: refused",
                sp.entity_id
            ));
        }
        if let Some(other) = self.sps.iter().find(|s| s.entity_id == sp.entity_id && s.config.client_id != *client) {
            return Err(format!(
                "the document names the entityID {:?}, which is the SP of client {:?}: refused",
                sp.entity_id, other.config.client_id
            ));
        }
        let mut idp = self.clone();
        idp.sps.retain(|s| s.config.client_id != *client);
        idp.sps.push(std::sync::Arc::new(sp));
        Ok(idp)
    }
}

impl Sp {
    fn load(config: &SpConfig) -> Result<Sp, String> {
        let xml = std::fs::read_to_string(&config.metadata)
            .map_err(|e| format!("cannot read the SP's metadata {:?}: {e}", config.metadata))?;
        Sp::from_metadata(config, xml).map(|(sp, _)| sp)
    }

    /// The SP of this metadata document (its signature checked with `metadata_cert` when set),
    /// and how long the document may be used (saml-metadata §2.2.1: `validUntil`,
    /// `cacheDuration`).
    pub fn from_metadata(config: &SpConfig, xml: String) -> Result<(Sp, Validity), String> {
        let xml = match &config.metadata_cert {
            Some(cert) => signed_metadata(config, &xml, cert)?,
            None => xml,
        };
        let entity = EntityDescriptor::from_str(&xml)
            .map_err(|e| format!("{:?} is not SAML metadata (an md:EntityDescriptor): {e}", config.metadata))?;
        let entity_id = entity
            .entity_id
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| format!("{:?}: the EntityDescriptor has no entityID", config.metadata))?;
        // The configured entityID pins the document: another SP's metadata (a mix-up of files or
        // URLs, or a server that answers for another SP) cannot take this client's place.
        if let Some(pinned) = config.entity_id.as_deref().filter(|p| *p != entity_id) {
            return Err(format!(
                "{:?} names the entityID {entity_id:?}, but the SP of client {:?} is {pinned:?} (its `entity_id`)",
                config.metadata, config.client_id
            ));
        }
        let validity =
            Validity { until: entity.valid_until, cache: entity.cache_duration.as_deref().and_then(duration) };
        // saml-metadata §2.2.1: `validUntil` is "the expiration time of the metadata"; past it
        // the document is not used, whether read from a file or fetched.
        if let Some(until) = validity.until.filter(|u| *u <= chrono::Utc::now()) {
            return Err(format!(
                "the metadata of the SP {entity_id:?} (client {:?}) expired at {until} (its validUntil): \
                 get a fresh copy from the SP",
                config.client_id
            ));
        }
        let Some(sso) = entity.sp_sso_descriptors.as_ref().and_then(|d| d.first()) else {
            return Err(format!("{:?}: no SPSSODescriptor (is this an SP's metadata?)", config.metadata));
        };
        // Every endpoint the browser may be sent to, whatever its binding, is checked before any
        // is kept: a `javascript:` or `data:` Location would run in Vigie's origin from the
        // auto-submitting form (saml-metadata §2.2.2: Location is "a URI reference", so the
        // schema does not refuse it).
        let endpoints =
            sso.assertion_consumer_services.iter().map(|e| ("AssertionConsumerService", &e.location)).chain(
                sso.single_logout_services.iter().flatten().flat_map(|e| {
                    std::iter::once(("SingleLogoutService", &e.location))
                        .chain(e.response_location.iter().map(|r| ("SingleLogoutService ResponseLocation", r)))
                }),
            );
        for (what, location) in endpoints {
            if let Err(why) = browser_endpoint(location) {
                return Err(format!(
                    "the SP {entity_id:?} (client {:?}): its {what} {location:?} {why}",
                    config.client_id
                ));
            }
        }
        let acs: Vec<String> = sso
            .assertion_consumer_services
            .iter()
            .filter(|e| e.binding == HTTP_POST)
            .map(|e| e.location.clone())
            .collect();
        if acs.is_empty() {
            return Err(format!(
                "{:?}: no AssertionConsumerService with the HTTP-POST binding, the one Vigie answers with",
                config.metadata
            ));
        }
        let mut certs = Vec::new();
        for kd in sso.key_descriptors.iter().flatten().filter(|k| k.is_signing()) {
            for c in kd.key_info.x509_data.iter().flat_map(|d| &d.certificates) {
                let b64: String = c.chars().filter(|c| !c.is_whitespace()).collect();
                let der = STANDARD
                    .decode(b64)
                    .map_err(|_| format!("{:?}: an X509Certificate is not base64", config.metadata))?;
                x509_parser::parse_x509_certificate(&der)
                    .map_err(|_| format!("{:?}: an X509Certificate is not a certificate", config.metadata))?;
                certs.push(der);
            }
        }
        let signed_requests = config.require_signed_requests || sso.authn_requests_signed == Some(true);
        if signed_requests && certs.is_empty() {
            return Err(format!(
                "{:?}: signed requests are required but the metadata has no signing certificate",
                config.metadata
            ));
        }
        let slo = sso
            .single_logout_services
            .iter()
            .flatten()
            .map(|e| (e.binding.clone(), e.location.clone(), e.response_location.clone()))
            .collect();
        let encryption = if config.encrypt_assertions { Some(encryption(config, sso)?) } else { None };
        let sp = Sp { entity_id, acs, certs, signed_requests, slo, encryption, config: config.clone() };
        Ok((sp, validity))
    }
}

/// Whether an SP's endpoint may receive the browser: an absolute `https` URL, or `http` on the
/// loopback only (an SP on the same machine, as in tests). The reason otherwise.
pub fn browser_endpoint(location: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(location).map_err(|_| "is not an absolute URL")?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("is http: only https is accepted (http only on localhost, 127.0.0.1 or [::1])"),
        _ => Err("is not an https URL: only https is accepted (http only on localhost, 127.0.0.1 or [::1])"),
    }
}

/// How long fetched metadata may be used (saml-metadata §2.2.1).
#[derive(Clone, Copy, Debug, Default)]
pub struct Validity {
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub cache: Option<std::time::Duration>,
}

/// An xs:duration of days, hours, minutes and seconds (`P1D`, `PT6H`, `PT30M`, `PT1H30M10S`);
/// years and months are refused (their length varies), so the caller's interval applies.
pub fn duration(text: &str) -> Option<std::time::Duration> {
    let rest = text.trim().strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0u64;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                let unit = units.iter().find(|(u, _)| *u == c)?.1;
                secs = secs.checked_add(number.parse::<u64>().ok()?.checked_mul(unit)?)?;
                number.clear();
            }
        }
        number.is_empty().then_some(())
    };
    take(days, &[('D', 86_400)])?;
    take(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// The encryption key of an SP with `encrypt_assertions`: `encryption_cert` when set, else its
/// metadata's `KeyDescriptor` for encryption (saml-metadata §2.4.1.1: `use="encryption"`, or no
/// `use`, which means both), with the `EncryptionMethod`s listed there.
fn encryption(
    config: &SpConfig,
    sso: &samael::metadata::SpSsoDescriptor,
) -> Result<super::encrypt::Encryption, String> {
    let md = &config.metadata;
    let for_encryption =
        sso.key_descriptors.iter().flatten().filter(|k| k.key_use.as_deref().is_none_or(|u| u == "encryption"));
    let methods: Vec<String> = for_encryption
        .clone()
        .flat_map(|k| k.encryption_methods.iter().flatten().map(|m| m.algorithm.clone()))
        .collect();
    let der = match &config.encryption_cert {
        Some(path) => {
            let pem =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read encryption_cert {path:?}: {e}"))?;
            pem_der(&pem, &["CERTIFICATE"])
                .ok_or_else(|| format!("encryption_cert {path:?} is not a PEM certificate"))?
        }
        None => {
            let b64 = for_encryption
                .flat_map(|k| k.key_info.x509_data.iter().flat_map(|d| &d.certificates))
                .next()
                .ok_or_else(|| {
                    format!(
                        "{md:?}: encrypt_assertions is set but the metadata has no KeyDescriptor for encryption: \
                         add one to the SP's metadata or set encryption_cert"
                    )
                })?;
            let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD.decode(b64).map_err(|_| format!("{md:?}: an X509Certificate is not base64"))?
        }
    };
    super::encrypt::Encryption::new(&der, &methods).map_err(|e| format!("{md:?}: {e}"))
}

/// The signing key's DER and whether it is ECDSA P-256; RSA keys are PKCS#8 or PKCS#1.
fn signing_key(pem: &str) -> Result<(Vec<u8>, bool), &'static str> {
    if let Some(der) = pem_der(pem, &["RSA PRIVATE KEY"]) {
        return Ok((der, false));
    }
    let der = pem_der(pem, &["PRIVATE KEY"])
        .ok_or("expected a PEM private key (PKCS#8 RSA or ECDSA P-256, or PKCS#1 RSA)")?;
    match rcgen::KeyPair::from_pem(pem) {
        Ok(k) if k.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 => Ok((der, true)),
        Ok(k) if k.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 || k.algorithm() == &rcgen::PKCS_ED25519 => {
            Err("an ECDSA key must be on P-256 (ecdsa-sha256); use P-256 or RSA")
        }
        _ => Ok((der, false)),
    }
}

/// What the metadata's signature covers, checked by xmlsec (through samael) against the
/// configured certificate: a wrong key or an edited body is refused, naming the SP; so is a
/// signature or digest other than SHA-2 (the same list as the SP's messages: [`signed::ACCEPTED`]):
/// whoever can forge a SHA-1 signature of the metadata chooses the SP's ACS and certificates.
fn signed_metadata(config: &SpConfig, xml: &str, cert: &str) -> Result<String, String> {
    use samael::crypto::CertificateDer;
    let sp = format!("the metadata {:?} of the SP of client {:?}", config.metadata, config.client_id);
    let pem = std::fs::read_to_string(cert).map_err(|e| format!("cannot read metadata_cert {cert:?}: {e}"))?;
    let der =
        pem_der(&pem, &["CERTIFICATE"]).ok_or_else(|| format!("metadata_cert {cert:?} is not a PEM certificate"))?;
    // Only the signed element comes back (no ancestors): a signature on an inner element
    // cannot vouch for an outer one wrapped around it.
    let signed = signed::verified_by(xml, &[CertificateDer::from(der)]).map_err(|refused| match refused {
        signed::Refused::Algorithm { element, uri } => format!(
            "{sp} is signed with the {element} {uri:?}, which Vigie does not accept: re-sign the metadata with \
             SHA-256 (RSA-SHA256/384/512 or ECDSA-SHA256/384/512, SHA-256/384/512 digests; docs/saml.md)"
        ),
        signed::Refused::Signature => {
            format!("{sp} is not signed by metadata_cert {cert:?}: signed with another key, or edited after signing")
        }
    })?;
    if !signed.contains("EntityDescriptor") {
        return Err(format!("{sp}: the signature does not cover the EntityDescriptor"));
    }
    Ok(signed)
}

/// The DER of the first PEM block with one of these labels.
pub fn pem_der(pem: &str, labels: &[&str]) -> Option<Vec<u8>> {
    labels.iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = pem.find(&begin)? + begin.len();
        let stop = start + pem[start..].find(&end)?;
        let b64: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD.decode(b64).ok()
    })
}
