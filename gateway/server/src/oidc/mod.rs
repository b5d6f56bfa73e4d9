//! The OpenID Connect provider: one file per endpoint, each check beside the spec sentence
//! it enforces.
pub mod authorize;
pub mod client_auth;
pub mod config;
pub mod discovery;
pub mod fi_tiers;
pub mod flow;
pub mod grant;
pub mod introspect;
pub mod logout;
pub mod presented;
pub mod revoke;
pub mod token;
pub mod userinfo;

use serde::{Deserialize, Serialize};
use vigie_core::{AssuranceLevel, Authentication, Mie};

use crate::config::Config;
use crate::state::{Audit, OidcState, PolicyGate, Ports, Upstreams, parts};

parts! {
    /// What the back-channel endpoints reach (token, introspection, revocation, the DMP relay):
    /// the clients to authenticate ([`client_auth::Clients`]), the token side
    /// ([`grant::Issuer`]), the policy gate a grant asks again, the DMP side, the audit trail.
    pub struct BackChannel {
        pub config: Config,
        pub oidc: OidcState,
        pub ports: Ports,
        pub policy: PolicyGate,
        pub upstreams: Upstreams,
        pub audit: Audit,
    }
}

impl BackChannel {
    pub fn clients(&self) -> client_auth::Clients<'_> {
        client_auth::Clients {
            config: &self.config,
            oidc: &self.oidc,
            store: self.ports.store.as_ref(),
            http: &self.upstreams.http,
        }
    }

    pub fn issuer(&self) -> grant::Issuer<'_> {
        grant::Issuer {
            config: &self.config,
            oidc: &self.oidc,
            ports: &self.ports,
            identities: &self.policy.identities,
        }
    }
}

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
    #[serde(flatten)]
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Levels asked for through `acr_values` or the `claims` parameter.
    pub acr: Vec<AssuranceLevel>,
    /// The values of other schemes among them (PSC's `eidas1`), in the request's order, with
    /// the level each was mapped to: the `acr` answered when the login meets one.
    #[serde(default)]
    pub foreign_acr: Vec<ForeignAcr>,
    /// The `acr` claim was requested as essential (OIDC Core §5.5.1.1).
    pub acr_essential: bool,
    pub ui_locales: Option<String>,
    /// The only MIE that answer this request, when it names them: never from an OIDC parameter
    /// (none names a MIE), only from a SAML SP's `RequestedAuthnContext` (`saml::flow::exact_mie`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_mie: Option<Vec<Mie>>,
}

/// OIDC Core §3.1.2.1 `prompt`, as far as it changes what the provider does (`consent` and
/// `select_account` do not: there is no consent page and one account per browser).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredPrompt", into = "StoredPrompt")]
pub enum Prompt {
    #[default]
    Default,
    /// `none`: "The Authorization Server MUST NOT display any authentication or consent user
    /// interface pages."
    None,
    /// `login`: "The Authorization Server SHOULD prompt the End-User for reauthentication."
    Login,
}

/// A prompt as earlier versions stored it in a login flow: two booleans, so that a flow written
/// by either version is read by the other.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct StoredPrompt {
    prompt_login: bool,
    prompt_none: bool,
}

impl From<StoredPrompt> for Prompt {
    fn from(s: StoredPrompt) -> Self {
        // `none` with any other value is refused at the authorization endpoint: never both.
        match (s.prompt_none, s.prompt_login) {
            (true, _) => Prompt::None,
            (false, true) => Prompt::Login,
            (false, false) => Prompt::Default,
        }
    }
}

impl From<Prompt> for StoredPrompt {
    fn from(p: Prompt) -> Self {
        StoredPrompt { prompt_login: p == Prompt::Login, prompt_none: p == Prompt::None }
    }
}

/// An `acr` value of another scheme that a request named, and the Vigie level that meets it
/// (`login.acr_values_map`, `clients[].acr_values_map`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForeignAcr {
    pub value: String,
    pub level: AssuranceLevel,
}

