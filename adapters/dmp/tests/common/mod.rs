//! Shared by the tests: a seal PKI made with rcgen, the settings of a test establishment, and the
//! verifiers written by others (the `xmlsec1` CLI, the DMP stand-in's Python tools).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use vigie_dmp::{Sealer, VihfRequest, VihfSettings, roles_for};

pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// A seal CA and an ORG_SIGN-like seal certificate (RSA-2048), made once per test binary.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CountryName, "FR");
        ca.distinguished_name.push(DnType::OrganizationName, "TEST IGC-SANTE");
        ca.distinguished_name.push(DnType::CommonName, "TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "FR");
        p.distinguished_name.push(DnType::StateOrProvinceName, "Rhône (69)");
        p.distinguished_name.push(DnType::OrganizationName, "CENTRE HOSPITALIER DE TEST");
        p.distinguished_name.push(DnType::OrganizationalUnitName, "10B0127189");
        p.distinguished_name.push(DnType::CommonName, "Cachet Vigie, DMP \"AIR\" + test");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
        let cert = p.signed_by(&key, &Issuer::from_params(&ca, &ca_key)).unwrap();
        Pki { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    })
}

pub fn sealer() -> &'static Sealer {
    static S: OnceLock<Sealer> = OnceLock::new();
    S.get_or_init(|| Sealer::from_pem(&pki().cert_pem, &pki().key_pem).unwrap())
}

pub fn settings() -> VihfSettings {
    VihfSettings {
        structure_id: "10B0127189".into(),
        lps_id: "01.01.01.01".into(),
        lps_homologation: "VIGIE-TEST-0001".into(),
        ..VihfSettings::default()
    }
}

pub const NOW: i64 = 1_795_000_000; // 2026-11-18

pub fn request(mie: &str) -> VihfRequest {
    VihfRequest {
        idnat: "810001234567".into(),
        subject_name: "DURAND Marie, Cardiologie".into(),
        roles: roles_for(Some("10"), Some("SM26")),
        mie: mie.into(),
        authn_instant: NOW - 600,
        patient_ins: "207058575627097".into(),
        purpose_of_use: "normal".into(),
        now: NOW,
    }
}

/// A fresh directory under the system temp dir, removed by [`Scratch::drop`].
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "vigie-dmp-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `xmlsec1 --verify` of the first Assertion, with the seal CA as trust anchor. Returns (rc == 0,
/// stderr).
pub fn xmlsec1_verify(doc: &[u8]) -> (bool, String) {
    let dir = Scratch::new();
    let ca = dir.write("ca.pem", pki().ca_pem.as_bytes());
    let file = dir.write("doc.xml", doc);
    let out = Command::new("xmlsec1")
        .args(["--verify", "--trusted-pem"])
        .arg(&ca)
        .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
        .arg(&file)
        .output()
        .expect("xmlsec1 is installed (apt-get install -y xmlsec1)");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn assert_xmlsec1_ok(doc: &[u8]) {
    let (ok, err) = xmlsec1_verify(doc);
    assert!(ok, "xmlsec1 refused the signature: {err}\n{}", String::from_utf8_lossy(doc));
}

/// The DMP stand-in's Python (pysaml2, signxml, lxml): `conformance/dmp-sandbox/.venv`.
pub fn sandbox_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/dmp-sandbox");
    let py = root.join(".venv/bin/python");
    assert!(py.exists(), "{} is missing: run conformance/dmp-sandbox/setup", py.display());
    py
}

pub fn sandbox_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/dmp-sandbox")
}
