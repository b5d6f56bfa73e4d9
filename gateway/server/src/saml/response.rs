//! The signed `<Response>` posted to an SP's AssertionConsumerService (saml-profiles §4.1.4.2):
//! one bearer `<Assertion>` with Audience, Recipient, InResponseTo and validity windows, signed
//! with RSA-SHA256 (ECDSA-SHA256 with a P-256 key) and a SHA-256 digest (samael's template
//! digests with SHA-1 and signs only `<Response>`: we put the template in the Assertion and set
//! the digest, as
//! shared/reference/dependencies.md tried).
use actix_web::HttpResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use samael::attribute::{Attribute, AttributeValue};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::schema::{
    Assertion, AttributeStatement, AudienceRestriction, AuthnContext, AuthnContextClassRef, AuthnStatement, Conditions,
    Issuer, Response, Status, StatusCode, Subject, SubjectConfirmation, SubjectConfirmationData, SubjectNameID,
};
use samael::signature::{DigestAlgorithm, Signature};
use samael::traits::ToXml;
use vigie_core::auth::Mie;

use super::idp::Idp;

pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const URI_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";

/// What one Response says.
pub struct Statement<'a> {
    pub audience: &'a str,
    pub acs: &'a str,
    pub in_response_to: &'a str,
    pub name_id_format: &'a str,
    pub name_id: String,
    pub attributes: Vec<(String, Vec<String>)>,
    pub mie: Mie,
    pub authn_instant: i64,
    pub session_index: &'a str,
    pub ttl_secs: i64,
    /// Encrypt the signed Assertion for the SP (saml-core §2.3.4).
    pub encrypt: Option<&'a super::encrypt::Encryption>,
}

/// The `AuthnContextClassRef` of a MIE (saml-authn-context §3.4; REFEDS MFA for a FIDO2 key).
pub fn class_ref(mie: Mie) -> &'static str {
    match mie {
        Mie::Cps | Mie::Cpe | Mie::CpsViaPsc => "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        Mie::Ecps => "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
        Mie::Fido2 => "https://refeds.org/profile/mfa",
        Mie::PasswordTotp => "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
        _ => "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
    }
}

fn id() -> String {
    // xs:ID must not start with a digit (an NCName).
    format!("_{}", crate::secrets::random_token(24).replace('-', "_"))
}

/// samael's template for an enveloped signature of the element whose `ID` is `id`: RSA-SHA256
/// (ECDSA-SHA256 with a P-256 key), its digest set to SHA-256 (samael's is SHA-1).
pub(super) fn signature_template(idp: &Idp, id: &str) -> Signature {
    let mut signature = Signature::template(id, &CertificateDer::from(idp.cert_der.clone()));
    if idp.ecdsa {
        signature.signed_info.signature_method.algorithm = samael::signature::SignatureAlgorithm::EcdsaSha256;
    }
    for r in &mut signature.signed_info.reference {
        r.digest_method.algorithm = DigestAlgorithm::Sha256;
    }
    signature
}

