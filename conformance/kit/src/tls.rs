//! The TLS configuration checks of the security plan (BCP 195 = RFC 9325, RFC 8996, RFC 6797):
//! protocol versions and cipher suites probed with hand-made ClientHellos (the kit's own TLS
//! stack cannot offer TLS 1.0 or a weak suite), HSTS and the certificate chain over HTTPS.
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::flow::Ctx;
use crate::{Module, Verdict};

pub fn modules() -> Vec<Module> {
    vec![
        module!(
            "tls-protocol-versions",
            "security",
            "RFC 8996 §2-§5; RFC 9325 §3.1.1",
            "TLS 1.0 and 1.1 refused, TLS 1.2 or later offered",
            "TLS 1.0 et 1.1 refusés, TLS 1.2 ou plus récent proposé",
            "a ClientHello offering only TLS 1.0, then only TLS 1.1, gets no ServerHello; a TLS 1.2 ClientHello does",
            "un ClientHello ne proposant que TLS 1.0, puis que TLS 1.1, n'obtient pas de ServerHello ; un ClientHello TLS 1.2 en obtient un",
            protocol_versions
        ),
        module!(
            "tls-cipher-suites",
            "security",
            "RFC 9325 §4.1, §4.2 (forward secrecy, AEAD); RFC 7465 (no RC4)",
            "Only forward-secret AEAD cipher suites",
            "Seules des suites à confidentialité persistante et AEAD",
            "offered only suites without forward secrecy or AEAD (RSA key exchange, CBC, 3DES, RC4, NULL), the server refuses; offered those first and an ECDHE AEAD suite last, it picks the ECDHE AEAD one",
            "si on ne lui propose que des suites sans confidentialité persistante ou sans AEAD (échange RSA, CBC, 3DES, RC4, NULL), le serveur refuse ; si on les propose d'abord et une suite ECDHE AEAD en dernier, il choisit cette dernière",
            cipher_suites
        ),
        module!(
            "tls-hsts",
            "security",
            "RFC 6797 §6.1, §7.1, §11.2; RFC 9325 §3.2",
            "HTTP Strict Transport Security",
            "HTTP Strict Transport Security (HSTS)",
            "Strict-Transport-Security on the discovery document and the login page, with a max-age of at least 180 days (the kit's threshold for RFC 6797 §11.2's long max-age)",
            "Strict-Transport-Security sur le document de découverte et la page de connexion, avec un max-age d'au moins 180 jours (le seuil du kit pour le max-age long de RFC 6797 §11.2)",
            hsts
        ),
        module!(
            "tls-certificate-chain",
            "security",
            "RFC 9325 §7.3; RFC 6125 §6; RFC 5280 §6",
            "Certificate chain valid for the target's name",
            "Chaîne de certificats valide pour le nom de la cible",
            "the chain the server sends verifies up to a trusted root (the system's, or --insecure-ca), is within its validity, and names the target's host",
            "la chaîne envoyée par le serveur se vérifie jusqu'à une racine de confiance (celles du système, ou --insecure-ca), est dans sa période de validité et nomme l'hôte de la cible",
            certificate_chain
        ),
    ]
}

const TLS10: u16 = 0x0301;
const TLS11: u16 = 0x0302;
const TLS12: u16 = 0x0303;

/// Suites a BCP 195 server refuses (RFC 9325 §4.1: no NULL, RC4, export, 3DES; §4.2: forward
/// secrecy and AEAD): RSA key exchange (GCM and CBC), CBC with ECDHE, 3DES, RC4, NULL.
const WEAK: &[u16] = &[
    0x009c, 0x009d, 0x002f, 0x0035, 0x003c, 0x003d, 0xc013, 0xc014, 0xc009, 0xc00a, 0xc027, 0xc023, 0x000a, 0x0005,
    0x0004, 0x0002, 0x0001, 0x0033, 0x0039,
];
/// ECDHE with AES-GCM or ChaCha20-Poly1305 (RFC 5289, RFC 7905).
const STRONG: &[u16] = &[0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca8, 0xcca9];

/// What a server answered a ClientHello.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// A ServerHello: its version and chosen suite.
    Accepted { version: u16, suite: u16 },
    /// An alert, or the connection closed: what the kit saw.
    Refused(String),
}

