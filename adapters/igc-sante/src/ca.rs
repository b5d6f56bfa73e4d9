//! A CA certificate as the validator keeps it: owned bytes of what path building and CRL checks
//! compare (subject name, public key) and the constraints RFC 5280 puts on an issuer.
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// Which CA issued a certificate or a CRL: its subject name and public key, both as DER.
/// Two CAs with one name and two keys (a renewed CA) are two issuers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IssuerKey {
    pub name: Vec<u8>,
    pub spki: Vec<u8>,
}

/// A trusted or learned CA certificate.
#[derive(Debug)]
pub(crate) struct CaCert {
    pub key: IssuerKey,
    /// The subject in RFC 4514-like form, for messages and status.
    pub dn: String,
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9).
    pub path_len: Option<u32>,
    /// keyUsage absent, or present with keyCertSign (RFC 5280 §4.2.1.3).
    pub may_sign_certs: bool,
    /// keyUsage absent, or present with cRLSign (RFC 5280 §4.2.1.3).
    pub may_sign_crls: bool,
    /// Configured by the operator (a path ends here), rather than sent by a client.
    pub anchor: bool,
}

impl CaCert {
    /// Reads a CA certificate; refuses one that is not a CA (RFC 5280 §4.2.1.9: cA must be true for a
    /// certificate whose key verifies certificate signatures).
    pub fn from_cert(cert: &X509Certificate<'_>, anchor: bool) -> Result<CaCert, String> {
        let constraints = cert.basic_constraints().map_err(|e| format!("basicConstraints does not parse: {e}"))?;
        let Some(constraints) = constraints.filter(|c| c.value.ca) else {
            return Err("it is not a CA certificate (basicConstraints cA is not true, RFC 5280 §4.2.1.9)".to_owned());
        };
        let usage = cert.key_usage().map_err(|e| format!("keyUsage does not parse: {e}"))?;
        let validity = cert.validity();
        Ok(CaCert {
            key: IssuerKey { name: cert.subject().as_raw().to_vec(), spki: cert.public_key().raw.to_vec() },
            dn: cert.subject().to_string(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            path_len: constraints.value.path_len_constraint,
            may_sign_certs: usage.as_ref().is_none_or(|u| u.value.key_cert_sign()),
            may_sign_crls: usage.as_ref().is_none_or(|u| u.value.crl_sign()),
            anchor,
        })
    }

    /// Checks a signature made with this CA's key over `signed` (a TBSCertificate or TBSCertList).
    pub fn verify(
        &self,
        algorithm: &AlgorithmIdentifier<'_>,
        signature: &x509_parser::asn1_rs::BitString<'_>,
        signed: &[u8],
    ) -> Result<(), X509Error> {
        let (_, spki) = SubjectPublicKeyInfo::from_der(&self.key.spki).map_err(|_| X509Error::InvalidSPKI)?;
        x509_parser::verify::verify_signature(&spki, algorithm, signature, signed)
    }
}

/// The serial number as compared between certificates and CRL entries: DER INTEGER content bytes
/// without the leading zero octets that only mark a positive number.
pub(crate) fn serial_key(raw: &[u8]) -> &[u8] {
    let zeros = raw.iter().take_while(|b| **b == 0).count();
    &raw[zeros.min(raw.len().saturating_sub(1))..]
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds as RFC 3339 (UTC), for messages.
pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}
