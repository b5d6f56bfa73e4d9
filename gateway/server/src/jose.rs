//! The jsonwebtoken crypto provider of the gateway: jsonwebtoken's aws-lc provider, except
//! that ES256/RS256/PS256 signing keys are parsed once, not at every token. Parsing an EC key
//! validates its point (`EC_KEY_check_key`) and parsing an RSA key is costlier than the
//! signature itself; the gateway signs two tokens per login round trip with the same few keys.
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaKeyPair,
};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, aws_lc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::signature::{Error as SignatureError, Signer};
use jsonwebtoken::{Algorithm, EncodingKey};

#[derive(Clone)]
enum ParsedKey {
    Ec(Arc<EcdsaKeyPair>),
    Rsa(Arc<RsaKeyPair>),
}

/// Parsed keys by their DER bytes. Only the gateway's own signing keys pass here: a handful,
/// changing at rotation; the bound only guards against misuse.
static PARSED: LazyLock<RwLock<HashMap<Vec<u8>, ParsedKey>>> = LazyLock::new(Default::default);
const MAX_PARSED: usize = 64;

fn parsed(alg: Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<ParsedKey> {
    let der = key.as_bytes();
    if let Some(k) = PARSED.read().ok().and_then(|m| m.get(der).cloned()) {
        return Ok(k);
    }
    let k = match alg {
        Algorithm::ES256 => ParsedKey::Ec(Arc::new(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|_| ErrorKind::InvalidEcdsaKey)?,
        )),
        _ => ParsedKey::Rsa(Arc::new(RsaKeyPair::from_der(der).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?)),
    };
    if let Ok(mut m) = PARSED.write() {
        if m.len() >= MAX_PARSED {
            m.clear();
        }
        m.insert(der.to_vec(), k.clone());
    }
    Ok(k)
}

struct CachedSigner {
    alg: Algorithm,
    key: ParsedKey,
}

impl Signer<Vec<u8>> for CachedSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let rng = SystemRandom::new();
        match (&self.key, self.alg) {
            (ParsedKey::Ec(k), _) => {
                k.sign(&rng, msg).map(|s| s.as_ref().to_vec()).map_err(SignatureError::from_source)
            }
            (ParsedKey::Rsa(k), alg) => {
                let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if alg == Algorithm::PS256 { &RSA_PSS_SHA256 } else { &RSA_PKCS1_SHA256 };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(encoding, &rng, msg, &mut sig).map_err(SignatureError::from_source)?;
                Ok(sig)
            }
        }
    }
}

impl JwtSigner for CachedSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn signer_factory(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let family_matches = key.family() == alg.family();
    match alg {
        Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256 if family_matches => {
            Ok(Box::new(CachedSigner { alg: *alg, key: parsed(*alg, key)? }))
        }
        _ => (aws_lc::DEFAULT_PROVIDER.signer_factory)(alg, key),
    }
}

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory,
    verifier_factory: aws_lc::DEFAULT_PROVIDER.verifier_factory,
    key_utils: aws_lc::DEFAULT_PROVIDER.key_utils.clone(),
});

/// Installs the provider for the process; call before any JWT is signed or verified.
pub fn install() {
    let _ = LazyLock::force(&PROVIDER).install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningAlg;
    use crate::keys::tests::verify_with_published_jwk;
    use crate::keys::{KeyFile, KeySet};

    /// Tokens signed through the cache, the first time and from the cache, verify with the
    /// published key alone for the algorithm their header names. RS256 (RSASSA-PKCS1-v1_5) is
    /// deterministic and PSS and ECDSA are randomised (RFC 8017 §8.2, §8.1; FIPS 186-4 §6.3), so
    /// identical claims tell which padding really signed.
    #[test]
    fn cached_signatures_verify_with_the_published_key_for_the_alg_their_header_names() {
        install();
        let set = KeySet::from_file(&KeyFile::generate(0), 1).unwrap();
        let claims =
            serde_json::json!({ "iss": "https://vigie.test", "exp": jsonwebtoken::get_current_timestamp() + 60 });
        for (alg, name, deterministic) in [
            (SigningAlg::ES256, "ES256", false),
            (SigningAlg::RS256, "RS256", true),
            (SigningAlg::PS256, "PS256", false),
        ] {
            let [first, second] = [(); 2].map(|_| set.sign(alg, Some("JWT"), &claims).unwrap());
            for t in [&first, &second] {
                assert_eq!(verify_with_published_jwk(set.jwks_json(), t, name).unwrap(), claims, "{name}");
            }
            assert_eq!(first == second, deterministic, "{name}: signatures of the same claims");
        }
        assert!(PARSED.read().unwrap().len() >= 2, "the EC and the RSA key are parsed once and kept");
    }
}