/// A TLS 1.0-1.2 ClientHello (RFC 5246 §7.4.1.2) with `suites`, SNI for `host` (RFC 6066 §3, not
/// for an IP address), the curves and signature algorithms a modern server needs to pick ECDHE.
pub fn client_hello(version: u16, suites: &[u16], host: &str) -> Vec<u8> {
    let mut exts = Vec::new();
    let mut ext = |kind: u16, data: &[u8]| {
        exts.extend_from_slice(&kind.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(data);
    };
    if host.parse::<std::net::IpAddr>().is_err() {
        let name = host.as_bytes();
        let mut sni = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name);
        ext(0x0000, &sni);
    }
    ext(0x000a, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    ext(0x000b, &[1, 0]);
    let sigs: [u16; 8] = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0201, 0x0203];
    let mut s = ((sigs.len() * 2) as u16).to_be_bytes().to_vec();
    sigs.iter().for_each(|a| s.extend_from_slice(&a.to_be_bytes()));
    ext(0x000d, &s);
    ext(0xff01, &[0]);

    let mut body = version.to_be_bytes().to_vec();
    let mut random = [0u8; 32];
    aws_lc_rs::rand::fill(&mut random).expect("the system's random source");
    body.extend_from_slice(&random);
    body.push(0);
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    suites.iter().for_each(|c| body.extend_from_slice(&c.to_be_bytes()));
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);

    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    // The record layer's version: TLS 1.0 for compatibility (RFC 5246 Appendix E.1).
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// Reads the server's first record: a ServerHello (RFC 5246 §7.4.1.3), an alert (§7.2), or
/// anything else as a refusal.
pub fn server_answer(first: &[u8]) -> Hello {
    match first {
        [21, _, _, _, _, _, desc, ..] => Hello::Refused(format!("alert {desc} (RFC 8446 §6)")),
        [22, _, _, _, _, 2, _, _, _, v1, v2, rest @ ..] if rest.len() >= 33 => {
            let sid_len = usize::from(rest[32]);
            match rest.get(33 + sid_len..35 + sid_len) {
                Some(&[s1, s2]) => {
                    Hello::Accepted { version: u16::from_be_bytes([*v1, *v2]), suite: u16::from_be_bytes([s1, s2]) }
                }
                _ => Hello::Refused("a truncated ServerHello".into()),
            }
        }
        [] => Hello::Refused("the connection was closed".into()),
        other => Hello::Refused(format!("an answer that is not a ServerHello ({} bytes)", other.len())),
    }
}

/// Sends a ClientHello to `host:port` and reads what comes back.
pub async fn probe(host: &str, port: u16, version: u16, suites: &[u16]) -> anyhow::Result<Hello> {
    let mut s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((host, port)))
        .await
        .context("connecting to the target timed out")?
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    s.write_all(&client_hello(version, suites, host)).await?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = 0;
    // Enough for the ServerHello (the certificate may follow in the same read or not).
    while got < 128 {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => bail!("the server neither answered nor closed within 10 s"),
        }
        if buf[0] == 21 && got >= 7 {
            break;
        }
    }
    Ok(server_answer(&buf[..got]))
}

/// The target's host and port.
fn host_port(c: &Ctx) -> anyhow::Result<(String, u16)> {
    let u = url::Url::parse(&c.agent.issuer)?;
    let host = u.host_str().context("the target has no host")?.trim_matches(['[', ']']).to_owned();
    Ok((host, u.port_or_known_default().unwrap_or(443)))
}

fn name(v: u16) -> &'static str {
    match v {
        TLS10 => "TLS 1.0",
        TLS11 => "TLS 1.1",
        TLS12 => "TLS 1.2",
        _ => "another version",
    }
}

async fn protocol_versions(c: &Ctx) -> anyhow::Result<Verdict> {
    let (host, port) = host_port(c)?;
    let all: Vec<u16> = STRONG.iter().chain(WEAK).copied().collect();
    for v in [TLS10, TLS11] {
        let answer = probe(&host, port, v, &all).await?;
        c.agent.note(&format!("ClientHello offering only {} to {host}:{port}", name(v)), format!("{answer:?}"));
        if let Hello::Accepted { version, .. } = answer {
            ensure!(version > TLS11, "the server accepted {} (RFC 8996 §2-3: MUST NOT)", name(version));
        }
    }
    let modern = probe(&host, port, TLS12, STRONG).await?;
    c.agent.note(&format!("ClientHello offering TLS 1.2 to {host}:{port}"), format!("{modern:?}"));
    ensure!(
        matches!(modern, Hello::Accepted { version: TLS12, .. }),
        "the server did not accept TLS 1.2 with ECDHE AEAD suites: {modern:?}"
    );
    Ok(Verdict::Pass)
}

