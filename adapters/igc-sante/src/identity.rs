//! Who holds a CPS or CPE card, read from the subject of its IGC-Santé authentication certificate.
//! Pure parsing: the caller has already validated the chain (or will); nothing here trusts the issuer.
//!
//! Subject layouts (`/work/shared/reference/dmp-vihf-cps.md` §3, "CPS subject DN"):
//! - CPS: one multi-valued RDN `SN=PHARMACH0007512+CN=899700075122+GN=CAROLE`, then `title=Pharmacien`,
//!   `C=FR`. The CN is the holder's `idNat_PS`. Legacy GIP-CPS cards also carry `OU=<profession>`, `O=…`.
//! - CPE: `O=<structure>`, `OU=1760021832` (structure id), `title=…`, `pseudonym=EMPLOYE000000018`,
//!   `CN=3760021832/000000018`. PDT-INF-617: a non-nominative CPE has no SN/GN.
use vigie_core::IdNat;
pub use vigie_core::cards::{CardIdentity, CardKind, CardSubject};
use x509_parser::asn1_rs::{Any, Class, FromDer, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_GIVEN_NAME, OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT,
    OID_X509_SURNAME, OID_X509_TITLE, Oid,
};
use x509_parser::x509::X509Name;

/// `pseudonym` (X.520 `id-at-pseudonym`, 2.5.4.65), carried by CPE subjects.
const PSEUDONYM: &[u64] = &[2, 5, 4, 65];
/// Private ASIP/ANS extension holding the profession code (same OID as the VIHF `Role` code system).
pub const PROFESSION_EXTENSION: &[u64] = &[1, 2, 250, 1, 71, 1, 2, 7];
/// Private ASIP/ANS extension holding the specialty code (e.g. `SM26`).
pub const SPECIALTY_EXTENSION: &[u64] = &[1, 2, 250, 1, 71, 4, 2, 5];

/// Why a certificate does not give a card identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// The bytes are not one DER-encoded X.509 certificate.
    #[error("the certificate is not DER X.509: {0}")]
    NotX509(String),
    /// No CN anywhere in the subject.
    #[error("the subject has no CN: an IGC-Santé card certificate always names its holder in the CN")]
    NoCn,
    /// An attribute read for the identity appears twice; picking one would be a guess.
    #[error("the subject has more than one {0}: refusing an ambiguous card identity")]
    Duplicate(&'static str),
    /// An attribute read for the identity is not a text string.
    #[error("the subject's {attribute} is not a readable string: {reason}")]
    BadAttribute {
        /// Short name of the attribute (`CN`, `SN`, …).
        attribute: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A CPS whose CN is not an `idNat_PS`.
    #[error("CN '{cn}' is not an idNat_PS: {reason}")]
    NotIdNat {
        /// The CN as found.
        cn: String,
        /// Why `vigie_core::IdNat::parse` refused it.
        reason: String,
    },
}

/// Reads the identity in a CPS/CPE authentication certificate (DER). Does not validate the chain,
/// the validity period or revocation.
///
/// The private extensions ([`PROFESSION_EXTENSION`], [`SPECIALTY_EXTENSION`]) are read from their
/// raw `extnValue`, assumed to be one DER value: a UTF8String, IA5String or PrintableString gives its
/// text; an INTEGER gives its decimal form (the legacy `TEST CLASSE-1` card of reference §3 has the
/// profession as INTEGER `10`); a SEQUENCE holding exactly one of these gives that (its specialty is
/// `SEQUENCE { UTF8String "SM26" }`). Anything else is returned as lowercase hex of the raw value.
/// IGC-Santé cards have not been checked: the reference marks their use of these extensions NOT FOUND.
pub fn card_identity(der: &[u8]) -> Result<CardIdentity, CardError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| CardError::NotX509(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CardError::NotX509(format!("{} bytes follow the certificate", rest.len())));
    }
    identity_of(&cert)
}

