//! A software FIDO2 authenticator for tests and the benchmark: a P-256 key (aws-lc-rs), the
//! authenticator data, attestation object (`none` format, `packed` self attestation, or `packed`
//! with a certificate of a test attestation PKI made with rcgen) and assertions built byte by
//! byte as WebAuthn §6.1, §6.5, §8.2 and §6.3.3 lay them out. Nothing here is shared with the
//! gateway's code.
#![allow(dead_code)]
use std::collections::BTreeMap;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};

/// Chromium's virtual authenticator AAGUID, reused so that allow-list tests read alike.
pub const VIRTUAL_AAGUID: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];

/// The attestation statement a [`SoftKey`] sends at registration (WebAuthn §6.5.2).
#[derive(Clone)]
pub enum Attestation {
    /// Format `none`: what a software authenticator or a privacy-minded browser sends.
    None,
    /// Format `packed`, self attestation: signed by the credential key itself (§8.2), which
    /// proves nothing of the model.
    SelfSigned,
    /// Format `packed` with `x5c`: signed by a batch attestation key whose certificate chains
    /// to an attestation root (§8.2.1).
    Packed { cert_der: Vec<u8>, pkcs8: Vec<u8> },
}

/// A test attestation PKI: a vendor's attestation root (its PEM written to `ca_file`, for
/// `webauthn.attestation_ca_files`) and one batch attestation certificate of a model, with the
/// subject WebAuthn §8.2.1 requires and the model's AAGUID in `id-fido-gen-ce-aaguid`.
pub struct AttestationPki {
    pub ca_file: std::path::PathBuf,
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    batch: Attestation,
}

