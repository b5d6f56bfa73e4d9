//! Who is on the account pages and what they may do there: a signed-in person (who may add a
//! key only after a recent login the policy accepts) or the holder of a redeemed enrolment code.
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use vigie_core::store::{StoreError, StoreExt};

use super::enrolment::{GRANT_COOKIE, Grant};
use super::pages::texts;
use crate::config::Config;
use crate::secrets::{ct_eq, sha256_b64};
use crate::session::{self, keys};
use crate::state::{PolicyGate, Ports};
use crate::web::http::Params;
use crate::web::pages;

/// Who is on the account pages, and what they may do.
pub(super) enum Access {
    /// May register keys: a recent two-factor session, or a redeemed enrolment code.
    Enrol(Holder),
    /// Signed in, but the login is too old or too weak to add a key: may list and revoke.
    ListOnly(Holder),
    /// Neither signed in nor holding a code.
    Nobody,
}

pub(super) struct Holder {
    pub(super) identity_id: String,
    /// The CSRF token of this holder's forms: SHA-256 of a label and the session (or grant)
    /// cookie, a secret of this browser that changes at every login.
    pub(super) csrf: String,
    /// `session:<sid>` or `enrolment-code`.
    pub(super) via: String,
    /// Whether this holder may revoke keys (a session; a code only adds).
    pub(super) can_revoke: bool,
}

pub(super) async fn access(
    ports: &Ports,
    config: &Config,
    policy: &PolicyGate,
    req: &HttpRequest,
) -> Result<Access, StoreError> {
    if let Some(cookie) = crate::web::http::cookie(req, GRANT_COOKIE)
        && let Some(g) = ports.store.get_json::<Grant>(&keys::enrolment_grant(&cookie)).await?
    {
        return Ok(Access::Enrol(Holder {
            identity_id: g.identity_id,
            csrf: sha256_b64(format!("vigie-enrol-csrf\0{cookie}").as_bytes()),
            via: "enrolment-code".into(),
            can_revoke: false,
        }));
    }
    let Some(s) = session::current(ports, config, req).await? else { return Ok(Access::Nobody) };
    let cookie = crate::web::http::cookie(req, session::COOKIE).unwrap_or_default();
    let holder = Holder {
        identity_id: s.authentication.identity_id.clone(),
        csrf: sha256_b64(format!("vigie-account-csrf\0{cookie}").as_bytes()),
        via: format!("session:{}", s.sid),
        can_revoke: true,
    };
    // A new key is a new way in: the policy decides (`enrol_mie`; default: two factors, a login at
    // most 10 minutes old, not a sponsorship), within `webauthn.enrolment_max_auth_age_secs`.
    let max_age = config.webauthn.enrolment_max_auth_age_secs as i64;
    let recent = crate::now() - s.authentication.at <= max_age;
    let allowed = recent && enrol_allowed(ports, config, policy, req, &s.authentication).await;
    Ok(if allowed { Access::Enrol(holder) } else { Access::ListOnly(holder) })
}

/// Asks the policy engine whether this session may enrol a new MIE; audited.
async fn enrol_allowed(
    ports: &Ports,
    config: &Config,
    policy: &PolicyGate,
    req: &HttpRequest,
    auth: &vigie_core::Authentication,
) -> bool {
    let caller = crate::web::http::Caller::of(req, &config.server);
    crate::policy::decide_system(policy, ports, &caller, vigie_core::policy::Action::EnrolMie, auth, "system:enrol_mie")
        .await
        .allowed
}

/// The holder allowed to add a key, after the form's CSRF check.
pub(super) async fn enroller(
    ports: &Ports,
    config: &Config,
    policy: &PolicyGate,
    req: &HttpRequest,
    p: &Params,
) -> Result<Holder, (StatusCode, &'static str)> {
    let t = texts(pages::lang(req, None));
    let holder = match access(ports, config, policy, req).await {
        Ok(Access::Enrol(h)) => h,
        Ok(Access::ListOnly(_)) => return Err((StatusCode::FORBIDDEN, t.too_old)),
        Ok(Access::Nobody) => return Err((StatusCode::UNAUTHORIZED, t.nobody)),
        Err(_) => return Err((StatusCode::SERVICE_UNAVAILABLE, "the ephemeral store is unavailable")),
    };
    if !p.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), holder.csrf.as_bytes())) {
        return Err((StatusCode::FORBIDDEN, t.forbidden));
    }
    Ok(holder)
}
