//! Registration attestation objects posted by browsers (`vigie_gateway::login::fido2::auth_data`:
//! CBOR map, `authData`, flags, counter, attested credential data).
//!
//! An input whose first byte is odd is the attestation object itself (any bytes). Otherwise the
//! rest is the authenticator data, wrapped here in a `none` attestation object by a CBOR writer of
//! this file (RFC 8949), and the answer is checked against the layout of WebAuthn L2 §6.1, read
//! here at its own offsets: RP ID hash [0, 32), flags [32], signCount [33, 37) big-endian, then
//! with flag AT the attested credential data (§6.5.1), which starts with the AAGUID [37, 53).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_gateway::login::fido2::{AttestationError, AuthData, auth_data};

const FLAGS: usize = 32;
const SIGN_COUNT: std::ops::Range<usize> = 33..37;
const AAGUID: std::ops::Range<usize> = 37..53;
const FLAG_BE: u8 = 1 << 3;
const FLAG_AT: u8 = 1 << 6;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 1 {
        if auth_data(rest).is_ok() {
            // Whatever the CBOR around it, the authenticator data inside held a whole AAGUID.
            assert!(rest.len() > AAGUID.end, "attested credential data needs more than {} input bytes", rest.len());
        }
        return;
    }
    let ad = rest;
    let answer = auth_data(&none_attestation(ad));
    assert_eq!(answer, expected(ad), "authenticator data {ad:02x?}");
    if answer.is_ok() {
        // The AAGUID is the authenticator's unverified claim, which the parser does not return:
        // whatever its bytes, the answer is the same, and it is accepted only when whole.
        let mut other = ad.to_vec();
        other[AAGUID].iter_mut().for_each(|b| *b = !*b);
        assert_eq!(auth_data(&none_attestation(&other)), answer, "the AAGUID changed the answer");
        let cut = AAGUID.start + usize::from(mode >> 1) % AAGUID.len();
        assert_eq!(auth_data(&none_attestation(&ad[..cut])), Err(AttestationError::TooShort(cut)));
    }
});

/// What WebAuthn L2 §6.1 / §6.5.1 say of `ad`, read at the offsets above.
fn expected(ad: &[u8]) -> Result<AuthData, AttestationError> {
    if ad.len() < AAGUID.end {
        return Err(AttestationError::TooShort(ad.len()));
    }
    if ad[FLAGS] & FLAG_AT == 0 {
        return Err(AttestationError::NoAttestedData);
    }
    let count = ad[SIGN_COUNT].iter().fold(0u32, |n, b| (n << 8) | u32::from(*b));
    Ok(AuthData { sign_count: count, backup_eligible: ad[FLAGS] & FLAG_BE != 0 })
}

/// `{"fmt": "none", "attStmt": {}, "authData": ad}` in CBOR (WebAuthn §6.5.4, §8.7).
fn none_attestation(ad: &[u8]) -> Vec<u8> {
    let mut out = vec![0xa3]; // map of 3 pairs
    text(&mut out, "fmt");
    text(&mut out, "none");
    text(&mut out, "attStmt");
    out.push(0xa0); // empty map
    text(&mut out, "authData");
    head(&mut out, 2, ad.len());
    out.extend_from_slice(ad);
    out
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// The initial bytes of a CBOR data item of major type `major` and length `len` (RFC 8949 §3).
fn head(out: &mut Vec<u8>, major: u8, len: usize) {
    let m = major << 5;
    match len {
        0..24 => out.push(m | len as u8),
        24..0x100 => out.extend([m | 24, len as u8]),
        0x100..0x1_0000 => {
            out.push(m | 25);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend((len as u32).to_be_bytes());
        }
    }
}
