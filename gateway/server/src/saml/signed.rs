//! The enveloped XML signatures Vigie verifies on an SP's messages (HTTP-POST binding,
//! saml-bindings §3.5.5.2: AuthnRequest, LogoutRequest, LogoutResponse) and on its signed metadata
//! (saml-metadata §3): xmlsec (samael) checks them with the SP's metadata certificates (the
//! metadata with `metadata_cert`), and accepts RSA or ECDSA over SHA-2 only.
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode};

use super::idp::Sp;
use super::slo_message::DSIG;
use crate::web::pages::Say;

/// The `SignatureMethod`s accepted (RFC 6931 §2.3.2, §2.3.6), and with them the `DigestMethod`s
/// SHA-256, SHA-384 and SHA-512 (RFC 6931 §2.1.3, xmlenc-core §5.7.2). SHA-1 is not among them:
/// chosen-prefix collisions forge SHA-1 signatures (NIST SP 800-131A Rev. 2 §3 disallows SHA-1
/// for signature generation; xmldsig-core1 §6.1 lists it as discouraged), whether it is the
/// signature's hash (`rsa-sha1`) or a Reference's digest (`xmldsig#sha1`). Nor are DSA and the
/// SHA-224 variants, which no SAML SP needs.
pub const ACCEPTED: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// What the refusal of an algorithm tells the SP's administrator to do.
const USE_INSTEAD: &str =
    "sign with RSA-SHA256/384/512 or ECDSA-SHA256/384/512 and digest with SHA-256/384/512 (docs/saml.md)";

/// The page of a person whose application signs with a refused algorithm.
pub const WEAK_ALGORITHM: Say<'static> = Say::new(
    "L'application signe ses messages avec un algorithme que Vigie refuse (SHA-1) : contactez le support informatique.",
    "The application signs its messages with an algorithm Vigie refuses (SHA-1): contact IT support.",
);

/// Why a signed message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A `Signature` of the message names this `SignatureMethod` or `DigestMethod` (its URI),
    /// not one of [`ACCEPTED`].
    Algorithm { element: &'static str, uri: String },
    /// The signature does not verify with the SP's certificates, or covers something else.
    Signature,
}

impl Refused {
    /// For the audit line and the log: what was refused and what to do, `what` naming the message.
    pub fn reason(&self, what: &str) -> String {
        match self {
            Refused::Algorithm { element, uri } => {
                format!("the {what}'s signature uses the {element} {uri:?}, which Vigie does not accept: {USE_INSTEAD}")
            }
            Refused::Signature => format!("the {what}'s signature does not verify"),
        }
    }
}

/// What the message's signature covers, and nothing else (the signed element, no ancestor: a
/// signed message wrapped in a forged one is never what is read), when it verifies with one of
/// the SP's certificates and uses only [`ACCEPTED`] algorithms.
///
/// The algorithms are enforced by samael inside its verification loop, on each `Signature` node
/// just before xmlsec verifies that very node: the node whose algorithms are checked is the node
/// verified, for every `Signature` of the document (all must verify). [`weak_algorithm`] only
/// names, for the refusal, what samael refused.
pub fn verified(xml: &str, sp: &Sp) -> Result<String, Refused> {
    let certs: Vec<CertificateDer> = sp.certs.iter().cloned().map(CertificateDer::from).collect();
    verified_by(xml, &certs)
}

/// [`verified`], against these certificates: an SP's (its messages) or the `metadata_cert` of an
/// SP's signed metadata (saml-metadata §3: the same enveloped XML signature, the same rules).
pub fn verified_by(xml: &str, certs: &[CertificateDer]) -> Result<String, Refused> {
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        certs,
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(ACCEPTED),
    )
    .map_err(|_| weak_algorithm(xml).unwrap_or(Refused::Signature))
}

