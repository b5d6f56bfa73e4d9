//! The relay against the DMP stand-in (`conformance/dmp-sandbox`, Python: ssl, lxml, signxml):
//! mutual TLS with an ORG_AUTH_CLI-like certificate, a fresh VIHF per call, MTOM passed through,
//! and the stand-in's refusals (replay, expiry) coming back as answers.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use aws_lc_rs::digest;
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use vigie_dmp::{DmpRelay, RelayError, VihfRequest, insert_security};

struct Sandbox {
    child: Child,
    base: String,
    tls_ca: String,
    client_cert: String,
    client_key: String,
    _dir: Scratch,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let pem = p.self_signed(&key).unwrap().pem();
    (p, key, pem)
}

fn leaf(ca: &(CertificateParams, KeyPair, String), cn: &str, eku: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    let cert = p.signed_by(&key, &Issuer::from_params(&ca.0, &ca.1)).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn start_sandbox() -> Sandbox {
    let dir = Scratch::new();
    let tls = ca("TEST TLS CA");
    let org = ca("TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS AUTH");
    let (server_cert, server_key) = leaf(&tls, "dmp.test", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(&org, "ORG_AUTH_CLI Vigie", ExtendedKeyUsagePurpose::ClientAuth);
    let s = dir.write("s.pem", server_cert.as_bytes());
    let k = dir.write("s.key", server_key.as_bytes());
    let cca = dir.write("org-ca.pem", org.2.as_bytes());
    let seal = dir.write("seal-ca.pem", pki().ca_pem.as_bytes());
    let mut child = Command::new(sandbox_python())
        .arg(sandbox_dir().join("server.py"))
        .args(["--listen", "127.0.0.1:0", "--cert"])
        .arg(&s)
        .arg("--key")
        .arg(&k)
        .arg("--client-ca")
        .arg(&cca)
        .arg("--seal-ca")
        .arg(&seal)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base =
        line.trim().strip_prefix("DMP-SANDBOX READY ").unwrap_or_else(|| panic!("stand-in said {line:?}")).to_string();
    Sandbox { child, base, tls_ca: tls.2, client_cert, client_key, _dir: dir }
}

fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static H: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn live_request() -> VihfRequest {
    VihfRequest { now: unix_now(), authn_instant: unix_now() - 60, ..request("cps") }
}

const TD02: &str = "urn:hl7-org:v3:PRPA_IN201307UV02";
const TD31: &str = "urn:ihe:iti:2007:RegistryStoredQuery";

fn envelope(action: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"><soap:Header><wsa:Action soap:mustUnderstand=\"true\">{action}</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID></soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>",
        uuid::Uuid::new_v4()
    )
}

#[tokio::test]
async fn a_relayed_td02_is_answered_and_the_same_vihf_sent_again_is_refused_as_replayed() {
    let metrics = prometheus();
    let sb = start_sandbox();
    let relay = DmpRelay::new(&sb.base, &sb.client_cert, &sb.client_key, Some(&sb.tls_ca), 2000, 10_000).unwrap();
    let v = sealer().issue(&settings(), &live_request()).unwrap();
    let env = envelope(TD02, "<PRPA_IN201307UV02 xmlns=\"urn:hl7-org:v3\" ITSVersion=\"XML_1.0\"/>");
    let body = insert_security(env.as_bytes(), "application/soap+xml; charset=utf-8", &v.xml).unwrap();
    let r = relay.send("patients", "application/soap+xml; charset=utf-8", Some(TD02), body.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("PRPA_IN201306UV02") && text.contains(&v.id), "{text}");

    let r = relay.send("patients", "application/soap+xml; charset=utf-8", Some(TD02), body).await.unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("VIHF replayed"), "{text}");

    let rendered = metrics.render();
    assert!(
        rendered.lines().any(|l| l.starts_with("vigie_upstream_request_seconds_count{")
            && l.contains("upstream=\"dmp\"")
            && l.contains("op=\"soap\"")),
        "{rendered}"
    );
}

