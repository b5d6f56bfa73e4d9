//! Parsing an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), in the order that
//! decides where an error goes: a page, or the client's redirect URI.
use vigie_core::AssuranceLevel;

use crate::config::{ClientConfig, Config, LoginConfig};
use crate::oidc::{AuthRequest, ForeignAcr, Prompt, ResponseMode};
use crate::state::OidcState;
use crate::web::http::Params;

/// An error returned to the client through its redirect URI (RFC 6749 §4.1.2.1).
pub struct Redirected {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

pub enum Invalid {
    /// Shown to the user: the client or redirect URI cannot be trusted.
    Page(String),
    Redirect(Redirected),
}

/// RFC 7636 §4.1/§4.2: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `acr` values of other schemes Vigie knows without configuration, with the level that meets
/// each. Pro Santé Connect asks for `eidas1` (eIDAS substantial; reference/psc.md §1: ANS's
/// requests send `acr_values=eidas1`). A FI tiers answers it with "2FA résistante au phishing"
/// (reference/psc.md §3, ANS's FI-tiers resources: "Définition attendue : 2FA résistante au
/// phishing"), and password + TOTP, a transition MIE of the RIE, stopped counting on 1 January
/// 2026 (seeds 004: "MIE de transition valable jusqu'au 01/01/2026"): so a card or a FIDO2 key.
pub const BUILT_IN_ACR_MAP: [(&str, AssuranceLevel); 1] = [("eidas1", AssuranceLevel::TwoFactorPhishingResistant)];

/// The level an `acr` value asks for: Vigie's own, else the client's `acr_values_map`, else
/// `login.acr_values_map`, else [`BUILT_IN_ACR_MAP`]; `None` for a value no one mapped (OIDC
/// Core §3.1.2.1: acr_values is a voluntary claim, such a value is ignored).
fn requested_level(login: &LoginConfig, client: &ClientConfig, value: &str) -> Option<AssuranceLevel> {
    AssuranceLevel::from_acr(value).or_else(|| {
        let configured = client.acr_values_map.get(value).or_else(|| login.acr_values_map.get(value));
        match configured {
            Some(acr) => AssuranceLevel::from_acr(acr),
            None => BUILT_IN_ACR_MAP.iter().find(|(v, _)| *v == value).map(|(_, l)| *l),
        }
    })
}

/// Validates an authorization request, in the order that decides where errors go.
pub fn validate(params: Result<Params, String>, config: &Config, oidc: &OidcState) -> Result<AuthRequest, Invalid> {
    let params = match params {
        Ok(p) => p,
        Err(e) => return Err(Invalid::Page(format!("invalid authorization request: {e}"))),
    };
    let client_id = params.get("client_id").ok_or_else(|| Invalid::Page("the request has no client_id".into()))?;
    let client = oidc.clients.get(client_id).ok_or_else(|| Invalid::Page(format!("unknown client {client_id:?}")))?;
    // OIDC Core §3.1.2.1: redirect_uri is REQUIRED; RFC 9700 §2.1: exact string matching.
    let redirect_uri =
        params.get("redirect_uri").ok_or_else(|| Invalid::Page("the request has no redirect_uri".into()))?;
    if !client.config.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Invalid::Page(format!("redirect_uri {redirect_uri:?} is not registered for client {client_id:?}")));
    }
    let response_mode = match params.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => ResponseMode::Query,
    };
    let state_param = params.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: String| {
        Invalid::Redirect(Redirected {
            redirect_uri: redirect_uri.to_owned(),
            response_mode,
            state: state_param.clone(),
            error,
            description,
        })
    };
    if let Some(m) = params.get("response_mode")
        && !matches!(m, "query" | "form_post")
    {
        return Err(fail("invalid_request", format!("response_mode {m:?} is not supported (query, form_post)")));
    }
    // OIDC Core §6: request objects are not supported.
    if params.get("request").is_some() {
        return Err(fail("request_not_supported", "the request parameter is not supported".into()));
    }
    if params.get("request_uri").is_some() {
        return Err(fail("request_uri_not_supported", "the request_uri parameter is not supported".into()));
    }
    if params.get("registration").is_some() {
        return Err(fail("registration_not_supported", "the registration parameter is not supported".into()));
    }
    match params.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is missing".into())),
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use \"code\""),
            ));
        }
    }
    let scopes: Vec<String> =
        params.get("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    // OIDC Core §3.1.2.1: "OpenID Connect requests MUST contain the openid scope value."
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail("invalid_scope", "scope must include \"openid\"".into()));
    }
    if let Some(s) = scopes.iter().find(|s| !client.config.scopes.contains(s)) {
        return Err(fail("invalid_scope", format!("scope {s:?} is not allowed for this client")));
    }
    // RFC 7636 §4.3; RFC 9700 §2.1.1: PKCE, S256 only.
    let code_challenge = params.get("code_challenge");
    match (code_challenge, params.get("code_challenge_method")) {
        (None, Some(_)) => return Err(fail("invalid_request", "code_challenge_method without code_challenge".into())),
        (None, None) if client.config.require_pkce => {
            return Err(fail("invalid_request", "code_challenge is required (PKCE, RFC 7636) for this client".into()));
        }
        (Some(_), m) if m != Some("S256") => {
            return Err(fail("invalid_request", "code_challenge_method must be S256 (plain is not accepted)".into()));
        }
        (Some(c), _) if !is_pkce_value(c) || c.len() != 43 => {
            return Err(fail(
                "invalid_request",
                "code_challenge must be the 43-character base64url SHA-256 of the verifier".into(),
            ));
        }
        _ => {}
    }
    // OIDC Core §3.1.2.1 prompt: "If this parameter contains none with any other value, an
    // error is returned."
    let prompts: Vec<&str> = params.get("prompt").unwrap_or_default().split(' ').filter(|s| !s.is_empty()).collect();
    for p in &prompts {
        if !matches!(*p, "none" | "login" | "consent" | "select_account") {
            return Err(fail("invalid_request", format!("prompt value {p:?} is not known")));
        }
    }
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Err(fail("invalid_request", "prompt=none cannot be combined with other values".into()));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => return Err(fail("invalid_request", "max_age must be a non-negative integer".into())),
        },
    };
    // FI tiers (reference/psc.md §3: PSC re-authenticates at most every 4 h): an authentication
    // older than the client's maximum is never reused for it, whatever `max_age` it sent.
    let max_age = match &client.config.fi_tiers {
        Some(fi) => {
            let limit = i64::try_from(fi.max_auth_age_secs).unwrap_or(i64::MAX);
            Some(max_age.map_or(limit, |m| m.min(limit)))
        }
        None => max_age,
    };
    let mut acr_essential = false;
    let mut unknown_essential = false;
    // Each value asked for with its level, and `Some(value)` for another scheme's (answered in
    // kind), in the request's order.
    let levels_of = |values: &[&str]| -> Vec<(AssuranceLevel, Option<String>)> {
        let named = |v: &&str| {
            let level = requested_level(&config.login, &client.config, v)?;
            Some((level, AssuranceLevel::from_acr(v).is_none().then(|| (*v).to_owned())))
        };
        values.iter().filter_map(named).collect()
    };
    let mut asked = match params.get("acr_values") {
        Some(values) => levels_of(&values.split(' ').collect::<Vec<_>>()),
        None => Vec::new(),
    };
    // OIDC Core §5.5: the claims parameter; §5.5.1.1 for an essential acr.
    if let Some(claims) = params.get("claims") {
        let v: serde_json::Value = serde_json::from_str(claims)
            .map_err(|e| fail("invalid_request", format!("claims is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(fail("invalid_request", "claims must be a JSON object".into()));
        }
        if let Some(req) = v.get("id_token").and_then(|t| t.get("acr")).filter(|r| r.is_object()) {
            let essential = req.get("essential").and_then(|e| e.as_bool()).unwrap_or(false);
            let mut requested: Vec<&str> = req
                .get("values")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            if let Some(one) = req.get("value").and_then(|v| v.as_str()) {
                requested.push(one);
            }
            let known = levels_of(&requested);
            if essential {
                acr_essential = true;
                if known.is_empty() && !requested.is_empty() {
                    unknown_essential = true;
                }
                asked = known;
            } else {
                asked.extend(known);
            }
        }
    }
    let mut acr: Vec<AssuranceLevel> = asked.iter().map(|(level, _)| *level).collect();
    let mut foreign_acr: Vec<ForeignAcr> = Vec::new();
    for (level, value) in asked {
        if let Some(value) = value
            && !foreign_acr.iter().any(|f| f.value == value)
        {
            foreign_acr.push(ForeignAcr { value, level });
        }
    }
    // A client configured with a minimum level: acr values below it cannot be met by a login to
    // it, so they are dropped, and the minimum is required when nothing stronger was asked.
    if let Some(min) = client.config.min_level() {
        acr.retain(|l| *l >= min);
        if acr.is_empty() {
            acr.push(min);
        }
    }
    if unknown_essential {
        // OpenID Connect Core Unmet Authentication Requirements 1.0 §2.
        return Err(fail(
            "unmet_authentication_requirements",
            "none of the essential acr values is offered by this provider".into(),
        ));
    }
    let bounded = |name: &str, max: usize| -> Result<Option<String>, Invalid> {
        match params.get(name) {
            Some(v) if v.len() > max => Err(fail("invalid_request", format!("{name} is longer than {max} characters"))),
            v => Ok(v.map(str::to_owned)),
        }
    };
    let nonce = bounded("nonce", 512)?;
    let login_hint = bounded("login_hint", 256)?;
    let ui_locales = bounded("ui_locales", 64)?;
    if state_param.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(fail("invalid_request", "state is longer than 2048 characters".into()));
    }
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        response_mode,
        scopes,
        state: state_param,
        nonce,
        code_challenge: code_challenge.map(str::to_owned),
        prompt: if prompts.contains(&"none") {
            Prompt::None
        // OIDC Core §3.1.2.1 max_age: "Note that max_age=0 is equivalent to prompt=login" —
        // also within the second of the last login, where the elapsed time is 0, not > 0.
        } else if prompts.contains(&"login") || max_age == Some(0) {
            Prompt::Login
        } else {
            Prompt::Default
        },
        max_age,
        login_hint,
        acr,
        foreign_acr,
        acr_essential,
        ui_locales,
        only_mie: None,
    })
}

