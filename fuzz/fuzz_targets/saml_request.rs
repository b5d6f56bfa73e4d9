//! A `SAMLRequest` parameter before the XML parser (`vigie_gateway::saml::decode`): base64 of raw
//! DEFLATE for HTTP-Redirect (saml-bindings §3.4.4.1), base64 for HTTP-POST (§3.5.4), capped.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use vigie_gateway::saml::decode::{MAX_REQUEST, Refused, post_request, redirect_request};

fuzz_target!(|input: (&str, &[u8])| {
    let (text, bytes) = input;
    // Whatever arrives: decoded within the cap, or refused.
    for xml in [redirect_request(text), post_request(text)].into_iter().flatten() {
        assert!(xml.len() as u64 <= MAX_REQUEST);
    }
    // Raw bytes as the DEFLATE stream: a bomb is refused, never cut to the cap.
    if let Ok(xml) = redirect_request(&STANDARD.encode(bytes)) {
        assert!(xml.len() as u64 <= MAX_REQUEST);
    }
    // What a POST-binding SP sends (base64 of UTF-8 XML) reads back exactly, or is too large.
    match post_request(&STANDARD.encode(text)) {
        Ok(xml) => assert_eq!(xml, text),
        Err(e) => assert!(e == Refused::TooLarge && text.len() as u64 > MAX_REQUEST, "{e:?} for {} bytes", text.len()),
    }
});
