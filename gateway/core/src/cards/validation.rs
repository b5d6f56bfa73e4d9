//! The card validation port: is a presented CPS/CPE certificate chain one to accept, and who
//! does it name. The adapter (`vigie-igc-sante`) checks paths to IGC-Santé anchors and holds CRLs.
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::IdNat;

/// Validates CPS/CPE card certificate chains against the establishment's trust anchors and the
/// certificate revocation lists (CRLs) it holds. Shared by every request (`Arc<dyn CardValidation>`).
///
/// Guarantees:
/// - [`CardValidation::validate`] accepts a chain only when its first certificate (the card's)
///   has a path to a configured anchor with every signature verified and every issuer a CA
///   allowed to sign certificates within its path length (RFC 5280 §6.1.3, §4.2.1.9), every
///   certificate of the path is in date (§4.1.2.5), the card may authenticate (keyUsage
///   digitalSignature, extendedKeyUsage clientAuth when required, not a CA) and, when revocation
///   is checked, no certificate below the anchor is listed in its issuer's CRL.
/// - It does no I/O and never waits: it is the per-login hot path. A revoked card yields
///   [`CardRejection::Revoked`]; an unknown issuer [`CardRejection::UntrustedIssuer`]; an expired
///   or not yet valid certificate [`CardRejection::Expired`] / [`CardRejection::NotYetValid`].
/// - A CRL past its nextUpdate is still used within the configured grace
///   ([`RevocationCheck::WithinGrace`]); past the grace the card is refused
///   ([`CardRejection::RevocationUnknown`]) or, when the establishment chose so, accepted as
///   [`RevocationCheck::PastGraceAccepted`], which the caller audits. A CA whose CRL was never
///   obtained (unreachable source, empty disk cache) gives [`CardRejection::RevocationUnknown`].
/// - [`CardValidation::fetch_crls_for`] is the only call that waits on the network: each source
///   fetch is bounded by the configured fetch timeout; callers bound the whole call again.
///   A failed fetch keeps the CRL already held (and its disk copy).
#[async_trait]
pub trait CardValidation: Send + Sync {
    /// Validates a chain sent by a client: DER certificates, the card's first, then any
    /// intermediates. `now` is Unix seconds. Revocation comes from the CRLs already held.
    fn validate(&self, chain: &[Vec<u8>], now: i64) -> Result<ValidatedCard, CardRejection>;

    /// Fetches the CRLs of the CAs on this chain's path that have none yet. Whether every CA on
    /// the path now has one (the chain is then worth validating again).
    async fn fetch_crls_for(&self, chain: &[Vec<u8>]) -> bool;

    /// Subjects (DER `Name`) of the configured anchors, for a TLS CertificateRequest's
    /// `certificate_authorities`.
    fn anchor_subjects(&self) -> Vec<Vec<u8>>;

    /// Every CRL source and what it last gave, for readiness and metrics.
    fn crl_status(&self) -> Vec<CrlStatus>;

    /// Refreshes every CRL source now and then periodically, in the background, for the life of
    /// the process. Needs the async runtime.
    fn keep_crls_fresh(self: Arc<Self>);
}

/// Which kind of card the certificate belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    /// Carte de Professionnel de Santé: a person, identified by the `idNat_PS` in its CN.
    Cps,
    /// Carte de Personnel d'Établissement naming its holder (SN/GN present).
    CpeNominative,
    /// Carte de Personnel d'Établissement shared within a structure (no SN/GN).
    CpeNonNominative,
}

/// What the subject DN of a card certificate says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardSubject {
    /// CPS or CPE, per the adapter's reading of the subject DN.
    pub kind: CardKind,
    /// The holder's `idNat_PS`: always present for a CPS; for a CPE, present when the CN parses as one.
    pub idnat: Option<IdNat>,
    /// The CN as written in the certificate.
    pub cn: String,
    /// `SN`.
    pub surname: Option<String>,
    /// `GN`.
    pub given_name: Option<String>,
    /// `title`: the profession label (e.g. `Pharmacien`).
    pub title: Option<String>,
    /// `O`.
    pub organization: Option<String>,
    /// `OU`: the structure id on a CPE (on legacy GIP-CPS cards, a profession label).
    pub structure_id: Option<String>,
    /// `pseudonym` (CPE).
    pub pseudonym: Option<String>,
}

