//! Signing keys: one EC P-256 key (ES256) and one RSA-2048 key (RS256 and PS256) in use at a
//! time, each with a `next` key published before use and a `previous` key kept until the
//! tokens it signed have expired (OIDC Core §10.1.1: rollover through the JWKS and `kid`).
//! The key file is shared by replicas (a mounted secret) and re-read when it changes.
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The algorithm of a client's ID tokens (`id_token_signed_response_alg`), hence which key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SigningAlg {
    #[default]
    ES256,
    RS256,
    PS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    EC,
    RSA,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not yet used to sign.
    Next,
    /// Signs.
    Current,
    /// Published until `retire_at` so tokens it signed still verify.
    Previous,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub kty: KeyType,
    pub state: KeyState,
    pub created_at: i64,
    pub retire_at: Option<i64>,
    /// PKCS#8 PEM. This file is a secret.
    pub private_pem: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyFile {
    pub keys: Vec<StoredKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {reason}: check `keys.file` (create one with `vigie keys generate`)")]
    Read { path: PathBuf, reason: String },
    #[error("key {kid} in the key file is unusable: {reason}")]
    BadKey { kid: String, reason: String },
    #[error("the key file has no current {0:?} key: run `vigie keys generate`")]
    NoCurrent(KeyType),
    #[error("token signing failed: {0}")]
    Sign(String),
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn new_key(kty: KeyType, state: KeyState, now: i64) -> StoredKey {
    let der = match kty {
        KeyType::EC => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new())
                .expect("P-256 key generation")
                .as_ref()
                .to_vec()
        }
        KeyType::RSA => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("RSA key generation")
            .as_der()
            .expect("RSA key encoding")
            .as_ref()
            .to_vec(),
    };
    StoredKey {
        kid: crate::secrets::random_token(12),
        kty,
        state,
        created_at: now,
        retire_at: None,
        private_pem: pem("PRIVATE KEY", &der),
    }
}

impl KeyFile {
    /// A fresh key set: a current and a next key of each type.
    pub fn generate(now: i64) -> Self {
        let mut keys = Vec::new();
        for kty in [KeyType::EC, KeyType::RSA] {
            keys.push(new_key(kty, KeyState::Current, now));
            keys.push(new_key(kty, KeyState::Next, now));
        }
        Self { keys }
    }

    /// Rotation: `next` becomes `current`, `current` becomes `previous` until
    /// `now + keep_secs` (the longest lifetime of a token it signed), expired `previous` keys
    /// go, and a new `next` is published.
    pub fn rotate(&mut self, now: i64, keep_secs: i64) {
        self.keys.retain(|k| k.retire_at.is_none_or(|t| t > now));
        for kty in [KeyType::EC, KeyType::RSA] {
            for k in self.keys.iter_mut().filter(|k| k.kty == kty) {
                match k.state {
                    KeyState::Current => {
                        k.state = KeyState::Previous;
                        k.retire_at = Some(now + keep_secs);
                    }
                    KeyState::Next => k.state = KeyState::Current,
                    KeyState::Previous => {}
                }
            }
            if !self.keys.iter().any(|k| k.kty == kty && k.state == KeyState::Current) {
                self.keys.push(new_key(kty, KeyState::Current, now));
            }
            self.keys.push(new_key(kty, KeyState::Next, now));
        }
    }

    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let read_err = |reason: String| KeyError::Read { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| read_err(e.to_string()))
    }

    /// Writes atomically (temporary file, then rename) with owner-only permissions.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(tmp, path)
    }
}

struct LoadedKey {
    kid: String,
    kty: KeyType,
    state: KeyState,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

/// The loaded, usable key set.
pub struct KeySet {
    keys: Vec<LoadedKey>,
    jwks_json: String,
}

/// Algorithms Vigie signs and accepts for its own tokens. `none` and HMAC never
/// (RFC 8725 §3.1, §3.2: no algorithm confusion).
fn family_of(alg: Algorithm) -> Option<KeyType> {
    match alg {
        Algorithm::ES256 => Some(KeyType::EC),
        Algorithm::RS256 | Algorithm::PS256 => Some(KeyType::RSA),
        _ => None,
    }
}

pub fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::PS256 => Algorithm::PS256,
    }
}

