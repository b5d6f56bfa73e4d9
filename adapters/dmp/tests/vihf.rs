//! A VIHF from each MIE, verified by code written by others: the `xmlsec1` CLI (libxmlsec1 and
//! libxml2's canonicaliser), pysaml2 (the DMP stand-in's `check_vihf.py`) and signxml.
mod common;

use std::process::Command;

use common::*;
use proptest::prelude::*;
use serde_json::Value;
use vigie_dmp::{HlRole, PrimaryAuthPlacement, SignatureAlg, VihfError, insert_security};

fn check_vihf(xml: &str) -> Value {
    let dir = Scratch::new();
    let f = dir.write("vihf.xml", xml.as_bytes());
    let ca = dir.write("ca.pem", pki().ca_pem.as_bytes());
    let out = Command::new(sandbox_python())
        .arg(sandbox_dir().join("check_vihf.py"))
        .arg(&f)
        .arg("--ca")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "check_vihf.py refused it: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// signxml (lxml's canonicaliser, pyca/cryptography) verifies against the seal certificate.
fn signxml_verify(doc: &[u8]) -> Result<(), String> {
    let dir = Scratch::new();
    let f = dir.write("doc.xml", doc);
    let cert = dir.write("cert.pem", pki().cert_pem.as_bytes());
    let script = r#"
import sys
from lxml import etree
from signxml import XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.verifier import SignatureConfiguration
doc = etree.parse(sys.argv[1]).getroot()
a = doc if doc.tag.endswith('}Assertion') else doc.find('.//{urn:oasis:names:tc:SAML:2.0:assertion}Assertion')
cfg = SignatureConfiguration(location='./', expect_references=1,
    signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA1}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA1}))
r = XMLVerifier().verify(etree.tostring(a), x509_cert=open(sys.argv[2]).read(), expect_config=cfg, id_attribute='ID')
assert r.signed_xml.get('ID') == a.get('ID')
"#;
    let out = Command::new(sandbox_python()).arg("-c").arg(script).arg(&f).arg(&cert).output().unwrap();
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

const SOAP: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" xmlns=\"urn:hl7-org:v3\"",
    " xmlns:saml2=\"urn:other:saml2\" xmlns:xs=\"urn:other:xs\" xmlns:ds=\"urn:other:ds\"",
    " xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">\n  <soap:Header>\n",
    "    <wsa:Action soap:mustUnderstand=\"true\">urn:hl7-org:v3:PRPA_IN201307UV02</wsa:Action>\n",
    "  </soap:Header>\n  <soap:Body><PRPA_IN201307UV02 ITSVersion=\"XML_1.0\"/></soap:Body>\n</soap:Envelope>\n"
);

#[test]
fn a_cps_vihf_verifies_with_xmlsec1_and_a_tampered_copy_does_not() {
    let v = sealer().issue(&settings(), &request("cps")).unwrap();
    assert!(v.id.starts_with('_') && v.id.len() == 37, "{}", v.id);
    assert_eq!(v.not_on_or_after, NOW + 30);
    assert_xmlsec1_ok(v.xml.as_bytes());
    // Reference §1: signature right after Issuer.
    let after_issuer = v.xml.split("</saml2:Issuer>").nth(1).unwrap();
    assert!(after_issuer.starts_with("<ds:Signature "), "{after_issuer}");

    let tampered = v.xml.replace("<saml2:NameID>810001234567<", "<saml2:NameID>810001234568<");
    assert_ne!(tampered, v.xml);
    let (ok, _) = xmlsec1_verify(tampered.as_bytes());
    assert!(!ok, "xmlsec1 accepted a VIHF whose NameID was changed");
    let tampered = v.xml.replace("urn:dmp", "urn:dmq");
    assert!(!xmlsec1_verify(tampered.as_bytes()).0, "xmlsec1 accepted a changed attribute");
}

