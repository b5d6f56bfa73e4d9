//! Encrypted assertions against pysaml2 (tests/saml/sp.py): an SP whose metadata carries an
//! encryption key and `encrypt_assertions = true` receives an `EncryptedAssertion` that pysaml2
//! decrypts (through the `xmlsec1` CLI) and whose signature and attributes it checks; the same
//! SP without its decryption key reads nothing; an SP without encryption still gets a plain
//! signed Assertion.
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::common::*;
use crate::saml::{Sp, fresh, idp_and_sp_keys, idp_for, openssl_pair, to_the_sp};

const LAB: &str = "https://lab.chu.example/saml";
const RH: &str = "https://rh.chu.example/saml";

/// The gateway with `lab` (encrypted assertions) and `rh` (plain), and their pysaml2 SPs.
async fn estate(dir: &Path) -> (Gateway, Sp, Sp) {
    idp_and_sp_keys(dir);
    openssl_pair(dir, "spenc", "pysaml2-sp-encryption");
    let d = |f: &str| dir.join(f).display().to_string();
    let enc = json!({"enc_key": d("spenc.key"), "enc_cert": d("spenc.crt")});
    for (name, entity, more) in [("lab", LAB, enc.clone()), ("rh", RH, json!({}))] {
        let (ok, md, err) = Sp::with(dir, name, entity, None, more).run(&["metadata"], "");
        assert!(ok, "SP metadata: {err}");
        if name == "lab" {
            assert!(md.contains(r#"use="encryption""#), "pysaml2 publishes its encryption key: {md}");
        }
        std::fs::write(dir.join(format!("{name}-md.xml")), md).expect("SP metadata file");
    }
    let sps = format!(
        r#"{{metadata="{}", client_id="lab", attributes=["given_name", "mie"], encrypt_assertions=true}}, {{metadata="{}", client_id="rh", attributes=["mie"]}}"#,
        d("lab-md.xml"),
        d("rh-md.xml"),
    );
    let gw = idp_for(dir, &sps).await;
    let idp_md = dir.join("idp-md.xml");
    let lab = Sp::with(dir, "lab", LAB, Some(&idp_md), enc);
    let rh = Sp::new(dir, "rh", RH, Some(&idp_md));
    (gw, lab, rh)
}

fn temp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("saml-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn an_sp_that_asks_gets_its_assertion_encrypted_and_pysaml2_decrypts_it() {
    let dir = temp("encrypted");
    let (gw, lab, rh) = estate(&dir).await;
    let mut b = gw.browser();

    let req = lab.json(&["redirect"]);
    let (response, _) = to_the_sp(&mut b, req["url"].as_str().expect("url")).await;
    let xml = String::from_utf8(STANDARD.decode(&response).expect("base64")).expect("UTF-8");
    assert!(xml.contains("EncryptedAssertion"), "an EncryptedAssertion: {xml}");
    assert!(xml.contains("http://www.w3.org/2009/xmlenc11#aes256-gcm"), "AES-256-GCM by default: {xml}");
    assert!(xml.contains("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"), "RSA-OAEP key transport: {xml}");
    assert!(!xml.contains("password_totp") && !xml.contains("<saml2:Assertion"), "nothing in clear: {xml}");
    let id = req["id"].as_str().expect("id");
    let read = lab.parse(id, &response).unwrap_or_else(|e| panic!("pysaml2 refused the encrypted Response: {e}"));
    assert_eq!(read["attributes"]["urn:vigie:attribute:mie"][0], "password_totp", "{read}");
    assert!(read["attributes"]["urn:vigie:attribute:given_name"][0].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(read["authn_context"][0], "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken");

    // The same SP without its decryption key reads nothing: the encryption is real.
    let keyless = Sp::with(&dir, "lab-keyless", LAB, Some(&dir.join("idp-md.xml")), json!({}));
    assert!(keyless.parse(id, &response).is_err(), "an SP without the key must not read the assertion");

    // An SP without encryption: a plain signed Assertion, read by pysaml2.
    let req = rh.json(&["redirect"]);
    fresh(&mut b);
    let (response, _) = to_the_sp(&mut b, req["url"].as_str().expect("url")).await;
    let xml = String::from_utf8(STANDARD.decode(&response).expect("base64")).expect("UTF-8");
    assert!(xml.contains("<saml2:Assertion") && !xml.contains("EncryptedAssertion"), "plain: {xml}");
    let read = rh.parse(req["id"].as_str().expect("id"), &response).expect("pysaml2 reads rh's Response");
    assert_eq!(read["attributes"]["urn:vigie:attribute:mie"][0], "password_totp", "{read}");
    let _ = std::fs::remove_dir_all(dir);
}
