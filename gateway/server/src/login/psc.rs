//! Login through Pro Santé Connect (e-CPS, or a CPS used at PSC): `GET /login/psc?flow=…` sends
//! the browser to PSC (code + PKCE, `state`, `nonce`), `GET /login/psc/callback` brings it back.
//!
//! - The `state` names the login flow in the ephemeral store, single use (`take`), short-lived, so
//!   any replica finishes the login and a replayed callback is refused.
//! - The callback must come from the browser that started the flow (the browser-binding cookie):
//!   a callback URL sent to someone else does not log them in (login CSRF, RFC 9700 §4.7).
//! - The professional is linked by `SubjectNameID` (idNat) to the identity with that idNat; an
//!   unknown one gets a clear page, unless `psc.jit` and HR announced them.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::store::StoreExt;
use vigie_core::{Authentication, IdNat, Mie};

use super::LoginFlow;
use super::form::{Flows, LoginAttempt};
use crate::config::Config;
use crate::session::keys;
use crate::state::{Audit, Part, Ports, Upstreams};
use crate::web::http::Caller;
use crate::web::pages;
use vigie_core::psc::Pending;

/// What Vigie keeps while the browser is at PSC, under the `state` it sent.
#[derive(Serialize, Deserialize)]
struct Sent {
    flow_id: String,
    pending: Pending,
}

#[derive(Deserialize)]
pub struct BeginQuery {
    flow: Option<String>,
}

/// A refused PSC login: the page (status, text) and the audit reason (a code first).
struct Refusal {
    status: StatusCode,
    reason: String,
    message: String,
}

fn refusal(status: StatusCode, reason: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal { status, reason: reason.into(), message: message.into() }
}

const UNAVAILABLE: &str = "e-CPS indisponible pour le moment : Pro Santé Connect ne répond pas. Utilisez un autre moyen \
     de connexion ou réessayez plus tard. / e-CPS is unavailable at the moment: Pro Santé Connect does not answer.";

const DIRECTORY_UNAVAILABLE: &str = "L'annuaire de l'établissement ne répond pas : réessayez dans un instant. / The \
     establishment's directory does not answer: try again in a moment.";

/// `/login/psc…` on a gateway without PSC configured.
const PSC_OFF: pages::Say<'static> = pages::Say::new(
    "La connexion par e-CPS (Pro Santé Connect) n'est pas ouverte sur ce service : choisissez un autre moyen.",
    "e-CPS sign-in (Pro Santé Connect) is not enabled on this service: choose another means.",
);

/// What the page says while PSC's circuit breaker is open (degraded mode), and what works instead.
pub const DOWN_FR: &str =
    "e-CPS (Pro Santé Connect) est indisponible pour le moment : utilisez votre carte CPS/CPE ou votre clé FIDO2.";
const DOWN_EN: &str =
    "e-CPS (Pro Santé Connect) is unavailable at the moment: use your CPS/CPE card or your FIDO2 security key.";

