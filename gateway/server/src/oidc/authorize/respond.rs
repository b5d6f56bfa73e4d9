//! Answering the client (RFC 6749 §4.1.2): the code once the user is in, or an error, through
//! its redirect URI in the query or an auto-submitted form (Form Post Response Mode).
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use super::request::{Redirected, redirected};
use crate::config::Config;
use crate::oidc::{AuthRequest, CodeGrant, ResponseMode};
use crate::secrets::random_token;
use crate::session::keys;
use crate::session::{self, Session};
use crate::state::{Audit, OidcState, Ports};

/// What answering the client reads: the registered clients, the settings (code lifetime, issuer),
/// the store (the code, the session's clients) and the audit trail.
#[derive(Clone, Copy)]
pub struct Answer<'a> {
    pub config: &'a Config,
    pub oidc: &'a OidcState,
    pub ports: &'a Ports,
    pub audit: &'a Audit,
}

/// A backend (store, directory) failed once the request was known to be valid: the client is
/// told to try again (RFC 6749 §4.1.2.1 `temporarily_unavailable`), the cause goes to the log
/// only.
pub(super) fn temporarily_unavailable(
    config: &Config,
    request: &AuthRequest,
    cause: &dyn std::fmt::Display,
) -> HttpResponse {
    tracing::error!(client = request.client_id, error = %cause, "authorization request: a backend failed");
    error_response(
        config,
        redirected(request, "temporarily_unavailable", "the service is unavailable; try again in a moment"),
    )
}

/// The user is authenticated and the policy allowed this client (the callers asked it): issues
/// the code.
pub async fn finish<'a>(
    answer: impl Into<Answer<'a>>,
    request: AuthRequest,
    session: &Session,
    new_cookie: Option<String>,
) -> HttpResponse {
    let Answer { config, oidc, ports, audit } = answer.into();
    let Some(client) = oidc.clients.get(&request.client_id) else {
        return error_response(
            config,
            redirected(&request, "unauthorized_client", "the client is no longer registered"),
        );
    };
    // FI tiers: whatever the path that led here, PSC never gets back a login PSC made.
    if client.config.fi_tiers.is_some() && crate::oidc::fi_tiers::excluded(session.authentication.mie) {
        audit.record(AuditEvent {
            kind: Some(AuditKind::Refused),
            outcome: Some(Outcome::Failure),
            subject: Some(session.authentication.identity_id.clone()),
            client_id: Some(request.client_id.clone()),
            method: Some(session.authentication.mie.as_str().into()),
            sid: Some(session.sid.clone()),
            reason: Some("FI tiers: a login through Pro Santé Connect is not sent back to it".into()),
            ..Default::default()
        });
        return error_response(
            config,
            redirected(&request, "access_denied", "a login through Pro Santé Connect cannot answer Pro Santé Connect"),
        );
    }
    let code = random_token(32);
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        authentication: session.authentication.clone(),
        sid: session.sid.clone(),
        grant_id: crate::oidc::grant::family_of_code(&code),
        acr: request.foreign_acr_met(&session.authentication),
    };
    let ttl = Duration::from_secs(config.tokens.code_ttl_secs);
    let abs = Duration::from_secs(config.session.absolute_timeout_secs);
    let (code_key, clients_key) = (keys::authorization_code(&code), keys::sid_clients(&session.sid));
    let stored = tokio::join!(
        ports.store.put_json(&code_key, &grant, ttl),
        ports.store.add_to_set(&clients_key, &request.client_id, abs)
    );
    if let Err(e) = stored.0.and(stored.1) {
        return temporarily_unavailable(config, &request, &e);
    }
    let mut params = vec![("code", code)];
    if let Some(s) = &request.state {
        params.push(("state", s.clone()));
    }
    // RFC 9207 §2: the issuer identifier in the authorization response (mix-up defence).
    params.push(("iss", config.issuer.clone()));
    let mut resp = respond(request.response_mode, &request.redirect_uri, &params);
    if let Some(c) = new_cookie {
        let _ = resp.add_cookie(&crate::web::http::host_cookie(session::COOKIE, c, None));
    }
    resp
}

pub fn error_response(config: &Config, r: Redirected) -> HttpResponse {
    let mut params = vec![("error", r.error.to_owned()), ("error_description", r.description)];
    if let Some(s) = r.state {
        params.push(("state", s));
    }
    params.push(("iss", config.issuer.clone()));
    respond(r.response_mode, &r.redirect_uri, &params)
}

/// Sends authorization response parameters to the client.
fn respond(mode: ResponseMode, redirect_uri: &str, params: &[(&str, String)]) -> HttpResponse {
    match mode {
        ResponseMode::Query => {
            let mut url = match url::Url::parse(redirect_uri) {
                Ok(u) => u,
                Err(_) => return HttpResponse::InternalServerError().finish(),
            };
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            HttpResponse::SeeOther().insert_header((header::LOCATION, url.to_string())).finish()
        }
        ResponseMode::FormPost => form_post(redirect_uri, params),
    }
}

/// OAuth 2.0 Form Post Response Mode §2: the parameters "are encoded as HTML form values that
/// are auto-submitted in the User Agent"; "The action attribute of the form MUST be the Client's
/// Redirection URI". The page every auto-post shares ([`crate::web::auto_post::page`]: nonce
/// script, escaped values, a CSP whose `form-action` is the redirect_uri's origin and the https
/// redirects its answer may lead to). No `'self'`: the form goes to the client's redirect_uri
/// only (a client that sends the person back to Vigie's https origin afterwards is within
/// `https:`).
fn form_post(redirect_uri: &str, params: &[(&str, String)]) -> HttpResponse {
    let fields: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::web::auto_post::page(redirect_uri, &fields, crate::web::auto_post::Then::OnlyThere)
}
