//! The HTTPS listener's TLS configuration (rustls, aws-lc-rs), with an optional client
//! certificate: a browser with the card middleware presents the CPS/CPE authentication
//! certificate, everyone else connects without one. The chain reaches handlers as a plain
//! [`ClientCertChain`] (an extractor), never as connection data.
//!
//! The handshake only proves that the client holds the private key of the certificate it sent
//! (RFC 8446 §4.4.3 CertificateVerify). Whether the certificate is trusted, valid, meant for
//! client authentication and not revoked is decided after the handshake by `vigie-igc-sante`,
//! so that a refused card gets a page that says why and an audit line, not a TLS alert.
//!
//! A card login rests on a handshake in which the card signed. A resumed session has no
//! CertificateVerify: TLS 1.3 PSK resumption carries over the identity of the original
//! handshake (RFC 8446 §2.2, the tickets of §4.6.1), TLS 1.2 session-ID and ticket resumption
//! the abbreviated handshake, which has no §7.4.8 CertificateVerify (RFC 5246 §7.3, RFC 5077
//! §3.1), and rustls hands back the client
//! certificates of that first handshake. Whoever holds the session — the workstation's browser
//! after the card was pulled out, no PIN typed — would log the card in again, with a fresh
//! `auth_time`. So when client certificates are asked, the listener offers no resumption at
//! all, and a connection that resumed anyway carries no certificate to the handlers.
use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::{Extensions, Payload};
use actix_web::{FromRequest, HttpRequest};
use anyhow::Context;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::config::Config;
use crate::login::config::CardsConfig;
use crate::state::Part;
use vigie_core::cards::CardValidation;

