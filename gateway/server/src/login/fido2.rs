//! FIDO2 / WebAuthn login (webauthn-rs): a discoverable credential on a security key, with user
//! verification (PIN or biometric on the key), is two phishing-resistant factors (MIE `fido2`).
//! The login page's section, the small script that calls the browser's WebAuthn API, the
//! challenge endpoint and the assertion check. Challenges live in the ephemeral store, bound to
//! the login flow, single use.
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use vigie_core::fido2::CounterCheck;
use vigie_core::store::StoreExt;
use vigie_core::{Authentication, Factor, Mie};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PublicKeyCredential, Url, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::LoginFlow;
use super::form::{Flows, LoginAttempt};
use crate::config::Config;
use crate::secrets::ct_eq;
use crate::session::keys::{self, PerAddress};
use crate::state::{Part, Ports};
use crate::web::http::{parse_params, problem};
use crate::web::pages::{self, Back, Lang, Say};

/// The relying party of this gateway: RP ID and origin from `[webauthn]` or the issuer.
pub fn relying_party(config: &Config) -> anyhow::Result<Webauthn> {
    let (rp_id, origin) =
        config.webauthn.relying_party(&config.issuer).map_err(|e| anyhow::anyhow!("`webauthn.origin`: {e}"))?;
    let origin: Url = origin;
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| {
            b.rp_name(&config.webauthn.rp_name).timeout(Duration::from_secs(config.webauthn.ceremony_ttl_secs)).build()
        })
        .map_err(|e| anyhow::anyhow!("`webauthn`: the relying party {rp_id:?} / {origin} is refused: {e}"))
}

/// Base64url without padding, as WebAuthn JSON and our credential ids use.
pub fn b64url(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

struct Texts {
    button: &'static str,
    help: &'static str,
    unsupported: &'static str,
    failed: &'static str,
    needs_script: &'static str,
    expired: &'static str,
    refused: &'static str,
    cloned: &'static str,
}

const FR: Texts = Texts {
    button: "Se connecter avec ma clé de sécurité FIDO2",
    help: "Branchez votre clé ; son code PIN ou votre empreinte vous sera demandé.",
    unsupported: "Ce navigateur ne permet pas d'utiliser une clé de sécurité.",
    failed: "La clé de sécurité n'a pas répondu ou l'opération a été annulée. Réessayez.",
    needs_script: "La connexion par clé de sécurité a besoin de JavaScript et d'un navigateur compatible WebAuthn.",
    expired: "La demande faite à la clé de sécurité a expiré ou a déjà servi. Revenez à la page de connexion et réessayez.",
    refused: "Cette clé de sécurité n'a pas été reconnue, ou la vérification a échoué. Réessayez ou contactez le support.",
    cloned: "Cette clé de sécurité semble avoir été copiée : la connexion est refusée et l'incident est enregistré. Contactez le support.",
};

const EN: Texts = Texts {
    button: "Sign in with my FIDO2 security key",
    help: "Plug in your key; you will be asked for its PIN or your fingerprint.",
    unsupported: "This browser cannot use a security key.",
    failed: "The security key did not answer or the operation was cancelled. Try again.",
    needs_script: "Signing in with a security key needs JavaScript and a browser that supports WebAuthn.",
    expired: "The request made to the security key has expired or was already used. Go back to the sign-in page and try again.",
    refused: "This security key was not recognised, or the check failed. Try again or contact support.",
    cloned: "This security key appears to have been copied: sign-in is refused and the incident recorded. Contact support.",
};

fn texts(l: Lang) -> &'static Texts {
    pages::tr(l, &FR, &EN)
}

/// The login page's FIDO2 section for a flow: a form the script completes with the key's
/// assertion, then submits (so the browser follows the usual redirect to the application).
pub fn page_section(lang: Lang, flow_id: &str, csrf: &str) -> String {
    let t = texts(lang);
    format!(
        r#"<section class="method" aria-labelledby="fido2-title"><h2 id="fido2-title" class="sr-only">FIDO2</h2>
<form method="post" action="/login/fido2" id="fido2-login" data-webauthn="get" data-options="/login/fido2/options">
<input type="hidden" name="flow" value="{flow}">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="credential" value="">
<button type="submit" id="fido2-button">{button}</button>
<p class="help">{help}</p>
<p class="error" role="alert" id="fido2-error" hidden data-unsupported="{unsupported}" data-failed="{failed}"></p>
</form>
<script src="/static/fido2.js" defer></script></section>"#,
        flow = crate::web::http::esc(flow_id),
        csrf = crate::web::http::esc(csrf),
        button = t.button,
        help = t.help,
        unsupported = crate::web::http::esc(t.unsupported),
        failed = crate::web::http::esc(t.failed),
    )
}