/// The holder and validity of a CPS/CPE authentication certificate, unverified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardIdentity {
    /// Who the card names, from its subject DN.
    #[serde(flatten)]
    pub subject: CardSubject,
    /// Extension 1.2.250.1.71.1.2.7, as the adapter decodes it.
    pub profession_code: Option<String>,
    /// Extension 1.2.250.1.71.4.2.5, as the adapter decodes it.
    pub specialty_code: Option<String>,
    /// The issuer DN in RFC 4514-like form, attributes in certificate order (e.g. `C=FR, O=ASIP-SANTE, …`).
    pub issuer_dn: String,
    /// The serial number's DER content bytes in lowercase hex, as encoded (a leading `00` is kept).
    pub serial_hex: String,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
}

/// How the revocation status of an accepted card was known. When several certificates of the path
/// were checked, the weakest answer is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RevocationCheck {
    /// Not listed in a CRL whose nextUpdate has not passed.
    Fresh {
        /// nextUpdate of the CRL, Unix seconds.
        next_update: i64,
    },
    /// Not listed in the newest CRL held, whose nextUpdate has passed but whose grace has not
    /// (the source could not be reached, or the CA is late).
    WithinGrace {
        /// nextUpdate of the CRL, Unix seconds.
        next_update: i64,
        /// End of the grace period, Unix seconds.
        grace_until: i64,
    },
    /// Not listed in the newest CRL held, past its grace; accepted because `after_grace = "accept"`.
    /// The caller should audit it.
    PastGraceAccepted {
        /// nextUpdate of the CRL, Unix seconds.
        next_update: i64,
    },
    /// Revocation is not checked (`check_revocation = false`).
    NotChecked,
}

impl RevocationCheck {
    /// Stable label for audit and metrics: `fresh`, `within_grace`, `past_grace_accepted`, `not_checked`.
    pub fn code(&self) -> &'static str {
        match self {
            RevocationCheck::Fresh { .. } => "fresh",
            RevocationCheck::WithinGrace { .. } => "within_grace",
            RevocationCheck::PastGraceAccepted { .. } => "past_grace_accepted",
            RevocationCheck::NotChecked => "not_checked",
        }
    }
}

/// A card certificate that chains to a trusted anchor, is in date, may authenticate, and is not revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidatedCard {
    /// Who the card names.
    pub identity: CardIdentity,
    /// How its revocation status was known.
    pub revocation: RevocationCheck,
    /// The subject DN of the trust anchor the path ends at.
    pub anchor: String,
}

