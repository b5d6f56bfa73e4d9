//! A person's own security keys: the WebAuthn registration ceremony (options, then the checked
//! credential) and revocation, with the two functions HR's API shares ([`keys_of`], [`revoke_key`]).
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::audit::{AuditKind, Outcome};
use vigie_core::directory::{AccessTarget, DirectoryError};
use vigie_core::fido2::Fido2Credential;
use vigie_core::store::StoreExt;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    AttestationMetadata, AttestedPasskeyRegistration, Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid,
    WebauthnError,
};

use super::access::{Access, access, enroller};
use super::pages::texts;
use super::{AccountError, KeyEvent, audit};
use crate::config::Config;
use crate::login::fido2::{auth_data, b64url};
use crate::mail::Mailroom;
use crate::secrets::ct_eq;
use crate::session;
use crate::session::Ending;
use crate::state::{Attestation, Audit, OidcState, Part, PolicyGate, Ports, Upstreams};
use crate::web::http::{Caller, Params, parse_params, problem};
use crate::web::pages::{self, Lang};

/// The security keys of an identity, oldest first (for HR's list).
pub async fn keys_of(ports: &Ports, identity_id: &str) -> Result<Vec<Fido2Credential>, DirectoryError> {
    ports.fido2.credentials_of(identity_id).await
}

/// Revokes a security key of `identity_id` and ends every session it opened (tokens revoked,
/// back-channel logout). Tells whether the key existed. Audited with `actor`.
pub async fn revoke_key(
    ending: Ending<'_>,
    caller: &Caller,
    identity_id: &str,
    credential_id: &str,
    actor: &str,
) -> Result<bool, AccountError> {
    // The durable note first: should the ending fail, the next sweep ends the key's sessions.
    let target = AccessTarget::Credential(credential_id.to_owned());
    let ports = ending.ports;
    let note = ports.revocations.add_pending_revocation(&target, "security key revoked").await?;
    if !ports.fido2.remove_credential(identity_id, credential_id).await? {
        ports.revocations.revocation_done(&note).await?;
        return Ok(false);
    }
    let ended = session::end_access(ending, caller, &target).await?;
    ports.revocations.revocation_done(&note).await?;
    audit(
        ending.audit,
        caller,
        KeyEvent {
            kind: AuditKind::KeyRevoked,
            outcome: Outcome::Success,
            identity_id,
            actor: Some(actor),
            key: Some(credential_id),
            reason: Some(&format!("{ended} session(s) ended")),
        },
    );
    Ok(true)
}

#[derive(Serialize, Deserialize)]
struct Registration {
    identity_id: String,
    user_handle: String,
    name: String,
    state: Ceremony,
}

/// A registration ceremony begun, as `webauthn.attestation` asked for it.
#[derive(Serialize, Deserialize)]
enum Ceremony {
    /// Direct attestation, to be verified to the attestation roots it carries.
    Attested(Box<AttestedPasskeyRegistration>),
    /// No attestation asked for: the key will not be a hardware key.
    Unattested(PasskeyRegistration),
}

fn key_name(p: &Params, l: Lang) -> String {
    let name: String = p.get("name").unwrap_or_default().trim().chars().filter(|c| !c.is_control()).take(64).collect();
    if name.is_empty() { texts(l).default_name.into() } else { name }
}

