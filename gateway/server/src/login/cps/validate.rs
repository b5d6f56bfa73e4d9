//! Card validation for the card login and HR binding a card: the client certificate chain
//! ([`ClientCertChain`], from the TLS handshake or a trusted ingress) checked by
//! the card validation port (chain, dates, usages, revocation), in words a person can act on.
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::cards::{CardIdentity, CardRejection, CardValidation, RevocationCheck};

use crate::login::config::CardsConfig;
use crate::state::{Audit, Upstreams};
use crate::web::http::Caller;
use crate::web::tls::ClientCertChain;

/// A card certificate presented on this request and validated (chain, dates, usage, revocation).
#[derive(Clone, Debug)]
pub struct PresentedCard {
    /// Who the card names.
    pub identity: CardIdentity,
    /// The card's name in sessions and audit (`vigie_core::cards::card_fingerprint`).
    pub fingerprint: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// Set when the card was accepted although its issuer's CRL is past `nextUpdate` + grace
    /// (`cards.trust.after_grace = accept`): why its revocation went unchecked. The caller who
    /// knows the login or the binding writes it ([`PresentedCard::audit_unchecked`]).
    pub revocation_unchecked: Option<String>,
}

impl PresentedCard {
    /// Writes `card_revocation_unchecked` when this card's revocation went unchecked, with the
    /// request's IP and request id and what the caller knows of the act it let through
    /// (`subject`, `client_id`, `method`, `actor` in `event`), so that the login it let through
    /// is found by its request id. Nothing when the card's revocation was checked.
    pub fn audit_unchecked(&self, audit: &Audit, caller: &Caller, event: AuditEvent) {
        let Some(why) = &self.revocation_unchecked else { return };
        metrics::counter!("vigie_card_revocation_unchecked_total").increment(1);
        audit.record(AuditEvent {
            kind: Some(AuditKind::CardRevocationUnchecked),
            outcome: Some(Outcome::Success),
            ip: Some(caller.ip.clone()),
            user_agent: caller.user_agent.clone(),
            request_id: Some(caller.request_id.clone()),
            object: Some(self.fingerprint.clone()),
            reason: Some(why.clone()),
            ..event
        });
    }
}

/// Why a presented card is not accepted, in words for the page and a stable code for audit.
#[derive(Clone, Debug)]
pub struct CardProblem {
    /// Stable label (audit, metrics).
    pub code: &'static str,
    /// Plain words for the person at the workstation.
    pub message: String,
}

fn problem(code: &'static str, message: impl Into<String>) -> CardProblem {
    CardProblem { code, message: message.into() }
}

/// What the person at the workstation reads first, per rejection.
fn in_french(code: &str) -> &'static str {
    match code {
        "untrusted_issuer" => "Cette carte n'est pas émise par une autorité de confiance (IGC-Santé).",
        "expired" => "Cette carte a expiré : utilisez votre nouvelle carte ou adressez-vous aux ressources humaines.",
        "not_yet_valid" => "Cette carte n'est pas encore valide (vérifiez aussi l'heure du poste).",
        "no_client_auth_eku" | "bad_key_usage" => {
            "Ce certificat de la carte ne sert pas à se connecter : choisissez le certificat d'authentification."
        }
        "revoked" => "Cette carte a été révoquée : elle ne permet plus de se connecter.",
        "revocation_unknown" => {
            "La validité de la carte ne peut pas être vérifiée pour le moment (liste de révocation indisponible)."
        }
        _ => "Le certificat de la carte est illisible.",
    }
}

/// What card validation reads: the validator and the CRL sources' health (upstreams), the
/// `[cards]` settings, and the audit trail.
#[derive(Clone, Copy)]
pub struct CardCheck<'a> {
    pub upstreams: &'a Upstreams,
    pub cards: &'a CardsConfig,
    pub audit: &'a Audit,
}

