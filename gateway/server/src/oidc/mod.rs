//! The OpenID Connect provider: one file per endpoint, each check beside the spec sentence
//! it enforces.
pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod fi_tiers;
pub mod grant;
pub mod introspect;
pub mod logout;
pub mod revoke;
pub mod token;
pub mod userinfo;

use serde::{Deserialize, Serialize};
use vigie_core::{AssuranceLevel, Authentication};

/// How the authorization response is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// RFC 6749 §4.1.2: query component of the redirect URI.
    Query,
    /// OAuth 2.0 Form Post Response Mode: an auto-submitted HTML form.
    FormPost,
}

/// A validated authorization request, kept in the login flow until the user has logged in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// RFC 7636 `code_challenge` (S256 only).
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Levels asked for through `acr_values` or the `claims` parameter.
    pub acr: Vec<AssuranceLevel>,
    /// The `acr` claim was requested as essential (OIDC Core §5.5.1.1).
    pub acr_essential: bool,
    pub ui_locales: Option<String>,
}

impl AuthRequest {
    /// The weakest level that satisfies the request, if it asked for one.
    pub fn required_level(&self) -> Option<AssuranceLevel> {
        self.acr.iter().min().copied()
    }

    /// Whether an authentication satisfies the requested `acr` and `max_age`.
    pub fn satisfied_by(&self, auth: &Authentication, now: i64) -> bool {
        // OIDC Core §3.1.2.1 max_age: "If the elapsed time is greater than this value, the OP
        // MUST attempt to actively re-authenticate the End-User."
        let fresh = self.max_age.is_none_or(|m| now - auth.at <= m);
        let strong = self.required_level().is_none_or(|l| auth.level >= l);
        fresh && strong
    }
}

/// What an authorization code stands for, stored under the code's hash until redeemed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub authentication: Authentication,
    pub sid: String,
    /// Every token issued from this code shares it; revoking it revokes them all.
    pub grant_id: String,
}

/// What a client is told of an internal failure (store, directory, signing): the detail is for
/// the log only (RFC 6749 §5.2 `server_error`).
pub const INTERNAL_ERROR: &str = "Vigie could not complete the request; retry later";

/// Logs an internal failure of an OAuth endpoint; the caller answers [`INTERNAL_ERROR`].
pub fn log_internal(endpoint: &str, detail: &dyn std::fmt::Display) {
    tracing::error!(endpoint, error = %detail, "internal error");
}

/// An internal failure at the introspection or revocation endpoint: `server_error` with a generic
/// description, the detail in the log.
pub fn internal_error(endpoint: &str, detail: &dyn std::fmt::Display) -> actix_web::HttpResponse {
    log_internal(endpoint, detail);
    crate::http::oauth_error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "server_error", INTERNAL_ERROR)
}

/// Store keys. Secrets (codes, tokens, cookies) appear only as their SHA-256.
pub mod keys {
    pub fn code(hash: &str) -> String {
        format!("code:{hash}")
    }
    pub fn code_used(hash: &str) -> String {
        format!("code-used:{hash}")
    }
    /// The one record of a refresh-token family.
    pub fn refresh(family: &str) -> String {
        format!("rt:{family}")
    }
    /// The hashes of a family's rotated tokens, by generation.
    pub fn refresh_spent(family: &str) -> String {
        format!("rt-spent:{family}")
    }
    /// A revoked grant, by its handle (`grant::grant_handle`).
    pub fn revoked_grant(handle: &str) -> String {
        format!("revoked-grant:{handle}")
    }
    pub fn revoked_sid(sid: &str) -> String {
        format!("revoked-sid:{sid}")
    }
    pub fn jti(client_id: &str, jti: &str) -> String {
        format!("jti:{client_id}:{jti}")
    }
    pub fn sid_clients(sid: &str) -> String {
        format!("sid-clients:{sid}")
    }
}
