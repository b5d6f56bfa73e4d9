//! The card a browser presents: the TLS client certificate of this connection (or, behind an
//! ingress that terminates TLS, the `ssl-client-cert` header from a trusted proxy), validated
//! by `vigie-igc-sante`. Used by the card login (`GET /login/cps`) and by HR binding a card.
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_igc_sante::{CardIdentity, CardRejection, CardValidator, RevocationCheck};

use crate::state::AppState;
use crate::web::http::Caller;
use crate::web::tls::PeerCertificates;

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

fn problem(code: &'static str, message: impl Into<String>) -> CardProblem {
    CardProblem { code, message: message.into() }
}

/// The longest header value read as a certificate chain: a card chain is a few KiB of PEM.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The validated card of this request: `Ok(None)` when no card was presented.
pub async fn presented(req: &HttpRequest, state: &AppState) -> Result<Option<PresentedCard>, CardProblem> {
    let Some(chain) = presented_chain(req, state)? else { return Ok(None) };
    validate(state, &chain).await.map(Some)
}

/// The certificate chain of this request, DER, leaf first: from the TLS handshake, or from the
/// ingress header when the peer is one of `cards.ingress_header_from`.
fn presented_chain(req: &HttpRequest, state: &AppState) -> Result<Option<Vec<Vec<u8>>>, CardProblem> {
    if let Some(peer) = req.conn_data::<PeerCertificates>() {
        return Ok(Some(peer.0.as_ref().clone()));
    }
    let name = state.config.cards.ingress_header.as_str();
    if name.is_empty() {
        return Ok(None);
    }
    let Some(value) = req.headers().get(name) else { return Ok(None) };
    let ingresses = &state.config.cards.ingress_header_from;
    let from_ingress = req.peer_addr().is_some_and(|p| ingresses.iter().any(|c| c.contains(p.ip())));
    if !from_ingress {
        let caller = Caller::of(req, &state.config.server);
        // Anyone could write this header: only the ingress that terminated TLS (and removed
        // whatever the client sent under that name) may. Someone trying is worth a line.
        state.audit(AuditEvent {
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
        return Err(problem(
            "untrusted_certificate_header",
            "Un certificat de carte a été transmis par un intermédiaire non autorisé : connexion refusée. / A card \
             certificate came through an intermediary that is not trusted: refused.",
        ));
    }
    if value.len() > MAX_HEADER_BYTES {
        return Err(problem("malformed", "the client certificate header is too long"));
    }
    let chain = parse_header(value.as_bytes()).map_err(|e| problem("malformed", e))?;
    Ok(if chain.is_empty() { None } else { Some(chain) })
}

/// ingress-nginx `ssl-client-cert`: the client's PEM certificate (chain with
/// `auth-tls-pass-certificate-to-upstream`), URL-encoded. Returns the DER certificates, leaf first.
pub fn parse_header(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let decoded: Vec<u8> = percent_decode(value).ok_or("the client certificate header is not valid URL encoding")?;
    if decoded.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&decoded)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the client certificate header holds no valid PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("the client certificate header holds no PEM certificate".into());
    }
    Ok(certs)
}

/// RFC 3986 §2.1 percent-decoding (`+` is kept: ingress-nginx escapes it).
fn percent_decode(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    Some(out)
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

fn validator(state: &AppState) -> Result<&Arc<CardValidator>, CardProblem> {
    state
        .upstreams
        .card_validator
        .as_ref()
        .ok_or_else(|| problem("not_configured", "card login is not configured here"))
}

/// Validates a chain (DER, leaf first). An issuer whose CRL was never fetched gets one fetch,
/// bounded by the CRL fetch timeout, unless the CRL sources' breaker is open (degraded mode: no
/// wait on a link known to be down); everything else reads cached state only.
async fn validate(state: &AppState, chain: &[Vec<u8>]) -> Result<PresentedCard, CardProblem> {
    let v = validator(state)?;
    let now = crate::now();
    let mut result = v.validate(chain, now);
    if matches!(result, Err(CardRejection::RevocationUnknown { .. }))
        && state.upstreams.health.available(crate::health::CRL)
    {
        let wait = Duration::from_millis(state.config.cards.trust.fetch_timeout_ms.saturating_add(500));
        let _ = tokio::time::timeout(wait, v.ensure_crl_for(chain, &state.upstreams.http)).await;
        result = v.validate(chain, now);
    }
    let valid = result.map_err(|e| {
        metrics::counter!("vigie_card_rejected_total", "reason" => e.code()).increment(1);
        problem(e.code(), format!("{} / {e}", in_french(e.code())))
    })?;
    if matches!(valid.revocation, RevocationCheck::PastGraceAccepted { .. }) {
        state.audit(AuditEvent {
            kind: Some(AuditKind::Refused),
            outcome: Some(Outcome::Success),
            reason: Some(format!(
                "card {} accepted although its issuer's CRL is past nextUpdate + grace (cards.trust.after_grace = accept)",
                valid.identity.serial_hex
            )),
            ..Default::default()
        });
    }
    let fingerprint = vigie_core::cards::card_fingerprint(&valid.identity.issuer_dn, &valid.identity.serial_hex);
    Ok(PresentedCard { identity: valid.identity, fingerprint, der: chain[0].clone() })
}

/// Validates a certificate chain given as DER (leaf first) — a card certificate sent to the admin
/// API or by the CLI rather than presented over TLS.
pub async fn validate_chain(state: &AppState, chain: &[Vec<u8>]) -> Result<PresentedCard, CardProblem> {
    if chain.is_empty() {
        return Err(problem("malformed", "no certificate given"));
    }
    validate(state, chain).await
}

/// The subjects (DER) of the card CAs, sent to browsers in the TLS CertificateRequest so that
/// they offer the card's certificate; empty when card login is off (no certificate is asked).
pub fn client_ca_subjects(state: &AppState) -> Vec<Vec<u8>> {
    match &state.upstreams.card_validator {
        Some(v) if state.config.cards.enabled => v.anchor_subjects(),
        _ => Vec::new(),
    }
}

/// Keeps the CRLs fresh in the background: the login path never waits on a CRL server (but for
/// the first card of an issuer whose CRL was never fetched, bounded by the fetch timeout).
pub fn spawn_crl_refresher(state: &AppState) {
    if let Some(v) = &state.upstreams.card_validator {
        drop(v.spawn_refresh(state.upstreams.http.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingress_header_is_url_encoded_pem() {
        let cert = rcgen::generate_simple_self_signed(vec!["card".into()]).expect("cert");
        let pem = cert.cert.pem();
        let encoded: String =
            url::form_urlencoded::byte_serialize(pem.as_bytes()).collect::<String>().replace('+', "%20");
        let chain = parse_header(encoded.as_bytes()).expect("parsed");
        assert_eq!(chain, vec![cert.cert.der().to_vec()]);
        assert!(parse_header(b"%ZZ").unwrap_err().contains("URL encoding"));
        assert!(parse_header(b"not a certificate").unwrap_err().contains("no PEM certificate"));
        assert_eq!(parse_header(b"").expect("empty"), Vec::<Vec<u8>>::new());
    }

    proptest::proptest! {
        #[test]
        fn the_ingress_header_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_header(&bytes);
        }
    }
}
