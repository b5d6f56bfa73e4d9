//! Outgoing e-mail for Vigie: the sponsorship notices ("vous avez parrainé… / vous avez été
//! parrainé(e) par…") go out through SMTP with [`Mailer`], which retries a few times and never
//! blocks the act it reports on (the caller spawns it).
//!
//! Transport security is configured per [`Security`]: `starttls` (RFC 3207) or implicit `tls`
//! (RFC 8314 §3.3) with rustls on aws-lc-rs and the system's roots (plus an optional CA file);
//! `plain` only towards a loopback relay (a local MTA, the test sink).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

/// How the connection to the SMTP relay is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain SMTP then `STARTTLS`, required (RFC 3207); port 587 usually.
    #[default]
    Starttls,
    /// TLS from the first byte (RFC 8314 §3.3, "implicit TLS"); port 465 usually.
    Tls,
    /// No TLS: only towards a relay on the loopback interface (a local MTA, a test sink).
    Plain,
}

/// The `[mail]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Send e-mails at all. Default `false`: nothing is sent, each skipped e-mail is logged.
    pub enabled: bool,
    /// SMTP relay host name (the TLS certificate must name it).
    pub host: String,
    /// SMTP relay port.
    pub port: u16,
    /// `starttls` (default), `tls` or `plain` (loopback only).
    pub security: Security,
    /// SMTP AUTH user name (RFC 4954), if the relay asks for one.
    pub username: Option<String>,
    /// SMTP AUTH password; set it from the environment (`VIGIE_MAIL__PASSWORD`). Never logged.
    pub password: Option<String>,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// A PEM CA certificate to trust besides the system's roots (an internal relay's CA).
    pub ca_file: Option<PathBuf>,
    /// Timeout of one attempt (connection and every command), seconds.
    pub timeout_secs: u64,
    /// Attempts per e-mail before giving up (at least 1).
    pub attempts: u32,
    /// Pause before the first retry, milliseconds; doubled at each retry.
    pub retry_delay_ms: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "localhost".into(),
            port: 587,
            security: Security::Starttls,
            username: None,
            password: None,
            from: "Vigie <vigie@localhost>".into(),
            ca_file: None,
            timeout_secs: 10,
            attempts: 3,
            retry_delay_ms: 1000,
        }
    }
}

impl MailConfig {
    /// Checks the section; one call of `err` per bad key (`mail.<key>`). The password is never
    /// echoed.
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if !self.enabled {
            return;
        }
        if self.host.is_empty() || self.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            err("mail.host", format!("{:?} is not a host name", self.host));
        }
        if self.port == 0 {
            err("mail.port", "expected a port 1..=65535".into());
        }
        if self.security == Security::Plain && !is_loopback(&self.host) {
            err(
                "mail.security",
                format!(
                    "\"plain\" sends e-mails unprotected: only towards a relay on loopback, not {:?}; use \"starttls\" or \"tls\"",
                    self.host
                ),
            );
        }
        if let Err(e) = parse_mailbox(&self.from) {
            err("mail.from", e.to_string());
        }
        if self.username.is_some() != self.password.is_some() {
            err("mail.username", "`mail.username` and `mail.password` go together".into());
        }
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            err("mail.ca_file", format!("{} is not a readable file", ca.display()));
        }
        if self.timeout_secs == 0 {
            err("mail.timeout_secs", "expected a positive integer".into());
        }
        if self.attempts == 0 || self.attempts > 10 {
            err("mail.attempts", "expected 1..=10".into());
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why an e-mail was not sent, or an address refused.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address (from the configuration or the directory) is not one.
    #[error("{0:?} is not an e-mail address (expected `name@domain` or `Name <name@domain>`, no line breaks)")]
    BadAddress(String),
    /// The configuration cannot build a transport (unreadable CA file, bad TLS settings).
    #[error("mail configuration: {0}")]
    Config(String),
    /// The message could not be built.
    #[error("building the e-mail: {0}")]
    Message(String),
    /// The relay refused or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(String),
    /// Sending is disabled (`mail.enabled = false`).
    #[error("e-mail is disabled (`mail.enabled = false`)")]
    Disabled,
}

/// Parses an address as the directory or the configuration give it: `name@domain` or
/// `Name <name@domain>` (RFC 5322 §3.4). Line breaks and other control characters are refused
/// before anything else: they would let a value inject headers.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, MailError> {
    let bad = || MailError::BadAddress(s.chars().take(120).collect());
    if s.is_empty() || s.len() > 320 || s.chars().any(char::is_control) {
        return Err(bad());
    }
    let mailbox: Mailbox = s.trim().parse().map_err(|_| bad())?;
    Ok(mailbox)
}

/// Parses a bare address, `name@domain` (RFC 5321 §4.1.2 `Mailbox`).
pub fn parse_address(s: &str) -> Result<Address, MailError> {
    let bad = || MailError::BadAddress(s.chars().take(120).collect());
    if s.is_empty() || s.len() > 254 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

/// One e-mail: plain text, UTF-8.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The sender, when not `mail.from` (the life cycle's reminders: `lifecycle.reminders.from`).
    pub from: Option<Mailbox>,
    /// The recipient.
    pub to: Mailbox,
    /// Subject line.
    pub subject: String,
    /// Body, plain text.
    pub body: String,
}

/// Sends e-mails through the configured relay.
#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    attempts: u32,
    retry_delay: Duration,
    /// Bounds one whole attempt: lettre's async transport bounds only the TCP connection, so a
    /// relay that takes it and never answers would hold the attempt for ever.
    timeout: Duration,
}

