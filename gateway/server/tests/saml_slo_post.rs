//! Single Logout by HTTP-POST against pysaml2 (tests/saml/sp.py with `slo_binding = "post"`: the
//! SPs' only SingleLogoutService is HTTP-POST, and pysaml2 posts to Vigie's). SP-initiated: lab's
//! signed LogoutRequest, posted, ends the session; Vigie's signed LogoutRequest is posted to rh,
//! whose signed LogoutResponse comes back by POST; lab gets a signed LogoutResponse by POST that
//! pysaml2 verifies. IdP-initiated: Vigie's `/logout` posts a signed LogoutRequest to lab. Refused
//! on the POST path: unsigned, a signature broken by a changed ID, an XSW wrapping, a Destination
//! other than Vigie's; the same LogoutResponse posted four times at once advances the chain once.
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::*;
use crate::saml::{Sp, fresh, idp_and_sp_keys, idp_for, sp_json, sso};

const LAB: &str = "https://lab.chu.example/saml";
const RH: &str = "https://rh.chu.example/saml";

/// Posts the form `f` ({"action", "fields"}) as the browser would.
async fn submit(b: &mut Browser<'_>, f: &Value) -> Resp {
    let action = f["action"].as_str().unwrap_or_else(|| panic!("a form action in {f}"));
    let fields: Vec<(&str, &str)> = f["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("form fields in {f}"))
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().expect("a field's value")))
        .collect();
    fresh(b);
    b.post_form(action, &fields).await
}

/// Posts the form `f` `n` times at once, each on its own connection.
async fn at_once(gw: &Gateway, f: &Value, n: usize) -> Vec<Resp> {
    let action = f["action"].as_str().unwrap_or_else(|| panic!("a form action in {f}")).to_owned();
    let fields: Vec<(String, String)> = f["fields"]
        .as_object()
        .unwrap_or_else(|| panic!("form fields in {f}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a field's value").to_owned()))
        .collect();
    let posts: Vec<_> = (0..n)
        .map(|_| {
            let (http, action, fields) = (gw.http(), action.clone(), fields.clone());
            tokio::spawn(async move { Resp::of(http.post(action).form(&fields).send().await.expect("a POST")).await })
        })
        .collect();
    let mut all = Vec::new();
    for p in posts {
        all.push(p.await.expect("the POST task"));
    }
    all
}

/// Vigie's auto-submitting page, as {"action", "fields"} for sp.py, after checking that its CSP
/// lets it post to `origin` (back to Vigie and on to https redirects) and run only its own script.
fn vigie_form(r: &Resp, param: &str, origin: &str) -> Value {
    assert_eq!(r.status, 200, "an auto-submitting form: {}", r.body);
    let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("a CSP on the form page"));
    assert!(csp.contains(&format!("form-action {origin} 'self' https:;")), "{csp}");
    assert!(csp.contains("script-src 'nonce-") && csp.contains("default-src 'none'"), "{csp}");
    let start = r.body.find(r#"action=""#).expect("a form action") + r#"action=""#.len();
    let action = &r.body[start..start + r.body[start..].find('"').expect("the action's end")];
    let mut fields = json!({ param: r.hidden(param).unwrap_or_else(|| panic!("a {param} in {}", r.body)) });
    if let Some(relay) = r.hidden("RelayState") {
        fields["RelayState"] = Value::from(relay);
    }
    json!({"action": action.replace("&amp;", "&"), "fields": fields})
}

