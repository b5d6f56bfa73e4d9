//! The Web Browser SSO exchange: an AuthnRequest arrives (HTTP-Redirect, saml-bindings §3.4, or
//! HTTP-POST, §3.5), is checked against the SP's metadata, and the browser goes through
//! `/authorize` as the SP's OIDC client; the code comes back to `/saml/callback`, is redeemed
//! here once, and the signed Response is posted to the SP's AssertionConsumerService.
use std::str::FromStr;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::schema::AuthnRequest;
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;

use super::context::Requested;
use super::decode;
use super::idp::{HTTP_POST, Sp};
use super::response::{self, Statement};
use super::signed;
use crate::config::Config;
use crate::oidc::{AuthRequest, CodeGrant};
use crate::secrets::{ct_eq, random_token, sha256_b64};
use crate::session::{Session, keys};
use crate::state::{Audit, Ports, parts};
use crate::web::http::Caller;
use crate::web::pages::{Back, Say, error_page, unavailable};

/// The browser that started a SAML login: only it ends it at the callback.
const LOGIN_COOKIE: &str = "__Host-vigie-saml";

parts! {
    /// What the SAML endpoints reach: the settings (SPs, issuer), the store (the started login,
    /// the code, the session), the directory (attributes) and the audit trail.
    pub struct Saml {
        config: Config,
        ports: Ports,
        audit: Audit,
        idp: super::SamlIdp,
    }
}

/// A login started for an SP.
#[derive(Serialize, Deserialize)]
struct Started {
    sp: String,
    acs: String,
    request_id: String,
    relay_state: Option<String>,
    verifier: String,
    browser: String,
    /// The SP's `RequestedAuthnContext`, checked again against the login's MIE at the callback.
    #[serde(default)]
    requested: Option<Requested>,
}

fn started_key(state: &str) -> String {
    format!("saml-start:{state}")
}

const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
const REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";

const BAD_REQUEST: Say<'static> = Say::new(
    "La demande de connexion de l'application n'est pas valable : ouvrez à nouveau l'application.",
    "The application's sign-in request is not valid: open the application again.",
);

pub async fn metadata(saml: Saml) -> HttpResponse {
    match saml.idp.get() {
        Some(idp) => {
            super::metadata::response(&idp, &saml.config.endpoint("/saml/sso"), &saml.config.endpoint("/saml/slo"))
        }
        _ => super::not_configured(),
    }
}

/// `GET /saml/sso?SAMLRequest&RelayState&SigAlg&Signature` (saml-bindings §3.4.4).
pub async fn sso_redirect(req: HttpRequest, saml: Saml) -> HttpResponse {
    let query = req.query_string().to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(encoded) = param("SAMLRequest") else {
        return refuse(&req, &saml, "no SAMLRequest", BAD_REQUEST);
    };
    // §3.4.4.1: base64 of the raw DEFLATE of the XML.
    let xml = match decode::redirect_request(&encoded) {
        Ok(xml) => xml,
        Err(why) => return refuse(&req, &saml, why.reason(), BAD_REQUEST),
    };
    let signature = match (param("SigAlg"), param("Signature")) {
        (Some(alg), Some(sig)) => Some((alg, sig)),
        _ => None,
    };
    accept(req, saml, xml, param("RelayState"), Binding::Redirect { query, signature }).await
}

/// `POST /saml/sso` with `SAMLRequest` (base64 XML) and `RelayState` (saml-bindings §3.5.4).
pub async fn sso_post(req: HttpRequest, saml: Saml, form: web::Form<Vec<(String, String)>>) -> HttpResponse {
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(encoded) = param("SAMLRequest") else {
        return refuse(&req, &saml, "no SAMLRequest", BAD_REQUEST);
    };
    let xml = match decode::post_request(&encoded) {
        Ok(xml) => xml,
        Err(why) => return refuse(&req, &saml, why.reason(), BAD_REQUEST),
    };
    accept(req, saml, xml, param("RelayState"), Binding::Post).await
}