/// `POST /account/keys/options` (`csrf`, `name`): WebAuthn creation options (JSON) for a
/// discoverable credential with user verification required and, with `webauthn.attestation =
/// "required"`, direct attestation, excluding the keys already registered (WebAuthn §5.4).
pub async fn register_options(
    req: HttpRequest,
    (config, ports, policy): (Part<Config>, Part<Ports>, Part<PolicyGate>),
    (webauthn, attestation_roots): (Part<Webauthn>, Part<Attestation>),
    body: web::Bytes,
) -> HttpResponse {
    let l = pages::lang(&req, None);
    let Ok(p) = parse_params(&body) else {
        return problem(StatusCode::BAD_REQUEST, "Malformed request", "expected a form with `csrf` and `name`");
    };
    let holder = match enroller(&ports, &config, &policy, &req, &p).await {
        Ok(h) => h,
        Err((status, detail)) => return problem(status, "Key registration not allowed", detail),
    };
    let (identity, existing) = match tokio::try_join!(
        ports.directory.identity(&holder.identity_id),
        ports.fido2.credentials_of(&holder.identity_id)
    ) {
        Ok((Some(i), e)) => (i, e),
        Ok((None, _)) => {
            return problem(StatusCode::FORBIDDEN, "Unknown identity", "your identity is no longer in the directory");
        }
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Directory unavailable", &e.to_string()),
    };
    // One user handle per identity: the key of a second registration replaces the first
    // one's resident entry for this account instead of adding a confusing twin.
    let user_handle = existing.iter().find_map(|c| Uuid::parse_str(&c.user_handle).ok()).unwrap_or_else(Uuid::new_v4);
    let exclude: Vec<_> = existing.iter().filter_map(|c| base64_decode(&c.id)).collect();
    let display = format!("{} {}", identity.given_name, identity.family_name);
    let (name, exclude) = (identity.matricule.as_str(), Some(exclude));
    let started = match &*attestation_roots {
        // Attestation required and no root configured: no model can be trusted (the start
        // logged which keys to set).
        Some(roots) if roots.is_empty() => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Key registration unavailable",
                "registering security keys is not set up on this server yet: contact IT support",
            );
        }
        Some(roots) => webauthn
            .start_attested_passkey_registration(user_handle, name, &display, exclude, (**roots).clone(), None)
            .map(|(ccr, s)| (ccr, Ceremony::Attested(Box::new(s)))),
        None => webauthn
            .start_passkey_registration(user_handle, name, &display, exclude)
            .map(|(ccr, s)| (ccr, Ceremony::Unattested(s))),
    };
    let (ccr, reg_state) = match started {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "WebAuthn unavailable", &e.to_string()),
    };
    let mut options = serde_json::to_value(&ccr).unwrap_or_default();
    // WebAuthn §5.4.4: a discoverable credential (login without a username) with user
    // verification. §5.4.7: direct attestation when it is verified, else none (asking for what
    // is not checked would only expose the key's model).
    options["publicKey"]["authenticatorSelection"] =
        json!({ "residentKey": "required", "requireResidentKey": true, "userVerification": "required" });
    let attested = matches!(reg_state, Ceremony::Attested(_));
    options["publicKey"]["attestation"] = json!(if attested { "direct" } else { "none" });
    let record = Registration {
        identity_id: holder.identity_id.clone(),
        user_handle: user_handle.to_string(),
        name: key_name(&p, l),
        state: reg_state,
    };
    let ttl = Duration::from_secs(config.webauthn.ceremony_ttl_secs);
    if let Err(e) = ports.store.put_json(&session::keys::key_registration(&holder.csrf), &record, ttl).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", &e.to_string());
    }
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(options)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// `POST /account/keys` (`csrf`, `credential`): checks the new credential against the pending
/// challenge (WebAuthn §7.1) and, as `webauthn.attestation` says, its attestation against the
/// attestation roots and its attested AAGUID against `webauthn.aaguid_allow_list`; stores the key.
pub async fn register(
    req: HttpRequest,
    (config, ports, policy, audit_trail): (Part<Config>, Part<Ports>, Part<PolicyGate>, Part<Audit>),
    (webauthn, upstreams): (Part<Webauthn>, Part<Upstreams>),
    body: web::Bytes,
) -> HttpResponse {
    let caller = Caller::of(&req, &config.server);
    let l = pages::lang(&req, None);
    let t = texts(l);
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, pages::FORM_UNREADABLE, pages::Back::Account);
    };
    let holder = match enroller(&ports, &config, &policy, &req, &p).await {
        Ok(h) => h,
        // `detail` comes from the table of the page's language (`account::access`).
        // A 503 is the store failing (its detail is not for the browser): the generic page.
        Err((status, detail)) if status == StatusCode::SERVICE_UNAVAILABLE => return pages::unavailable(&req, &detail),
        Err((status, detail)) => {
            return pages::error_page(&req, status, pages::Say::chosen(detail), pages::Back::Account);
        }
    };
    let refuse = |status: StatusCode, text: &str, reason: &str| {
        audit(
            &audit_trail,
            &caller,
            KeyEvent {
                kind: AuditKind::KeyRegistered,
                outcome: Outcome::Failure,
                identity_id: &holder.identity_id,
                actor: Some(&holder.via),
                key: None,
                reason: Some(reason),
            },
        );
        pages::error_page(&req, status, pages::Say::chosen(text), pages::Back::Account)
    };
    let pending = match ports.store.take_json::<Registration>(&session::keys::key_registration(&holder.csrf)).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return refuse(StatusCode::BAD_REQUEST, t.failed, "registration challenge expired or already used");
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let raw = p.get("credential").unwrap_or_default();
    if raw.is_empty() || raw.len() > 64 * 1024 {
        return refuse(StatusCode::BAD_REQUEST, t.unsupported, "no WebAuthn credential in the form (JavaScript off?)");
    }
    let credential: RegisterPublicKeyCredential = match serde_json::from_str(raw) {
        Ok(c) => c,
        Err(e) => {
            return refuse(StatusCode::BAD_REQUEST, t.reg_refused, &format!("malformed WebAuthn credential: {e}"));
        }
    };
    // WebAuthn §7.1 steps 5–18: type, challenge, origin, RP ID hash, UP and UV flags (user
    // verification required), algorithm; steps 19–21 (L2; 21–23 in L3) when attestation is
    // required: the attestation statement verified, its trust path chained to a configured
    // attestation root, the AAGUID one the root vouches for.
    let (passkey, attested_model) = match &pending.state {
        Ceremony::Attested(s) => match webauthn.finish_attested_passkey_registration(&credential, s) {
            Ok(k) => {
                let model = attested_aaguid(&k.attestation().metadata);
                (Passkey::from(k), Some(model))
            }
            Err(e @ WebauthnError::CredentialMayNotBeHardwareBound) => {
                return refuse(StatusCode::FORBIDDEN, t.synced_refused, &format!("not a hardware key: {e}"));
            }
            Err(e) if untrusted_attestation(&e) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    t.aaguid_refused,
                    &format!("attestation not verified to a trusted root (WebAuthn §7.1 step 21): {e}"),
                );
            }
            Err(e) => {
                return refuse(StatusCode::BAD_REQUEST, t.reg_refused, &format!("WebAuthn registration refused: {e}"));
            }
        },
        Ceremony::Unattested(s) => match webauthn.finish_passkey_registration(&credential, s) {
            Ok(k) => (k, None),
            Err(e) => {
                return refuse(StatusCode::BAD_REQUEST, t.reg_refused, &format!("WebAuthn registration refused: {e}"));
            }
        },
    };
    let facts = match auth_data(&credential.response.attestation_object) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, t.reg_refused, &e.to_string()),
    };
    // `hwk` (RFC 8176 §2) claims a hardware-secured key: a credential that may be copied to
    // other devices (backup eligible, WebAuthn §6.1.3) is not one, whatever its attestation.
    if facts.backup_eligible {
        return refuse(
            StatusCode::FORBIDDEN,
            t.synced_refused,
            "backup-eligible (synchronised) credential, not a hardware key",
        );
    }
    // The model is the attestation's, never the key's own claim: an unattested key has none.
    let aaguid = attested_model.unwrap_or_default().to_string();
    let allow = &config.webauthn.aaguid_allow_list;
    if !allow.is_empty() && !allow.iter().any(|a| a.eq_ignore_ascii_case(&aaguid)) {
        return refuse(
            StatusCode::FORBIDDEN,
            t.aaguid_refused,
            &format!("attested AAGUID {aaguid} not in webauthn.aaguid_allow_list"),
        );
    }
    let id = b64url(passkey.cred_id());
    let stored = Fido2Credential {
        id: id.clone(),
        identity_id: pending.identity_id.clone(),
        user_handle: pending.user_handle,
        name: pending.name,
        aaguid,
        attested: attested_model.is_some(),
        public_key: serde_json::to_string(&passkey).unwrap_or_default(),
        sign_count: facts.sign_count,
        created_at: crate::rfc3339_now(),
        last_used_at: None,
    };
    match ports.fido2.add_credential(&stored).await {
        Ok(()) => {}
        Err(DirectoryError::Invalid(m)) => return refuse(StatusCode::CONFLICT, t.reg_refused, &m),
        Err(e) => return pages::unavailable(&req, &e),
    }
    audit(
        &audit_trail,
        &caller,
        KeyEvent {
            kind: AuditKind::KeyRegistered,
            outcome: Outcome::Success,
            identity_id: &pending.identity_id,
            actor: Some(&holder.via),
            key: Some(&id),
            reason: Some(&if stored.attested {
                format!("AAGUID {}, attestation verified", stored.aaguid)
            } else {
                "no attestation (webauthn.attestation = \"none\"): not a hardware key".into()
            }),
        },
    );
    // A new way into the account: its holder hears of it, whoever added it (issue 12).
    let added = super::notices::Added::Key { name: stored.name.clone() };
    let mail = Mailroom::new(&config, &ports, &upstreams, &audit_trail);
    super::notices::credential_added(mail, &caller, &pending.identity_id, added);
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/account/keys?done=added")).finish()
}

