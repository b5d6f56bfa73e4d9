//! Login with a sponsorship's temporary credential (MIE `sponsorship`): the username and the code
//! a colleague's sponsorship gave (`/sponsorship`), valid `sponsorship.credential_ttl_secs`. Two
//! factors for the policies (the code, and the person vouched for face to face), not
//! phishing-resistant, not a MIE of the RIE: the policies decide which clients accept it (by
//! default the non-sensitive ones from inside, never the DMP). Attempts are limited per account
//! and per IP address; failures never say whether the account exists.
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::store::{Attempt, StoreExt};
use vigie_core::{Authentication, Mie};

use super::form::{Flows, LoginAttempt, PostedLogin, limit_per_ip, limited, posted_login};
use crate::config::Config;
use crate::secrets::ct_eq;
use crate::session::keys;
use crate::state::{Part, Ports};
use crate::web::http::esc;
use crate::web::pages;

/// The login page's section: username and temporary code.
pub fn page_section(l: pages::Lang, flow_id: &str, csrf: &str) -> String {
    let (heading, help, user, code, submit) = match l {
        pages::Lang::Fr => (
            "Ou avec un code temporaire de parrainage",
            "Sans carte utilisable, un collègue de votre unité peut vous parrainer : il vous remet un code valable 24 heures.",
            // Its own accessible name: the page has the password form's "Identifiant" too.
            "Identifiant (parrainage)",
            "Code temporaire",
            "Se connecter avec le code",
        ),
        pages::Lang::En => (
            "Or with a temporary sponsorship code",
            "Without a usable card, a colleague of your unit may sponsor you: they give you a code valid 24 hours.",
            "Username (sponsorship)",
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
<input id="sp-username" name="username" type="text" autocomplete="username" required>
<label for="sp-code">{code}</label>
<input id="sp-code" name="code" type="text" autocomplete="off" required aria-describedby="sponsorship-help">
<button type="submit">{submit}</button>
</form>"#,
        flow = esc(flow_id),
        csrf = esc(csrf),
    )
}

/// `POST /login/sponsorship` (`flow`, `csrf`, `username`, `code`).
pub async fn submit(
    req: HttpRequest,
    flows: Flows,
    ports: Part<Ports>,
    config: Part<Config>,
    body: web::Bytes,
) -> HttpResponse {
    let caller = flows.caller(&req);
    let PostedLogin { params, flow_id, flow } = match posted_login(&ports, &req, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let username = limited(&params, "username", 128).unwrap_or_default().trim().to_owned();
    let code = limited(&params, "code", 64).unwrap_or_default();
    let fail = |why: &str, status: StatusCode| {
        metrics::counter!("vigie_login_total", "method" => "sponsorship", "result" => "failure").increment(1);
        flows.refused(&caller, &flow, Mie::Sponsorship, &username, Some(why));
        let mut page = flows.render(&req, &flow_id, &flow, "");
        *page.status_mut() = status;
        page
    };
    if !config.sponsorship.enabled {
        return fail("sponsorship is disabled", StatusCode::FORBIDDEN);
    }
    let cfg = &config.login;
    let at = LoginAttempt { req: &req, caller: &caller, flow_id: &flow_id, flow: &flow };
    if let Err(r) = limit_per_ip(&flows, &ports, cfg, at, Mie::Sponsorship, &username, false).await {
        return r;
    }
    // Counted before the code is checked, so that concurrent guesses cannot all be checked.
    let window = Duration::from_secs(cfg.lockout_secs);
    match ports.store.attempt(&keys::sponsorship_login_failures(&username), cfg.max_failures_per_account, window).await
    {
        Ok(Attempt::Allowed(_)) => {}
        Ok(Attempt::Refused(_)) => return fail("account locked after repeated failures", StatusCode::UNAUTHORIZED),
        Err(e) => return pages::unavailable(&req, &e),
    }
    match verify(&ports, &username, &code).await {
        Ok(Ok((identity_id, grant_id))) => {
            let _ = ports.store.delete(&keys::sponsorship_login_failures(&username)).await;
            let auth = Authentication::new(
                identity_id,
                Mie::Sponsorship,
                vigie_core::policy::factors_of(Mie::Sponsorship),
                crate::now(),
            )
            .with_credential(format!("sponsorship:{grant_id}"));
            flows.complete(at, auth, &username).await
        }
        Ok(Err(why)) => fail(why, StatusCode::UNAUTHORIZED),
        Err(e) => pages::unavailable(&req, &e),
    }
}

/// The identity and the sponsorship whose code this is. The outer error is an outage; the inner
/// one a refused login (its reason for the audit line only).
async fn verify(ports: &Ports, username: &str, code: &str) -> Result<Result<(String, String), &'static str>, String> {
    let hash = crate::sponsorship::grant::code_hash(code);
    let Some(account) = ports.directory.account_by_username(username).await.map_err(|e| e.to_string())? else {
        return Ok(Err("unknown account"));
    };
    if account.disabled {
        return Ok(Err("account disabled"));
    }
    let grants =
        ports.sponsorships.active_grants(&account.identity_id, crate::now()).await.map_err(|e| e.to_string())?;
    if grants.is_empty() {
        return Ok(Err("no temporary credential in force (none granted, expired or revoked)"));
    }
    // Every grant is compared, in constant time each, whichever matches.
    let found = grants
        .iter()
        .fold(None, |found, g| if ct_eq(g.code_hash.as_bytes(), hash.as_bytes()) { Some(g.id.clone()) } else { found });
    Ok(found.map(|grant| (account.identity_id, grant)).ok_or("wrong temporary code"))
}