enum Binding {
    /// The raw query, for the signature over its exact octets.
    Redirect {
        query: String,
        signature: Option<(String, String)>,
    },
    Post,
}

async fn accept(req: HttpRequest, saml: Saml, xml: String, relay: Option<String>, binding: Binding) -> HttpResponse {
    let Some(idp) = saml.idp.get() else {
        return super::not_configured();
    };
    // Parsed once, unverified, only to learn the Issuer; what is used comes after the checks.
    let Ok(request) = AuthnRequest::from_str(&xml) else {
        return refuse(&req, &saml, "SAMLRequest is not an AuthnRequest", BAD_REQUEST);
    };
    let Some(sp) = request.issuer_value().and_then(|i| idp.sp(&i)) else {
        return refuse(
            &req,
            &saml,
            "the AuthnRequest's Issuer is not a registered SP",
            Say::new(
                "Cette application n'est pas déclarée auprès de Vigie : contactez le support informatique.",
                "This application is not registered with Vigie: contact IT support.",
            ),
        );
    };
    let request = match binding {
        Binding::Redirect { query, signature } => match signature {
            Some((alg, sig)) => match verify_redirect(sp, &query, &alg, &sig) {
                Ok(()) => request,
                Err(why) => return refuse(&req, &saml, &why, BAD_REQUEST),
            },
            None if sp.signed_requests => {
                return refuse(&req, &saml, "the SP must sign its requests and this one is not signed", BAD_REQUEST);
            }
            None => request,
        },
        // §3.5.5.2: an enveloped XML signature, SHA-2 only. Only what it covers is read (no
        // wrapping).
        Binding::Post if request.signature.is_some() || sp.signed_requests => {
            match signed::verified(&xml, sp).map(|x| AuthnRequest::from_str(&x)) {
                Ok(Ok(r)) => r,
                Err(why @ signed::Refused::Algorithm { .. }) => {
                    return weak_algorithm(&req, &saml, &idp, sp, &request, relay.as_deref(), &why);
                }
                _ => return refuse(&req, &saml, "the AuthnRequest's signature does not verify", BAD_REQUEST),
            }
        }
        Binding::Post => request,
    };
    let Some(acs) = metadata_acs(sp, &request) else {
        return refuse(&req, &saml, "AssertionConsumerServiceURL is not one of the SP's metadata", BAD_REQUEST);
    };
    if request.protocol_binding.as_deref().is_some_and(|b| b != HTTP_POST) {
        return refuse(&req, &saml, "ProtocolBinding other than HTTP-POST", BAD_REQUEST);
    }
    // saml-core §3.3.2.2.1: the classes asked for, as the level the login must reach; none of
    // Vigie's MIE reaching them is a NoAuthnContext answer (§3.2.2.2), not a login page.
    let requested = Requested::of(request.requested_authn_context.as_ref());
    let level = match requested.as_ref().map(Requested::level) {
        Some(Err(())) => {
            audit_refusal(&req, &saml, "saml: no MIE reaches the RequestedAuthnContext");
            let xml = response::error(&idp, &acs, &request.id, RESPONDER, NO_AUTHN_CONTEXT, None);
            return form(&acs, relay.as_deref(), &xml);
        }
        Some(Ok(level)) => level,
        None => None,
    };
    let config = &saml.config;
    let state = random_token(24);
    let verifier = random_token(32);
    let browser = random_token(24);
    let started = Started {
        sp: sp.entity_id.clone(),
        acs,
        request_id: request.id.clone(),
        relay_state: relay,
        verifier: verifier.clone(),
        browser: sha256_b64(browser.as_bytes()),
        requested,
    };
    let ttl = Duration::from_secs(config.tokens.login_flow_ttl_secs);
    if let Err(e) = saml.ports.store.put_json(&started_key(&state), &started, ttl).await {
        return unavailable(&req, &e);
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &sp.config.client_id)
        .append_pair("redirect_uri", &config.endpoint("/saml/callback"))
        .append_pair("scope", "openid")
        .append_pair("state", &state)
        .append_pair("code_challenge", &sha256_b64(verifier.as_bytes()))
        .append_pair("code_challenge_method", "S256");
    if let Some(level) = level {
        // As an OIDC client that needs the level (OIDC Core §5.5.1.1): the login offers what
        // reaches it, or answers unmet_authentication_requirements.
        let claims = serde_json::json!({"id_token": {"acr": {"essential": true, "values": [level.acr()]}}});
        query.append_pair("acr_values", level.acr()).append_pair("claims", &claims.to_string());
    }
    // saml-core §3.4.1: ForceAuthn is a fresh login; IsPassive is none at all.
    if request.is_passive == Some(true) {
        query.append_pair("prompt", "none");
    } else if request.force_authn == Some(true) {
        query.append_pair("prompt", "login");
    }
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((header::LOCATION, config.endpoint(&format!("/authorize?{}", query.finish()))))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    resp.cookie(crate::web::http::host_cookie(LOGIN_COOKIE, browser, Some(ttl.as_secs() as i64)));
    resp.finish()
}

