//! FIDO Metadata Service BLOBs (`vigie_gateway::login::attestation::parse_mds_blob`, FIDO MDS3
//! §3.1.7): a JWT fetched from the FIDO Alliance, whose `x5c` chain must end at the configured
//! root. The first byte chooses what the rest is: the whole BLOB (framing, header, chain: never
//! accepted, nothing here is signed by the root's key), or the header's algorithm or the payload
//! of a BLOB a test chain under the root signs, so that what lies behind the signature check is
//! reached too.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64STD, URL_SAFE_NO_PAD as B64URL};
use libfuzzer_sys::fuzz_target;
use vigie_gateway::login::attestation::parse_mds_blob;

/// Within the test chain's validity (rcgen's default: 1975 to 4096).
const NOW: i64 = 1_780_000_000;

/// FIDO MDS3 §3.1.4 statuses that leave a model out.
const BLOCKING: [&str; 5] = [
    "REVOKED",
    "USER_VERIFICATION_BYPASS",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
];

/// A root, and a BLOB signer it issued with its PKCS#8 key, built once.
struct Chain {
    root: Vec<u8>,
    leaf: Vec<u8>,
    key: EcdsaKeyPair,
}

fn chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let root_key = KeyPair::generate().expect("root key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
        root.distinguished_name.push(DnType::CommonName, "fuzz MDS root");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root_cert = root.self_signed(&root_key).expect("root");
        let issuer = Issuer::new(root, &root_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        leaf.distinguished_name.push(DnType::CommonName, "fuzz MDS signer");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &leaf_key.serialize_der())
            .expect("PKCS#8");
        Chain { root: root_cert.der().to_vec(), leaf: leaf_cert.der().to_vec(), key }
    })
}

/// `header.payload.signature`, signed by the chain's leaf (ES256, JWS compact form).
fn signed(chain: &Chain, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(payload));
    let sig = chain.key.sign(&SystemRandom::new(), input.as_bytes()).expect("signature");
    format!("{input}.{}", B64URL.encode(sig.as_ref())).into_bytes()
}


fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let chain = chain();
    match mode % 3 {
        // Bytes as the BLOB: nothing the fuzzer writes carries a signature of the root's chain.
        0 => assert!(parse_mds_blob(rest, &chain.root, NOW).is_err(), "an unsigned BLOB was accepted"),
        // Bytes as the header's `alg`, the rest genuine: the signature is ES256, so exactly ES256
        // is accepted (no `none`, no confusion with RS256 / PS256).
        1 => {
            let alg = String::from_utf8_lossy(rest);
            let header = serde_json::json!({ "alg": alg, "x5c": [B64STD.encode(&chain.leaf)] }).to_string();
            let payload = br#"{"no": 1, "nextUpdate": "2026-01-01", "entries": []}"#;
            let accepted = parse_mds_blob(&signed(chain, header.as_bytes(), payload), &chain.root, NOW).is_ok();
            assert_eq!(accepted, alg == "ES256", "alg {alg:?}");
        }
        // Bytes as the payload, signed: every model kept is one the payload vouches for, with
        // roots, whose latest status is not a compromise.
        _ => {
            let header = serde_json::json!({ "alg": "ES256", "x5c": [B64STD.encode(&chain.leaf)] }).to_string();
            let Ok(blob) = parse_mds_blob(&signed(chain, header.as_bytes(), rest), &chain.root, NOW) else { return };
            // serde_json lets invalid UTF-8 through in keys it ignores, where a `Value` refuses it.
            let p: serde_json::Value =
                serde_json::from_str(&String::from_utf8_lossy(rest)).expect("an accepted payload is JSON");
            assert_eq!(p["no"].as_u64(), Some(blob.no));
            let vouched: Vec<uuid::Uuid> = p["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .filter(|e| {
                    let last = e["statusReports"].as_array().and_then(|r| r.last()).and_then(|r| r["status"].as_str());
                    let roots = e["metadataStatement"]["attestationRootCertificates"].as_array();
                    !last.is_some_and(|s| BLOCKING.contains(&s)) && roots.is_some_and(|r| !r.is_empty())
                })
                .filter_map(|e| e["aaguid"].as_str().and_then(|a| uuid::Uuid::parse_str(a).ok()))
                .collect();
            for entry in &blob.entries {
                assert!(!entry.roots.is_empty(), "{entry:?}");
                assert!(vouched.contains(&entry.aaguid), "{} kept without being vouched for", entry.aaguid);
            }
        }
    }
});
