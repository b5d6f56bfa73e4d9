//! `vigie-mail` against a real SMTP server (Python aiosmtpd, `tests/smtp-sink`): plain SMTP on
//! loopback, STARTTLS required (RFC 3207) and implicit TLS (RFC 8314 §3.3) with the relay's
//! certificate checked against the configured CA, retries on a temporary failure (RFC 5321
//! §4.2.1: 4yz "transient negative completion").
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use serde_json::Value;
use vigie_mail::{Mail, MailConfig, MailError, Mailer, Security, parse_mailbox};

struct Sink {
    port: u16,
    dir: PathBuf,
    child: Child,
    _stdin: ChildStdin,
}

impl Sink {
    fn start(args: &[&str]) -> Sink {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp-sink");
        assert!(Command::new(root.join("setup")).status().expect("tests/smtp-sink/setup").success());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("vigie-mail-sink-{}-{port}", std::process::id()));
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("sink.py"))
            .args(["--port", &port.to_string(), "--dir"])
            .arg(&dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        let stdin = child.stdin.take().unwrap();
        Sink { port, dir, child, _stdin: stdin }
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and the relay's certificate for 127.0.0.1, written to a fresh directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("vigie-mail-pki-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "relay test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, &ca_key);
        let mut relay = CertificateParams::new(Vec::<String>::new()).unwrap();
        relay.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        relay.distinguished_name.push(DnType::CommonName, "relay");
        let relay_key = KeyPair::generate().unwrap();
        let relay_cert = relay.signed_by(&relay_key, &issuer).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("relay.pem"), relay_cert.pem()).unwrap();
        std::fs::write(dir.join("relay.key"), relay_key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(port: u16, security: Security) -> MailConfig {
    MailConfig {
        enabled: true,
        host: "127.0.0.1".into(),
        port,
        security,
        from: "Vigie CHU <vigie@chu.example>".into(),
        retry_delay_ms: 50,
        timeout_secs: 5,
        ..Default::default()
    }
}

fn notice() -> Mail {
    Mail {
        from: None,
        to: parse_mailbox("Camille Martin <camille.martin@chu.example>").unwrap(),
        subject: "Parrainage d'une carte CPS / CPE : vous avez été parrainé(e)".into(),
        body: "Vous venez d'être parrainé(e) par Paul Durand le 24/02/2026 à 13:47:18.\n".into(),
    }
}

#[tokio::test]
async fn plain_smtp_to_a_loopback_relay_delivers_utf8_text() {
    let sink = Sink::start(&[]);
    let mailer = Mailer::new(&config(sink.port, Security::Plain)).unwrap();
    let (attempts, result) = mailer.send(&notice()).await;
    result.unwrap();
    assert_eq!(attempts, 1);
    let m = &sink.messages()[0];
    assert_eq!(m["rcpt_tos"], serde_json::json!(["camille.martin@chu.example"]));
    assert_eq!(m["mail_from"], "vigie@chu.example");
    assert_eq!(m["subject"], "Parrainage d'une carte CPS / CPE : vous avez été parrainé(e)");
    assert!(m["body"].as_str().unwrap().contains("parrainé(e) par Paul Durand le 24/02/2026 à 13:47:18"), "{m}");
    assert_eq!(m["tls"], false);
}

#[tokio::test]
async fn starttls_is_required_and_the_relay_certificate_checked_against_the_configured_ca() {
    let pki = Pki::new("starttls");
    let sink =
        Sink::start(&["--mode", "starttls", "--tls-cert", &pki.path("relay.pem"), "--tls-key", &pki.path("relay.key")]);
    // Without the relay's CA the handshake fails: the certificate is verified, not just accepted.
    let untrusted = Mailer::new(&config(sink.port, Security::Starttls)).unwrap();
    let (attempts, refused) = untrusted.send(&notice()).await;
    assert!(matches!(&refused, Err(MailError::Smtp(e)) if e.contains("UnknownIssuer")), "an unknown CA: {refused:?}");
    assert_eq!(attempts, 3, "a failed handshake is retried like any failure to reach the relay");
    assert!(sink.messages().is_empty());
    // A plain client is refused by this relay (MAIL before STARTTLS: RFC 3207 §4, 530).
    let (_, plain) = Mailer::new(&config(sink.port, Security::Plain)).unwrap().send(&notice()).await;
    assert!(
        matches!(&plain, Err(MailError::Smtp(e)) if e.contains("530") && e.contains("STARTTLS")),
        "the relay requires STARTTLS: {plain:?}"
    );
    assert!(sink.messages().is_empty());

    let mut c = config(sink.port, Security::Starttls);
    c.ca_file = Some(pki.dir.join("ca.pem"));
    let (attempts, result) = Mailer::new(&c).unwrap().send(&notice()).await;
    result.unwrap();
    assert_eq!(attempts, 1);
    let m = sink.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["tls"], true, "{m:?}");
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let pki = Pki::new("tls");
    let sink =
        Sink::start(&["--mode", "tls", "--tls-cert", &pki.path("relay.pem"), "--tls-key", &pki.path("relay.key")]);
    let mut c = config(sink.port, Security::Tls);
    c.ca_file = Some(pki.dir.join("ca.pem"));
    let (_, result) = Mailer::new(&c).unwrap().send(&notice()).await;
    result.unwrap();
    assert_eq!(sink.messages()[0]["tls"], true);
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_a_relay_down_gives_up_after_the_attempts() {
    let sink = Sink::start(&["--fail-first", "2"]);
    let (attempts, result) = Mailer::new(&config(sink.port, Security::Plain)).unwrap().send(&notice()).await;
    result.unwrap();
    assert_eq!(attempts, 3, "two 451 answers, then delivered");
    assert_eq!(sink.messages().len(), 1);

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = config(dead, Security::Plain);
    c.attempts = 2;
    let (attempts, result) = Mailer::new(&c).unwrap().send(&notice()).await;
    assert_eq!(attempts, 2);
    assert!(matches!(&result, Err(MailError::Smtp(e)) if e.contains("Connection refused")), "{result:?}");
    let (attempts, disabled) = Mailer::new(&MailConfig::default()).unwrap().send(&notice()).await;
    assert_eq!((attempts, matches!(disabled, Err(MailError::Disabled))), (1, true));
}
