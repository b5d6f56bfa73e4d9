//! The DMP in AIR simplifié against the real binary: a professional's access token turned into a
//! VIHF (RFC 8693 token exchange) that the real `xmlsec1` verifies and a SAML library written by
//! others (pysaml2, `conformance/dmp-sandbox/check_vihf.py`) loads; the SOAP relay to the DMP
//! stand-in (`conformance/dmp-sandbox`, mutual TLS, real VIHF checks) with its answers streamed
//! back and MTOM attachments intact; the refusals a DPI can meet, each precise and audited.
//! Needs `conformance/dmp-sandbox/setup` (its venv) and the `xmlsec1` binary.
use crate::common;
use crate::softkey;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use common::fido2::{add_key, key_assertion, key_login};
use common::*;
use serde_json::Value;
use softkey::{AttestationPki, SoftKey, VIRTUAL_AAGUID};
use tokio::io::{AsyncBufReadExt, BufReader};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const SAML2: &str = "urn:ietf:params:oauth:token-type:saml2";
/// The INS-NIR of the reference's example (INS-NIR TEST, key 97).
const INS: &str = "207058575627097";
const TD02: &str = "urn:hl7-org:v3:PRPA_IN201307UV02";
const TD31: &str = "urn:ihe:iti:2007:RegistryStoredQuery";
const WSSE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const SMARTCARD_PKI: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI";

fn sandbox_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conformance/dmp-sandbox"))
}

fn sandbox_python() -> PathBuf {
    let python = sandbox_dir().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "the DMP stand-in's Python environment is missing ({}): run conformance/dmp-sandbox/setup",
        python.display()
    );
    python
}

fn xmlsec1() -> &'static str {
    let found = std::process::Command::new("xmlsec1").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "the xmlsec1 binary is missing: apt-get install -y xmlsec1");
    "xmlsec1"
}

fn sha256_hex(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The DMP stand-in, run on the demo's own certificates: the demo TLS certificate as its server
/// certificate (the relay trusts the demo CA), the demo DMP CA for client and seal certificates.
struct Sandbox {
    base_url: String,
    http: reqwest::Client,
    _child: tokio::process::Child,
}

impl Sandbox {
    async fn start(gw: &Gateway, port: u16, extra: &[&str]) -> Sandbox {
        let dir = &gw.data_dir;
        let mut child = tokio::process::Command::new(sandbox_python())
            .current_dir(sandbox_dir())
            .arg("server.py")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert")
            .arg(dir.join("tls.crt"))
            .arg("--key")
            .arg(dir.join("tls.key"))
            .arg("--client-ca")
            .arg(dir.join("dmp-org-ca.pem"))
            .arg("--seal-ca")
            .arg(dir.join("dmp-org-ca.pem"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the DMP stand-in");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the DMP stand-in is ready within 30 s")
            .expect("its stdout")
            .expect("a READY line");
        let base_url = ready.strip_prefix("DMP-SANDBOX READY ").unwrap_or_else(|| panic!("{ready}")).to_owned();
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let identity = reqwest::Identity::from_pem(&[read("dmp-auth.pem"), read("dmp-auth.key")].concat())
            .expect("the demo ORG_AUTH_CLI certificate");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&read("ca.pem")).expect("demo CA")])
            .identity(identity)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("mutual-TLS client");
        Sandbox { base_url, http, _child: child }
    }

    fn origin(&self) -> String {
        self.base_url.split("/si-dmp-server").next().unwrap_or_default().to_owned()
    }

    async fn log(&self) -> Vec<Value> {
        let r = self.http.get(format!("{}/__control/log", self.origin())).send().await.expect("stand-in log");
        r.json().await.expect("JSON log")
    }

    /// Makes the stand-in misbehave (`/__control/misbehave`), or behave again with `{}`.
    async fn misbehave(&self, how: Value) {
        let url =
            format!("{}/__control/{}", self.origin(), if how == serde_json::json!({}) { "reset" } else { "misbehave" });
        let r = self.http.post(url).json(&how).send().await.expect("stand-in control");
        assert_eq!(r.status(), 200);
    }

    /// A call straight to the stand-in, as a DPI holding a VIHF would make it.
    async fn post(&self, service: &str, content_type: &str, body: Vec<u8>) -> Resp {
        let r = self
            .http
            .post(format!("{}{service}", self.base_url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("stand-in reachable");
        Resp::of(r).await
    }
}

/// A gateway on the demo whose relay points at a stand-in on `port` (started after it: the
/// stand-in runs on certificates the demo generates).
async fn gateway_with_relay(port: u16, env: &[(&str, &str)]) -> Gateway {
    let base = format!("https://127.0.0.1:{port}/si-dmp-server/v2/services/");
    let mut all = vec![("VIGIE_DMP__RELAY__BASE_URL", base.as_str())];
    all.extend_from_slice(env);
    Gateway::start(&all).await
}

/// A DMP SOAP 1.2 envelope as a DPI sends it to the relay: WS-Addressing headers, no security.
fn envelope(action: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header><wsa:Action soap:mustUnderstand="true">{action}</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID><wsa:To>https://dmp.test/si-dmp-server/v2/services/</wsa:To></soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#,
        uuid::Uuid::new_v4()
    )
}

