//! A TEST FIDO2 authenticator in software, for the RIE table's FIDO2 rows: a P-256 key
//! (aws-lc-rs) whose registrations and assertions are built byte by byte as WebAuthn Level 2
//! lays them out (§6.1 authenticator data, §6.5.4 attestation "none", §8.2 attestation "packed"
//! with a test batch certificate of the profile, §6.3.3 assertion signature), with ES256 / COSE
//! EC2 keys (RFC 8152 §8.1, §13.1.1). Without the profile's attestation it is not a security key:
//! a relying party counts it as software (`swk`), never as hardware; with it, it stands for a key
//! of the test model whose attestation root the target trusts (`hwk`).
//! (Re-implemented from the gateway's own test key rather than shared with its test files.)
use anyhow::Context;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

/// The AAGUID a software authenticator has no model to name: all zeros (WebAuthn §6.5.1).
const NO_MODEL: [u8; 16] = [0; 16];

/// A test model's batch attestation (WebAuthn §8.2.1): its certificate, whose subject and
/// `id-fido-gen-ce-aaguid` extension name the model, and the key that signs registrations.
pub struct Attestor {
    cert_der: Vec<u8>,
    key: EcdsaKeyPair,
    aaguid: [u8; 16],
}

impl Attestor {
    /// From the profile's PEM certificate, PKCS#8 P-256 key and the model's AAGUID (a UUID).
    pub fn from_pem(cert_pem: &str, key_pem: &str, aaguid: &str) -> anyhow::Result<Attestor> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .context("fido2_attestation.cert_pem holds no PEM certificate")?;
        let pkcs8 = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .context("fido2_attestation.key_pem holds no PEM PKCS#8 key (BEGIN PRIVATE KEY)")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.secret_pkcs8_der())
            .map_err(|_| anyhow::anyhow!("fido2_attestation.key_pem is not a P-256 key (ES256, WebAuthn §8.2)"))?;
        let hex: String = aaguid.chars().filter(|c| *c != '-').collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<_>>()
            .filter(|b: &Vec<u8>| b.len() == 16)
            .with_context(|| format!("fido2_attestation.aaguid {aaguid:?} is not a UUID (32 hex digits)"))?;
        Ok(Attestor { cert_der: cert.as_ref().to_vec(), key, aaguid: bytes.try_into().unwrap_or_default() })
    }
}

pub struct SoftKey {
    key: EcdsaKeyPair,
    /// The batch attestation its registrations carry; `None`: attestation "none".
    attestor: Option<Attestor>,
    cred_id: Vec<u8>,
    user_handle: Option<Vec<u8>>,
    counter: u32,
    rp_id: String,
    origin: String,
}

/// A CBOR item (RFC 8949 §3), the few kinds an attestation object and a COSE key use.
enum Cbor<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Cbor<'a>>),
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
}

impl Cbor<'_> {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        // RFC 8949 §3: the argument inline below 24, else in 1, 2, 4 or 8 bytes.
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes())
            }
            0x1_0000..=0xffff_ffff => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes())
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes())
            }
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Int(i) if *i >= 0 => Self::head(out, 0, *i as u64),
            Cbor::Int(i) => Self::head(out, 1, (-1 - *i) as u64),
            Cbor::Bytes(b) => {
                Self::head(out, 2, b.len() as u64);
                out.extend_from_slice(b)
            }
            Cbor::Text(t) => {
                Self::head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes())
            }
            Cbor::Array(items) => {
                Self::head(out, 4, items.len() as u64);
                for i in items {
                    i.encode(out);
                }
            }
            Cbor::Map(entries) => {
                Self::head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    k.encode(out);
                    v.encode(out);
                }
            }
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn b64d(s: &str) -> anyhow::Result<Vec<u8>> {
    B64.decode(s.trim_end_matches('=')).context("the target sent a value that is not base64url")
}