#[test]
fn a_cps_vihf_loads_in_pysaml2_with_every_reference_attribute() {
    let v = sealer().issue(&settings(), &request("cps")).unwrap();
    let j = check_vihf(&v.xml);
    assert_eq!(j["signature"].as_str().unwrap(), "verified");
    assert_eq!(j["id"].as_str().unwrap(), v.id);
    assert_eq!(j["name_id"].as_str().unwrap(), "810001234567");
    // RFC 2253: reverse order, ST=, escaped CN.
    assert_eq!(
        j["issuer"].as_str().unwrap(),
        "CN=Cachet Vigie\\, DMP \\\"AIR\\\" \\+ test,OU=10B0127189,O=CENTRE HOSPITALIER DE TEST,ST=Rhône (69),C=FR"
    );
    assert_eq!(j["issuer"].as_str().unwrap(), sealer().issuer_dn());
    assert_eq!(j["issue_instant"].as_str().unwrap(), "2026-11-18T11:06:40Z");
    assert_eq!(j["not_on_or_after"].as_str().unwrap(), "2026-11-18T11:07:10Z");
    let ac = &j["authn_context"][0];
    assert_eq!(ac["class_ref"].as_str().unwrap(), "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI");
    assert_eq!(ac["decl"].as_str().unwrap(), "CONF_EXI_PGSSIS");
    let a = &j["attributes"];
    let one = |n: &str| a[n][0].as_str().unwrap().to_string();
    assert_eq!(one("Identifiant_Structure"), "10B0127189");
    assert_eq!(one("Secteur_Activite"), "SA07^1.2.250.1.71.4.2.4");
    assert_eq!(one("urn:oasis:names:tc:xspa:1.0:subject:subject-id"), "DURAND Marie, Cardiologie");
    assert_eq!(one("VIHF_Version"), "3.0");
    assert_eq!(one("Authentification_Mode"), "INDIRECTE_RENFORCEE");
    assert_eq!(
        one("urn:oasis:names:tc:xacml:2.0:resource:resource-id"),
        "207058575627097^^^&1.2.250.1.213.1.4.8&ISO^NH"
    );
    assert_eq!(one("Ressource_URN"), "urn:dmp");
    assert_eq!(one("LPS_ID"), "01.01.01.01");
    assert_eq!(one("LPS_Nom"), "Vigie");
    assert_eq!(one("LPS_ID_HOMOLOGATION_DMP"), "VIGIE-TEST-0001");
    let roles = &a["urn:oasis:names:tc:xacml:2.0:subject:role"];
    assert_eq!(roles[0]["code"].as_str().unwrap(), "10");
    assert_eq!(roles[0]["codeSystem"].as_str().unwrap(), "1.2.250.1.71.1.2.7");
    assert_eq!(roles[0]["displayName"].as_str().unwrap(), "Médecin");
    assert_eq!(roles[1]["code"].as_str().unwrap(), "SM26");
    assert_eq!(roles[1]["codeSystem"].as_str().unwrap(), "1.2.250.1.71.4.2.5");
    let pou = &a["urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"][0];
    assert_eq!(pou["code"].as_str().unwrap(), "normal");
    assert_eq!(pou["codeSystem"].as_str().unwrap(), "1.2.250.1.213.1.1.4.248");
    assert_eq!(pou["displayName"].as_str().unwrap(), "Accès normal");
}

#[test]
fn a_fido2_vihf_signed_rsa_sha1_verifies_with_xmlsec1_signxml_and_pysaml2() {
    let s = vigie_dmp::VihfSettings {
        signature_alg: SignatureAlg::RsaSha1,
        auth_mode_attribute: "Authentification_mode".into(),
        primary_auth_placement: PrimaryAuthPlacement::Attribute("Authentification_Primaire".into()),
        ..settings()
    };
    let v = sealer().issue(&s, &request("fido2")).unwrap();
    assert!(v.xml.contains("xmldsig#rsa-sha1") && v.xml.contains("xmldsig#sha1"));
    assert_xmlsec1_ok(v.xml.as_bytes());
    signxml_verify(v.xml.as_bytes()).unwrap();
    let j = check_vihf(&v.xml);
    let ac = &j["authn_context"][0];
    assert_eq!(ac["class_ref"].as_str().unwrap(), "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract");
    assert!(ac["decl"].is_null());
    assert_eq!(j["attributes"]["Authentification_Primaire"][0].as_str().unwrap(), "CONF_EXI_PGSSIS");
    assert_eq!(j["attributes"]["Authentification_mode"][0].as_str().unwrap(), "INDIRECTE_RENFORCEE");
    assert!(
        !xmlsec1_verify(v.xml.replace("fido2", "x").replace("MobileTwoFactorContract", "SmartcardPKI").as_bytes()).0
    );
}