/// The first `SignatureMethod` or `DigestMethod` of any `Signature` of `xml` that is not accepted,
/// read where xmlsec reads them (`Signature/SignedInfo/SignatureMethod`,
/// `Signature/SignedInfo/Reference/DigestMethod`, xmldsig-core1 §4.4), or none.
pub fn weak_algorithm(xml: &str) -> Option<Refused> {
    let signatures: Vec<&str> = ACCEPTED.iter().map(AllowedSignatureAlgorithm::signature_uri).collect();
    let digests: Vec<&str> = ACCEPTED.iter().map(AllowedSignatureAlgorithm::digest_uri).collect();
    let mut reader = NsReader::from_str(xml);
    // The DSIG elements open above the current one, innermost last; `None` for any other element.
    let mut path: Vec<Option<String>> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().ok()?;
        let dsig = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == DSIG);
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                path.pop();
                continue;
            }
            Event::Eof => return None,
            _ => continue,
        };
        let local = e.local_name().as_ref().to_owned();
        let under = |names: &[&str]| {
            path.len() >= names.len()
                && path[path.len() - names.len()..].iter().zip(names).all(|(p, n)| p.as_deref() == Some(*n))
        };
        let checked = match local.as_str() {
            "SignatureMethod" if dsig && under(&["Signature", "SignedInfo"]) => {
                Some(("SignatureMethod", signatures.as_slice()))
            }
            "DigestMethod" if dsig && under(&["Signature", "SignedInfo", "Reference"]) => {
                Some(("DigestMethod", digests.as_slice()))
            }
            _ => None,
        };
        if let Some((element, accepted)) = checked {
            let uri = e
                .attributes()
                .flatten()
                .find(|a| a.key.as_ref() == "Algorithm")
                .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
                .unwrap_or_default();
            if !accepted.contains(&uri.as_str()) {
                // Quoted in the audit line and the SP's StatusMessage: a URI, not a document.
                return Some(Refused::Algorithm { element, uri: uri.chars().take(200).collect() });
            }
        }
        if !empty {
            path.push(dsig.then_some(local));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
    const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

    fn signature(method: &str, digests: &[&str]) -> String {
        let refs: String = digests
            .iter()
            .map(|d| format!(r##"<ds:Reference URI="#_r"><ds:DigestMethod Algorithm="{d}"/><ds:DigestValue>x</ds:DigestValue></ds:Reference>"##))
            .collect();
        format!(
            r#"<ds:Signature xmlns:ds="{DSIG}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{method}"/>{refs}</ds:SignedInfo><ds:SignatureValue>x</ds:SignatureValue></ds:Signature>"#
        )
    }

    fn request(inside: &str) -> String {
        format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0"><saml:Issuer>sp</saml:Issuer>{inside}</samlp:LogoutRequest>"#
        )
    }

    #[test]
    fn sha1_as_signature_method_or_as_any_digest_is_named() {
        let weak = |doc: &str| weak_algorithm(doc).map(|r| r.reason("LogoutRequest"));
        assert_eq!(weak(&request(&signature(RSA_SHA256, &[SHA256]))), None);
        let said = weak(&request(&signature(RSA_SHA1, &[SHA256]))).expect("rsa-sha1 refused");
        assert!(said.contains("SignatureMethod") && said.contains(RSA_SHA1) && said.contains("RSA-SHA256"), "{said}");
        // The second Reference's digest counts as much as the first's.
        let said = weak(&request(&signature(RSA_SHA256, &[SHA256, SHA1]))).expect("a SHA-1 digest refused");
        assert!(said.contains("DigestMethod") && said.contains(SHA1), "{said}");
        // A second Signature elsewhere (in Extensions) is read as well: samael verifies every one.
        let nested = format!(
            "{}<samlp:Extensions>{}</samlp:Extensions>",
            signature(RSA_SHA256, &[SHA256]),
            signature(RSA_SHA1, &[SHA1])
        );
        assert!(weak(&request(&nested)).is_some_and(|s| s.contains(RSA_SHA1)));
        // An algorithm outside a Signature's SignedInfo is not a signature's: not named.
        let stray = format!(
            r#"<samlp:Extensions><ds:SignatureMethod xmlns:ds="{DSIG}" Algorithm="{RSA_SHA1}"/></samlp:Extensions>"#
        );
        assert_eq!(weak(&request(&stray)), None);
        // Another namespace's "Signature" is not xmldsig's.
        let other = signature(RSA_SHA1, &[SHA1]).replace(DSIG, "urn:example:not-dsig");
        assert_eq!(weak(&request(&other)), None);
    }

    #[test]
    fn every_accepted_algorithm_passes_and_their_digests_too() {
        for a in ACCEPTED {
            let doc = request(&signature(a.signature_uri(), &[a.digest_uri()]));
            assert_eq!(weak_algorithm(&doc), None, "{a:?}");
        }
        for refused in [
            "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha224",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
            "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
            "",
        ] {
            let doc = request(&signature(refused, &[SHA256]));
            assert!(matches!(weak_algorithm(&doc), Some(Refused::Algorithm { .. })), "{refused:?}");
        }
    }
}