/// Lets a page that carries a WebAuthn form load `/static/fido2.js` and fetch its challenge
/// (the pages' CSP is otherwise `default-src 'none'`).
pub fn allow_script(resp: &mut HttpResponse) {
    let Some(csp) = resp.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()) else { return };
    let csp = csp.replacen("default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';", 1);
    if let Ok(v) = header::HeaderValue::from_str(&csp) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The script: asks the server for a challenge, calls `navigator.credentials.get/create`,
/// puts the result (WebAuthn JSON, base64url) in the form's `credential` field and submits.
const SCRIPT: &str = r#""use strict";
(function () {
  function dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var b = atob(s), out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }
  function enc(buf) {
    var b = new Uint8Array(buf), s = "";
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: dec(c.id) }); });
  }
  function show(form, text) {
    var p = form.querySelector(".error");
    if (p) { p.textContent = text; p.hidden = false; }
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    form.addEventListener("submit", async function (ev) {
      if (form.dataset.ready === "1") return;
      ev.preventDefault();
      var err = form.querySelector(".error");
      if (!window.PublicKeyCredential || !navigator.credentials) { show(form, err.dataset.unsupported); return; }
      var body = new URLSearchParams();
      new FormData(form).forEach(function (v, k) { if (k !== "credential") body.append(k, v); });
      try {
        var r = await fetch(form.dataset.options, { method: "POST", body: body, credentials: "same-origin" });
        var opts = await r.json();
        if (!r.ok) { show(form, opts.detail || err.dataset.failed); return; }
        var pk = opts.publicKey, cred, out;
        pk.challenge = dec(pk.challenge);
        if (form.dataset.webauthn === "create") {
          pk.user.id = dec(pk.user.id);
          pk.excludeCredentials = ids(pk.excludeCredentials);
          cred = await navigator.credentials.create({ publicKey: pk });
          out = { id: cred.id, rawId: enc(cred.rawId), type: cred.type, extensions: {},
            response: { attestationObject: enc(cred.response.attestationObject),
              clientDataJSON: enc(cred.response.clientDataJSON),
              transports: cred.response.getTransports ? cred.response.getTransports() : [] } };
        } else {
          pk.allowCredentials = ids(pk.allowCredentials);
          cred = await navigator.credentials.get({ publicKey: pk });
          var a = cred.response;
          out = { id: cred.id, rawId: enc(cred.rawId), type: cred.type, extensions: {},
            response: { authenticatorData: enc(a.authenticatorData), clientDataJSON: enc(a.clientDataJSON),
              signature: enc(a.signature), userHandle: a.userHandle ? enc(a.userHandle) : null } };
        }
        form.querySelector("input[name=credential]").value = JSON.stringify(out);
        form.dataset.ready = "1";
        form.submit();
      } catch (e) {
        show(form, err.dataset.failed);
      }
    });
  });
})();
"#;

/// `GET /static/fido2.js`.
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SCRIPT)
}

/// Checks the form's flow (bound to this browser) and CSRF token.
async fn checked_flow(
    req: &HttpRequest,
    flows: &Flows,
    p: &crate::web::http::Params,
) -> Result<(String, LoginFlow), HttpResponse> {
    let flow_id = p.get("flow").filter(|f| f.len() <= 64).unwrap_or_default().to_owned();
    let flow = flows.bound(req, &flow_id).await?;
    if !p.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), flow.csrf.as_bytes())) {
        return Err(pages::error_page(req, StatusCode::FORBIDDEN, super::OTHER_BROWSER, Back::Home));
    }
    Ok((flow_id, flow))
}

