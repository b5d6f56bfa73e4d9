//! The DMP port: sealing a VIHF (the SAML assertion of AIR simplifié, signed with the
//! establishment's seal) for a typed request, and the patient's INS-NIR that names the DMP opened.
use std::fmt;

use async_trait::async_trait;

use crate::{IdNat, Mie};

/// Why an INS-NIR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsError {
    /// Not 15 characters.
    #[error("the INS-NIR must have 15 characters (NIR 13 + key 2), got {0}")]
    Length(usize),
    #[error(
        "the INS-NIR has {found:?} at position {at}: only digits are allowed (and 2A/2B as the Corsican department)"
    )]
    /// A character that is not a digit (nor `2A`/`2B`).
    NotDigit {
        /// Its position, from 0.
        at: usize,
        /// The character.
        found: char,
    },
    #[error("the INS-NIR starts with {0}: a NIR starts with 1 or 2 (3, 4, 7, 8 for provisional numbers)")]
    /// A first character that no NIR has.
    Sex(char),
    #[error("the INS-NIR key is {found:02}, the NIR gives {expected:02} (97 - NIR mod 97): check the number")]
    /// The key does not match the NIR.
    Key {
        /// The key the NIR gives.
        expected: u64,
        /// The key written.
        found: u64,
    },
}

/// A checked INS-NIR, as 15 ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsNir(String);

impl InsNir {
    /// Checks the shape and the key. NIR layout: sex (1), year (2), month (2), department (2,
    /// `2A`/`2B` for Corsica), commune (3), order (3); key = 97 − (NIR mod 97), where for Corsica
    /// the NIR is read with `2A` → `19` and `2B` → `18` (the INSEE rule).
    pub fn parse(s: &str) -> Result<Self, InsError> {
        let n = s.chars().count();
        if n != 15 {
            return Err(InsError::Length(n));
        }
        let b = s.as_bytes(); // 15 chars, and below every one is checked ASCII
        let corsica = match (b[5], b[6]) {
            (b'2', b'A' | b'a') => Some(19u64),
            (b'2', b'B' | b'b') => Some(18u64),
            _ => None,
        };
        for (at, c) in s.chars().enumerate() {
            let letter_ok = corsica.is_some() && at == 6;
            if !(c.is_ascii_digit() || letter_ok) {
                return Err(InsError::NotDigit { at, found: c });
            }
        }
        if !matches!(b[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
            return Err(InsError::Sex(b[0] as char));
        }
        let digits = |r: std::ops::Range<usize>| r.fold(0u64, |acc, i| acc * 10 + u64::from(b[i] - b'0'));
        let nir = match corsica {
            Some(dept) => digits(0..5) * 100_000_000 + dept * 1_000_000 + digits(7..13),
            None => digits(0..13),
        };
        let expected = 97 - nir % 97;
        let found = digits(13..15);
        if found != expected {
            return Err(InsError::Key { expected, found });
        }
        Ok(InsNir(s.to_ascii_uppercase()))
    }

    /// The 15 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InsNir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a VIHF says: who, how they authenticated, which patient, why. Built by the gateway from
/// a live session and a checked INS; every field already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VihfRequest {
    /// idNat_PS of the professional: the `NameID`.
    pub idnat: IdNat,
    /// `subject-id`: "Nom Prénom".
    pub subject_name: String,
    /// The profession code (TRE_G15) as a national provider asserted it, else the directory's.
    pub profession: Option<String>,
    /// The specialty code, when a national provider asserted one.
    pub specialty: Option<String>,
    /// How the professional authenticated: picks the `AuthnContextClassRef`.
    pub mie: Mie,
    /// When the professional authenticated (Unix seconds): `AuthnInstant`.
    pub authn_instant: i64,
    /// The patient.
    pub patient: InsNir,
    /// A purpose of use the configuration knows (`normal` by default).
    pub purpose_of_use: String,
    /// Now (Unix seconds): `IssueInstant`, `NotBefore`.
    pub now: i64,
}

/// A signed VIHF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vihf {
    /// The assertion `ID` (`_` + UUID v4), for the audit trail and single use.
    pub id: String,
    /// The assertion, UTF-8, no XML declaration, ready to go into a `wsse:Security` header.
    pub xml: String,
    /// End of validity (Unix seconds): `now + validity_secs`.
    pub not_on_or_after: i64,
}

