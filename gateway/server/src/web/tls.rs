//! The HTTPS listener's TLS configuration (rustls, aws-lc-rs), with an optional client
//! certificate: a browser with the card middleware presents the CPS/CPE authentication
//! certificate, everyone else connects without one.
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

use actix_web::dev::Extensions;
use anyhow::Context;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Builds the listener's configuration. `client_ca_subjects` are the DER subjects of the card
/// CAs, sent in the CertificateRequest (RFC 8446 §4.2.4 `certificate_authorities`) so that the
/// browser offers the card certificate and not any other; empty: no client certificate is asked.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca_subjects: Vec<Vec<u8>>,
) -> anyhow::Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}: check `server.tls_cert`", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no valid PEM certificate: check `server.tls_cert`", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate: check `server.tls_cert`", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} holds no usable PEM private key: check `server.tls_key`", key.display()))?;
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
    let mut config =
        builder.with_single_cert(certs, key).context("the TLS certificate and key do not match or are unsupported")?;
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
}