impl AttestationPki {
    pub fn new(label: &str, aaguid: [u8; 16]) -> AttestationPki {
        use rcgen::{
            BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name.push(DnType::CommonName, format!("{label} attestation root"));
        ca.distinguished_name.push(DnType::OrganizationName, "Test key vendor");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca, &ca_key);
        let batch_key = KeyPair::generate().expect("batch key");
        let mut batch = CertificateParams::new(Vec::<String>::new()).expect("params");
        batch.distinguished_name.push(DnType::CountryName, "FR");
        batch.distinguished_name.push(DnType::OrganizationName, "Test key vendor");
        batch.distinguished_name.push(DnType::OrganizationalUnitName, "Authenticator Attestation");
        batch.distinguished_name.push(DnType::CommonName, format!("{label} batch 1"));
        batch.is_ca = IsCa::ExplicitNoCa;
        // 1.3.6.1.4.1.45724.1.1.4 id-fido-gen-ce-aaguid: an OCTET STRING of the AAGUID.
        let mut octets = vec![0x04, 16];
        octets.extend(aaguid);
        batch.custom_extensions.push(CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4], octets));
        let batch_cert = batch.signed_by(&batch_key, &issuer).expect("batch certificate");
        let dir = std::env::temp_dir().join(format!("vigie-attestation-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_file = dir.join("attestation-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("CA file");
        AttestationPki {
            ca_file,
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            batch: Attestation::Packed { cert_der: batch_cert.der().to_vec(), pkcs8: batch_key.serialize_der() },
        }
    }

    /// The `webauthn.attestation_ca_files` value trusting this root.
    pub fn env(&self) -> String {
        format!(r#"["{}"]"#, self.ca_file.display())
    }

    /// The batch attestation's certificate and PKCS#8 key (DER), for a tool given them as files.
    pub fn batch_der(&self) -> (&[u8], &[u8]) {
        match &self.batch {
            Attestation::Packed { cert_der, pkcs8 } => (cert_der, pkcs8),
            _ => unreachable!("a PKI's batch is a packed attestation"),
        }
    }

    /// A key of this model: its registration carries the batch attestation.
    pub fn key(&self, rp_id: &str, origin: &str, aaguid: [u8; 16]) -> SoftKey {
        let mut key = SoftKey::new(rp_id, origin, aaguid);
        key.attestation = self.batch.clone();
        key
    }
}

pub struct SoftKey {
    pkcs8: Vec<u8>,
    key: EcdsaKeyPair,
    pub cred_id: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
    pub counter: u32,
    pub aaguid: [u8; 16],
    /// Whether the key reports user verification (flag UV).
    pub user_verified: bool,
    /// Whether the credential may be synchronised to other devices (flag BE).
    pub backup_eligible: bool,
    /// What the key says of its model at registration.
    pub attestation: Attestation,
    rp_id: String,
    origin: String,
}

fn b64d(s: &str) -> Vec<u8> {
    B64.decode(s.trim_end_matches('=')).expect("base64url from the gateway")
}

impl SoftKey {
    pub fn new(rp_id: &str, origin: &str, aaguid: [u8; 16]) -> SoftKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("P-256 key");
        let mut cred_id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut cred_id).expect("random");
        Self::from_parts(pkcs8.as_ref().to_vec(), cred_id, None, 0, aaguid, rp_id, origin)
    }

    fn from_parts(
        pkcs8: Vec<u8>,
        cred_id: Vec<u8>,
        user_handle: Option<Vec<u8>>,
        counter: u32,
        aaguid: [u8; 16],
        rp_id: &str,
        origin: &str,
    ) -> SoftKey {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).expect("PKCS#8");
        SoftKey {
            pkcs8,
            key,
            cred_id,
            user_handle,
            counter,
            aaguid,
            user_verified: true,
            backup_eligible: false,
            attestation: Attestation::None,
            rp_id: rp_id.into(),
            origin: origin.into(),
        }
    }

    /// A copy of this key (same private key and credential) whose counter is `counter`: what a
    /// cloned authenticator looks like to a relying party.
    pub fn clone_at(&self, counter: u32) -> SoftKey {
        Self::from_parts(
            self.pkcs8.clone(),
            self.cred_id.clone(),
            self.user_handle.clone(),
            counter,
            self.aaguid,
            &self.rp_id,
            &self.origin,
        )
    }

    pub fn id_b64(&self) -> String {
        B64.encode(&self.cred_id)
    }

    fn flags(&self, attested: bool) -> u8 {
        // WebAuthn §6.1: UP (bit 0), UV (bit 2), BE (bit 3), AT (bit 6).
        0x01 | if self.user_verified { 0x04 } else { 0 }
            | if self.backup_eligible { 0x08 } else { 0 }
            | if attested { 0x40 } else { 0 }
    }

    fn cose_key(&self) -> Vec<u8> {
        // RFC 9053 §7.1.1 / WebAuthn §6.5.1.1: EC2 key, ES256, P-256, x, y.
        let public = self.key.public_key().as_ref();
        let mut m = BTreeMap::new();
        m.insert(Cbor::Integer(1), Cbor::Integer(2));
        m.insert(Cbor::Integer(3), Cbor::Integer(-7));
        m.insert(Cbor::Integer(-1), Cbor::Integer(1));
        m.insert(Cbor::Integer(-2), Cbor::Bytes(public[1..33].to_vec()));
        m.insert(Cbor::Integer(-3), Cbor::Bytes(public[33..65].to_vec()));
        serde_cbor_2::to_vec(&Cbor::Map(m)).expect("CBOR")
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(
            &json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false }),
        )
        .expect("JSON")
    }

    /// Answers `navigator.credentials.create` for these options (the gateway's JSON).
    pub fn register(&mut self, options: &Value) -> Value {
        let pk = &options["publicKey"];
        let challenge = pk["challenge"].as_str().expect("challenge");
        self.user_handle = Some(b64d(pk["user"]["id"].as_str().expect("user.id")));
        let mut auth_data = digest::digest(&digest::SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend(self.aaguid);
        auth_data.extend((self.cred_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.cred_id);
        auth_data.extend(self.cose_key());
        let client_data = self.client_data("webauthn.create", challenge);
        // WebAuthn §8.2: a packed statement signs authenticatorData || SHA-256(clientDataJSON).
        let mut signed = auth_data.clone();
        signed.extend(digest::digest(&digest::SHA256, &client_data).as_ref());
        let sign = |key: &EcdsaKeyPair| key.sign(&SystemRandom::new(), &signed).expect("signature").as_ref().to_vec();
        let mut stmt = BTreeMap::new();
        let fmt = match &self.attestation {
            Attestation::None => "none",
            Attestation::SelfSigned => {
                stmt.insert(Cbor::Text("alg".into()), Cbor::Integer(-7));
                stmt.insert(Cbor::Text("sig".into()), Cbor::Bytes(sign(&self.key)));
                "packed"
            }
            Attestation::Packed { cert_der, pkcs8 } => {
                let batch = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).expect("batch key");
                stmt.insert(Cbor::Text("alg".into()), Cbor::Integer(-7));
                stmt.insert(Cbor::Text("sig".into()), Cbor::Bytes(sign(&batch)));
                stmt.insert(Cbor::Text("x5c".into()), Cbor::Array(vec![Cbor::Bytes(cert_der.clone())]));
                "packed"
            }
        };
        let mut att = BTreeMap::new();
        att.insert(Cbor::Text("fmt".into()), Cbor::Text(fmt.into()));
        att.insert(Cbor::Text("attStmt".into()), Cbor::Map(stmt));
        att.insert(Cbor::Text("authData".into()), Cbor::Bytes(auth_data));
        let attestation_object = serde_cbor_2::to_vec(&Cbor::Map(att)).expect("CBOR");
        json!({
            "id": self.id_b64(),
            "rawId": self.id_b64(),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": B64.encode(attestation_object),
                "clientDataJSON": B64.encode(client_data),
                "transports": ["usb"],
            },
        })
    }

    /// Answers `navigator.credentials.get` for these options; the counter goes up by one.
    pub fn assert(&mut self, options: &Value) -> Value {
        let challenge = options["publicKey"]["challenge"].as_str().expect("challenge").to_owned();
        self.assert_challenge(&challenge)
    }

    /// An assertion over a given challenge (base64url), as the benchmark needs.
    pub fn assert_challenge(&mut self, challenge: &str) -> Value {
        self.counter += 1;
        let mut auth_data = digest::digest(&digest::SHA256, self.rp_id.as_bytes()).as_ref().to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend(self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        // WebAuthn §6.3.3: the signature is over authenticatorData || SHA-256(clientDataJSON).
        let mut signed = auth_data.clone();
        signed.extend(digest::digest(&digest::SHA256, &client_data).as_ref());
        let sig = self.key.sign(&SystemRandom::new(), &signed).expect("signature");
        json!({
            "id": self.id_b64(),
            "rawId": self.id_b64(),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": B64.encode(auth_data),
                "clientDataJSON": B64.encode(client_data),
                "signature": B64.encode(sig.as_ref()),
                "userHandle": self.user_handle.as_ref().map(|h| B64.encode(h)),
            },
        })
    }
}
