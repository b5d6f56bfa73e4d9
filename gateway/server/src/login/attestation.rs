//! What a FIDO2 key must prove of its model at registration: the attestation roots its
//! attestation is verified against (WebAuthn L2 §6.5, §7.1 steps 19–21; 21–23 in L3), from PEM
//! files of attestation CAs and from the FIDO Metadata Service BLOB (FIDO MDS3 §3) read from a
//! file, whose signature and certificate chain are checked against a configured root.
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64STD, URL_SAFE_NO_PAD as B64URL};
use serde::Deserialize;
use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder, Uuid};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::{ASN1Time, FromDer};

use super::config::{AttestationMode, WebauthnConfig};

/// A refused `[webauthn]` attestation setting: the key to fix and why.
#[derive(Debug, PartialEq, Eq)]
pub struct TrustError {
    /// The configuration key, e.g. `webauthn.mds_blob_file`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn trust_error(key: impl Into<String>, message: impl Into<String>) -> TrustError {
    TrustError { key: key.into(), message: message.into() }
}

/// The attestation roots registrations are verified against, `None` when `attestation = "none"`
/// (keys then register without attestation and never count as hardware keys). An empty list
/// (attestation required, no root configured) refuses every registration.
pub fn trust_roots(cfg: &WebauthnConfig, now: i64) -> Result<Option<AttestationCaList>, TrustError> {
    if cfg.attestation == AttestationMode::None {
        return Ok(None);
    }
    let mut roots = AttestationCaList::default();
    for (i, file) in cfg.attestation_ca_files.iter().enumerate() {
        let key = format!("webauthn.attestation_ca_files[{i}]");
        let pem = read(file, &key)?;
        let blocks = pem_certificates(&pem);
        if blocks.is_empty() {
            return Err(trust_error(key, format!("{} holds no PEM certificate", file.display())));
        }
        for block in blocks {
            // A CA file vouches for every model it attests (blanket): `aaguid_allow_list`
            // narrows the models after the attestation is verified.
            let ca = AttestationCaList::try_from(block.as_bytes())
                .map_err(|e| trust_error(&key, format!("{}: not an X.509 certificate ({e})", file.display())))?;
            roots.union(&ca);
        }
    }
    if let Some(blob_file) = &cfg.mds_blob_file {
        let Some(root_file) = &cfg.mds_root_ca_file else {
            return Err(trust_error(
                "webauthn.mds_root_ca_file",
                "required with `webauthn.mds_blob_file`: the root the BLOB's signing chain must end at \
                 (FIDO's: GlobalSign Root CA - R3, from https://fidoalliance.org/metadata/)",
            ));
        };
        let root = pem_certificates(&read(root_file, "webauthn.mds_root_ca_file")?)
            .first()
            .and_then(|b| pem_der(b))
            .ok_or_else(|| {
                trust_error("webauthn.mds_root_ca_file", format!("{} holds no PEM certificate", root_file.display()))
            })?;
        let blob = read(blob_file, "webauthn.mds_blob_file")?;
        let blob = parse_mds_blob(blob.as_bytes(), &root, now)
            .map_err(|e| trust_error("webauthn.mds_blob_file", format!("{}: {e}", blob_file.display())))?;
        let allow: Vec<Uuid> = cfg.aaguid_allow_list.iter().filter_map(|a| Uuid::parse_str(a).ok()).collect();
        let mut builder = AttestationCaListBuilder::new();
        for entry in blob.entries.iter().filter(|e| allow.is_empty() || allow.contains(&e.aaguid)) {
            for der in &entry.roots {
                builder.insert_device_der(der, entry.aaguid, entry.description.clone(), Default::default()).map_err(
                    |e| {
                        trust_error(
                            "webauthn.mds_blob_file",
                            format!("the BLOB's entry {} has an unreadable root ({e})", entry.aaguid),
                        )
                    },
                )?;
            }
        }
        roots.union(&builder.build());
    }
    // Empty: no model is trusted, so no key registers (fail closed) until roots are configured;
    // the start says so in the log, and keys registered before keep logging in.
    Ok(Some(roots))
}