#[tokio::test]
async fn pysaml2_single_logs_out_by_http_post_both_ways_and_posted_forgeries_are_refused() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("saml-slo-post-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    idp_and_sp_keys(&dir);
    let post = json!({"slo_binding": "post"});
    for (name, entity) in [("lab", LAB), ("rh", RH)] {
        let (ok, md, err) = Sp::with(&dir, name, entity, None, post.clone()).run(&["metadata"], "");
        assert!(ok, "SP metadata: {err}");
        assert!(
            md.contains("SingleLogoutService") && !md.contains("bindings:HTTP-Redirect"),
            "the SP lists only an HTTP-POST SingleLogoutService: {md}"
        );
        std::fs::write(dir.join(format!("{name}-md.xml")), md).expect("SP metadata file");
    }
    let d = |f: &str| dir.join(f).display().to_string();
    let sps = format!(
        r#"{{metadata="{}", client_id="lab", nameid="persistent"}}, {{metadata="{}", client_id="rh", nameid="transient"}}"#,
        d("lab-md.xml"),
        d("rh-md.xml"),
    );
    let gw = idp_for(&dir, &sps).await;
    let idp_md = dir.join("idp-md.xml");
    let lab = Sp::with(&dir, "lab", LAB, Some(&idp_md), post.clone());
    let rh = Sp::with(&dir, "rh", RH, Some(&idp_md), post.clone());

    let mut b = gw.browser();
    let (lab_code, lab_index) = sso(&lab, &mut b, false).await;
    let (rh_code, rh_index) = sso(&rh, &mut b, false).await;
    assert_eq!(lab_index, rh_index, "one SSO session");

    // Refused on the POST path, the session living on (the logout below ends it): unsigned
    // (saml-profiles §4.4.4.1), a signature that no longer covers the message, a signed request
    // wrapped in a forged one, a session Vigie did not give lab, an Issuer that is no SP of Vigie.
    let stranger = Sp::with(&dir, "stranger", "https://stranger.example/saml", Some(&idp_md), post.clone());
    for (what, sp, args, reason) in [
        ("an unsigned posted LogoutRequest", &lab, vec!["logout-post-raw", &lab_code, &lab_index], "is not signed"),
        (
            "a posted LogoutRequest changed after signing",
            &lab,
            vec!["logout-post-raw", &lab_code, &lab_index, "--sign", "--tamper"],
            "signature does not verify",
        ),
        ("an XSW-wrapped posted LogoutRequest", &lab, vec!["logout-post-xsw", &lab_code, &lab_index], "is not signed"),
        (
            "a posted LogoutRequest for an unknown session",
            &lab,
            vec!["logout-post-raw", &lab_code, "no-such-session", "--sign"],
            "name no session Vigie gave this SP",
        ),
        (
            "a signed posted LogoutRequest naming no Destination",
            &lab,
            vec!["logout-post-raw", &lab_code, &lab_index, "--sign", "--named-dest", "none"],
            "Destination is not Vigie's SingleLogoutService",
        ),
        (
            "a signed posted LogoutRequest for another IdP's SingleLogoutService",
            &lab,
            vec!["logout-post-raw", &lab_code, &lab_index, "--sign", "--named-dest", "https://idp.other.example/slo"],
            "Destination is not Vigie's SingleLogoutService",
        ),
        (
            "a posted LogoutRequest from an unregistered Issuer",
            &stranger,
            vec!["logout-post-raw", &lab_code, &lab_index, "--sign"],
            "Issuer is not a registered SP",
        ),
    ] {
        let forged = sp_json(sp, &args, "");
        let r = submit(&mut b, &forged["form"]).await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        // Polled: the trail is written off the request's path.
        gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.starts_with("saml logout: ") && r.contains(reason)))
            .await;
    }

    // SP-initiated: lab's signed LogoutRequest by POST ends the session; Vigie posts to rh.
    let logout = sp_json(&lab, &["logout", &lab_code], "");
    assert_eq!(logout["binding"], "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", "{logout}");
    let r = submit(&mut b, &logout["form"]).await;
    let to_rh = vigie_form(&r, "SAMLRequest", "https://rh.chu.example");
    assert_eq!(to_rh["action"], format!("{RH}/slo"), "{to_rh}");
    // rh (pysaml2, the enveloped signature required and checked by xmlsec1) logs out and answers
    // with its own signed LogoutResponse, by POST to Vigie.
    let answered = sp_json(&rh, &["logout-request-post", &rh_code], &to_rh["fields"].to_string());
    assert_eq!(answered["logged_out"], true, "{answered}");
    assert!(answered["form"]["action"].as_str().is_some_and(|a| a.ends_with("/saml/slo")), "{answered}");
    assert!(answered["form"]["fields"]["SAMLResponse"].is_string(), "{answered}");
    // The same LogoutResponse posted four times at once (a double submit, or a replay racing the
    // browser): one takes the step and goes on to lab, the others find it taken.
    let mut all = at_once(&gw, &answered["form"], 4).await;
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "one advances the chain: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 3, "the others are refused: {statuses:?}");
    let r = all.remove(statuses.iter().position(|s| *s == 200).expect("the one"));
    let to_lab = vigie_form(&r, "SAMLResponse", "https://lab.chu.example");
    assert_eq!(to_lab["action"], format!("{LAB}/slo"), "{to_lab}");
    let done = sp_json(&lab, &["logout-response-post"], &to_lab["fields"].to_string());
    assert_eq!(done["status"], "urn:oasis:names:tc:SAML:2.0:status:Success", "{done}");
    assert!(done["second"].is_null(), "rh answered: no PartialLogout: {done}");
    let line = gw.audit_line(|l| l["reason"].as_str().is_some_and(|r| r.starts_with("saml: single logout from"))).await;
    assert_eq!(line["client_id"], "lab", "{line}");
    assert!(line["reason"].as_str().is_some_and(|r| r.contains(": 1 SP(s) told, 0 not")), "{line}");

    // IdP-initiated: a new session with lab; Vigie's /logout posts a signed LogoutRequest to lab.
    let (code, _) = sso(&lab, &mut b, false).await;
    fresh(&mut b);
    let r = b.get("/logout").await;
    let confirm = r.hidden("confirm").unwrap_or_else(|| panic!("the logout confirmation: {} {}", r.status, r.body));
    let r = b.post_form("/logout", &[("confirm", confirm.as_str())]).await;
    let to_lab = vigie_form(&r, "SAMLRequest", "https://lab.chu.example");
    assert!(
        r.headers.get_all("set-cookie").iter().any(|c| c.to_str().is_ok_and(|c| c.contains("Max-Age=0"))),
        "the session cookie is cleared with the first page"
    );
    let answered = sp_json(&lab, &["logout-request-post", &code], &to_lab["fields"].to_string());
    assert_eq!(answered["logged_out"], true, "{answered}");
    let r = submit(&mut b, &answered["form"]).await;
    assert_eq!(r.status, 200, "then Vigie's logged-out page: {}", r.body);
    assert!(r.hidden("SAMLRequest").is_none() && r.hidden("SAMLResponse").is_none(), "{}", r.body);
    let _ = std::fs::remove_dir_all(dir);
}
