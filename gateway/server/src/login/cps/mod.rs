//! Card login: `GET /login/cps?flow=…` on a connection where the browser presented the CPS/CPE
//! authentication certificate (the card middleware asked for the PIN to sign the handshake).
//!
//! Who logs in (issue 3, DESIGN.md "the domain"):
//! - a CPS binds to the identity whose idNat is its certificate's CN;
//! - a nominative CPE binds through the card registry, where HR bound it to an agent;
//! - any card the registry knows in another status than `handed_over` (lost, stolen, returned…)
//!   is refused, even a CPS whose idNat still names someone; but a card bound through the admin
//!   API, pending its first presentation, is handed over by it ([`presented_first`]);
//! - a non-nominative CPE names no person and never opens a personal session.
pub mod crl;
pub mod validate;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::cards::Card;
use vigie_core::cards::CardKind;
use vigie_core::directory::DirectoryError;
use vigie_core::{Authentication, Factor, Mie};

use super::config::CardsConfig;
use super::form::{Flows, LoginAttempt};
use crate::config::Config;
use crate::state::{Audit, Part, Ports, Upstreams};
use crate::web::pages;
use crate::web::tls::ClientCertChain;
use validate::{CardCheck, PresentedCard, presented};

#[derive(Deserialize)]
pub struct Query {
    flow: Option<String>,
}

/// A refused card login: what the page says and the audit reason.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

/// What binding a card to its agent reads and writes: the card registry and the directory, the
/// `[cards]` settings, the audit trail.
#[derive(Clone, Copy)]
struct Registry<'a> {
    ports: &'a Ports,
    cards: &'a CardsConfig,
    audit: &'a Audit,
    /// The request: its IP and request id go on the card lines, next to the login's.
    caller: &'a crate::web::http::Caller,
    /// The client the login is for.
    client_id: &'a str,
}

pub async fn login(
    req: HttpRequest,
    flows: Flows,
    chain: ClientCertChain,
    (ports, config, audit, upstreams): (Part<Ports>, Part<Config>, Part<Audit>, Part<Upstreams>),
    q: web::Query<Query>,
) -> HttpResponse {
    let caller = flows.caller(&req);
    let (flow_id, flow) = match flows.entered(&req, q.flow.as_deref()).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let at = LoginAttempt { req: &req, caller: &caller, flow_id: &flow_id, flow: &flow };
    if !config.cards.enabled {
        return pages::error_page(
            &req,
            StatusCode::NOT_FOUND,
            pages::Say::new(
                "La connexion par carte CPS/CPE n'est pas ouverte sur ce service : choisissez un autre moyen.",
                "Card sign-in is not enabled on this service: choose another means.",
            ),
            pages::Back::Login(&flow_id),
        );
    }
    let card = match presented(CardCheck::new(&upstreams, &config.cards, &audit), &chain, &caller).await {
        Ok(Some(card)) => card,
        Ok(None) => {
            let r = refused(
                StatusCode::UNAUTHORIZED,
                "no_card",
                "Aucune carte n'a été présentée. Insérez votre carte CPS/CPE dans le lecteur, vérifiez que le \
                 logiciel de la carte (Cryptolib CPS) est installé, puis réessayez. / No card was presented: insert \
                 your card and try again.",
            );
            return refuse(&flows, at, None, r);
        }
        Err(problem) => {
            let r = Refusal { status: StatusCode::FORBIDDEN, code: problem.code, message: problem.message };
            return refuse(&flows, at, None, r);
        }
    };
    let registry = Registry {
        ports: &ports,
        cards: &config.cards,
        audit: &audit,
        caller: &caller,
        client_id: &flow.request.client_id,
    };
    let identity = match identity_of(registry, &card).await {
        // A disabled account logs in with no MIE, its cards included.
        Ok((id, record)) => match ports.directory.account_disabled(&id).await {
            Ok(false) => Ok((id, record)),
            Ok(true) => Err(refused(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "Votre compte est désactivé : adressez-vous au support. / Your account is disabled.",
            )),
            Err(e) => Err(refused(StatusCode::SERVICE_UNAVAILABLE, "directory_unavailable", e.to_string())),
        },
        Err(r) => Err(r),
    };
    let mie = match card.identity.subject.kind {
        CardKind::Cps => Mie::Cps,
        CardKind::CpeNominative | CardKind::CpeNonNominative => Mie::Cpe,
    };
    // Same request id as the login line that follows: the login this card let through.
    card.audit_unchecked(
        &audit,
        &caller,
        AuditEvent {
            subject: identity.as_ref().ok().map(|(id, _)| id.clone()),
            username: Some(card.identity.subject.cn.chars().take(128).collect()),
            idnat: card.identity.subject.idnat.as_ref().map(|i| i.as_str().to_owned()),
            client_id: Some(flow.request.client_id.clone()),
            method: Some(mie.as_str().into()),
            ..Default::default()
        },
    );
    match identity {
        Ok((identity_id, registered)) => {
            // A joiner's card order is received when their card is first used (issue 17): the
            // registry's record of this card, the one this very login registered included.
            if let Some(registered) = registered {
                let record = |e| audit.record(e);
                let used = format!("{} (CN {}) used at login", card.fingerprint, card.identity.subject.cn);
                let card_of = (registered.kind.as_str(), registered.created_at.as_str());
                crate::lifecycle::orders::fulfil(&ports.lifecycle, &identity_id, card_of, &used, "card-login", &record)
                    .await;
            }
            // Possession of the card (`sc`) and the PIN the card checked before signing the
            // handshake (`pin`): two factors, phishing-resistant (the signature covers the TLS
            // transcript of this origin's connection).
            let auth = Authentication::new(identity_id, mie, vec![Factor::Sc, Factor::Pin], crate::now())
                .with_credential(card.fingerprint.clone());
            flows.complete(at, auth, &card.identity.subject.cn).await
        }
        Err(r) => refuse(&flows, at, Some(&card), r),
    }
}

