//! The demo's PKI: a CA and the listener's certificate for localhost, and the demo card PKI
//! (IGC-Santé's subject layouts) with its CRL and the cards of the demo médecin and HR.
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::json;

use super::secrets::write_secret;
use super::users::{DEMO_CARD_USER, DEMO_CPE_USER, DEMO_STRUCTURE_ID, USERS};

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Vigie demo CA");
    dn.push(DnType::OrganizationName, "Vigie demo (not for production)");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

/// The demo CA and the listener's certificate, for localhost.
pub(super) fn ensure_pki(dir: &Path) -> anyhow::Result<()> {
    if dir.join("tls.key").is_file() && dir.join("ca.pem").is_file() && dir.join("tls.crt").is_file() {
        return Ok(());
    }
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
    server.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse()?));
    server.subject_alt_names.push(SanType::IpAddress("::1".parse()?));
    server.distinguished_name.push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    write_secret(&dir.join("ca-key.pem"), &ca_key.serialize_pem())?;
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("tls.crt"), format!("{}{}", server_cert.pem(), ca_cert.pem()))?;
    write_secret(&dir.join("tls.key"), &server_key.serialize_pem())?;
    Ok(())
}

/// The demo card PKI: an IGC-Santé-like test CA (`vigie_igc_sante::demopki`, with the real subject
/// layouts) and a CPS for the demo médecin, so that `curl --cert` can log in with a card. Its CRL
/// (empty, valid a year) is served by the demo at `/demo-pki/card-ca.crl`. Regenerated when a
/// file is missing or the CRL is within a month of its nextUpdate.
pub(super) fn ensure_card_pki(dir: &Path) -> anyhow::Result<()> {
    use vigie_igc_sante::demopki::{CardSpec, DemoPki};
    let files = [
        "card-ca.pem",
        "card-ca.crl",
        "card-medecin.pem",
        "card-medecin.key",
        "card-medecin.chain.pem",
        "card-rh.pem",
        "card-rh.key",
        "card-rh.chain.pem",
    ];
    let crl_fresh = std::fs::read(dir.join("card-ca.crl"))
        .ok()
        .and_then(|der| vigie_igc_sante::parse_crl(&der).ok())
        .is_some_and(|crl| crl.next_update > crate::now() + 30 * 86_400);
    if crl_fresh && files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(());
    }
    let pki = DemoPki::generate().map_err(|e| anyhow::anyhow!("generating the demo card PKI: {e}"))?;
    let medecin = USERS.iter().find(|u| u.username == DEMO_CARD_USER).context("the demo card holder")?;
    let spec = CardSpec::cps(
        medecin.idnat.context("the demo card holder has an idNat")?,
        &medecin.family.to_uppercase(),
        &medecin.given.to_uppercase(),
        medecin.metier,
    );
    let card = pki.issue(&spec).map_err(|e| anyhow::anyhow!("issuing the demo card: {e}"))?;
    let now = crate::now();
    let crl = pki.crl_der(&[], now - 60, now + 365 * 86_400).map_err(|e| anyhow::anyhow!("demo card CRL: {e}"))?;
    std::fs::write(dir.join("card-ca.pem"), pki.anchors_pem())?;
    std::fs::write(dir.join("card-ca.crl"), crl)?;
    write_card(dir, "card-medecin", &card)?;
    // HR staff hold a CPE of the establishment (administration needs a phishing-resistant MIE).
    let rh = USERS.iter().find(|u| u.username == DEMO_CPE_USER).context("the demo CPE holder")?;
    let spec = CardSpec::cpe_nominative(
        "CHU DE DEMONSTRATION",
        DEMO_STRUCTURE_ID,
        "000000104",
        &rh.family.to_uppercase(),
        &rh.given.to_uppercase(),
    );
    let cpe = pki.issue(&spec).map_err(|e| anyhow::anyhow!("issuing the demo CPE: {e}"))?;
    write_card(dir, "card-rh", &cpe)?;
    Ok(())
}

/// Writes a demo card's certificate, chain and key as `<stem>.pem`, `.chain.pem`, `.key` (what
/// [`card_json`] reads back).
fn write_card(dir: &Path, stem: &str, card: &vigie_igc_sante::demopki::DemoCard) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("{stem}.pem")), &card.cert_pem)?;
    std::fs::write(dir.join(format!("{stem}.chain.pem")), &card.chain_pem)?;
    write_secret(&dir.join(format!("{stem}.key")), &card.key_pem)
}

/// A demo card as `demo.json` gives it: certificate, chain and key (PEM), and their files.
pub(super) fn card_json(dir: &Path, stem: &str) -> anyhow::Result<serde_json::Value> {
    let file = |ext: &str| dir.join(format!("{stem}.{ext}"));
    Ok(json!({
        "cert_pem": std::fs::read_to_string(file("pem"))?,
        "chain_pem": std::fs::read_to_string(file("chain.pem"))?,
        "key_pem": std::fs::read_to_string(file("key"))?,
        "cert_file": file("pem"),
        "key_file": file("key"),
    }))
}