fn read(path: &Path, key: &str) -> Result<String, TrustError> {
    std::fs::read_to_string(path)
        .map_err(|e| trust_error(key, format!("{} is not a readable file ({e})", path.display())))
}

/// The PEM `CERTIFICATE` blocks of a file, each with its armour.
fn pem_certificates(pem: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END)
        .filter_map(|chunk| chunk.find(BEGIN).map(|at| chunk[at..].to_owned()))
        .filter(|block| block.ends_with(END))
        .collect()
}

fn pem_der(block: &str) -> Option<Vec<u8>> {
    let body: String = block.lines().filter(|l| !l.starts_with("-----")).collect();
    B64STD.decode(body.trim()).ok()
}

/// Why a Metadata BLOB is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MdsError {
    /// Not three base64url parts.
    #[error("not a JWT (three base64url parts, FIDO MDS3 §3.1.7)")]
    NotJwt,
    /// The header or payload is not the JSON MDS3 describes.
    #[error("malformed {0}")]
    Malformed(String),
    /// No `x5c` in the header (a BLOB signed by `x5u` is not supported).
    #[error("the header has no `x5c` certificate chain (FIDO MDS3 §3.1.7 step 4)")]
    NoChain,
    /// The chain does not end at the configured root, or a certificate in it is not valid now.
    #[error("the signing chain is not trusted: {0} (check `webauthn.mds_root_ca_file`, FIDO MDS3 §3.1.7 step 4)")]
    Untrusted(String),
    /// The JWT signature does not verify with the chain's leaf.
    #[error("the signature does not verify with the signing certificate (FIDO MDS3 §3.1.7 step 5)")]
    BadSignature,
    /// An algorithm other than ES256, RS256 or PS256.
    #[error("unsupported signature algorithm {0:?} (ES256, RS256 and PS256 are)")]
    Algorithm(String),
}

/// A FIDO2 authenticator model the BLOB vouches for: its AAGUID, its name and the roots of its
/// attestation certificates (MDS3 §3.1.1 `MetadataBLOBPayloadEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdsEntry {
    /// The model's AAGUID.
    pub aaguid: Uuid,
    /// `metadataStatement.description`.
    pub description: String,
    /// `metadataStatement.attestationRootCertificates`, DER.
    pub roots: Vec<Vec<u8>>,
}

/// A verified Metadata BLOB: its serial number, when the next one is due, the usable models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdsBlob {
    /// `no`, the BLOB's serial number.
    pub no: u64,
    /// `nextUpdate` (ISO 8601 date): fetch a new BLOB by then.
    pub next_update: String,
    /// The FIDO2 entries (with an AAGUID) whose latest status is not a compromise.
    pub entries: Vec<MdsEntry>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    no: u64,
    next_update: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    aaguid: Option<String>,
    metadata_statement: Option<Statement>,
    #[serde(default)]
    status_reports: Vec<StatusReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    description: String,
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
struct StatusReport {
    status: String,
}

/// FIDO MDS3 §3.1.4 `AuthenticatorStatus` values that say the model can no longer be trusted:
/// its attestation or user keys are compromised, or user verification can be bypassed.
const BLOCKING_STATUS: [&str; 5] = [
    "REVOKED",
    "USER_VERIFICATION_BYPASS",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
];

