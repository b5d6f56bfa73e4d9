//! The SSO session: a `__Host-` cookie naming server-side state in the ephemeral store, so
//! any replica serves any request. The cookie value is a bearer secret; the store knows it
//! only by its hash. Its id changes at every login (session fixation). Ending sessions: `end`.
pub mod config;
mod end;
pub mod keys;

pub(crate) use end::revoke;
pub use end::{Ending, SWEEP_SECS, complete_pending, end, end_access, end_one};

use std::time::Duration;

use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use vigie_core::Authentication;
use vigie_core::store::{EphemeralStore, StoreError, StoreExt};

use crate::config::Config;
use crate::secrets::random_token;
use crate::state::{AppState, Ports};

pub const COOKIE: &str = "__Host-vigie-session";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Public session id: the `sid` claim (OIDC Back-Channel Logout §2.1), not the cookie.
    pub sid: String,
    pub authentication: Authentication,
    pub created_at: i64,
    /// Absolute end, whatever the activity.
    pub expires_at: i64,
    /// Last time the idle timer was pushed back.
    pub touched_at: i64,
    /// The ID token of the upstream provider the login went through (Pro Santé Connect): the
    /// `id_token_hint` of its logout when this session ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_id_token: Option<String>,
}

/// Put in a request's extensions by a login through an upstream provider, before
/// `login::complete`: the session it starts keeps it (see [`Session::upstream_id_token`]).
#[derive(Clone)]
pub struct UpstreamIdToken(pub String);

fn idle_ttl(config: &Config, s: &Session, now: i64) -> Duration {
    let idle = config.session.idle_timeout_secs as i64;
    Duration::from_secs((s.expires_at - now).min(idle).max(1) as u64)
}

/// The live session of this browser, if any; pushes back its idle timeout.
pub async fn current(ports: &Ports, config: &Config, req: &HttpRequest) -> Result<Option<Session>, StoreError> {
    let Some(cookie) = crate::web::http::cookie(req, COOKIE) else { return Ok(None) };
    let now = crate::now();
    let Some(mut s) = ports.store.get_json::<Session>(&keys::session(&cookie)).await? else { return Ok(None) };
    if s.expires_at <= now {
        return Ok(None);
    }
    // Push the idle deadline back at most once a minute: one store write per minute of use,
    // not one per request.
    if now - s.touched_at >= 60 {
        s.touched_at = now;
        ports.store.put_json(&keys::session(&cookie), &s, idle_ttl(config, &s, now)).await?;
    }
    Ok(Some(s))
}

/// Starts a session for a fresh authentication, replacing the session the browser had.
/// Returns the new cookie value, the session, and the replaced session when it belonged to
/// someone else: at a shared workstation, the previous user must then be logged out of every
/// application (the caller ends that session), not left signed in behind the new one.
pub async fn open(
    ports: &Ports,
    config: &Config,
    req: &HttpRequest,
    authentication: Authentication,
) -> Result<(String, Session, Option<Session>), StoreError> {
    let mut replaced = None;
    if let Some(old) = crate::web::http::cookie(req, COOKIE) {
        replaced = ports
            .store
            .take_json::<Session>(&keys::session(&old))
            .await?
            .filter(|o| o.authentication.identity_id != authentication.identity_id);
    }
    let now = crate::now();
    let cookie = random_token(32);
    let s = Session {
        sid: random_token(16),
        authentication,
        created_at: now,
        expires_at: now + config.session.absolute_timeout_secs as i64,
        touched_at: now,
        upstream_id_token: {
            use actix_web::HttpMessage;
            req.extensions().get::<UpstreamIdToken>().map(|t| t.0.clone())
        },
    };
    ports.store.put_json(&keys::session(&cookie), &s, idle_ttl(config, &s, now)).await?;
    let abs = Duration::from_secs(config.session.absolute_timeout_secs);
    ports.store.put(&keys::session_of_sid(&s.sid), keys::session(&cookie).as_bytes(), abs).await?;
    // The indexes outlive the session as long as its tokens may (an `offline_access` refresh
    // token): ending someone's access must reach those too.
    let index_ttl = abs.max(tokens_ttl(config));
    ports.store.add_to_set(&keys::identity_sessions(&s.authentication.identity_id), &s.sid, index_ttl).await?;
    if let Some(credential) = &s.authentication.credential {
        ports.store.add_to_set(&keys::credential_sessions(credential), &s.sid, index_ttl).await?;
    }
    Ok((cookie, s, replaced))
}

/// [`open`] on the whole state: the in-process test's way in (`tests/refresh_in_process.rs`).
pub async fn start(
    state: &AppState,
    req: &HttpRequest,
    authentication: Authentication,
) -> Result<(String, Session, Option<Session>), StoreError> {
    open(&state.ports, &state.config, req, authentication).await
}

/// The longest any token bound to a session lives: how long a revocation mark must be kept.
pub fn tokens_ttl(config: &Config) -> Duration {
    let t = &config.tokens;
    Duration::from_secs(t.refresh_token_ttl_secs.max(t.access_token_ttl_secs))
}

/// The live session `sid`, wherever the browser is (for a client acting on a session's behalf:
/// the DMP token exchange); `None` once it ended, expired or went idle.
pub async fn by_sid(store: &dyn EphemeralStore, sid: &str) -> Result<Option<Session>, StoreError> {
    let Some(k) = store.get(&keys::session_of_sid(sid)).await? else { return Ok(None) };
    let s = store.get_json::<Session>(&String::from_utf8_lossy(&k)).await?;
    Ok(s.filter(|s| s.sid == sid && s.expires_at > crate::now()))
}

/// The cookie that clears the session cookie.
pub fn clear_cookie() -> actix_web::cookie::Cookie<'static> {
    crate::web::http::host_cookie(COOKIE, String::new(), Some(0))
}
