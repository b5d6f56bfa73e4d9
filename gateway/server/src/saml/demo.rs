//! The embedded demo's SAML IdP: a signing key, its self-signed certificate and the pairwise
//! secret, made once in the demo's directory, so that `/saml/metadata` answers on the demo.
use std::path::Path;

use anyhow::Context;

use super::config::SamlConfig;

/// `[saml]` for the demo in `dir`, making the files that are missing.
pub fn ensure(dir: &Path) -> anyhow::Result<SamlConfig> {
    let key = dir.join("saml-key.pem");
    let cert = dir.join("saml-cert.pem");
    let secret = dir.join("saml-pairwise");
    if !key.exists() || !cert.exists() {
        let (key_pem, cert_pem) = key_and_certificate("Vigie demo SAML IdP")?;
        write_private(&key, &key_pem)?;
        std::fs::write(&cert, cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    }
    if !secret.exists() {
        write_private(&secret, &crate::secrets::random_token(48))?;
    }
    let s = |p: &Path| Some(p.display().to_string());
    Ok(SamlConfig { key_file: s(&key), cert_file: s(&cert), pairwise_secret_file: s(&secret), ..Default::default() })
}

/// A 2048-bit RSA key (PKCS#8 PEM) and a self-signed certificate for it, valid ten years (SPs
/// pin the metadata's certificate; its dates are not checked by SAML).
pub fn key_and_certificate(common_name: &str) -> anyhow::Result<(String, String)> {
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let der = pair.as_der().map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_ref().to_vec());
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
        .context("loading the RSA key into rcgen")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).context("certificate parameters")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.self_signed(&key).context("self-signing the SAML certificate")?;
    Ok((key.serialize_pem(), cert.pem()))
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}
