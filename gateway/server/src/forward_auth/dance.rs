//! The redirect dance that gives an app its own cookie: `start` (the app's `/.vigie/start`, which
//! the proxy routes here) marks the browser with a login cookie on the app's host and sends it
//! through Vigie's `/authorize` as the app's client (so SSO, step-up, the policy and the audit
//! are the authorization endpoint's), the code comes back to the app's host at
//! `/.vigie/callback`, which the proxy routes to `callback`: the code is redeemed there, once,
//! for the app's cookie. Vigie's session cookie never reaches the app's host.
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use super::{
    Handle, Started, app_cookie, app_of_url, cookie_for, handle_key, header, login_cookie_name, named_cookie,
    request_host, started_key,
};
use crate::config::Config;
use crate::oidc::CodeGrant;
use crate::secrets::{ct_eq, random_token, sha256_b64};
use crate::session::{self, Session, keys};
use crate::state::{Audit, OidcState, Ports, Upstreams, parts};
use crate::web::http::Caller;
use crate::web::pages::{Back, Say, error_page, unavailable};

/// An address that belongs to none of the configured apps.
const NOT_AN_APP: Say<'static> = Say::new(
    "Cette adresse n'est pas une application protégée par Vigie : ouvrez l'application depuis son lien habituel.",
    "This address is not an application protected by Vigie: open the application from its usual link.",
);

parts! {
    /// What the dance reaches: the apps and the issuer (settings), the store (the started login,
    /// the code, the session, the handle), the directory (the login name), and what ending a
    /// session reaches (logout).
    pub struct Dance {
        config: Config,
        oidc: OidcState,
        ports: Ports,
        audit: Audit,
        upstreams: Upstreams,
    }
}

/// `GET /.vigie/start?rd=URL` on the app's host (routed to `/forward-auth/start`): a login for the
/// app `rd` belongs to. Only the URL of a configured app is accepted, reached through that app's
/// host: Vigie redirects nowhere else (no open redirect).
pub async fn start(req: HttpRequest, dance: Dance) -> HttpResponse {
    let Dance { config, ports, .. } = &dance;
    let rd = url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == "rd").map(|(_, v)| v);
    let Some((app, rd)) = rd.as_deref().and_then(|rd| app_of_url(config.forward_auth.apps(), rd)) else {
        return error_page(&req, StatusCode::BAD_REQUEST, NOT_AN_APP, Back::Home);
    };
    if !request_host(&req).eq_ignore_ascii_case(&app.host) {
        return error_page(
            &req,
            StatusCode::BAD_REQUEST,
            Say::new(
                "La connexion à cette application commence à sa propre adresse : ouvrez-la depuis son lien habituel.",
                "A sign-in for this application starts on the application's own address: open it from its usual link.",
            ),
            Back::To(&app.origin, Say::new("Ouvrir l'application", "Open the application")),
        );
    }
    let state = random_token(24);
    let verifier = random_token(32);
    let browser = random_token(24);
    let started = Started {
        rd,
        client_id: app.client_id.clone(),
        verifier: verifier.clone(),
        browser: sha256_b64(browser.as_bytes()),
    };
    let ttl = Duration::from_secs(config.tokens.login_flow_ttl_secs);
    if let Err(e) = ports.store.put_json(&started_key(&state), &started, ttl).await {
        return unavailable(&req, &e);
    }
    // RFC 7636 §4.2: S256, so the code is worth nothing to whoever sees it without the verifier,
    // which never leaves the store.
    let challenge = sha256_b64(verifier.as_bytes());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", &app.callback())
        .append_pair("scope", "openid")
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((header::LOCATION, config.endpoint(&format!("/authorize?{query}"))))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    resp.cookie(named_cookie(app, login_cookie_name(app), browser, Some(ttl.as_secs() as i64)));
    resp.finish()
}