/// Verifies and reads a Metadata BLOB (FIDO MDS3 §3.1.7): a JWT whose `x5c` chain must end at
/// `root_der` with every certificate valid at `now` (Unix seconds), signed by the chain's leaf;
/// then its FIDO2 entries, without those whose latest status report is a compromise (§3.1.4).
pub fn parse_mds_blob(jwt: &[u8], root_der: &[u8], now: i64) -> Result<MdsBlob, MdsError> {
    let text = std::str::from_utf8(jwt).map_err(|_| MdsError::NotJwt)?.trim();
    let mut parts = text.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(MdsError::NotJwt);
    };
    let decode = |part: &str| B64URL.decode(part.trim_end_matches('=')).map_err(|_| MdsError::NotJwt);
    let header: Header =
        serde_json::from_slice(&decode(h)?).map_err(|e| MdsError::Malformed(format!("JWT header: {e}")))?;
    if header.x5c.is_empty() {
        return Err(MdsError::NoChain);
    }
    let chain = header
        .x5c
        .iter()
        .map(|c| B64STD.decode(c).map_err(|_| MdsError::Malformed("x5c: not base64".into())))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = verify_chain(&chain, root_der, now)?;
    let (_, leaf) = X509Certificate::from_der(&leaf).map_err(|e| MdsError::Untrusted(e.to_string()))?;
    verify_signature(&header.alg, leaf.public_key().subject_public_key.data.as_ref(), h, p, &decode(s)?)?;
    let payload: Payload =
        serde_json::from_slice(&decode(p)?).map_err(|e| MdsError::Malformed(format!("payload: {e}")))?;
    let mut entries = Vec::new();
    for entry in payload.entries {
        let (Some(aaguid), Some(statement)) = (entry.aaguid, entry.metadata_statement) else { continue };
        let aaguid = Uuid::parse_str(&aaguid).map_err(|_| MdsError::Malformed(format!("aaguid {aaguid:?}")))?;
        if entry.status_reports.last().is_some_and(|r| BLOCKING_STATUS.contains(&r.status.as_str())) {
            continue;
        }
        let roots = statement
            .attestation_root_certificates
            .iter()
            .map(|c| B64STD.decode(c).map_err(|_| MdsError::Malformed(format!("{aaguid}: a root is not base64"))))
            .collect::<Result<Vec<_>, _>>()?;
        if !roots.is_empty() {
            entries.push(MdsEntry { aaguid, description: statement.description, roots });
        }
    }
    Ok(MdsBlob { no: payload.no, next_update: payload.next_update, entries })
}

/// Checks that each certificate of `chain` (leaf first) is signed by the next, the last by the
/// root (or is the root), every one valid at `now`; returns the leaf.
fn verify_chain(chain: &[Vec<u8>], root_der: &[u8], now: i64) -> Result<Vec<u8>, MdsError> {
    let at = ASN1Time::from_timestamp(now).map_err(|e| MdsError::Untrusted(e.to_string()))?;
    let root = valid_certificate(root_der, at)?;
    let certs = chain.iter().map(|der| valid_certificate(der, at)).collect::<Result<Vec<_>, _>>()?;
    for (i, cert) in certs.iter().enumerate() {
        let issuer = match certs.get(i + 1) {
            Some(next) => next,
            None if chain[i] == root_der => break,
            None => &root,
        };
        if !issuer.is_ca() {
            return Err(MdsError::Untrusted(format!("{} is not a CA", issuer.subject())));
        }
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|_| MdsError::Untrusted(format!("{} is not signed by {}", cert.subject(), issuer.subject())))?;
    }
    Ok(chain[0].clone())
}

/// One DER certificate, nothing after it, valid at `at`.
fn valid_certificate(der: &[u8], at: ASN1Time) -> Result<X509Certificate<'_>, MdsError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| MdsError::Untrusted(format!("x5c: {e}")))?;
    if !rest.is_empty() {
        return Err(MdsError::Untrusted("trailing bytes after a certificate".into()));
    }
    if !cert.validity().is_valid_at(at) {
        return Err(MdsError::Untrusted(format!("{} is not valid now", cert.subject())));
    }
    Ok(cert)
}

