//! The mail port: a plain-text notice e-mailed to one person (the sponsorship and credential
//! notices). The adapter owns the relay, its transport security and its retries.
use async_trait::async_trait;

/// A plain-text e-mail to one person.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    /// The sender, `Name <address>` or `address`; `None`: the relay's configured sender.
    pub from: Option<&'a str>,
    /// The address as the directory holds it: `name@domain` or `Name <name@domain>`.
    pub to: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Body, plain text, UTF-8.
    pub body: &'a str,
}

/// Why a notice was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NotSent {
    /// The address is not one (the adapter's message says what is expected); nothing was tried.
    #[error("{0}")]
    BadAddress(String),
    /// Sending failed: after `attempts` tries, or at once when retrying cannot help (mail
    /// disabled, a message that cannot be built).
    #[error("{reason} (after {attempts} attempt(s))")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last failure, in plain words.
        reason: String,
    },
}

/// Outgoing e-mail.
///
/// Guarantees every adapter must keep:
/// - an address with a line break or another control character is refused
///   ([`NotSent::BadAddress`]) before anything is sent: a value cannot inject headers;
/// - `send` returns within the configured attempts, each bounded by the configured timeout, so a
///   relay that accepts the connection and never answers cannot hold the caller for ever;
/// - `Ok(n)` means the relay accepted the message at the `n`-th attempt (not that it reached
///   the mailbox).
///
/// The caller sends in the background when a notice must not delay what it tells of, and audits
/// the outcome either way.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `notice`, retrying as configured; the attempts made.
    async fn send(&self, notice: &Notice<'_>) -> Result<u32, NotSent>;
}