async fn cipher_suites(c: &Ctx) -> anyhow::Result<Verdict> {
    let (host, port) = host_port(c)?;
    let weak = probe(&host, port, TLS12, WEAK).await?;
    c.agent.note("TLS 1.2 ClientHello offering only suites without forward secrecy or AEAD", format!("{weak:?}"));
    if let Hello::Accepted { suite, .. } = weak {
        bail!("the server chose suite 0x{suite:04x}, without forward secrecy or AEAD (RFC 9325 §4.1-4.2)");
    }
    let mixed: Vec<u16> = WEAK.iter().chain(STRONG).copied().collect();
    let answer = probe(&host, port, TLS12, &mixed).await?;
    c.agent.note("TLS 1.2 ClientHello offering the weak suites first, ECDHE AEAD last", format!("{answer:?}"));
    match answer {
        Hello::Accepted { suite, .. } if STRONG.contains(&suite) => Ok(Verdict::Pass),
        Hello::Accepted { suite, .. } => {
            bail!("the server preferred suite 0x{suite:04x} to the ECDHE AEAD ones offered (RFC 9325 §4.2)")
        }
        Hello::Refused(why) => bail!("the server refused TLS 1.2 with ECDHE AEAD suites offered: {why}"),
    }
}

async fn hsts(c: &Ctx) -> anyhow::Result<Verdict> {
    let discovery = c.agent.send(c.agent.get("/.well-known/openid-configuration"), None).await?;
    let a = crate::flow::Authz::new(c.rp());
    let mut b = c.browser();
    let r = b.get(&a.url(&c.agent)).await?;
    let login = if r.location().contains("/login") { b.get(&r.location()).await? } else { r };
    for (what, resp) in [("the discovery document", &discovery), ("the login page", &login)] {
        let h = resp.header("strict-transport-security").with_context(|| {
            format!("{what} has no Strict-Transport-Security header (RFC 6797 §7.1: every secure response)")
        })?;
        let max_age = h
            .split(';')
            .filter_map(|d| d.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("max-age"))
            .and_then(|(_, v)| v.trim().trim_matches('"').parse::<u64>().ok())
            .with_context(|| format!("{what}'s Strict-Transport-Security has no max-age (RFC 6797 §6.1.1)"))?;
        ensure!(max_age >= 180 * 86_400, "{what}'s HSTS max-age is {max_age} s, under 180 days");
    }
    Ok(Verdict::Pass)
}

async fn certificate_chain(c: &Ctx) -> anyhow::Result<Verdict> {
    // The agent verifies as rustls and webpki do (chain to a trusted root, validity, name):
    // a fresh client, so that no pooled connection hides a new handshake.
    let fresh = crate::agent::Agent::new(&c.agent.issuer, c.ca_pem.as_deref(), None)?;
    let r = fresh.send(fresh.get("/.well-known/openid-configuration"), None).await;
    let trusted = match &c.ca_pem {
        Some(_) => "the CA given by --insecure-ca",
        None => "the system's roots",
    };
    c.agent.note(
        "TLS handshake verifying the server's chain",
        format!("trusting {trusted}: {:?}", r.as_ref().map(|r| r.status)),
    );
    match r {
        Ok(_) => Ok(Verdict::Pass),
        Err(e) => bail!("the handshake with the target failed, its chain does not verify against {trusted}: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_hello_an_alert_and_a_close_are_told_apart() {
        // ServerHello: record header, type 2, length, version 3.3, random, empty session id,
        // suite c02f.
        let mut sh = vec![22, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3];
        sh.extend_from_slice(&[7u8; 32]);
        sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
        assert_eq!(server_answer(&sh), Hello::Accepted { version: TLS12, suite: 0xc02f });
        assert!(matches!(server_answer(&[21, 3, 3, 0, 2, 2, 70]), Hello::Refused(m) if m.contains("70")));
        assert!(matches!(server_answer(&[]), Hello::Refused(_)));
        assert!(matches!(server_answer(&sh[..20]), Hello::Refused(_)));
    }

    #[test]
    fn the_client_hello_is_well_formed() {
        let h = client_hello(TLS10, &[0x002f], "localhost");
        assert_eq!(&h[..3], &[22, 3, 1]);
        assert_eq!(usize::from(u16::from_be_bytes([h[3], h[4]])), h.len() - 5);
        assert_eq!(h[5], 1);
        assert_eq!(&h[9..11], &[3, 1]);
        assert!(h.windows(9).any(|w| w == b"localhost"));
        assert!(!client_hello(TLS12, &[0x002f], "127.0.0.1").windows(9).any(|w| w == b"127.0.0.1"));
    }
}
