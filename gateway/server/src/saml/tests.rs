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
    match Idp::load(&config(dir, metadata), "https://vigie.example") {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
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
    std::fs::write(dir.join("template.xml"), SIGNED_METADATA_TEMPLATE).expect("template");
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
    let signed = std::fs::read_to_string(dir.join("signed.xml")).expect("signed metadata");
    let load = |metadata: &str, cert: &Path| {
        let mut c = config(&dir, metadata);
        c.sps[0].metadata_cert = Some(cert.join("saml-cert.pem").display().to_string());
        Idp::load(&c, "https://vigie.example")
    };
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
        assert!(csp.contains("form-action https://lab.chu.example 'self';"), "{csp}");
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
