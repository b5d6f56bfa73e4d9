//! The SAML 2.0 IdP against a real SP written by others: pip `pysaml2` (tests/saml/sp.py) makes
//! the AuthnRequests and validates Vigie's Responses with its own checks (the signature through
//! the `xmlsec1` CLI). A login with password + TOTP through the real `vigie`, SSO and pairwise
//! NameIDs, HTTP-Redirect and HTTP-POST, and the refusals: an ACS URL not in the SP's metadata,
//! an unsigned or badly signed request from an SP that must sign, an altered Response, one
//! presented for another request, and a wrapped (XSW) Response; `RequestedAuthnContext` as a
//! step-up (and `NoAuthnContext` when nothing reaches it), `ForceAuthn`, and a card login;
//! Single Logout started by one SP (pysaml2's `global_logout`) and by Vigie's `/logout`.
use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use serde_json::Value;

const LAB: &str = "https://lab.chu.example/saml";
const RH: &str = "https://rh.chu.example/saml";

/// `tests/saml`: its venv (pip `pysaml2`), made when missing.
fn sp_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/saml");
    let setup = Command::new(root.join("setup")).status().expect("running tests/saml/setup");
    assert!(setup.success(), "tests/saml/setup failed (python3 with venv, and pip access, are needed)");
    assert!(
        Command::new("xmlsec1").arg("--version").output().is_ok_and(|o| o.status.success()),
        "the `xmlsec1` CLI is needed (apt-get install xmlsec1): pysaml2 verifies signatures through it"
    );
    root
}

/// One pysaml2 SP: its configuration file and the way to run `sp.py` on it.
pub(crate) struct Sp {
    conf: PathBuf,
    root: PathBuf,
}

impl Sp {
    pub(crate) fn new(dir: &Path, name: &str, entity_id: &str, idp_metadata: Option<&Path>) -> Sp {
        Sp::with(dir, name, entity_id, idp_metadata, serde_json::json!({}))
    }

    /// An SP with more settings for sp.py (`enc_key`/`enc_cert`…) merged into its configuration.
    pub(crate) fn with(dir: &Path, name: &str, entity_id: &str, idp_metadata: Option<&Path>, more: Value) -> Sp {
        let conf = dir.join(format!("{name}.json"));
        let mut c = serde_json::json!({
            "entity_id": entity_id,
            "acs": format!("{entity_id}/acs"),
            "slo": format!("{entity_id}/slo"),
            "cache": dir.join(format!("{name}-cache")),
            "key": dir.join("sp.key"),
            "cert": dir.join("sp.crt"),
        });
        if let Some(md) = idp_metadata {
            c["idp_metadata"] = Value::from(md.display().to_string());
        }
        for (k, v) in more.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        std::fs::write(&conf, c.to_string()).expect("SP conf");
        Sp { conf, root: sp_dir() }
    }

    /// `sp.py CONF args…`, with `stdin`: (success, stdout, stderr).
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut child = Command::new(self.root.join(".venv/bin/python"))
            .arg(self.root.join("sp.py"))
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running tests/saml/sp.py");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("writing to sp.py");
        let out = child.wait_with_output().expect("sp.py ends");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let (ok, out, err) = self.run(args, "");
        assert!(ok, "sp.py {args:?}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("sp.py {args:?} printed {out:?}: {e}"))
    }

    /// pysaml2's verdict on a Response to the request `id`: what it read, or why it refused.
    pub(crate) fn parse(&self, id: &str, response_b64: &str) -> Result<Value, String> {
        let (ok, out, err) = self.run(&["parse", id], response_b64);
        // pysaml2's errors quote the whole document: the first lines say why.
        let err: String = err.chars().take(1500).collect();
        if ok { Ok(serde_json::from_str(&out).expect("JSON from sp.py parse")) } else { Err(err) }
    }
}

pub(crate) fn openssl_pair(dir: &Path, name: &str, cn: &str) {
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .stderr(Stdio::null())
        .status()
        .expect("the `openssl` CLI (apt-get install openssl)");
    assert!(ok.success(), "openssl req");
}