impl KeySet {
    pub fn from_file(file: &KeyFile, now: i64) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for k in file.keys.iter().filter(|k| k.retire_at.is_none_or(|t| t > now)) {
            let bad = |reason: String| KeyError::BadKey { kid: k.kid.clone(), reason };
            let (encoding, alg) = match k.kty {
                KeyType::EC => (EncodingKey::from_ec_pem(k.private_pem.as_bytes()), Algorithm::ES256),
                KeyType::RSA => (EncodingKey::from_rsa_pem(k.private_pem.as_bytes()), Algorithm::RS256),
            };
            let encoding = encoding.map_err(|e| bad(e.to_string()))?;
            let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|e| bad(e.to_string()))?;
            jwk.common.key_id = Some(k.kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            if k.kty == KeyType::RSA {
                // One RSA key serves RS256 and PS256: an `alg` would hide it from PS256 verifiers.
                jwk.common.key_algorithm = None;
            }
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| bad(e.to_string()))?;
            keys.push(LoadedKey { kid: k.kid.clone(), kty: k.kty, state: k.state, encoding, decoding, jwk });
        }
        for kty in [KeyType::EC, KeyType::RSA] {
            if !keys.iter().any(|k| k.kty == kty && k.state == KeyState::Current) {
                return Err(KeyError::NoCurrent(kty));
            }
        }
        let jwks = JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() };
        let jwks_json = serde_json::to_string(&jwks).unwrap_or_default();
        Ok(Self { keys, jwks_json })
    }

    /// The JWK Set document (public keys of every state).
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// Signs `claims` with the current key for `alg`, with JOSE header `typ` if given.
    pub fn sign<T: Serialize>(&self, alg: SigningAlg, typ: Option<&str>, claims: &T) -> Result<String, KeyError> {
        let alg = jwt_alg(alg);
        let kty = family_of(alg).ok_or_else(|| KeyError::Sign("unsupported algorithm".into()))?;
        let key =
            self.keys.iter().find(|k| k.kty == kty && k.state == KeyState::Current).ok_or(KeyError::NoCurrent(kty))?;
        let mut header = Header::new(alg);
        header.kid = Some(key.kid.clone());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Verifies a token Vigie signed. `validation` carries the iss/aud/exp rules; the
    /// algorithm comes from the key named by `kid`, never from the token alone (RFC 8725 §3.1).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        expected_typ: Option<&str>,
        mut validation: Validation,
    ) -> Result<(Header, T), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed JWT: {e}"))?;
        if header.crit.is_some() {
            return Err("JWT with a `crit` header is not accepted (RFC 7515 §4.1.11)".into());
        }
        let kty = family_of(header.alg).ok_or_else(|| format!("algorithm {:?} is not accepted", header.alg))?;
        let kid = header.kid.as_deref().ok_or("JWT has no `kid`")?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or_else(|| format!("unknown key id {kid:?}"))?;
        if key.kty != kty {
            return Err(format!("algorithm {:?} does not match key {kid:?}", header.alg));
        }
        if let Some(t) = expected_typ
            && !header.typ.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(t))
        {
            return Err(format!("JWT `typ` must be {t:?}"));
        }
        validation.algorithms = vec![header.alg];
        let data = jsonwebtoken::decode::<T>(token, &key.decoding, &validation).map_err(|e| e.to_string())?;
        Ok((data.header, data.claims))
    }
}

/// The key set as replicas see it: reloaded when the file changes.
pub struct Keys {
    path: PathBuf,
    current: RwLock<(Option<SystemTime>, Arc<KeySet>)>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Keys {
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let stamp = mtime(path);
        let set = KeySet::from_file(&KeyFile::read(path)?, crate::now())?;
        Ok(Self { path: path.to_owned(), current: RwLock::new((stamp, Arc::new(set))) })
    }

    pub fn get(&self) -> Arc<KeySet> {
        self.current.read().map(|g| g.1.clone()).unwrap_or_else(|p| p.into_inner().1.clone())
    }

