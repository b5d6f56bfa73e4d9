//! How Vigie sends a Single Logout message to an SP (saml-profiles §4.4.3.3, §4.4.3.4): over the
//! binding the SP's metadata names first among those Vigie speaks, HTTP-Redirect (a signed query,
//! saml-bindings §3.4.4.1) or HTTP-POST (an auto-submitting form, the XML signature enveloped in
//! the message, saml-bindings §3.5.4, §3.5.5.2), with the page's CSP allowing only that form.
use actix_web::HttpResponse;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{Crypto, CryptoProvider};
use samael::signature::Signature;
use samael::traits::ToXml;

use super::idp::{HTTP_POST, HTTP_REDIRECT, Idp, Sp};

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// An SP's SingleLogoutService as Vigie will use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: &'static str,
    pub location: String,
    /// saml-metadata §2.2.2: where responses go, when not the Location.
    pub response_location: Option<String>,
}

impl Endpoint {
    pub fn for_responses(&self) -> &str {
        self.response_location.as_deref().unwrap_or(&self.location)
    }
}

/// The SP's first SingleLogoutService whose binding Vigie sends over. SingleLogoutService is an
/// unindexed EndpointType (saml-metadata §2.2.2, §2.4.2: no `index`, no `isDefault`), so the
/// order of the SP's metadata is its preference; a SOAP or Artifact endpoint is passed over.
pub fn endpoint(sp: &Sp) -> Option<Endpoint> {
    first_usable(&sp.slo)
}

fn first_usable(slo: &[(String, String, Option<String>)]) -> Option<Endpoint> {
    slo.iter().find_map(|(binding, location, response_location)| {
        let binding = match binding.as_str() {
            HTTP_REDIRECT => HTTP_REDIRECT,
            HTTP_POST => HTTP_POST,
            _ => return None,
        };
        Some(Endpoint { binding, location: location.clone(), response_location: response_location.clone() })
    })
}

/// `xml` (a LogoutRequest or LogoutResponse Vigie wrote, its `ID` attribute `id`) to `to` over
/// `binding`, as `param` (`SAMLRequest` or `SAMLResponse`), signed with the IdP's key.
pub fn send(
    idp: &Idp,
    binding: &str,
    to: &str,
    param: &str,
    id: &str,
    xml: &str,
    relay: Option<&str>,
) -> Result<HttpResponse, String> {
    if binding == HTTP_POST {
        let signed = signed_enveloped(idp, id, xml)?;
        return Ok(super::response::auto_post(to, param, &signed, relay, super::response::Then::BackToVigie));
    }
    let url = signed_redirect(idp, to, param, xml, relay)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// saml-bindings §3.5.5.2 / saml-core §5.4: an enveloped signature over the message (Reference
/// to its `ID`, exclusive c14n, SHA-256), placed after the `Issuer` as saml-core §3.2.1 and
/// §3.2.2 order it; signed by xmlsec (samael), RSA-SHA256 or ECDSA-SHA256 as the IdP's key is.
fn signed_enveloped(idp: &Idp, id: &str, xml: &str) -> Result<String, String> {
    enveloped(idp, super::response::signature_template(idp, id), xml)
}

/// `xml` signed with the IdP's key after the template `signature` (its algorithms, its Reference)
/// is put after the message's `Issuer`.
pub(super) fn enveloped(idp: &Idp, signature: Signature, xml: &str) -> Result<String, String> {
    let template = signature.to_string().map_err(|e| format!("the signature template could not be written: {e:?}"))?;
    // Our own XML: the Issuer is escaped, so its end tag occurs once, where we wrote it.
    let Some(at) = xml.find("</saml:Issuer>").map(|i| i + "</saml:Issuer>".len()) else {
        return Err("the message has no Issuer to put the signature after".into());
    };
    let with_template = format!("{}{template}{}", &xml[..at], &xml[at..]);
    Crypto::sign_xml(with_template.as_str(), &idp.key_der).map_err(|e| format!("the message could not be signed: {e}"))
}

/// saml-bindings §3.4.4.1: DEFLATE, base64, URL-encode; the signature over
/// `SAMLRequest=…&RelayState=…&SigAlg=…` as sent, RSA-SHA256 with the IdP's key.
fn signed_redirect(idp: &Idp, location: &str, param: &str, xml: &str, relay: Option<&str>) -> Result<String, String> {
    use std::io::Write;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(xml.as_bytes()).map_err(|e| e.to_string())?;
    let raw = deflate.finish().map_err(|e| e.to_string())?;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut query = format!("{param}={}", enc(&STANDARD.encode(raw)));
    if let Some(r) = relay {
        query.push_str(&format!("&RelayState={}", enc(r)));
    }
    query.push_str(&format!("&SigAlg={}", enc(RSA_SHA256)));
    let key = RsaKeyPair::from_pkcs8(&idp.key_der)
        .or_else(|_| RsaKeyPair::from_der(&idp.key_der))
        .map_err(|_| "the IdP's key is not an RSA key".to_owned())?;
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), query.as_bytes(), &mut signature)
        .map_err(|_| "RSA signing failed".to_owned())?;
    let sep = if location.contains('?') { '&' } else { '?' };
    Ok(format!("{location}{sep}{query}&Signature={}", enc(&STANDARD.encode(signature))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";

    fn slo(list: &[(&str, &str)]) -> Vec<(String, String, Option<String>)> {
        list.iter().map(|(b, l)| (b.to_string(), l.to_string(), None)).collect()
    }

    #[test]
    fn the_sps_first_redirect_or_post_endpoint_is_used_soap_passed_over() {
        let post_first =
            slo(&[(SOAP, "https://sp/soap"), (HTTP_POST, "https://sp/post"), (HTTP_REDIRECT, "https://sp/r")]);
        let e = first_usable(&post_first).expect("an endpoint");
        assert_eq!((e.binding, e.location.as_str()), (HTTP_POST, "https://sp/post"));
        let redirect_first = slo(&[(HTTP_REDIRECT, "https://sp/r"), (HTTP_POST, "https://sp/post")]);
        assert_eq!(first_usable(&redirect_first).map(|e| e.binding), Some(HTTP_REDIRECT));
        assert_eq!(first_usable(&slo(&[(SOAP, "https://sp/soap")])), None);
        let mut with_response = slo(&[(HTTP_POST, "https://sp/post")]);
        with_response[0].2 = Some("https://sp/answers".into());
        assert_eq!(first_usable(&with_response).expect("an endpoint").for_responses(), "https://sp/answers");
    }
}