/// Builds the listener's configuration. `client_ca_subjects` are the DER subjects of the card
/// CAs, sent in the CertificateRequest (RFC 8446 §4.2.4 `certificate_authorities`) so that the
/// browser offers the card certificate and not any other; empty: no client certificate is asked.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca_subjects: Vec<Vec<u8>>,
) -> anyhow::Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("`server.tls_cert`: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("`server.tls_cert`: {} holds no valid PEM certificate", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("`server.tls_cert`: {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("`server.tls_key`: {} holds no usable PEM private key", key.display()))?;
    let asks_for_cards = !client_ca_subjects.is_empty();
    let builder = rustls::ServerConfig::builder();
    let builder = if !asks_for_cards {
        builder.with_no_client_auth()
    } else {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        builder.with_client_cert_verifier(Arc::new(OptionalClientCert {
            hints: client_ca_subjects.into_iter().map(DistinguishedName::from).collect(),
            algorithms: provider.signature_verification_algorithms,
        }))
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("`server.tls_key`: the TLS certificate and key do not match or are unsupported")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if asks_for_cards {
        // No session cache (TLS 1.2 session IDs, TLS 1.3 stateful tickets), no TLS 1.3 tickets
        // sent, no stateless tickets (the default ticketer makes none): see the module docs.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// Asks for a client certificate, accepts any (or none), and checks only that the client
/// signed the handshake with its key.
#[derive(Debug)]
struct OptionalClientCert {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Validated after the handshake (chain, dates, usage, revocation): see the module docs.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificates the client presented, and proved it holds the key of, in this connection's
/// own full handshake; leaf first (DER).
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<Vec<u8>>>);

/// `HttpServer::on_connect` hook: keeps the client certificate chain of a TLS connection in the
/// connection's data, where handlers find it (`req.conn_data::<PeerCertificates>()`) — only
/// when this handshake was a full one, in which the client signed (see the module docs).
pub fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(tls) = conn.downcast_ref::<Tls>() else { return };
    let tls = tls.get_ref().1;
    if let Some(certs) = tls.peer_certificates().filter(|c| !c.is_empty())
        && signed_in_this_handshake(tls.handshake_kind())
    {
        data.insert(PeerCertificates(Arc::new(certs.iter().map(|c| c.to_vec()).collect())));
    }
}

/// RFC 8446 §2.2 / RFC 5246 §7.3, §7.4.8: only a full handshake (with or without a HelloRetryRequest)
/// has the client's CertificateVerify; a resumed one proves possession of the session secret,
/// not of the certificate's key.
fn signed_in_this_handshake(kind: Option<rustls::HandshakeKind>) -> bool {
    matches!(kind, Some(rustls::HandshakeKind::Full | rustls::HandshakeKind::FullWithHelloRetryRequest))
}

/// The subjects (DER) of the card CAs, sent to browsers in the TLS CertificateRequest so that
/// they offer the card's certificate; empty when card login is off (no certificate is asked).
pub fn client_ca_subjects(card_validator: Option<&dyn CardValidation>, cards: &CardsConfig) -> Vec<Vec<u8>> {
    match card_validator {
        Some(v) if cards.enabled => v.anchor_subjects(),
        _ => Vec::new(),
    }
}

/// The client certificate chain of a request, as card code receives it: from this connection's
/// own full handshake ([`on_connect`]), or, behind an ingress that terminates TLS, from its
/// header (`cards.ingress_header`) when the peer is one of `cards.ingress_header_from`.
/// Extracting it records nothing: whoever acts on a refused header audits it, so a request
/// that goes no further leaves no line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCertChain {
    /// No certificate came with this request.
    Absent,
    /// The chain, DER, leaf first.
    Presented(Vec<Vec<u8>>),
    /// The ingress header, sent by an address not allowed to: the header's name.
    UntrustedHeader(String),
    /// The ingress header, unreadable: why.
    Malformed(String),
}

/// The longest header value read as a certificate chain: a card chain is a few KiB of PEM.
const MAX_CHAIN_HEADER_BYTES: usize = 16 * 1024;

impl ClientCertChain {
    /// The chain of this request under the `[cards]` settings.
    pub fn of(req: &HttpRequest, cards: &CardsConfig) -> Self {
        if let Some(peer) = req.conn_data::<PeerCertificates>() {
            return Self::Presented(peer.0.as_ref().clone());
        }
        let name = cards.ingress_header.as_str();
        if name.is_empty() {
            return Self::Absent;
        }
        let Some(value) = req.headers().get(name) else { return Self::Absent };
        // Anyone could write this header: only the ingress that terminated TLS (and removed
        // whatever the client sent under that name) may.
        let from_ingress =
            req.peer_addr().is_some_and(|p| cards.ingress_header_from.iter().any(|c| c.contains(p.ip())));
        if !from_ingress {
            return Self::UntrustedHeader(name.to_owned());
        }
        if value.len() > MAX_CHAIN_HEADER_BYTES {
            return Self::Malformed("the client certificate header is too long".into());
        }
        match parse_header(value.as_bytes()) {
            Ok(chain) if chain.is_empty() => Self::Absent,
            Ok(chain) => Self::Presented(chain),
            Err(e) => Self::Malformed(e),
        }
    }
}

impl FromRequest for ClientCertChain {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let config = Part::<Config>::from_request(req, payload).into_inner();
        std::future::ready(config.map(|config| Self::of(req, &config.cards)))
    }
}

/// ingress-nginx `ssl-client-cert`: the client's PEM certificate (chain with
/// `auth-tls-pass-certificate-to-upstream`), URL-encoded. Returns the DER certificates, leaf first.
pub fn parse_header(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_that_asks_for_cards_resumes_no_session() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("vigie-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("c.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), cert.signing_key.serialize_pem()).unwrap();
        let listener =
            |subjects: Vec<Vec<u8>>| server_config(&dir.join("c.pem"), &dir.join("k.pem"), subjects).unwrap();
        let cards = listener(vec![b"0\x00".to_vec()]);
        assert!(!cards.session_storage.can_cache());
        assert_eq!(cards.send_tls13_tickets, 0);
        assert!(!cards.ticketer.enabled());
        let plain = listener(Vec::new());
        assert!(plain.session_storage.can_cache(), "without cards, resumption stays");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(signed_in_this_handshake(Some(rustls::HandshakeKind::Full)));
        assert!(signed_in_this_handshake(Some(rustls::HandshakeKind::FullWithHelloRetryRequest)));
        assert!(!signed_in_this_handshake(Some(rustls::HandshakeKind::Resumed)));
        assert!(!signed_in_this_handshake(None));
    }

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