    /// Re-reads the file if it changed; keeps the old set if the new one is unusable.
    pub fn reload_if_changed(&self) -> Result<bool, KeyError> {
        let stamp = mtime(&self.path);
        let unchanged = self.current.read().map(|g| g.0 == stamp).unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let set = KeySet::from_file(&KeyFile::read(&self.path)?, crate::now())?;
        if let Ok(mut g) = self.current.write() {
            *g = (stamp, Arc::new(set));
        }
        Ok(true)
    }
}

/// `[keys]`: where the signing key set is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The signing key set (JSON, written by `vigie keys generate` / `vigie keys rotate`),
    /// shared by replicas as a mounted secret and re-read when it changes.
    pub file: PathBuf,
}

impl KeysConfig {
    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if !self.file.is_file() {
            err(
                "keys.file",
                format!(
                    "{} is not a readable file (create it with `vigie keys generate --out FILE`)",
                    self.file.display()
                ),
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::Value;

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct C {
        iss: String,
        exp: u64,
    }

    fn claims() -> C {
        C { iss: "https://vigie.test".into(), exp: jsonwebtoken::get_current_timestamp() + 60 }
    }

    fn validation() -> Validation {
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&["https://vigie.test"]);
        v
    }

    /// What a relying party holding only the published JWK Set concludes of `token` signed with
    /// `alg`: the header must name `alg` and the `kid` of exactly one published signing key of
    /// that type; the public key is rebuilt from the JWK's own numbers (RFC 7518 §6.2.1 `x`/`y`,
    /// §6.3.1 `n`/`e`) and the signature checked by aws-lc for `alg`. Neither this key set nor
    /// jsonwebtoken takes part, so a signature that only the gateway's own verifier accepts fails.
    pub(crate) fn verify_with_published_jwk(jwks_json: &str, token: &str, alg: &str) -> Result<Value, String> {
        use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
        let bytes = |s: &str| B64.decode(s).map_err(|e| format!("base64url: {e}"));
        let json = |s: &str| serde_json::from_slice::<Value>(&bytes(s)?).map_err(|e| format!("JSON: {e}"));
        let [h, p, s] = token.split('.').collect::<Vec<_>>()[..] else { return Err("not a JWS".into()) };
        let header = json(h)?;
        if header["alg"] != alg {
            return Err(format!("header alg {} is not {alg}", header["alg"]));
        }
        let jwks: Value = serde_json::from_str(jwks_json).map_err(|e| e.to_string())?;
        let keys = jwks["keys"].as_array().ok_or("no keys")?;
        let named: Vec<&Value> = keys.iter().filter(|k| k["kid"] == header["kid"]).collect();
        let [jwk] = named[..] else { return Err(format!("{} published keys have kid {}", named.len(), header["kid"])) };
        if jwk["use"] != "sig" || jwk.get("alg").is_some_and(|a| a != alg) {
            return Err(format!("published key {} is not an {alg} signing key", header["kid"]));
        }
        let member = |name: &str| bytes(jwk[name].as_str().ok_or(format!("JWK has no {name}"))?);
        let (message, sig) = (format!("{h}.{p}"), bytes(s)?);
        let verified = match (alg, jwk["kty"].as_str(), jwk["crv"].as_str()) {
            ("ES256", Some("EC"), Some("P-256")) => {
                // SEC 1 §2.3.3 uncompressed point: 0x04 ‖ x ‖ y, each a full 32 bytes (RFC 7518 §6.2.1.2).
                let (x, y) = (member("x")?, member("y")?);
                if (x.len(), y.len()) != (32, 32) {
                    return Err("P-256 coordinates are 32 bytes".into());
                }
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, [&[4][..], &x, &y].concat())
                    .verify(message.as_bytes(), &sig)
            }
            ("RS256" | "PS256", Some("RSA"), None) => {
                let params = if alg == "RS256" {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n: member("n")?, e: member("e")? }.verify(params, message.as_bytes(), &sig)
            }
            _ => return Err(format!("published key {} cannot verify {alg}", header["kid"])),
        };
        verified.map_err(|_| format!("the {alg} signature does not verify with published key {}", header["kid"]))?;
        json(p)
    }

