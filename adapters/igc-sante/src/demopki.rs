//! The embedded demo's card PKI (feature `demo-pki`), shaped like IGC-Santé's TEST PKI (reference
//! `dmp-vihf-cps.md` §3): a root and a card-issuing CA, valid CPS/CPE card certificates with the real
//! subject layouts, and CRLs. Real keys and signatures (aws-lc via rcgen). What makes certificates
//! that must be refused (impostor CA, missing usages, out-of-date cards) is a test fixture, in
//! `testpki` (feature `test-fixtures`), kept out of the production binary.
//!
//! rcgen cannot write a multi-valued RDN (`SN+CN+GN`), so card certificates are made by rcgen with a
//! placeholder subject, then their TBSCertificate gets the real subject and is signed again with
//! the issuing CA's key.
use base64::Engine;
use rcgen::{
    CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber, SigningKey,
};
use time::OffsetDateTime;
use x509_parser::asn1_rs::{Any, FromDer};
use x509_parser::certificate::X509Certificate;

pub use rcgen::RevocationReason;

/// The profession extension, written here and not taken from the parser, so that cards made by
/// this PKI check the parser's OID instead of agreeing with it by construction: reference
/// `dmp-vihf-cps.md` §3 (legacy `TEST CLASSE-1` card; the VIHF `Role` code system of §1).
const PROFESSION_OID: &[u64] = &[1, 2, 250, 1, 71, 1, 2, 7];
/// The specialty extension (reference §3; the VIHF "specialites RPPS" code system of §1).
const SPECIALTY_OID: &[u64] = &[1, 2, 250, 1, 71, 4, 2, 5];

/// Subject of the test root, as IGC-Santé writes its TEST roots (RFC 4514 order, most specific first).
pub const ROOT_DN: &str =
    "CN=TEST AC RACINE IGC-SANTE ELEMENTAIRE,OU=IGC-SANTE TEST,OU=0002 187512751,O=ASIP-SANTE,C=FR";
/// Common name of the card-issuing test CA (same layout as the root).
pub const CA_CN: &str = "TEST AC IGC-SANTE ELEMENTAIRE PERSONNES";
/// Common name of the test root.
pub const ROOT_CN: &str = "TEST AC RACINE IGC-SANTE ELEMENTAIRE";
/// Why the demo PKI could not make something.
#[derive(Debug, thiserror::Error)]
#[error("test PKI: {0}")]
pub struct DemoPkiError(String);

impl From<rcgen::Error> for DemoPkiError {
    fn from(e: rcgen::Error) -> Self {
        DemoPkiError(e.to_string())
    }
}

/// Key algorithm of generated keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyAlg {
    /// ECDSA P-256 with SHA-256: fast, the default.
    #[default]
    EcdsaP256,
    /// RSA-2048 with PKCS#1 v1.5 SHA-256, as real CPS4 cards (slower to generate).
    Rsa2048,
}

impl KeyAlg {
    fn generate(self) -> Result<KeyPair, DemoPkiError> {
        Ok(match self {
            KeyAlg::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
            KeyAlg::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?,
        })
    }
}

