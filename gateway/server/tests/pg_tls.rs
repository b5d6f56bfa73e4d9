//! TLS to PostgreSQL, against a server of the test's own with `ssl=on` and a certificate from a
//! test CA: `sslmode=verify-full` with `sslrootcert=` in `directory.url` connects; a certificate
//! from another CA is refused with a message naming `directory.url`, never the password.
use crate::common;

use std::process::Command;

use common::postgres::PgServer;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::cli::run_with;

/// A CA and, when `server` is set, a server certificate for localhost / 127.0.0.1 signed by it:
/// (CA PEM, server certificate PEM, server key PEM).
fn pki(cn: &str) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, cn);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("certificate");
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = p.signed_by(&key, &ca).expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn verify_full_connects_to_a_server_of_the_trusted_ca_and_refuses_another_without_the_password() {
    let dir = std::env::temp_dir().join(format!("vigie-pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (ca, cert, key) = pki("Vigie test PostgreSQL CA");
    let (other_ca, ..) = pki("Another CA");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        // The server reads its key only when its user owns it and nobody else can read it.
        let _ = Command::new("chown").arg("postgres").arg(&path).output();
        let _ = Command::new("chmod").arg("600").arg(&path).output();
        path.display().to_string()
    };
    let (cert_file, key_file) = (write("server.crt", &cert), write("server.key", &key));
    let (ca_file, other_ca_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"));
    std::fs::write(&ca_file, &ca).expect("write");
    std::fs::write(&other_ca_file, &other_ca).expect("write");
    let _ = Command::new("chmod").arg("755").arg(&dir).output();

    let pg = PgServer::start(&format!(
        "-c ssl=on -c ssl_cert_file={cert_file} -c ssl_key_file={key_file} -c log_connections=on"
    ));
    let plain = pg.create_database("vigie");
    let url = |root: &std::path::Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            plain.replacen("vigie@127.0.0.1", "vigie:s3cret-pw@localhost", 1),
            root.display()
        )
    };
    let data = dir.join("data");
    let migrate = |url: &str| {
        run_with(&["migrate", "--data-dir", data.to_str().expect("UTF-8")], &[("VIGIE_DIRECTORY__URL", url)])
    };

    let trusted = migrate(&url(&ca_file));
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    // The server's log of that connection: TLS, not a fallback in clear.
    assert!(pg.log().contains("database=vigie SSL enabled"), "{}", pg.log());

    let refused = migrate(&url(&other_ca_file));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a server whose certificate another CA signed is refused");
    assert!(stderr.contains("`directory.url`"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "the password stays out: {stderr}");
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