/// The agent a validated card logs in as, and the card registry's record of the card (none when a
/// CPS seen for the first time could not be registered).
async fn identity_of(reg: Registry<'_>, card: &PresentedCard) -> Result<(String, Option<Card>), Refusal> {
    let id = &card.identity;
    let registered = reg
        .ports
        .cards
        .card_by_certificate(&id.issuer_dn, &id.serial_hex)
        .await
        .map_err(|e| refused(StatusCode::SERVICE_UNAVAILABLE, "directory_unavailable", e.to_string()))?;
    if let Some(record) = registered {
        let record = if record.pending_presentation() { presented_first(reg, card, record).await? } else { record };
        if !record.status.allows_login() {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "card_suspended",
                format!(
                    "Cette carte est déclarée « {} » : elle ne permet plus de se connecter. Adressez-vous aux \
                     ressources humaines ou aux affaires médicales. / This card is declared {}: it can no longer \
                     be used to sign in.",
                    status_fr(record.status),
                    record.status.as_str()
                ),
            ));
        }
        return Ok((record.identity_id.clone(), Some(record)));
    }
    match id.subject.kind {
        CardKind::Cps => {
            let Some(idnat) = &id.subject.idnat else {
                return Err(refused(
                    StatusCode::FORBIDDEN,
                    "no_idnat",
                    "Cette CPS ne porte pas d'identifiant national : adressez-vous au support. / This CPS names no national identifier: call support.",
                ));
            };
            let identity = reg
                .ports
                .directory
                .identity_by_idnat(idnat)
                .await
                .map_err(|e| refused(StatusCode::SERVICE_UNAVAILABLE, "directory_unavailable", e.to_string()))?;
            let Some(identity) = identity.map(|i| i.id) else {
                return Err(refused(
                    StatusCode::FORBIDDEN,
                    "unknown_professional",
                    format!(
                        "Aucun agent de l'établissement n'a l'identifiant national {idnat} de cette carte. Adressez-vous \
                         aux ressources humaines. / No agent of the establishment has this card's national identifier."
                    ),
                ));
            };
            let record = register_seen_cps(reg, &identity, card).await;
            Ok((identity, record))
        }
        CardKind::CpeNominative => Err(refused(
            StatusCode::FORBIDDEN,
            "card_not_bound",
            "Cette carte CPE n'est pas encore associée à un agent : les ressources humaines doivent l'associer. / \
             This CPE card is not bound to an agent yet: HR must bind it.",
        )),
        CardKind::CpeNonNominative => Err(refused(
            StatusCode::FORBIDDEN,
            "card_not_nominative",
            "Cette CPE n'est pas nominative : elle ne peut pas ouvrir de session personnelle. / A non-nominative \
             CPE names no person and cannot open a personal session.",
        )),
    }
}