/// `POST /login/fido2/options` (`flow`, `csrf`): a challenge for a discoverable credential with
/// user verification required, stored for this flow. JSON (`publicKey` as WebAuthn §5.5 says).
pub async fn options(
    req: HttpRequest,
    flows: Flows,
    (ports, config, webauthn): (Part<Ports>, Part<Config>, Part<Webauthn>),
    body: web::Bytes,
) -> HttpResponse {
    let Ok(p) = parse_params(&body) else {
        return problem(StatusCode::BAD_REQUEST, "Malformed request", "expected a form with `flow` and `csrf`");
    };
    let (flow_id, _) = match checked_flow(&req, &flows, &p).await {
        Ok(f) => f,
        Err(_) => {
            return problem(
                StatusCode::FORBIDDEN,
                "Unknown login",
                "this login is unknown, expired, or was not started in this browser: start again from the application",
            );
        }
    };
    let (mut rcr, auth_state) = match webauthn.start_discoverable_authentication() {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "WebAuthn unavailable", &e.to_string()),
    };
    // A button starts this ceremony: the browser's modal dialog, not conditional mediation.
    rcr.mediation = None;
    let ttl = Duration::from_secs(config.webauthn.ceremony_ttl_secs);
    if let Err(e) = ports.store.put_json(&keys::fido2_login(&flow_id), &auth_state, ttl).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", &e.to_string());
    }
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(rcr)
}

/// Why a FIDO2 login was refused, for the audit trail.
enum Refusal {
    Expired,
    NoScript,
    Malformed(String),
    UnknownKey,
    WrongOwner,
    Invalid(String),
    NotVerified,
    Cloned { stored: u32, presented: u32 },
    NoIdentity,
    Disabled,
}

impl Refusal {
    fn reason(&self) -> String {
        match self {
            Refusal::Expired => "WebAuthn challenge expired or already used".into(),
            Refusal::NoScript => "no WebAuthn assertion in the form (JavaScript off?)".into(),
            Refusal::Malformed(e) => format!("malformed WebAuthn assertion: {e}"),
            Refusal::UnknownKey => "unknown or revoked security key".into(),
            Refusal::WrongOwner => "the assertion's user handle is not the key owner's (WebAuthn §7.2 step 6)".into(),
            Refusal::Invalid(e) => format!("WebAuthn assertion refused: {e}"),
            Refusal::NotVerified => "user verification not performed (WebAuthn §7.2 step 17)".into(),
            Refusal::Cloned { stored, presented } => format!(
                "signature counter did not increase (stored {stored}, presented {presented}): possible cloned security key (WebAuthn §6.1.1)"
            ),
            Refusal::NoIdentity => "the key's owner is no longer in the directory".into(),
            Refusal::Disabled => "account disabled".into(),
        }
    }
}

