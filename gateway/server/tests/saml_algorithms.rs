//! The algorithms of the SPs' signatures (saml/signed.rs, docs/saml.md "Signature algorithms")
//! against pysaml2 configured with its own `SIG_RSA_SHA1` / `DIGEST_SHA1` (tests/saml/sp.py's
//! `sign_alg`, `digest_alg`): a signed AuthnRequest posted with SHA-1 as the signature's hash, as
//! a digest, or both is refused, and the SP hears why (a `RequestDenied` Response whose
//! StatusMessage names the algorithm); the same SP signing with SHA-256 is accepted; a
//! LogoutRequest posted with SHA-1 is refused and the session lives on; SHA-1 by HTTP-Redirect
//! (`SigAlg`) stays refused.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::saml::{Sp, estate, fresh, sp_json, sso, to_the_sp};

const LAB: &str = "https://lab.chu.example/saml";
const RH: &str = "https://rh.chu.example/saml";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// The XML of a base64 `SAMLRequest`.
fn xml_of(b64: &str) -> String {
    String::from_utf8(STANDARD.decode(b64).expect("base64")).expect("UTF-8")
}

#[tokio::test]
async fn pysaml2_signing_with_sha1_is_refused_naming_the_algorithm_and_sha256_accepted() {
    let (gw, lab, rh, dir) = estate("algorithms").await;
    let idp_md = dir.join("idp-md.xml");
    // The SP `base` (its entityID, key and caches) signing with pysaml2's `sign` and `digest`.
    let signing = |base: &str, entity: &str, sign: &str, digest: &str| {
        let more = json!({"sign_alg": sign, "digest_alg": digest, "cache": dir.join(format!("{base}-cache"))});
        Sp::with(&dir, &format!("{base}-{sign}-{digest}"), entity, Some(&idp_md), more)
    };
    let mut b = gw.browser();
    // A session with lab, for the LogoutRequest below.
    let (lab_code, lab_index) = sso(&lab, &mut b, false).await;

    // rh must sign its requests. Posted with SHA-1 anywhere in its signature: refused, and rh is
    // answered at its ACS with the reason.
    for (sign, digest, named) in [("sha1", "sha1", RSA_SHA1), ("sha1", "sha256", RSA_SHA1), ("sha256", "sha1", SHA1)] {
        let what = format!("signed {sign}, digest {digest}");
        let req = signing("rh", RH, sign, digest).json(&["post", "--sign"]);
        let b64 = req["SAMLRequest"].as_str().expect("SAMLRequest");
        assert!(xml_of(b64).contains(&format!(r#"Algorithm="{named}""#)), "{what}: pysaml2 used {named}");
        fresh(&mut b);
        let r = b.post_form("/saml/sso", &[("SAMLRequest", b64), ("RelayState", "rh-page")]).await;
        assert_eq!(r.status, 200, "{what}: refused, the SP answered: {}", r.body);
        assert!(r.body.contains(&format!(r#"action="{RH}/acs""#)), "{what}: to rh's ACS: {}", r.body);
        assert_eq!(r.hidden("RelayState").as_deref(), Some("rh-page"), "{what}");
        let response = r.hidden("SAMLResponse").unwrap_or_else(|| panic!("{what}: a SAMLResponse in {}", r.body));
        let err = rh.parse(req["id"].as_str().expect("id"), &response).expect_err("no assertion");
        assert!(err.contains("RequestDenied") && err.contains(named), "{what}: pysaml2 reads why: {err}");
        gw.audit_line(|l| {
            l["reason"].as_str().is_some_and(|r| {
                r.starts_with("saml: the AuthnRequest's signature uses") && r.contains(named) && r.contains("SHA-256")
            })
        })
        .await;
    }

    // The same SP signing with SHA-256: accepted, and pysaml2 takes Vigie's Response.
    let req = rh.json(&["post", "--sign"]);
    let b64 = req["SAMLRequest"].as_str().expect("SAMLRequest");
    let xml = xml_of(b64);
    assert!(xml.contains("xmldsig-more#rsa-sha256") && xml.contains("xmlenc#sha256") && !xml.contains(SHA1), "{xml}");
    fresh(&mut b);
    let r = b.post_form("/saml/sso", &[("SAMLRequest", b64), ("RelayState", "rh-page")]).await;
    assert_eq!(r.status, 303, "a SHA-256 signature is accepted: {}", r.body);
    let (response, _) = to_the_sp(&mut b, &r.location()).await;
    rh.parse(req["id"].as_str().expect("id"), &response).expect("pysaml2 accepts rh's Response");

    // By HTTP-Redirect, SHA-1 as SigAlg was already refused: still so.
    let req = signing("rh", RH, "sha1", "sha1").json(&["redirect", "--sign"]);
    fresh(&mut b);
    let r = b.get(req["url"].as_str().expect("url")).await;
    assert_eq!(r.status, 400, "SigAlg rsa-sha1: {}", r.body);
    gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.contains("SigAlg") && r.contains(RSA_SHA1))).await;

    // A LogoutRequest signed with SHA-1, posted: refused with a page that says why.
    let weak = sp_json(&signing("lab", LAB, "sha1", "sha1"), &["logout-post-raw", &lab_code, &lab_index, "--sign"], "");
    let form = &weak["form"];
    let b64 = form["fields"]["SAMLRequest"].as_str().expect("SAMLRequest");
    assert!(xml_of(b64).contains(RSA_SHA1), "pysaml2 signed the LogoutRequest with rsa-sha1");
    let action = form["action"].as_str().expect("the IdP's SingleLogoutService");
    fresh(&mut b);
    let r = b.post_form(action, &[("SAMLRequest", b64)]).await;
    assert_eq!(r.status, 400, "a SHA-1 LogoutRequest: {}", r.body);
    assert!(r.body.contains("SHA-1"), "the page says why: {}", r.body);
    gw.audit_line(|l| {
        l["reason"].as_str().is_some_and(|r| {
            r.starts_with("saml logout: the logout message's signature uses the SignatureMethod")
                && r.contains(RSA_SHA1)
        })
    })
    .await;
    // The session lived on: lab's SHA-256 LogoutRequest ends it and goes on to rh.
    let good = sp_json(&lab, &["logout-post-raw", &lab_code, &lab_index, "--sign"], "");
    fresh(&mut b);
    let b64 = good["form"]["fields"]["SAMLRequest"].as_str().expect("SAMLRequest");
    let r = b.post_form(action, &[("SAMLRequest", b64)]).await;
    assert_eq!(r.status, 303, "a SHA-256 LogoutRequest is accepted: {}", r.body);
    assert!(r.location().starts_with(&format!("{RH}/slo?SAMLRequest=")), "on to rh: {}", r.location());
    let _ = std::fs::remove_dir_all(dir);
}
