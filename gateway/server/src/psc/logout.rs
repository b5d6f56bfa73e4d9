//! The end of PSC's session when Vigie ends a session that came from PSC: the detour through
//! PSC's end_session endpoint and `/logout/psc`, where the browser comes back.
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use super::PscRuntime;
use crate::session::{Ending, keys};
use crate::state::{Part, Ports};
use crate::web::http::Caller;
use crate::web::pages;

/// A logout waiting for PSC's end_session to send the browser back.
#[derive(Serialize, Deserialize)]
struct PendingPscLogout {
    /// Where the browser goes next (the client's post-logout URI with its state), if anywhere.
    redirect: Option<String>,
}

/// After Vigie ended a session that came from PSC: sends the browser through PSC's end_session
/// endpoint (OIDC RP-Initiated Logout §2, with PSC's ID token as `id_token_hint`), then back to
/// `/logout/psc`, which continues to `redirect`. `None` when PSC's session is not to be ended
/// (`psc.end_session = false`, PSC disabled or without an end_session endpoint). `ending`: what
/// ended Vigie's session, which records and audits this step too.
pub async fn end_session_redirect(
    ending: Ending<'_>,
    psc: Option<&PscRuntime>,
    req: &HttpRequest,
    psc_id_token: &str,
    redirect: Option<String>,
) -> Option<HttpResponse> {
    let psc = psc.filter(|p| p.config.end_session)?;
    let key = crate::secrets::random_token(24);
    let url = psc.client.end_session_url(psc_id_token, Some(&psc.post_logout_redirect_uri), Some(&key))?;
    let ttl = Duration::from_secs(psc.config.state_ttl_secs);
    if let Err(e) = ending.ports.store.put_json(&keys::psc_logout(&key), &PendingPscLogout { redirect }, ttl).await {
        tracing::error!(error = %e, "the PSC logout could not be recorded; PSC's session is left as is");
        return None;
    }
    let caller = Caller::of(req, &ending.config.server);
    ending.audit.record(AuditEvent {
        kind: Some(AuditKind::Logout),
        outcome: Some(Outcome::Success),
        method: Some("psc_end_session".into()),
        ip: Some(caller.ip),
        user_agent: caller.user_agent,
        request_id: Some(caller.request_id),
        reason: Some("the browser is sent to Pro Santé Connect's end_session endpoint".into()),
        ..Default::default()
    });
    metrics::counter!("vigie_psc_logout_total").increment(1);
    let mut resp = HttpResponse::SeeOther().insert_header((header::LOCATION, url)).finish();
    let _ = resp.add_cookie(&crate::session::clear_cookie());
    Some(resp)
}

#[derive(Deserialize)]
pub struct LogoutDone {
    state: Option<String>,
}

/// `GET /logout/psc?state=…`: PSC's logout is done; on to the client's post-logout URI, or the
/// "signed out" page.
pub async fn logout_done(req: HttpRequest, ports: Part<Ports>, q: web::Query<LogoutDone>) -> HttpResponse {
    let pending = match q.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 64) {
        Some(s) => ports.store.take_json::<PendingPscLogout>(&keys::psc_logout(s)).await,
        None => Ok(None),
    };
    match pending {
        Ok(Some(p)) => crate::oidc::logout::done(&req, p.redirect),
        // Unknown or used state: the session at Vigie already ended; nowhere else to go.
        Ok(None) => pages::logged_out(&req),
        Err(e) => pages::unavailable(&req, &e),
    }
}