/// saml-profiles §4.1.4.1: the ACS URL must be the SP's, from its metadata; never an arbitrary
/// address. The one the request names, else the metadata's first; none when it names another.
fn metadata_acs(sp: &Sp, request: &AuthnRequest) -> Option<String> {
    match &request.assertion_consumer_service_url {
        Some(url) => sp.acs.contains(url).then(|| url.clone()),
        None => sp.acs.first().cloned(),
    }
}

/// An AuthnRequest signed with an algorithm Vigie refuses (SHA-1…): the SP is told why in a
/// Response with the `Requester`/`RequestDenied` status and a `StatusMessage` naming the algorithm
/// (saml-core §3.2.2.2, §3.2.2.3), so its administrator learns what to change. Answering is safe
/// although the request is not authenticated: the Response is unsigned and asserts nothing, goes
/// only to an ACS of the SP's metadata, and is what anyone could post to that ACS. When the
/// request names an ACS not in the metadata, nobody is answered: the person gets a page.
fn weak_algorithm(
    req: &HttpRequest,
    saml: &Saml,
    idp: &super::idp::Idp,
    sp: &Sp,
    request: &AuthnRequest,
    relay: Option<&str>,
    why: &signed::Refused,
) -> HttpResponse {
    let reason = why.reason("AuthnRequest");
    tracing::warn!(sp = sp.entity_id, "SAML AuthnRequest refused: {reason}");
    let Some(acs) = metadata_acs(sp, request) else {
        return refuse(req, saml, &reason, signed::WEAK_ALGORITHM);
    };
    audit_refusal(req, saml, &format!("saml: {reason}"));
    let xml = response::error(idp, &acs, &request.id, REQUESTER, REQUEST_DENIED, Some(&reason));
    form(&acs, relay, &xml)
}

/// The authorization request of a SAML SP's login (its client, `/saml/callback`, the started
/// login's `state`), narrowed to the MIE its `RequestedAuthnContext` accepts: the login page
/// offers only those, a session with another MIE is not reused, and a login with another is
/// refused (`login::unasked`). Any other request is returned as it came.
pub(crate) async fn exact_mie(
    config: &Config,
    ports: &Ports,
    idp: &super::SamlIdp,
    mut request: AuthRequest,
) -> Result<AuthRequest, (AuthRequest, vigie_core::store::StoreError)> {
    if request.redirect_uri != config.endpoint("/saml/callback") {
        return Ok(request);
    }
    let Some(state) = request.state.as_deref().filter(|s| s.len() <= 64) else { return Ok(request) };
    let started = match ports.store.get_json::<Started>(&started_key(state)).await {
        Ok(s) => s,
        Err(e) => return Err((request, e)),
    };
    // The started login of this SP's client only: its callback refuses any other code anyway.
    let sp_client = started.as_ref().and_then(|s| idp.get()?.sp(&s.sp).map(|sp| sp.config.client_id.clone()));
    if sp_client.as_deref() == Some(request.client_id.as_str()) {
        request.only_mie = started.and_then(|s| s.requested).map(|r| r.mie());
    }
    Ok(request)
}

