//! The signed-in user's security keys (`/account/keys`): list, register, revoke; and key
//! enrolment with a one-time code issued by HR (`/account/enrol`), for staff whose first MIE is
//! the key itself. The functions HR's admin API calls are [`issue_enrolment_code`],
//! [`keys_of`] and [`revoke_key`].
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::{AccessTarget, DirectoryError};
use vigie_core::fido2::Fido2Credential;
use vigie_core::store::{StoreError, StoreExt};
use webauthn_rs::prelude::{
    AttestationMetadata, AttestedPasskeyRegistration, Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid,
    WebauthnError,
};

use crate::app::{AppState, State};
use crate::http::{Caller, Params, esc, parse_params, problem};
use crate::login::fido2::{allow_script, auth_data, b64url};
use crate::login::pages::{self, Lang, html_page};
use crate::secrets::{ct_eq, random_token, sha256_b64};
use crate::session;

/// The cookie naming an enrolment grant: a redeemed code lets this browser register keys for
/// [`GRANT_SECS`], until the agent ends it or closes the browser (a session cookie): on a shared
/// workstation the next person must not find the page open on someone else's keys.
const GRANT_COOKIE: &str = "__Host-vigie-enrol";
/// The double-submit CSRF cookie of the code form (no session exists yet).
const CODE_CSRF_COOKIE: &str = "__Host-vigie-enrol-csrf";
const GRANT_SECS: u64 = 10 * 60;

/// `/account/keys` (page, register, revoke) and `/account/enrol` (code).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/keys", web::get().to(keys_page))
        .route("/account/keys", web::post().to(register))
        .route("/account/keys/options", web::post().to(register_options))
        .route("/account/keys/revoke", web::post().to(revoke))
        .route("/account/enrol", web::get().to(code_page))
        .route("/account/enrol", web::post().to(redeem_code))
        .route("/account/enrol/done", web::post().to(end_enrolment))
        .route("/admin/api/identities/{id}/fido2", web::get().to(api_keys))
        .route("/admin/api/identities/{id}/fido2/enrolment-code", web::post().to(api_issue_code))
        .route("/admin/api/identities/{id}/fido2/{credential}", web::delete().to(api_revoke));
}

/// A failure of the account functions HR's API calls.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No identity with this id in the directory.
    #[error("no identity {0:?} in the directory")]
    UnknownIdentity(String),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The ephemeral store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