/// Why a card certificate is refused. `Display` is a sentence for the person at the workstation;
/// [`CardRejection::code`] is the stable label for audit and metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardRejection {
    /// The bytes are not a usable certificate chain, or the card certificate names no holder.
    #[error("the card certificate cannot be read: {0}")]
    Malformed(String),
    /// No path to a configured anchor.
    #[error(
        "the card certificate is not issued by a trusted IGC-Santé authority ({issuer}): {detail}; \
         if it should be, add its CA to the card trust anchors"
    )]
    UntrustedIssuer {
        /// Issuer DN of the certificate whose issuer could not be found.
        issuer: String,
        /// What was tried.
        detail: String,
    },
    /// A certificate of the path is past its notAfter (RFC 5280 §4.1.2.5).
    #[error("{certificate} expired on {}", rfc3339(*not_after))]
    Expired {
        /// `the card certificate` or `the CA certificate '…'`.
        certificate: String,
        /// notAfter, Unix seconds.
        not_after: i64,
    },
    /// A certificate of the path is before its notBefore (RFC 5280 §4.1.2.5).
    #[error("{certificate} is not valid before {} (check the workstation's clock too)", rfc3339(*not_before))]
    NotYetValid {
        /// `the card certificate` or `the CA certificate '…'`.
        certificate: String,
        /// notBefore, Unix seconds.
        not_before: i64,
    },
    /// The leaf's extendedKeyUsage lacks id-kp-clientAuth (RFC 5280 §4.2.1.12).
    #[error(
        "the card certificate is not meant for logging in: its extended key usage lacks TLS client \
         authentication (1.3.6.1.5.5.7.3.2); use the card's authentication certificate"
    )]
    NoClientAuthEku,
    /// The leaf's keyUsage does not allow signing (RFC 5280 §4.2.1.3), or it is a CA certificate.
    #[error("the card certificate may not be used to authenticate: {0}")]
    BadKeyUsage(String),
    /// The card's certificate, or a CA certificate the client sent, is listed in its issuer's CRL.
    #[error(
        "{certificate} (serial {serial_hex}) was revoked on {}{}; the holder must use another card",
        rfc3339(*revoked_at),
        reason.as_ref().map(|r| format!(" (reason: {r})")).unwrap_or_default()
    )]
    Revoked {
        /// `the card certificate` or `the CA certificate '…'`.
        certificate: String,
        /// Serial of the revoked certificate, hex.
        serial_hex: String,
        /// revocationDate, Unix seconds.
        revoked_at: i64,
        /// reasonCode, when the CRL gives one.
        reason: Option<String>,
    },
    /// No usable CRL: none obtained yet, or past grace with `after_grace = "refuse"`.
    #[error("whether the card is revoked cannot be checked ({issuer}): {reason}")]
    RevocationUnknown {
        /// The CA whose CRL is missing.
        issuer: String,
        /// Why.
        reason: String,
    },
}

impl CardRejection {
    /// Stable label: `malformed`, `untrusted_issuer`, `expired`, `not_yet_valid`, `no_client_auth_eku`,
    /// `bad_key_usage`, `revoked`, `revocation_unknown`.
    pub fn code(&self) -> &'static str {
        match self {
            CardRejection::Malformed(_) => "malformed",
            CardRejection::UntrustedIssuer { .. } => "untrusted_issuer",
            CardRejection::Expired { .. } => "expired",
            CardRejection::NotYetValid { .. } => "not_yet_valid",
            CardRejection::NoClientAuthEku => "no_client_auth_eku",
            CardRejection::BadKeyUsage(_) => "bad_key_usage",
            CardRejection::Revoked { .. } => "revoked",
            CardRejection::RevocationUnknown { .. } => "revocation_unknown",
        }
    }
}

/// How a CRL source became known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrlOrigin {
    /// `crl_urls` in the configuration.
    Configured,
    /// The CRL distribution point extension (RFC 5280 §4.2.1.13) of a validated certificate.
    DistributionPoint,
}

/// One CRL source, for `/readyz` and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrlStatus {
    /// Where the CRL is fetched from.
    pub url: String,
    /// How the URL became known.
    pub origin: CrlOrigin,
    /// Issuer DN of the CRL this source last gave (or of the cards pointing to it, before any).
    pub issuer: Option<String>,
    /// thisUpdate of the CRL this source last gave, Unix seconds.
    pub this_update: Option<i64>,
    /// nextUpdate of the CRL this source last gave, Unix seconds.
    pub next_update: Option<i64>,
    /// Number of revoked certificates it lists.
    pub entries: Option<usize>,
    /// Last fetch attempt (or disk load), Unix seconds.
    pub last_attempt: Option<i64>,
    /// Last fetch (or disk load) that gave a usable CRL, Unix seconds.
    pub last_success: Option<i64>,
    /// Why the last attempt failed, `None` when it succeeded.
    pub last_error: Option<String>,
}

/// Unix seconds as RFC 3339 (UTC), for messages.
fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}
