//! TOTP codes typed at login and base32 secrets (`vigie_gateway::totp`): RFC 6238, RFC 4648.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vigie_gateway::totp::{STEP_SECS, base32, code_at_step, from_base32, matching_step};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    code: &'a str,
    now: i64,
    base32_text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let Input { secret, code, now, base32_text } = input;
    let current = now.div_euclid(STEP_SECS);

    if let Some(step) = matching_step(secret, code, now) {
        // RFC 6238 §5.2: at most one step of network delay either side.
        assert!((current - 1..=current + 1).contains(&step), "step {step} outside the window of {now}");
        assert_eq!(code_at_step(secret, step), code);
    } else if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        for s in [current - 1, current, current + 1] {
            assert_ne!(code_at_step(secret, s), code, "the code of step {s} was refused");
        }
    }
    // The code of the current step is always accepted, as the current step.
    let expected = code_at_step(secret, current);
    assert_eq!(expected.len(), 6);
    assert_eq!(matching_step(secret, &expected, now), Some(current));

    if let Some(bytes) = from_base32(base32_text) {
        // RFC 4648 §6: 5 bits per character; a trailing partial byte is dropped.
        let symbols = base32_text.bytes().filter(|c| !matches!(c, b'=' | b' ')).count();
        assert_eq!(bytes.len(), symbols * 5 / 8);
        assert_eq!(from_base32(&base32(&bytes)).as_deref(), Some(bytes.as_slice()));
        assert_eq!(from_base32(&base32_text.to_ascii_lowercase()), Some(bytes));
    } else {
        assert!(
            base32_text.bytes().any(|c| !matches!(c.to_ascii_uppercase(), b'A'..=b'Z' | b'2'..=b'7' | b'=' | b' '))
        );
    }
    assert_eq!(from_base32(&base32(secret)).as_deref(), Some(secret));
});