struct Grant {
    identity_id: String,
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

/// The stored form of a code: its [`normal_code`], then hashed (the store never holds a usable code).
fn code_key(code: &str) -> String {
    format!("enrol-code:{}", sha256_b64(normal_code(code).as_bytes()))
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
    state: &AppState,
    caller: &Caller,
    identity_id: &str,
    actor: &str,
) -> Result<EnrolmentCode, AccountError> {
    if state.directory.identity(identity_id).await?.is_none() {
        return Err(AccountError::UnknownIdentity(identity_id.to_owned()));
    }
    let code = new_code();
    let ttl = state.config.webauthn.enrolment_code_ttl_secs;
    let record = CodeRecord { identity_id: identity_id.to_owned(), issued_by: actor.to_owned() };
    state.store.put_json(&code_key(&code), &record, Duration::from_secs(ttl)).await?;
    audit(state, caller, AuditKind::EnrolmentCode, Outcome::Success, identity_id, Some(actor), None, Some("issued"));
    Ok(EnrolmentCode { code, expires_at: crate::now() + ttl as i64, enrol_url: state.endpoint("/account/enrol") })
}

/// The security keys of an identity, oldest first (for HR's list).
pub async fn keys_of(state: &AppState, identity_id: &str) -> Result<Vec<Fido2Credential>, DirectoryError> {
    state.fido2.credentials_of(identity_id).await
}

/// Revokes a security key of `identity_id` and ends every session it opened (tokens revoked,
/// back-channel logout). Tells whether the key existed. Audited with `actor`.
pub async fn revoke_key(
    state: &AppState,
    caller: &Caller,
    identity_id: &str,
    credential_id: &str,
    actor: &str,
) -> Result<bool, AccountError> {
    // The durable note first: should the ending fail, the next sweep ends the key's sessions.
    let target = AccessTarget::Credential(credential_id.to_owned());
    let note = state.revocations.add_pending_revocation(&target, "security key revoked").await?;
    if !state.fido2.remove_credential(identity_id, credential_id).await? {
        state.revocations.revocation_done(&note).await?;
        return Ok(false);
    }
    let ended = session::end_access(state, caller, &target).await?;
    state.revocations.revocation_done(&note).await?;
    audit(
        state,
        caller,
        AuditKind::KeyRevoked,
        Outcome::Success,
        identity_id,
        Some(actor),
        Some(credential_id),
        Some(&format!("{ended} session(s) ended")),
    );
    Ok(true)
}

/// The JSON view of a key for HR's API.
fn key_view(k: &Fido2Credential) -> serde_json::Value {
    json!({
        "id": k.id,
        "name": k.name,
        "aaguid": k.aaguid,
        "attested": k.attested,
        "sign_count": k.sign_count,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
    })
}

fn path(req: &HttpRequest, name: &str) -> Option<String> {
    req.match_info().get(name).filter(|v| !v.is_empty() && v.len() <= 1400).map(str::to_owned)
}

async fn api_admin(
    req: &HttpRequest,
    state: &AppState,
    scope: vigie_core::roles::Scope,
) -> Result<crate::admin::auth::Admin, HttpResponse> {
    crate::admin::auth::require_token(req, state, scope).await
}

/// `GET /admin/api/identities/{id}/fido2` (bearer token with role `fido2`, scope `keys:read`): the
/// identity's keys.
pub async fn api_keys(req: HttpRequest, state: State) -> HttpResponse {
    if let Err(r) = api_admin(&req, &state, vigie_core::roles::Scope::KeysRead).await {
        return r;
    }
    let Some(id) = path(&req, "id") else { return problem(StatusCode::BAD_REQUEST, "Bad request", "no identity id") };
    match state.directory.identity(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return problem(StatusCode::NOT_FOUND, "Not found", &format!("there is no identity with id {id:?}"));
        }
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, "Directory unavailable", &e.to_string()),
    }
    match keys_of(&state, &id).await {
        Ok(keys) => HttpResponse::Ok().json(json!({ "keys": keys.iter().map(key_view).collect::<Vec<_>>() })),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, "Directory unavailable", &e.to_string()),
    }
}

/// `POST /admin/api/identities/{id}/fido2/enrolment-code`: a one-time code for the agent to
/// register keys at `/account/enrol` (scope `keys:enrol`). The code is in this answer only.
pub async fn api_issue_code(req: HttpRequest, state: State) -> HttpResponse {
    let admin = match api_admin(&req, &state, vigie_core::roles::Scope::KeysEnrol).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(id) = path(&req, "id") else { return problem(StatusCode::BAD_REQUEST, "Bad request", "no identity id") };
    let caller = Caller::of(&req, &state);
    match issue_enrolment_code(&state, &caller, &id, &admin.actor).await {
        Ok(code) => HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(code),
        Err(AccountError::UnknownIdentity(_)) => {
            problem(StatusCode::NOT_FOUND, "Not found", &format!("there is no identity with id {id:?}"))
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &e.to_string()),
    }
}

/// `DELETE /admin/api/identities/{id}/fido2/{credential}` (scope `keys:revoke`): revokes a key;
/// its sessions end.
pub async fn api_revoke(req: HttpRequest, state: State) -> HttpResponse {
    let admin = match api_admin(&req, &state, vigie_core::roles::Scope::KeysRevoke).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (Some(id), Some(credential)) = (path(&req, "id"), path(&req, "credential")) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "expected /admin/api/identities/{id}/fido2/{credential}",
        );
    };
    let caller = Caller::of(&req, &state);
    match revoke_key(&state, &caller, &id, &credential, &admin.actor).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => problem(StatusCode::NOT_FOUND, "Not found", "this identity has no such key"),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
