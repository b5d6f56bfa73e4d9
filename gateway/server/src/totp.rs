//! TOTP (RFC 6238) over HOTP (RFC 4226), HMAC-SHA-1, 6 digits, 30-second steps.
use aws_lc_rs::hmac;

/// RFC 6238 §4: X = 30 seconds, T0 = 0.
pub const STEP_SECS: i64 = 30;

/// RFC 4226 §5.3: dynamic truncation of HMAC-SHA-1(K, C) to `digits` decimal digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    bin % 10u32.pow(digits)
}

/// The 6-digit code for time step `step`.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    format!("{:06}", hotp(secret, step as u64, 6))
}

/// The step the code matches within ±1 step of `now` (RFC 6238 §5.2: at most one step of
/// network delay). The caller must refuse a step already used (replay, RFC 6238 §5.2).
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.div_euclid(STEP_SECS);
    [current, current - 1, current + 1]
        .into_iter()
        .find(|&s| crate::secrets::ct_eq(code_at_step(secret, s).as_bytes(), code.as_bytes()))
}

/// Base32 (RFC 4648, no padding) of a TOTP secret, as authenticator apps take it.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(ALPHABET[((bits >> (35 - i * 5)) & 31) as usize] as char);
        }
    }
    out
}

/// Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored).
pub fn from_base32(s: &str) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| !matches!(c, b'=' | b' ')) {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        bits = (bits << 5) | v as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 are the 6-digit code).
    #[test]
    fn rfc_6238_test_vectors() {
        let key = b"12345678901234567890";
        for (t, expected) in [
            (59i64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(format!("{:08}", hotp(key, (t / 30) as u64, 8)), expected);
            assert_eq!(code_at_step(key, t / 30), expected[2..]);
        }
    }

    #[test]
    fn window_is_one_step_each_side() {
        let key = b"12345678901234567890";
        let now = 1_700_000_000;
        let step = now / STEP_SECS;
        assert_eq!(matching_step(key, &code_at_step(key, step - 1), now), Some(step - 1));
        assert_eq!(matching_step(key, &code_at_step(key, step + 1), now), Some(step + 1));
        assert_eq!(matching_step(key, &code_at_step(key, step - 2), now), None);
        assert_eq!(matching_step(key, "12345", now), None);
        assert_eq!(matching_step(key, "abcdef", now), None);
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(from_base32("MZXW6YTBOI======").unwrap(), b"foobar");
    }

    proptest! {
        #[test]
        fn base32_round_trips(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(from_base32(&base32(&data)).unwrap(), data);
        }

        #[test]
        fn totp_input_never_panics(code in "\\PC{0,12}", now in any::<i32>()) {
            let _ = matching_step(b"k", &code, now as i64);
        }
    }
}