fn td02() -> String {
    envelope(TD02, r#"<PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"/>"#)
}

/// The envelope with the VIHF in its `wsse:Security` header (what the relay does).
fn secured(envelope: &str, vihf: &str) -> Vec<u8> {
    envelope
        .replacen(
            "<soap:Header>",
            &format!(r#"<soap:Header><wsse:Security xmlns:wsse="{WSSE}">{vihf}</wsse:Security>"#),
            1,
        )
        .into_bytes()
}

/// An MTOM package: the envelope as root part, then the attachments (RFC 2046 §5.1.1, XOP).
fn mtom(envelope: &str, attachments: &[&[u8]]) -> (String, Vec<u8>) {
    let boundary = "MIMEBoundary_vigie_relay_test";
    let mut out = format!(
        "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root.message@vigie.test>\r\n\r\n{envelope}"
    )
    .into_bytes();
    for (i, a) in attachments.iter().enumerate() {
        out.extend_from_slice(
            format!("\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <doc{i}@vigie.test>\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(a);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!(
        r#"multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<root.message@vigie.test>"; start-info="application/soap+xml""#
    );
    (ctype, out)
}

/// Card login of the demo médecin to the demo DPI: its access token.
pub(crate) async fn card_token(gw: &Gateway) -> Tokens {
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let a = Authz::new(gw, "demo-dpi");
    let code = b.sign_in_with_card(&a).await;
    redeem(gw, &a, &code).await
}

/// RFC 8693 §2.1: a token exchange by `client_id` of `subject` (an access token) with `extra`.
async fn exchange(gw: &Gateway, client_id: &str, subject: &str, extra: &[(&str, &str)]) -> Resp {
    let mut params = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", SAML2),
        ("patient_ins", INS),
    ];
    for (k, v) in extra {
        params.retain(|(n, _)| n != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    gw.token(client_id, &params).await
}

/// A successful exchange: checks the RFC 8693 §2.2.1 response and returns the VIHF's XML.
pub(crate) async fn vihf_of(gw: &Gateway, subject: &str) -> String {
    let r = exchange(gw, "demo-dpi", subject, &[]).await;
    assert_eq!(r.status, 200, "token exchange: {}", r.body);
    let j = r.json();
    assert_eq!(j["issued_token_type"], SAML2);
    assert_eq!(j["token_type"], "N_A", "RFC 8693 §2.2.1: a VIHF is not an access token");
    let expires_in = j["expires_in"].as_i64().expect("expires_in");
    assert!((1..=30).contains(&expires_in), "EX_AIR-040: 30 seconds at most, got {expires_in}");
    assert!(j.get("refresh_token").is_none() && j.get("id_token").is_none(), "{j}");
    let token = j["access_token"].as_str().expect("access_token");
    assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'), "base64url without padding");
    let xml = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).expect("base64url");
    String::from_utf8(xml).expect("UTF-8 XML")
}

/// `xmlsec1 --verify` of a VIHF against the demo DMP CA; the pysaml2 view of it.
fn verify_vihf(gw: &Gateway, xml: &str) -> Value {
    let file = temp_file("vihf.xml", xml);
    let ca = gw.data_dir.join("dmp-org-ca.pem");
    let out = std::process::Command::new(xmlsec1())
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(&ca)
        .arg("--id-attr:ID")
        .arg("urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
        .arg(&file)
        .output()
        .expect("running xmlsec1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("OK"), "xmlsec1 verifies the VIHF: {stderr}\n{xml}");
    let tampered = temp_file("tampered.xml", &xml.replacen(INS, "185057512345673", 1));
    let bad = std::process::Command::new(xmlsec1())
        .args(["--verify", "--trusted-pem"])
        .arg(&ca)
        .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
        .arg(&tampered)
        .output()
        .expect("running xmlsec1");
    assert!(!bad.status.success(), "a VIHF naming another patient no longer verifies");
    let out = std::process::Command::new(sandbox_python())
        .arg(sandbox_dir().join("check_vihf.py"))
        .arg(&file)
        .arg("--ca")
        .arg(&ca)
        .output()
        .expect("running check_vihf.py");
    assert!(out.status.success(), "pysaml2 loads the VIHF: {}", String::from_utf8_lossy(&out.stderr));
    remove_temp(&file);
    remove_temp(&tampered);
    serde_json::from_slice(&out.stdout).expect("check_vihf.py prints JSON")
}

fn attribute<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    v["attributes"][name].as_array().unwrap_or_else(|| panic!("attribute {name} in {v:#}"))
}

#[tokio::test]
async fn a_card_login_at_the_dpi_becomes_a_vihf_that_xmlsec1_and_pysaml2_accept() {
    let gw = Gateway::start(&[]).await;
    let discovery = gw.http().get(gw.url("/.well-known/openid-configuration")).send().await.unwrap();
    let discovery: Value = discovery.json().await.unwrap();
    assert!(discovery["grant_types_supported"].as_array().unwrap().iter().any(|g| g == TOKEN_EXCHANGE), "{discovery}");
    assert!(gw.demo["dmp"]["seal_ca_pem"].as_str().is_some_and(|p| p.contains("BEGIN CERTIFICATE")), "demo.json dmp");
    assert_eq!(gw.demo["dmp"]["token_exchange"]["client_id"], "demo-dpi");

    let t = card_token(&gw).await;
    let xml = vihf_of(&gw, &t.access).await;
    let v = verify_vihf(&gw, &xml);
    assert_eq!(v["signature"], "verified");
    assert_eq!(v["name_id"], "810100000011", "NameID = the médecin's idNat");
    let issuer = v["issuer"].as_str().unwrap();
    assert!(
        issuer.starts_with("CN=CHU DE DEMONSTRATION - CACHET VIHF,") && issuer.contains("OU=1760000018"),
        "{issuer}"
    );
    assert_eq!(v["authn_context"][0]["class_ref"], SMARTCARD_PKI, "a card: SmartcardPKI");
    assert_eq!(v["authn_context"][0]["decl"], "CONF_EXI_PGSSIS", "EX_AIR-050");
    let roles = attribute(&v, "urn:oasis:names:tc:xacml:2.0:subject:role");
    assert_eq!(roles[0]["code"], "10", "profession médecin (TRE_G15) from the directory: {roles:?}");
    let resource = attribute(&v, "urn:oasis:names:tc:xacml:2.0:resource:resource-id");
    assert_eq!(resource[0], format!("{INS}^^^&1.2.250.1.213.1.4.10&ISO^NH").as_str(), "the patient's INS");
    assert_eq!(attribute(&v, "urn:oasis:names:tc:xspa:1.0:subject:subject-id")[0], "Durand Paul");
    assert_eq!(attribute(&v, "Identifiant_Structure")[0], "1760000018");
    assert_eq!(attribute(&v, "Authentification_Mode")[0], "INDIRECTE_RENFORCEE");

    // EX_AIR-070: the issuance is traced, the patient named by a hash only.
    let id = v["id"].as_str().unwrap();
    let line = gw.audit_line(|l| l["kind"] == "vihf_issued" && l["object"] == id).await;
    assert_eq!(line["client_id"], "demo-dpi");
    assert_eq!(line["method"], "cps");
    let reason = line["reason"].as_str().unwrap();
    assert!(reason.contains("idnat 810100000011") && reason.contains("patient INS hmac-sha256:"), "{reason}");
    assert!(!reason.contains(INS), "the INS itself is not in the trail: {reason}");
    gw.audit_line(|l| l["kind"] == "policy_decision" && l["object"] == "dmp-entitled-professional").await;

    // Single use: each exchange is a new VIHF.
    let again = vihf_of(&gw, &t.access).await;
    assert_ne!(xml, again);
}

#[tokio::test]
async fn a_fido2_login_at_the_dpi_becomes_a_vihf_too() {
    // A hardware key: its attestation chains to a configured root, so its logins prove `hwk`.
    let pki = AttestationPki::new("dmp", VIRTUAL_AAGUID);
    let gw = Gateway::start(&[
        ("VIGIE_WEBAUTHN__ATTESTATION", "required"),
        ("VIGIE_WEBAUTHN__ATTESTATION_CA_FILES", &pki.env()),
    ])
    .await;
    let (mut b, _, _, _) = logged_in(&gw, "demo-app", &["demo.interne"]).await;
    let mut key = pki.key("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé DMP").await;
    let mut kb = gw.browser();
    let a = Authz::new(&gw, "demo-dpi");
    let code = key_login(&mut kb, &a, &mut key).await;
    let t = redeem(&gw, &a, &code).await;
    let xml = vihf_of(&gw, &t.access).await;
    let v = verify_vihf(&gw, &xml);
    assert_eq!(v["name_id"], "810100000029");
    assert_eq!(v["signature"], "verified");
    assert_eq!(attribute(&v, "urn:oasis:names:tc:xacml:2.0:subject:role")[0]["code"], "10");
    assert_eq!(v["authn_context"][0]["class_ref"], "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract");
    assert_eq!(attribute(&v, "urn:oasis:names:tc:xspa:1.0:subject:subject-id")[0], "Bernard Léa");
    let line = gw.audit_line(|l| l["kind"] == "vihf_issued" && l["object"] == v["id"]).await;
    assert_eq!(line["method"], "fido2");
}

/// Issue 12: a key registered without verified attestation (the demo's `attestation = "none"`, or
/// any key registered before attestation was verified) may be software: it is no MIE of the RIE.
/// The DPI, a sensitive client, refuses its login (and offers what would do); and where the
/// establishment lets every login into the DPI, the DMP still refuses its token.
#[tokio::test]
async fn a_key_without_verified_attestation_reaches_neither_the_dpi_nor_the_dmp() {
    let gw = Gateway::start(&[]).await;
    let (mut b, _, _, _) = logged_in(&gw, "demo-app", &["demo.interne"]).await;
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé DMP").await;
    let mut kb = gw.browser();
    let refused = key_assertion(&mut kb, &Authz::new(&gw, "demo-dpi"), &mut key).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.header("location"), None, "no code for the DPI");
    assert!(
        refused.body.contains("/login/cps?flow=") && refused.body.contains("/login/fido2/options"),
        "the step-up offers the card and a hardware key: {}",
        refused.body
    );
    assert!(!refused.body.contains(r#"action="/login/password""#), "{}", refused.body);
    let line = gw.audit_line(|l| l["kind"] == "login" && l["method"] == "fido2" && l["outcome"] == "failure").await;
    assert_eq!((line["client_id"].as_str(), line["reason"].as_str()), (Some("demo-dpi"), Some("refused by policy []")));
    // The same key still opens the non-sensitive demo app from inside.
    key_login(&mut gw.browser(), &Authz::new(&gw, "demo-app"), &mut key).await;
    drop(gw);

    let policies = policies_letting_every_login_in();
    let gw = Gateway::start(&[("VIGIE_POLICY__DIR", policies.to_str().unwrap())]).await;
    let (mut b, _, _, _) = logged_in(&gw, "demo-app", &["demo.interne"]).await;
    let mut key = SoftKey::new("localhost", &gw.issuer, VIRTUAL_AAGUID);
    add_key(&mut b, &mut key, "Clé DMP").await;
    let a = Authz::new(&gw, "demo-dpi");
    let code = key_login(&mut gw.browser(), &a, &mut key).await;
    let t = redeem(&gw, &a, &code).await;
    assert_eq!(jwt_part(&t.id, 1)["amr"], serde_json::json!(["pin", "swk", "mfa"]));
    let d = dmp_refused_by_policy(&gw, &t.access, "fido2 (amr pin swk mfa)").await;
    assert!(d.contains("no policy permits it"), "{d}");
    assert!(!gw.settled_audit().await.iter().any(|l| l["kind"] == "vihf_issued"), "no VIHF issued");
    remove_temp(&policies.join("99_any_login.cedar"));
}

/// Exchanges `access` (of a `demo-dpi` login) for a VIHF and expects the policy's refusal, naming
/// `access_dmp` and how the session authenticated: its description.
async fn dmp_refused_by_policy(gw: &Gateway, access: &str, authenticated_with: &str) -> String {
    let r = exchange(gw, "demo-dpi", access, &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let j = r.json();
    assert_eq!(j["error"], "invalid_request", "RFC 8693 §2.2.2: unacceptable based on policy");
    let d = j["error_description"].as_str().unwrap_or_default().to_owned();
    assert!(d.contains("access_dmp") && d.contains(&format!("authenticated with {authenticated_with}")), "{d}");
    d
}

/// The default policy set, except that every login is allowed: an establishment whose DPI still
/// takes password + TOTP; the DMP rule (`20_dmp.cedar`) stays as shipped.
fn policies_letting_every_login_in() -> PathBuf {
    let src = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default"));
    let first = temp_file(
        "99_any_login.cedar",
        "@id(\"test-any-login\")\npermit (principal, action == Vigie::Action::\"login_to_client\", resource);\n",
    );
    let dir = first.parent().unwrap().to_owned();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".cedar") && name != "10_login.cedar" {
            std::fs::copy(e.path(), dir.join(name)).unwrap();
        }
    }
    dir
}

#[tokio::test]
async fn a_password_totp_session_is_refused_the_dmp_by_policy_and_it_is_audited() {
    let policies = policies_letting_every_login_in();
    let closed = free_port();
    let gw = gateway_with_relay(closed, &[("VIGIE_POLICY__DIR", policies.to_str().unwrap())]).await;
    let (_, _, _, t) = logged_in(&gw, "demo-dpi", &["demo.medecin"]).await;
    let id = jwt_part(&t.id, 1);
    assert_eq!(
        (&id["idnat"], &id["amr"]),
        (&Value::from("810100000011"), &serde_json::json!(["pwd", "otp", "mfa"])),
        "the médecin, with password + TOTP: {id}"
    );
    let d = dmp_refused_by_policy(&gw, &t.access, "password_totp (amr pwd otp mfa)").await;
    assert!(d.contains("cps") && d.contains("fido2"), "and what would do: {d}");
    gw.audit_line(|l| l["kind"] == "policy_decision" && l["outcome"] == "failure" && l["client_id"] == "demo-dpi")
        .await;
    let refused = gw
        .audit_line(|l| l["kind"] == "refused" && l["method"] == TOKEN_EXCHANGE && l["client_id"] == "demo-dpi")
        .await;
    assert!(refused["reason"].as_str().unwrap().contains("access_dmp"), "{refused}");
    assert!(!gw.settled_audit().await.iter().any(|l| l["kind"] == "vihf_issued"), "no VIHF issued");

    // The relay asks the same policy, before any DMP call.
    let r = relay_td02(&gw, &t.access, "application/soap+xml; charset=utf-8").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.json()["detail"].as_str().unwrap().contains("access_dmp"), "{}", r.body);
    assert!(!gw.settled_audit().await.iter().any(|l| l["kind"] == "dmp_call"), "no DMP call");
    remove_temp(&policies.join("99_any_login.cedar"));
}

#[tokio::test]
async fn exchange_errors_name_what_is_wrong() {
    let gw = Gateway::start(&[]).await;
    let mut b = gw.browser_with_demo_card("demo.medecin");
    let dpi = Authz::new(&gw, "demo-dpi");
    let code = b.sign_in_with_card(&dpi).await;
    let t = redeem(&gw, &dpi, &code).await;
    let check = |r: Resp, error: &str, words: &[&str]| {
        assert_eq!(r.status, 400, "{}", r.body);
        let j = r.json();
        assert_eq!(j["error"], error, "{j}");
        let d = j["error_description"].as_str().unwrap_or_default().to_owned();
        for w in words {
            assert!(d.contains(w), "{w:?} in {d:?}");
        }
    };
    let access = t.access.as_str();
    check(
        exchange(&gw, "demo-dpi", access, &[("requested_token_type", "urn:ietf:params:oauth:token-type:jwt")]).await,
        "invalid_request",
        &["requested_token_type", "token-type:jwt", SAML2],
    );
    check(
        exchange(&gw, "demo-dpi", &t.id, &[("subject_token_type", "urn:ietf:params:oauth:token-type:id_token")]).await,
        "invalid_request",
        &["subject_token_type", "id_token"],
    );
    check(
        exchange(&gw, "demo-dpi", access, &[("patient_ins", "")]).await,
        "invalid_request",
        &["patient_ins is missing"],
    );
    check(
        exchange(&gw, "demo-dpi", access, &[("patient_ins", "207058575627096")]).await,
        "invalid_request",
        &["patient_ins", "key"],
    );
    check(
        exchange(&gw, "demo-dpi", access, &[("patient_ins", "2070585756270")]).await,
        "invalid_request",
        &["patient_ins", "15 characters"],
    );
    check(
        exchange(&gw, "demo-dpi", access, &[("purpose_of_use", "curiosite")]).await,
        "invalid_request",
        &["purpose_of_use", "curiosite"],
    );
    check(exchange(&gw, "demo-dpi", "not.a.token", &[]).await, "invalid_request", &["subject_token"]);
    check(exchange(&gw, "demo-dpi", &t.refresh, &[]).await, "invalid_request", &["subject_token"]);
    check(exchange(&gw, "demo-dpi", access, &[("audience", "urn:elsewhere")]).await, "invalid_target", &["urn:dmp"]);

    // A client not registered for the DMP, with its own token of the same session.
    let app = Authz::new(&gw, "demo-app");
    let code = b.code_without_login(&app).await;
    let app_tokens = redeem(&gw, &app, &code).await;
    check(exchange(&gw, "demo-app", &app_tokens.access, &[]).await, "unauthorized_client", &["dmp = true"]);
    // The DPI cannot use another client's token.
    check(exchange(&gw, "demo-dpi", &app_tokens.access, &[]).await, "invalid_request", &["another client"]);
    // A public client never exchanges.
    let spa = exchange(&gw, "demo-spa", access, &[]).await;
    check(spa, "unauthorized_client", &["public client"]);

    // No DMP address configured here: the relay says so.
    let r = relay_td02(&gw, access, "application/soap+xml").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.body.contains("dmp.relay.base_url"), "{}", r.body);

    // Logged out: the session has ended, its tokens no longer reach the DMP.
    let ok = exchange(&gw, "demo-dpi", access, &[]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let mut u = url::Url::parse(&gw.url("/logout")).unwrap();
    let back = gw.client("demo-dpi").post_logout_redirect_uris[0].clone();
    u.query_pairs_mut().append_pair("id_token_hint", &t.id).append_pair("post_logout_redirect_uri", &back);
    let out = b.get(u.as_str()).await;
    assert_eq!((out.status, out.location()), (303, back), "logout: {}", out.body);
    check(exchange(&gw, "demo-dpi", access, &[]).await, "invalid_request", &["subject_token"]);
}

#[tokio::test]
async fn the_relay_adds_a_vihf_and_streams_td02_and_td31_answers_with_mtom_intact() {
    let port = free_port();
    let gw = gateway_with_relay(port, &[]).await;
    let sandbox = Sandbox::start(&gw, port, &[]).await;
    let t = card_token(&gw).await;
    let relay = |service: &str, ctype: &str, body: Vec<u8>, ins: &str| {
        gw.http()
            .post(gw.url(&format!("/dmp/relay/{service}")))
            .bearer_auth(&t.access)
            .header("content-type", ctype.to_owned())
            .header("x-vigie-patient-ins", ins.to_owned())
            .body(body)
            .send()
    };

    // TD0.2, plain SOAP 1.2.
    let r = Resp::of(relay("patients", "application/soap+xml; charset=utf-8", td02().into_bytes(), INS).await.unwrap())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("application/soap+xml"));
    assert!(
        r.body.contains("PRPA_IN201306UV02") && r.body.contains(INS),
        "the TD0.2 answer for the patient: {}",
        r.body
    );
    let log = sandbox.log().await;
    let call = log.last().expect("one call");
    assert_eq!(call["accepted"], true, "{call}");
    assert_eq!(call["service"], "patients");
    assert_eq!(call["nameid"], "810100000011");
    let vihf_id = call["vihf_id"].as_str().unwrap();
    assert!(r.body.contains(vihf_id), "the stand-in echoes the VIHF it checked");
    let line = gw.audit_line(|l| l["kind"] == "dmp_call" && l["object"] == vihf_id).await;
    assert_eq!(line["outcome"], "success");
    assert_eq!(line["method"], "patients");
    assert_eq!(line["client_id"], "demo-dpi");
    assert!(line["subject"].as_str().is_some_and(|s| !s.is_empty()), "who called: {line}");
    assert!(line["reason"].as_str().unwrap().contains(TD02), "{line}");
    gw.audit_line(|l| l["kind"] == "vihf_issued" && l["object"] == vihf_id).await;

    // TD3.1 in MTOM, with a binary attachment: it reaches the DMP byte for byte, and the answer's
    // attachment comes back byte for byte.
    let mut doc = vec![0u8; 300_000];
    aws_lc_rs::rand::fill(&mut doc).unwrap();
    let env = envelope(
        TD31,
        r#"<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:doc0@vigie.test"/></query:AdhocQueryRequest>"#,
    );
    let (ctype, body) = mtom(&env, &[&doc]);
    let r = relay("registry", &ctype, body, INS).await.unwrap();
    assert_eq!(r.status(), 200);
    let answer_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(answer_type.starts_with("multipart/related"), "an MTOM answer: {answer_type}");
    let bytes = r.bytes().await.unwrap();
    let call = sandbox.log().await.last().cloned().unwrap();
    assert_eq!(call["accepted"], true, "{call}");
    assert_eq!(call["action"], TD31);
    assert_eq!(call["mtom"], true);
    assert_eq!(call["attachments"][0]["sha256"], sha256_hex(&doc), "the attachment arrived intact");
    assert_eq!(call["attachments"][0]["size"], doc.len());
    let text = String::from_utf8_lossy(&bytes);
    // IHE ITI TF-2a §3.18.4.1.3: the response's action, and an ebRIM AdhocQueryResponse with success.
    assert!(text.contains(">urn:ihe:iti:2007:RegistryStoredQueryResponse</"), "{text:.2000}");
    assert!(
        text.contains("AdhocQueryResponse")
            && text.contains(r#"status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success""#),
        "{text:.2000}"
    );
    let want =
        text.split("ReplyAttachment").nth(1).and_then(|s| s.split("sha256=\"").nth(1)).map(|s| s[..64].to_owned());
    let want = want.expect("the stand-in names its reply attachment's hash");
    let boundary = answer_type.split("boundary=").nth(1).unwrap().split(';').next().unwrap().trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    let parts: Vec<&[u8]> = split_bytes(&bytes, delimiter.as_bytes());
    let attachment = parts.iter().filter_map(|p| find(p, b"\r\n\r\n").map(|i| &p[i + 4..])).nth(1).expect("a 2nd part");
    assert_eq!(sha256_hex(attachment), want, "the answer's attachment came back intact");

    // The patient the call asks for is the one the VIHF names: the same goes through...
    let td02_for = |ins: &str| {
        envelope(
            TD02,
            &format!(
                r#"<PRPA_IN201307UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><controlActProcess><queryByParameter><parameterList><livingSubjectId><value root="1.2.250.1.213.1.4.10" extension="{ins}"/></livingSubjectId></parameterList></queryByParameter></controlActProcess></PRPA_IN201307UV02>"#
            ),
        )
    };
    let r = Resp::of(relay("patients", "application/soap+xml", td02_for(INS).into_bytes(), INS).await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ...another is refused before any VIHF is made, and the refusal is audited without the INS.
    let nir = "1800175123456";
    let other = format!("{nir}{:02}", vigie_dmp::nir_key(nir).unwrap());
    let r =
        Resp::of(relay("patients", "application/soap+xml", td02_for(&other).into_bytes(), INS).await.unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["title"], "Patient mismatch", "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains(&other), "{}", r.body);
    let line = gw
        .audit_line(|l| l["kind"] == "refused" && l["reason"].as_str().is_some_and(|r| r.contains("names patient")))
        .await;
    assert!(!line.to_string().contains(&other) && !line.to_string().contains(INS), "no INS in the trail: {line}");
    // The trail is written in order: a VIHF made for this call would be on a line before its
    // refusal, with its request id.
    let request_id = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(line["request_id"], request_id, "{line}");
    assert!(
        !gw.settled_audit().await.iter().any(|l| l["kind"] == "vihf_issued" && l["request_id"] == request_id),
        "no VIHF for it"
    );

    // Refusals before the DMP: no INS, a bad INS, not SOAP, an unknown service.
    let r = Resp::of(relay("patients", "application/soap+xml", td02().into_bytes(), "123").await.unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("X-Vigie-Patient-INS"), "{}", r.body);
    let r = Resp::of(relay("patients", "text/xml", td02().into_bytes(), INS).await.unwrap()).await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = Resp::of(relay("elsewhere", "application/soap+xml", td02().into_bytes(), INS).await.unwrap()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let no_token = gw.http().post(gw.url("/dmp/relay/patients")).body(td02()).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    // A DMP refusal comes back as the DMP's SOAP fault, audited as a failure.
    let wrong_action =
        Resp::of(relay("registry", "application/soap+xml", td02().into_bytes(), INS).await.unwrap()).await;
    assert_eq!(wrong_action.status, 500, "{}", wrong_action.body);
    let why = format!("WS-Addressing Action {TD02} is not served by registry (expects {TD31})");
    assert!(wrong_action.body.contains(&why), "the DMP's own fault, passed on: {}", wrong_action.body);
    gw.audit_line(|l| l["kind"] == "dmp_call" && l["outcome"] == "failure").await;
}

/// A TD0.2 (patient search) posted to the relay with this access token and content type.
async fn relay_td02(gw: &Gateway, access: &str, content_type: &str) -> Resp {
    let r = gw
        .http()
        .post(gw.url("/dmp/relay/patients"))
        .bearer_auth(access)
        .header("content-type", content_type)
        .header("x-vigie-patient-ins", INS)
        .body(td02())
        .send()
        .await
        .unwrap();
    Resp::of(r).await
}

/// The Unix second of the first XML attribute `name` (an `xs:dateTime`) in `xml`.
fn xml_time(xml: &str, name: &str) -> i64 {
    let value = xml.split(&format!("{name}=\"")).nth(1).and_then(|v| v.split('"').next());
    let value = value.unwrap_or_else(|| panic!("{name} in {xml}"));
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{name} {value:?}: {e}"))
        .unix_timestamp()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, delimiter) {
        out.push(&hay[..i]);
        hay = &hay[i + delimiter.len()..];
    }
    out.push(hay);
    out
}

#[tokio::test]
async fn the_dmp_refuses_a_replayed_vihf_and_an_expired_one() {
    let port = free_port();
    let gw = gateway_with_relay(port, &[("VIGIE_DMP__VIHF__VALIDITY_SECS", "2")]).await;
    let sandbox = Sandbox::start(&gw, port, &["--skew", "1"]).await;
    let t = card_token(&gw).await;

    let vihf = vihf_of(&gw, &t.access).await;
    let first = sandbox.post("patients", "application/soap+xml", secured(&td02(), &vihf)).await;
    assert_eq!(first.status, 200, "a fresh VIHF is accepted: {}", first.body);
    let replay = sandbox.post("patients", "application/soap+xml", secured(&td02(), &vihf)).await;
    assert_eq!(replay.status, 500, "{}", replay.body);
    assert!(replay.body.contains("VIHF replayed"), "single use (EX_AIR-040): {}", replay.body);

    let late = vihf_of(&gw, &t.access).await;
    let issued = xml_time(&late, "IssueInstant");
    let conditions = &late[late.find("Conditions ").expect("a Conditions element")..];
    let not_on_or_after = conditions.split("NotOnOrAfter=\"").nth(1).and_then(|v| v.split('"').next()).unwrap();
    let not_after = xml_time(conditions, "NotOnOrAfter");
    assert_eq!(not_after - issued, 2, "`dmp.vihf.validity_secs` = 2: {late}");
    // The stand-in's clock must pass NotOnOrAfter and its 1 s skew: it can only be asked once
    // (a VIHF it accepts is spent), so there is nothing to poll.
    let wait = (not_after + 2 - now()).max(0) as u64;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let expired = sandbox.post("patients", "application/soap+xml", secured(&td02(), &late)).await;
    assert_eq!(expired.status, 500, "{}", expired.body);
    let why = format!("VIHF expired: NotOnOrAfter {not_on_or_after} has passed");
    assert!(expired.body.contains(&why), "{why}: {}", expired.body);
    let log = sandbox.log().await;
    assert_eq!(log.iter().filter(|c| c["accepted"] == true).count(), 1, "{log:#?}");
}

#[tokio::test]
async fn an_unreachable_dmp_answers_503_problem_and_is_audited() {
    let closed = free_port();
    let gw = gateway_with_relay(closed, &[]).await;
    let t = card_token(&gw).await;
    let r = relay_td02(&gw, &t.access, "application/soap+xml; charset=utf-8").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        (r.json()["title"].as_str(), r.json()["detail"].as_str()),
        (Some("DMP unavailable"), Some("the DMP is unreachable at the moment; try again later")),
        "{}",
        r.body
    );
    let line = gw.audit_line(|l| l["kind"] == "dmp_call" && l["outcome"] == "failure").await;
    assert!(line["object"].as_str().is_some_and(|id| id.starts_with('_')), "the VIHF id: {line}");
    let reason = line["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("the DMP is unreachable: "), "the transport's cause, in the trail only: {line}");
}

fn check_config(toml: &str) -> String {
    let path = temp_file("dmp.toml", toml);
    let out = std::process::Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("running vigie check-config");
    remove_temp(&path);
    assert!(!out.status.success(), "a bad [dmp] fails check-config");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const BASE_CONFIG: &str = r#"
issuer = "https://vigie.chu.example"
[directory]
url = "sqlite:///tmp/vigie-dmp-check-config.db"
[keys]
file = "/nonexistent/keys.json"
[[clients]]
client_id = "spa"
auth_method = "none"
redirect_uris = ["https://spa.chu.example/cb"]
dmp = true
"#;

#[test]
fn check_config_names_each_bad_dmp_key_on_its_own_line() {
    let stderr = check_config(&format!(
        r#"{BASE_CONFIG}
[dmp]
enabled = true
colour = "blue"
[dmp.seal]
cert_file = "/nonexistent/seal.pem"
key_file = "/nonexistent/seal.key"
[dmp.vihf]
structure_id = "1760000018"
lps_id = "LPS"
lps_homologation = "H"
validity_secs = 0
[dmp.relay]
base_url = "http://dmp.example/si-dmp-server/v2/services/"
client_cert_file = "/nonexistent/auth.pem"
timeout_ms = 0
deadline_ms = 0
max_answer_bytes = 10
services = ["../admin"]
"#
    ));
    for key in [
        "dmp.colour",
        "clients[0].dmp",
        "dmp.seal.cert_file",
        "dmp.seal.key_file",
        "dmp.vihf.validity_secs",
        "dmp.relay.base_url",
        "dmp.relay.client_cert_file",
        "dmp.relay.client_key_file",
        "dmp.relay.timeout_ms",
        "dmp.relay.deadline_ms",
        "dmp.relay.max_answer_bytes",
        "dmp.relay.services[0]",
    ] {
        let lines = stderr.lines().filter(|l| l.contains(&format!("`{key}`:"))).count();
        assert_eq!(lines, 1, "one line names `{key}`:\n{stderr}");
    }

    // A seal given twice; VIHF settings the DMP needs left empty; a password never printed.
    let stderr = check_config(&format!(
        r#"{BASE_CONFIG}
[dmp]
enabled = true
[dmp.seal]
cert_file = "/nonexistent/seal.pem"
key_file = "/nonexistent/seal.key"
pkcs12_file = "/nonexistent/seal.p12"
pkcs12_password = "hunter2-secret"
"#
    ));
    assert!(stderr.contains("`dmp.seal`: give `cert_file` and `key_file`, or `pkcs12_file`, not both"), "{stderr}");
    assert!(stderr.lines().any(|l| l.contains("`dmp.vihf.structure_id`")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never shown: {stderr}");
}

/// Issue 12 (red-team review): the relay's own refusals and the DMP's failures, end to end. A
/// patient hidden from the cross-check by the XML encoding gets no VIHF; a call the relay cannot
/// send (a quote in its action) is the caller's fault: 400, and not counted against the DMP's
/// breaker; a DMP slower than `dmp.relay.deadline_ms` is a 504, an answer over
/// `dmp.relay.max_answer_bytes` a 502; a DMP answering 5xx without a SOAP fault counts against
/// the breaker, which then answers for it.
#[tokio::test]
async fn the_relay_refuses_hidden_patients_and_its_own_refusals_do_not_trip_the_dmp_breaker() {
    let port = free_port();
    let gw = gateway_with_relay(
        port,
        &[
            ("VIGIE_DMP__RELAY__DEADLINE_MS", "1500"),
            ("VIGIE_DMP__RELAY__MAX_ANSWER_BYTES", "65536"),
            ("VIGIE_HEALTH__PROBE_INTERVAL_MS", "600000"),
        ],
    )
    .await;
    let sandbox = Sandbox::start(&gw, port, &[]).await;
    let t = card_token(&gw).await;
    let relay = |service: &str, ctype: &str, body: String| {
        gw.http()
            .post(gw.url(&format!("/dmp/relay/{service}")))
            .bearer_auth(&t.access)
            .header("content-type", ctype.to_owned())
            .header("x-vigie-patient-ins", INS)
            .body(body)
            .send()
    };
    let sent_before = sandbox.log().await.len();
    let mut refused_calls = Vec::new();

    // Another patient's CX value, its `^^^&` split by a comment, or half in CDATA: an XML reader
    // (the DMP's) reads the other patient.
    let nir = "1800175123456";
    let other = format!("{nir}{:02}", vigie_dmp::nir_key(nir).unwrap());
    for value in [
        format!("'{other}^^<!---->^&amp;1.2.250.1.213.1.4.10&amp;ISO'"),
        format!("'{other}^^^&amp;1.2.250<![CDATA[.1.213.1.4.10&ISO']]>"),
    ] {
        let body = envelope(
            TD31,
            &format!(
                r#"<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"><rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList><rim:Value>{value}</rim:Value></rim:ValueList></rim:Slot></rim:AdhocQuery></query:AdhocQueryRequest>"#
            ),
        );
        let r = Resp::of(relay("registry", "application/soap+xml", body).await.unwrap()).await;
        assert_eq!(r.status, 400, "{value}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.json()["title"], "Patient mismatch", "{}", r.body);
        assert!(r.json()["detail"].as_str().unwrap().contains(&other), "{}", r.body);
        refused_calls.push(r.headers["x-request-id"].to_str().unwrap().to_owned());
    }
    // A content type's action that is not the envelope's: which would the DMP run?
    let r = Resp::of(relay("patients", r#"application/soap+xml; action="urn:other""#, td02()).await.unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains("differ"), "{}", r.body);
    refused_calls.push(r.headers["x-request-id"].to_str().unwrap().to_owned());
    assert_eq!(sandbox.log().await.len(), sent_before, "nothing sent to the DMP");

    // An action that cannot go into a content-type parameter, in the content type or in the
    // envelope: the caller's fault, refused before any VIHF, however often.
    let quoted = envelope("urn:ihe:iti:2007:Registry\"StoredQuery", "<q/>");
    for _ in 0..4 {
        let r = Resp::of(relay("patients", r#"application/soap+xml; action="urn:a\"b""#, td02()).await.unwrap()).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(r.json()["detail"].as_str().unwrap().contains("action"), "{}", r.body);
        refused_calls.push(r.headers["x-request-id"].to_str().unwrap().to_owned());
        let r = Resp::of(relay("registry", "application/soap+xml", quoted.clone()).await.unwrap()).await;
        assert_eq!(r.status, 400, "{}", r.body);
        refused_calls.push(r.headers["x-request-id"].to_str().unwrap().to_owned());
    }
    assert_eq!(sandbox.log().await.len(), sent_before, "nothing sent to the DMP");
    let r = Resp::of(relay("patients", "application/soap+xml", td02()).await.unwrap()).await;
    assert_eq!(r.status, 200, "the DMP's breaker is still closed: {}", r.body);
    // This call's VIHF is on a line after those the refused calls would have written.
    let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    gw.audit_line(|l| l["kind"] == "vihf_issued" && l["request_id"] == id.as_str()).await;
    let vihfs: Vec<Value> = gw
        .settled_audit()
        .await
        .into_iter()
        .filter(|l| l["kind"] == "vihf_issued" && refused_calls.iter().any(|id| l["request_id"] == id.as_str()))
        .collect();
    assert!(vihfs.is_empty(), "no VIHF made for a call refused before the DMP: {vihfs:?}");

    // A fault larger than the answers the relay takes: 502, the DMP did answer (not counted).
    sandbox.misbehave(serde_json::json!({ "fault_bytes": 200_000 })).await;
    let r = Resp::of(relay("patients", "application/soap+xml", td02()).await.unwrap()).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.json()["detail"].as_str().unwrap().contains("65536"), "{}", r.body);
    gw.audit_line(|l| l["kind"] == "dmp_call" && l["reason"].as_str().is_some_and(|r| r.contains("larger than 65536")))
        .await;

    // Slower than the deadline: 504, counted (1). The stand-in holds this call for a minute (past
    // the end of the test, so that its late entry cannot reach the log read below).
    sandbox.misbehave(serde_json::json!({ "delay_ms": 60_000 })).await;
    let started = std::time::Instant::now();
    let r = Resp::of(relay("patients", "application/soap+xml", td02()).await.unwrap()).await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        r.json()["detail"],
        "the DMP did not answer in the time allowed (`dmp.relay.deadline_ms`); try again later",
        "{}",
        r.body
    );
    // 10 times the 1.5 s deadline, and far below the minute the stand-in holds the call: answered
    // at the deadline, not when the DMP answered.
    assert!(started.elapsed() < Duration::from_secs(15), "answered at the deadline: {:?}", started.elapsed());

    // 5xx without a SOAP fault (a failing front end): passed on, and counted (2, 3)...
    sandbox.misbehave(serde_json::json!({ "status": 503 })).await;
    for _ in 0..2 {
        let r = Resp::of(relay("patients", "application/soap+xml", td02()).await.unwrap()).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("text/html"));
    }
    // ...so the breaker is open and answers for the DMP, which is not called.
    sandbox.misbehave(serde_json::json!({})).await;
    let r = Resp::of(relay("patients", "application/soap+xml", td02()).await.unwrap()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["title"], "DMP unavailable", "{}", r.body);
    assert!(sandbox.log().await.is_empty(), "the open breaker kept the call from the DMP");
}