fn audit(
    state: &AppState,
    caller: &Caller,
    kind: AuditKind,
    outcome: Outcome,
    identity_id: &str,
    actor: Option<&str>,
    object: Option<&str>,
    reason: Option<&str>,
) {
    state.audit(AuditEvent {
        kind: Some(kind),
        outcome: Some(outcome),
        subject: Some(identity_id.to_owned()),
        method: Some("fido2".into()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        reason: reason.map(str::to_owned),
        actor: actor.map(str::to_owned),
        object: object.map(|o| format!("fido2:{o}")),
        ..Default::default()
    });
}

/// Who is on the account pages, and what they may do.
enum Access {
    /// May register keys: a recent two-factor session, or a redeemed enrolment code.
    Enrol(Holder),
    /// Signed in, but the login is too old or too weak to add a key: may list and revoke.
    ListOnly(Holder),
    /// Neither signed in nor holding a code.
    Nobody,
}

struct Holder {
    identity_id: String,
    /// The CSRF token of this holder's forms: SHA-256 of a label and the session (or grant)
    /// cookie, a secret of this browser that changes at every login.
    csrf: String,
    /// `session:<sid>` or `enrolment-code`.
    via: String,
    /// Whether this holder may revoke keys (a session; a code only adds).
    can_revoke: bool,
}

fn grant_key(cookie: &str) -> String {
    format!("enrol-grant:{}", sha256_b64(cookie.as_bytes()))
}

async fn access(state: &AppState, req: &HttpRequest) -> Result<Access, StoreError> {
    if let Some(cookie) = crate::http::cookie(req, GRANT_COOKIE)
        && let Some(g) = state.store.get_json::<Grant>(&grant_key(&cookie)).await?
    {
        return Ok(Access::Enrol(Holder {
            identity_id: g.identity_id,
            csrf: sha256_b64(format!("vigie-enrol-csrf\0{cookie}").as_bytes()),
            via: "enrolment-code".into(),
            can_revoke: false,
        }));
    }
    let Some(s) = session::current(state, req).await? else { return Ok(Access::Nobody) };
    let cookie = crate::http::cookie(req, session::COOKIE).unwrap_or_default();
    let holder = Holder {
        identity_id: s.authentication.identity_id.clone(),
        csrf: sha256_b64(format!("vigie-account-csrf\0{cookie}").as_bytes()),
        via: format!("session:{}", s.sid),
        can_revoke: true,
    };
    // A new key is a new way in: the policy decides (`enrol_mie`; default: two factors, a login at
    // most 10 minutes old, not a sponsorship), within `webauthn.enrolment_max_auth_age_secs`.
    let max_age = state.config.webauthn.enrolment_max_auth_age_secs as i64;
    let recent = crate::now() - s.authentication.at <= max_age;
    let allowed = recent && enrol_allowed(state, req, &s.authentication).await;
    Ok(if allowed { Access::Enrol(holder) } else { Access::ListOnly(holder) })
}

/// Asks the policy engine whether this session may enrol a new MIE; audited.
async fn enrol_allowed(state: &AppState, req: &HttpRequest, auth: &vigie_core::Authentication) -> bool {
    let caller = crate::http::Caller::of(req, state);
    crate::policy::decide_system(state, &caller, vigie_core::policy::Action::EnrolMie, auth, "system:enrol_mie")
        .await
        .allowed
}

struct Texts {
    title: &'static str,
    intro: &'static str,
    none: &'static str,
    caption: &'static str,
    name: &'static str,
    aaguid: &'static str,
    created: &'static str,
    last_used: &'static str,
    never: &'static str,
    revoke: &'static str,
    add_title: &'static str,
    name_label: &'static str,
    default_name: &'static str,
    add: &'static str,
    add_help: &'static str,
    too_old: &'static str,
    nobody: &'static str,
    code_title: &'static str,
    code_label: &'static str,
    code_help: &'static str,
    code_submit: &'static str,
    code_refused: &'static str,
    added: &'static str,
    revoked: &'static str,
    unsupported: &'static str,
    failed: &'static str,
    forbidden: &'static str,
    reg_refused: &'static str,
    aaguid_refused: &'static str,
    done: &'static str,
    done_text: &'static str,
    synced_refused: &'static str,
}

const FR: Texts = Texts {
    title: "Mes clés de sécurité",
    intro: "Clés de sécurité FIDO2 enregistrées pour",
    none: "Aucune clé enregistrée.",
    caption: "Clés enregistrées",
    name: "Nom",
    aaguid: "Modèle (AAGUID)",
    created: "Ajoutée le",
    last_used: "Dernière utilisation",
    never: "jamais",
    revoke: "Révoquer",
    add_title: "Ajouter une clé",
    name_label: "Nom de la clé",
    default_name: "Ma clé FIDO2",
    add: "Enregistrer une nouvelle clé",
    add_help: "Branchez la clé ; il vous sera demandé de définir ou de saisir son code PIN.",
    too_old: "Pour ajouter une clé, reconnectez-vous avec deux facteurs : votre dernière connexion est trop ancienne.",
    nobody: "Connectez-vous d'abord à une application de l'établissement, ou saisissez le code d'enrôlement remis par les ressources humaines.",
    code_title: "Enrôler une clé de sécurité",
    code_label: "Code d'enrôlement",
    code_help: "Le code à usage unique remis par les ressources humaines (par exemple ABCD-EFGH-JKMN-PQRS).",
    code_submit: "Continuer",
    code_refused: "Ce code est inconnu, a expiré ou a déjà servi. Demandez-en un nouveau aux ressources humaines.",
    added: "La clé a été enregistrée.",
    revoked: "La clé a été révoquée ; les sessions ouvertes avec elle sont terminées.",
    unsupported: "Ce navigateur ne permet pas d'utiliser une clé de sécurité.",
    failed: "La clé de sécurité n'a pas répondu ou l'opération a été annulée. Réessayez.",
    forbidden: "Ce formulaire n'a pas été délivré à ce navigateur, ou votre session a changé : rechargez la page.",
    reg_refused: "L'enregistrement de la clé a été refusé : la vérification de la clé a échoué (code PIN exigé). Réessayez.",
    aaguid_refused: "Ce modèle de clé n'est pas autorisé par l'établissement. Utilisez une clé fournie par le service informatique.",
    synced_refused: "Cette clé est synchronisée (gestionnaire de mots de passe, téléphone) : seules les clés de sécurité matérielles sont acceptées.",
    done: "Terminer l'enrôlement",
    done_text: "L'enrôlement est terminé. Vous pouvez vous connecter avec votre clé et fermer cette page.",
};

const EN: Texts = Texts {
    title: "My security keys",
    intro: "FIDO2 security keys registered for",
    none: "No key registered.",
    caption: "Registered keys",
    name: "Name",
    aaguid: "Model (AAGUID)",
    created: "Added",
    last_used: "Last used",
    never: "never",
    revoke: "Revoke",
    add_title: "Add a key",
    name_label: "Key name",
    default_name: "My FIDO2 key",
    add: "Register a new key",
    add_help: "Plug in the key; you will be asked to set or enter its PIN.",
    too_old: "To add a key, sign in again with two factors: your last sign-in is too old.",
    nobody: "Sign in to an application of the establishment first, or enter the enrolment code HR gave you.",
    code_title: "Enrol a security key",
    code_label: "Enrolment code",
    code_help: "The one-time code HR gave you (e.g. ABCD-EFGH-JKMN-PQRS).",
    code_submit: "Continue",
    code_refused: "This code is unknown, expired or already used. Ask HR for a new one.",
    added: "The key was registered.",
    revoked: "The key was revoked; the sessions opened with it have ended.",
    unsupported: "This browser cannot use a security key.",
    failed: "The security key did not answer or the operation was cancelled. Try again.",
    forbidden: "This form was not issued to this browser, or your session changed: reload the page.",
    reg_refused: "The key registration was refused: the key check failed (a PIN is required). Try again.",
    aaguid_refused: "This key model is not allowed by the establishment. Use a key supplied by IT.",
    synced_refused: "This key is synchronised (password manager, phone): only hardware security keys are accepted.",
    done: "End enrolment",
    done_text: "Enrolment is over. You can sign in with your key and close this page.",
};

fn texts(l: Lang) -> &'static Texts {
    match l {
        Lang::Fr => &FR,
        Lang::En => &EN,
    }
}

