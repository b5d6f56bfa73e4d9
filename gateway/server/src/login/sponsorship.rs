//! Login with a sponsorship's temporary credential (MIE `sponsorship`): the username and the code
//! a colleague's sponsorship gave (`/sponsorship`), valid `sponsorship.credential_ttl_secs`. Two
//! factors for the policies (the code, and the person vouched for face to face), not
//! phishing-resistant, not a MIE of the RIE: the policies decide which clients accept it (by
//! default the non-sensitive ones from inside, never the DMP). Attempts are limited per account
//! and per IP address; failures never say whether the account exists.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::audit::Outcome;
use vigie_core::store::StoreExt;
use vigie_core::{Authentication, Mie};

use super::{BROWSER_COOKIE, LoginFlow, flow_key, pages};
use crate::app::{AppState, State};
use crate::http::{Caller, Params, esc, parse_params};
use crate::secrets::{ct_eq, sha256_b64};

/// The login page's section: username and temporary code.
pub fn page_section(l: pages::Lang, flow_id: &str, csrf: &str, username: &str) -> String {
    let (heading, help, user, code, submit) = match l {
        pages::Lang::Fr => (
            "Ou avec un code temporaire de parrainage",
            "Sans carte utilisable, un collègue de votre unité peut vous parrainer : il vous remet un code valable 24 heures.",
            "Identifiant",
            "Code temporaire",
            "Se connecter avec le code",
        ),
        pages::Lang::En => (
            "Or with a temporary sponsorship code",
            "Without a usable card, a colleague of your unit may sponsor you: they give you a code valid 24 hours.",
            "Username",
            "Temporary code",
            "Sign in with the code",
        ),
    };
    format!(
        r#"<h2 class="or">{heading}</h2><form method="post" action="/login/sponsorship" class="login" id="sponsorship-login" autocomplete="off">
<input type="hidden" name="flow" value="{flow}">
<input type="hidden" name="csrf" value="{csrf}">
<p class="help" id="sponsorship-help">{help}</p>
<label for="sp-username">{user}</label>
<input id="sp-username" name="username" type="text" autocomplete="username" required value="{username}">
<label for="sp-code">{code}</label>
<input id="sp-code" name="code" type="text" autocomplete="off" required aria-describedby="sponsorship-help">
<button type="submit">{submit}</button>
</form>"#,
        flow = esc(flow_id),
        csrf = esc(csrf),
        username = esc(username),
    )
}

fn limited(p: &Params, name: &str, max: usize) -> Option<String> {
    p.get(name).filter(|v| v.len() <= max).map(str::to_owned)
}

fn account_key(username: &str) -> String {
    format!("rl:sponsorship-login:{}", username.to_lowercase())
}

/// `POST /login/sponsorship` (`flow`, `csrf`, `username`, `code`).
pub async fn submit(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let caller = Caller::of(&req, &state);
    let Ok(params) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, "the login form was malformed");
    };
    let Some(flow_id) = limited(&params, "flow", 64) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, "the login form has no flow");
    };
    let flow = match state.store.get_json::<LoginFlow>(&flow_key(&flow_id)).await {
        Ok(Some(f)) => f,
        Ok(None) => return pages::flow_expired(&req),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // CSRF: the form's token and the browser-binding cookie must both match the flow.
    let csrf_ok = params.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), flow.csrf.as_bytes()));
    let browser_ok = crate::http::cookie(&req, BROWSER_COOKIE)
        .is_some_and(|b| ct_eq(sha256_b64(b.as_bytes()).as_bytes(), flow.browser.as_bytes()));
    if !csrf_ok || !browser_ok {
        return pages::error_page(
            &req,
            StatusCode::FORBIDDEN,
            "this login form was not issued to this browser: start again from the application",
        );
    }
    let username = limited(&params, "username", 128).unwrap_or_default().trim().to_owned();
    let code = limited(&params, "code", 64).unwrap_or_default();
    let fail = |why: &str, status: StatusCode| {
        metrics::counter!("vigie_login_total", "method" => "sponsorship", "result" => "failure").increment(1);
        super::audit_login(&state, &caller, Mie::Sponsorship, &username, None, &flow, Outcome::Failure, Some(why));
        let mut page = super::render(&req, &state, &flow_id, &flow, "");
        *page.status_mut() = status;
        page
    };
    if !state.config.sponsorship.enabled {
        return fail("sponsorship is disabled", StatusCode::FORBIDDEN);
    }
    let cfg = &state.config.login;
    let ip_key = format!("rl:login-ip:{}", caller.ip);
    match state.store.incr(&ip_key, Duration::from_secs(cfg.ip_window_secs)).await {
        Ok(n) if n > cfg.max_attempts_per_ip => {
            super::audit_login(
                &state,
                &caller,
                Mie::Sponsorship,
                &username,
                None,
                &flow,
                Outcome::Failure,
                Some("too many attempts from this address"),
            );
            return pages::rate_limited(&req, cfg.ip_window_secs);
        }
        Ok(_) => {}
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let failures = match state.store.get(&account_key(&username)).await {
        Ok(v) => v.and_then(|f| String::from_utf8(f).ok()).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if failures >= cfg.max_failures_per_account {
        return fail("account locked after repeated failures", StatusCode::UNAUTHORIZED);
    }
    match verify(&state, &username, &code).await {
        Ok(Ok((identity_id, grant_id))) => {
            let _ = state.store.delete(&account_key(&username)).await;
            let auth = Authentication::new(
                identity_id,
                Mie::Sponsorship,
                vigie_core::policy::factors_of(Mie::Sponsorship),
                crate::now(),
            )
            .with_credential(format!("sponsorship:{grant_id}"));
            super::complete(&state, &req, &caller, &flow_id, flow, auth, &username).await
        }
        Ok(Err(why)) => {
            if let Err(e) = state.store.incr(&account_key(&username), Duration::from_secs(cfg.lockout_secs)).await {
                return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            }
            fail(why, StatusCode::UNAUTHORIZED)
        }
        Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// The identity and the sponsorship whose code this is. The outer error is an outage; the inner
/// one a refused login (its reason for the audit line only).
async fn verify(
    state: &AppState,
    username: &str,
    code: &str,
) -> Result<Result<(String, String), &'static str>, String> {
    let hash = crate::sponsor::code_hash(code);
    let Some(account) = state.directory.account_by_username(username).await.map_err(|e| e.to_string())? else {
        return Ok(Err("unknown account"));
    };
    if account.disabled {
        return Ok(Err("account disabled"));
    }
    let grants =
        state.sponsorships.active_grants(&account.identity_id, crate::now()).await.map_err(|e| e.to_string())?;
    if grants.is_empty() {
        return Ok(Err("no temporary credential in force (none granted, expired or revoked)"));
    }
    // Every grant is compared, in constant time each, whichever matches.
    let found = grants
        .iter()
        .fold(None, |found, g| if ct_eq(g.code_hash.as_bytes(), hash.as_bytes()) { Some(g.id.clone()) } else { found });
    Ok(found.map(|grant| (account.identity_id, grant)).ok_or("wrong temporary code"))
}
