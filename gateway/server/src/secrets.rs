//! Random tokens, hashes of secrets and their constant-time comparison.
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use subtle::ConstantTimeEq;

/// A secret from the configuration (client secret, key password): serialised as is (figment
/// re-reads the tree), never shown by `Debug`, so never logged.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// `n` random bytes from the system CSPRNG, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // aws-lc's RNG fails only if the OS has no entropy source at all.
    aws_lc_rs::rand::fill(&mut buf).expect("system random generator");
    B64.encode(buf)
}

/// SHA-256 of `data`, base64url: store keys name secrets by their hash, so a dump of the
/// store holds no usable cookie, code or token.
pub fn sha256_b64(data: &[u8]) -> String {
    B64.encode(digest::digest(&digest::SHA256, data))
}

/// Constant-time equality of two byte strings (RFC 9700 §2.4 asks for it on secrets).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The stored form of a client secret.
#[derive(Clone, Debug)]
pub enum SecretHash {
    /// `sha256:<base64url>`: for high-entropy generated secrets, fast enough for every token call.
    Sha256(Vec<u8>),
    /// An argon2id PHC string, for secrets chosen by people.
    Argon2(String),
}

impl SecretHash {
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(h) = s.strip_prefix("sha256:") {
            let raw = B64.decode(h).ok()?;
            (raw.len() == 32).then_some(Self::Sha256(raw))
        } else if s.starts_with("$argon2id$") && PasswordHash::new(s).is_ok() {
            Some(Self::Argon2(s.to_owned()))
        } else {
            None
        }
    }

    pub fn of_generated(secret: &str) -> String {
        format!("sha256:{}", sha256_b64(secret.as_bytes()))
    }

    pub fn verify(&self, secret: &str) -> bool {
        match self {
            Self::Sha256(h) => ct_eq(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref(), h),
            Self::Argon2(phc) => verify_password(phc, secret),
        }
    }
}

/// argon2id PHC string of a password (OWASP parameters: the crate's defaults, m=19 MiB, t=2).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).expect("system random generator");
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt encodes");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default parameters").to_string()
}

/// Checks a password against its PHC string; a malformed hash never verifies.
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_hash_verifies_only_its_secret() {
        let h = SecretHash::parse(&SecretHash::of_generated("s3cret")).unwrap();
        assert!(h.verify("s3cret"));
        assert!(!h.verify("s3creT"));
        assert!(SecretHash::parse("sha256:short").is_none());
        assert!(SecretHash::parse("plain").is_none());
    }

    #[test]
    fn argon2id_passwords() {
        let phc = hash_password("correct horse");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "wrong"));
        assert!(!verify_password("garbage", "x"));
        assert!(SecretHash::parse(&phc).unwrap().verify("correct horse"));
    }
}