/// `GET /.vigie/callback?code&state` on the app's host (the proxy routes it here): redeems the
/// code once and sets the app's cookie, then back to the URL the login started from.
pub async fn callback(req: HttpRequest, dance: Dance) -> HttpResponse {
    let Dance { config, ports, audit, .. } = &dance;
    let caller = Caller::of(&req, &config.server);
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    // The way back is the application's own address: a new sign-in starts from there.
    let refuse = |reason: &str, page: Say<'_>| {
        audit.record(AuditEvent {
            kind: Some(AuditKind::Refused),
            outcome: Some(Outcome::Failure),
            reason: Some(format!("forward-auth callback: {reason}")),
            ip: Some(caller.ip.clone()),
            user_agent: caller.user_agent.clone(),
            request_id: Some(caller.request_id.clone()),
            ..Default::default()
        });
        error_page(&req, StatusCode::BAD_REQUEST, page, Back::Home)
    };
    let expired = Say::new(
        "Ce lien de connexion a déjà servi ou a expiré : ouvrez à nouveau l'application.",
        "This sign-in link was already used or has expired: open the application again.",
    );
    let state = param("state").unwrap_or_default();
    let started = match ports.store.get_json::<Started>(&started_key(state)).await {
        Ok(Some(s)) => s,
        Ok(None) => return refuse("unknown, used or expired state", expired),
        Err(e) => return unavailable(&req, &e),
    };
    let Some((app, rd)) = app_of_url(config.forward_auth.apps(), &started.rd) else {
        return refuse("the app is no longer configured", expired);
    };
    // The browser that started this login, and no other, ends it: a callback URL handed to
    // someone else does not sign them in as whoever logged in (login CSRF). Checked before the
    // login is taken, so that such a try does not spend it.
    let browser = crate::web::http::cookie(&req, login_cookie_name(app)).map(|c| sha256_b64(c.as_bytes()));
    if !browser.is_some_and(|b| ct_eq(b.as_bytes(), started.browser.as_bytes())) {
        return refuse(
            "the callback came from another browser than the one that started the login",
            Say::new(
                "Cette connexion a été commencée dans un autre navigateur : ouvrez à nouveau l'application ici.",
                "This sign-in was started in another browser: open the application again here.",
            ),
        );
    }
    // Single use: the started login and the code are taken, not read.
    match ports.store.take_json::<Started>(&started_key(state)).await {
        Ok(Some(_)) => {}
        Ok(None) => return refuse("unknown, used or expired state", expired),
        Err(e) => return unavailable(&req, &e),
    }
    if let Some(error) = param("error") {
        // RFC 6749 §4.1.2.1: the authorization endpoint refused (the policy, no login method).
        let description = param("error_description").unwrap_or(error);
        let fr = format!("Vigie a refusé la connexion à cette application : {description}");
        let en = format!("Vigie refused the sign-in to this application: {description}");
        return error_page(&req, StatusCode::FORBIDDEN, Say::new(&fr, &en), Back::Home);
    }
    // The cookie is set on the host the browser is on: it must be the app's.
    if !request_host(&req).eq_ignore_ascii_case(&app.host) {
        return refuse("the callback did not come through the app's host", expired);
    }
    let grant = match param("code") {
        Some(code) => ports.store.take_json::<CodeGrant>(&keys::authorization_code(code)).await,
        None => Ok(None),
    };
    let grant = match grant {
        Ok(Some(g)) => g,
        Ok(None) => return refuse("unknown, used or expired code", expired),
        Err(e) => return unavailable(&req, &e),
    };
    // The code is bound to the app: its client, its callback, and the verifier of this login.
    let challenge = sha256_b64(started.verifier.as_bytes());
    let bound = grant.client_id == app.client_id
        && grant.client_id == started.client_id
        && grant.redirect_uri == app.callback()
        && grant.code_challenge.as_deref().is_some_and(|c| ct_eq(c.as_bytes(), challenge.as_bytes()));
    if !bound {
        return refuse("the code was not issued for this app's login", expired);
    }
    let live = async {
        let Some(key) = ports.store.get(&keys::session_of_sid(&grant.sid)).await? else { return Ok(None) };
        let key = String::from_utf8_lossy(&key).into_owned();
        let s = ports.store.get_json::<Session>(&key).await?;
        Ok::<_, vigie_core::store::StoreError>(
            s.filter(|s| s.sid == grant.sid && s.expires_at > crate::now()).map(|s| (key, s)),
        )
    };
    let (session_key, session) = match live.await {
        Ok(Some(s)) => s,
        Ok(None) => return refuse("the session ended before the callback", expired),
        Err(e) => return unavailable(&req, &e),
    };
    let identity_id = &session.authentication.identity_id;
    let user = match ports.directory.username_of(identity_id).await {
        Ok(u) => u.unwrap_or_else(|| identity_id.clone()),
        Err(e) => return unavailable(&req, &e),
    };
    let cookie = random_token(32);
    let handle = Handle { session_key, sid: session.sid.clone(), origin: app.origin.clone(), user };
    let left = (session.expires_at - crate::now()).max(1);
    if let Err(e) = ports.store.put_json(&handle_key(&cookie), &handle, Duration::from_secs(left as u64)).await {
        return unavailable(&req, &e);
    }
    audit.record(AuditEvent {
        kind: Some(AuditKind::TokenIssued),
        outcome: Some(Outcome::Success),
        subject: Some(identity_id.clone()),
        client_id: Some(app.client_id.clone()),
        method: Some(session.authentication.mie.as_str().into()),
        sid: Some(session.sid.clone()),
        reason: Some("forward-auth: the app's cookie".into()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    // The cookie lives no longer than the session could; the store's handle is what counts.
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((header::LOCATION, rd)).insert_header((header::CACHE_CONTROL, "no-store"));
    resp.cookie(cookie_for(app, cookie, Some(left)));
    resp.cookie(named_cookie(app, login_cookie_name(app), String::new(), Some(0)));
    resp.finish()
}

/// `/.vigie/logout` on an app's host: ends the Vigie session the app's cookie names — and so
/// every app's access and every OIDC client's session — then clears the cookie.
pub async fn logout(req: HttpRequest, dance: Dance) -> HttpResponse {
    let Dance { config, ports, oidc, audit, upstreams } = &dance;
    let caller = Caller::of(&req, &config.server);
    let host = request_host(&req);
    let proto = header(&req, "x-forwarded-proto").unwrap_or("https");
    let Some((app, _)) = app_of_url(config.forward_auth.apps(), &format!("{proto}://{host}/")).or_else(|| {
        // An app behind a path prefix: any of its host's apps will do for the cookie's name.
        config.forward_auth.apps().iter().find(|a| a.host.eq_ignore_ascii_case(host)).map(|a| (a, String::new()))
    }) else {
        return error_page(&req, StatusCode::BAD_REQUEST, NOT_AN_APP, Back::Home);
    };
    if let Some(cookie) = app_cookie(&req, app) {
        super::decisions::global().forget(&handle_key(&cookie));
        match ports.store.take_json::<Handle>(&handle_key(&cookie)).await {
            Ok(Some(handle)) => {
                let ending = session::Ending { config, ports, oidc, audit, http: &upstreams.http };
                crate::oidc::logout::end_session(ending, &caller, &handle.sid).await;
            }
            Ok(None) => {}
            Err(e) => return unavailable(&req, &e),
        }
    }
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((header::LOCATION, logged_out(config))).insert_header((header::CACHE_CONTROL, "no-store"));
    resp.cookie(cookie_for(app, String::new(), Some(0)));
    resp.finish()
}

/// Where a logged-out browser lands: Vigie's home page.
fn logged_out(config: &Config) -> String {
    config.endpoint("/")
}
