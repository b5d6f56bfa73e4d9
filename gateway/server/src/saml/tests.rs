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
