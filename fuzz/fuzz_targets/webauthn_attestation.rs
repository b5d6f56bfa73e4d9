//! Registration attestation objects posted by browsers (`vigie_gateway::login::fido2::auth_data`:
//! CBOR map, `authData`, flags, counter, attested credential data).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::login::fido2::auth_data;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = auth_data(data) {
        // Only attested credential data (flag AT) is accepted: the bytes were long enough to
        // hold an AAGUID after the RP ID hash, flags and counter.
        assert!(data.len() > 37 + 16, "attested credential data needs more than {} input bytes", data.len());
        let _ = (a.sign_count, a.backup_eligible);
    }
});
