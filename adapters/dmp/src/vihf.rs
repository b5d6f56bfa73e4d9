//! The VIHF: a SAML 2.0 assertion (reference §1 skeleton) written directly in its exclusive-canonical
//! form, its digest and signature computed over the bytes written here, no re-parsing.

use aws_lc_rs::digest;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::ins::{InsError, InsNir};
use crate::roles::HlRole;
use crate::seal::Sealer;
use crate::settings::{PrimaryAuthPlacement, SignatureAlg, VihfSettings};
use crate::xml::{self, BadChar};
pub use vigie_core::dmp::Vihf;

/// What the caller knows about this VIHF: who, how they authenticated, which patient, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VihfRequest {
    /// idNat_PS of the professional: the `NameID`.
    pub idnat: String,
    /// `subject-id`: "Nom, Prénom" (and service); omitted when empty.
    pub subject_name: String,
    /// From [`crate::roles_for`]: the profession first.
    pub roles: Vec<HlRole>,
    /// MIE label (`vigie_core::Mie::as_str`): picks the `AuthnContextClassRef`.
    pub mie: String,
    /// When the professional authenticated (Unix seconds): `AuthnInstant`.
    pub authn_instant: i64,
    /// The patient's INS-NIR, 15 characters (NIR 13 + key 2).
    pub patient_ins: String,
    /// A key of `VihfSettings::purposes` (`normal` by default).
    pub purpose_of_use: String,
    /// Now (Unix seconds): `IssueInstant`, `NotBefore`.
    pub now: i64,
}