#[test]
fn a_vihf_inside_a_soap_envelope_with_clashing_prefixes_still_verifies() {
    let v = sealer().issue(&settings(), &request("cps_via_psc")).unwrap();
    let doc = insert_security(SOAP.as_bytes(), "application/soap+xml; charset=utf-8", &v.xml).unwrap();
    assert_xmlsec1_ok(&doc);
    signxml_verify(&doc).unwrap();
    assert!(!xmlsec1_verify(&String::from_utf8(doc).unwrap().replace("SM26", "SM27").into_bytes()).0);
}

#[test]
fn markup_and_quotes_in_values_stay_data() {
    let nasty = "<b>Dr & \"Durand\"</b> 'x' ]]> <!-- -->\t<![CDATA[y]]>\r\nz &amp;";
    let mut r = request("cps");
    r.subject_name = nasty.into();
    r.roles[0].display_name = nasty.into();
    let s = vigie_dmp::VihfSettings { lps_nom: nasty.into(), ..settings() };
    let v = sealer().issue(&s, &r).unwrap();
    assert!(!v.xml.contains("<b>") && !v.xml.contains("<!--") && !v.xml.contains("<![CDATA["));
    assert_xmlsec1_ok(v.xml.as_bytes());
    signxml_verify(v.xml.as_bytes()).unwrap();
    let j = check_vihf(&v.xml);
    let a = &j["attributes"];
    assert_eq!(a["urn:oasis:names:tc:xspa:1.0:subject:subject-id"][0].as_str().unwrap(), nasty);
    assert_eq!(a["LPS_Nom"][0].as_str().unwrap(), nasty);
    assert_eq!(a["urn:oasis:names:tc:xacml:2.0:subject:role"][0]["displayName"].as_str().unwrap(), nasty);
}

#[test]
fn characters_xml_cannot_carry_are_refused_with_the_field_named() {
    let mut r = request("cps");
    r.subject_name = "Durand\u{1}".into();
    match sealer().issue(&settings(), &r) {
        Err(VihfError::BadChar(b)) => {
            assert_eq!((b.field, b.ch, b.at), ("urn:oasis:names:tc:xspa:1.0:subject:subject-id", '\u{1}', 6))
        }
        other => panic!("{other:?}"),
    }
    let mut r = request("cps");
    r.idnat = "8100\u{FFFF}".into();
    assert!(matches!(sealer().issue(&settings(), &r), Err(VihfError::BadChar(b)) if b.field == "idnat"));
    let s = vigie_dmp::VihfSettings { structure_id: "\u{0}".into(), ..settings() };
    let e = sealer().issue(&s, &request("cps")).unwrap_err();
    assert!(e.to_string().contains("Identifiant_Structure contains U+0000"), "{e}");
}

#[test]
fn bad_requests_get_precise_errors() {
    let s = settings();
    let e = sealer().issue(&s, &request("sponsorship")).unwrap_err();
    assert!(matches!(&e, VihfError::UnknownMie(m) if m == "sponsorship"), "{e}");
    let mut r = request("cps");
    r.purpose_of_use = "curiosite".into();
    let e = sealer().issue(&s, &r).unwrap_err();
    assert!(e.to_string().contains("bris_de_glace, centre15, normal, urgence"), "{e}");
    let mut r = request("cps");
    r.patient_ins = "207058575627096".into();
    assert!(sealer().issue(&s, &r).unwrap_err().to_string().contains("key is 96"));
    let mut r = request("cps");
    r.roles.clear();
    assert!(matches!(sealer().issue(&s, &r), Err(VihfError::NoRole)));
    let mut r = request("cps");
    r.idnat = " ".into();
    assert!(matches!(sealer().issue(&s, &r), Err(VihfError::Empty("idnat"))));
    let mut r = request("cps");
    r.now = 300_000_000_000;
    assert!(matches!(sealer().issue(&s, &r), Err(VihfError::Time("now", _))));
}

#[test]
fn every_vihf_has_a_new_id() {
    let a = sealer().issue(&settings(), &request("cps")).unwrap();
    let b = sealer().issue(&settings(), &request("cps")).unwrap();
    assert_ne!(a.id, b.id);
    assert!(a.xml.contains(&format!("ID=\"{}\"", a.id)) && a.xml.contains(&format!("URI=\"#{}\"", a.id)));
}

