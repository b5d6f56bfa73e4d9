//! The IdP's pieces without a server: the signed Response checked by the `xmlsec1` CLI (as
//! Debian ships it), and `vigie check-config`'s words for broken SP metadata.
use std::path::{Path, PathBuf};
use std::process::Command;

use vigie_core::auth::Mie;

use super::config::{SamlConfig, SpConfig};
use super::idp::Idp;
use super::response::{self, Statement};

const SP_METADATA: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://lab.chu.example/saml">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://lab.chu.example/saml/acs" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigie-saml-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn config(dir: &Path, metadata: &str) -> SamlConfig {
    let mut c = super::demo::ensure(dir).expect("demo key and certificate");
    std::fs::write(dir.join("sp.xml"), metadata).expect("SP metadata");
    c.sps = vec![SpConfig {
        metadata: dir.join("sp.xml").display().to_string(),
        entity_id: None,
        client_id: "lab".into(),
        nameid: "persistent".into(),
        attributes: vec!["given_name".into()],
        require_signed_requests: false,
        metadata_cert: None,
        metadata_url: None,
        metadata_ca_file: None,
        metadata_refresh_secs: None,
        encrypt_assertions: false,
        encryption_cert: None,
    }];
    c
}

fn problems(dir: &Path, metadata: &str) -> Vec<(String, String)> {
    problems_of(&config(dir, metadata))
}

/// A Response for the lab SP, signed by `idp`.
fn sample_response(idp: &Idp) -> String {
    response::signed(
        idp,
        &Statement {
            audience: "https://lab.chu.example/saml",
            acs: "https://lab.chu.example/saml/acs",
            in_response_to: "_request",
            name_id_format: response::PERSISTENT,
            name_id: "pairwise".into(),
            attributes: vec![("given_name".into(), vec!["Élise".into()])],
            mie: Mie::PasswordTotp,
            authn_instant: crate::now(),
            session_index: "sid",
            ttl_secs: 300,
            encrypt: None,
        },
    )
    .expect("signed")
}

/// Whether the `xmlsec1` CLI verifies the Assertion's signature of `doc` against `dir/cert`.
fn xmlsec1_verifies(dir: &Path, cert: &str, doc: &str) -> bool {
    let file = dir.join("response.xml");
    std::fs::write(&file, doc).expect("response file");
    Command::new("xmlsec1")
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(dir.join(cert))
        .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
        .arg(&file)
        .output()
        .expect("the `xmlsec1` CLI (apt-get install xmlsec1)")
        .status
        .success()
}

