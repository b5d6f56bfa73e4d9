//! Enrolment codes: HR issues a one-time code ([`issue_enrolment_code`]); the agent redeems it at
//! `/account/enrol` for a short grant to register keys without a first MIE, and ends it when done.
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use super::pages::texts;
use super::{AccountError, KeyEvent, audit};
use crate::config::Config;
use crate::secrets::{ct_eq, random_token, sha256_b64};
use crate::session::keys::{self, PerAddress};
use crate::state::{Audit, Part, Ports};
use crate::web::http::{Caller, esc, parse_params};
use crate::web::pages::{self, html_page};

/// The cookie naming an enrolment grant: a redeemed code lets this browser register keys for
/// [`GRANT_SECS`], until the agent ends it or closes the browser (a session cookie): on a shared
/// workstation the next person must not find the page open on someone else's keys.
pub(super) const GRANT_COOKIE: &str = "__Host-vigie-enrol";
/// The double-submit CSRF cookie of the code form (no session exists yet).
const CODE_CSRF_COOKIE: &str = "__Host-vigie-enrol-csrf";
const GRANT_SECS: u64 = 10 * 60;

/// A one-time enrolment code, shown once to HR to hand over to the agent.
#[derive(Clone, Debug, Serialize)]
pub struct EnrolmentCode {
    /// `XXXX-XXXX-XXXX-XXXX` (80 random bits, Crockford base32: no I, L, O, U).
    pub code: String,
    /// Unix time after which it is refused.
    pub expires_at: i64,
    /// Where the agent types it.
    pub enrol_url: String,
}