/// A CA of the demo PKI, with its key.
pub struct DemoCa {
    /// Its certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its certificate, PEM.
    pub cert_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl std::fmt::Debug for DemoCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCa").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

/// The demo PKI: what a card reader's trust store and the demo's cards need.
#[derive(Debug)]
pub struct DemoPki {
    /// `TEST AC RACINE IGC-SANTE ELEMENTAIRE`.
    pub root: DemoCa,
    /// `TEST AC IGC-SANTE ELEMENTAIRE PERSONNES`, issued by `root`; it issues cards and CRLs.
    pub ca: DemoCa,
}

/// Whom a card names, with the subject layouts of reference §3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// CPS: `C=FR`, `title`, then one RDN `SN+CN+GN` with CN = idNat_PS.
    Cps {
        /// idNat_PS, e.g. `810001234567` or `00B7010446`.
        idnat: String,
        /// SN.
        surname: String,
        /// GN.
        given_name: String,
        /// Profession label, e.g. `Médecin`.
        title: String,
    },
    /// Nominative CPE: `C=FR`, `O`, `OU` (structure id), `title`, `pseudonym`, then `SN+CN+GN`.
    CpeNominative {
        /// O: the structure's name.
        organization: String,
        /// OU: the structure's id, e.g. `1760021832`.
        structure_id: String,
        /// CN, `xxxx/yyyy`, e.g. `3760021832/000000018`.
        cn: String,
        /// pseudonym, e.g. `EMPLOYE000000018`.
        pseudonym: String,
        /// SN.
        surname: String,
        /// GN.
        given_name: String,
    },
    /// Non-nominative CPE (PDT-INF-617): as nominative, without SN/GN; CN on its own RDN.
    CpeNonNominative {
        /// O.
        organization: String,
        /// OU.
        structure_id: String,
        /// CN, `xxxx/yyyy`.
        cn: String,
        /// pseudonym.
        pseudonym: String,
    },
}

/// Title of CPE subjects (reference §3).
const CPE_TITLE: &str = "Carte de service santé ou social";

/// What card certificate to issue. [`CardSpec::new`] gives a valid authentication certificate;
/// the builder methods here keep it valid (the tests' fixtures make it otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardSpec {
    /// The subject.
    pub holder: Holder,
    /// Serial number (big-endian magnitude; a leading 0 is added by the encoder when needed).
    pub serial: Vec<u8>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// EKU clientAuth (otherwise EKU emailProtection only, like a signature certificate).
    pub(crate) client_auth_eku: bool,
    /// keyUsage digitalSignature (otherwise keyEncipherment only).
    pub(crate) digital_signature: bool,
    /// CRL distribution point URI.
    pub crl_url: Option<String>,
    /// Extension 1.2.250.1.71.1.2.7 as INTEGER.
    pub profession_code: Option<u32>,
    /// Extension 1.2.250.1.71.4.2.5 as SEQUENCE { UTF8String }.
    pub specialty_code: Option<String>,
    /// The card's key.
    pub key_alg: KeyAlg,
}

impl CardSpec {
    /// A valid authentication certificate for `holder`: random serial, valid from a day ago for
    /// three years, keyUsage digitalSignature, EKU clientAuth, P-256.
    pub fn new(holder: Holder) -> CardSpec {
        let mut serial = [0u8; 8];
        // A fixed serial if the system RNG fails: tests that care set their own.
        let _ = aws_lc_rs::rand::fill(&mut serial);
        serial[0] = (serial[0] & 0x7f) | 0x10;
        let now = now_unix();
        CardSpec {
            holder,
            serial: serial.to_vec(),
            not_before: now - 86_400,
            not_after: now + 3 * 365 * 86_400,
            client_auth_eku: true,
            digital_signature: true,
            crl_url: None,
            profession_code: None,
            specialty_code: None,
            key_alg: KeyAlg::EcdsaP256,
        }
    }

    /// A CPS.
    pub fn cps(idnat: &str, surname: &str, given_name: &str, title: &str) -> CardSpec {
        CardSpec::new(Holder::Cps {
            idnat: idnat.to_owned(),
            surname: surname.to_owned(),
            given_name: given_name.to_owned(),
            title: title.to_owned(),
        })
    }

    /// A nominative CPE; CN `<3 + structure id without its first digit>/<employee>`, pseudonym `EMPLOYE<employee>`.
    pub fn cpe_nominative(
        organization: &str,
        structure_id: &str,
        employee: &str,
        surname: &str,
        given_name: &str,
    ) -> CardSpec {
        CardSpec::new(Holder::CpeNominative {
            organization: organization.to_owned(),
            structure_id: structure_id.to_owned(),
            cn: cpe_cn(structure_id, employee),
            pseudonym: format!("EMPLOYE{employee}"),
            surname: surname.to_owned(),
            given_name: given_name.to_owned(),
        })
    }

