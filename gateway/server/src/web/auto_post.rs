//! The page that posts a message to another site by an auto-submitted form: the OIDC Form Post
//! Response Mode's (to the client's redirect_uri) and the SAML HTTP-POST binding's (to an SP).
use actix_web::HttpResponse;
use actix_web::http::header;

use crate::web::http::esc;

/// What the page may do besides its form and the https redirects that follow it ([`page`]):
/// nothing more (the OIDC authorization response, the SAML SSO Response), or also post back to
/// Vigie (the SAML Single Logout pages: browsers apply `form-action` to the redirects that follow
/// the post, and an SP answers a LogoutRequest by sending the browser back to Vigie's `/saml/slo`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Then {
    OnlyThere,
    BackToVigie,
}

/// An HTML form with `fields` as hidden inputs, posted to `to` (a URL Vigie checked: a client's
/// registered redirect_uri, an endpoint of an SP's metadata) by the page's own script; a browser
/// without JavaScript gets the button. A fresh nonce per page: the CSP runs only that script (no
/// inline handler), posts to `to`'s origin (and follows its redirects to https URLs, below),
/// loads nothing and cannot be framed. `no-store`: the fields carry a code or a signed message,
/// which no cache keeps.
pub fn page(to: &str, fields: &[(&str, &str)], then: Then) -> HttpResponse {
    let nonce = crate::secrets::random_token(16);
    let back = if then == Then::BackToVigie { " 'self'" } else { "" };
    // `https:` too: Chromium checks `form-action` on every redirect that follows the post, not
    // only on the form's own target (CSP3 §6.4.2 "form-action": the check runs on the navigation
    // request, and again for each redirect), and the endpoint often answers with a redirect to
    // another origin: an OIDC client's callback sends the person on to its application, an SP's
    // ACS to the application the RelayState names or the one it brokers for (a Keycloak or
    // SimpleSAMLphp in front of the apps), Vigie's `/saml/slo` on to the next SP or the OIDC
    // client's post_logout_redirect_uri. With the endpoint's origin alone the person was left on
    // this page (tests/browser/saml.test.mjs, tests/browser/form-post.test.mjs). The form itself
    // still goes only to `to` (Vigie writes it; every value escaped); `https:` keeps other
    // schemes, and plain http other than the endpoint's own loopback origin, out.
    let form_action = match url::Url::parse(to) {
        // An opaque origin ("null": a data: or javascript: endpoint) matches no source, and is
        // not https: such a form is never posted.
        Ok(u) => format!("{}{back} https:", u.origin().ascii_serialization()),
        // Never the case for a URL that passed the configuration's checks; the safe side if it were.
        Err(_) => "'none'".into(),
    };
    let inputs: String = fields
        .iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{}" value="{}">"#, esc(name), esc(value)))
        .collect();
    let body = format!(
        r#"<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Vigie</title></head><body><form method="post" action="{}">{inputs}<noscript><p>JavaScript est désactivé : cliquez pour continuer. / JavaScript is off: click to continue.</p></noscript><button type="submit">Continuer / Continue</button></form><script nonce="{nonce}">document.forms[0].submit()</script></body></html>"#,
        esc(to),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'"
            ),
        ))
        .body(body)
}