    /// `token` with its header replaced by one naming `alg` and `kid`, its signature kept.
    fn relabel(token: &str, alg: &str, kid: &str) -> String {
        let header = B64.encode(format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#));
        format!("{header}.{}", token.split_once('.').unwrap().1)
    }

    fn current_kid(file: &KeyFile, kty: KeyType) -> String {
        let current: Vec<&StoredKey> =
            file.keys.iter().filter(|k| k.kty == kty && k.state == KeyState::Current).collect();
        assert_eq!(current.len(), 1, "one current {kty:?} key");
        current[0].kid.clone()
    }

    #[test]
    fn each_alg_is_signed_as_its_header_says_with_the_current_key_of_its_type() {
        let file = KeyFile::generate(0);
        let set = KeySet::from_file(&file, 1).unwrap();
        for (alg, name, kty) in [
            (SigningAlg::ES256, "ES256", KeyType::EC),
            (SigningAlg::RS256, "RS256", KeyType::RSA),
            (SigningAlg::PS256, "PS256", KeyType::RSA),
        ] {
            let token = set.sign(alg, Some("JWT"), &claims()).unwrap();
            let header: Value = serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header, serde_json::json!({ "alg": name, "kid": current_kid(&file, kty), "typ": "JWT" }));
            let verified = verify_with_published_jwk(set.jwks_json(), &token, name).unwrap();
            assert_eq!(verified["iss"], "https://vigie.test");
        }
        // The oracle tells the paddings apart: a PKCS#1 v1.5 signature is not a PSS one.
        let kid = current_kid(&file, KeyType::RSA);
        for (signed, claimed) in [(SigningAlg::RS256, "PS256"), (SigningAlg::PS256, "RS256")] {
            let token = relabel(&set.sign(signed, None, &claims()).unwrap(), claimed, &kid);
            assert_eq!(
                verify_with_published_jwk(set.jwks_json(), &token, claimed),
                Err(format!("the {claimed} signature does not verify with published key \"{kid}\""))
            );
        }
    }

    #[test]
    fn the_jwks_publishes_every_live_key_public_part_only_for_signing() {
        let mut file = KeyFile::generate(0);
        file.rotate(10, 600);
        let set = KeySet::from_file(&file, 11).unwrap();
        let jwks: Value = serde_json::from_str(set.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        let mut published: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        let mut stored: Vec<&str> = file.keys.iter().map(|k| k.kid.as_str()).collect();
        published.sort();
        stored.sort();
        assert_eq!(published, stored, "previous, current and next keys of both types");
        assert_eq!(keys.len(), 6);
        for k in keys {
            assert_eq!(k["use"], "sig", "{k}");
            // RFC 7518 §6.2.2, §6.3.2: the private members.
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
                assert!(k.get(private).is_none(), "no {private} in {k}");
            }
            match k["kty"].as_str() {
                Some("EC") => {
                    assert_eq!((&k["crv"], &k["alg"]), (&Value::from("P-256"), &Value::from("ES256")), "{k}");
                }
                Some("RSA") => {
                    // One RSA key serves RS256 and PS256: a JWK `alg` would name only one.
                    assert!(k.get("alg").is_none(), "{k}");
                    assert_eq!(k["e"], "AQAB", "{k}");
                    assert_eq!(B64.decode(k["n"].as_str().unwrap()).unwrap().len(), 256, "RSA-2048: {k}");
                }
                other => panic!("unexpected kty {other:?}"),
            }
        }
    }

    #[test]
    fn tokens_signed_before_rotation_still_verify_and_next_key_is_published() {
        let mut file = KeyFile::generate(0);
        let before = KeySet::from_file(&file, 1).unwrap();
        let next_kid =
            file.keys.iter().find(|k| k.kty == KeyType::EC && k.state == KeyState::Next).unwrap().kid.clone();
        let published: Value = serde_json::from_str(before.jwks_json()).unwrap();
        assert!(
            published["keys"].as_array().unwrap().iter().any(|k| k["kid"] == next_kid.as_str()),
            "next key is published before use"
        );
        let old = before.sign(SigningAlg::ES256, None, &claims()).unwrap();

        file.rotate(10, 600);
        let after = KeySet::from_file(&file, 11).unwrap();
        let (h, _) = after.verify::<C>(&old, None, validation()).unwrap();
        verify_with_published_jwk(after.jwks_json(), &old, "ES256").unwrap();
        let new = after.sign(SigningAlg::ES256, None, &claims()).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(), next_kid);
        verify_with_published_jwk(after.jwks_json(), &new, "ES256").unwrap();
        assert_ne!(h.kid.unwrap(), next_kid);