    /// A non-nominative CPE, CN and pseudonym as for [`CardSpec::cpe_nominative`].
    pub fn cpe_non_nominative(organization: &str, structure_id: &str, employee: &str) -> CardSpec {
        CardSpec::new(Holder::CpeNonNominative {
            organization: organization.to_owned(),
            structure_id: structure_id.to_owned(),
            cn: cpe_cn(structure_id, employee),
            pseudonym: format!("EMPLOYE{employee}"),
        })
    }

    /// Sets the serial number.
    pub fn serial(mut self, serial: &[u8]) -> Self {
        self.serial = serial.to_vec();
        self
    }

    /// Sets the CRL distribution point.
    pub fn crl_url(mut self, url: &str) -> Self {
        self.crl_url = Some(url.to_owned());
        self
    }

    /// Adds the private profession and specialty extensions (legacy encodings of reference §3).
    pub fn profession(mut self, profession_code: u32, specialty_code: &str) -> Self {
        self.profession_code = Some(profession_code);
        self.specialty_code = Some(specialty_code.to_owned());
        self
    }

    /// Sets the card's key algorithm.
    pub fn key_alg(mut self, alg: KeyAlg) -> Self {
        self.key_alg = alg;
        self
    }
}

fn cpe_cn(structure_id: &str, employee: &str) -> String {
    format!("3{}/{employee}", structure_id.get(1..).unwrap_or(""))
}

/// A card certificate and its key.
#[derive(Clone, Debug)]
pub struct DemoCard {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate then its issuing CA, PEM (what a TLS client sends).
    pub chain_pem: String,
    /// The certificate then its issuing CA, DER.
    pub chain_der: Vec<Vec<u8>>,
    /// The serial as given in the spec.
    pub serial: Vec<u8>,
}

impl DemoPki {
    /// Generates the PKI with P-256 keys.
    pub fn generate() -> Result<DemoPki, DemoPkiError> {
        DemoPki::generate_with(KeyAlg::EcdsaP256)
    }

    /// Generates the PKI with keys of `alg`. CAs are valid from a year ago for twenty years.
    pub fn generate_with(alg: KeyAlg) -> Result<DemoPki, DemoPkiError> {
        let root = DemoCa::root(ROOT_CN, alg)?;
        let ca = root.intermediate(CA_CN, alg)?;
        Ok(DemoPki { root, ca })
    }

    /// The root and the card-issuing CA, PEM: what `anchors_pem` takes.
    pub fn anchors_pem(&self) -> String {
        format!("{}{}", self.root.cert_pem, self.ca.cert_pem)
    }

    /// Issues a card certificate from the trusted CA.
    pub fn issue(&self, spec: &CardSpec) -> Result<DemoCard, DemoPkiError> {
        self.ca.issue(spec)
    }

    /// A CRL of the trusted CA: `revoked` as (serial, revocation time), times in Unix seconds.
    pub fn crl_der(
        &self,
        revoked: &[(Vec<u8>, i64)],
        this_update: i64,
        next_update: i64,
    ) -> Result<Vec<u8>, DemoPkiError> {
        self.ca.crl_der(revoked, this_update, next_update)
    }
}

impl DemoCa {
    pub(crate) fn root(cn: &str, alg: KeyAlg) -> Result<DemoCa, DemoPkiError> {
        let key = alg.generate()?;
        let params = ca_params(cn, IsCa::Ca(rcgen::BasicConstraints::Unconstrained))?;
        let cert = params.self_signed(&key)?;
        Ok(DemoCa { cert_der: cert.der().to_vec(), cert_pem: cert.pem(), params, key })
    }

