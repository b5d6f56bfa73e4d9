//! The first login method: password (argon2id) + TOTP (RFC 6238), for staff without a card
//! yet. Two factors, not phishing-resistant. Failures say nothing of whether the account
//! exists; attempts are limited per account and per IP address. With `[directory.ldap]` the
//! password is the establishment's directory password, checked there by bind (never stored
//! here); the TOTP stays Vigie's, and the directory's groups give the roles they map to. The
//! directory is an upstream with its circuit breaker (`health::LDAP`): each bind's outcome feeds
//! it, and while it is open the login fails at once instead of waiting on the timeouts.
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use vigie_core::store::{Attempt, StoreExt};
use vigie_core::{Authentication, Factor, Mie};

use super::config::LoginConfig;
use super::form::{Flows, LoginAttempt, PostedLogin, limit_per_ip, limited, posted_login};
use super::html;
use crate::config::Config;
use crate::health::{LDAP, Monitor};
use crate::secrets::verify_password;
use crate::session::keys;
use crate::state::{Audit, OidcState, Part, Ports, Upstreams};
use crate::totp;
use crate::web::pages;

/// Verified against when the account does not exist, so that a wrong username costs the
/// same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| crate::secrets::hash_password("vigie-timing-equaliser"));

enum Failure {
    UnknownAccount,
    Disabled,
    BadPassword,
    NoTotp,
    BadTotp,
    TotpReplayed,
    Locked,
    /// The establishment's directory refused the password or the account.
    Directory(vigie_directory_ldap::Refusal),
    /// The establishment's directory cannot be reached (what happened, for the log).
    DirectoryDown(String),
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Failure::UnknownAccount => "unknown account",
            Failure::Disabled => "account disabled",
            Failure::BadPassword => "wrong password",
            Failure::NoTotp => "no TOTP enrolled",
            Failure::BadTotp => "wrong TOTP code",
            Failure::TotpReplayed => "TOTP code already used",
            Failure::Locked => "account locked after repeated failures",
            Failure::Directory(r) => r.reason(),
            Failure::DirectoryDown(_) => "directory unavailable",
        }
    }

    /// What the person reads: one generic text for a wrong password and an unknown user alike;
    /// a page of its own for a state only the account's holder learns (the password was right,
    /// or AD said so), and for the directory down.
    fn shown(&self) -> html::LoginError {
        use vigie_directory_ldap::{AccountState, Refusal};
        let (fr, en) = match self {
            Failure::Directory(Refusal::State(AccountState::Disabled)) => (
                "Votre compte de l'annuaire de l'établissement est désactivé. Contactez le support informatique ou votre encadrement.",
                "Your account in the establishment's directory is disabled. Contact IT support or your manager.",
            ),
            Failure::Directory(Refusal::State(AccountState::Locked)) => (
                "Votre compte de l'annuaire de l'établissement est verrouillé après trop d'essais. Attendez quelques minutes ou contactez le support informatique.",
                "Your account in the establishment's directory is locked after too many attempts. Wait a few minutes or contact IT support.",
            ),
            Failure::Directory(Refusal::State(AccountState::Expired)) => (
                "Votre compte de l'annuaire de l'établissement a expiré. Contactez votre encadrement ou le service des ressources humaines.",
                "Your account in the establishment's directory has expired. Contact your manager or human resources.",
            ),
            Failure::Directory(Refusal::State(AccountState::MustChangePassword)) => (
                "Vous devez changer votre mot de passe de l'établissement avant de vous connecter : changez-le sur un poste de l'établissement (Ctrl+Alt+Suppr), puis réessayez.",
                "You must change your establishment password before signing in: change it on a workstation of the establishment (Ctrl+Alt+Del), then try again.",
            ),
            Failure::DirectoryDown(_) => (
                "L'annuaire de l'établissement ne répond pas : la connexion par mot de passe est momentanément impossible. Utilisez votre carte CPS / CPE ou votre clé de sécurité, ou réessayez dans quelques minutes.",
                "The establishment's directory does not answer: signing in with a password is not possible for now. Use your CPS / CPE card or your security key, or try again in a few minutes.",
            ),
            _ => return html::LoginError::Generic,
        };
        html::LoginError::Notice { fr, en }
    }
}