/// `POST /login/fido2` (`flow`, `csrf`, `credential`): checks the assertion against the
/// challenge of this flow and the stored key, then ends the login through [`super::complete`].
pub async fn finish(
    req: HttpRequest,
    flows: Flows,
    (ports, config, webauthn): (Part<Ports>, Part<Config>, Part<Webauthn>),
    body: web::Bytes,
) -> HttpResponse {
    let caller = flows.caller(&req);
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, super::form::MALFORMED, Back::Home);
    };
    let (flow_id, flow) = match checked_flow(&req, &flows, &p).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let at = LoginAttempt { req: &req, caller: &caller, flow_id: &flow_id, flow: &flow };
    let lang = pages::lang(&req, flow.request.ui_locales.as_deref());
    let t = texts(lang);
    let cfg = &config.login;
    let ip_key = caller.rate_limit_key(PerAddress::Login);
    match ports.store.incr(&ip_key, Duration::from_secs(cfg.ip_window_secs)).await {
        Ok(n) if n > cfg.max_attempts_per_ip => {
            return pages::rate_limited(&req, cfg.ip_window_secs, Back::Login(&flow_id));
        }
        Ok(_) => {}
        Err(e) => return pages::unavailable(&req, &e),
    }
    let who = std::cell::RefCell::new(String::from("fido2"));
    let refuse = |r: Refusal| {
        let (status, text, result) = match r {
            Refusal::Expired => (StatusCode::BAD_REQUEST, t.expired, "failure"),
            Refusal::NoScript => (StatusCode::BAD_REQUEST, t.needs_script, "failure"),
            Refusal::Cloned { .. } => (StatusCode::FORBIDDEN, t.cloned, "cloned"),
            _ => (StatusCode::UNAUTHORIZED, t.refused, "failure"),
        };
        metrics::counter!("vigie_login_total", "method" => "fido2", "result" => result).increment(1);
        flows.refused(&caller, &flow, Mie::Fido2, &who.borrow(), Some(&r.reason()));
        // `t` is the table of the page's language; the login page offers another key or MIE.
        pages::error_page(&req, status, Say::chosen(text), Back::Login(&flow_id))
    };

    let auth_state = match ports.store.take_json::<DiscoverableAuthentication>(&keys::fido2_login(&flow_id)).await {
        Ok(Some(s)) => s,
        Ok(None) => return refuse(Refusal::Expired),
        Err(e) => return pages::unavailable(&req, &e),
    };
    let Some(raw) = p.get("credential") else { return refuse(Refusal::NoScript) };
    if raw.len() > 16 * 1024 {
        return refuse(Refusal::Malformed("larger than 16 KiB".into()));
    }
    let assertion: PublicKeyCredential = match serde_json::from_str(raw) {
        Ok(a) => a,
        Err(e) => return refuse(Refusal::Malformed(e.to_string())),
    };
    let (user_handle, cred_id) = match webauthn.identify_discoverable_authentication(&assertion) {
        Ok((u, id)) => (u, b64url(id)),
        Err(e) => return refuse(Refusal::Malformed(e.to_string())),
    };
    *who.borrow_mut() = format!("fido2:{}", cred_id.chars().take(16).collect::<String>());
    let stored = match ports.fido2.credential(&cred_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return refuse(Refusal::UnknownKey),
        Err(e) => return pages::unavailable(&req, &e),
    };
    *who.borrow_mut() = format!("fido2:{}", stored.name);
    // WebAuthn §7.2 step 6: the user handle returned must be that of the credential's owner.
    if !ct_eq(user_handle.to_string().as_bytes(), stored.user_handle.as_bytes()) {
        return refuse(Refusal::WrongOwner);
    }
    let mut passkey: Passkey = match serde_json::from_str(&stored.public_key) {
        Ok(k) => k,
        Err(e) => {
            return pages::unavailable(
                &req,
                &format!("the stored record of this security key is unreadable ({e}): re-register the key"),
            );
        }
    };
    // WebAuthn §7.2 steps 7–21 (origin, challenge, RP ID hash, flags, signature) and step 22
    // (signature counter) in webauthn-rs.
    let result = match webauthn.finish_discoverable_authentication_v2(&assertion, auth_state, &passkey) {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return refuse(Refusal::Cloned { stored: stored.sign_count, presented: presented_counter(&assertion) });
        }
        Err(e) => return refuse(Refusal::Invalid(e.to_string())),
    };
    if !result.user_verified() {
        return refuse(Refusal::NotVerified);
    }
    passkey.update_credential(&result);
    let record = serde_json::to_string(&passkey).unwrap_or_default();
    match ports.fido2.record_use(&cred_id, result.counter(), &record, &crate::rfc3339_now()).await {
        Ok(CounterCheck::Accepted) => {}
        // Another replica recorded a use of this key at the same counter: a second copy.
        Ok(CounterCheck::Regressed { stored }) => {
            return refuse(Refusal::Cloned { stored, presented: result.counter() });
        }
        Ok(CounterCheck::Unknown) => return refuse(Refusal::UnknownKey),
        Err(e) => return pages::unavailable(&req, &e),
    }
    match tokio::try_join!(
        ports.directory.identity(&stored.identity_id),
        ports.directory.account_disabled(&stored.identity_id)
    ) {
        Ok((Some(_), false)) => {}
        Ok((Some(_), true)) => return refuse(Refusal::Disabled),
        Ok((None, _)) => return refuse(Refusal::NoIdentity),
        Err(e) => return pages::unavailable(&req, &e),
    }
    // Possession of the key and user verification on it, a PIN for security keys (`pin`). A
    // hardware-secured key (`hwk`, RFC 8176 §2) only when its attestation was verified at
    // registration (WebAuthn §6.5): any other key may be software, however it presents itself
    // (`swk`). `login.amr.fido2` overrides the values sent, never adding `hwk` to a `swk` login.
    let possession = if stored.attested { Factor::Hwk } else { Factor::Swk };
    let auth = Authentication::new(stored.identity_id.clone(), Mie::Fido2, vec![possession, Factor::Pin], crate::now())
        .with_credential(cred_id);
    let who = who.into_inner();
    flows.complete(at, auth, &who).await
}