/// The AAGUID a verified attestation proves (packed and TPM statements carry it, WebAuthn
/// §8.2, §8.3); nil for formats that name no model (FIDO U2F, Apple, Android).
fn attested_aaguid(metadata: &AttestationMetadata) -> Uuid {
    match metadata {
        AttestationMetadata::Packed { aaguid } | AttestationMetadata::Tpm { aaguid, .. } => *aaguid,
        _ => Uuid::nil(),
    }
}

/// Whether a registration failed for want of a trustworthy attestation (WebAuthn §7.1 step 21:
/// none, self, or a chain to no configured root, or a model the root does not vouch for).
fn untrusted_attestation(e: &WebauthnError) -> bool {
    matches!(
        e,
        WebauthnError::AttestationNotVerifiable
            | WebauthnError::AttestationChainNotTrusted(_)
            | WebauthnError::AttestationUntrustedAaguid
            | WebauthnError::AttestationFormatMissingAaguid
            | WebauthnError::AttestationNotSupported
            | WebauthnError::AttestationCertificateTrustStoreEmpty
    )
}

/// `POST /account/keys/revoke` (`csrf`, `id`): the signed-in user revokes one of their keys;
/// the sessions it opened end.
pub async fn revoke(
    req: HttpRequest,
    (config, ports, policy, audit): (Part<Config>, Part<Ports>, Part<PolicyGate>, Part<Audit>),
    (oidc, upstreams): (Part<OidcState>, Part<Upstreams>),
    body: web::Bytes,
) -> HttpResponse {
    let caller = Caller::of(&req, &config.server);
    let t = texts(pages::lang(&req, None));
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, pages::FORM_UNREADABLE, pages::Back::Account);
    };
    let holder = match access(&ports, &config, &policy, &req).await {
        Ok(Access::Enrol(h) | Access::ListOnly(h)) if h.can_revoke => h,
        Ok(_) => {
            return pages::error_page(
                &req,
                StatusCode::UNAUTHORIZED,
                pages::Say::chosen(t.nobody),
                pages::Back::Account,
            );
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    if !p.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), holder.csrf.as_bytes())) {
        return pages::error_page(&req, StatusCode::FORBIDDEN, pages::Say::chosen(t.forbidden), pages::Back::Account);
    }
    let id = p.get("id").filter(|i| i.len() <= 1400).unwrap_or_default();
    let actor = format!("self:{}", holder.identity_id);
    let ending = Ending { config: &config, ports: &ports, oidc: &oidc, audit: &audit, http: &upstreams.http };
    match revoke_key(ending, &caller, &holder.identity_id, id, &actor).await {
        Ok(true) => HttpResponse::SeeOther().insert_header((header::LOCATION, "/account/keys?done=revoked")).finish(),
        Ok(false) => pages::error_page(
            &req,
            StatusCode::NOT_FOUND,
            pages::Say::new(
                "Cette clé n'est pas (ou plus) parmi les vôtres : la liste de vos clés est à jour.",
                "This key is not (or no longer) among yours: the list of your keys is up to date.",
            ),
            pages::Back::Account,
        ),
        Err(e) => pages::unavailable(&req, &e),
    }
}