/// Why a VIHF was not issued.
#[derive(Debug, thiserror::Error)]
pub enum VihfError {
    #[error(transparent)]
    BadChar(#[from] BadChar),
    #[error("patient_ins: {0}")]
    Ins(#[from] InsError),
    #[error("{0} is empty: a VIHF cannot be issued without it")]
    Empty(&'static str),
    #[error("no role: the VIHF needs the professional's profession (TRE_G15) as first role")]
    NoRole,
    #[error("MIE {0:?} has no AuthnContextClassRef in dmp.vihf.authn_context: no VIHF for this authentication")]
    UnknownMie(String),
    #[error("purpose of use {0:?} is not one of dmp.vihf.purposes ({1})")]
    UnknownPurpose(String, String),
    #[error("{0} = {1} is not a date between years 1970 and 9999")]
    Time(&'static str, i64),
    #[error("signing the VIHF failed (seal key unusable)")]
    Sign,
}

const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const XS_NS: &str = "http://www.w3.org/2001/XMLSchema";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// xs:dateTime in UTC, second precision (SAML core §1.3.3: "MUST be expressed in UTC form").
fn instant(what: &'static str, t: i64) -> Result<String, VihfError> {
    let d = time::OffsetDateTime::from_unix_timestamp(t).map_err(|_| VihfError::Time(what, t))?;
    if !(1970..=9999).contains(&d.year()) {
        return Err(VihfError::Time(what, t));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    ))
}

/// An attribute with one `xs:string` value.
fn string_attribute(out: &mut String, name: &'static str, value: &str) -> Result<(), VihfError> {
    named_string_attribute(out, name, name, value)
}

fn named_string_attribute(out: &mut String, field: &'static str, name: &str, value: &str) -> Result<(), VihfError> {
    out.push_str("<saml2:Attribute Name=\"");
    xml::attr(out, "attribute name", name)?;
    out.push_str("\"><saml2:AttributeValue xsi:type=\"xs:string\">");
    xml::text(out, field, value)?;
    out.push_str("</saml2:AttributeValue></saml2:Attribute>");
    Ok(())
}

/// An HL7 CE value (`Role`, `PurposeOfUse`) in the HL7 v3 namespace. C14N 1.0 §2.3: the namespace
/// declaration comes first, then the attributes without namespace in lexicographic order of their
/// local names (`code` < `codeSystem` < `codeSystemName` < `displayName`), then `xsi:type`.
fn ce_value(
    out: &mut String,
    element: &str,
    code: &str,
    system: &str,
    system_name: &str,
    display: &str,
) -> Result<(), VihfError> {
    out.push_str("<saml2:AttributeValue><");
    out.push_str(element);
    out.push_str(" xmlns=\"urn:hl7-org:v3\" code=\"");
    xml::attr(out, "code", code)?;
    out.push_str("\" codeSystem=\"");
    xml::attr(out, "codeSystem", system)?;
    out.push_str("\" codeSystemName=\"");
    xml::attr(out, "codeSystemName", system_name)?;
    out.push_str("\" displayName=\"");
    xml::attr(out, "displayName", display)?;
    out.push_str("\" xsi:type=\"CE\"></");
    out.push_str(element);
    out.push_str("></saml2:AttributeValue>");
    Ok(())
}

struct Algs {
    signature_uri: &'static str,
    digest_uri: &'static str,
    digest: &'static digest::Algorithm,
}

fn algs(a: SignatureAlg) -> Algs {
    match a {
        SignatureAlg::RsaSha256 => Algs {
            signature_uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest_uri: "http://www.w3.org/2001/04/xmlenc#sha256",
            digest: &digest::SHA256,
        },
        SignatureAlg::RsaSha1 => Algs {
            signature_uri: "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            digest_uri: "http://www.w3.org/2000/09/xmldsig#sha1",
            digest: &digest::SHA1_FOR_LEGACY_USE_ONLY,
        },
    }
}

impl Sealer {
    /// Builds and signs a VIHF.
    ///
    /// The assertion is written as its own exclusive canonical form (xml-exc-c14n with
    /// `InclusiveNamespaces PrefixList="xs xsi"`, because `xs` is only used inside the attribute
    /// value `xsi:type="xs:string"`, which exc-c14n does not count as visible use, §3): no
    /// self-closing tags, attributes in canonical order, namespaces declared once on the
    /// `Assertion` (saml2, xs, xsi) or where first used (HL7 default namespace), no whitespace
    /// between elements. So the digest of the enveloped-signature transform's output (the
    /// assertion without `ds:Signature`, XMLDSig §6.6.4) is the digest of the bytes written here,
    /// wherever the assertion is later embedded.
    ///
    /// `s` is expected to have passed [`VihfSettings::validate`] at start; a value that XML cannot
    /// carry is still refused here, naming its field.
    pub fn issue(&self, s: &VihfSettings, r: &VihfRequest) -> Result<Vihf, VihfError> {
        if r.idnat.trim().is_empty() {
            return Err(VihfError::Empty("idnat"));
        }
        if r.roles.is_empty() {
            return Err(VihfError::NoRole);
        }
        let ins = InsNir::parse(&r.patient_ins)?;
        let class_ref = s.authn_context.get(&r.mie).ok_or_else(|| VihfError::UnknownMie(r.mie.clone()))?;
        let purpose = s.purposes.get(&r.purpose_of_use).ok_or_else(|| {
            VihfError::UnknownPurpose(
                r.purpose_of_use.clone(),
                s.purposes.keys().cloned().collect::<Vec<_>>().join(", "),
            )
        })?;
        let not_on_or_after = r.now.saturating_add(s.validity_secs);
        let issue_instant = instant("now", r.now)?;
        let end = instant("now + validity_secs", not_on_or_after)?;
        let authn_instant = instant("authn_instant", r.authn_instant)?;
        let id = format!("_{}", uuid::Uuid::new_v4());

        // Everything before the place of ds:Signature (SAML core §5.4.1 / reference skeleton: right
        // after Issuer), and everything after it.
        let mut head = String::with_capacity(640);
        head.push_str("<saml2:Assertion xmlns:saml2=\"");
        head.push_str(SAML_NS);
        head.push_str("\" xmlns:xs=\"");
        head.push_str(XS_NS);
        head.push_str("\" xmlns:xsi=\"");
        head.push_str(XSI_NS);
        head.push_str("\" ID=\"");
        head.push_str(&id);
        head.push_str("\" IssueInstant=\"");
        head.push_str(&issue_instant);
        head.push_str(
            "\" Version=\"2.0\"><saml2:Issuer Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName\">",
        );
        xml::text(&mut head, "issuer_dn", &self.issuer_dn)?;
        head.push_str("</saml2:Issuer>");

        let mut tail = String::with_capacity(3072);
        tail.push_str("<saml2:Subject><saml2:NameID>");
        xml::text(&mut tail, "idnat", &r.idnat)?;
        tail.push_str("</saml2:NameID></saml2:Subject><saml2:Conditions NotBefore=\"");
        tail.push_str(&issue_instant);
        tail.push_str("\" NotOnOrAfter=\"");
        tail.push_str(&end);
        tail.push_str("\"></saml2:Conditions><saml2:AuthnStatement AuthnInstant=\"");
        tail.push_str(&authn_instant);
        tail.push_str("\"><saml2:AuthnContext><saml2:AuthnContextClassRef>");
        xml::text(&mut tail, "authn_context", class_ref)?;
        tail.push_str("</saml2:AuthnContextClassRef>");
        if s.primary_auth_placement == PrimaryAuthPlacement::AuthnContextDecl {
            tail.push_str("<saml2:AuthnContextDecl>");
            xml::text(&mut tail, "primary_auth", &s.primary_auth)?;
            tail.push_str("</saml2:AuthnContextDecl>");
        }
        tail.push_str("</saml2:AuthnContext></saml2:AuthnStatement><saml2:AttributeStatement>");
        string_attribute(&mut tail, "Identifiant_Structure", &s.structure_id)?;
        string_attribute(&mut tail, "Secteur_Activite", &s.secteur_activite)?;
        if !r.subject_name.is_empty() {
            string_attribute(&mut tail, "urn:oasis:names:tc:xspa:1.0:subject:subject-id", &r.subject_name)?;
        }
        tail.push_str("<saml2:Attribute Name=\"urn:oasis:names:tc:xacml:2.0:subject:role\">");
        for role in &r.roles {
            ce_value(&mut tail, "Role", &role.code, &role.code_system, &role.code_system_name, &role.display_name)?;
        }
        tail.push_str("</saml2:Attribute>");
        string_attribute(&mut tail, "VIHF_Version", &s.version)?;
        named_string_attribute(&mut tail, "auth_mode", &s.auth_mode_attribute, &s.auth_mode)?;
        if let PrimaryAuthPlacement::Attribute(name) = &s.primary_auth_placement {
            named_string_attribute(&mut tail, "primary_auth", name, &s.primary_auth)?;
        }
        // Reference §1: `<INS>^^^&<assigning authority OID>&ISO^NH` (HL7 v2 CX).
        let resource = format!("{}^^^&{}&ISO^NH", ins.as_str(), s.ins_oid);
        string_attribute(&mut tail, "urn:oasis:names:tc:xacml:2.0:resource:resource-id", &resource)?;
        string_attribute(&mut tail, "Ressource_URN", "urn:dmp")?;
        tail.push_str("<saml2:Attribute Name=\"urn:oasis:names:tc:xspa:1.0:subject:purposeofuse\">");
        ce_value(
            &mut tail,
            "PurposeOfUse",
            &purpose.code,
            "1.2.250.1.213.1.1.4.248",
            &s.purpose_code_system_name,
            &purpose.display_name,
        )?;
        tail.push_str("</saml2:Attribute>");
        string_attribute(&mut tail, "LPS_ID", &s.lps_id)?;
        string_attribute(&mut tail, "LPS_Nom", &s.lps_nom)?;
        string_attribute(&mut tail, "LPS_Version", &s.lps_version)?;
        string_attribute(&mut tail, "LPS_ID_HOMOLOGATION_DMP", &s.lps_homologation)?;
        tail.push_str("</saml2:AttributeStatement></saml2:Assertion>");

        let a = algs(s.signature_alg);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut ctx = digest::Context::new(a.digest);
        ctx.update(head.as_bytes());
        ctx.update(tail.as_bytes());
        let digest_value = b64.encode(ctx.finish());

        // SignedInfo in its exc-c14n form: as the apex of its own canonicalisation it carries the
        // `ds` declaration (visibly used, not rendered by an output ancestor). The same bytes go
        // into the document (a redundant declaration there), so what is signed is what is sent.
        let mut signed_info = String::with_capacity(1024);
        signed_info.push_str("<ds:SignedInfo xmlns:ds=\"");
        signed_info.push_str(DS_NS);
        signed_info.push_str("\"><ds:CanonicalizationMethod Algorithm=\"");
        signed_info.push_str(EXC_C14N);
        signed_info.push_str("\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"");
        signed_info.push_str(a.signature_uri);
        signed_info.push_str("\"></ds:SignatureMethod><ds:Reference URI=\"#");
        signed_info.push_str(&id);
        signed_info.push_str(
            "\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\">\
             </ds:Transform><ds:Transform Algorithm=\"",
        );
        signed_info.push_str(EXC_C14N);
        signed_info.push_str("\"><ec:InclusiveNamespaces xmlns:ec=\"");
        signed_info.push_str(EXC_C14N);
        signed_info.push_str(
            "\" PrefixList=\"xs xsi\"></ec:InclusiveNamespaces></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"",
        );
        signed_info.push_str(a.digest_uri);
        signed_info.push_str("\"></ds:DigestMethod><ds:DigestValue>");
        signed_info.push_str(&digest_value);
        signed_info.push_str("</ds:DigestValue></ds:Reference></ds:SignedInfo>");

        let sig = match s.signature_alg {
            SignatureAlg::RsaSha256 => {
                let mut sig = vec![0u8; self.key.public_modulus_len()];
                self.key
                    .sign(&RSA_PKCS1_SHA256, &self.rng, signed_info.as_bytes(), &mut sig)
                    .map_err(|_| VihfError::Sign)?;
                sig
            }
            SignatureAlg::RsaSha1 => {
                let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, signed_info.as_bytes());
                let d: &[u8; 20] = d.as_ref().try_into().map_err(|_| VihfError::Sign)?;
                self.legacy.sign_sha1_digest(d).ok_or(VihfError::Sign)?
            }
        };

        let mut out = String::with_capacity(head.len() + tail.len() + signed_info.len() + self.cert_b64.len() + 700);
        out.push_str(&head);
        out.push_str("<ds:Signature xmlns:ds=\"");
        out.push_str(DS_NS);
        out.push_str("\">");
        out.push_str(&signed_info);
        out.push_str("<ds:SignatureValue>");
        out.push_str(&b64.encode(&sig));
        out.push_str("</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>");
        out.push_str(&self.cert_b64);
        out.push_str("</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>");
        out.push_str(&tail);
        Ok(Vihf { id, xml: out, not_on_or_after })
    }
}