fn verify_signature(alg: &str, public_key: &[u8], h: &str, p: &str, sig: &[u8]) -> Result<(), MdsError> {
    use aws_lc_rs::signature as s;
    let algorithm: &dyn s::VerificationAlgorithm = match alg {
        "ES256" => &s::ECDSA_P256_SHA256_FIXED,
        "RS256" => &s::RSA_PKCS1_2048_8192_SHA256,
        "PS256" => &s::RSA_PSS_2048_8192_SHA256,
        other => return Err(MdsError::Algorithm(other.to_owned())),
    };
    let signed = format!("{h}.{p}");
    s::UnparsedPublicKey::new(algorithm, public_key).verify(signed.as_bytes(), sig).map_err(|_| MdsError::BadSignature)
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const MODEL: &str = "2fc0579f-8113-47ea-b116-555a8db03202";

    /// FIDO's side of the BLOB: a root, a signing certificate under it and its key (PKCS#8).
    struct Signer {
        root_der: Vec<u8>,
        leaf_der: Vec<u8>,
        key: Vec<u8>,
    }

    fn ca(name: &str) -> (CertificateParams, KeyPair) {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        (p, KeyPair::generate().expect("key"))
    }

    fn signer() -> Signer {
        let (root, root_key) = ca("Test MDS root");
        let root_der = root.self_signed(&root_key).expect("root").der().to_vec();
        let issuer = Issuer::new(root, &root_key);
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.distinguished_name.push(DnType::CommonName, "Test MDS signer");
        let key = KeyPair::generate().expect("key");
        let leaf_der = leaf.signed_by(&key, &issuer).expect("leaf").der().to_vec();
        Signer { root_der, leaf_der, key: key.serialize_der() }
    }

    fn jwt(s: &Signer, alg: &str, payload: &serde_json::Value) -> String {
        let header = json!({ "alg": alg, "typ": "JWT", "x5c": [B64STD.encode(&s.leaf_der)] });
        let signed = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(payload.to_string()));
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &s.key).expect("key");
        let sig = key.sign(&SystemRandom::new(), signed.as_bytes()).expect("sign");
        format!("{signed}.{}", B64URL.encode(sig.as_ref()))
    }

    fn entry(aaguid: &str, root: &[u8], status: &str) -> serde_json::Value {
        json!({
            "aaguid": aaguid,
            "metadataStatement": { "description": "Test key", "attestationRootCertificates": [B64STD.encode(root)] },
            "statusReports": [{ "status": "FIDO_CERTIFIED_L1" }, { "status": status }],
        })
    }

    fn payload(entries: Vec<serde_json::Value>) -> serde_json::Value {
        json!({ "legalHeader": "test", "no": 42, "nextUpdate": "2027-01-01", "entries": entries })
    }

    #[test]
    fn a_blob_signed_under_the_root_gives_its_models_without_the_compromised_ones() {
        let s = signer();
        let attestation_root = s.root_der.clone();
        let blob = jwt(
            &s,
            "ES256",
            &payload(vec![
                entry(MODEL, &attestation_root, "FIDO_CERTIFIED_L2"),
                entry("ee882879-721c-4913-9775-3dfcce97072a", &attestation_root, "ATTESTATION_KEY_COMPROMISE"),
                json!({ "aaid": "4e4e#4005", "metadataStatement": { "description": "UAF" } }),
            ]),
        );
        let parsed = parse_mds_blob(blob.as_bytes(), &s.root_der, NOW).expect("valid");
        assert_eq!((parsed.no, parsed.next_update.as_str()), (42, "2027-01-01"));
        assert_eq!(
            parsed.entries,
            vec![MdsEntry {
                aaguid: Uuid::parse_str(MODEL).expect("uuid"),
                description: "Test key".into(),
                roots: vec![attestation_root],
            }]
        );
    }

    #[test]
    fn a_blob_not_signed_under_the_configured_root_or_altered_is_refused() {
        let s = signer();
        let blob = jwt(&s, "ES256", &payload(vec![entry(MODEL, &s.root_der, "FIDO_CERTIFIED")]));
        let other = signer();
        assert!(matches!(parse_mds_blob(blob.as_bytes(), &other.root_der, NOW), Err(MdsError::Untrusted(_))));
        // The trusted chain in `x5c`, but signed by another key: refused.
        let forged = jwt(
            &Signer { key: other.key.clone(), root_der: s.root_der.clone(), leaf_der: s.leaf_der.clone() },
            "ES256",
            &payload(vec![]),
        );
        assert_eq!(parse_mds_blob(forged.as_bytes(), &s.root_der, NOW), Err(MdsError::BadSignature));
        let mut parts: Vec<String> = blob.split('.').map(str::to_owned).collect();
        parts[1] = B64URL.encode(payload(vec![entry(MODEL, &other.root_der, "FIDO_CERTIFIED")]).to_string());
        assert_eq!(parse_mds_blob(parts.join(".").as_bytes(), &s.root_der, NOW), Err(MdsError::BadSignature));
        // 1973: before the certificates (rcgen: from 1975) are valid.
        assert!(matches!(parse_mds_blob(blob.as_bytes(), &s.root_der, 100_000_000), Err(MdsError::Untrusted(_))));
        assert_eq!(parse_mds_blob(b"a.b", &s.root_der, NOW), Err(MdsError::NotJwt));
        let none = format!("{}.{}.", B64URL.encode(r#"{"alg":"none"}"#), B64URL.encode("{}"));
        assert_eq!(parse_mds_blob(none.as_bytes(), &s.root_der, NOW), Err(MdsError::NoChain));
        let hs = jwt(&s, "HS256", &payload(vec![]));
        assert_eq!(parse_mds_blob(hs.as_bytes(), &s.root_der, NOW), Err(MdsError::Algorithm("HS256".into())));
    }

    #[test]
    fn the_configured_roots_are_what_registrations_are_verified_against() {
        let dir = std::env::temp_dir().join(format!("vigie-attestation-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let s = signer();
        let pem = |der: &[u8]| {
            let b64 = B64STD.encode(der);
            let lines: Vec<&str> = b64.as_bytes().chunks(64).filter_map(|l| std::str::from_utf8(l).ok()).collect();
            format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
        };
        let (two, root, blob) = (dir.join("two.pem"), dir.join("mds-root.pem"), dir.join("mds.jwt"));
        std::fs::write(&two, format!("{}{}", pem(&s.root_der), pem(&signer().root_der))).expect("write");
        std::fs::write(&root, pem(&s.root_der)).expect("write");
        std::fs::write(&blob, jwt(&s, "ES256", &payload(vec![entry(MODEL, &s.leaf_der, "FIDO_CERTIFIED")])))
            .expect("write");
        let cfg = |f: &dyn Fn(&mut WebauthnConfig)| {
            let mut c = WebauthnConfig::default();
            f(&mut c);
            trust_roots(&c, NOW)
        };
        assert_eq!(cfg(&|c| c.attestation = AttestationMode::None).map(|r| r.is_none()), Ok(true));
        assert_eq!(cfg(&|_| {}).map(|r| r.map(|l| l.len())), Ok(Some(0)), "required, no root: none trusted");
        assert_eq!(cfg(&|c| c.attestation_ca_files = vec![two.clone()]).map(|r| r.map(|l| l.len())), Ok(Some(2)));
        let with_mds = cfg(&|c| {
            c.mds_blob_file = Some(blob.clone());
            c.mds_root_ca_file = Some(root.clone());
        })
        .expect("valid")
        .expect("required");
        let ca = with_mds.cas().values().next().expect("one root");
        assert!(!ca.blanket_allow() && ca.aaguids().contains_key(&Uuid::parse_str(MODEL).expect("uuid")));
        let key = |r: Result<_, TrustError>| r.map(|_| ()).map_err(|e| e.key);
        assert_eq!(key(cfg(&|c| c.mds_blob_file = Some(blob.clone()))), Err("webauthn.mds_root_ca_file".into()));
        assert_eq!(
            key(cfg(&|c| c.attestation_ca_files = vec![dir.join("missing.pem")])),
            Err("webauthn.attestation_ca_files[0]".into())
        );
        assert_eq!(
            key(cfg(&|c| {
                c.mds_blob_file = Some(root.clone());
                c.mds_root_ca_file = Some(root.clone());
            })),
            Err("webauthn.mds_blob_file".into()),
            "a PEM file is not a BLOB"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest::proptest! {
        #[test]
        fn garbage_is_refused_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let s = signer_for_props();
            proptest::prop_assert!(parse_mds_blob(&bytes, &s, NOW).is_err());
        }

        #[test]
        fn any_three_part_text_is_refused_unless_signed(h in "[A-Za-z0-9_-]{0,40}", p in "[A-Za-z0-9_-]{0,40}", sig in "[A-Za-z0-9_-]{0,40}") {
            let s = signer_for_props();
            let text = format!("{h}.{p}.{sig}");
            proptest::prop_assert!(parse_mds_blob(text.as_bytes(), &s, NOW).is_err());
        }
    }

    fn signer_for_props() -> Vec<u8> {
        static ROOT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        ROOT.get_or_init(|| signer().root_der).clone()
    }
}