pub async fn submit(
    req: HttpRequest,
    flows: Flows,
    (ports, config, oidc, upstreams): (Part<Ports>, Part<Config>, Part<OidcState>, Part<Upstreams>),
    body: web::Bytes,
) -> HttpResponse {
    let caller = flows.caller(&req);
    let PostedLogin { params, flow_id, flow } = match posted_login(&ports, &req, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let username = limited(&params, "username", 128).unwrap_or_default().trim().to_owned();
    let password = limited(&params, "password", 1024).unwrap_or_default();
    let code = limited(&params, "totp", 16).unwrap_or_default().replace(' ', "");

    // Not offered for this login: no password is checked, so none is guessed.
    if let Some(r) = super::unasked(&flows, &req, &caller, &flow_id, &flow, Mie::PasswordTotp, &username) {
        return r;
    }
    let at = LoginAttempt { req: &req, caller: &caller, flow_id: &flow_id, flow: &flow };
    if let Err(r) = limit_per_ip(&flows, &ports, &config.login, at, Mie::PasswordTotp, &username, true).await {
        return r;
    }

    // DESIGN.md flow 5: nothing waits on an upstream known to be down. Neither the account's
    // attempts nor the directory are touched: no password is checked, so none is guessed.
    let outcome = if upstreams.ldap.is_some() && !upstreams.health.available(LDAP) {
        Ok(Err(Failure::DirectoryDown("its circuit breaker is open: not called".into())))
    } else {
        verify(&ports, &upstreams, &flows.audit, &config.login, &username, &password, &code).await
    };
    match outcome {
        Ok(Ok(identity_id)) => {
            let auth =
                Authentication::new(identity_id, Mie::PasswordTotp, vec![Factor::Pwd, Factor::Otp], crate::now());
            let _ = ports.store.delete(&keys::login_account_failures(&username)).await;
            flows.complete(at, auth, &username).await
        }
        Ok(Err(failure)) => {
            metrics::counter!("vigie_login_total", "method" => "password_totp", "result" => "failure").increment(1);
            if let Failure::DirectoryDown(detail) = &failure {
                tracing::warn!(username = %username, detail = %detail, "password login: the LDAP directory is unavailable");
            }
            flows.refused(&caller, &flow, Mie::PasswordTotp, &username, Some(failure.reason()));
            let client_name = oidc
                .clients
                .get(&flow.request.client_id)
                .map(|c| c.config.name.clone().unwrap_or_else(|| c.config.client_id.clone()))
                .unwrap_or_default();
            let mut resp = html::login_form(
                &req,
                &html::FormView {
                    flow_id: &flow_id,
                    csrf: &flow.csrf,
                    client_name: &client_name,
                    username: &username,
                    error: Some(failure.shown()),
                    redirect_origin: &flow.request.redirect_uri,
                    ui_locales: flow.request.ui_locales.as_deref(),
                    methods: flows.methods(&flow),
                },
            );
            *resp.status_mut() = match failure {
                Failure::DirectoryDown(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            resp
        }
        // The cause (the directory's or the store's error) goes to the log, not to the browser.
        Err(e) => pages::unavailable(&req, &e),
    }
}

/// Checks the credentials. The outer error is an outage; the inner one a refused login.
async fn verify(
    ports: &Ports,
    upstreams: &Upstreams,
    audit: &Audit,
    cfg: &LoginConfig,
    username: &str,
    password: &str,
    code: &str,
) -> Result<Result<String, Failure>, String> {
    // The lock counts attempts whether or not the account exists, so it reveals nothing. Each
    // attempt is counted before argon2 runs: concurrent guesses cannot all be checked while the
    // counter still reads low. A right login resets it (the caller).
    let window = Duration::from_secs(cfg.lockout_secs);
    let attempt = ports
        .store
        .attempt(&keys::login_account_failures(username), cfg.max_failures_per_account, window)
        .await
        .map_err(|e| e.to_string())?;
    if let Attempt::Refused(_) = attempt {
        return Ok(Err(Failure::Locked));
    }
    check(ports, upstreams, audit, username, password, code).await
}

async fn check(
    ports: &Ports,
    upstreams: &Upstreams,
    audit: &Audit,
    username: &str,
    password: &str,
    code: &str,
) -> Result<Result<String, Failure>, String> {
    if let Some(ldap) = &upstreams.ldap {
        return check_by_ldap(ports, &upstreams.health, audit, ldap, username, password, code).await;
    }
    let account = ports.directory.account_by_username(username).await.map_err(|e| e.to_string())?;
    let hash = account.as_ref().and_then(|a| a.password_hash.clone()).unwrap_or_else(|| DUMMY_HASH.clone());
    let password = password.to_owned();
    // argon2id is CPU-bound: keep it off the async workers.
    let password_ok = web::block(move || verify_password(&hash, &password)).await.map_err(|e| e.to_string())?;
    let Some(account) = account else { return Ok(Err(Failure::UnknownAccount)) };
    if !password_ok || account.password_hash.is_none() {
        return Ok(Err(Failure::BadPassword));
    }
    if account.disabled {
        return Ok(Err(Failure::Disabled));
    }
    totp_step(ports, account, code).await
}

/// The password by bind to the establishment's directory; the Vigie account of the same login
/// name holds the TOTP (and the cards, keys… of the person).
async fn check_by_ldap(
    ports: &Ports,
    health: &Monitor,
    audit: &Audit,
    ldap: &vigie_directory_ldap::LdapSource,
    username: &str,
    password: &str,
    code: &str,
) -> Result<Result<String, Failure>, String> {
    let started = Instant::now();
    let checked = ldap.check_password(username, password).await;
    // The breaker counts the directory's answers, not the person's: a refused password is the
    // directory answering; an outage (refused connection, timeout, the service bind refused) is not.
    health.record(LDAP, checked.as_ref().map(|_| started.elapsed()).map_err(ToString::to_string));
    let user = match checked {
        Ok(Ok(user)) => user,
        Ok(Err(refusal)) => return Ok(Err(Failure::Directory(refusal))),
        Err(e) => return Ok(Err(Failure::DirectoryDown(e.to_string()))),
    };
    let Some(account) = ports.directory.account_by_username(&user.login).await.map_err(|e| e.to_string())? else {
        tracing::warn!(username = %user.login, dn = %user.dn, "a directory user has no Vigie account: import them first");
        return Ok(Err(Failure::UnknownAccount));
    };
    if account.disabled {
        return Ok(Err(Failure::Disabled));
    }
    let identity_id = account.identity_id.clone();
    let outcome = totp_step(ports, account, code).await?;
    if outcome.is_ok() {
        sync_roles(ports, audit, ldap, &identity_id, &user, &user.roles).await.map_err(|e| e.to_string())?;
    }
    Ok(outcome)
}

/// The roles the directory's groups give (`directory.ldap.group_roles`), brought into Vigie's
/// directory at each login, where the policy reads them: those of the user's groups granted,
/// the other mapped ones revoked; roles granted by hand outside the mapping are left alone.
/// A change is one audit line (`role_changed`, the roles added and removed by name).
async fn sync_roles(
    ports: &Ports,
    audit: &Audit,
    ldap: &vigie_directory_ldap::LdapSource,
    identity_id: &str,
    user: &vigie_directory_ldap::LdapUser,
    held: &[String],
) -> Result<(), vigie_core::directory::DirectoryError> {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let now: Vec<vigie_core::roles::Role> = ports.roles.roles_of(identity_id).await?;
    for label in ldap.managed_roles() {
        let Ok(role) = vigie_core::roles::Role::parse(&label) else { continue };
        let should = held.contains(&label);
        if should && !now.contains(&role) {
            ports.roles.grant(identity_id, role, "ldap").await?;
            tracing::info!(identity = identity_id, role = %role, "role granted from the directory's groups");
            added.push(label);
        } else if !should && now.contains(&role) {
            ports.roles.revoke(identity_id, role).await?;
            tracing::info!(identity = identity_id, role = %role, "role revoked: no longer in the directory's groups");
            removed.push(label);
        }
    }
    if !added.is_empty() || !removed.is_empty() {
        let names = |roles: &[String]| if roles.is_empty() { "none".to_owned() } else { roles.join(",") };
        audit.record(vigie_core::audit::AuditEvent {
            kind: Some(vigie_core::audit::AuditKind::RoleChanged),
            outcome: Some(vigie_core::audit::Outcome::Success),
            subject: Some(identity_id.to_owned()),
            username: Some(user.login.clone()),
            method: Some(Mie::PasswordTotp.as_str().to_owned()),
            actor: Some("directory-groups".into()),
            object: Some(format!("roles added: {}; removed: {}", names(&added), names(&removed))),
            reason: Some("the user's groups in the directory (`directory.ldap.group_roles`), read at login".into()),
            ..Default::default()
        });
    }
    Ok(())
}

/// The TOTP of the account and its single use.
async fn totp_step(
    ports: &Ports,
    account: vigie_core::directory::Account,
    code: &str,
) -> Result<Result<String, Failure>, String> {
    let Some(secret) = account.totp_secret else { return Ok(Err(Failure::NoTotp)) };
    let Some(step) = totp::matching_step(&secret, code, crate::now()) else { return Ok(Err(Failure::BadTotp)) };
    // RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after the
    // successful validation has been issued for the first OTP". The step is marked used
    // across replicas for as long as the window could accept it.
    let used = keys::totp_used(&account.identity_id, step);
    let first = ports
        .store
        .put_if_absent(&used, b"1", Duration::from_secs(3 * totp::STEP_SECS as u64))
        .await
        .map_err(|e| e.to_string())?;
    if !first {
        return Ok(Err(Failure::TotpReplayed));
    }
    Ok(Ok(account.identity_id))
}
