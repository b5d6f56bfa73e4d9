//! FIDO2 ceremonies a browser of the harness goes through with a software key
//! (`fido2/softkey.rs`): registering it on `/account/keys`, and logging in with it from the
//! login page of an authorization request.
use crate::softkey::SoftKey;

use super::{Authz, Browser, Resp};

/// Registers `key` as `name` from an `/account/keys` page the browser may add keys on (a recent
/// two-factor login or an enrolment code): the answer to the credential.
pub async fn register(b: &mut Browser<'_>, key: &mut SoftKey, name: &str) -> Resp {
    let page = b.get("/account/keys").await;
    assert!(page.body.contains(r#"id="register-key""#), "the page offers to add a key: {}", page.body);
    let csrf = page.hidden("csrf").expect("csrf");
    let opts = b.post_form("/account/keys/options", &[("csrf", &csrf), ("name", name)]).await;
    assert_eq!(opts.status, 200, "creation options: {}", opts.body);
    let credential = key.register(&opts.json());
    b.post_form("/account/keys", &[("csrf", &csrf), ("credential", &credential.to_string())]).await
}

/// Registers `key` as `name`, which must succeed.
pub async fn add_key(b: &mut Browser<'_>, key: &mut SoftKey, name: &str) {
    let added = register(b, key, name).await;
    assert_eq!(added.status, 303, "the key is registered: {}", added.body);
    assert_eq!(added.location(), "/account/keys?done=added");
}

/// Authorization request → login page; returns the page (flow and CSRF in its forms).
pub async fn login_page(b: &mut Browser<'_>, a: &Authz) -> Resp {
    let r = b.authorize(a).await;
    assert_eq!(r.status, 303, "authorize redirects to the login page: {}", r.body);
    let page = b.get(&r.location()).await;
    assert_eq!(page.status, 200, "login page: {}", page.body);
    page
}

/// From a login page: options, the key's assertion, submit. Returns the answer.
pub async fn assert_from(b: &mut Browser<'_>, page: &Resp, key: &mut SoftKey) -> Resp {
    let flow = page.hidden("flow").expect("flow");
    let csrf = page.hidden("csrf").expect("csrf");
    let opts = b.post_form("/login/fido2/options", &[("flow", &flow), ("csrf", &csrf)]).await;
    assert_eq!(opts.status, 200, "options: {}", opts.body);
    let assertion = key.assert(&opts.json());
    b.post_form("/login/fido2", &[("flow", &flow), ("csrf", &csrf), ("credential", &assertion.to_string())]).await
}

/// The whole key login from the authorization request: the answer to the assertion.
pub async fn key_assertion(b: &mut Browser<'_>, a: &Authz, key: &mut SoftKey) -> Resp {
    let page = login_page(b, a).await;
    assert_from(b, &page, key).await
}

/// Login page → key assertion → the client's code.
pub async fn key_login(b: &mut Browser<'_>, a: &Authz, key: &mut SoftKey) -> String {
    let done = key_assertion(b, a, key).await;
    assert_eq!(done.status, 303, "the key logs in: {}", done.body);
    done.redirect_params().get("code").cloned().unwrap_or_else(|| panic!("a code: {}", done.location()))
}