    pub(crate) fn intermediate(&self, cn: &str, alg: KeyAlg) -> Result<DemoCa, DemoPkiError> {
        let key = alg.generate()?;
        let mut params = ca_params(cn, IsCa::Ca(rcgen::BasicConstraints::Constrained(0)))?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(DemoCa { cert_der: cert.der().to_vec(), cert_pem: cert.pem(), params, key })
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// The CA's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a card certificate.
    pub fn issue(&self, spec: &CardSpec) -> Result<DemoCard, DemoPkiError> {
        let key = spec.key_alg.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "placeholder");
        params.serial_number = Some(SerialNumber::from_slice(&spec.serial));
        params.not_before = datetime(spec.not_before)?;
        params.not_after = datetime(spec.not_after)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = if spec.digital_signature {
            vec![KeyUsagePurpose::DigitalSignature]
        } else {
            vec![KeyUsagePurpose::KeyEncipherment]
        };
        params.extended_key_usages = if spec.client_auth_eku {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::EmailProtection]
        };
        params.crl_distribution_points =
            spec.crl_url.iter().map(|url| CrlDistributionPoint { uris: vec![url.clone()] }).collect();
        params.use_authority_key_identifier_extension = true;
        if let Some(code) = spec.profession_code {
            let magnitude: Vec<u8> = code.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            let mut content = if magnitude.first().is_none_or(|b| b & 0x80 != 0) { vec![0] } else { Vec::new() };
            content.extend(magnitude);
            params.custom_extensions.push(CustomExtension::from_oid_content(PROFESSION_OID, tlv(0x02, &content)));
        }
        if let Some(code) = &spec.specialty_code {
            let value = tlv(0x30, &tlv(0x0c, code.as_bytes()));
            params.custom_extensions.push(CustomExtension::from_oid_content(SPECIALTY_OID, value));
        }
        let placeholder = params.signed_by(&key, &self.issuer())?;
        let cert_der = replace_subject(placeholder.der(), &spec.holder.subject_der(), &self.key)?;
        let cert_pem = pem("CERTIFICATE", &cert_der);
        Ok(DemoCard {
            chain_pem: format!("{cert_pem}{}", self.cert_pem),
            chain_der: vec![cert_der.clone(), self.cert_der.clone()],
            cert_der,
            cert_pem,
            key_pem: key.serialize_pem(),
            serial: spec.serial.clone(),
        })
    }

    /// A CRL signed by this CA: `revoked` as (serial, revocation time), times in Unix seconds.
    pub fn crl_der(
        &self,
        revoked: &[(Vec<u8>, i64)],
        this_update: i64,
        next_update: i64,
    ) -> Result<Vec<u8>, DemoPkiError> {
        let entries: Vec<_> = revoked.iter().map(|(serial, at)| (serial.clone(), *at, None)).collect();
        self.crl_der_with_reasons(&entries, this_update, next_update)
    }

    /// [`DemoCa::crl_der`] with a reasonCode per entry.
    pub fn crl_der_with_reasons(
        &self,
        revoked: &[(Vec<u8>, i64, Option<RevocationReason>)],
        this_update: i64,
        next_update: i64,
    ) -> Result<Vec<u8>, DemoPkiError> {
        let revoked_certs = revoked
            .iter()
            .map(|(serial, at, reason)| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: datetime(*at)?,
                    reason_code: *reason,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, DemoPkiError>>()?;
        let params = CertificateRevocationListParams {
            this_update: datetime(this_update)?,
            next_update: datetime(next_update)?,
            crl_number: SerialNumber::from(u64::try_from(this_update).unwrap_or(1)),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer())?.der().to_vec())
    }
}

impl Holder {
    /// The subject Name, DER, in certificate order (reference §3 layouts).
    pub fn subject_der(&self) -> Vec<u8> {
        const C: u8 = 6;
        const O: u8 = 10;
        const OU: u8 = 11;
        const TITLE: u8 = 12;
        const CN: u8 = 3;
        const SN: u8 = 4;
        const GN: u8 = 42;
        const PSEUDONYM: u8 = 65;
        let country = rdn(&[(C, "FR")]);
        let rdns: Vec<Vec<u8>> = match self {
            Holder::Cps { idnat, surname, given_name, title } => {
                vec![country, rdn(&[(TITLE, title)]), rdn(&[(SN, surname), (CN, idnat), (GN, given_name)])]
            }
            Holder::CpeNominative { organization, structure_id, cn, pseudonym, surname, given_name } => vec![
                country,
                rdn(&[(O, organization)]),
                rdn(&[(OU, structure_id)]),
                rdn(&[(TITLE, CPE_TITLE)]),
                rdn(&[(PSEUDONYM, pseudonym)]),
                rdn(&[(SN, surname), (CN, cn), (GN, given_name)]),
            ],
            Holder::CpeNonNominative { organization, structure_id, cn, pseudonym } => vec![
                country,
                rdn(&[(O, organization)]),
                rdn(&[(OU, structure_id)]),
                rdn(&[(TITLE, CPE_TITLE)]),
                rdn(&[(PSEUDONYM, pseudonym)]),
                rdn(&[(CN, cn)]),
            ],
        };
        tlv(0x30, &rdns.concat())
    }
}