/// The signature counter an assertion carries (authenticator data bytes 33..37, WebAuthn
/// §6.1), for the audit line of a refused clone; 0 when too short.
fn presented_counter(a: &PublicKeyCredential) -> u32 {
    a.response.authenticator_data.get(33..37).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).unwrap_or(0)
}

/// Why the authenticator data of a registration could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// Not CBOR, or not a map.
    #[error("the attestation object is not a CBOR map: {0}")]
    NotCbor(String),
    /// No `authData` byte string in the map.
    #[error("the attestation object has no `authData` byte string (WebAuthn §6.5)")]
    NoAuthData,
    /// `authData` too short for the attested credential data.
    #[error("the authenticator data is {0} bytes long, too short for attested credential data (WebAuthn §6.5.1)")]
    TooShort(usize),
    /// The AT flag is not set.
    #[error("the authenticator data carries no attested credential data (flag AT unset, WebAuthn §6.1)")]
    NoAttestedData,
}

/// What the authenticator data of a registration says of the new credential. The AAGUID is left
/// out on purpose: unless the attestation is verified it is the authenticator's own claim, so
/// the model is read from the verified attestation only (`account::register`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthData {
    /// The signature counter at registration (WebAuthn §6.1 `signCount`).
    pub sign_count: u32,
    /// Flag BE (bit 3, WebAuthn §6.1.3): the credential may be synchronised off the device (a
    /// passkey in a password manager), so it is not bound to a hardware key.
    pub backup_eligible: bool,
}