/// One sealer signs from several threads at once (the legacy RSA-SHA1 path shares one AWS-LC key).
#[test]
fn one_sealer_signs_from_several_threads() {
    let s = vigie_dmp::VihfSettings { signature_alg: SignatureAlg::RsaSha1, ..settings() };
    let vihfs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..5).map(|_| sealer().issue(&s, &request("cpe")).unwrap()).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(vihfs.len(), 20);
    assert_xmlsec1_ok(vihfs[0].xml.as_bytes());
    assert_xmlsec1_ok(vihfs[19].xml.as_bytes());
}

fn printable() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{1,30}", "[<>&\"' \\]\\t\\n\\r;=+,#é€𝄞]{1,20}", "[a-zA-Z0-9 ]{1,12}",]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 30, ..ProptestConfig::default() })]

    /// Any printable Unicode in the values: the VIHF verifies with xmlsec1 on its own and inside a
    /// SOAP envelope that binds the same prefixes to other namespaces.
    #[test]
    fn any_printable_values_verify_with_xmlsec1_alone_and_in_soap(
        subject in printable(), structure in printable(), display in printable(), idnat in printable(),
        lps in printable(), sha1 in any::<bool>(),
    ) {
        prop_assume!(!idnat.trim().is_empty());
        let s = vigie_dmp::VihfSettings {
            structure_id: structure,
            lps_nom: lps,
            signature_alg: if sha1 { SignatureAlg::RsaSha1 } else { SignatureAlg::RsaSha256 },
            ..settings()
        };
        let mut r = request("fido2");
        r.subject_name = subject;
        r.idnat = idnat;
        r.roles.push(HlRole { code: display.clone(), code_system: "1.2.3".into(), code_system_name: display.clone(), display_name: display });
        let v = sealer().issue(&s, &r).unwrap();
        let (ok, err) = xmlsec1_verify(v.xml.as_bytes());
        prop_assert!(ok, "{}\n{}", err, v.xml);
        let doc = insert_security(SOAP.as_bytes(), "application/soap+xml", &v.xml).unwrap();
        let (ok, err) = xmlsec1_verify(&doc);
        prop_assert!(ok, "in SOAP: {}\n{}", err, v.xml);
    }
}

/// The claim of the crate: the assertion (without its signature) and SignedInfo are written in
/// their exclusive-canonical form. lxml's canonicaliser (libxml2) must give back the same bytes.
#[test]
fn the_assertion_and_signed_info_are_written_in_their_exclusive_canonical_form() {
    let mut r = request("cps");
    r.subject_name = "a<b & \"c\" 'd' > ]]>\t\r\n€𝄞".into();
    r.roles[1].display_name = "x\t\"y\"\r\n<z>&".into();
    let v = sealer().issue(&settings(), &r).unwrap();
    let sig_start = v.xml.find("<ds:Signature ").unwrap();
    let sig_end = v.xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &v.xml[..sig_start], &v.xml[sig_end..]);
    let si_start = v.xml.find("<ds:SignedInfo ").unwrap();
    let si_end = v.xml.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len();
    let dir = Scratch::new();
    let f = dir.write("v.xml", v.xml.as_bytes());
    let script = r#"
import sys
from lxml import etree
root = etree.parse(sys.argv[1]).getroot()
sig = root.find('{http://www.w3.org/2000/09/xmldsig#}Signature')
si = etree.tostring(sig.find('{http://www.w3.org/2000/09/xmldsig#}SignedInfo'), method='c14n', exclusive=True)
root.remove(sig)
a = etree.tostring(root, method='c14n', exclusive=True, inclusive_ns_prefixes=['xs', 'xsi'])
open(sys.argv[1] + '.a', 'wb').write(a)
open(sys.argv[1] + '.si', 'wb').write(si)
"#;
    let out = Command::new(sandbox_python()).arg("-c").arg(script).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = std::fs::read_to_string(dir.0.join("v.xml.a")).unwrap();
    let si = std::fs::read_to_string(dir.0.join("v.xml.si")).unwrap();
    assert_eq!(a, unsigned);
    assert_eq!(si, &v.xml[si_start..si_end]);
}
