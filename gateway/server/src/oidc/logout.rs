//! RP-Initiated Logout 1.0 (the end-session endpoint) and Back-Channel Logout 1.0 (logout
//! tokens POSTed to every client of the session that registered a `backchannel_logout_uri`).
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use crate::config::Config;
use crate::secrets::random_token;
use crate::session::{self, keys};
use crate::state::{Audit, OidcState, Ports, Upstreams, parts};
use crate::web::http::{Caller, Params, parse_params};
use crate::web::pages;

pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Deserialize)]
struct HintClaims {
    aud: serde_json::Value,
    sub: String,
    sid: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct PendingLogout {
    sid: String,
    redirect: Option<String>,
    /// The session came through Pro Santé Connect: PSC's ID token, to end PSC's session too.
    #[serde(default)]
    upstream_id_token: Option<String>,
}

parts! {
    /// What the end-session endpoint reaches: the ID token hint's check (settings, keys), the
    /// session, what ending it reaches ([`session::Ending`]), and PSC's logout.
    pub struct Endpoint {
        config: Config,
        oidc: OidcState,
        ports: Ports,
        audit: Audit,
        upstreams: Upstreams,
    }
}

impl Endpoint {
    fn ending(&self) -> session::Ending<'_> {
        session::Ending {
            config: &self.config,
            ports: &self.ports,
            oidc: &self.oidc,
            audit: &self.audit,
            http: &self.upstreams.http,
        }
    }
}

pub async fn get(req: HttpRequest, endpoint: Endpoint) -> HttpResponse {
    let raw = req.query_string().to_owned();
    handle(req, endpoint, parse_params(raw.as_bytes())).await
}

pub async fn post(req: HttpRequest, endpoint: Endpoint, body: web::Bytes) -> HttpResponse {
    let params = parse_params(&body);
    if let Ok(p) = &params
        && let Some(token) = p.get("confirm")
    {
        return confirmed(req, endpoint, token.to_owned()).await;
    }
    handle(req, endpoint, params).await
}

async fn handle(req: HttpRequest, endpoint: Endpoint, params: Result<Params, String>) -> HttpResponse {
    // The detail is for the application's team (a request only its code builds): the person is
    // told whom to give it to, in their language.
    let bad = |m: &str| {
        let fr = format!(
            "L'application a demandé la déconnexion de façon invalide ; signalez-le à son équipe avec ce détail : {m}"
        );
        let en = format!("The application asked for sign-out in an invalid way; tell its team, quoting: {m}");
        pages::error_page(&req, StatusCode::BAD_REQUEST, pages::Say::new(&fr, &en), pages::Back::Home)
    };
    let params = match params {
        Ok(p) => p,
        Err(e) => return bad(&e),
    };
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(t) => {
            // RP-Initiated Logout §2: "The OP need not be listed as an audience … [and] when
            // the OP receives an expired ID Token as the hint, it SHOULD accept it".
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            v.set_issuer(&[&endpoint.config.issuer]);
            v.validate_aud = false;
            v.validate_exp = false;
            v.required_spec_claims.clear();
            // Only an ID token (typ "JWT") is a hint: an access token (`at+jwt`, RFC 9068
            // §2.1) or a logout token (`logout+jwt`) signed by the same keys is not
            // (RFC 8725 §3.11: explicit typing), or any API holding an access token could
            // end the user's session.
            match endpoint.oidc.keys.get().verify::<HintClaims>(t, Some("JWT"), v) {
                Ok((_, c)) => Some(c),
                Err(e) => {
                    tracing::info!(error = %e, "logout: id_token_hint refused");
                    return bad("id_token_hint is not an ID token of this provider");
                }
            }
        }
    };
    let hint_client = hint.as_ref().and_then(|h| match &h.aud {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(String::from),
        _ => None,
    });
    let client_id = match (hint_client, params.get("client_id")) {
        (Some(a), Some(b)) if a != b => return bad("client_id does not match the id_token_hint audience"),
        (a, b) => a.or(b.map(String::from)),
    };
    // RP-Initiated Logout §3: the post_logout_redirect_uri "MUST have been previously
    // registered with the OP"; without a client to check it against, no redirect.
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client) = client_id.as_deref().and_then(|c| endpoint.oidc.clients.get(c)) else {
                return bad("post_logout_redirect_uri needs an id_token_hint or client_id naming a registered client");
            };
            if !client.config.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return bad(&format!("post_logout_redirect_uri {uri:?} is not registered for this client"));
            }
            let mut u = match url::Url::parse(uri) {
                Ok(u) => u,
                Err(_) => return bad("post_logout_redirect_uri is not a URL"),
            };
            if let Some(s) = params.get("state") {
                u.query_pairs_mut().append_pair("state", s);
            }
            Some(u.to_string())
        }
    };
    // Only the session of this browser (its cookie) can end here, never the one a hint names:
    // an ID token travels to relying parties and their logs, and whoever holds one must not end
    // its session from elsewhere nor read that session's upstream PSC ID token (it would be in
    // the redirect to PSC's logout).
    let current = match session::current(&endpoint.ports, &endpoint.config, &req).await {
        Ok(Some(c)) => c,
        Ok(None) => return done(&req, redirect),
        Err(e) => return pages::unavailable(&req, &e),
    };
    // RP-Initiated Logout 1.0 §2: a hint of this very session (its `sid`, its `sub`) is the
    // relying party's request for the user in front of it; anything else "SHOULD [be treated]
    // as suspect": the user is asked, as without a hint, so that no third-party page can log
    // people out.
    let own = hint
        .is_some_and(|h| h.sid.as_deref() == Some(current.sid.as_str()) && h.sub == current.authentication.identity_id);
    if own {
        end_session(endpoint.ending(), &Caller::of(&req, &endpoint.config.server), &current.sid).await;
        let done = finish(&endpoint, &req, current.upstream_id_token, redirect).await;
        return crate::saml::after_logout(&req, &current.sid, done).await;
    }
    let token = random_token(24);
    let pending = PendingLogout { sid: current.sid, redirect, upstream_id_token: current.upstream_id_token };
    if let Err(e) = endpoint.ports.store.put_json(&keys::rp_logout(&token), &pending, Duration::from_secs(300)).await {
        return pages::unavailable(&req, &e);
    }
    pages::logout_confirm(&req, &token)
}

