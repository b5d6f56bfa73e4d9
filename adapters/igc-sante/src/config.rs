//! What an operator configures for card validation: trust anchors, CRL sources and cache, and what
//! to do when revocation cannot be known. One typed struct, read from the gateway's `[cards]` section.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Trust anchors and revocation settings for card certificates.
///
/// Every field has a default, so an empty section is valid except that at least one anchor (file
/// or inline PEM) is required by [`crate::CardValidator::new`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// PEM files of trusted CA certificates (IGC-Santé roots and/or the intermediate CAs that issue
    /// cards, e.g. `AC IGC-SANTE FORT PERSONNES`). A path ends at the first anchor reached, so
    /// configuring the intermediates is enough, and is what lets their CRLs load from the disk cache
    /// at start. Default: none.
    #[serde(default)]
    pub anchors: Vec<PathBuf>,
    /// The same, as PEM text (one or more certificates per string). Default: none.
    #[serde(default)]
    pub anchors_pem: Vec<String>,
    /// Refuse a card whose certificate lacks the TLS client-authentication EKU (1.3.6.1.5.5.7.3.2).
    /// Default: `true`.
    #[serde(default = "yes")]
    pub require_client_auth_eku: bool,
    /// Check revocation by CRL. `false` accepts every card as not revoked, and says so in
    /// [`crate::RevocationCheck::NotChecked`]. Default: `true`.
    #[serde(default = "yes")]
    pub check_revocation: bool,
    /// Directory where fetched CRLs are kept (DER, one file per source URL, written atomically), so
    /// that a restart without network still validates cards. Default: none (memory only).
    #[serde(default)]
    pub crl_cache_dir: Option<PathBuf>,
    /// CRL URLs fetched in addition to those learned from cards' CRL distribution points (http or
    /// https). The issuer of each is read from the CRL and must be a trusted CA. Default: none.
    #[serde(default)]
    pub crl_urls: Vec<String>,
    /// Seconds after a CRL's `nextUpdate` during which it is still used when no newer one could be
    /// fetched. Default: 86400 (one day).
    #[serde(default = "default_grace_secs")]
    pub grace_secs: u64,
    /// What happens after the grace period when no newer CRL could be fetched. Default: `refuse`.
    #[serde(default)]
    pub after_grace: AfterGrace,
    /// Seconds between two refreshes of every CRL source. Default: 3600.
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
    /// Timeout of one CRL download, in milliseconds. Default: 2000.
    #[serde(default = "default_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
}

/// What to do with a card when its issuer's CRL is older than `nextUpdate` + grace.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AfterGrace {
    /// Refuse the card (`revocation_unknown`).
    #[default]
    Refuse,
    /// Accept it; the result says [`crate::RevocationCheck::PastGraceAccepted`] so the caller audits it.
    Accept,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            anchors: Vec::new(),
            anchors_pem: Vec::new(),
            require_client_auth_eku: true,
            check_revocation: true,
            crl_cache_dir: None,
            crl_urls: Vec::new(),
            grace_secs: default_grace_secs(),
            after_grace: AfterGrace::Refuse,
            refresh_secs: default_refresh_secs(),
            fetch_timeout_ms: default_fetch_timeout_ms(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_grace_secs() -> u64 {
    86_400
}

fn default_refresh_secs() -> u64 {
    3_600
}

fn default_fetch_timeout_ms() -> u64 {
    2_000
}
