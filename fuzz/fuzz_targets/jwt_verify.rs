//! JWTs presented to Vigie (access tokens, `id_token_hint`): `KeySet::verify` on tokens no
//! key of the set signed must fail, whatever their shape, and never panic.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, Validation};
use libfuzzer_sys::fuzz_target;
use vigie_gateway::config::SigningAlg;
use vigie_gateway::keys::{KeyFile, KeySet, KeyState, KeyType};

/// Fixed key ids, so that inputs naming a real key stay meaningful from one run to the next
/// (generated keys otherwise get random ids).
fn kid(kty: KeyType, state: KeyState) -> &'static str {
    match (kty, state) {
        (KeyType::EC, KeyState::Current) => "ec-current",
        (KeyType::EC, _) => "ec-next",
        (KeyType::RSA, KeyState::Current) => "rsa-current",
        (KeyType::RSA, _) => "rsa-next",
    }
}

static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let mut file = KeyFile::generate(0);
    for k in &mut file.keys {
        k.kid = kid(k.kty, k.state).to_owned();
    }
    let set = KeySet::from_file(&file, 1).expect("a generated key file loads");
    // The harness is sound only if a token the set did sign does verify.
    let claims = serde_json::json!({ "exp": 4_102_444_800u64, "sub": "x" });
    for alg in [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::PS256] {
        let token = set.sign(alg, Some("JWT"), &claims).expect("signing");
        set.verify::<serde_json::Value>(&token, Some("JWT"), validation()).expect("a signed token verifies");
    }
    set
});

fn validation() -> Validation {
    Validation::new(Algorithm::ES256)
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// Any text as the compact serialization.
    Raw(&'a str),
    /// A well-formed header naming a real key, then anything.
    RealKid { alg: u8, kid: u8, typ: Option<&'a str>, rest: &'a str },
    /// Header and claims as JSON text, base64url-encoded here; the signature as bytes.
    Parts { header: &'a str, claims: &'a str, signature: &'a [u8] },
}

fuzz_target!(|input: (Input<'_>, Option<&str>)| {
    let (input, expected_typ) = input;
    let token = match input {
        Input::Raw(s) => s.to_owned(),
        Input::RealKid { alg, kid, typ, rest } => {
            let alg = ["ES256", "RS256", "PS256", "HS256", "none", "EdDSA"][alg as usize % 6];
            let kid = ["ec-current", "ec-next", "rsa-current", "rsa-next"][kid as usize % 4];
            let mut header = serde_json::json!({ "alg": alg, "kid": kid });
            if let Some(t) = typ {
                header["typ"] = t.into();
            }
            format!("{}.{rest}", B64.encode(header.to_string()))
        }
        Input::Parts { header, claims, signature } => {
            format!("{}.{}.{}", B64.encode(header), B64.encode(claims), B64.encode(signature))
        }
    };
    let verified = KEYS.verify::<serde_json::Value>(&token, expected_typ, validation());
    assert!(verified.is_err(), "a token no key signed verified: {token:?} -> {verified:?}");
});