impl SoftKey {
    /// A new key for the relying party `rp_id`, used from the web origin `origin`.
    pub fn new(rp_id: &str, origin: &str) -> anyhow::Result<SoftKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("no P-256 key could be generated"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("the generated P-256 key does not load"))?;
        let mut cred_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut cred_id).map_err(|_| anyhow::anyhow!("no random bytes"))?;
        Ok(SoftKey {
            key,
            attestor: None,
            cred_id,
            user_handle: None,
            counter: 0,
            rp_id: rp_id.into(),
            origin: origin.into(),
        })
    }

    /// The same key, its registrations signed by `attestor` (format "packed", x5c).
    pub fn attested_by(mut self, attestor: Attestor) -> SoftKey {
        self.attestor = Some(attestor);
        self
    }

    /// The credential id, base64url (as the target lists and revokes it).
    pub fn id_b64(&self) -> String {
        B64.encode(&self.cred_id)
    }

    /// WebAuthn §6.1 flags: UP (bit 0) and UV (bit 2) as a key with a PIN sets them when its
    /// holder touches it and types the PIN; AT (bit 6) when attested credential data follows.
    fn flags(attested: bool) -> u8 {
        0x01 | 0x04 | if attested { 0x40 } else { 0 }
    }

    /// The credential public key, COSE_Key EC2 (RFC 8152 §13.1.1): kty 2, alg -7 (ES256),
    /// crv 1 (P-256), x, y.
    fn cose_key(&self) -> Vec<u8> {
        let public = self.key.public_key().as_ref(); // 0x04 || x || y (SEC 1 §2.3.3)
        Cbor::Map(vec![
            (Cbor::Int(1), Cbor::Int(2)),
            (Cbor::Int(3), Cbor::Int(-7)),
            (Cbor::Int(-1), Cbor::Int(1)),
            (Cbor::Int(-2), Cbor::Bytes(&public[1..33])),
            (Cbor::Int(-3), Cbor::Bytes(&public[33..65])),
        ])
        .to_vec()
    }

    /// WebAuthn §5.8.1 CollectedClientData, as a browser serialises it.
    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// rpIdHash || flags || signCount (WebAuthn §6.1).
    fn auth_data_head(&self, attested: bool) -> Vec<u8> {
        let mut d = digest::digest(&digest::SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        d.push(Self::flags(attested));
        d.extend(self.counter.to_be_bytes());
        d
    }

    /// A PublicKeyCredential (WebAuthn §5.1) of this key around `response`, as a browser's
    /// JSON serialisation carries it.
    fn credential(&self, response: Value) -> Value {
        json!({ "id": self.id_b64(), "rawId": self.id_b64(), "type": "public-key", "extensions": {}, "response": response })
    }

    /// Answers `navigator.credentials.create` for the target's creation options: a
    /// PublicKeyCredential with attestation "none" (WebAuthn §8.7), or "packed" with the batch
    /// certificate (§8.2) when the key has an attestor.
    pub fn register(&mut self, options: &Value) -> anyhow::Result<Value> {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().context("the creation options carry no challenge")?;
        self.user_handle = Some(b64d(pk["user"]["id"].as_str().context("the creation options carry no user.id")?)?);
        // §6.5.1 attested credential data: AAGUID, credentialIdLength (2 bytes), id, key.
        let mut auth_data = self.auth_data_head(true);
        auth_data.extend(self.attestor.as_ref().map_or(NO_MODEL, |a| a.aaguid));
        auth_data.extend((self.cred_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.cred_id);
        auth_data.extend(self.cose_key());
        let client_data = self.client_data("webauthn.create", challenge);
        let sig;
        let (fmt, stmt) = match &self.attestor {
            None => ("none", vec![]),
            Some(a) => {
                // §8.2 step 2: the batch key signs authenticatorData || SHA-256(clientDataJSON).
                let mut signed = auth_data.clone();
                signed.extend(digest::digest(&digest::SHA256, &client_data).as_ref());
                sig = a.key.sign(&SystemRandom::new(), &signed).map_err(|_| anyhow::anyhow!("signing failed"))?;
                let x5c = Cbor::Array(vec![Cbor::Bytes(&a.cert_der)]);
                (
                    "packed",
                    vec![
                        (Cbor::Text("alg"), Cbor::Int(-7)),
                        (Cbor::Text("sig"), Cbor::Bytes(sig.as_ref())),
                        (Cbor::Text("x5c"), x5c),
                    ],
                )
            }
        };
        let attestation_object = Cbor::Map(vec![
            (Cbor::Text("fmt"), Cbor::Text(fmt)),
            (Cbor::Text("attStmt"), Cbor::Map(stmt)),
            (Cbor::Text("authData"), Cbor::Bytes(&auth_data)),
        ])
        .to_vec();
        Ok(self.credential(json!({
            "attestationObject": B64.encode(attestation_object),
            "clientDataJSON": B64.encode(client_data),
            "transports": ["usb"],
        })))
    }

    /// Answers `navigator.credentials.get` for the target's request options; the signature
    /// counter goes up by one, as a key's does at each use (§6.1.1).
    pub fn assert(&mut self, options: &Value) -> anyhow::Result<Value> {
        let challenge = options["publicKey"]["challenge"].as_str().context("the request options carry no challenge")?;
        self.counter += 1;
        let auth_data = self.auth_data_head(false);
        let client_data = self.client_data("webauthn.get", challenge);
        // §6.3.3 step 11: the signature is over authenticatorData || SHA-256(clientDataJSON).
        let mut signed = auth_data.clone();
        signed.extend(digest::digest(&digest::SHA256, &client_data).as_ref());
        let sig = self.key.sign(&SystemRandom::new(), &signed).map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(self.credential(json!({
            "authenticatorData": B64.encode(auth_data),
            "clientDataJSON": B64.encode(client_data),
            "signature": B64.encode(sig.as_ref()),
            "userHandle": self.user_handle.as_ref().map(|h| B64.encode(h)),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_heads_follow_rfc_8949_appendix_a() {
        // RFC 8949 Appendix A examples.
        assert_eq!(Cbor::Int(10).to_vec(), [0x0a]);
        assert_eq!(Cbor::Int(24).to_vec(), [0x18, 0x18]);
        assert_eq!(Cbor::Int(1000).to_vec(), [0x19, 0x03, 0xe8]);
        assert_eq!(Cbor::Int(-1).to_vec(), [0x20]);
        assert_eq!(Cbor::Int(-100).to_vec(), [0x38, 0x63]);
        assert_eq!(Cbor::Text("a").to_vec(), [0x61, 0x61]);
        assert_eq!(Cbor::Bytes(&[1, 2, 3, 4]).to_vec(), [0x44, 1, 2, 3, 4]);
        assert_eq!(Cbor::Map(vec![(Cbor::Int(1), Cbor::Int(2))]).to_vec(), [0xa1, 0x01, 0x02]);
    }

    #[test]
    fn an_assertion_verifies_with_the_registered_key_and_counts_up() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
        let mut k = SoftKey::new("localhost", "https://localhost:8443").expect("a key");
        let reg = k.register(&json!({"publicKey": {"challenge": "Y2g", "user": {"id": "dXNlcg"}}})).expect("created");
        let att = b64d(reg["response"]["attestationObject"].as_str().unwrap()).unwrap();
        // The map's three entries, "fmt": "none" first.
        assert_eq!(&att[..10], [0xa3, 0x63, b'f', b'm', b't', 0x64, b'n', b'o', b'n', b'e']);
        let public = k.key.public_key().as_ref().to_vec();
        for n in 1..=2u32 {
            let a = k.assert(&json!({"publicKey": {"challenge": "Y2g"}})).expect("asserted");
            let ad = b64d(a["response"]["authenticatorData"].as_str().unwrap()).unwrap();
            assert_eq!(ad[32], 0x05, "UP and UV, no AT");
            assert_eq!(ad[33..37], n.to_be_bytes());
            let cd = b64d(a["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
            let mut signed = ad.clone();
            signed.extend(digest::digest(&digest::SHA256, &cd).as_ref());
            let sig = b64d(a["response"]["signature"].as_str().unwrap()).unwrap();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public).verify(&signed, &sig).expect("verifies");
            assert_eq!(a["response"]["userHandle"], "dXNlcg");
        }
    }
}
