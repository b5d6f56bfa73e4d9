//! FIDO2 / WebAuthn login (webauthn-rs): the login page's section, the ceremony endpoints.
use super::pages::Lang;

/// The login page's FIDO2 section for a flow. Empty until the WebAuthn endpoints land.
pub fn page_section(_lang: Lang, _flow_id: &str, _csrf: &str) -> String {
    String::new()
}