impl<'a> CardCheck<'a> {
    pub fn new(upstreams: &'a Upstreams, cards: &'a CardsConfig, audit: &'a Audit) -> Self {
        Self { upstreams, cards, audit }
    }

    fn validator(&self) -> Result<&'a dyn CardValidation, CardProblem> {
        self.upstreams
            .card_validator
            .as_deref()
            .ok_or_else(|| problem(
                "not_configured",
                "La connexion par carte n'est pas configurée ici : choisissez un autre moyen. / Card sign-in is not configured here: choose another means.",
            ))
    }
}

/// The validated card of a request's chain: `Ok(None)` when no card was presented. A chain
/// header sent by an address not allowed to send it is refused and audited, with `caller`.
pub async fn presented(
    check: CardCheck<'_>,
    chain: &ClientCertChain,
    caller: &Caller,
) -> Result<Option<PresentedCard>, CardProblem> {
    match chain {
        ClientCertChain::Absent => Ok(None),
        ClientCertChain::Presented(chain) => validate(check, chain).await.map(Some),
        ClientCertChain::Malformed(why) => {
            Err(problem("malformed", format!("Le certificat de la carte est illisible : réinsérez la carte. / {why}")))
        }
        ClientCertChain::UntrustedHeader(name) => {
            // Someone trying to name a card through the ingress header is worth a line.
            check.audit.record(AuditEvent {
                kind: Some(AuditKind::Refused),
                outcome: Some(Outcome::Failure),
                ip: Some(caller.ip.clone()),
                user_agent: caller.user_agent.clone(),
                request_id: Some(caller.request_id.clone()),
                reason: Some(format!(
                    "client certificate header `{name}` sent by an address that is not in `cards.ingress_header_from`"
                )),
                ..Default::default()
            });
            metrics::counter!("vigie_card_header_refused_total").increment(1);
            Err(problem(
                "untrusted_certificate_header",
                "Un certificat de carte a été transmis par un intermédiaire non autorisé : connexion refusée. / A \
                 card certificate came through an intermediary that is not trusted: refused.",
            ))
        }
    }
}

/// Validates a chain (DER, leaf first). An issuer whose CRL was never fetched gets one fetch
/// ([`super::crl::first_fetch`]); everything else reads cached state only.
async fn validate(check: CardCheck<'_>, chain: &[Vec<u8>]) -> Result<PresentedCard, CardProblem> {
    let v = check.validator()?;
    let now = crate::now();
    let mut result = v.validate(chain, now);
    if matches!(result, Err(CardRejection::RevocationUnknown { .. })) && super::crl::first_fetch(check, v, chain).await
    {
        result = v.validate(chain, now);
    }
    let valid = result.map_err(|e| {
        metrics::counter!("vigie_card_rejected_total", "reason" => e.code()).increment(1);
        problem(e.code(), format!("{} / {e}", in_french(e.code())))
    })?;
    let revocation_unchecked = matches!(valid.revocation, RevocationCheck::PastGraceAccepted { .. }).then(|| {
        format!(
            "card {} accepted although its issuer's CRL is past nextUpdate + grace (cards.trust.after_grace = accept)",
            valid.identity.serial_hex
        )
    });
    let fingerprint = vigie_core::cards::card_fingerprint(&valid.identity.issuer_dn, &valid.identity.serial_hex);
    Ok(PresentedCard { identity: valid.identity, fingerprint, der: chain[0].clone(), revocation_unchecked })
}

/// Validates a certificate chain given as DER (leaf first) — a card certificate sent to the admin
/// API or by the CLI rather than presented over TLS.
pub async fn validate_chain(check: CardCheck<'_>, chain: &[Vec<u8>]) -> Result<PresentedCard, CardProblem> {
    if chain.is_empty() {
        return Err(problem(
            "malformed",
            "Aucun certificat de carte n'a été transmis : réinsérez la carte. / No card certificate was given: insert the card again.",
        ));
    }
    validate(check, chain).await
}