async fn confirmed(req: HttpRequest, endpoint: Endpoint, token: String) -> HttpResponse {
    let pending = match endpoint.ports.store.take_json::<PendingLogout>(&keys::rp_logout(&token)).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return pages::error_page(
                &req,
                StatusCode::BAD_REQUEST,
                pages::Say::new(
                    "Cette demande de déconnexion a expiré : déconnectez-vous à nouveau depuis l'application.",
                    "This sign-out confirmation has expired: sign out again from the application.",
                ),
                pages::Back::Home,
            );
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let caller = Caller::of(&req, &endpoint.config.server);
    end_session(endpoint.ending(), &caller, &pending.sid).await;
    let done = finish(&endpoint, &req, pending.upstream_id_token, pending.redirect).await;
    // SAML SPs of the session are logged out through the browser first (saml/slo.rs).
    crate::saml::after_logout(&req, &pending.sid, done).await
}

/// The end of a logout: through Pro Santé Connect's end_session when the session came from PSC
/// (`psc.end_session`), then to `redirect`.
async fn finish(
    endpoint: &Endpoint,
    req: &HttpRequest,
    upstream: Option<String>,
    redirect: Option<String>,
) -> HttpResponse {
    if let Some(token) = upstream
        && let Some(r) = crate::psc::end_session_redirect(
            endpoint.ending(),
            endpoint.upstreams.psc.as_deref(),
            req,
            &token,
            redirect.clone(),
        )
        .await
    {
        return r;
    }
    done(req, redirect)
}

pub(crate) fn done(req: &HttpRequest, redirect: Option<String>) -> HttpResponse {
    let mut resp = match redirect {
        Some(u) => HttpResponse::SeeOther().insert_header((header::LOCATION, u)).finish(),
        None => pages::logged_out(req),
    };
    let _ = resp.add_cookie(&session::clear_cookie());
    resp
}

/// Ends an SSO session: its state, every token issued from it, and a logout token to each
/// client that asked for back-channel logout. A logout: the store's errors are logged, and the
/// other replicas are not told (a session's end changes no one's access; the console's ending,
/// which does, is [`session::end_one`]).
pub async fn end_session<'a>(ending: impl Into<session::Ending<'a>>, caller: &Caller, sid: &str) {
    let ending = ending.into();
    if let Err(e) = session::revoke(ending, sid).await {
        tracing::error!(error = %e, "logout could not reach the store");
        return;
    }
    announce(ending, caller, sid).await;
}

/// What follows a session's end in the store: the audit line, and a logout token to each client
/// of the session that asked for back-channel logout (Back-Channel Logout 1.0 §2.5).
pub(crate) async fn announce(ending: session::Ending<'_>, caller: &Caller, sid: &str) {
    let session::Ending { config, ports, oidc, audit, http } = ending;
    let clients = match ports.store.members(&keys::sid_clients(sid)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "logout could not reach the store");
            return;
        }
    };
    audit.record(AuditEvent {
        kind: Some(AuditKind::Logout),
        outcome: Some(Outcome::Success),
        sid: Some(sid.to_owned()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    for client_id in clients {
        let Some(client) = oidc.clients.get(&client_id) else { continue };
        let Some(uri) = client.config.backchannel_logout_uri.clone() else { continue };
        let now = crate::now();
        // Back-Channel Logout §2.4: iss, aud, iat, exp, jti, events, sid (and sub); no nonce.
        let claims = json!({
            "iss": config.issuer, "aud": client_id, "iat": now, "exp": now + 120,
            "jti": random_token(16), "sid": sid, "events": { BACKCHANNEL_EVENT: {} },
        });
        let token = match oidc.keys.get().sign(client.config.id_token_signed_response_alg, Some("logout+jwt"), &claims)
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "logout token signing failed");
                continue;
            }
        };
        let http = http.clone();
        actix_web::rt::spawn(async move {
            // Back-Channel Logout §2.5: POST, form-encoded `logout_token`.
            let result = http.post(&uri).form(&[("logout_token", token)]).send().await;
            let ok = matches!(&result, Ok(r) if r.status().is_success());
            metrics::counter!("vigie_backchannel_logout_total", "client" => client_id.clone(), "result" => if ok { "ok" } else { "failed" }).increment(1);
            if !ok {
                tracing::warn!(client = client_id, "back-channel logout was not acknowledged");
            }
        });
    }
}
