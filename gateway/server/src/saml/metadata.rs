//! `GET /saml/metadata`: the IdP's metadata (saml-metadata §2.4.3 IDPSSODescriptor): the
//! entityID, SingleSignOnService and SingleLogoutService for HTTP-Redirect and HTTP-POST, the signing certificate and
//! the NameID formats. Written from our own values only, so escaped, never parsed.
use actix_web::HttpResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::idp::{HTTP_POST, HTTP_REDIRECT, Idp};
use crate::web::http::esc;

pub fn document(idp: &Idp, sso_url: &str, slo_url: &str) -> String {
    let cert = STANDARD.encode(&idp.cert_der);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleLogoutService Binding="{HTTP_REDIRECT}" Location="{slo}"/>
    <md:SingleLogoutService Binding="{HTTP_POST}" Location="{slo}"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:SingleSignOnService Binding="{HTTP_REDIRECT}" Location="{sso}"/>
    <md:SingleSignOnService Binding="{HTTP_POST}" Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = esc(&idp.entity_id),
        sso = esc(sso_url),
        slo = esc(slo_url),
    )
}

pub fn response(idp: &Idp, sso_url: &str, slo_url: &str) -> HttpResponse {
    HttpResponse::Ok().content_type("application/samlmetadata+xml").body(document(idp, sso_url, slo_url))
}