/// RFC 6749 §4.1.2.1: a parameter "included more than once" is `invalid_request`, sent to the
/// client like any other error once the client and its redirect URI are known; an error page
/// only when one of them is repeated, missing or not registered.
pub(super) fn repeated_parameter(raw: &[u8], error: String, oidc: &OidcState) -> Invalid {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw).into_owned().collect();
    let once = |name: &str| -> Option<String> {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(v), None) if !v.is_empty() => Some(v.clone()),
            _ => None,
        }
    };
    let client = once("client_id").and_then(|c| oidc.clients.get(&c));
    let redirect_uri = once("redirect_uri").filter(|r| client.is_some_and(|c| c.config.redirect_uris.contains(r)));
    let Some(redirect_uri) = redirect_uri else {
        return Invalid::Page(format!("invalid authorization request: {error}"));
    };
    let response_mode = match once("response_mode").as_deref() {
        Some("form_post") => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    };
    Invalid::Redirect(Redirected {
        redirect_uri,
        response_mode,
        state: once("state").filter(|s| s.len() <= 2048),
        error: "invalid_request",
        description: error,
    })
}

pub fn redirected(r: &AuthRequest, error: &'static str, description: &str) -> Redirected {
    Redirected {
        redirect_uri: r.redirect_uri.clone(),
        response_mode: r.response_mode,
        state: r.state.clone(),
        error,
        description: description.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pkce_values_follow_rfc_7636() {
        assert!(is_pkce_value("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }

    proptest! {
        #[test]
        fn pkce_check_never_panics(s in "\\PC{0,200}") {
            let _ = is_pkce_value(&s);
        }
    }
}
