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
    }];
    c
}

fn problems(dir: &Path, metadata: &str) -> Vec<(String, String)> {
    match Idp::load(&config(dir, metadata), "https://vigie.example") {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

#[test]
fn xmlsec1_verifies_the_signed_assertion_and_refuses_it_altered() {
    let dir = temp_dir("sign");
    let idp = Idp::load(&config(&dir, SP_METADATA), "https://vigie.example").expect("the IdP loads");
    let xml = response::signed(
        &idp,
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
        },
    )
    .expect("signed");
    assert!(xml.contains("http://www.w3.org/2001/04/xmlenc#sha256"), "SHA-256 digest: {xml}");
    assert!(xml.contains("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"), "RSA-SHA256: {xml}");
    assert!(!xml.contains("xmldsig#sha1"), "no SHA-1: {xml}");
    let verify = |doc: &str| {
        let file = dir.join("response.xml");
        std::fs::write(&file, doc).expect("response file");
        let out = Command::new("xmlsec1")
            .arg("--verify")
            .arg("--trusted-pem")
            .arg(dir.join("saml-cert.pem"))
            .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
            .arg(&file)
            .output()
            .expect("the `xmlsec1` CLI (apt-get install xmlsec1)");
        out.status.success()
    };
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
