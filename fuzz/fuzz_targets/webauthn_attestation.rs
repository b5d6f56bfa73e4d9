//! Registration attestation objects posted by browsers (`vigie_gateway::login::fido2::attested`:
//! CBOR map, `authData`, flags, counter, AAGUID).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::login::fido2::attested;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = attested(data) {
        // Only an attested credential (flag AT) yields an AAGUID: the bytes were long enough
        // to hold one after the RP ID hash, flags and counter.
        assert!(data.len() > 37 + 16, "an AAGUID needs more than {} input bytes", data.len());
        let _ = (a.aaguid.to_string(), a.sign_count);
    }
});
