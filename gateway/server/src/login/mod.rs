//! Login: the flow started by the authorization endpoint, the page that offers the means of
//! identification the request allows, and one verifier per MIE.
pub mod pages;
pub mod password_totp;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vigie_core::AssuranceLevel;
use vigie_core::store::StoreExt;

use crate::app::State;
use crate::oidc::AuthRequest;

/// Binds a login flow to the browser that started it: a login form posted from elsewhere
/// (login CSRF) lacks this cookie.
pub const BROWSER_COOKIE: &str = "__Host-vigie-browser";

/// A login in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginFlow {
    pub request: AuthRequest,
    /// CSRF token of the login form.
    pub csrf: String,
    /// SHA-256 of the browser-binding cookie.
    pub browser: String,
}

pub fn flow_key(id: &str) -> String {
    format!("flow:{id}")
}

/// The strongest level a login method of this build reaches. Password + TOTP is two
/// factors, not phishing-resistant; cards and FIDO2 keys come with the MIE issue.
pub fn best_level() -> AssuranceLevel {
    AssuranceLevel::TwoFactor
}

#[derive(Deserialize)]
pub struct PageQuery {
    flow: Option<String>,
}

/// `GET /login?flow=…`: the login page of a flow.
pub async fn page(req: HttpRequest, state: State, q: web::Query<PageQuery>) -> HttpResponse {
    let Some(id) = q.flow.as_deref().filter(|f| f.len() <= 64) else {
        return pages::error_page(
            &req,
            StatusCode::BAD_REQUEST,
            "the login page needs a flow: start from the application",
        );
    };
    match state.store.get_json::<LoginFlow>(&flow_key(id)).await {
        Ok(Some(flow)) => {
            let client_name = state
                .client(&flow.request.client_id)
                .map(|c| c.config.name.clone().unwrap_or_else(|| c.config.client_id.clone()))
                .unwrap_or_default();
            pages::login_form(
                &req,
                &pages::FormView {
                    flow_id: id,
                    csrf: &flow.csrf,
                    client_name: &client_name,
                    username: flow.request.login_hint.as_deref().unwrap_or_default(),
                    error: None,
                    redirect_origin: &flow.request.redirect_uri,
                    ui_locales: flow.request.ui_locales.as_deref(),
                },
            )
        }
        Ok(None) => pages::flow_expired(&req),
        Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