impl AuthRequest {
    /// The `acr` claim to answer instead of Vigie's level: the first value of another scheme
    /// the request named that this authentication meets. OIDC Core §3.1.2.1 acr_values: "The
    /// Authentication Context Class satisfied by the authentication performed is returned as
    /// the acr Claim Value"; a client that named its own scheme's value (PSC's Keycloak accepts
    /// only `eidas1` back, reference/psc.md §1) understands that one, not Vigie's URNs.
    pub fn foreign_acr_met(&self, auth: &Authentication) -> Option<String> {
        self.foreign_acr.iter().find(|f| auth.level >= f.level).map(|f| f.value.clone())
    }

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
        fresh && strong && self.answered_by(auth.mie)
    }

    /// Whether a login with this MIE may answer the request (every MIE unless it names some).
    pub fn answered_by(&self, mie: Mie) -> bool {
        self.only_mie.as_ref().is_none_or(|only| only.contains(&mie))
    }

    /// The MIE of `offered` that may answer the request.
    pub fn narrow(&self, mut offered: Vec<Mie>) -> Vec<Mie> {
        offered.retain(|m| self.answered_by(*m));
        offered
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
    /// The ID token's `acr` when it is not the level's (see [`AuthRequest::foreign_acr_met`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// What a client is told of an internal failure (store, directory, signing): the detail is for
/// the log only (RFC 6749 §5.2 `server_error`).
pub const INTERNAL_ERROR: &str = "Vigie could not complete the request; retry later";

/// What a client is told when a backend does not answer now (`temporarily_unavailable`, 503).
pub const UNAVAILABLE: &str = "Vigie cannot complete the request now; retry in a few seconds";

/// Logs an internal failure of an OAuth endpoint; the caller answers [`INTERNAL_ERROR`].
pub fn log_internal(endpoint: &str, detail: &dyn std::fmt::Display) {
    tracing::error!(endpoint, error = %detail, "internal error");
}

/// An internal failure at the introspection or revocation endpoint: `server_error` with a generic
/// description, the detail in the log.
pub fn internal_error(endpoint: &str, detail: &dyn std::fmt::Display) -> actix_web::HttpResponse {
    log_internal(endpoint, detail);
    crate::web::http::oauth_error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "server_error", INTERNAL_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_core::Factor;

    fn request(foreign: &[(&str, AssuranceLevel)]) -> AuthRequest {
        AuthRequest {
            client_id: "psc".into(),
            redirect_uri: "https://psc.example/cb".into(),
            response_mode: ResponseMode::Query,
            scopes: vec!["openid".into()],
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: Prompt::Default,
            max_age: None,
            login_hint: None,
            acr: foreign.iter().map(|(_, l)| *l).collect(),
            foreign_acr: foreign.iter().map(|(v, l)| ForeignAcr { value: (*v).into(), level: *l }).collect(),
            acr_essential: false,
            ui_locales: None,
            only_mie: None,
        }
    }

    #[test]
    fn a_stored_prompt_reads_as_the_previous_versions_wrote_it() {
        let read = |json: &str| serde_json::from_str::<StoredPrompt>(json).map(Prompt::from).ok();
        assert_eq!(read(r#"{"prompt_login":false,"prompt_none":false}"#), Some(Prompt::Default));
        assert_eq!(read(r#"{"prompt_login":true,"prompt_none":false}"#), Some(Prompt::Login));
        assert_eq!(read(r#"{"prompt_login":false,"prompt_none":true}"#), Some(Prompt::None));
        let written = serde_json::to_value(StoredPrompt::from(Prompt::Login)).ok();
        assert_eq!(written, Some(serde_json::json!({"prompt_login": true, "prompt_none": false})));
    }

    #[test]
    fn a_value_of_another_scheme_is_answered_only_when_the_login_meets_it_first_in_the_requests_order() {
        let card = Authentication::hypothetical("id".into(), Mie::Cps, vec![Factor::Sc, Factor::Pin], 0);
        let password = Authentication::hypothetical("id".into(), Mie::PasswordTotp, vec![Factor::Pwd, Factor::Otp], 0);
        let eidas1 = request(&[("eidas1", AssuranceLevel::TwoFactorPhishingResistant)]);
        assert_eq!(eidas1.foreign_acr_met(&card).as_deref(), Some("eidas1"));
        assert_eq!(eidas1.foreign_acr_met(&password), None);
        assert_eq!(request(&[]).foreign_acr_met(&card), None, "nothing of another scheme: Vigie's level");
        let both =
            request(&[("eidas2", AssuranceLevel::TwoFactorPhishingResistant), ("eidas1", AssuranceLevel::TwoFactor)]);
        assert_eq!(both.foreign_acr_met(&card).as_deref(), Some("eidas2"));
        assert_eq!(both.foreign_acr_met(&password).as_deref(), Some("eidas1"));
    }
}
