//! The JOSE work `openidconnect` does not do for us, done with `jsonwebtoken` (aws-lc):
//! the `private_key_jwt` client assertion (RFC 7523) and the signed userinfo (OIDC Core §5.3.2).
use crate::error::PscError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind, jwk::Jwk};
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;

/// Lifetime of a client assertion: it is used at once.
const ASSERTION_TTL_SECS: i64 = 60;

/// A key that signs `private_key_jwt` client assertions.
pub(crate) struct AssertionSigner {
    key: EncodingKey,
    alg: Algorithm,
    kid: Option<String>,
}

impl AssertionSigner {
    pub(crate) fn new(key_pem: &str, kid: Option<String>, alg: &str) -> Result<Self, PscError> {
        let alg = Algorithm::from_str(alg)
            .map_err(|_| PscError::Config(format!("private_key_jwt: unknown signature algorithm `{alg}`")))?;
        let pem = key_pem.as_bytes();
        let key = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            // RFC 7523 §2.2 with a shared secret is client_secret_jwt, not private_key_jwt.
            _ => {
                return Err(PscError::Config(format!("private_key_jwt needs an asymmetric algorithm, not {alg:?}")));
            }
        }
        .map_err(|e| PscError::Config(format!("private_key_jwt: the key is not a {alg:?} private key in PEM: {e}")))?;
        Ok(Self { key, alg, kid })
    }

    /// RFC 7523 §3: `iss` = `sub` = client_id, `aud` = the token endpoint, short `exp`, unique `jti`.
    pub(crate) fn assertion(&self, client_id: &str, token_endpoint: &str, now: i64) -> Result<String, PscError> {
        let mut header = Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": token_endpoint,
            "iat": now, "exp": now + ASSERTION_TTL_SECS, "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| PscError::Config(format!("private_key_jwt: cannot sign the client assertion: {e}")))
    }
}

/// PSC's keys as `jsonwebtoken` reads them (the same JWKS document `openidconnect` reads).
#[derive(Default)]
pub(crate) struct JoseKeys(Vec<Jwk>);

impl JoseKeys {
    /// Keeps every key `jsonwebtoken` understands; others (encryption keys, unknown types) are
    /// skipped, like `openidconnect` does.
    pub(crate) fn from_jwks(jwks: &Value) -> Self {
        let keys = jwks.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        Self(
            keys.iter()
                .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
                .filter_map(|k| Jwk::deserialize(k).ok())
                .collect(),
        )
    }

    fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self.0.iter().find(|k| k.common.key_id.as_deref() == Some(kid)),
            // OIDC Core §10.1: without a kid, the set must hold exactly one key.
            None if self.0.len() == 1 => self.0.first(),
            None => None,
        }
    }
}

/// What to check in a signed userinfo.
pub(crate) struct UserinfoCheck<'a> {
    pub(crate) algs: &'a [String],
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) skew_secs: u64,
}

