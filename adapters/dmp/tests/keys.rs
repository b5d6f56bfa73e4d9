//! The seal from the files an establishment has: PEM (PKCS#8 or PKCS#1 key) and PKCS#12 made by
//! `openssl pkcs12 -export`, modern (AES-256, PBKDF2) and legacy (3DES, RC2: `-legacy`).
mod common;

use std::process::Command;

use common::*;
use vigie_dmp::{SealError, Sealer};

fn openssl(args: &[&str], dir: &Scratch) -> std::process::Output {
    let out = Command::new("openssl").args(args).current_dir(&dir.0).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A key and a self-signed cert made by OpenSSL, with a multi-valued RDN and an escaped value.
fn openssl_cert(dir: &Scratch) {
    openssl(&["genrsa", "-traditional", "-out", "key1.pem", "2048"], dir);
    openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "key1.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-utf8",
            "-multivalue-rdn",
            "-subj",
            "/C=FR/ST=Rhône (69)/O=CH #1; \"Test\"/OU=10B0127189/CN=Cachet+serialNumber=42",
        ],
        dir,
    );
}

fn sign_and_verify(s: &Sealer, cert_pem: &str) {
    let v = s.issue(&settings(), &request("cps")).unwrap();
    let dir = Scratch::new();
    let cert = dir.write("cert.pem", cert_pem.as_bytes());
    let file = dir.write("v.xml", v.xml.as_bytes());
    let out = Command::new("xmlsec1")
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(&cert)
        .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn pem_pkcs1_and_pkcs8_keys_from_openssl_sign_verifiable_vihfs() {
    let dir = Scratch::new();
    openssl_cert(&dir);
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "key1.pem", "-out", "key8.pem"], &dir);
    let cert = std::fs::read_to_string(dir.0.join("cert.pem")).unwrap();
    let k1 = std::fs::read_to_string(dir.0.join("key1.pem")).unwrap();
    let k8 = std::fs::read_to_string(dir.0.join("key8.pem")).unwrap();
    assert!(k1.contains("BEGIN RSA PRIVATE KEY") && k8.contains("BEGIN PRIVATE KEY"));
    for key in [&k1, &k8] {
        let s = Sealer::from_pem(&cert, key).unwrap();
        // RFC 2253: reverse order, multi-valued RDN with '+' (in the DER SET order), RFC 4514
        // escapes of ';' and '"', '#' kept when not leading.
        assert_eq!(s.issuer_dn(), "serialNumber=42+CN=Cachet,OU=10B0127189,O=CH #1\\; \\\"Test\\\",ST=Rhône (69),C=FR");
        sign_and_verify(&s, &cert);
    }
}

#[test]
fn pkcs12_modern_and_legacy_files_load() {
    let dir = Scratch::new();
    openssl_cert(&dir);
    openssl(
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "key1.pem",
            "-in",
            "cert.pem",
            "-out",
            "modern.p12",
            "-passout",
            "pass:s3cret",
        ],
        &dir,
    );
    let cert = std::fs::read_to_string(dir.0.join("cert.pem")).unwrap();
    let modern = std::fs::read(dir.0.join("modern.p12")).unwrap();
    let s = Sealer::from_pkcs12(&modern, "s3cret").unwrap();
    sign_and_verify(&s, &cert);
    assert!(matches!(Sealer::from_pkcs12(&modern, "wrong"), Err(SealError::Pkcs12(_))));

    // OpenSSL 3 writes PBE-SHA1-3DES + RC2-40 only with -legacy (the format of the ASIP kit's files).
    let legacy = Command::new("openssl")
        .args(["pkcs12", "-export", "-legacy", "-inkey", "key1.pem", "-in", "cert.pem", "-out", "legacy.p12"])
        .args(["-passout", "pass:s3cret"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let legacy_3des = Command::new("openssl")
        .args(["pkcs12", "-export", "-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"])
        .args(["-inkey", "key1.pem", "-in", "cert.pem", "-out", "3des.p12", "-passout", "pass:s3cret"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    // Both are required of the openssl that `tests/run` installs: a file skipped here would be a
    // format left untested.
    for (made, f) in [(legacy, "legacy.p12"), (legacy_3des, "3des.p12")] {
        assert!(made.status.success(), "openssl writes {f}: {}", String::from_utf8_lossy(&made.stderr));
        let der = std::fs::read(dir.0.join(f)).unwrap();
        let s = Sealer::from_pkcs12(&der, "s3cret").unwrap_or_else(|e| panic!("{f}: {e}"));
        sign_and_verify(&s, &cert);
    }
}

#[test]
fn wrong_key_files_are_refused_with_the_reason() {
    let p = pki();
    let other = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    assert!(matches!(Sealer::from_pem(&p.cert_pem, &other.serialize_pem()), Err(SealError::KeyMismatch)));
    assert!(matches!(Sealer::from_pem(&p.key_pem, &p.key_pem), Err(SealError::NoCertificate)));
    assert!(matches!(Sealer::from_pem(&p.cert_pem, &p.cert_pem), Err(SealError::NoKey)));
    let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(Sealer::from_pem(&p.cert_pem, enc), Err(SealError::EncryptedKey)));
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let e = Sealer::from_pem(&p.cert_pem, &ec.serialize_pem()).unwrap_err();
    assert!(matches!(e, SealError::Key(_)), "{e}");
    assert!(matches!(Sealer::from_pkcs12(b"not a pkcs12", "x"), Err(SealError::Pkcs12(_))));
}