/// A card bound without being read (its certificate sent to the admin API) is handed over when
/// its holder first presents it: this connection's handshake, signed by the card after its PIN,
/// proves the card is in their hands. The coherence check of the binding must still pass (a CPS
/// carries the agent's idNat; the names on the card are the agent's: an override needs the card
/// in HR's reader), and the binding must not be older than `cards.pending_presentation_secs`.
/// Audited (`card_bound`, "presented").
async fn presented_first(reg: Registry<'_>, card: &PresentedCard, record: Card) -> Result<Card, Refusal> {
    let unavailable =
        |e: DirectoryError| refused(StatusCode::SERVICE_UNAVAILABLE, "directory_unavailable", e.to_string());
    let bound_at = record.bound_at.as_deref().and_then(crate::parse_rfc3339).unwrap_or(0);
    let window = i64::try_from(reg.cards.pending_presentation_secs).unwrap_or(i64::MAX);
    if crate::now().saturating_sub(bound_at) > window {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "card_presentation_expired",
            "Cette carte a été associée à votre compte il y a trop longtemps sans être utilisée : les ressources \
             humaines doivent l'associer de nouveau. / This card was bound to your account too long ago without \
             being used: HR must bind it again.",
        ));
    }
    let agent = reg.ports.directory.identity(&record.identity_id).await.map_err(unavailable)?;
    let coherent = agent.is_some_and(|agent| {
        matches!(
            crate::admin::actions::coherence(&record.kind, &card.identity.subject, &agent),
            Ok(crate::admin::actions::Coherence::Match)
        )
    });
    if !coherent {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "card_pending_mismatch",
            "Cette carte ne correspond pas à l'agent auquel elle a été associée : adressez-vous aux ressources \
             humaines, avec la carte. / This card does not match the agent it was bound to: see HR, with the card.",
        ));
    }
    let by = "vigie (first presentation of the card by its holder)";
    let record = reg.ports.cards.confirm_presented(&record.id, by).await.map_err(unavailable)?;
    if record.status.allows_login() {
        reg.audit.record(AuditEvent {
            kind: Some(AuditKind::CardBound),
            outcome: Some(Outcome::Success),
            subject: Some(record.identity_id.clone()),
            object: Some(format!("{} ({})", card.fingerprint, record.id)),
            method: Some(record.kind.clone()),
            reason: Some("presented by its holder (TLS handshake signed by the card): binding active".into()),
            client_id: Some(reg.client_id.to_owned()),
            ip: Some(reg.caller.ip.clone()),
            user_agent: reg.caller.user_agent.clone(),
            request_id: Some(reg.caller.request_id.clone()),
            ..Default::default()
        });
    }
    Ok(record)
}

/// A CPS logs in by its idNat with no record in the registry: it gets one, bound to its
/// certificate, so that HR sees it among the agent's cards and can declare it lost or stolen
/// (which refuses that certificate from then on and ends its sessions), without having to hold
/// the card. Best effort: a failure here is logged and does not stop the login.
async fn register_seen_cps(reg: Registry<'_>, identity_id: &str, card: &PresentedCard) -> Option<Card> {
    let id = &card.identity;
    let by = "vigie (first login with this CPS, bound by its idNat)";
    let certificate = (id.issuer_dn.as_str(), id.serial_hex.as_str(), id.subject.cn.as_str());
    let event = |outcome, reason: String, object: Option<String>| vigie_core::audit::AuditEvent {
        kind: Some(vigie_core::audit::AuditKind::CardBound),
        outcome: Some(outcome),
        subject: Some(identity_id.to_owned()),
        object,
        reason: Some(reason),
        client_id: Some(reg.client_id.to_owned()),
        ip: Some(reg.caller.ip.clone()),
        user_agent: reg.caller.user_agent.clone(),
        request_id: Some(reg.caller.request_id.clone()),
        ..Default::default()
    };
    // Logins with the same new card at once register it once: the others find it (`false`).
    match reg.ports.cards.register_presented(identity_id, "cps", certificate, by).await {
        Ok((record, registered)) => {
            if registered {
                let reason =
                    format!("CPS {} registered at its first login (idNat {})", card.fingerprint, id.subject.cn);
                reg.audit.record(event(Outcome::Success, reason, Some(record.id.clone())));
            }
            Some(record)
        }
        Err(DirectoryError::Invalid(why)) => {
            // The certificate is another agent's card: never registered for this one.
            tracing::warn!(card = %card.fingerprint, "the CPS was not added to the card registry: {why}");
            reg.audit.record(event(Outcome::Failure, format!("CPS {} not registered: {why}", card.fingerprint), None));
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, card = %card.fingerprint, "the CPS could not be added to the card registry");
            None
        }
    }
}

fn status_fr(status: vigie_core::cards::CardStatus) -> &'static str {
    use vigie_core::cards::CardStatus::*;
    match status {
        Requested => "demandée",
        Ordered => "commandée",
        Received => "reçue",
        HandedOver => "remise",
        Returned => "restituée",
        Lost => "perdue",
        Stolen => "volée",
        Expired => "expirée",
    }
}

fn refuse(flows: &Flows, at: LoginAttempt<'_>, card: Option<&PresentedCard>, r: Refusal) -> HttpResponse {
    let mie = match card.map(|c| c.identity.subject.kind) {
        Some(CardKind::CpeNominative | CardKind::CpeNonNominative) => Mie::Cpe,
        _ => Mie::Cps,
    };
    metrics::counter!("vigie_login_total", "method" => mie.as_str(), "result" => r.code).increment(1);
    let who = card.map(|c| c.fingerprint.as_str()).unwrap_or("-");
    flows.refused(at.caller, at.flow, mie, who, Some(r.code));
    // The directory's own error names internals: logged, and the generic page shown.
    if r.code == "directory_unavailable" {
        return pages::unavailable(at.req, &r.message);
    }
    pages::card_refused(at.req, r.status, &r.message, at.flow_id)
}
