//! Keeping card CRLs fresh: the background refresher, and the one bounded fetch for the first
//! card of an issuer whose CRL was never fetched. The login path otherwise never waits on a CRL
//! server.
use std::time::Duration;

use vigie_core::cards::CardValidation;

use super::validate::CardCheck;
use crate::state::Upstreams;

/// Keeps the CRLs fresh in the background.
pub fn spawn_refresher(upstreams: &Upstreams) {
    if let Some(v) = &upstreams.card_validator {
        v.clone().keep_crls_fresh();
    }
}

/// Fetches the CRL of the chain's issuer once, bounded by the CRL fetch timeout, unless the CRL
/// sources' breaker is open (degraded mode: no wait on a link known to be down). Whether a
/// fetch was tried: the chain is then worth validating again.
pub(super) async fn first_fetch(check: CardCheck<'_>, v: &dyn CardValidation, chain: &[Vec<u8>]) -> bool {
    if !check.upstreams.health.available(crate::health::CRL) {
        return false;
    }
    let wait = Duration::from_millis(check.cards.trust.fetch_timeout_ms.saturating_add(500));
    let _ = tokio::time::timeout(wait, v.fetch_crls_for(chain)).await;
    true
}