/// One RDN: a SET of `id-at-<attr>` values, sorted by encoding as DER requires for SET OF (X.690 §11.6).
fn rdn(attributes: &[(u8, &str)]) -> Vec<u8> {
    let mut encoded: Vec<Vec<u8>> = attributes
        .iter()
        .map(|(attr, value)| {
            // countryName is a PrintableString (X.520); the others UTF8String (RFC 5280 §4.1.2.6).
            let tag = if *attr == 6 { 0x13 } else { 0x0c };
            let mut atv = tlv(0x06, &[0x55, 0x04, *attr]);
            atv.extend(tlv(tag, value.as_bytes()));
            tlv(0x30, &atv)
        })
        .collect();
    encoded.sort();
    tlv(0x31, &encoded.concat())
}

fn ca_params(cn: &str, is_ca: IsCa) -> Result<CertificateParams, DemoPkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let country = rcgen::string::PrintableString::try_from("FR")?;
    dn.push(DnType::CountryName, DnValue::PrintableString(country));
    dn.push(DnType::OrganizationName, "ASIP-SANTE");
    dn.push(DnType::OrganizationalUnitName, "0002 187512751");
    // rcgen keeps one value per attribute type; the second OU goes in under its OID spelled out.
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 11]), "IGC-SANTE TEST");
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = is_ca;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = now_unix();
    params.not_before = datetime(now - 365 * 86_400)?;
    params.not_after = datetime(now + 20 * 365 * 86_400)?;
    Ok(params)
}

/// Puts `subject` (a DER Name) in place of the certificate's subject and signs it again with `signer`.
fn replace_subject(cert_der: &[u8], subject: &[u8], signer: &KeyPair) -> Result<Vec<u8>, DemoPkiError> {
    let bad = |what: &str| DemoPkiError(format!("rcgen's certificate does not parse: {what}"));
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| bad(&e.to_string()))?;
    let tbs = cert.tbs_certificate.as_ref();
    let old = cert.subject().as_raw();
    let start = old.as_ptr().addr().checked_sub(tbs.as_ptr().addr()).ok_or_else(|| bad("subject outside TBS"))?;
    let (_, tbs_any) = Any::from_der(tbs).map_err(|e| bad(&e.to_string()))?;
    let header = tbs.len() - tbs_any.data.len();
    let mut content = tbs[header..start].to_vec();
    content.extend_from_slice(subject);
    content.extend_from_slice(&tbs[start + old.len()..]);
    let new_tbs = tlv(0x30, &content);
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (RFC 5280 §4.1)
    let (_, outer) = Any::from_der(cert_der).map_err(|e| bad(&e.to_string()))?;
    let after_tbs = &outer.data[tbs.len()..];
    let (after_alg, _) = Any::from_der(after_tbs).map_err(|e| bad(&e.to_string()))?;
    let algorithm = &after_tbs[..after_tbs.len() - after_alg.len()];
    let mut bits = vec![0u8];
    bits.extend(signer.sign(&new_tbs)?);
    let mut body = new_tbs;
    body.extend_from_slice(algorithm);
    body.extend(tlv(0x03, &bits));
    Ok(tlv(0x30, &body))
}

/// One DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// PEM with 64-column lines (RFC 7468 §2).
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn datetime(unix: i64) -> Result<OffsetDateTime, DemoPkiError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| DemoPkiError(format!("time {unix}: {e}")))
}

fn now_unix() -> i64 {
    crate::crl::now_unix()
}
