//! The seal: the establishment's signing certificate (ORG_SIGN, "certificat de cachet") and its
//! RSA key, read once from PEM or PKCS#12, then used for every VIHF; with the settings, the
//! implementation of vigie-core's `VihfSealer` port.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use vigie_core::dmp::SealRefusal;

use crate::dn::rfc2253;
use crate::legacy::Sha1Signer;
use crate::roles::roles_for;
use crate::settings::VihfSettings;
use crate::vihf::{VihfError, VihfRequest};

/// Why a seal could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the seal PEM is not readable: {0}")]
    Pem(String),
    #[error("no CERTIFICATE block in the seal certificate PEM")]
    NoCertificate,
    #[error("the seal certificate is not a valid X.509 certificate: {0}")]
    Certificate(String),
    #[error("no PRIVATE KEY or RSA PRIVATE KEY block in the seal key PEM")]
    NoKey,
    #[error("the seal key is encrypted: give it unencrypted (a mounted secret) or as a PKCS#12 file with its password")]
    EncryptedKey,
    #[error("the seal key is not a usable RSA key (PKCS#8 or PKCS#1, 2048 bits or more): {0}")]
    Key(String),
    #[error("the seal key does not belong to the seal certificate (their public keys differ)")]
    KeyMismatch,
    #[error("the PKCS#12 file cannot be read (wrong password, or not PKCS#12): {0}")]
    Pkcs12(String),
    #[error("the PKCS#12 file holds no private key with its certificate")]
    Pkcs12Empty,
}

/// The seal key and certificate, parsed once. Cheap to share (`Arc<Sealer>`); signing is `&self`.
pub struct Sealer {
    pub(crate) key: RsaKeyPair,
    /// The same key for RSA-SHA1, which aws-lc-rs does not sign with.
    pub(crate) legacy: Sha1Signer,
    pub(crate) rng: SystemRandom,
    pub(crate) cert_b64: String,
    pub(crate) issuer_dn: String,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("issuer_dn", &self.issuer_dn).finish_non_exhaustive()
    }
}

impl Sealer {
    /// From a PEM certificate (the first `CERTIFICATE` block is the seal's; chain blocks after it
    /// are ignored) and a PEM key (`PRIVATE KEY` = PKCS#8, or `RSA PRIVATE KEY` = PKCS#1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, SealError> {
        let cert_der = pem_blocks(cert_pem)?
            .into_iter()
            .find(|p| p.label == "CERTIFICATE")
            .ok_or(SealError::NoCertificate)?
            .contents;
        for p in pem_blocks(key_pem)? {
            let (key, legacy) = match p.label.as_str() {
                "PRIVATE KEY" => (RsaKeyPair::from_pkcs8(&p.contents), Sha1Signer::from_pkcs8(&p.contents)),
                "RSA PRIVATE KEY" => (RsaKeyPair::from_der(&p.contents), Sha1Signer::from_pkcs1(&p.contents)),
                "ENCRYPTED PRIVATE KEY" => return Err(SealError::EncryptedKey),
                _ => continue,
            };
            let key = key.map_err(|e| SealError::Key(e.to_string()))?;
            let legacy = legacy.ok_or_else(|| SealError::Key("AWS-LC cannot read it".into()))?;
            return Self::new(&cert_der, key, legacy);
        }
        Err(SealError::NoKey)
    }

    /// From a PKCS#12 file: legacy (PBE-SHA1-3DES, RC2) and modern (PBES2 AES-256, PBKDF2) both,
    /// read by `p12-keystore` (pure Rust). The first key with its certificate is the seal.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, SealError> {
        let store = p12_keystore::KeyStore::from_pkcs12(der, password, p12_keystore::Pkcs12ImportPolicy::Strict)
            .map_err(|e| SealError::Pkcs12(e.to_string()))?;
        let (_, chain) = store.private_key_chain().ok_or(SealError::Pkcs12Empty)?;
        let cert = chain.certs().first().ok_or(SealError::Pkcs12Empty)?;
        let der = chain.key().as_der();
        let key = RsaKeyPair::from_pkcs8(der).map_err(|e| SealError::Key(e.to_string()))?;
        let legacy = Sha1Signer::from_pkcs8(der).ok_or_else(|| SealError::Key("AWS-LC cannot read it".into()))?;
        Self::new(cert.as_der(), key, legacy)
    }

    fn new(cert_der: &[u8], key: RsaKeyPair, legacy: Sha1Signer) -> Result<Self, SealError> {
        let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| SealError::Certificate(e.to_string()))?;
        // RFC 5280 §4.1.2.7: for RSA, subjectPublicKey is the DER RSAPublicKey, which is what
        // aws-lc gives for the key pair's public half.
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(SealError::KeyMismatch);
        }
        Ok(Sealer {
            issuer_dn: rfc2253(cert.subject()),
            cert_b64: base64::engine::general_purpose::STANDARD.encode(cert_der),
            key,
            legacy,
            rng: SystemRandom::new(),
        })
    }

    /// The seal certificate's subject in RFC 2253 form: the VIHF `Issuer`.
    pub fn issuer_dn(&self) -> &str {
        &self.issuer_dn
    }
}

fn pem_blocks(s: &str) -> Result<Vec<Pem>, SealError> {
    let blocks: Vec<Pem> =
        Pem::iter_from_buffer(s.as_bytes()).collect::<Result<_, _>>().map_err(|e| SealError::Pem(e.to_string()))?;
    Ok(blocks)
}

/// The port's sealer: the seal with the `[dmp.vihf]` settings it writes VIHFs by.
pub struct SealedVihfs {
    settings: VihfSettings,
    sealer: Sealer,
}

impl SealedVihfs {
    /// Seals with `sealer`, by `settings` (validated at start).
    pub fn new(settings: VihfSettings, sealer: Sealer) -> Self {
        Self { settings, sealer }
    }
}

impl vigie_core::dmp::VihfSealer for SealedVihfs {
    fn seal(&self, r: &vigie_core::dmp::VihfRequest) -> Result<vigie_core::dmp::Vihf, SealRefusal> {
        let request = VihfRequest {
            idnat: r.idnat.as_str().to_owned(),
            subject_name: r.subject_name.clone(),
            roles: roles_for(r.profession.as_deref(), r.specialty.as_deref()),
            mie: r.mie.as_str().to_owned(),
            authn_instant: r.authn_instant,
            patient_ins: r.patient.as_str().to_owned(),
            purpose_of_use: r.purpose_of_use.clone(),
            now: r.now,
        };
        self.sealer.issue(&self.settings, &request).map_err(|e| match e {
            // What the configuration or the directory does not say: no VIHF for this professional.
            VihfError::UnknownMie(_) | VihfError::NoRole => SealRefusal::NotForThisSession(e.to_string()),
            e => SealRefusal::Failed(e.to_string()),
        })
    }
}
