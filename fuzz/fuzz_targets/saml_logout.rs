//! The reader of Single Logout messages an SP sends (`vigie_gateway::saml::slo_message::read`:
//! LogoutRequest, saml-core §3.7.1; LogoutResponse, §3.7.2), built without the `saml` feature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::saml::slo_message::{Message, read};

fuzz_target!(|text: &str| {
    match read(text) {
        // What is read has what Vigie acts on: an ID and an Issuer, and a NameID for a request.
        Ok(Message::Request(r)) => assert!(!r.id.is_empty() && !r.issuer.is_empty()),
        Ok(Message::Response(r)) => assert!(!r.id.is_empty() && !r.issuer.is_empty()),
        Err(why) => assert!(!why.is_empty()),
    }
    // Inside a request's Extensions: an Issuer is read only when the text itself closes the
    // Extensions and writes one at the root's level.
    let wrapped = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a" Version="2.0" IssueInstant="x"><samlp:Extensions>{text}</samlp:Extensions></samlp:LogoutRequest>"#
    );
    if read(&wrapped).is_ok() {
        assert!(text.contains("Extensions") && text.contains("Issuer"), "an Issuer nested in Extensions was read");
    }
});