#[tokio::test]
async fn an_expired_vihf_is_refused_by_the_stand_in() {
    let sb = start_sandbox();
    let relay = DmpRelay::new(&sb.base, &sb.client_cert, &sb.client_key, Some(&sb.tls_ca), 2000, 10_000).unwrap();
    let old = VihfRequest { now: unix_now() - 120, authn_instant: unix_now() - 200, ..request("fido2") };
    let v = sealer().issue(&settings(), &old).unwrap();
    let env = envelope(TD31, "<q:AdhocQueryRequest xmlns:q=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\"/>");
    let body = insert_security(env.as_bytes(), "application/soap+xml", &v.xml).unwrap();
    let r = relay.send("registry", "application/soap+xml", Some(TD31), body).await.unwrap();
    assert_eq!(r.status(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("VIHF expired: issued") && text.contains("more than 30 s (EX_AIR-040)"), "{text}");
}

#[tokio::test]
async fn an_mtom_call_keeps_its_attachment_bytes_end_to_end() {
    let sb = start_sandbox();
    let relay = DmpRelay::new(&sb.base, &sb.client_cert, &sb.client_key, Some(&sb.tls_ca), 2000, 10_000).unwrap();
    let v = sealer().issue(&settings(), &live_request()).unwrap();
    let env = envelope(
        TD31,
        "<q:AdhocQueryRequest xmlns:q=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\"><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:doc0@vigie.test\"/></q:AdhocQueryRequest>",
    );
    let attachment: Vec<u8> =
        (0..=255u8).cycle().take(5000).chain(b"\r\n--MIMEBoundary_x\r\n".iter().copied()).collect();
    // The attachment ends with a fake delimiter line; the real boundary differs from it.
    let boundary = "MIMEBoundary_real_7c1";
    let mut raw = Vec::new();
    raw.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root.message@vigie.test>\r\n\r\n").as_bytes());
    raw.extend_from_slice(env.as_bytes());
    raw.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <doc0@vigie.test>\r\n\r\n").as_bytes());
    raw.extend_from_slice(&attachment);
    raw.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!(
        "multipart/related; type=\"application/xop+xml\"; boundary=\"{boundary}\"; start=\"<root.message@vigie.test>\"; start-info=\"application/soap+xml\""
    );
    let secured = insert_security(&raw, &ct, &v.xml).unwrap();
    let r = relay.send("registry", &ct, Some(TD31), secured).await.unwrap();
    let status = r.status();
    let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    assert_eq!(status, 200, "{text}");
    let sha = digest::digest(&digest::SHA256, &attachment);
    let hex: String = sha.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&hex), "the stand-in saw other attachment bytes: {text}");
}

#[tokio::test]
async fn transport_failures_are_errors_with_the_reason() {
    let sb = start_sandbox();
    // A client certificate the DMP does not trust: the TLS handshake fails.
    let rogue = ca("ROGUE");
    let (c, k) = leaf(&rogue, "rogue", ExtendedKeyUsagePurpose::ClientAuth);
    let relay = DmpRelay::new(&sb.base, &c, &k, Some(&sb.tls_ca), 2000, 10_000).unwrap();
    let e = relay.send("patients", "application/soap+xml", Some(TD02), b"<x/>".to_vec()).await.unwrap_err();
    assert!(matches!(e, RelayError::Unreachable(_)), "{e}");
    // A server this relay does not trust.
    let relay = DmpRelay::new(&sb.base, &sb.client_cert, &sb.client_key, None, 2000, 10_000).unwrap();
    let e = relay.send("patients", "application/soap+xml", None, b"<x/>".to_vec()).await.unwrap_err();
    assert!(matches!(&e, RelayError::Unreachable(d) if d.contains("UnknownIssuer")), "{e}");
    // Nobody listening: the connection is refused, at once (not a timeout).
    let relay = DmpRelay::new("https://127.0.0.1:9/s/", &sb.client_cert, &sb.client_key, None, 500, 10_000).unwrap();
    let e = relay.send("patients", "application/soap+xml", None, b"<x/>".to_vec()).await.unwrap_err();
    assert!(matches!(&e, RelayError::Unreachable(d) if d.contains("Connection refused")), "{e}");
    // Path injection and header injection are refused before any I/O.
    let relay = DmpRelay::new(&sb.base, &sb.client_cert, &sb.client_key, Some(&sb.tls_ca), 2000, 10_000).unwrap();
    for bad in ["../admin", "a/b", "", "x?y=1", ".hidden"] {
        assert!(
            matches!(relay.send(bad, "application/soap+xml", None, vec![]).await, Err(RelayError::Service(_))),
            "{bad}"
        );
    }
    let e = relay.send("patients", "application/soap+xml", Some("a\"b"), vec![]).await.unwrap_err();
    assert!(matches!(e, RelayError::Action(_)));
    assert!(matches!(
        DmpRelay::new("http://x/", &sb.client_cert, &sb.client_key, None, 1, 1),
        Err(RelayError::Config(_))
    ));
    assert!(matches!(DmpRelay::new(&sb.base, "junk", "junk", None, 1, 1), Err(RelayError::Config(_))));
}

#[test]
fn the_action_goes_into_the_content_type() {
    use vigie_dmp::with_action;
    assert_eq!(with_action("application/soap+xml", Some("urn:a")).unwrap(), "application/soap+xml; action=\"urn:a\"");
    assert_eq!(
        with_action("application/soap+xml;action=\"urn:b\"", Some("urn:a")).unwrap(),
        "application/soap+xml;action=\"urn:b\""
    );
    assert_eq!(with_action("application/soap+xml", None).unwrap(), "application/soap+xml");
}
