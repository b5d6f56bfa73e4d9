//! A throw-away PKI for TLS tests against a real `redis-server`: a CA, a server certificate for
//! 127.0.0.1 and a client certificate, made by rcgen and written as PEM files in a directory of
//! the test's own (removed when dropped).
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};

pub struct TestPki {
    pub dir: PathBuf,
}

/// One certificate and its key, as PEM files.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestPki {
    /// A fresh directory under the system's temp dir named after `name` (unique per process).
    pub fn new(name: &str) -> TestPki {
        let dir = std::env::temp_dir().join(format!("vigie-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the test's PKI directory");
        TestPki { dir }
    }

    /// A CA named `name`: its certificate in `<name>.pem`; signs a server certificate for
    /// 127.0.0.1 (`<name>-server.pem`/`.key`) and a client certificate (`<name>-client.pem`/`.key`).
    pub fn ca(&self, name: &str) -> (PathBuf, Pair, Pair) {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, &ca_key);
        let ca_path = self.write(&format!("{name}.pem"), &ca_cert.pem());
        let leaf = |role: &str, eku: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("leaf key");
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
            p.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} {role}"));
            p.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
            p.extended_key_usages = vec![eku];
            let cert = p.signed_by(&key, &issuer).expect("leaf certificate");
            Pair {
                cert: self.write(&format!("{name}-{role}.pem"), &cert.pem()),
                key: self.write(&format!("{name}-{role}.key"), &key.serialize_pem()),
            }
        };
        let server = leaf("server", ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf("client", ExtendedKeyUsagePurpose::ClientAuth);
        (ca_path, server, client)
    }

    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.join(file);
        std::fs::write(&path, text).expect("a PEM file of the test PKI");
        path
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `redis-server` arguments of a TLS port `port` with `server`'s pair, trusting `ca` for
/// client certificates; `auth_clients`: whether a client must present one.
pub fn tls_args(port: u16, ca: &Path, server: &Pair, auth_clients: bool) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        "--tls-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        path(&server.cert),
        "--tls-key-file".into(),
        path(&server.key),
        "--tls-ca-cert-file".into(),
        path(ca),
        "--tls-auth-clients".into(),
        if auth_clients { "yes" } else { "no" }.into(),
    ]
}