fn date(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub done: Option<String>,
}

/// `GET /account/keys`: the keys of the signed-in user (or of the holder of an enrolment code),
/// with a form to add one when allowed and a button to revoke each.
pub async fn keys_page(req: HttpRequest, state: State, q: web::Query<PageQuery>) -> HttpResponse {
    let l = pages::lang(&req, None);
    let t = texts(l);
    let access = match access(&state, &req).await {
        Ok(a) => a,
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let (holder, may_add) = match access {
        Access::Enrol(h) => (h, true),
        Access::ListOnly(h) => (h, false),
        Access::Nobody => {
            let main = format!(
                r#"<p>{nobody}</p><p><a class="button" href="/account/enrol">{code}</a></p>"#,
                nobody = t.nobody,
                code = t.code_title
            );
            return html_page(l, StatusCode::OK, t.title, &main, None);
        }
    };
    let (identity, keys) = match tokio::try_join!(
        state.directory.identity(&holder.identity_id),
        state.fido2.credentials_of(&holder.identity_id)
    ) {
        Ok(v) => v,
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let who = identity.map(|i| format!("{} {}", i.given_name, i.family_name)).unwrap_or_default();
    let done = match q.done.as_deref() {
        Some("added") => format!(r#"<p class="notice" role="status">{}</p>"#, t.added),
        Some("revoked") => format!(r#"<p class="notice" role="status">{}</p>"#, t.revoked),
        _ => String::new(),
    };
    let list = if keys.is_empty() {
        format!(r#"<p id="no-keys">{}</p>"#, t.none)
    } else {
        let rows: String = keys
            .iter()
            .map(|k| {
                let revoke = if holder.can_revoke {
                    format!(
                        r#"<form method="post" action="/account/keys/revoke"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="id" value="{id}"><button type="submit" class="small">{label}</button></form>"#,
                        csrf = esc(&holder.csrf),
                        id = esc(&k.id),
                        label = t.revoke
                    )
                } else {
                    String::new()
                };
                format!(
                    r#"<tr data-key="{id}"><td>{name}</td><td><code>{aaguid}</code></td><td>{created}</td><td>{used}</td><td>{revoke}</td></tr>"#,
                    id = esc(&k.id),
                    name = esc(&k.name),
                    aaguid = esc(&k.aaguid),
                    created = esc(&date(&k.created_at)),
                    used = esc(&k.last_used_at.as_deref().map(date).unwrap_or_else(|| t.never.into())),
                )
            })
            .collect();
        format!(
            r#"<table id="keys"><caption>{caption}</caption><thead><tr><th scope="col">{n}</th><th scope="col">{a}</th><th scope="col">{c}</th><th scope="col">{u}</th><th></th></tr></thead><tbody>{rows}</tbody></table>"#,
            caption = t.caption,
            n = t.name,
            a = t.aaguid,
            c = t.created,
            u = t.last_used
        )
    };
    let add = if may_add {
        format!(
            r#"<h2>{title}</h2>
<form method="post" action="/account/keys" id="register-key" data-webauthn="create" data-options="/account/keys/options">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="credential" value="">
<label for="key-name">{label}</label>
<input id="key-name" name="name" type="text" maxlength="64" required value="{default}">
<button type="submit">{add}</button>
<p class="help">{help}</p>
<p class="error" role="alert" id="fido2-error" hidden data-unsupported="{unsupported}" data-failed="{failed}"></p>
</form>
<script src="/static/fido2.js" defer></script>"#,
            title = t.add_title,
            csrf = esc(&holder.csrf),
            label = t.name_label,
            default = t.default_name,
            add = t.add,
            help = t.add_help,
            unsupported = esc(t.unsupported),
            failed = esc(t.failed),
        )
    } else {
        format!(r#"<p class="help" id="add-refused">{}</p>"#, t.too_old)
    };
    // A code holder ends the grant explicitly when done (shared workstations).
    let finish = if holder.can_revoke {
        String::new()
    } else {
        format!(
            r#"<form method="post" action="/account/enrol/done" id="end-enrolment"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">{label}</button></form>"#,
            csrf = esc(&holder.csrf),
            label = t.done
        )
    };
    let main =
        format!(r#"<p>{intro} <strong>{who}</strong>.</p>{done}{list}{add}{finish}"#, intro = t.intro, who = esc(&who));
    let mut resp = html_page(l, StatusCode::OK, t.title, &main, None);
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    if may_add {
        allow_script(&mut resp);
    }
    resp
}

fn reg_key(holder: &Holder) -> String {
    format!("webauthn-reg:{}", sha256_b64(holder.csrf.as_bytes()))
}

/// The holder allowed to add a key, after the form's CSRF check.
async fn enroller(state: &AppState, req: &HttpRequest, p: &Params) -> Result<Holder, (StatusCode, &'static str)> {
    let t = texts(pages::lang(req, None));
    let holder = match access(state, req).await {
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

fn key_name(p: &Params, l: Lang) -> String {
    let name: String = p.get("name").unwrap_or_default().trim().chars().filter(|c| !c.is_control()).take(64).collect();
    if name.is_empty() { texts(l).default_name.into() } else { name }
}

/// `POST /account/keys/options` (`csrf`, `name`): WebAuthn creation options (JSON) for a
/// discoverable credential with user verification required and, with `webauthn.attestation =
/// "required"`, direct attestation, excluding the keys already registered (WebAuthn §5.4).
pub async fn register_options(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let l = pages::lang(&req, None);
    let Ok(p) = parse_params(&body) else {
        return problem(StatusCode::BAD_REQUEST, "Malformed request", "expected a form with `csrf` and `name`");
    };
    let holder = match enroller(&state, &req, &p).await {
        Ok(h) => h,
        Err((status, detail)) => return problem(status, "Key registration not allowed", detail),
    };
    let (identity, existing) = match tokio::try_join!(
        state.directory.identity(&holder.identity_id),
        state.fido2.credentials_of(&holder.identity_id)
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
    let started = match &state.attestation_roots {
        // Attestation required and no root configured: no model can be trusted (the start
        // logged which keys to set).
        Some(roots) if roots.is_empty() => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Key registration unavailable",
                "registering security keys is not set up on this server yet: contact IT support",
            );
        }
        Some(roots) => state
            .webauthn
            .start_attested_passkey_registration(user_handle, name, &display, exclude, (**roots).clone(), None)
            .map(|(ccr, s)| (ccr, Ceremony::Attested(Box::new(s)))),
        None => state
            .webauthn
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
    let ttl = Duration::from_secs(state.config.webauthn.ceremony_ttl_secs);
    if let Err(e) = state.store.put_json(&reg_key(&holder), &record, ttl).await {
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
pub async fn register(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let caller = Caller::of(&req, &state);
    let l = pages::lang(&req, None);
    let t = texts(l);
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, "the registration form was malformed");
    };
    let holder = match enroller(&state, &req, &p).await {
        Ok(h) => h,
        Err((status, detail)) => return pages::error_page(&req, status, detail),
    };
    let refuse = |status: StatusCode, text: &str, reason: &str| {
        audit(
            &state,
            &caller,
            AuditKind::KeyRegistered,
            Outcome::Failure,
            &holder.identity_id,
            Some(&holder.via),
            None,
            Some(reason),
        );
        pages::error_page(&req, status, text)
    };
    let pending = match state.store.take_json::<Registration>(&reg_key(&holder)).await {
        Ok(Some(r)) => r,
        Ok(None) => return refuse(StatusCode::BAD_REQUEST, t.failed, "registration challenge expired or already used"),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
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
        Ceremony::Attested(s) => match state.webauthn.finish_attested_passkey_registration(&credential, s) {
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
        Ceremony::Unattested(s) => match state.webauthn.finish_passkey_registration(&credential, s) {
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
    let allow = &state.config.webauthn.aaguid_allow_list;
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
    match state.fido2.add_credential(&stored).await {
        Ok(()) => {}
        Err(DirectoryError::Invalid(m)) => return refuse(StatusCode::CONFLICT, t.reg_refused, &m),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    audit(
        &state,
        &caller,
        AuditKind::KeyRegistered,
        Outcome::Success,
        &pending.identity_id,
        Some(&holder.via),
        Some(&id),
        Some(&if stored.attested {
            format!("AAGUID {}, attestation verified", stored.aaguid)
        } else {
            "no attestation (webauthn.attestation = \"none\"): not a hardware key".into()
        }),
    );
    // A new way into the account: its holder hears of it, whoever added it (issue 12).
    let added = crate::notices::Added::Key { name: stored.name.clone() };
    crate::notices::credential_added(&state, &caller, &pending.identity_id, added);
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
pub async fn revoke(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let caller = Caller::of(&req, &state);
    let t = texts(pages::lang(&req, None));
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, "the form was malformed");
    };
    let holder = match access(&state, &req).await {
        Ok(Access::Enrol(h) | Access::ListOnly(h)) if h.can_revoke => h,
        Ok(_) => return pages::error_page(&req, StatusCode::UNAUTHORIZED, t.nobody),
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if !p.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), holder.csrf.as_bytes())) {
        return pages::error_page(&req, StatusCode::FORBIDDEN, t.forbidden);
    }
    let id = p.get("id").filter(|i| i.len() <= 1400).unwrap_or_default();
    let actor = format!("self:{}", holder.identity_id);
    match revoke_key(&state, &caller, &holder.identity_id, id, &actor).await {
        Ok(true) => HttpResponse::SeeOther().insert_header((header::LOCATION, "/account/keys?done=revoked")).finish(),
        Ok(false) => pages::error_page(&req, StatusCode::NOT_FOUND, "no such key among yours"),
        Err(e) => pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
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
        crate::http::cookie(req, CODE_CSRF_COOKIE).filter(|c| c.len() == 43).unwrap_or_else(|| random_token(32));
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
    );
    let mut resp = html_page(l, status, t.code_title, &main, None);
    if let Ok(v) =
        header::HeaderValue::from_str(&crate::http::host_cookie(CODE_CSRF_COOKIE, token, Some(3600)).to_string())
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /account/enrol` (`csrf`, `code`): a valid code is used up and this browser may
/// register keys for the code's identity for 15 minutes.
pub async fn redeem_code(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let caller = Caller::of(&req, &state);
    let t = texts(pages::lang(&req, None));
    let Ok(p) = parse_params(&body) else {
        return pages::error_page(&req, StatusCode::BAD_REQUEST, "the form was malformed");
    };
    let csrf_ok = match (crate::http::cookie(&req, CODE_CSRF_COOKIE), p.get("csrf")) {
        (Some(c), Some(f)) => ct_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    };
    if !csrf_ok {
        return code_form(&req, StatusCode::FORBIDDEN, Some(t.forbidden));
    }
    let window = Duration::from_secs(state.config.login.ip_window_secs);
    match state.store.incr(&caller.rate_limit_key("enrol-ip"), window).await {
        Ok(n) if n > state.config.login.max_attempts_per_ip => {
            return pages::rate_limited(&req, state.config.login.ip_window_secs);
        }
        Ok(_) => {}
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let code = p.get("code").filter(|c| c.len() <= 64).unwrap_or_default();
    // Single use: `take` returns the record to one caller only, across replicas.
    let record = match state.store.take_json::<CodeRecord>(&code_key(code)).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            state.audit(AuditEvent {
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
        Err(e) => return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let cookie = random_token(32);
    let grant = Grant { identity_id: record.identity_id.clone() };
    if let Err(e) = state.store.put_json(&grant_key(&cookie), &grant, Duration::from_secs(GRANT_SECS)).await {
        return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    audit(
        &state,
        &caller,
        AuditKind::EnrolmentCode,
        Outcome::Success,
        &record.identity_id,
        Some(&format!("code issued by {}", record.issued_by)),
        None,
        Some("redeemed: key registration open for 10 minutes"),
    );
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/account/keys"))
        .cookie(crate::http::host_cookie(GRANT_COOKIE, cookie, None))
        .finish()
}

/// `POST /account/enrol/done` (`csrf`): ends this browser's enrolment grant.
pub async fn end_enrolment(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let l = pages::lang(&req, None);
    let t = texts(l);
    let p = parse_params(&body).unwrap_or_default();
    let Some(cookie) = crate::http::cookie(&req, GRANT_COOKIE) else {
        return html_page(l, StatusCode::OK, t.code_title, &format!("<p>{}</p>", t.done_text), None);
    };
    let csrf = sha256_b64(format!("vigie-enrol-csrf\0{cookie}").as_bytes());
    if !p.get("csrf").is_some_and(|c| ct_eq(c.as_bytes(), csrf.as_bytes())) {
        return pages::error_page(&req, StatusCode::FORBIDDEN, t.forbidden);
    }
    if let Err(e) = state.store.delete(&grant_key(&cookie)).await {
        return pages::error_page(&req, StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let mut resp =
        html_page(l, StatusCode::OK, t.code_title, &format!(r#"<p role="status">{}</p>"#, t.done_text), None);
    if let Ok(v) =
        header::HeaderValue::from_str(&crate::http::host_cookie(GRANT_COOKIE, String::new(), Some(0)).to_string())
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
