//! A DMP SOAP call from the DPI (body + Content-Type), into which `vigie_dmp::insert_security`
//! puts the VIHF: plain SOAP 1.2 or MTOM, found with quick-xml and a multipart splitter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_dmp::{EnvelopeError, insert_security};

const ASSERTION: &str = "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_f\"></saml2:Assertion>";
const TYPES: [&str; 4] = [
    "application/soap+xml; charset=utf-8",
    "multipart/related; type=\"application/xop+xml\"; boundary=\"b\"; start=\"<r>\"",
    "multipart/related; boundary=b",
    "text/xml",
];

fuzz_target!(|input: (u8, &[u8], &str)| {
    let (pick, body, free_type) = input;
    let ct = if pick < 4 { TYPES[pick as usize] } else { free_type };
    // Any bytes and any content type: the secured body or an error, never a panic.
    if let Ok(out) = insert_security(body, ct, ASSERTION) {
        // Only bytes were added, and what was added is found again: securing twice is refused.
        assert!(out.len() > body.len());
        assert_eq!(insert_security(&out, ct, ASSERTION), Err(EnvelopeError::AlreadySecured));
    }
});
