//! The SAML 2.0 IdP, Web Browser SSO profile (saml-profiles §4.1): metadata, AuthnRequests by
//! HTTP-Redirect and HTTP-POST, the login through `/authorize` as the SP's OIDC client (so SSO,
//! step-up, the policy and the audit are the OIDC code's), and a signed Assertion posted back.
//! Built only with the cargo feature `saml` (samael + libxmlsec1; docs/saml.md).
pub mod config;
#[cfg(feature = "saml")]
mod context;
pub mod decode;
#[cfg(feature = "saml")]
pub mod demo;
#[cfg(feature = "saml")]
pub(crate) mod flow;
#[cfg(feature = "saml")]
pub mod idp;
#[cfg(feature = "saml")]
mod metadata;
#[cfg(feature = "saml")]
pub mod response;
#[cfg(all(test, feature = "saml"))]
mod tests;

pub use config::SamlConfig;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::web::http::problem;

/// The SAML routes: always mounted, so that `/saml/*` says why it does not answer.
pub fn routes(cfg: &mut web::ServiceConfig) {
    #[cfg(feature = "saml")]
    cfg.route("/saml/metadata", web::get().to(flow::metadata))
        .route("/saml/sso", web::get().to(flow::sso_redirect))
        .route("/saml/sso", web::post().to(flow::sso_post))
        .route("/saml/callback", web::get().to(flow::callback));
    #[cfg(not(feature = "saml"))]
    cfg.route("/saml/{tail:.*}", web::route().to(not_built));
}

/// `/saml/*` of a `vigie` built without the feature.
#[cfg(not(feature = "saml"))]
async fn not_built() -> HttpResponse {
    problem(
        StatusCode::NOT_FOUND,
        "SAML is not built in",
        "this Vigie was built without the SAML 2.0 IdP (cargo feature `saml` of vigie-gateway): see docs/saml.md",
    )
}

/// `/saml/*` when `[[saml.sps]]` names no SP.
#[cfg(feature = "saml")]
fn not_configured() -> HttpResponse {
    problem(
        StatusCode::NOT_FOUND,
        "SAML is not set up",
        "this Vigie has no SAML IdP configured (`[saml]`: key_file, cert_file, `[[saml.sps]]`): see docs/saml.md",
    )
}
