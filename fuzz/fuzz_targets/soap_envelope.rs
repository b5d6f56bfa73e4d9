//! A DMP SOAP call from the DPI (body + Content-Type), into which `vigie_dmp::insert_security`
//! puts the VIHF: plain SOAP 1.2 or MTOM, found with quick-xml and a multipart splitter.
//! Input: one byte choosing the content type, then the body; with choice 4, the content type is
//! the first line of the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_dmp::{EnvelopeError, INS_OIDS, SoapCall, insert_security, patients_named};

const ASSERTION: &str = "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_f\"></saml2:Assertion>";
const TYPES: [&str; 4] = [
    "application/soap+xml; charset=utf-8",
    "multipart/related; type=\"application/xop+xml\"; boundary=\"b\"; start=\"<r>\"",
    "multipart/related; boundary=b",
    "text/xml",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let (ct, body) = match pick % 5 {
        4 => match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (String::from_utf8_lossy(&rest[..i]).into_owned(), &rest[i + 1..]),
            None => return,
        },
        k => (TYPES[k as usize].to_string(), rest),
    };
    // Any bytes and any content type: the secured body or an error, never a panic; the patient
    // scan (the relay's first step) refuses what securing refuses, for the same reason.
    let secured = insert_security(body, &ct, ASSERTION);
    let named = patients_named(body, &ct, &INS_OIDS);
    if let Err(e) = &secured {
        assert_eq!(named.as_ref().err(), Some(e));
    }
    // One reading gives all: the same patients, the same secured bytes.
    match SoapCall::read(body, &ct, &INS_OIDS) {
        Ok(call) => {
            assert_eq!(Ok(call.patients().to_vec()), named);
            assert_eq!(Ok(call.secure(ASSERTION)), secured);
            assert!(call.action().is_none_or(|a| a.trim() == a));
        }
        Err(e) => assert_eq!(named, Err(e)),
    }
    if let Ok(out) = secured {
        // Only bytes were added, and what was added is found again: securing twice is refused.
        assert!(out.len() > body.len());
        assert_eq!(insert_security(&out, &ct, ASSERTION), Err(EnvelopeError::AlreadySecured));
    }
});