/// The gateway with two SPs: `lab` (persistent NameID, attributes) and `rh`, which must sign its
/// requests (transient NameID), and the pysaml2 SPs that play them.
pub(crate) async fn estate(name: &str) -> (Gateway, Sp, Sp, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("saml-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    idp_and_sp_keys(&dir);
    for (name, entity) in [("lab", LAB), ("rh", RH)] {
        let (ok, md, err) = Sp::new(&dir, name, entity, None).run(&["metadata"], "");
        assert!(ok, "SP metadata: {err}");
        std::fs::write(dir.join(format!("{name}-md.xml")), md).expect("SP metadata file");
    }
    let d = |f: &str| dir.join(f).display().to_string();
    let sps = format!(
        r#"{{metadata="{}", client_id="lab", nameid="persistent", attributes=["given_name", "family_name", "matricule", "idnat", "mie"]}}, {{metadata="{}", client_id="rh", nameid="transient", require_signed_requests=true}}"#,
        d("lab-md.xml"),
        d("rh-md.xml"),
    );
    let gw = idp_for(&dir, &sps).await;
    let lab = Sp::new(&dir, "lab", LAB, Some(&dir.join("idp-md.xml")));
    let rh = Sp::new(&dir, "rh", RH, Some(&dir.join("idp-md.xml")));
    (gw, lab, rh, dir)
}

/// `dir`'s `idp.key`/`idp.crt` (the IdP's), `sp.key`/`sp.crt` (pysaml2's) and `pairwise`.
pub(crate) fn idp_and_sp_keys(dir: &Path) {
    openssl_pair(dir, "idp", "vigie-saml");
    openssl_pair(dir, "sp", "pysaml2-sp");
    std::fs::write(dir.join("pairwise"), random(48)).expect("pairwise secret");
}

/// The gateway as an IdP for the clients `lab` and `rh` and the SPs `sps` (the inside of
/// `[[saml.sps]]` as inline tables), with `dir`'s `idp.key`, `idp.crt` and `pairwise`; its
/// metadata written to `dir/idp-md.xml` for the SPs.
pub(crate) async fn idp_for(dir: &Path, sps: &str) -> Gateway {
    let port = free_port();
    let callback = format!("https://localhost:{port}/saml/callback");
    let clients = format!(
        r#"[{{client_id="lab", auth_method="none", redirect_uris=["{callback}"]}}, {{client_id="rh", auth_method="none", redirect_uris=["{callback}"]}}]"#
    );
    let d = |f: &str| dir.join(f).display().to_string();
    let saml = format!(
        r#"{{key_file="{}", cert_file="{}", pairwise_secret_file="{}", sps=[{sps}]}}"#,
        d("idp.key"),
        d("idp.crt"),
        d("pairwise"),
    );
    let gw = Gateway::start_on(port, &[("VIGIE_CLIENTS", &clients), ("VIGIE_SAML", &saml)]).await;
    let md = gw.http().get(gw.url("/saml/metadata")).send().await.expect("metadata");
    assert_eq!(md.status(), 200);
    let md = md.text().await.expect("metadata text");
    assert!(md.contains(&format!(r#"entityID="{}/saml/metadata""#, gw.issuer)), "{md}");
    std::fs::write(dir.join("idp-md.xml"), md).expect("IdP metadata file");
    gw
}

/// The browser at `url` (an SSO request), through the login page if there is no session, up to
/// the form that posts the Response: its `SAMLResponse` and `RelayState`.
pub(crate) async fn to_the_sp(b: &mut Browser<'_>, url: &str) -> (String, Option<String>) {
    let callback = to_the_callback(b, url).await;
    let page = b.get(&callback).await;
    assert_eq!(page.status, 200, "the callback posts the Response: {}", page.body);
    let response = page.hidden("SAMLResponse").expect("a SAMLResponse in the form");
    (response, page.hidden("RelayState"))
}

/// The browser at `url` (an SSO request), through the login page if there is no session, up to
/// the callback's URL, not followed.
pub(crate) async fn to_the_callback(b: &mut Browser<'_>, url: &str) -> String {
    let (r, next) = b.follow(url, |u| u.contains("/login?flow=") || u.contains("/saml/callback")).await;
    let next =
        next.unwrap_or_else(|| panic!("the SSO request leads to the login or the callback: {} {}", r.status, r.body));
    let callback = if next.contains("/login?flow=") {
        let location = next.split_once(&b.gw.issuer).map(|(_, p)| p.to_owned()).expect("a gateway URL");
        let (user, code) = b.gw.any_user_totp(&["demo.medecin"]).await;
        let done = b.submit_login(&location, &user.username, &user.password, &code).await;
        assert_eq!(done.status, 303, "login: {}", done.body);
        done.location()
    } else {
        next
    };
    assert!(callback.contains("/saml/callback?"), "back to the SAML callback: {callback}");
    callback
}

/// A new connection for the next request: the pooled one may have been closed by the gateway's
/// keep-alive timeout while pysaml2 worked (seconds), and hyper does not retry on it.
pub(crate) fn fresh(b: &mut Browser<'_>) {
    b.http = b.gw.http();
}

/// A first login to `lab` over HTTP-Redirect (password + TOTP): what pysaml2 read, the Response
/// and the RelayState that came back.
async fn first_login(lab: &Sp, b: &mut Browser<'_>) -> (Value, String, Option<String>) {
    let req = lab.json(&["redirect"]);
    let (response, relay) = to_the_sp(b, req["url"].as_str().expect("url")).await;
    let id = req["id"].as_str().expect("id");
    let read = lab.parse(id, &response).unwrap_or_else(|e| panic!("pysaml2 refused Vigie's Response: {e}"));
    assert_eq!(read["authn_context"][0], "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken");
    (read, response, relay)
}

#[tokio::test]
async fn pysaml2_logs_in_with_password_totp_and_refuses_forgeries() {
    let (gw, lab, rh, dir) = estate("forgeries").await;
    let mut b = gw.browser();

    // HTTP-Redirect, unsigned (lab need not sign): login, then pysaml2 checks the Response.
    let (read, response, relay) = first_login(&lab, &mut b).await;
    assert_eq!(relay.as_deref(), Some("lab-page"), "RelayState comes back as sent");
    assert_eq!(read["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
    let attrs = &read["attributes"];
    assert!(attrs["urn:vigie:attribute:given_name"][0].as_str().is_some_and(|v| !v.is_empty()), "{read}");
    assert_eq!(attrs["urn:vigie:attribute:mie"][0], "password_totp", "{read}");
    let xml = String::from_utf8(STANDARD.decode(&response).expect("base64")).expect("UTF-8");
    assert!(xml.contains("http://www.w3.org/2001/04/xmlenc#sha256"), "SHA-256 digest: {xml}");
    assert!(!xml.contains("xmldsig#sha1"), "no SHA-1 anywhere: {xml}");
    let persistent = read["name_id"].as_str().expect("name_id").to_owned();
    let subject = gw
        .audit_line(|l| {
            l["client_id"] == "lab" && l["reason"].as_str().is_some_and(|r| r.starts_with("saml: assertion"))
        })
        .await["subject"]
        .as_str()
        .expect("the audit line names the identity")
        .to_owned();
    assert!(!persistent.contains(&subject) && !xml.contains(&subject), "the NameID is not the internal id {subject}");

    // HTTP-POST, with the session: SSO, the same persistent NameID.
    let req = lab.json(&["post"]);
    fresh(&mut b);
    let r = b
        .post_form(
            "/saml/sso",
            &[("SAMLRequest", req["SAMLRequest"].as_str().expect("req")), ("RelayState", "lab-page")],
        )
        .await;
    assert_eq!(r.status, 303, "POST binding accepted: {}", r.body);
    let (response, _) = to_the_sp(&mut b, &r.location()).await;
    let again = lab.parse(req["id"].as_str().expect("id"), &response).expect("pysaml2 accepts the SSO Response");
    assert_eq!(again["name_id"], persistent.as_str(), "persistent NameID is stable");

    // A Response presented for another request (a replay) is refused.
    assert!(lab.parse("id-of-another-request", &response).is_err(), "InResponseTo must match");

    // An altered Response (one attribute changed after signing) is refused.
    let xml = String::from_utf8(STANDARD.decode(&response).expect("base64")).expect("UTF-8");
    let altered = xml.replacen("password_totp", "cps", 1);
    assert_ne!(altered, xml);
    let err = lab.parse(req["id"].as_str().expect("id"), &STANDARD.encode(&altered)).expect_err("altered accepted");
    assert!(err.contains("refused"), "{err}");

    // XSW: a forged, unsigned Assertion wrapped in before the signed one.
    let start = xml.find("<saml2:Assertion").or_else(|| xml.find("<saml:Assertion")).or_else(|| xml.find("<Assertion"));
    let start = start.unwrap_or_else(|| panic!("an Assertion in {xml}"));
    let end_tag = ["</saml2:Assertion>", "</saml:Assertion>", "</Assertion>"]
        .into_iter()
        .find(|t| xml.contains(t))
        .expect("an Assertion end tag");
    let end = xml.find(end_tag).expect("end") + end_tag.len();
    let signed = &xml[start..end];
    let sig_start = signed.find("<ds:Signature").or_else(|| signed.find("<Signature")).expect("a signature");
    let sig_end = signed
        .find("</ds:Signature>")
        .map(|i| i + "</ds:Signature>".len())
        .or_else(|| signed.find("</Signature>").map(|i| i + "</Signature>".len()))
        .expect("signature end");
    let forged = format!("{}{}", &signed[..sig_start], &signed[sig_end..])
        .replacen(&persistent, "forged-admin", 1)
        .replacen(" ID=\"", " ID=\"forged", 1);
    let wrapped = format!("{}{forged}{}", &xml[..start], &xml[start..]);
    match lab.parse(req["id"].as_str().expect("id"), &STANDARD.encode(&wrapped)) {
        Err(e) => assert!(e.contains("refused"), "{e}"),
        Ok(read) => panic!("pysaml2 accepted a wrapped Response: {read}"),
    }

    // An AssertionConsumerServiceURL not in the SP's metadata: Vigie refuses, sends nothing.
    let evil = lab.json(&["redirect", "--acs", "https://evil.example/acs"]);
    fresh(&mut b);
    let r = b.get(evil["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!r.body.contains("evil.example"), "nothing goes to the forged ACS");

    // rh must sign: unsigned refused, signed accepted, a signed request altered refused.
    let unsigned = rh.json(&["redirect"]);
    let r = b.get(unsigned["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 400, "unsigned request from an SP that must sign: {}", r.body);
    let signed = rh.json(&["redirect", "--sign"]);
    let url = signed["url"].as_str().expect("url");
    let altered = url.replacen("RelayState=lab-page", "RelayState=other-page", 1);
    assert_ne!(altered, url, "the signed URL carries the RelayState");
    fresh(&mut b);
    let r = b.get(&altered).await;
    assert_eq!(r.status, 400, "a signed request altered: {}", r.body);
    let (response, _) = to_the_sp(&mut b, url).await;
    let read = rh.parse(signed["id"].as_str().expect("id"), &response).expect("pysaml2 accepts rh's Response");
    assert_eq!(read["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:transient");
    assert_ne!(read["name_id"], persistent.as_str());

    // IsPassive without a session: no login page, a NoPassive status that pysaml2 reads.
    let passive = lab.json(&["redirect", "--passive"]);
    let mut stranger = gw.browser();
    let (r, next) = stranger.follow(passive["url"].as_str().expect("url"), |u| u.contains("/saml/callback")).await;
    let next =
        next.unwrap_or_else(|| panic!("IsPassive goes back to the SP without a login page: {} {}", r.status, r.body));
    let page = stranger.get(&next).await;
    let response = page.hidden("SAMLResponse").expect("an error Response is posted back");
    let err = lab.parse(passive["id"].as_str().expect("id"), &response).expect_err("no assertion without a login");
    assert!(err.contains("NoPassive"), "{err}");

    // The refusals are audited with their reasons.
    // (A refusal nobody waits for is written within the writer's gather window: wait for it.)
    gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.contains("AssertionConsumerServiceURL"))).await;
    let _ = std::fs::remove_dir_all(dir);
}

pub(crate) const CARD_CLASS: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI";

/// The `AuthnInstant` pysaml2 read, as Unix seconds.
fn authn_instant(read: &Value) -> i64 {
    let at = read["authn_instant"][0].as_str().unwrap_or_else(|| panic!("an AuthnInstant in {read}"));
    chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("AuthnInstant {at:?}: {e}")).timestamp()
}

/// A request made by `lab` with `args` that a live session does not answer: the browser is
/// sent to the login page. The request and the login page's URL.
pub(crate) async fn leads_to_the_login_page(
    lab: &Sp,
    b: &mut Browser<'_>,
    args: &[&str],
    why: &str,
) -> (Value, String) {
    let req = lab.json(args);
    fresh(b);
    let (r, next) = b
        .follow(req["url"].as_str().expect("url"), |u| u.contains("/login?flow=") || u.contains("/saml/callback"))
        .await;
    let next = next.unwrap_or_else(|| panic!("{why}: {} {}", r.status, r.body));
    assert!(next.contains("/login?flow="), "{why}: {next}");
    (req, next)
}

/// A request made by `lab` with `args` answered at once with a `NoAuthnContext` status
/// (saml-core §3.2.2.2), which pysaml2 reads as such.
async fn no_authn_context(lab: &Sp, b: &mut Browser<'_>, args: &[&str]) {
    let req = lab.json(args);
    fresh(b);
    let page = b.get(req["url"].as_str().expect("url")).await;
    assert_eq!(page.status, 200, "an error Response is posted back: {}", page.body);
    let response = page.hidden("SAMLResponse").unwrap_or_else(|| panic!("a SAMLResponse: {}", page.body));
    let err = lab.parse(req["id"].as_str().expect("id"), &response).expect_err("no assertion");
    assert!(err.contains("NoAuthnContext"), "{args:?}: {err}");
}

#[tokio::test]
async fn pysaml2_steps_up_to_the_card_forces_a_login_and_logs_in_with_a_card() {
    let (gw, lab, _rh, dir) = estate("step-up").await;

    // A password + TOTP session.
    let mut b = gw.browser();
    let (read, _, _) = first_login(&lab, &mut b).await;
    let first_instant = authn_instant(&read);

    // The SP asks for the card's class (saml-core §3.3.2.2.1, exact): no SSO, the login page
    // asks for more and offers the card.
    let card_req = ["redirect", "--context", CARD_CLASS];
    let (_, next) =
        leads_to_the_login_page(&lab, &mut b, &card_req, "a TOTP session does not answer a card request").await;
    let page = b.get(&next).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("/login/cps?flow="), "the step-up page offers the card: {}", page.body);
    assert!(!page.body.contains(r#"name="totp""#), "password + TOTP does not reach the card's level: {}", page.body);

    // A class no MIE of Vigie reaches: at once a NoAuthnContext status (§3.2.2.2), no login page.
    no_authn_context(&lab, &mut b, &["redirect", "--context", "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos"]).await;
    // Nor is anything "better" than a card.
    no_authn_context(&lab, &mut b, &["redirect", "--context", CARD_CLASS, "--comparison", "better"]).await;

    // ForceAuthn (saml-core §3.4.1): a new login despite the session; AuthnInstant after the
    // request (wait for the next second so that "after" can be told from the first login).
    while crate::common::now() <= first_instant {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let asked_at = crate::common::now();
    let (forced, _) = leads_to_the_login_page(
        &lab,
        &mut b,
        &["redirect", "--force"],
        "ForceAuthn shows the login page despite the session",
    )
    .await;
    let (response, _) = to_the_sp(&mut b, forced["url"].as_str().expect("url")).await;
    let read = lab.parse(forced["id"].as_str().expect("id"), &response).expect("pysaml2 accepts the forced login");
    assert!(authn_instant(&read) >= asked_at, "AuthnInstant {} is before the request {asked_at}", authn_instant(&read));

    // A card login over SAML: the card's class, the idNat among the attributes.
    let medecin = gw.demo["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == "demo.medecin"))
        .expect("demo.medecin")
        .clone();
    let idnat = medecin["idnat"].as_str().expect("demo.medecin has an idNat").to_owned();
    let mut card = gw.browser_with_demo_card("demo.medecin");
    let req = lab.json(&["redirect", "--context", CARD_CLASS]);
    let (r, next) = card.follow(req["url"].as_str().expect("url"), |u| u.contains("/login?flow=")).await;
    let next = next.unwrap_or_else(|| panic!("to the login page: {} {}", r.status, r.body));
    let flow = next.split_once("flow=").map(|(_, f)| f.split('&').next().unwrap_or(f).to_owned()).expect("a flow");
    let done = card.get(&format!("/login/cps?flow={flow}")).await;
    assert_eq!(done.status, 303, "the card logs in: {}", done.body);
    let callback = done.location();
    assert!(callback.contains("/saml/callback?"), "back to the SAML callback: {callback}");
    let page = card.get(&callback).await;
    let response = page.hidden("SAMLResponse").unwrap_or_else(|| panic!("a SAMLResponse: {}", page.body));
    let read = lab.parse(req["id"].as_str().expect("id"), &response).expect("pysaml2 accepts the card login");
    assert_eq!(read["authn_context"][0], CARD_CLASS, "{read}");
    assert_eq!(read["attributes"]["urn:vigie:attribute:mie"][0], "cps", "{read}");
    let sent =
        read["attributes"]["urn:vigie:attribute:idnat"][0].as_str().unwrap_or_else(|| panic!("an idNat in {read}"));
    assert_eq!(sent, idnat, "the card holder's idNat: {read}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A login of `sp` (over HTTP-Redirect, signed when `sign`) with the browser's session: the
/// NameID as pysaml2 keeps it (`name_id_code`) and the SessionIndex.
pub(crate) async fn sso(sp: &Sp, b: &mut Browser<'_>, sign: bool) -> (String, String) {
    let req = sp.json(if sign { &["redirect", "--sign"][..] } else { &["redirect"][..] });
    fresh(b);
    let (response, _) = to_the_sp(b, req["url"].as_str().expect("url")).await;
    let read = sp.parse(req["id"].as_str().expect("id"), &response).unwrap_or_else(|e| panic!("pysaml2 refused: {e}"));
    let code = read["name_id_code"].as_str().expect("name_id_code").to_owned();
    let index = read["session_index"][0].as_str().unwrap_or_else(|| panic!("a SessionIndex in {read}")).to_owned();
    (code, index)
}

/// `sp.py args…` fed `stdin` (a URL Vigie redirected to), as JSON.
pub(crate) fn sp_json(sp: &Sp, args: &[&str], stdin: &str) -> Value {
    let (ok, out, err) = sp.run(args, stdin);
    assert!(ok, "sp.py {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sp.py {args:?} printed {out:?}: {e}"))
}

#[tokio::test]
async fn pysaml2_single_logs_out_every_sp_of_the_session_and_refuses_bad_requests() {
    let (gw, lab, rh, dir) = estate("slo").await;
    let md = std::fs::read_to_string(dir.join("idp-md.xml")).expect("IdP metadata");
    assert!(
        md.contains(r#"SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect""#)
            && md.contains(r#"SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST""#),
        "the metadata advertises SingleLogoutService: {md}"
    );

    // One browser, one session, two SPs.
    let mut b = gw.browser();
    let (lab_code, lab_index) = {
        let (read, _, _) = first_login(&lab, &mut b).await;
        (
            read["name_id_code"].as_str().expect("code").to_owned(),
            read["session_index"][0].as_str().expect("index").to_owned(),
        )
    };
    let (rh_code, rh_index) = sso(&rh, &mut b, true).await;
    assert_eq!(lab_index, rh_index, "one SSO session, one SessionIndex");

    // An unsigned LogoutRequest from rh, which must sign: refused, the session lives on.
    let unsigned = sp_json(&rh, &["logout-raw", &rh_code, &rh_index], "");
    fresh(&mut b);
    let r = b.get(unsigned["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 400, "unsigned LogoutRequest from an SP that must sign: {}", r.body);
    // Nor from an SP that need not sign its AuthnRequests (saml-profiles §4.4.4.1): its NameID and
    // SessionIndex, which an eavesdropper on its assertions knows, must not end the session.
    let unsigned = sp_json(&lab, &["logout-raw", &lab_code, &lab_index], "");
    fresh(&mut b);
    let r = b.get(unsigned["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 400, "unsigned LogoutRequest from an SP without require_signed_requests: {}", r.body);
    // A SessionIndex Vigie never issued: refused with a page that says so.
    let unknown = sp_json(&lab, &["logout-raw", &lab_code, "no-such-session", "--sign"], "");
    fresh(&mut b);
    let r = b.get(unknown["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("does not know this session") || r.body.contains("inconnue"), "{}", r.body);

    // lab's global_logout: Vigie ends the session and sends the browser to rh's SingleLogoutService.
    let logout = sp_json(&lab, &["logout", &lab_code], "");
    let url = logout["url"].as_str().expect("url").to_owned();
    fresh(&mut b);
    let r = b.get(&url).await;
    assert_eq!(r.status, 303, "the LogoutRequest is accepted: {}", r.body);
    let to_rh = r.location();
    assert!(to_rh.starts_with(&format!("{RH}/slo?SAMLRequest=")), "on to rh: {to_rh}");
    // rh (pysaml2's handle_logout_request, the signature checked) logs out and answers.
    let answered = sp_json(&rh, &["logout-request", &rh_code], &to_rh);
    assert_eq!(answered["logged_out"], true, "{answered}");
    let back = answered["url"].as_str().expect("rh's LogoutResponse").to_owned();
    assert!(back.contains("/saml/slo?SAMLResponse="), "{back}");
    fresh(&mut b);
    let r = b.get(&back).await;
    assert_eq!(r.status, 303, "rh's LogoutResponse is taken: {}", r.body);
    let to_lab = r.location();
    assert!(to_lab.starts_with(&format!("{LAB}/slo?SAMLResponse=")), "back to lab: {to_lab}");
    let done = sp_json(&lab, &["logout-response"], &to_lab);
    assert_eq!(done["status"], "urn:oasis:names:tc:SAML:2.0:status:Success", "{done}");
    assert!(done["second"].is_null(), "every SP answered: no PartialLogout: {done}");
    let line = gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.starts_with("saml: single logout from"))).await;
    assert_eq!(line["client_id"], "lab", "{line}");
    assert!(line["reason"].as_str().is_some_and(|r| r.contains(": 1 SP(s) told, 0 not")), "{line}");

    // The same LogoutRequest again: a replay, refused.
    fresh(&mut b);
    let r = b.get(&url).await;
    assert_eq!(r.status, 400, "a replayed LogoutRequest: {}", r.body);
    // The replay is audited (waited for: a refusal is written within the writer's gather window).
    gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.contains("already used (a replay)"))).await;
    // The session is over: the next sign-in (through /authorize as lab's OIDC client) asks for a login.
    let (_, next) = leads_to_the_login_page(&lab, &mut b, &["redirect"], "after Single Logout there is no SSO").await;
    assert!(next.contains("/login?flow="), "{next}");

    // IdP-initiated: a new session with lab, then Vigie's /logout tells lab before its last page.
    let (code, _) = sso(&lab, &mut b, false).await;
    fresh(&mut b);
    let r = b.get("/logout").await;
    let confirm = r.hidden("confirm").unwrap_or_else(|| panic!("the logout confirmation: {} {}", r.status, r.body));
    let r = b.post_form("/logout", &[("confirm", confirm.as_str())]).await;
    assert_eq!(r.status, 303, "Vigie's logout goes to lab first: {}", r.body);
    let to_lab = r.location();
    assert!(to_lab.starts_with(&format!("{LAB}/slo?SAMLRequest=")), "{to_lab}");
    let answered = sp_json(&lab, &["logout-request", &code], &to_lab);
    assert_eq!(answered["logged_out"], true, "{answered}");
    fresh(&mut b);
    let r = b.get(answered["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 200, "then Vigie's logged-out page: {}", r.body);
    let _ = std::fs::remove_dir_all(dir);
}