/// saml-bindings §3.4.4.1: the signature is over `SAMLRequest=…&RelayState=…&SigAlg=…` (or
/// `SAMLResponse=…`, for Single Logout) as the
/// octets arrived (URL-encoded as received, not re-encoded), with a certificate of the SP's
/// metadata. RSA-SHA256 and ECDSA-SHA256 only.
pub(super) fn verify_redirect(sp: &Sp, query: &str, alg: &str, signature: &str) -> Result<(), String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    let raw = |name: &str| query.split('&').find(|p| p.split('=').next() == Some(name));
    let signed: Vec<&str> =
        ["SAMLRequest", "SAMLResponse", "RelayState", "SigAlg"].into_iter().filter_map(raw).collect();
    let octets = signed.join("&");
    let signature = STANDARD.decode(signature).map_err(|_| "the Signature parameter is not base64".to_owned())?;
    let ecdsa = match alg {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => false,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => true,
        other => return Err(format!("SigAlg {other:?} is not accepted (RSA-SHA256 or ECDSA-SHA256)")),
    };
    for der in &sp.certs {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { continue };
        let key = &cert.public_key().subject_public_key.data;
        let ok = if ecdsa {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key).verify(octets.as_bytes(), &signature)
        } else {
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key).verify(octets.as_bytes(), &signature)
        };
        if ok.is_ok() {
            return Ok(());
        }
    }
    Err("the redirect binding's signature does not verify with the SP's metadata certificates".into())
}

