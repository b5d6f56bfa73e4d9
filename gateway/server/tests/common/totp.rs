//! TOTP codes computed by the tests themselves, not by the product's `vigie_gateway::totp`: an
//! oracle of its own, written from RFC 6238 and RFC 4226 and checked against RFC 6238's vectors.
use aws_lc_rs::hmac;

/// RFC 6238 §4: X = 30 seconds, T0 = 0 (the gateway's documented choice).
pub const STEP_SECS: i64 = 30;

/// RFC 4226 §5.3 (HOTP, dynamic truncation) over RFC 6238's T = step; 6 digits, as the gateway
/// announces in its `otpauth://` URIs.
pub fn code(key: &[u8], step: i64) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key), &(step as u64).to_be_bytes());
    let digest = tag.as_ref();
    let at = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[at]) & 0x7f) << 24
        | u32::from(digest[at + 1]) << 16
        | u32::from(digest[at + 2]) << 8
        | u32::from(digest[at + 3]);
    format!("{:06}", binary % 1_000_000)
}

/// RFC 4648 §6 base32, upper case, padding optional: the form of the demo's `totp_secret`
/// (the conformance kit's decoder, which an auditor's run relies on too; checked below against
/// RFC 4648 §10's vectors).
pub fn decode_base32(text: &str) -> Vec<u8> {
    vigie_conformance::agent::decode_base32(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The code of `base32_secret` now: what an authenticator app shows.
pub fn now_code(base32_secret: &str) -> String {
    code(&decode_base32(base32_secret), super::now().div_euclid(STEP_SECS))
}

/// RFC 6238 Appendix B, the SHA-1 rows: 8 digits there, whose last 6 are the 6-digit code.
#[test]
fn the_test_totp_gives_the_codes_of_rfc_6238_appendix_b() {
    let key = b"12345678901234567890";
    for (time, eight_digits) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(code(key, time / STEP_SECS), eight_digits[2..], "T = {time}");
    }
}

/// RFC 4648 §10's base32 vectors.
#[test]
fn the_test_base32_decodes_rfc_4648_vectors() {
    for (encoded, plain) in [
        ("", ""),
        ("MY======", "f"),
        ("MZXQ====", "fo"),
        ("MZXW6===", "foo"),
        ("MZXW6YQ=", "foob"),
        ("MZXW6YTB", "fooba"),
    ] {
        assert_eq!(decode_base32(encoded), plain.as_bytes(), "{encoded}");
    }
    assert_eq!(decode_base32("MZXW6YTBOI======"), b"foobar");
}