/// [`card_identity`] of a certificate already parsed.
pub(crate) fn identity_of(cert: &X509Certificate<'_>) -> Result<CardIdentity, CardError> {
    let subject = subject_identity(cert.subject())?;
    let extension = |oid: &[u64]| {
        let oid = Oid::from(oid).ok()?;
        cert.extensions().iter().find(|e| e.oid == oid).map(|e| extension_text(e.value))
    };
    let validity = cert.validity();
    Ok(CardIdentity {
        subject,
        profession_code: extension(PROFESSION_EXTENSION),
        specialty_code: extension(SPECIALTY_EXTENSION),
        issuer_dn: cert.issuer().to_string(),
        serial_hex: hex(cert.raw_serial()),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// Reads the holder from a subject DN, whether its attributes share one RDN (`SN+CN+GN`) or not.
///
/// The kind, per reference §3: a CPE subject names its structure (`O` or `OU`) and its CN is
/// `<structure id>/<employee number>`; so a subject with `O` or `OU` **and** a `/` in its CN is a
/// CPE (nominative when it has `SN` or `GN`), and anything else is a CPS, whose CN must be an
/// `idNat_PS` (legacy GIP-CPS cards have `O`/`OU` but a CN without `/`).
pub fn subject_identity(name: &X509Name) -> Result<CardSubject, CardError> {
    let cn = attribute(name, &OID_X509_COMMON_NAME, "CN")?.ok_or(CardError::NoCn)?;
    let surname = attribute(name, &OID_X509_SURNAME, "SN")?;
    let given_name = attribute(name, &OID_X509_GIVEN_NAME, "GN")?;
    let title = attribute(name, &OID_X509_TITLE, "title")?;
    let organization = attribute(name, &OID_X509_ORGANIZATION_NAME, "O")?;
    let structure_id = attribute(name, &OID_X509_ORGANIZATIONAL_UNIT, "OU")?;
    let pseudonym = match Oid::from(PSEUDONYM) {
        Ok(oid) => attribute(name, &oid, "pseudonym")?,
        Err(_) => None,
    };
    let is_cpe = (organization.is_some() || structure_id.is_some()) && cn.contains('/');
    let (kind, idnat) = if is_cpe {
        let kind = if surname.is_some() || given_name.is_some() {
            CardKind::CpeNominative
        } else {
            CardKind::CpeNonNominative
        };
        (kind, IdNat::parse(&cn).ok())
    } else {
        let idnat = IdNat::parse(&cn).map_err(|e| CardError::NotIdNat { cn: cn.clone(), reason: e.to_string() })?;
        (CardKind::Cps, Some(idnat))
    };
    Ok(CardSubject { kind, idnat, cn, surname, given_name, title, organization, structure_id, pseudonym })
}

/// The single value of `oid` in `name`, looked for in every RDN (multi-valued ones included).
fn attribute(name: &X509Name, oid: &Oid, label: &'static str) -> Result<Option<String>, CardError> {
    let mut found = None;
    for value in name.iter().flat_map(|rdn| rdn.iter()).filter(|a| a.attr_type() == oid) {
        if found.is_some() {
            return Err(CardError::Duplicate(label));
        }
        let any = value.attr_value();
        let text = match any.tag() {
            // Cards issued before UTF8String was mandatory may carry accented labels as BMPString.
            Tag::BmpString => bmp_string(any.data),
            _ => value.as_str().map(str::to_owned).map_err(|e| e.to_string()),
        };
        found = Some(text.map_err(|reason| CardError::BadAttribute { attribute: label, reason })?);
    }
    Ok(found)
}

fn bmp_string(data: &[u8]) -> Result<String, String> {
    if !data.len().is_multiple_of(2) {
        return Err("BMPString of odd length".to_owned());
    }
    let units = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units).collect::<Result<String, _>>().map_err(|e| e.to_string())
}

/// Decodes a private extension's value as documented on [`card_identity`].
fn extension_text(value: &[u8]) -> String {
    match Any::from_der(value) {
        Ok(([], any)) => der_text(&any)
            .or_else(|| {
                let (rest, inner) = (any.header.class() == Class::Universal && any.header.tag() == Tag::Sequence)
                    .then(|| Any::from_der(any.data).ok())??;
                if rest.is_empty() { der_text(&inner) } else { None }
            })
            .unwrap_or_else(|| hex(value)),
        _ => hex(value),
    }
}

/// The text of a universal string or small non-negative INTEGER.
fn der_text(any: &Any) -> Option<String> {
    if any.header.class() != Class::Universal {
        return None;
    }
    match any.header.tag() {
        Tag::Utf8String | Tag::Ia5String | Tag::PrintableString => {
            std::str::from_utf8(any.data).ok().map(str::to_owned)
        }
        Tag::Integer if !any.data.is_empty() && any.data.len() <= 8 && any.data[0] & 0x80 == 0 => {
            Some(any.data.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)).to_string())
        }
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