#[test]
fn xmlsec1_verifies_the_signed_assertion_and_refuses_it_altered() {
    let dir = temp_dir("sign");
    let idp = Idp::load(&config(&dir, SP_METADATA), "https://vigie.example").expect("the IdP loads");
    let xml = sample_response(&idp);
    assert!(xml.contains("http://www.w3.org/2001/04/xmlenc#sha256"), "SHA-256 digest: {xml}");
    assert!(xml.contains("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"), "RSA-SHA256: {xml}");
    assert!(!xml.contains("xmldsig#sha1"), "no SHA-1: {xml}");
    let verify = |doc: &str| xmlsec1_verifies(&dir, "saml-cert.pem", doc);
    assert!(verify(&xml), "xmlsec1 verifies the Assertion's signature");
    assert!(!verify(&xml.replacen("Élise", "Mallory", 1)), "an altered attribute breaks it");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_says_what_is_wrong_with_an_sp_metadata_file() {
    let dir = temp_dir("metadata");
    let cases = [
        ("not xml at all", "is not SAML metadata"),
        (
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://x"/>"#,
            "no SPSSODescriptor",
        ),
        (&SP_METADATA.replace("HTTP-POST", "HTTP-Artifact"), "no AssertionConsumerService with the HTTP-POST binding"),
    ];
    for (metadata, says) in cases {
        let p = problems(&dir, metadata);
        assert!(
            p.iter().any(|(k, m)| k == "saml.sps[0].metadata" && m.contains(says)),
            "{metadata:?} should say {says:?}: {p:?}"
        );
    }
    assert!(problems(&dir, SP_METADATA).is_empty(), "good metadata loads");
    let _ = std::fs::remove_dir_all(dir);
}

/// The IdP is a part of each gateway's state, not of the process: two gateways built in one
/// process answer `/saml/metadata` with their own entityID (a process-wide IdP gave the second
/// gateway the first one's).
#[actix_web::test]
async fn two_gateways_in_one_process_each_have_their_own_idp() {
    use actix_web::{App, test, web};
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    crate::jose::install();
    let mut seen = Vec::new();
    for name in ["a", "b"] {
        let dir = temp_dir(&format!("part-{name}"));
        let mut config = crate::demo::prepare(&dir, "127.0.0.1:0".parse().expect("addr")).await.expect("demo");
        let entity_id = format!("https://{name}.chu.example/saml");
        config.saml.entity_id = Some(entity_id.clone());
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
        let state = crate::wiring::build::build_state(config, metrics).await.expect("the state builds");
        let app = test::init_service(App::new().app_data(web::Data::new(state)).configure(super::routes)).await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/saml/metadata").to_request()).await;
        assert!(res.status().is_success(), "metadata answers: {}", res.status());
        let body = String::from_utf8(test::read_body(res).await.to_vec()).expect("UTF-8");
        assert!(body.contains(&format!("entityID=\"{entity_id}\"")), "gateway {name} is {entity_id}: {body}");
        seen.push(body);
        let _ = std::fs::remove_dir_all(dir);
    }
    assert_ne!(seen[0], seen[1], "each gateway publishes its own IdP");
}

/// The SP's metadata with an enveloped signature template, for `xmlsec1 --sign`.
const SIGNED_METADATA_TEMPLATE: &str = r##"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_md" entityID="https://lab.chu.example/saml"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_md"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature>
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://lab.chu.example/saml/acs" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"##;

/// `template` (an EntityDescriptor with an empty `ds:Signature`, whose SignatureMethod and
/// DigestMethod say how) signed by `xmlsec1 --sign` with the key of `signer`, as an SP's tooling
/// would sign it; written under `dir`.
fn xmlsec1_signed(dir: &Path, signer: &Path, template: &str) -> String {
    std::fs::write(dir.join("template.xml"), template).expect("template");
    let out = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(signer.join("saml-key.pem"))
        .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", "--output"])
        .arg(dir.join("signed.xml"))
        .arg(dir.join("template.xml"))
        .output()
        .expect("the `xmlsec1` CLI (apt-get install xmlsec1)");
    assert!(out.status.success(), "xmlsec1 --sign: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(dir.join("signed.xml")).expect("signed metadata")
}

/// The IdP, its one SP's metadata `metadata` checked against the certificate of `signer`.
fn load_signed(dir: &Path, metadata: &str, signer: &Path) -> Result<Idp, Vec<(String, String)>> {
    let mut c = config(dir, metadata);
    c.sps[0].metadata_cert = Some(signer.join("saml-cert.pem").display().to_string());
    Idp::load(&c, "https://vigie.example")
}

/// Signed SP metadata (signed by `xmlsec1 --sign`, as an SP's tooling would) loads against its
/// certificate; against another certificate, or with its body edited after signing, it is
/// refused and the refusal names the SP.
#[test]
fn signed_metadata_is_checked_against_the_configured_certificate() {
    let dir = temp_dir("signed-md");
    let signer = temp_dir("signed-md-signer");
    let other = temp_dir("signed-md-other");
    super::demo::ensure(&signer).expect("the SP's signing key");
    super::demo::ensure(&other).expect("another key");
    let signed = xmlsec1_signed(&dir, &signer, SIGNED_METADATA_TEMPLATE);
    let load = |metadata: &str, cert: &Path| load_signed(&dir, metadata, cert);
    let idp = load(&signed, &signer).map_err(|p| format!("{p:?}")).expect("signed metadata loads");
    assert_eq!(idp.sps[0].acs, vec!["https://lab.chu.example/saml/acs".to_owned()]);
    let refused = |result: Result<Idp, Vec<(String, String)>>, case: &str| {
        let problems = result.err().unwrap_or_else(|| panic!("{case}: refused"));
        assert!(
            problems.iter().any(|(k, m)| k == "saml.sps[0].metadata"
                && m.contains("client \"lab\"")
                && m.contains("is not signed by metadata_cert")),
            "{case}: names the SP and says why: {problems:?}"
        );
    };
    refused(load(&signed, &other), "another key");
    let edited = signed.replacen("https://lab.chu.example/saml/acs", "https://evil.example/acs", 1);
    assert_ne!(edited, signed, "the ACS is in the signed body");
    refused(load(&edited, &signer), "an edited body");
    refused(load(SP_METADATA, &signer), "unsigned metadata");
    for d in [dir, signer, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Signed SP metadata whose signature or any digest is SHA-1 (`xmlsec1 --sign` with `rsa-sha1`,
/// `xmldsig#sha1`) is refused at load like an SP's SHA-1-signed message, naming the algorithm
/// and what to do; the same document signed RSA-SHA256 with a SHA-256 digest loads.
#[test]
fn signed_metadata_with_sha1_is_refused_naming_the_algorithm() {
    const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
    const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    let dir = temp_dir("signed-md-sha1");
    let signer = temp_dir("signed-md-sha1-signer");
    super::demo::ensure(&signer).expect("the SP's signing key");
    let sha256 = xmlsec1_signed(&dir, &signer, SIGNED_METADATA_TEMPLATE);
    let idp = load_signed(&dir, &sha256, &signer).map_err(|p| format!("{p:?}")).expect("RSA-SHA256, SHA-256: loads");
    assert_eq!(idp.sps[0].acs, vec!["https://lab.chu.example/saml/acs".to_owned()]);
    for (what, method, digest, element, named) in [
        ("rsa-sha1, sha1", RSA_SHA1, SHA1, "SignatureMethod", RSA_SHA1),
        ("rsa-sha1, sha256", RSA_SHA1, SHA256, "SignatureMethod", RSA_SHA1),
        ("rsa-sha256, sha1", RSA_SHA256, SHA1, "DigestMethod", SHA1),
    ] {
        let template = SIGNED_METADATA_TEMPLATE.replace(RSA_SHA256, method).replace(SHA256, digest);
        let doc = xmlsec1_signed(&dir, &signer, &template);
        assert!(doc.contains(method) && doc.contains(digest), "{what}: signed as asked: {doc}");
        let problems = load_signed(&dir, &doc, &signer).err().unwrap_or_else(|| panic!("{what}: refused"));
        assert!(
            problems.iter().any(|(k, m)| k == "saml.sps[0].metadata"
                && m.contains("client \"lab\"")
                && m.contains(&format!("the {element} {named:?}"))
                && m.contains("re-sign the metadata with SHA-256")),
            "{what}: names the SP, the algorithm and what to do: {problems:?}"
        );
    }
    for d in [dir, signer] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// With a P-256 key the Assertion is signed `ecdsa-sha256`, and `xmlsec1 --verify` accepts it
/// against the certificate (and refuses it altered).
#[test]
fn an_ecdsa_p256_key_signs_ecdsa_sha256_and_xmlsec1_verifies_it() {
    let dir = temp_dir("ecdsa");
    let mut c = config(&dir, SP_METADATA);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "Vigie ECDSA IdP");
    let cert = params.self_signed(&key).expect("certificate");
    std::fs::write(dir.join("ec-key.pem"), key.serialize_pem()).expect("key file");
    std::fs::write(dir.join("ec-cert.pem"), cert.pem()).expect("cert file");
    c.key_file = Some(dir.join("ec-key.pem").display().to_string());
    c.cert_file = Some(dir.join("ec-cert.pem").display().to_string());
    let idp = Idp::load(&c, "https://vigie.example").map_err(|p| format!("{p:?}")).expect("the IdP loads");
    assert!(idp.ecdsa, "a P-256 key is taken as ECDSA");
    let xml = sample_response(&idp);
    assert!(xml.contains("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"), "ecdsa-sha256: {xml}");
    let verify = |doc: &str| xmlsec1_verifies(&dir, "ec-cert.pem", doc);
    assert!(verify(&xml), "xmlsec1 verifies the ECDSA signature");
    assert!(!verify(&xml.replacen("Élise", "Mallory", 1)), "an altered attribute breaks it");
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key");
    std::fs::write(dir.join("ec-key.pem"), p384.serialize_pem()).expect("key file");
    let problems = Idp::load(&c, "https://vigie.example").err().expect("P-384 refused");
    assert!(problems.iter().any(|(k, m)| k == "saml.key_file" && m.contains("P-256")), "{problems:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The `xmlsec1` CLI's decryption of `doc` with `dir/key`: the document with the assertion back
/// in place, or None when it refuses.
fn xmlsec1_decrypts(dir: &Path, key: &str, doc: &str) -> Option<String> {
    let file = dir.join("encrypted.xml");
    std::fs::write(&file, doc).expect("encrypted file");
    let out = Command::new("xmlsec1")
        .arg("--decrypt")
        .arg("--privkey-pem")
        .arg(dir.join(key))
        .arg(&file)
        .output()
        .expect("the `xmlsec1` CLI (apt-get install xmlsec1)");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The encrypted Response with `methods` in the SP's metadata: xmlsec1 decrypts it with the SP's
/// key, the assertion inside still verifies, and a flipped ciphertext byte is refused.
fn encrypted_round_trip(methods: &[String], expect: &str) {
    use super::encrypt::Encryption;
    let dir = temp_dir(if expect.contains("gcm") { "gcm" } else { "cbc" });
    let idp = Idp::load(&config(&dir, SP_METADATA), "https://vigie.example").expect("the IdP loads");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=sp-encryption"])
        .arg("-keyout")
        .arg(dir.join("sp.key"))
        .arg("-out")
        .arg(dir.join("sp.crt"))
        .output()
        .expect("the `openssl` CLI");
    assert!(made.status.success(), "openssl req");
    let pem = std::fs::read_to_string(dir.join("sp.crt")).expect("sp.crt");
    let der = super::idp::pem_der(&pem, &["CERTIFICATE"]).expect("a certificate");
    let encryption = Encryption::new(&der, methods).expect("an RSA encryption key");
    assert_eq!(encryption.method(), expect);
    let plain = sample_response(&idp);
    let xml = super::encrypt::replace_assertion(&plain, |a| encryption.assertion(a)).expect("encrypted");
    assert!(xml.contains(expect) && !xml.contains("Élise"), "encrypted with {expect}: {xml}");
    let decrypted = xmlsec1_decrypts(&dir, "sp.key", &xml).expect("xmlsec1 decrypts with the SP's key");
    assert!(decrypted.contains("Élise"), "the attributes are back: {decrypted}");
    assert!(xmlsec1_verifies(&dir, "saml-cert.pem", &decrypted), "the decrypted assertion's signature verifies");
    // A flipped byte of the ciphertext: GCM's tag refuses it; CBC cannot tell (why GCM is the
    // default), so only GCM is held to it.
    let start = xml.rfind("<xenc:CipherValue>").expect("the data's CipherValue") + "<xenc:CipherValue>".len();
    let flip = if &xml[start + 40..start + 41] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flip}{}", &xml[..start + 40], &xml[start + 41..]);
    if expect.contains("gcm") {
        assert!(xmlsec1_decrypts(&dir, "sp.key", &tampered).is_none(), "a tampered GCM ciphertext is refused");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_encrypted_assertion_is_aes_256_gcm_unless_the_sp_lists_only_cbc() {
    use super::encrypt::{AES128_CBC, AES256_GCM};
    encrypted_round_trip(&[], AES256_GCM);
    encrypted_round_trip(&[AES256_GCM.into(), AES128_CBC.into()], AES256_GCM);
    encrypted_round_trip(&[AES128_CBC.into()], AES128_CBC);
}

#[test]
fn an_sp_whose_metadata_lists_only_unknown_encryption_methods_is_refused() {
    let dir = temp_dir("enc-methods");
    let mut c = config(&dir, SP_METADATA);
    c.sps[0].encrypt_assertions = true;
    let p = Idp::load(&c, "https://vigie.example").err().expect("no encryption key");
    assert!(p.iter().any(|(_, m)| m.contains("no KeyDescriptor for encryption")), "{p:?}");
    let pem = std::fs::read_to_string(c.cert_file.as_deref().expect("the IdP's cert")).expect("cert");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let md = SP_METADATA.replace(
        "<md:AssertionConsumerService",
        &format!(
            r#"<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo><md:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#tripledes-cbc"/></md:KeyDescriptor><md:AssertionConsumerService"#
        ),
    );
    std::fs::write(dir.join("sp.xml"), &md).expect("SP metadata");
    let p = Idp::load(&c, "https://vigie.example").err().expect("3DES only is refused");
    assert!(p.iter().any(|(_, m)| m.contains("only encryption methods Vigie does not use")), "{p:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cache_duration_is_read_in_days_hours_minutes_and_seconds_and_refused_otherwise() {
    use super::idp::duration;
    use std::time::Duration;
    assert_eq!(duration("PT6H"), Some(Duration::from_secs(6 * 3600)));
    assert_eq!(duration("P1DT1H30M10S"), Some(Duration::from_secs(86_400 + 5410)));
    assert_eq!(duration("P2D"), Some(Duration::from_secs(2 * 86_400)));
    // Months and years have no fixed length; zero, garbage and overflow give no duration (the
    // configured interval applies).
    for refused in ["P1M", "P1Y", "PT0S", "6H", "PTH", "PT1.5S", "", "PT99999999999999999999S"] {
        assert_eq!(duration(refused), None, "{refused:?}");
    }
}

/// Single Logout by HTTP-POST (saml-bindings §3.5.5.2): the posted LogoutRequest carries an
/// enveloped signature that xmlsec1 verifies, RSA-SHA256 or ECDSA-SHA256 as the IdP's key is, and
/// refuses once the message is altered; the form page's CSP posts only to the SP (and Vigie).
#[test]
fn a_posted_logout_request_is_signed_enveloped_and_xmlsec1_verifies_it_rsa_and_ecdsa() {
    use actix_web::body::MessageBody;
    use base64::Engine;

    let dir = temp_dir("slo-post");
    let mut c = config(&dir, SP_METADATA);
    let rsa = Idp::load(&c, "https://vigie.example").map_err(|p| format!("{p:?}")).expect("the RSA IdP loads");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let cert = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params").self_signed(&key).expect("cert");
    std::fs::write(dir.join("ec-key.pem"), key.serialize_pem()).expect("key file");
    std::fs::write(dir.join("ec-cert.pem"), cert.pem()).expect("cert file");
    c.key_file = Some(dir.join("ec-key.pem").display().to_string());
    c.cert_file = Some(dir.join("ec-cert.pem").display().to_string());
    let ec = Idp::load(&c, "https://vigie.example").map_err(|p| format!("{p:?}")).expect("the ECDSA IdP loads");
    for (idp, cert, alg) in [(&rsa, "saml-cert.pem", "rsa-sha256"), (&ec, "ec-cert.pem", "ecdsa-sha256")] {
        let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2026-12-06T00:00:00Z" Destination="https://lab.chu.example/slo"><saml:Issuer>https://vigie.example/saml/metadata</saml:Issuer><saml:NameID>n1</saml:NameID><samlp:SessionIndex>s1</samlp:SessionIndex></samlp:LogoutRequest>"#;
        let resp = super::slo_send::send(
            idp,
            super::idp::HTTP_POST,
            "https://lab.chu.example/slo",
            "SAMLRequest",
            "_r1",
            xml,
            Some("t"),
        )
        .expect("sent");
        assert_eq!(resp.status(), 200);
        let csp = resp.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("form-action https://lab.chu.example 'self' https:;"), "{csp}");
        let body = String::from_utf8(resp.into_body().try_into_bytes().expect("a body").to_vec()).expect("UTF-8");
        let field = r#"name="SAMLRequest" value=""#;
        let start = body.find(field).expect("the field") + field.len();
        let signed = base64::engine::general_purpose::STANDARD
            .decode(&body[start..start + body[start..].find('"').expect("end")])
            .expect("base64");
        let signed = String::from_utf8(signed).expect("UTF-8");
        assert!(
            signed.contains(&format!("xmldsig-more#{alg}")) && signed.contains("Reference URI=\"#_r1\""),
            "{signed}"
        );
        let verify = |doc: &str| {
            std::fs::write(dir.join("logout.xml"), doc).expect("file");
            Command::new("xmlsec1")
                .arg("--verify")
                .arg("--trusted-pem")
                .arg(dir.join(cert))
                .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest"])
                .arg(dir.join("logout.xml"))
                .output()
                .expect("the `xmlsec1` CLI (apt-get install xmlsec1)")
                .status
                .success()
        };
        assert!(verify(&signed), "xmlsec1 verifies the {alg} enveloped signature: {signed}");
        assert!(!verify(&signed.replacen(">s1<", ">s2<", 1)), "an altered SessionIndex breaks it");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The lab SP's metadata with its ACS at `acs` and an SLO endpoint at `slo` (and `response`).
fn metadata_with(acs: &str, slo: &str, response: Option<&str>) -> String {
    let response = response.map(|r| format!(r#" ResponseLocation="{r}""#)).unwrap_or_default();
    SP_METADATA.replace(
        r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://lab.chu.example/saml/acs" index="1"/>"#,
        &format!(
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{slo}"{response}/><md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="1"/>"#
        ),
    )
}

#[test]
fn an_sp_endpoint_that_is_not_https_is_refused_at_load_naming_it() {
    let dir = temp_dir("endpoints");
    let (acs, slo) = ("https://lab.chu.example/saml/acs", "https://lab.chu.example/saml/slo");
    for (what, md, endpoint) in [
        ("a javascript: ACS", metadata_with("javascript:alert(document.domain)", slo, None), "javascript:alert"),
        ("a data: ACS", metadata_with("data:text/html,<script>x</script>", slo, None), "data:text/html"),
        ("an http ACS", metadata_with("http://lab.chu.example/saml/acs", slo, None), "http://lab.chu.example"),
        ("a relative ACS", metadata_with("/saml/acs", slo, None), "/saml/acs"),
        ("a javascript: SLO", metadata_with(acs, "javascript:alert(1)", None), "javascript:alert(1)"),
        ("an http SLO ResponseLocation", metadata_with(acs, slo, Some("http://lab.chu.example/r")), "http://lab"),
    ] {
        let said = problems(&dir, &md);
        assert_eq!(said.len(), 1, "{what}: {said:?}");
        let (key, message) = &said[0];
        assert_eq!(key, "saml.sps[0].metadata", "{what}");
        assert!(message.contains(endpoint), "{what}: names the endpoint: {message}");
        assert!(message.contains("https://lab.chu.example/saml") && message.contains("\"lab\""), "{what}: {message}");
        assert!(message.contains("https"), "{what}: says what is accepted: {message}");
        // A fetched document goes through the same reading: refused too (saml/fetch.rs keeps the
        // last good copy on any error).
        let c = config(&dir, &md);
        assert!(super::idp::Sp::from_metadata(&c.sps[0], md.clone()).is_err(), "{what}: a fetched copy");
    }
    // The tests' SPs on the loopback, and https anywhere, are accepted.
    for ok in ["http://localhost:8443/acs", "http://127.0.0.1:9/acs", "http://[::1]:9/acs", acs] {
        assert_eq!(problems(&dir, &metadata_with(ok, slo, Some("http://localhost/r"))), Vec::new(), "{ok}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The directives of a Content-Security-Policy, by name.
fn csp_directives(csp: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    csp.split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace().map(str::to_owned);
            Some((words.next()?, words.collect()))
        })
        .collect()
}

#[actix_web::test]
async fn the_sso_post_page_has_a_csp_and_no_inline_handler() {
    let acs = "https://lab.chu.example:8443/saml/acs";
    let page = |relay: &str| super::flow::form(acs, Some(relay), "<samlp:Response/>");
    let mut nonces = Vec::new();
    for relay in ["/first", "/second"] {
        let resp = page(relay);
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .expect("a Content-Security-Policy on the SSO POST page")
            .to_owned();
        let body = actix_web::body::to_bytes(resp.into_body()).await.expect("body");
        let body = String::from_utf8(body.to_vec()).expect("UTF-8");
        let d = csp_directives(&csp);
        let words = |name: &str| d.get(name).cloned().unwrap_or_else(|| panic!("{name} in {csp}"));
        assert_eq!(words("default-src"), ["'none'"], "{csp}");
        assert_eq!(words("form-action"), ["https://lab.chu.example:8443", "https:"], "the ACS, https redirects: {csp}");
        assert_eq!(words("base-uri"), ["'none'"], "{csp}");
        assert_eq!(words("frame-ancestors"), ["'none'"], "{csp}");
        let script = words("script-src");
        let [source] = script.as_slice() else { panic!("one script source: {csp}") };
        let nonce = source
            .strip_prefix("'nonce-")
            .and_then(|n| n.strip_suffix('\''))
            .unwrap_or_else(|| panic!("a nonce: {csp}"));
        assert!(nonce.len() >= 16, "a nonce of some length: {nonce}");
        // The body: the form to the ACS, submitted by the nonce'd script, never by a handler.
        assert!(body.contains(&format!(r#"<form method="post" action="{acs}">"#)), "{body}");
        assert!(body.contains(&format!(r#"<script nonce="{nonce}">document.forms[0].submit()</script>"#)), "{body}");
        assert_eq!(body.matches("<script").count(), 1, "one script: {body}");
        let lower = body.to_ascii_lowercase();
        let handler = lower.match_indices(" on").find(|(at, _)| {
            let rest = &lower[at + 3..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            !name.is_empty() && rest[name.len()..].trim_start().starts_with('=')
        });
        assert_eq!(handler, None, "no inline event handler: {body}");
        assert!(body.contains("<noscript>") && body.contains(r#"<button type="submit">"#), "{body}");
        assert!(body.contains(&format!(r#"name="RelayState" value="{relay}""#)), "{body}");
        nonces.push(nonce.to_owned());
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per response");
}

#[test]
fn fetched_metadata_naming_another_sps_entity_id_is_refused_and_that_sp_kept() {
    let dir = temp_dir("entity-pin");
    let idp = Idp::load(&config(&dir, SP_METADATA), "https://vigie.example").expect("the lab SP loads");
    let rh = |entity: &str| {
        let mut c = config(&dir, SP_METADATA).sps.remove(0);
        c.client_id = "rh".into();
        c.metadata = "https://rh.chu.example/md".into();
        let md = SP_METADATA.replace("https://lab.chu.example/saml\"", &format!("{entity}\""));
        super::idp::Sp::from_metadata(&c, md).expect("the document reads").0
    };
    // The document fetched for rh names lab's entityID: refused, lab stays lab's.
    let taken = idp.with_fetched(rh("https://lab.chu.example/saml"), None);
    let said = taken.err().expect("another SP's entityID is refused");
    assert!(said.contains("https://lab.chu.example/saml") && said.contains("\"lab\""), "{said}");
    assert_eq!(idp.sp("https://lab.chu.example/saml").map(|s| s.config.client_id.as_str()), Some("lab"));
    // rh's own entityID is taken; once pinned, a document naming another is refused.
    let idp = idp.with_fetched(rh("https://rh.chu.example/saml"), None).expect("rh's own metadata");
    assert_eq!(idp.sp("https://rh.chu.example/saml").map(|s| s.config.client_id.as_str()), Some("rh"));
    let said = idp
        .with_fetched(rh("https://rh2.chu.example/saml"), Some("https://rh.chu.example/saml"))
        .err()
        .expect("a new entityID for a pinned SP is refused");
    assert!(said.contains("https://rh2.chu.example/saml") && said.contains("https://rh.chu.example/saml"), "{said}");
    assert!(idp.sp("https://rh.chu.example/saml").is_some(), "the last good copy is kept");
    // `entity_id` in the configuration pins it from the first document on.
    let mut c = config(&dir, SP_METADATA);
    c.sps[0].entity_id = Some("https://lab2.chu.example/saml".into());
    let said = problems_of(&c);
    assert!(
        said.iter().any(|(_, m)| m.contains("https://lab2.chu.example/saml") && m.contains("entity_id")),
        "{said:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn problems_of(c: &SamlConfig) -> Vec<(String, String)> {
    Idp::load(c, "https://vigie.example").err().unwrap_or_default()
}

#[test]
fn metadata_past_its_valid_until_is_refused() {
    let dir = temp_dir("valid-until");
    let with = |until: &str| SP_METADATA.replacen("entityID=", &format!(r#"validUntil="{until}" entityID="#), 1);
    let said = problems(&dir, &with("2020-01-01T00:00:00Z"));
    assert!(said.iter().any(|(_, m)| m.contains("validUntil") && m.contains("2020-01-01")), "{said:?}");
    assert_eq!(problems(&dir, &with("2999-01-01T00:00:00Z")), Vec::new());
    let _ = std::fs::remove_dir_all(dir);
}

/// A LogoutRequest `id` signed enveloped by `idp`'s key with `method` and a `digest` for its
/// Reference; `inside` goes in its Extensions (signed with it).
fn signed_with(
    idp: &Idp,
    id: &str,
    method: samael::signature::SignatureAlgorithm,
    digest: samael::signature::DigestAlgorithm,
    inside: &str,
) -> String {
    let mut template = response::signature_template(idp, id);
    template.signed_info.signature_method.algorithm = method;
    for r in &mut template.signed_info.reference {
        r.digest_method.algorithm = digest.clone();
    }
    let extensions =
        if inside.is_empty() { String::new() } else { format!("<samlp:Extensions>{inside}</samlp:Extensions>") };
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="2026-12-06T00:00:00Z" Destination="https://vigie.example/saml/slo"><saml:Issuer>https://lab.chu.example/saml</saml:Issuer>{extensions}<saml:NameID>n1</saml:NameID><samlp:SessionIndex>s1</samlp:SessionIndex></samlp:LogoutRequest>"#
    );
    let signed = super::slo_send::enveloped(idp, template, &xml).expect("signed");
    // What goes inside another message: no XML declaration.
    signed
        .trim_start()
        .strip_prefix("<?xml")
        .and_then(|s| s.split_once("?>"))
        .map(|(_, s)| s.trim().to_owned())
        .unwrap_or(signed)
}

/// saml/signed.rs: xmlsec (samael) verifies an SP's enveloped signature with SHA-2 only. Signed
/// for real, each weak choice is refused naming its algorithm, the same message with SHA-256
/// accepted; and every Signature of the document is held to it, not the first one found: a
/// SHA-256 signature does not carry a SHA-1 one nested in the message, nor the other way round.
#[test]
fn an_sp_signature_with_sha1_is_refused_naming_it_and_sha2_accepted() {
    use samael::signature::{DigestAlgorithm, SignatureAlgorithm};

    use super::signed::{Refused, verified};

    let dir = temp_dir("sha1");
    let c = config(&dir, SP_METADATA);
    let idp = Idp::load(&c, "https://vigie.example").map_err(|p| format!("{p:?}")).expect("the IdP loads");
    // The SP, as Vigie knows it: here its signing certificate is the IdP's own.
    let sp = super::idp::Sp {
        entity_id: "https://lab.chu.example/saml".into(),
        acs: vec!["https://lab.chu.example/saml/acs".into()],
        certs: vec![idp.cert_der.clone()],
        signed_requests: true,
        slo: Vec::new(),
        encryption: None,
        config: c.sps[0].clone(),
    };
    let rsa_sha1 = || SignatureAlgorithm::Unsupported("http://www.w3.org/2000/09/xmldsig#rsa-sha1".into());
    let good = signed_with(&idp, "_ok", SignatureAlgorithm::RsaSha256, DigestAlgorithm::Sha256, "");
    let read = verified(&good, &sp).expect("RSA-SHA256 with a SHA-256 digest is accepted");
    assert!(read.contains(r#"ID="_ok""#) && read.contains(">s1<"), "{read}");
    for (what, method, digest, element, uri) in [
        ("rsa-sha1, sha1", rsa_sha1(), DigestAlgorithm::Sha1, "SignatureMethod", "xmldsig#rsa-sha1"),
        ("rsa-sha1, sha256", rsa_sha1(), DigestAlgorithm::Sha256, "SignatureMethod", "xmldsig#rsa-sha1"),
        ("rsa-sha256, sha1", SignatureAlgorithm::RsaSha256, DigestAlgorithm::Sha1, "DigestMethod", "xmldsig#sha1"),
    ] {
        let doc = signed_with(&idp, "_weak", method, digest, "");
        match verified(&doc, &sp) {
            Err(Refused::Algorithm { element: e, uri: u }) => {
                assert_eq!(e, element, "{what}");
                assert!(u.ends_with(uri), "{what}: {u}");
            }
            other => panic!("{what}: refused naming the algorithm, got {other:?}"),
        }
    }
    // A message with a good signature carrying a SHA-1-signed one in its Extensions, and a
    // SHA-1-signed message carrying a good one: both refused.
    let sha1_inner = signed_with(&idp, "_inner", rsa_sha1(), DigestAlgorithm::Sha1, "");
    let outer = signed_with(&idp, "_outer", SignatureAlgorithm::RsaSha256, DigestAlgorithm::Sha256, &sha1_inner);
    assert!(matches!(verified(&outer, &sp), Err(Refused::Algorithm { .. })), "a nested SHA-1 signature: {outer}");
    let good_inner = signed_with(&idp, "_inner", SignatureAlgorithm::RsaSha256, DigestAlgorithm::Sha256, "");
    let outer = signed_with(&idp, "_outer", rsa_sha1(), DigestAlgorithm::Sha1, &good_inner);
    assert!(matches!(verified(&outer, &sp), Err(Refused::Algorithm { .. })), "a SHA-1 signature around a good one");
    // Altered after signing, SHA-256: refused as a signature that does not verify.
    assert_eq!(verified(&good.replacen(">s1<", ">s2<", 1), &sp), Err(Refused::Signature));
    let _ = std::fs::remove_dir_all(dir);
}
