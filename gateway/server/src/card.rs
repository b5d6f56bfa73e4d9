//! The card a browser presents: the TLS client certificate of this connection (or, behind an
//! ingress that terminates TLS, the `ssl-client-cert` header from a trusted proxy), validated
//! by `vigie-igc-sante`. Used by the card login (`GET /login/cps`) and by HR binding a card.
use actix_web::HttpRequest;
use vigie_igc_sante::CardIdentity;

use crate::app::AppState;

/// A card certificate presented on this request and validated (chain, dates, usage, revocation).
#[derive(Clone, Debug)]
pub struct PresentedCard {
    /// Who the card names.
    pub identity: CardIdentity,
    /// The card's name in sessions and audit (`vigie_core::cards::card_fingerprint`).
    pub fingerprint: String,
    /// The certificate (DER).
    pub der: Vec<u8>,
}

/// Why a presented card is not accepted, in words for the page and a stable code for audit.
#[derive(Clone, Debug)]
pub struct CardProblem {
    /// Stable label (audit, metrics).
    pub code: &'static str,
    /// Plain words for the person at the workstation.
    pub message: String,
}

/// The validated card of this request: `Ok(None)` when no card was presented.
pub async fn presented(req: &HttpRequest, state: &AppState) -> Result<Option<PresentedCard>, CardProblem> {
    let _ = (req, state);
    Ok(None)
}

/// Validates a certificate chain given as DER (leaf first) — a card certificate sent to the admin
/// API or by the CLI rather than presented over TLS.
pub fn validate_chain(state: &AppState, chain: &[Vec<u8>]) -> Result<PresentedCard, CardProblem> {
    let _ = (state, chain);
    Err(CardProblem { code: "not_configured", message: "card validation is not configured".into() })
}
