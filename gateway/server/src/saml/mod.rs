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
pub mod encrypt;
#[cfg(feature = "saml")]
mod fetch;
#[cfg(feature = "saml")]
pub(crate) mod flow;
#[cfg(feature = "saml")]
pub mod idp;
#[cfg(feature = "saml")]
mod metadata;
#[cfg(feature = "saml")]
pub mod response;
#[cfg(feature = "saml")]
mod signed;
#[cfg(feature = "saml")]
mod slo;
pub mod slo_message;
#[cfg(feature = "saml")]
mod slo_send;
#[cfg(all(test, feature = "saml"))]
mod tests;

pub use config::SamlConfig;

/// The gateway's SAML IdP, a part of its state (`Part<SamlIdp>`): loaded from `[saml]` when the
/// state is built, so two gateways in one process (tests, benches) each have their own.
#[derive(Default)]
pub struct SamlIdp {
    /// Swapped whole when an SP's metadata is fetched again (saml/fetch.rs).
    #[cfg(feature = "saml")]
    idp: Option<std::sync::Arc<std::sync::RwLock<std::sync::Arc<idp::Idp>>>>,
}

impl SamlIdp {
    /// The IdP of a validated configuration; none when `[saml]` is not set up or not built in.
    /// SPs registered by `metadata_url` are fetched now and kept fresh by a task that lives as
    /// long as the IdP (saml/fetch.rs); one that cannot be fetched now joins when it can.
    pub async fn load(config: &crate::config::Config) -> anyhow::Result<SamlIdp> {
        #[cfg(feature = "saml")]
        if config.saml.enabled() {
            let mut idp = idp::Idp::load(&config.saml, &config.issuer).map_err(|problems| {
                let said: Vec<String> = problems.into_iter().map(|(k, m)| format!("{k}: {m}")).collect();
                anyhow::anyhow!("[saml]: {}", said.join("; "))
            })?;
            let mut keep = Vec::new();
            for sp in config.saml.sps.iter().filter(|sp| sp.metadata_url.is_some()) {
                let fetched = match fetch::client(sp) {
                    Ok(client) => fetch::fetch(&client, sp).await,
                    Err(e) => Err(e),
                };
                let adopted = fetched.and_then(|(loaded, validity)| {
                    let entity_id = loaded.entity_id.clone();
                    idp = idp.with_fetched(loaded, sp.entity_id.as_deref())?;
                    Ok((validity, entity_id))
                });
                let (validity, pinned) = match adopted {
                    Ok((validity, entity_id)) => (Some(validity), Some(entity_id)),
                    Err(e) => {
                        fetch::failed(sp, &e);
                        (None, None)
                    }
                };
                keep.push((sp.clone(), validity, pinned));
            }
            let shared = std::sync::Arc::new(std::sync::RwLock::new(std::sync::Arc::new(idp)));
            for (sp, validity, pinned) in keep {
                tokio::spawn(fetch::keep(std::sync::Arc::downgrade(&shared), sp, validity, pinned));
            }
            return Ok(SamlIdp { idp: Some(shared) });
        }
        let _ = config;
        Ok(SamlIdp::default())
    }

    /// The IdP, when set up.
    #[cfg(feature = "saml")]
    pub fn get(&self) -> Option<std::sync::Arc<idp::Idp>> {
        self.idp.as_ref().map(|shared| shared.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::web::http::problem;

/// The SAML routes: always mounted, so that `/saml/*` says why it does not answer.
pub fn routes(cfg: &mut web::ServiceConfig) {
    #[cfg(feature = "saml")]
    cfg.route("/saml/metadata", web::get().to(flow::metadata))
        .route("/saml/sso", web::get().to(flow::sso_redirect))
        .route("/saml/sso", web::post().to(flow::sso_post))
        .route("/saml/callback", web::get().to(flow::callback))
        .route("/saml/slo", web::get().to(slo::redirect))
        .route("/saml/slo", web::post().to(slo::post));
    #[cfg(not(feature = "saml"))]
    cfg.route("/saml/{tail:.*}", web::route().to(not_built));
}

/// The end of Vigie's own logout of the session `sid`: the SAML SPs that took part are told
/// through the browser (Single Logout, saml/slo.rs) before `done`.
pub async fn after_logout(req: &actix_web::HttpRequest, sid: &str, done: HttpResponse) -> HttpResponse {
    #[cfg(feature = "saml")]
    return slo::after_logout(req, sid, done).await;
    #[cfg(not(feature = "saml"))]
    {
        let _ = (req, sid);
        done
    }
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