/// `GET /saml/callback?code&state`: the login is over; the signed Response goes to the SP.
pub async fn callback(req: HttpRequest, saml: Saml) -> HttpResponse {
    let Some(idp) = saml.idp.get() else {
        return super::not_configured();
    };
    let Saml { config, ports, audit, .. } = &saml;
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let expired = Say::new(
        "Cette connexion a déjà servi ou a expiré : ouvrez à nouveau l'application.",
        "This sign-in was already used or has expired: open the application again.",
    );
    let state = param("state").unwrap_or_default();
    let started = match ports.store.get_json::<Started>(&started_key(state)).await {
        Ok(Some(s)) => s,
        Ok(None) => return refuse(&req, &saml, "unknown, used or expired state", expired),
        Err(e) => return unavailable(&req, &e),
    };
    // Login CSRF: only the browser that started the login ends it.
    let browser = crate::web::http::cookie(&req, LOGIN_COOKIE).map(|c| sha256_b64(c.as_bytes()));
    if !browser.is_some_and(|b| ct_eq(b.as_bytes(), started.browser.as_bytes())) {
        return refuse(&req, &saml, "the callback came from another browser than the one that started", expired);
    }
    match ports.store.take_json::<Started>(&started_key(state)).await {
        Ok(Some(_)) => {}
        Ok(None) => return refuse(&req, &saml, "unknown, used or expired state", expired),
        Err(e) => return unavailable(&req, &e),
    }
    let Some(sp) = idp.sp(&started.sp) else {
        return refuse(&req, &saml, "the SP is no longer configured", expired);
    };
    // saml-profiles §4.1.4.1: the Response goes to an ACS of the SP's metadata. Checked at the
    // AuthnRequest, and again now: the metadata may have been fetched again during the login,
    // and an endpoint it no longer lists is no longer the SP's.
    if !sp.acs.contains(&started.acs) {
        return refuse(&req, &saml, "the AssertionConsumerService is no longer in the SP's metadata", expired);
    }
    if let Some(error) = param("error") {
        // saml-core §3.2.2.2: the SP hears why, in a Response with an error status.
        let second = match error {
            "login_required" | "interaction_required" => "urn:oasis:names:tc:SAML:2.0:status:NoPassive",
            "unmet_authentication_requirements" => NO_AUTHN_CONTEXT,
            _ => REQUEST_DENIED,
        };
        let xml = response::error(&idp, &started.acs, &started.request_id, RESPONDER, second, None);
        return started_form(&started, &xml);
    }
    let grant = match param("code") {
        Some(code) => ports.store.take_json::<CodeGrant>(&keys::authorization_code(code)).await,
        None => Ok(None),
    };
    let grant = match grant {
        Ok(Some(g)) => g,
        Ok(None) => return refuse(&req, &saml, "unknown, used or expired code", expired),
        Err(e) => return unavailable(&req, &e),
    };
    let challenge = sha256_b64(started.verifier.as_bytes());
    let bound = grant.client_id == sp.config.client_id
        && grant.redirect_uri == config.endpoint("/saml/callback")
        && grant.code_challenge.as_deref().is_some_and(|c| ct_eq(c.as_bytes(), challenge.as_bytes()));
    if !bound {
        return refuse(&req, &saml, "the code was not issued for this SP's login", expired);
    }
    let session = async {
        let Some(key) = ports.store.get(&keys::session_of_sid(&grant.sid)).await? else { return Ok(None) };
        let key = String::from_utf8_lossy(&key).into_owned();
        let s = ports.store.get_json::<Session>(&key).await?;
        Ok::<_, vigie_core::store::StoreError>(s.filter(|s| s.sid == grant.sid && s.expires_at > crate::now()))
    };
    let session = match session.await {
        Ok(Some(s)) => s,
        Ok(None) => return refuse(&req, &saml, "the session ended before the callback", expired),
        Err(e) => return unavailable(&req, &e),
    };
    let auth = &session.authentication;
    // The level is reached, but `exact` wants the class itself and `maximum` no stronger one:
    // an assertion with another class would not answer the request (§3.3.2.2.1).
    if started.requested.as_ref().is_some_and(|r| !r.satisfied_by(auth.mie)) {
        audit_refusal(
            &req,
            &saml,
            &format!("saml: a {} login does not answer the RequestedAuthnContext", auth.mie.as_str()),
        );
        let xml = response::error(&idp, &started.acs, &started.request_id, RESPONDER, NO_AUTHN_CONTEXT, None);
        return started_form(&started, &xml);
    }
    let identity = match ports.directory.identity(&auth.identity_id).await {
        Ok(Some(i)) => i,
        Ok(None) => return refuse(&req, &saml, "the identity is gone", expired),
        Err(e) => return unavailable(&req, &e),
    };
    let username = match ports.directory.username_of(&auth.identity_id).await {
        Ok(u) => u.unwrap_or_default(),
        Err(e) => return unavailable(&req, &e),
    };
    let value = |name: &str| -> Vec<String> {
        match name {
            "username" => vec![username.clone()],
            "given_name" => vec![identity.given_name.clone()],
            "family_name" => vec![identity.family_name.clone()],
            "matricule" => vec![identity.matricule.clone()],
            "idnat" => identity.idnat.iter().map(|i| i.as_str().to_owned()).collect(),
            "metier" => identity.metier.iter().cloned().collect(),
            "grade" => identity.grade.iter().cloned().collect(),
            "units" => identity.units.iter().map(|u| u.uf.clone()).collect(),
            "mie" => vec![auth.mie.as_str().to_owned()],
            "level" => vec![auth.level.acr().to_owned()],
            _ => Vec::new(),
        }
    };
    let (format, name_id) = match sp.config.nameid.as_str() {
        // saml-core §8.3.7: persistent, opaque, different per SP — a keyed hash of the SP and
        // the identity, never the internal id itself.
        "persistent" => {
            let mut input = idp.pairwise_secret.clone();
            input.extend_from_slice(format!("\0{}\0{}", sp.entity_id, auth.identity_id).as_bytes());
            (response::PERSISTENT, sha256_b64(&input))
        }
        "transient" => (response::TRANSIENT, format!("_{}", random_token(24))),
        attribute => match value(attribute).into_iter().next().filter(|v| !v.is_empty()) {
            Some(v) => (response::UNSPECIFIED, v),
            None => {
                let xml = response::error(
                    &idp,
                    &started.acs,
                    &started.request_id,
                    RESPONDER,
                    "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy",
                    None,
                );
                return started_form(&started, &xml);
            }
        },
    };
    let attributes =
        sp.config.attributes.iter().map(|a| (a.clone(), value(a))).filter(|(_, v)| !v.is_empty()).collect();
    let statement = Statement {
        audience: &sp.entity_id,
        acs: &started.acs,
        in_response_to: &started.request_id,
        name_id_format: format,
        name_id,
        attributes,
        mie: auth.mie,
        authn_instant: auth.at,
        session_index: &session.sid,
        ttl_secs: config.saml.assertion_ttl() as i64,
        encrypt: sp.encryption.as_ref(),
    };
    let xml = match response::signed(&idp, &statement) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "SAML response not signed");
            return error_page(
                &req,
                StatusCode::INTERNAL_SERVER_ERROR,
                Say::new(
                    "Vigie n'a pas pu signer la réponse pour l'application : réessayez, puis contactez le support.",
                    "Vigie could not sign the answer for the application: try again, then contact IT support.",
                ),
                Back::Home,
            );
        }
    };
    // Single Logout tells this SP when the session ends (saml/slo.rs).
    let joined =
        super::slo::Participant { sp: sp.entity_id.clone(), name_id: statement.name_id.clone(), format: format.into() };
    if let Err(e) = super::slo::joined(ports.store.as_ref(), &session, &joined).await {
        return unavailable(&req, &e);
    }
    let caller = Caller::of(&req, &config.server);
    audit.record(AuditEvent {
        kind: Some(AuditKind::TokenIssued),
        outcome: Some(Outcome::Success),
        subject: Some(auth.identity_id.clone()),
        client_id: Some(sp.config.client_id.clone()),
        method: Some(auth.mie.as_str().into()),
        sid: Some(session.sid.clone()),
        reason: Some(format!("saml: assertion for {}", sp.entity_id)),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
    started_form(&started, &xml)
}

fn started_form(started: &Started, xml: &str) -> HttpResponse {
    form(&started.acs, started.relay_state.as_deref(), xml)
}

/// The page that posts the Response to the ACS (response::auto_post: its CSP, no inline handler),
/// and the login cookie cleared.
pub(super) fn form(acs: &str, relay_state: Option<&str>, xml: &str) -> HttpResponse {
    let mut resp = response::auto_post(acs, "SAMLResponse", xml, relay_state, response::Then::OnlyThere);
    let _ = resp.add_cookie(&crate::web::http::host_cookie(LOGIN_COOKIE, String::new(), Some(0)));
    resp
}

fn refuse(req: &HttpRequest, saml: &Saml, reason: &str, page: Say<'_>) -> HttpResponse {
    audit_refusal(req, saml, &format!("saml: {reason}"));
    error_page(req, StatusCode::BAD_REQUEST, page, Back::Home)
}

fn audit_refusal(req: &HttpRequest, saml: &Saml, reason: &str) {
    let caller = Caller::of(req, &saml.config.server);
    saml.audit.record(AuditEvent {
        kind: Some(AuditKind::Refused),
        outcome: Some(Outcome::Failure),
        reason: Some(reason.to_owned()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        ..Default::default()
    });
}