/// A signed userinfo that failed; `UnknownKid` lets the caller refetch the JWKS and retry.
pub(crate) fn verify_userinfo_jwt(jwt: &str, keys: &JoseKeys, check: &UserinfoCheck<'_>) -> Result<Value, PscError> {
    let bad = |why: &str| PscError::Userinfo(format!("the signed userinfo is malformed: {why}"));
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    match parts.len() {
        3 => {}
        5 => {
            return Err(PscError::Userinfo("an encrypted userinfo (JWE) is not supported: configure it signed".into()));
        }
        _ => return Err(bad("not a JWS in compact form")),
    }
    let segment = |s: &str, name: &str| -> Result<Value, PscError> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad(&format!("the {name} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| bad(&format!("the {name} is not JSON")))
    };
    let header = segment(parts[0], "header")?;
    let payload = segment(parts[1], "payload")?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or_else(|| bad("no `alg` in the header"))?;
    // RFC 8725 §3.1: only the algorithms we allow; `none` never is.
    if alg == "none" || !check.algs.iter().any(|a| a == alg) {
        return Err(PscError::AlgNotAllowed(format!("`{alg}` is not one of {}", check.algs.join(", "))));
    }
    let alg = Algorithm::from_str(alg).map_err(|_| PscError::AlgNotAllowed(format!("`{alg}` is not supported")))?;
    let kid = header.get("kid").and_then(Value::as_str);
    let jwk = keys.find(kid).ok_or_else(|| PscError::UnknownKid(format!("kid {}", kid.unwrap_or("(none)"))))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| PscError::BadSignature(format!("PSC's key is unusable: {e}")))?;
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.leeway = check.skew_secs;
    // OIDC Core §5.3.2: iss and aud SHOULD be present; when they are they must be ours.
    if payload.get("aud").is_some() {
        v.set_audience(&[check.client_id]);
    } else {
        v.validate_aud = false;
    }
    if payload.get("iss").is_some() {
        v.set_issuer(&[check.issuer]);
    }
    jsonwebtoken::decode::<Value>(jwt.trim(), &key, &v).map(|d| d.claims).map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => PscError::BadSignature("the userinfo signature does not verify".into()),
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
            PscError::Expired("the signed userinfo is out of its validity".into())
        }
        ErrorKind::InvalidAudience => {
            PscError::WrongAudience(format!("the signed userinfo is not for `{}`", check.client_id))
        }
        ErrorKind::InvalidIssuer => {
            PscError::WrongIssuer(format!("the signed userinfo is not from `{}`", check.issuer))
        }
        ErrorKind::InvalidAlgorithm => PscError::AlgNotAllowed("the key does not match the algorithm".into()),
        other => PscError::Userinfo(format!("the signed userinfo is invalid: {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn verify(jwt: &str) -> Result<Value, PscError> {
        let algs = vec!["RS256".to_owned()];
        let check = UserinfoCheck { algs: &algs, issuer: "https://psc", client_id: "vigie", skew_secs: 60 };
        verify_userinfo_jwt(jwt, &JoseKeys::default(), &check)
    }

    fn jws(header: &Value, payload: &Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
        format!("{}.{}.c2ln", enc(header), enc(payload))
    }

    #[test]
    fn unsigned_or_hmac_userinfo_is_refused_by_the_alg_allow_list() {
        // RFC 8725 §2.1/§3.1: `none` and algorithm confusion (HS256 keyed with a public key).
        for alg in ["none", "HS256", "ES256"] {
            let err = verify(&jws(&serde_json::json!({"alg": alg}), &serde_json::json!({"sub": "s"}))).unwrap_err();
            assert_eq!(err.code(), "alg_not_allowed", "{alg}: {err}");
        }
    }

    #[test]
    fn an_unknown_kid_asks_for_a_jwks_refetch() {
        let err = verify(&jws(&serde_json::json!({"alg": "RS256", "kid": "k9"}), &serde_json::json!({}))).unwrap_err();
        assert_eq!(err.code(), "unknown_kid");
    }

    #[test]
    fn an_encrypted_userinfo_is_refused_with_advice() {
        let err = verify("a.b.c.d.e").unwrap_err();
        assert!(err.to_string().contains("JWE"), "{err}");
    }

    proptest! {
        #[test]
        fn garbage_is_refused_without_panic(s in ".{0,300}") {
            prop_assert!(verify(&s).is_err());
        }

        #[test]
        fn well_shaped_tokens_are_refused_with_a_precise_code(
            alg in prop_oneof![Just("none".to_owned()), Just("RS256".to_owned()), Just("HS256".to_owned()), ".{0,6}"],
            kid in prop::option::of("[a-z0-9]{0,8}"),
            sub in ".{0,20}",
        ) {
            let mut header = serde_json::json!({"alg": alg});
            if let Some(kid) = kid {
                header["kid"] = Value::String(kid);
            }
            let code = verify(&jws(&header, &serde_json::json!({"sub": sub}))).unwrap_err().code();
            prop_assert!(["alg_not_allowed", "unknown_kid"].contains(&code), "{code}");
        }
    }
}
