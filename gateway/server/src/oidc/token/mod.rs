//! The token endpoint (RFC 6749 §3.2): client authentication, then one handler per grant.
mod code;
pub mod exchange;
mod recheck;
pub use recheck::withdrawn_mie;
mod refresh;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

use super::client_auth;
use super::grant::{Issuer, MintError, RefreshRecord};
use crate::config::Config;
use crate::state::{Audit, Client, OidcState, PolicyGate, Ports, Upstreams, parts};
use crate::web::http::{Caller, oauth_error, parse_params};

/// A token endpoint error (RFC 6749 §5.2).
pub struct TokenError {
    pub error: &'static str,
    pub description: String,
}

impl TokenError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }
}

impl TokenError {
    /// An internal failure (store, directory, signing): `server_error`, the detail in the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        super::log_internal("token", &detail);
        Self::new("server_error", super::INTERNAL_ERROR)
    }
}

impl From<MintError> for TokenError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::Store(e) => Self::internal(e),
            MintError::Server(e) => Self::internal(e),
            MintError::UnknownIdentity => Self::new("invalid_grant", "the user is no longer in the directory"),
        }
    }
}

impl From<vigie_core::store::StoreError> for TokenError {
    fn from(e: vigie_core::store::StoreError) -> Self {
        Self::internal(e)
    }
}

parts! {
    /// What the token endpoint reaches: client authentication ([`client_auth::Clients`]), then
    /// each grant handler its share ([`Grant`]); the DMP side for the token exchange.
    pub struct Endpoint {
        config: Config,
        oidc: OidcState,
        ports: Ports,
        policy: PolicyGate,
        upstreams: Upstreams,
        audit: Audit,
    }
}

pub async fn token(req: HttpRequest, endpoint: Endpoint, body: web::Bytes) -> HttpResponse {
    let Endpoint { config, oidc, ports, policy, upstreams, audit } = &endpoint;
    let caller = Caller::of(&req, &config.server);
    // RFC 6749 §3.2: "The client MUST use the HTTP "POST" method", form-encoded.
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    let clients = client_auth::Clients { config, oidc, store: ports.store.as_ref(), http: &upstreams.http };
    let client = match client_auth::authenticate(&req, &params, clients, &caller).await {
        Ok(c) => c,
        Err(e) => {
            refused(audit, &caller, params.get("client_id"), "client authentication", &e.description);
            return e.response();
        }
    };
    let grant_type = params.get("grant_type").unwrap_or_default();
    let issuer = Issuer { config, oidc, ports, identities: &policy.identities };
    let grant = Grant { issuer, policy, audit, client, caller: &caller };
    let result = match grant_type {
        "authorization_code" => code::exchange(&grant, &params).await.map(Granted::Tokens),
        "refresh_token" => refresh::exchange(&grant, &params).await.map(Granted::Tokens),
        exchange::TOKEN_EXCHANGE => {
            exchange::exchange(&grant, upstreams.dmp.as_deref(), &params).await.map(Granted::Exchanged)
        }
        "" => Err(TokenError::new("invalid_request", "grant_type is missing")),
        other => Err(TokenError::new("unsupported_grant_type", format!("grant_type {other:?} is not supported"))),
    };
    match result {
        Ok(t) => HttpResponse::Ok().insert_header(("Pragma", "no-cache")).json(t),
        Err(e) => {
            refused(audit, &caller, Some(&client.config.client_id), grant_type, &e.description);
            let status = match e.error {
                "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            oauth_error(status, e.error, &e.description)
        }
    }
}

/// What the token endpoint answers: tokens of a grant (RFC 6749 §5.1), or an exchanged token
/// (RFC 8693 §2.2.1).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Granted {
    Tokens(super::grant::TokenResponse),
    Exchanged(exchange::ExchangeResponse),
}

/// What a grant handler reaches (fosite gives each grant handler only its strategies and
/// storage): the token side to mint with, the policy gate (a grant asks again about the person),
/// the audit trail, and who asks.
pub struct Grant<'a> {
    pub issuer: Issuer<'a>,
    pub policy: &'a PolicyGate,
    pub audit: &'a Audit,
    /// The authenticated client (RFC 6749 §3.2.1).
    pub client: &'a Client,
    pub caller: &'a Caller,
}

fn refused(audit: &Audit, caller: &Caller, client_id: Option<&str>, method: &str, reason: &str) {
    audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        client_id: client_id.map(str::to_owned),
        method: Some(method.to_owned()),
        reason: Some(reason.to_owned()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
}

fn issued(grant: &Grant<'_>, kind: AuditKind, r: &RefreshRecord) {
    let Grant { audit, client, caller, .. } = grant;
    audit.record(AuditEvent {
        kind: Some(kind),
        outcome: Some(Outcome::Success),
        subject: Some(r.authentication.identity_id.clone()),
        client_id: Some(client.config.client_id.clone()),
        method: Some(r.authentication.mie.as_str().to_owned()),
        acr: Some(r.authentication.level.acr().to_owned()),
        sid: Some(r.sid.clone()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
}

/// What a reused grant is called in the audit trail and in the error.
pub struct Reuse {
    method: &'static str,
    audit_reason: &'static str,
    description: &'static str,
}

/// RFC 6749 §4.1.2: a code used twice revokes what it issued.
pub const CODE_REPLAY: Reuse = Reuse {
    method: "authorization_code",
    audit_reason: "authorization code replayed: the tokens issued from it are revoked",
    description: "the authorization code was already used; its tokens are revoked",
};

/// RFC 9700 §4.14.2: a rotated refresh token used again revokes its family.
pub const REFRESH_REUSE: Reuse = Reuse {
    method: "refresh_token",
    audit_reason: "rotated refresh token reused: its family is revoked",
    description: "the refresh token was already used; its family is revoked",
};

/// A used code or refresh token came back: revokes the grant and says so.
async fn reuse_detected(grant: &Grant<'_>, grant_id: &str, reuse: &Reuse) -> TokenError {
    let Grant { issuer, audit, client, caller, .. } = grant;
    let handle = super::grant::grant_handle(grant_id);
    if let Err(e) = super::grant::revoke_grant(issuer.ports.store.as_ref(), issuer.config, &handle).await {
        return e.into();
    }
    audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        client_id: Some(client.config.client_id.clone()),
        method: Some(reuse.method.into()),
        reason: Some(reuse.audit_reason.into()),
        ip: Some(caller.ip.clone()),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    TokenError::new("invalid_grant", reuse.description)
}