        let retired = KeySet::from_file(&file, 700).unwrap();
        assert!(retired.verify::<C>(&old, None, validation()).unwrap_err().contains("unknown key id"));
        assert!(
            verify_with_published_jwk(retired.jwks_json(), &old, "ES256").unwrap_err().starts_with("0 published keys")
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes are never a valid token, and never a panic.
        #[test]
        fn arbitrary_tokens_are_refused(token in "\\PC{0,300}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 3)) {
            let set = SET.get_or_init(|| KeySet::from_file(&KeyFile::generate(0), 1).unwrap());
            proptest::prop_assert!(set.verify::<serde_json::Value>(&token, None, validation()).is_err());
            proptest::prop_assert!(set.verify::<serde_json::Value>(&parts.join("."), None, validation()).is_err());
        }
    }

    static SET: std::sync::OnceLock<KeySet> = std::sync::OnceLock::new();

    /// RFC 8725 §3.1: the key named by `kid` fixes the algorithm; a header naming another one is
    /// refused, even within the RSA family where the key could compute it.
    #[test]
    fn a_header_naming_another_alg_than_its_keys_is_refused() {
        let file = KeyFile::generate(0);
        let set = KeySet::from_file(&file, 1).unwrap();
        let (ec, rsa) = (current_kid(&file, KeyType::EC), current_kid(&file, KeyType::RSA));
        let es = set.sign(SigningAlg::ES256, None, &claims()).unwrap();
        let rs = set.sign(SigningAlg::RS256, None, &claims()).unwrap();
        let ps = set.sign(SigningAlg::PS256, None, &claims()).unwrap();
        let refused = |token: String| set.verify::<C>(&token, None, validation()).unwrap_err();
        assert_eq!(refused(relabel(&es, "RS256", &ec)), format!("algorithm RS256 does not match key {ec:?}"));
        assert_eq!(refused(relabel(&es, "PS256", &ec)), format!("algorithm PS256 does not match key {ec:?}"));
        assert_eq!(refused(relabel(&rs, "ES256", &rsa)), format!("algorithm ES256 does not match key {rsa:?}"));
        assert_eq!(refused(relabel(&rs, "PS256", &rsa)), "InvalidSignature");
        assert_eq!(refused(relabel(&ps, "RS256", &rsa)), "InvalidSignature");
        // Control: the same relabelling with the true algorithm verifies.
        set.verify::<C>(&relabel(&ps, "PS256", &rsa), None, validation()).unwrap();
    }

    #[test]
    fn alg_none_hmac_confusion_and_crit_are_refused() {
        let set = KeySet::from_file(&KeyFile::generate(0), 1).unwrap();
        let good = set.sign(SigningAlg::ES256, None, &claims()).unwrap();
        let kid = jsonwebtoken::decode_header(&good).unwrap().kid.unwrap();
        let none = relabel(&good, "none", &kid);
        let none = format!("{}.", none.rsplit_once('.').unwrap().0);
        assert!(set.verify::<C>(&none, None, validation()).unwrap_err().starts_with("malformed JWT"));
        // HS256 keyed with the public JWK: the classic algorithm confusion.
        let hs = jsonwebtoken::encode(
            &Header { kid: Some(kid.clone()), ..Header::new(Algorithm::HS256) },
            &claims(),
            &EncodingKey::from_secret(set.jwks_json().as_bytes()),
        )
        .unwrap();
        assert!(set.verify::<C>(&hs, None, validation()).unwrap_err().contains("not accepted"));
        let mut parts: Vec<&str> = good.split('.').collect();
        let crit = B64.encode(format!(r#"{{"alg":"ES256","kid":"{kid}","crit":["exp"]}}"#));
        parts[0] = &crit;
        assert_eq!(
            set.verify::<C>(&parts.join("."), None, validation()).unwrap_err(),
            "JWT with a `crit` header is not accepted (RFC 7515 §4.1.11)"
        );
        let other = KeySet::from_file(&KeyFile::generate(0), 1).unwrap();
        assert!(other.verify::<C>(&good, None, validation()).unwrap_err().contains("unknown key id"));
    }
}