/// The Response as XML, its Assertion signed with the IdP's key.
pub fn signed(idp: &Idp, s: &Statement<'_>) -> Result<String, String> {
    let now = Utc::now();
    let until = now + Duration::seconds(s.ttl_secs);
    let issuer = Issuer { value: Some(idp.entity_id.clone()), ..Default::default() };
    let assertion_id = id();
    let signature = signature_template(idp, &assertion_id);
    let authn_instant = DateTime::<Utc>::from_timestamp(s.authn_instant, 0).unwrap_or(now);
    let attributes: Vec<Attribute> = s
        .attributes
        .iter()
        .map(|(name, values)| Attribute {
            friendly_name: Some(name.clone()),
            name: Some(format!("urn:vigie:attribute:{name}")),
            name_format: Some(URI_FORMAT.into()),
            values: values
                .iter()
                .map(|v| AttributeValue { attribute_type: Some("xs:string".into()), value: Some(v.clone()) })
                .collect(),
        })
        .collect();
    let assertion = Assertion {
        id: assertion_id,
        issue_instant: now,
        version: "2.0".into(),
        issuer: issuer.clone(),
        signature: Some(signature),
        subject: Some(Subject {
            name_id: Some(SubjectNameID { format: Some(s.name_id_format.into()), value: s.name_id.clone() }),
            // saml-profiles §4.1.4.2: a bearer SubjectConfirmation with Recipient, NotOnOrAfter
            // and InResponseTo.
            subject_confirmations: Some(vec![SubjectConfirmation {
                method: Some(BEARER.into()),
                name_id: None,
                subject_confirmation_data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: Some(until),
                    recipient: Some(s.acs.into()),
                    in_response_to: Some(s.in_response_to.into()),
                    address: None,
                    content: None,
                }),
            }]),
        }),
        // saml-profiles §4.1.4.2: an AudienceRestriction naming the SP.
        conditions: Some(Conditions {
            not_before: Some(now - Duration::seconds(30)),
            not_on_or_after: Some(until),
            audience_restrictions: Some(vec![AudienceRestriction { audience: vec![s.audience.into()] }]),
            one_time_use: None,
            proxy_restriction: None,
        }),
        authn_statements: Some(vec![AuthnStatement {
            authn_instant: Some(authn_instant),
            session_index: Some(s.session_index.into()),
            session_not_on_or_after: None,
            subject_locality: None,
            authn_context: Some(AuthnContext {
                value: Some(AuthnContextClassRef { value: Some(class_ref(s.mie).into()) }),
            }),
        }]),
        // saml-core §2.7.3: an AttributeStatement holds at least one Attribute.
        attribute_statements: (!attributes.is_empty()).then(|| vec![AttributeStatement { attributes }]),
    };
    let response = Response {
        id: id(),
        in_response_to: Some(s.in_response_to.into()),
        version: "2.0".into(),
        issue_instant: now,
        destination: Some(s.acs.into()),
        consent: None,
        issuer: Some(issuer),
        signature: None,
        status: Some(Status {
            status_code: StatusCode { value: Some(SUCCESS.into()) },
            status_message: None,
            status_detail: None,
        }),
        encrypted_assertion: None,
        assertion: Some(assertion),
    };
    let xml = response.to_string().map_err(|e| format!("the Response could not be written: {e}"))?;
    let signed =
        Crypto::sign_xml(xml.as_str(), &idp.key_der).map_err(|e| format!("the Assertion could not be signed: {e}"))?;
    match s.encrypt {
        Some(encryption) => super::encrypt::replace_assertion(&signed, |a| encryption.assertion(a)),
        None => Ok(signed),
    }
}

/// A Response with an error status (saml-core §3.2.2.2), unsigned: it asserts nothing. `message`
/// is its `StatusMessage` (§3.2.2.3), for the SP's administrator.
pub fn error(idp: &Idp, acs: &str, in_response_to: &str, top: &str, second: &str, message: Option<&str>) -> String {
    use crate::web::http::esc;
    let message = message.map(|m| format!("<samlp:StatusMessage>{}</samlp:StatusMessage>", esc(m))).unwrap_or_default();
    format!(
        r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{top}"><samlp:StatusCode Value="{second}"/></samlp:StatusCode>{message}</samlp:Status></samlp:Response>"#,
        id(),
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        esc(acs),
        esc(in_response_to),
        esc(&idp.entity_id),
    )
}

pub use crate::web::auto_post::Then;

/// The auto-submitting form of the HTTP-POST binding (saml-bindings §3.5.4): `xml` base64 as
/// `param` (`SAMLResponse` or `SAMLRequest`), and `RelayState`, posted to `to`, an endpoint of
/// the SP's metadata (https, checked at load: saml/idp.rs). The page and its CSP:
/// [`crate::web::auto_post::page`].
pub fn auto_post(to: &str, param: &str, xml: &str, relay: Option<&str>, then: Then) -> HttpResponse {
    let message = STANDARD.encode(xml);
    let mut fields = vec![(param, message.as_str())];
    fields.extend(relay.map(|r| ("RelayState", r)));
    crate::web::auto_post::page(to, &fields, then)
}