#[derive(Serialize, Deserialize)]
struct CodeRecord {
    identity_id: String,
    issued_by: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Grant {
    pub(super) identity_id: String,
}

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or copied by hand survives.
pub(crate) const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A code as typed, in the form it is compared in: separators and case set aside, letters a
/// person may confuse read as the digits they look like (O as 0, I and L as 1).
pub(crate) fn normal_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

/// The store key of a code, by its [`normal_code`]: however it is typed, a code finds its entry.
fn code_key(code: &str) -> String {
    keys::enrolment_code(&normal_code(code))
}

/// A one-time code: 16 Crockford base32 characters (80 random bits) in groups of four.
pub(crate) fn new_code() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random generator");
    let chars: Vec<char> = bytes.iter().map(|b| CROCKFORD[usize::from(b & 31)] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// Issues a one-time code with which `identity_id` registers security keys at `/account/enrol`
/// without being signed in, for `webauthn.enrolment_code_ttl_secs`. Audited; the code itself is
/// stored hashed and never logged. For HR's admin API (`actor`: `staff:<id>` or `token:<name>`).
pub async fn issue_enrolment_code(
    ports: &Ports,
    config: &Config,
    audit_trail: &Audit,
    caller: &Caller,
    identity_id: &str,
    actor: &str,
) -> Result<EnrolmentCode, AccountError> {
    if ports.directory.identity(identity_id).await?.is_none() {
        return Err(AccountError::UnknownIdentity(identity_id.to_owned()));
    }
    let code = new_code();
    let ttl = config.webauthn.enrolment_code_ttl_secs;
    let record = CodeRecord { identity_id: identity_id.to_owned(), issued_by: actor.to_owned() };
    ports.store.put_json(&code_key(&code), &record, Duration::from_secs(ttl)).await?;
    audit(
        audit_trail,
        caller,
        KeyEvent {
            kind: AuditKind::EnrolmentCode,
            outcome: Outcome::Success,
            identity_id,
            actor: Some(actor),
            key: None,
            reason: Some("issued"),
        },
    );
    Ok(EnrolmentCode { code, expires_at: crate::now() + ttl as i64, enrol_url: config.endpoint("/account/enrol") })
}

/// `GET /account/enrol`: the form where an agent types the code HR gave them. Works without
/// JavaScript; the code form's CSRF token is a double-submit cookie.
pub async fn code_page(req: HttpRequest) -> HttpResponse {
    code_form(&req, StatusCode::OK, None)
}

fn code_form(req: &HttpRequest, status: StatusCode, error: Option<&str>) -> HttpResponse {
    let l = pages::lang(req, None);
    let t = texts(l);
    let token =
        crate::web::http::cookie(req, CODE_CSRF_COOKIE).filter(|c| c.len() == 43).unwrap_or_else(|| random_token(32));
    let error =
        error.map(|e| format!(r#"<p class="error" role="alert" id="code-error">{}</p>"#, esc(e))).unwrap_or_default();
    let main = format!(
        r#"{error}<form method="post" action="/account/enrol">
<input type="hidden" name="csrf" value="{csrf}">
<label for="code">{label}</label>
<input id="code" name="code" type="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required aria-describedby="code-help">
<p id="code-help" class="help">{help}</p>
<button type="submit">{submit}</button>
</form>"#,
        csrf = esc(&token),
        label = t.code_label,
        help = t.code_help,
        submit = t.code_submit,
    ) + &pages::lang_switch(l, "/account/enrol?");
    let mut resp = html_page(l, status, t.code_title, &main, None);
    if let Ok(v) =
        header::HeaderValue::from_str(&crate::web::http::host_cookie(CODE_CSRF_COOKIE, token, Some(3600)).to_string())
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /account/enrol` (`csrf`, `code`): a valid code is used up and this browser may
/// register keys for the code's identity for 15 minutes.
pub async fn redeem_code(
    req: HttpRequest,
    (config, ports, audit_trail): (Part<Config>, Part<Ports>, Part<Audit>),
    body: web::Bytes,
) -> HttpResponse {
    let caller = Caller::of(&req, &config.server);
    let t = texts(pages::lang(&req, None));
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(
            &req,
            StatusCode::BAD_REQUEST,
            pages::FORM_UNREADABLE,
            pages::Back::To(
                "/account/enrol",
                pages::Say::new("Revenir à la saisie du code", "Back to entering the code"),
            ),
        );
    };
    let csrf_ok = match (crate::web::http::cookie(&req, CODE_CSRF_COOKIE), p.get("csrf")) {
        (Some(c), Some(f)) => ct_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    };
    if !csrf_ok {
        return code_form(&req, StatusCode::FORBIDDEN, Some(t.forbidden));
    }
    let window = Duration::from_secs(config.login.ip_window_secs);
    match ports.store.incr(&caller.rate_limit_key(PerAddress::Enrolment), window).await {
        Ok(n) if n > config.login.max_attempts_per_ip => {
            return pages::rate_limited(
                &req,
                config.login.ip_window_secs,
                pages::Back::To(
                    "/account/enrol",
                    pages::Say::new("Revenir à la saisie du code", "Back to entering the code"),
                ),
            );
        }
        Ok(_) => {}
        Err(e) => return pages::unavailable(&req, &e),
    }
    let code = p.get("code").filter(|c| c.len() <= 64).unwrap_or_default();
    // Single use: `take` returns the record to one caller only, across replicas.
    let record = match ports.store.take_json::<CodeRecord>(&code_key(code)).await {
        Ok(Some(r)) => Ok(Some(r)),
        // Not an admin's code: maybe HR's, issued to a joiner by another process into the directory.
        Ok(None) => crate::lifecycle::enrolment::take(&ports.lifecycle, code)
            .await
            .map(|r| r.map(|(identity_id, issued_by)| CodeRecord { identity_id, issued_by }))
            .map_err(|e| vigie_core::store::StoreError::Unavailable(e.to_string())),
        Err(e) => Err(e),
    };
    let record = match record {
        Ok(Some(r)) => r,
        Ok(None) => {
            audit_trail.record(AuditEvent {
                kind: Some(AuditKind::EnrolmentCode),
                outcome: Some(Outcome::Failure),
                method: Some("fido2".into()),
                ip: Some(caller.ip.clone()),
                user_agent: caller.user_agent.clone(),
                request_id: Some(caller.request_id.clone()),
                reason: Some("unknown, expired or used enrolment code".into()),
                ..Default::default()
            });
            return code_form(&req, StatusCode::BAD_REQUEST, Some(t.code_refused));
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let cookie = random_token(32);
    let grant = Grant { identity_id: record.identity_id.clone() };
    if let Err(e) = ports.store.put_json(&keys::enrolment_grant(&cookie), &grant, Duration::from_secs(GRANT_SECS)).await
    {
        return pages::unavailable(&req, &e);
    }
    audit(
        &audit_trail,
        &caller,
        KeyEvent {
            kind: AuditKind::EnrolmentCode,
            outcome: Outcome::Success,
            identity_id: &record.identity_id,
            actor: Some(&format!("code issued by {}", record.issued_by)),
            key: None,
            reason: Some("redeemed: key registration open for 10 minutes"),
        },
    );
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/account/keys"))
        .cookie(crate::web::http::host_cookie(GRANT_COOKIE, cookie, None))
        .finish()
}

/// `POST /account/enrol/done` (`csrf`): ends this browser's enrolment grant.
pub async fn end_enrolment(req: HttpRequest, ports: Part<Ports>, body: web::Bytes) -> HttpResponse {
    let l = pages::lang(&req, None);
    let t = texts(l);
    let p = parse_params(&body).unwrap_or_default();
    let Some(cookie) = crate::web::http::cookie(&req, GRANT_COOKIE) else {
        return html_page(l, StatusCode::OK, t.code_title, &format!("<p>{}</p>", t.done_text), None);
    };
    let csrf = sha256_b64(format!("vigie-enrol-csrf\0{cookie}").as_bytes());
    if !p.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), csrf.as_bytes())) {
        return pages::error_page(
            &req,
            StatusCode::FORBIDDEN,
            pages::Say::chosen(t.forbidden),
            pages::Back::To(
                "/account/enrol",
                pages::Say::new("Revenir à la saisie du code", "Back to entering the code"),
            ),
        );
    }
    if let Err(e) = ports.store.delete(&keys::enrolment_grant(&cookie)).await {
        return pages::unavailable(&req, &e);
    }
    let mut resp =
        html_page(l, StatusCode::OK, t.code_title, &format!(r#"<p role="status">{}</p>"#, t.done_text), None);
    if let Ok(v) =
        header::HeaderValue::from_str(&crate::web::http::host_cookie(GRANT_COOKIE, String::new(), Some(0)).to_string())
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_groups_of_crockford_base32_and_read_forgivingly() {
        let c = new_code();
        assert_eq!(c.len(), 19);
        assert!(c.split('-').all(|g| g.len() == 4 && g.bytes().all(|b| CROCKFORD.contains(&b))), "{c}");
        assert_ne!(c, new_code());
        assert_eq!(code_key(&c), code_key(&c.to_lowercase().replace('-', " ")));
        assert_eq!(code_key("0O1I-L"), code_key("00111"));
        assert_ne!(code_key("ABCD"), code_key("ABCE"));
    }
}
