//! The demo's DMP: its certificates (a test organisation CA, the seal, the TLS client
//! certificate), its `[dmp]` section and what `demo.json` says of it.
use std::path::Path;

use super::config::{DmpConfig, RelayConfig, SealConfig, VihfSection};

/// The demo's DMP certificates, made once: a test CA for organisations, the establishment's seal
/// (ORG_SIGN-like, RSA-2048: VIHFs are RSA-signed) and its TLS client certificate
/// (ORG_AUTH_CLI-like), both naming the structure in `OU` as IGC-Santé does (reference §1). The CA
/// and the TLS certificate have P-256 keys: every fresh demo (and test gateway) makes them, and
/// RSA key generation is the slow part.
pub fn ensure_demo_pki(dir: &Path, organisation: &str, structure_id: &str) -> anyhow::Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let files = ["dmp-org-ca.pem", "dmp-seal.pem", "dmp-seal.key", "dmp-auth.pem", "dmp-auth.key"];
    if files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(());
    }
    let rsa = || KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048);
    let p256 = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256);
    let now = time::OffsetDateTime::now_utc();
    // `CertificateParams::new` starts with a CN: a fresh name keeps the order written here
    // (RFC 2253 then reads CN first, C last, like IGC-Santé's certificates).
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.distinguished_name.push(DnType::OrganizationName, "Vigie demo (not for production)");
    ca.distinguished_name.push(DnType::CommonName, "Vigie demo AC ORGANISATIONS");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3 * 365);
    let ca_key = p256()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);
    let leaf = |cn: &str, usages: Vec<KeyUsagePurpose>, eku: Vec<ExtendedKeyUsagePurpose>, key: KeyPair| {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "FR");
        p.distinguished_name.push(DnType::OrganizationName, organisation);
        p.distinguished_name.push(DnType::OrganizationalUnitName, structure_id);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = usages;
        p.extended_key_usages = eku;
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(2 * 365);
        let cert = p.signed_by(&key, &issuer)?;
        Ok::<_, rcgen::Error>((cert.pem(), key.serialize_pem()))
    };
    let (seal, seal_key) = leaf(
        &format!("{organisation} - CACHET VIHF"),
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment],
        vec![],
        rsa()?,
    )?;
    let (auth, auth_key) = leaf(
        &format!("{organisation} - AUTH CLI DMP"),
        vec![KeyUsagePurpose::DigitalSignature],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        p256()?,
    )?;
    std::fs::write(dir.join("dmp-org-ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("dmp-seal.pem"), format!("{seal}{}", ca_cert.pem()))?;
    crate::demo::write_secret(&dir.join("dmp-seal.key"), &seal_key)?;
    std::fs::write(dir.join("dmp-auth.pem"), format!("{auth}{}", ca_cert.pem()))?;
    crate::demo::write_secret(&dir.join("dmp-auth.key"), &auth_key)?;
    Ok(())
}

/// The demo's `[dmp]`: the demo seal, VIHFs naming the demo establishment, no DMP address (set
/// `VIGIE_DMP__RELAY__BASE_URL` to a DMP stand-in; the demo CA is trusted for its certificate).
pub fn demo_config(dir: &Path, structure_id: &str) -> DmpConfig {
    DmpConfig {
        enabled: true,
        seal: SealConfig {
            cert_file: Some(dir.join("dmp-seal.pem")),
            key_file: Some(dir.join("dmp-seal.key")),
            ..Default::default()
        },
        // Not homologated: the LPS ids say so, for a stand-in to read.
        vihf: VihfSection::of(&[
            ("structure_id", structure_id),
            ("lps_id", "VIGIE-DEMO"),
            ("lps_homologation", "DEMO-NON-HOMOLOGUE"),
            // The DMP's test platforms know patients by their test INS (reference §1).
            ("ins_oid", "1.2.250.1.213.1.4.10"),
        ]),
        relay: RelayConfig {
            client_cert_file: Some(dir.join("dmp-auth.pem")),
            client_key_file: Some(dir.join("dmp-auth.key")),
            ca_file: Some(dir.join("ca.pem")),
            ..Default::default()
        },
    }
}

/// What `demo.json` says of the DMP.
pub fn demo_json(config: &crate::config::Config, dir: &Path) -> anyhow::Result<serde_json::Value> {
    let issuer = &config.issuer;
    Ok(serde_json::json!({
        "seal_ca_pem": std::fs::read_to_string(dir.join("dmp-org-ca.pem"))?,
        "seal_cert_file": dir.join("dmp-seal.pem"),
        "org_auth_cli": { "cert_file": dir.join("dmp-auth.pem"), "key_file": dir.join("dmp-auth.key"),
                          "ca_file": dir.join("dmp-org-ca.pem") },
        "token_exchange": {
            "token_endpoint": format!("{issuer}/token"),
            "client_id": "demo-dpi",
            "grant_type": crate::oidc::token::exchange::TOKEN_EXCHANGE,
            "subject_token_type": crate::oidc::token::exchange::ACCESS_TOKEN_TYPE,
            "requested_token_type": crate::oidc::token::exchange::SAML2_TOKEN_TYPE,
            "example_patient_ins": DEMO_PATIENT_INS,
        },
        "relay_url": format!("{issuer}/dmp/relay/{{service}}"),
        "relay_configured": config.dmp.relay.base_url.is_some(),
        "patient_header": "X-Vigie-Patient-INS",
    }))
}

/// A valid INS-NIR of the test range, for trying the demo (key 97).
pub const DEMO_PATIENT_INS: &str = "207058575627097";