/// Reads `authData` of an attestation object (WebAuthn §6.5): after the RP ID hash (32 bytes)
/// come the flags (1), the counter (4, big-endian) and, when the AT flag (bit 6) is set, the
/// attested credential data starting with the AAGUID (16) (§6.1, §6.5.1).
pub fn auth_data(attestation_object: &[u8]) -> Result<AuthData, AttestationError> {
    use serde_cbor_2::Value;
    let value: Value =
        serde_cbor_2::from_slice(attestation_object).map_err(|e| AttestationError::NotCbor(e.to_string()))?;
    let Value::Map(map) = value else { return Err(AttestationError::NotCbor("not a map".into())) };
    let Some(Value::Bytes(auth_data)) = map.get(&Value::Text("authData".into())) else {
        return Err(AttestationError::NoAuthData);
    };
    if auth_data.len() < 37 + 16 {
        return Err(AttestationError::TooShort(auth_data.len()));
    }
    if auth_data[32] & 0x40 == 0 {
        return Err(AttestationError::NoAttestedData);
    }
    let sign_count = u32::from_be_bytes([auth_data[33], auth_data[34], auth_data[35], auth_data[36]]);
    Ok(AuthData { sign_count, backup_eligible: auth_data[32] & 0x08 != 0 })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_cbor_2::Value;

    use super::*;

    fn object(auth_data: Vec<u8>) -> Vec<u8> {
        let mut m = BTreeMap::new();
        m.insert(Value::Text("fmt".into()), Value::Text("none".into()));
        m.insert(Value::Text("attStmt".into()), Value::Map(BTreeMap::new()));
        m.insert(Value::Text("authData".into()), Value::Bytes(auth_data));
        serde_cbor_2::to_vec(&Value::Map(m)).expect("CBOR")
    }

    #[test]
    fn flags_and_counter_are_read_after_the_rp_id_hash() {
        let mut ad = vec![0u8; 32];
        ad.push(0x4d); // UP | UV | BE | AT
        ad.extend([0, 0, 0, 1]);
        ad.extend([1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        ad.extend([0, 2, 9, 9]);
        assert_eq!(auth_data(&object(ad.clone())), Ok(AuthData { sign_count: 1, backup_eligible: true }));
        ad[32] = 0x05;
        assert_eq!(auth_data(&object(ad)), Err(AttestationError::NoAttestedData));
        assert_eq!(auth_data(&object(vec![0; 40])), Err(AttestationError::TooShort(40)));
        assert!(matches!(auth_data(b"\xff\x00"), Err(AttestationError::NotCbor(_))));
        assert_eq!(
            auth_data(&serde_cbor_2::to_vec(&Value::Map(BTreeMap::new())).expect("CBOR")),
            Err(AttestationError::NoAuthData)
        );
    }

    #[test]
    fn the_rp_id_must_be_the_origin_host_or_a_suffix_of_it() {
        let cfg = |rp_id: Option<&str>, origin: Option<&str>| crate::config::WebauthnConfig {
            rp_id: rp_id.map(str::to_owned),
            origin: origin.map(str::to_owned),
            ..Default::default()
        };
        let (id, origin) = cfg(None, None).relying_party("https://vigie.chu.example:8443").expect("from the issuer");
        assert_eq!((id.as_str(), origin.as_str()), ("vigie.chu.example", "https://vigie.chu.example:8443/"));
        assert!(cfg(Some("chu.example"), None).relying_party("https://vigie.chu.example").is_ok());
        let err = cfg(Some("other.example"), None).relying_party("https://vigie.chu.example").expect_err("refused");
        assert!(err.contains("not the origin host"), "{err}");
        assert!(
            cfg(Some("hu.example"), None).relying_party("https://vigie.chu.example").is_err(),
            "not a label suffix"
        );
        assert!(cfg(None, Some("not a url")).relying_party("https://vigie.chu.example").is_err());
    }

    #[test]
    fn pages_with_a_key_form_may_load_the_script_and_nothing_else_changes() {
        let mut resp = HttpResponse::Ok()
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'self'; form-action 'self'",
            ))
            .finish();
        allow_script(&mut resp);
        assert_eq!(
            resp.headers().get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()),
            Some("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; form-action 'self'")
        );
    }

    /// Authenticator data with attested credential data (flags UP | AT): RP ID hash, flags,
    /// counter, AAGUID (WebAuthn §6.1).
    fn attested(counter: u32, aaguid: [u8; 16]) -> Vec<u8> {
        [&[7u8; 32][..], &[0x41], &counter.to_be_bytes(), &aaguid].concat()
    }

    fn map(entries: Vec<(Value, Value)>) -> Vec<u8> {
        serde_cbor_2::to_vec(&Value::Map(entries.into_iter().collect())).expect("CBOR")
    }

    proptest::proptest! {
        /// Random bytes are refused: a map holding `authData` under that exact 9-byte key is out
        /// of their reach.
        #[test]
        fn garbage_attestation_objects_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            proptest::prop_assert!(auth_data(&bytes).is_err(), "{:?}", auth_data(&bytes));
        }

        /// A valid attestation object with one thing wrong is refused for that reason.
        #[test]
        fn attestation_objects_one_step_off_are_refused_with_the_reason(counter in proptest::num::u32::ANY, aaguid in proptest::array::uniform16(proptest::num::u8::ANY), cut in 0usize..53, at in proptest::prelude::any::<proptest::sample::Index>()) {
            let ad = attested(counter, aaguid);
            proptest::prop_assert_eq!(auth_data(&object(ad[..cut].to_vec())), Err(AttestationError::TooShort(cut)));
            let mut no_at = ad.clone();
            no_at[32] &= !0x40;
            proptest::prop_assert_eq!(auth_data(&object(no_at)), Err(AttestationError::NoAttestedData));
            let text = Value::Text("authData".into());
            for other in [map(vec![(Value::Text("authdata".into()), Value::Bytes(ad.clone()))]), map(vec![(text.clone(), Value::Text("x".repeat(60)))])] {
                proptest::prop_assert_eq!(auth_data(&other), Err(AttestationError::NoAuthData));
            }
            let array = serde_cbor_2::to_vec(&Value::Array(vec![text, Value::Bytes(ad.clone())])).expect("CBOR");
            proptest::prop_assert_eq!(auth_data(&array), Err(AttestationError::NotCbor("not a map".into())));
            let whole = object(ad);
            let truncated = auth_data(&whole[..at.index(whole.len())]);
            proptest::prop_assert!(matches!(truncated, Err(AttestationError::NotCbor(_))), "{:?}", truncated);
        }

        #[test]
        fn any_attested_auth_data_yields_its_counter_and_flag(counter in proptest::num::u32::ANY, be in proptest::bool::ANY, aaguid in proptest::array::uniform16(proptest::num::u8::ANY), tail in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let mut ad = vec![7u8; 32];
            ad.push(if be { 0x49 } else { 0x41 });
            ad.extend(counter.to_be_bytes());
            ad.extend(aaguid);
            ad.extend(tail);
            proptest::prop_assert_eq!(auth_data(&object(ad)), Ok(AuthData { sign_count: counter, backup_eligible: be }));
        }
    }
}