/// `GET /login/psc?flow=…`: off to PSC.
pub async fn begin(
    req: HttpRequest,
    flows: Flows,
    (ports, audit, upstreams): (Part<Ports>, Part<Audit>, Part<Upstreams>),
    q: web::Query<BeginQuery>,
) -> HttpResponse {
    let caller = flows.caller(&req);
    let (flow_id, flow) = match flows.entered(&req, q.flow.as_deref()).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let at = LoginAttempt { req: &req, caller: &caller, flow_id: &flow_id, flow: &flow };
    let Some(psc) = upstreams.psc.clone() else {
        return pages::error_page(&req, StatusCode::NOT_FOUND, PSC_OFF, pages::Back::Login(&flow_id));
    };
    if !flows.methods(&flow).psc {
        let r = refusal(
            StatusCode::FORBIDDEN,
            "psc_not_offered",
            "Cette application demande un autre moyen de connexion que l'e-CPS. / This application needs another \
             means of identification than e-CPS.",
        );
        return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
    }
    // Degraded mode: PSC's breaker is open; answer at once instead of waiting on it.
    if !upstreams.health.available(crate::health::PSC) {
        let r = refusal(StatusCode::SERVICE_UNAVAILABLE, "psc:breaker_open", format!("{DOWN_FR} / {DOWN_EN}"));
        return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
    }
    let (url, pending) = match psc.client.begin().await {
        Ok(v) => v,
        Err(e) => {
            let r = refusal(StatusCode::BAD_GATEWAY, format!("psc:{}: {e}", e.code()), UNAVAILABLE);
            return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
        }
    };
    let sent = Sent { flow_id: flow_id.clone(), pending };
    let ttl = std::time::Duration::from_secs(psc.config.state_ttl_secs);
    if let Err(e) = ports.store.put_json(&keys::psc_login(&sent.pending.state), &sent, ttl).await {
        return pages::unavailable(&req, &e);
    }
    metrics::counter!("vigie_psc_login_started_total").increment(1);
    HttpResponse::Found().insert_header((header::LOCATION, url)).insert_header(("Cache-Control", "no-store")).finish()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /login/psc/callback?code=…&state=…` (or `error=…`): PSC is done.
pub async fn callback(
    req: HttpRequest,
    flows: Flows,
    (ports, config, audit, upstreams): (Part<Ports>, Part<Config>, Part<Audit>, Part<Upstreams>),
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    if let Some(r) = to_issuer_host(&req, &config) {
        return r;
    }
    let caller = flows.caller(&req);
    let no_flow = Stage { req: &req, caller: &caller, flow: None };
    let Some(psc) = upstreams.psc.clone() else {
        return pages::error_page(&req, StatusCode::NOT_FOUND, PSC_OFF, pages::Back::Home);
    };
    // RFC 6749 §10.12 / OIDC Core §3.1.2.7: the state must be the one sent, once.
    let Some(s) = q.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512) else {
        let r = refusal(
            StatusCode::BAD_REQUEST,
            "psc:state_missing",
            "Retour de Pro Santé Connect sans « state » : recommencez depuis l'application. / The answer from Pro \
             Santé Connect lacks its state: start again from the application.",
        );
        return refuse(&flows, &audit, no_flow, Mie::Ecps, "-", r);
    };
    let sent = match ports.store.take_json::<Sent>(&keys::psc_login(s)).await {
        Ok(Some(sent)) => sent,
        Ok(None) => {
            let r = refusal(
                StatusCode::BAD_REQUEST,
                "psc:state_unknown_or_replayed",
                "Cette réponse de Pro Santé Connect est inconnue, expirée ou déjà utilisée : recommencez depuis \
                 l'application. / This answer from Pro Santé Connect is unknown, expired or already used: start \
                 again from the application.",
            );
            return refuse(&flows, &audit, no_flow, Mie::Ecps, "-", r);
        }
        Err(e) => return pages::unavailable(&req, &e),
    };
    let flow = match ports.store.get_json::<LoginFlow>(&keys::login_flow(&sent.flow_id)).await {
        Ok(Some(f)) => f,
        Ok(None) => return pages::flow_expired(&req),
        Err(e) => return pages::unavailable(&req, &e),
    };
    let flow_id = sent.flow_id.clone();
    let at = LoginAttempt { req: &req, caller: &caller, flow_id: &flow_id, flow: &flow };
    // The store found it by this state's hash; the adapter compares the state itself, in constant time.
    if let Err(e) = sent.pending.check_state(s) {
        let r = refusal(StatusCode::BAD_REQUEST, format!("psc:{}", e.code()), e.to_string());
        return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
    }
    // The flow keeps the hash of the browser-binding cookie of the browser that began it.
    if !super::browser_bound(&req, &flow.browser) {
        let r = refusal(
            StatusCode::FORBIDDEN,
            "psc:browser_mismatch",
            "Cette connexion n'a pas été commencée dans ce navigateur : recommencez depuis l'application. / This \
             login was not started in this browser: start again from the application.",
        );
        return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
    }
    // OIDC Core §3.1.2.6: PSC refused or the professional cancelled.
    if let Some(error) = q.error.as_deref() {
        let error: String = error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
        let description: String =
            q.error_description.as_deref().unwrap_or_default().chars().filter(|c| !c.is_control()).take(200).collect();
        let (status, message) = if error == "access_denied" {
            (
                StatusCode::FORBIDDEN,
                "La connexion a été refusée ou annulée sur Pro Santé Connect. / The login was refused or cancelled \
                 at Pro Santé Connect."
                    .to_owned(),
            )
        } else {
            (
                StatusCode::BAD_GATEWAY,
                format!(
                    "Pro Santé Connect n'a pas pu vous identifier ({error}). Réessayez ou utilisez un autre moyen de \
                     connexion. / Pro Santé Connect could not identify you ({error})."
                ),
            )
        };
        let r = refusal(status, format!("psc:error:{error}: {description}"), message);
        return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 4096) else {
        let r = refusal(
            StatusCode::BAD_REQUEST,
            "psc:code_missing",
            "Réponse de Pro Santé Connect sans code d'autorisation. / The answer from Pro Santé Connect has no code.",
        );
        return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
    };
    let login = match psc.client.finish(code, &sent.pending).await {
        Ok(l) => l,
        Err(e) => {
            let r = refusal(
                StatusCode::BAD_GATEWAY,
                format!("psc:{}: {e}", e.code()),
                format!(
                    "La réponse de Pro Santé Connect a été refusée ({}) : la connexion n'est pas possible. Réessayez \
                     ou utilisez un autre moyen de connexion. / The answer from Pro Santé Connect was refused ({}).",
                    e.code(),
                    e.code()
                ),
            );
            return refuse(&flows, &audit, at.into(), Mie::Ecps, "-", r);
        }
    };
    let mie = psc.config.mie_for(&login.amr);
    let who = login.idnat.chars().take(64).collect::<String>();
    let idnat = match IdNat::parse(&login.idnat) {
        Ok(i) => i,
        Err(e) => {
            let r = refusal(
                StatusCode::BAD_GATEWAY,
                format!("psc:no_idnat: SubjectNameID {:?} is not an idNat: {e}", who),
                "Pro Santé Connect n'a pas donné d'identifiant national valable. / Pro Santé Connect gave no valid \
                 national identifier.",
            );
            return refuse(&flows, &audit, at.into(), mie, &who, r);
        }
    };
    let identity_id = match identity_of(&ports, &audit, &psc, &caller, &idnat, &login).await {
        Ok(id) => id,
        Err(r) => return refuse(&flows, &audit, at.into(), mie, &who, r),
    };
    match ports.directory.account_disabled(&identity_id).await {
        Ok(false) => {}
        Ok(true) => {
            let r = refusal(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "Votre compte est désactivé : adressez-vous au support. / Your account is disabled.",
            );
            return refuse(&flows, &audit, at.into(), mie, &who, r);
        }
        Err(e) => return pages::unavailable(&req, &e),
    }
    // The factors of the MIE (an e-CPS: the phone's key and its PIN; a CPS: the card and its PIN),
    // at this time: PSC's `auth_time` is PSC's session, not this login.
    let auth = Authentication::new(identity_id, mie, vigie_core::policy::factors_of(mie), crate::now())
        .with_professional(login.professional);
    // The session keeps PSC's ID token, for the id_token_hint of PSC's logout.
    req.extensions_mut().insert(crate::session::UpstreamIdToken(login.id_token));
    flows.complete(at, auth, &who).await
}

/// The identity a PSC login links to: the one with the idNat PSC asserted, or, with `psc.jit`,
/// one created now from HR's announcement.
async fn identity_of(
    ports: &Ports,
    audit: &Audit,
    psc: &crate::psc::PscRuntime,
    caller: &Caller,
    idnat: &IdNat,
    login: &vigie_core::psc::PscLogin,
) -> Result<String, Refusal> {
    // The cause goes to the log only: the browser learns nothing of the directory.
    let unavailable = |e: vigie_core::directory::DirectoryError| {
        tracing::error!(error = %e, "PSC login: the directory failed");
        refusal(StatusCode::SERVICE_UNAVAILABLE, "directory_unavailable", DIRECTORY_UNAVAILABLE)
    };
    if let Some(identity) = ports.directory.identity_by_idnat(idnat).await.map_err(unavailable)? {
        return Ok(identity.id);
    }
    let unknown = || {
        refusal(
            StatusCode::FORBIDDEN,
            "unknown_professional",
            format!(
                "Vous n'êtes pas connu(e) de l'établissement (identifiant national {}). Adressez-vous aux \
                 ressources humaines ou aux affaires médicales. / You are not known to the establishment: contact \
                 HR or medical affairs.",
                idnat.as_str()
            ),
        )
    };
    if !psc.config.jit {
        return Err(unknown());
    }
    let created = ports
        .directory
        .create_announced(idnat, login.family_name.as_deref(), login.given_name.as_deref())
        .await
        .map_err(unavailable)?;
    let Some((id, announcement)) = created else { return Err(unknown()) };
    audit.record(AuditEvent {
        kind: Some(AuditKind::Login),
        outcome: Some(Outcome::Success),
        subject: Some(id.clone()),
        username: Some(idnat.as_str().to_owned()),
        method: Some("psc_jit".into()),
        ip: Some(caller.ip.clone()),
        user_agent: caller.user_agent.clone(),
        request_id: Some(caller.request_id.clone()),
        actor: Some(announcement.announced_by.clone()),
        object: Some(format!("identity:{id}")),
        reason: Some(format!(
            "identity created at the first PSC login, announced by {} on {} (unit {})",
            announcement.announced_by,
            announcement.announced_at,
            announcement.unit.as_deref().unwrap_or("-")
        )),
        ..Default::default()
    });
    Ok(id)
}

/// PSC may send the browser back to another spelling of Vigie's host (`127.0.0.1` for
/// `localhost`): the browser-binding cookie lives on the issuer's host, so go there first.
fn to_issuer_host(req: &HttpRequest, config: &Config) -> Option<HttpResponse> {
    let issuer = url::Url::parse(&config.issuer).ok()?;
    let want = match issuer.port() {
        Some(p) => format!("{}:{p}", issuer.host_str()?),
        None => issuer.host_str()?.to_owned(),
    };
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok())?;
    let behind_proxy = req.peer_addr().is_some_and(|a| config.server.is_trusted_proxy(a.ip()));
    if behind_proxy || host.eq_ignore_ascii_case(&want) {
        return None;
    }
    let url = format!("{}/login/psc/callback?{}", config.issuer, req.query_string());
    Some(HttpResponse::Found().insert_header((header::LOCATION, url)).finish())
}

/// Where a refused PSC login stood: the request, who made it, and its flow once known.
#[derive(Clone, Copy)]
struct Stage<'a> {
    req: &'a HttpRequest,
    caller: &'a Caller,
    flow: Option<(&'a str, &'a LoginFlow)>,
}

impl<'a> From<LoginAttempt<'a>> for Stage<'a> {
    fn from(at: LoginAttempt<'a>) -> Self {
        Stage { req: at.req, caller: at.caller, flow: Some((at.flow_id, at.flow)) }
    }
}

/// Audits a refused PSC login and shows why.
fn refuse(flows: &Flows, audit: &Audit, at: Stage<'_>, mie: Mie, who: &str, r: Refusal) -> HttpResponse {
    let code = r.reason.split(':').take(2).collect::<Vec<_>>().join(":");
    metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => "refused").increment(1);
    tracing::info!(reason = %code, "PSC login refused");
    let caller = at.caller;
    match at.flow {
        Some((_, flow)) => flows.refused(caller, flow, mie, who, Some(&r.reason)),
        None => audit.record(AuditEvent {
            kind: Some(AuditKind::Login),
            outcome: Some(Outcome::Failure),
            username: Some(who.to_owned()),
            method: Some(mie.as_str().into()),
            ip: Some(caller.ip.clone()),
            user_agent: caller.user_agent.clone(),
            request_id: Some(caller.request_id.clone()),
            reason: Some(r.reason.clone()),
            ..Default::default()
        }),
    }
    match at.flow {
        Some((flow_id, _)) if !flow_id.is_empty() => pages::card_refused(at.req, r.status, &r.message, flow_id),
        _ => pages::error_page(at.req, r.status, pages::Say::both(&r.message), pages::Back::Home),
    }
}

/// The login page's section: the e-CPS / Pro Santé Connect button, or why it is not there.
pub fn page_section(l: pages::Lang, flow_id: &str, unavailable: bool) -> String {
    let (label, help, down) = match l {
        pages::Lang::Fr => (
            "Se connecter avec e-CPS / Pro Santé Connect",
            "Application e-CPS sur votre téléphone, ou votre carte CPS sur Pro Santé Connect.",
            DOWN_FR,
        ),
        pages::Lang::En => (
            "Sign in with e-CPS / Pro Santé Connect",
            "The e-CPS app on your phone, or your CPS card at Pro Santé Connect.",
            DOWN_EN,
        ),
    };
    if unavailable {
        return format!(
            r#"<section class="method" aria-labelledby="psc-title"><h2 id="psc-title" class="sr-only">e-CPS</h2>
<p class="help" id="psc-unavailable" role="status">{down}</p></section>"#
        );
    }
    format!(
        r#"<section class="method" aria-labelledby="psc-title"><h2 id="psc-title" class="sr-only">e-CPS</h2>
<a class="button" id="psc-login" href="/login/psc?flow={flow}">{label}</a>
<p class="help">{help}</p></section>"#,
        flow = crate::web::http::esc(flow_id),
    )
}