impl Mailer {
    /// A mailer for this (validated) configuration; one that sends nothing when disabled.
    pub fn new(config: &MailConfig) -> Result<Mailer, MailError> {
        let from = parse_mailbox(&config.from)?;
        let attempts = config.attempts.max(1);
        let retry_delay = Duration::from_millis(config.retry_delay_ms);
        let timeout = Duration::from_secs(config.timeout_secs);
        if !config.enabled {
            return Ok(Mailer { transport: None, from, attempts, retry_delay, timeout });
        }
        let tls = || -> Result<TlsParameters, MailError> {
            let mut b = TlsParameters::builder(config.host.clone());
            if let Some(ca) = &config.ca_file {
                let pem = std::fs::read(ca).map_err(|e| MailError::Config(format!("{}: {e}", ca.display())))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| MailError::Config(format!("{}: not a PEM certificate: {e}", ca.display())))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| MailError::Config(e.to_string()))
        };
        let tls = match config.security {
            Security::Starttls => Tls::Required(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
            Security::Plain => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(u), Some(p)) = (&config.username, &config.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Mailer { transport: Some(b.build()), from, attempts, retry_delay, timeout })
    }

    fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        Message::builder()
            .from(mail.from.clone().unwrap_or_else(|| self.from.clone()))
            .to(mail.to.clone())
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Message(e.to_string()))
    }

    /// Sends once.
    pub async fn send_once(&self, mail: &Mail) -> Result<(), MailError> {
        let Some(transport) = &self.transport else { return Err(MailError::Disabled) };
        let message = self.message(mail)?;
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(|e| MailError::Smtp(e.to_string())),
            Err(_) => Err(MailError::Smtp(format!("no answer from the relay within {:?}", self.timeout))),
        }
    }

    /// Sends, retrying up to `mail.attempts` times with a doubling pause. Returns the number of
    /// attempts made, with the last error when none went through.
    pub async fn send(&self, mail: &Mail) -> (u32, Result<(), MailError>) {
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        loop {
            match self.send_once(mail).await {
                Ok(()) => return (attempt, Ok(())),
                Err(e @ (MailError::Disabled | MailError::Message(_) | MailError::BadAddress(_))) => {
                    return (attempt, Err(e));
                }
                Err(e) if attempt >= self.attempts => return (attempt, Err(e)),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "e-mail not sent, retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl vigie_core::mail::Mailer for Mailer {
    async fn send(&self, notice: &vigie_core::mail::Notice<'_>) -> Result<u32, vigie_core::mail::NotSent> {
        use vigie_core::mail::NotSent;
        let to = parse_mailbox(notice.to).map_err(|e| NotSent::BadAddress(e.to_string()))?;
        let from = notice
            .from
            .map(parse_mailbox)
            .transpose()
            .map_err(|e| NotSent::Failed { attempts: 0, reason: e.to_string() })?;
        let mail = Mail { from, to, subject: notice.subject.to_owned(), body: notice.body.to_owned() };
        let (attempts, result) = Mailer::send(self, &mail).await;
        result.map(|()| attempts).map_err(|e| NotSent::Failed { attempts, reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_injections_are_refused() {
        assert_eq!(parse_address("camille.martin@chu.example").unwrap().to_string(), "camille.martin@chu.example");
        let m = parse_mailbox("Camille Martin <camille.martin@chu.example>").unwrap();
        assert_eq!(m.email.to_string(), "camille.martin@chu.example");
        assert!(parse_address("camille").is_err());
        assert!(parse_address("a@b\r\nBcc: x@y").is_err());
        assert!(parse_mailbox("Eve <e@x>\r\nBcc: x@y").is_err());
        assert!(parse_address("a b@c").is_err());
        assert!(parse_address("").is_err());
    }

    #[test]
    fn config_checks_name_each_key() {
        let mut errors = Vec::new();
        let c = MailConfig {
            enabled: true,
            host: "smtp.chu.example".into(),
            security: Security::Plain,
            from: "not an address".into(),
            username: Some("u".into()),
            attempts: 0,
            ..Default::default()
        };
        c.validate(&mut |k, m| errors.push(format!("{k}: {m}")));
        let keys: Vec<&str> = errors.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(keys, ["mail.security", "mail.from", "mail.username", "mail.attempts"], "{errors:?}");
        assert!(errors.iter().all(|e| !e.contains("secret")));
        let mut none = Vec::new();
        MailConfig { enabled: true, host: "127.0.0.1".into(), security: Security::Plain, ..Default::default() }
            .validate(&mut |k, m| none.push(format!("{k}: {m}")));
        assert!(none.is_empty(), "{none:?}");
    }

    proptest::proptest! {
        #[test]
        fn address_parsing_never_panics_and_never_keeps_a_line_break(s in "\\PC{0,80}|.{0,10}\r\n.{0,10}") {
            if let Ok(a) = parse_address(&s) {
                proptest::prop_assert!(!a.to_string().contains(['\r', '\n']));
            }
            if let Ok(m) = parse_mailbox(&s) {
                proptest::prop_assert!(!m.to_string().contains(['\r', '\n']));
            }
        }

        #[test]
        fn generated_addresses_round_trip(user in "[a-z][a-z0-9.]{0,20}[a-z0-9]", domain in "[a-z]{1,10}\\.[a-z]{2,5}") {
            let s = format!("{user}@{domain}");
            if !user.contains("..") {
                proptest::prop_assert_eq!(parse_address(&s).unwrap().to_string(), s);
            }
        }
    }
}