/// Why no VIHF was sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealRefusal {
    /// The configuration gives this session no VIHF (its MIE has no authentication context, the
    /// professional has no role the DMP knows): a refusal to tell the caller.
    #[error("{0}")]
    NotForThisSession(String),
    /// A fault of the seal or of a value (the detail is for the log, not the caller).
    #[error("{0}")]
    Failed(String),
}

/// Seals VIHFs with the establishment's seal (ORG_SIGN).
///
/// Guarantees every adapter must keep: each VIHF has a fresh `ID` and is valid from `now` for the
/// configured validity; it names exactly the request's professional, MIE and patient; a value
/// XML cannot carry is refused, never escaped into another meaning. No I/O: sealing is local
/// (the key is loaded at start), so it needs no timeout.
///
/// The caller seals only for a live session the policy allowed (`access_dmp`), audits each VIHF
/// (`vihf_issued`) and tells a [`SealRefusal::NotForThisSession`] to its caller.
pub trait VihfSealer: Send + Sync {
    /// A signed VIHF for `request`.
    fn seal(&self, request: &VihfRequest) -> Result<Vihf, SealRefusal>;
}

/// Why a call was not relayed, or got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay cannot be built as configured.
    #[error("DMP relay configuration: {0}")]
    Config(String),
    /// The service is not a path segment the relay may name.
    #[error("service {0:?} is not a DMP service name (letters, digits, '_', '-', '.')")]
    Service(String),
    /// The SOAP action cannot be carried in the content type.
    #[error("SOAP action {0:?} cannot go into a content-type parameter (quotes, backslashes, controls)")]
    Action(String),
    /// The call's deadline passed (the detail: the transport's error chain).
    #[error("the DMP did not answer in time ({0})")]
    Timeout(String),
    /// No connection, TLS refused, or the answer broke off (the detail: the error chain).
    #[error("the DMP is unreachable: {0}")]
    Unreachable(String),
    /// The answer is larger than the relay carries.
    #[error("the DMP's answer is larger than {0} bytes")]
    TooLarge(usize),
}

impl RelayError {
    /// Whether the DMP failed (it could not be reached, or not in time), rather than the call or
    /// the configuration: only these count against the DMP's circuit breaker, so that a caller's
    /// bad calls cannot make the DMP look down for everyone.
    pub fn is_dmp_failure(&self) -> bool {
        matches!(self, RelayError::Timeout(_) | RelayError::Unreachable(_))
    }
}

/// The DMP's answer to a relayed call, read as it comes (MTOM answers carry documents: they are
/// not held in memory).
#[async_trait]
pub trait RelayAnswer: Send {
    /// The HTTP status (a SOAP fault comes with 500).
    fn status(&self) -> u16;
    /// The answer's content type, as sent.
    fn content_type(&self) -> Option<String>;
    /// The announced length, if any.
    fn content_length(&self) -> Option<u64>;
    /// The next piece of the body; `None` at its end.
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, RelayError>;
}

/// The SOAP relay to the DMP, over mutual TLS (the establishment's ORG_AUTH_CLI certificate).
///
/// Guarantees every adapter must keep: the call goes only to `<base_url><service>` for a
/// `service` that is a plain path segment (else [`RelayError::Service`], nothing sent); connecting
/// is bounded by `dmp.relay.timeout_ms` and the whole call, answer included, by
/// `dmp.relay.deadline_ms`; any HTTP status is an answer, only transport failures are errors, and
/// [`RelayError::is_dmp_failure`] says which of them the DMP is to blame for.
///
/// The caller secures the body with a fresh VIHF first, audits the call (`dmp_call`), counts DMP
/// failures against the DMP's circuit breaker, and caps what it reads of the answer.
#[async_trait]
pub trait SoapRelay: Send + Sync {
    /// POSTs `body` (a SOAP 1.2 call, plain or MTOM, of `content_type`) to the DMP's `service`.
    async fn send(&self, service: &str, content_type: &str, body: Vec<u8>) -> Result<Box<dyn RelayAnswer>, RelayError>;
}

/// An answer read whole (a SOAP fault, for its reason), refused past `limit` bytes: what the DMP
/// sends is not trusted to be small. A timeout here is the call's deadline.
pub async fn read_whole(answer: &mut dyn RelayAnswer, limit: usize) -> Result<Vec<u8>, RelayError> {
    if answer.content_length().is_some_and(|n| n > limit as u64) {
        return Err(RelayError::TooLarge(limit));
    }
    let mut out = Vec::new();
    while let Some(chunk) = answer.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(RelayError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
