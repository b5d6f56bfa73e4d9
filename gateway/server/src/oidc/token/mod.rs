//! The token endpoint (RFC 6749 §3.2): client authentication, then one handler per grant.
mod code;
pub mod exchange;
mod recheck;
pub use recheck::{account_standing, withdrawn_mie};
mod refresh;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};

use super::BackChannel;
use super::client_auth;
use super::grant::{Issuer, MintError, RefreshRecord, TokenResponse};
use crate::state::{Audit, Client, PolicyGate};
use crate::web::http::{Caller, Params, oauth_error, parse_params};

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
            MintError::Store(e) => e.into(),
            MintError::Server(e) => Self::internal(e),
            MintError::UnknownIdentity => Self::new("invalid_grant", "the user is no longer in the directory"),
        }
    }
}

impl TokenError {
    /// A backend (store, directory) that does not answer now: `temporarily_unavailable`, 503
    /// with `Retry-After`, which a client retries. RFC 6749 §5.2 has no code for it at the token
    /// endpoint; §4.1.2.1's is the one clients know. The detail goes to the log only.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        super::log_internal("token", &detail);
        Self::new("temporarily_unavailable", super::UNAVAILABLE)
    }
}

impl From<vigie_core::store::StoreError> for TokenError {
    fn from(e: vigie_core::store::StoreError) -> Self {
        match e {
            vigie_core::store::StoreError::Unavailable(_) => Self::unavailable(e),
            vigie_core::store::StoreError::Corrupt { .. } => Self::internal(e),
        }
    }
}

impl From<vigie_core::directory::DirectoryError> for TokenError {
    fn from(e: vigie_core::directory::DirectoryError) -> Self {
        match e {
            vigie_core::directory::DirectoryError::Unavailable(_)
            | vigie_core::directory::DirectoryError::Fenced { .. } => Self::unavailable(e),
            vigie_core::directory::DirectoryError::Invalid(_) => Self::internal(e),
        }
    }
}

pub async fn token(req: HttpRequest, endpoint: BackChannel, body: web::Bytes) -> HttpResponse {
    let BackChannel { config, policy, upstreams, audit, .. } = &endpoint;
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
    let client = match client_auth::authenticate(&req, &params, endpoint.clients(), &caller).await {
        Ok(c) => c,
        Err(e) => {
            refused(audit, &caller, params.get("client_id"), "client authentication", &e.description);
            return e.response();
        }
    };
    let grant_type = params.get("grant_type").unwrap_or_default();
    let grant = Grant { issuer: endpoint.issuer(), policy, audit, client, caller: &caller };
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
    Tokens(TokenResponse),
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

async fn issued(grant: &Grant<'_>, kind: AuditKind, r: &RefreshRecord) {
    let Grant { audit, client, caller, issuer, .. } = grant;
    let idnat = crate::audit::idnat_of(issuer.identities, issuer.ports.directory.as_ref(), &r.authentication).await;
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
        idnat,
        ..Default::default()
    });
}

// What the authorization code and refresh token grants share: their parameter, the check that
// the grant is the authenticated client's, and the tokens minted and audited at the end.

/// A parameter the grant requires (RFC 6749 §5.2 `invalid_request` when it is missing).
fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, TokenError> {
    params.get(name).ok_or_else(|| TokenError::new("invalid_request", format!("{name} is missing")))
}

/// RFC 6749 §4.1.3 and §6: the code or the refresh token must have been issued to the
/// authenticated client (`what` names it in the error).
fn issued_to_client(grant: &Grant<'_>, client_id: &str, what: &str) -> Result<(), TokenError> {
    if client_id != grant.client.config.client_id {
        return Err(TokenError::new("invalid_grant", format!("the {what} was issued to another client")));
    }
    Ok(())
}

/// The end of both grants: the tokens of `record` minted, then audited as `kind`.
async fn mint(
    grant: &Grant<'_>,
    kind: AuditKind,
    record: &RefreshRecord,
    nonce: Option<String>,
) -> Result<TokenResponse, TokenError> {
    let tokens = super::grant::mint(grant.issuer, grant.client, record, nonce).await?;
    issued(grant, kind, record).await;
    Ok(tokens)
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
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    TokenError::new("invalid_grant", reuse.description)
}
