//! `[derivation]`: the idNat derived from the RPPS (docs/identity-lifecycle.md, "Derivation from
//! the RPPS"): what a struck-off professional loses, the optional columns of the extraction, and
//! the FHIR API of the Annuaire Santé as a source (annuaire-sante.md §4).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a reload does to a confirmed professional the RPPS no longer lists active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStruckOff {
    /// Flagged and audited only.
    #[default]
    Flag,
    /// Flagged, audited, and no VIHF is issued for them any more (the DMP refused).
    DenyDmp,
}

/// The derivation of the idNat.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivationConfig {
    /// See [`OnStruckOff`].
    #[serde(default)]
    pub on_struck_off: OnStruckOff,
    /// Names of the optional columns: the public extraction has none of them; the restricted one
    /// (ANS habilitation) has a birth date, and the public documentation names no activity-date
    /// column, so they are configurable.
    #[serde(default)]
    pub columns: OptionalColumns,
    /// Base of the Annuaire Santé FHIR API (`https://gateway.api.esante.gouv.fr/fhir/v2`), for
    /// `vigie rpps lookup` and for `vigie rpps propose` when no extraction is loaded. Plain `http`
    /// only to a loopback address (a local relay): the API key must not cross a network in clear.
    #[serde(default)]
    pub fhir_url: Option<String>,
    /// File holding the API key (Gravitee portal `portal.api.esante.gouv.fr`); never logged.
    #[serde(default)]
    pub fhir_api_key_file: Option<PathBuf>,
    /// Header the key goes in: `ESANTE-API-KEY` for the real API (annuaire-sante.md §4).
    #[serde(default = "default_api_key_header")]
    pub fhir_api_key_header: String,
    /// PEM CA certificates trusted for the API instead of the system's (a TLS-inspecting proxy).
    #[serde(default)]
    pub fhir_ca_file: Option<PathBuf>,
    /// Seconds one request may take; the API's own limit is 30 s (annuaire-sante.md §4).
    #[serde(default = "default_fhir_timeout")]
    pub fhir_timeout_secs: u64,
    /// Seconds between two `vigie rpps refresh` run by `serve` (one replica at a time, a lease);
    /// absent: only from the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval_secs: Option<u64>,
}

impl Default for DerivationConfig {
    fn default() -> Self {
        Self {
            on_struck_off: OnStruckOff::default(),
            columns: OptionalColumns::default(),
            fhir_url: None,
            fhir_api_key_file: None,
            fhir_api_key_header: default_api_key_header(),
            fhir_ca_file: None,
            fhir_timeout_secs: default_fhir_timeout(),
            refresh_interval_secs: None,
        }
    }
}

fn default_api_key_header() -> String {
    "ESANTE-API-KEY".into()
}

fn default_fhir_timeout() -> u64 {
    35
}

/// Optional columns of the extraction, by header name.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionalColumns {
    /// Birth date (restricted extraction).
    #[serde(default = "default_birth_date")]
    pub birth_date: String,
    /// Start of an activity.
    #[serde(default = "default_activity_start")]
    pub activity_start: String,
    /// End of an activity (an end in the past: the activity is over).
    #[serde(default = "default_activity_end")]
    pub activity_end: String,
}

impl Default for OptionalColumns {
    fn default() -> Self {
        Self {
            birth_date: default_birth_date(),
            activity_start: default_activity_start(),
            activity_end: default_activity_end(),
        }
    }
}

fn default_birth_date() -> String {
    "Date de naissance".into()
}

fn default_activity_start() -> String {
    "Date de début d'activité".into()
}

fn default_activity_end() -> String {
    "Date de fin d'activité".into()
}

impl DerivationConfig {
    /// Checks the section; one call of `err` per bad key (`derivation.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        for (key, name) in [
            ("derivation.columns.birth_date", &self.columns.birth_date),
            ("derivation.columns.activity_start", &self.columns.activity_start),
            ("derivation.columns.activity_end", &self.columns.activity_end),
        ] {
            if name.trim().is_empty() || name.contains('|') {
                err(key, format!("expected a column name of the extraction's header, found {name:?}"));
            }
        }
        if let Some(url) = &self.fhir_url {
            match url::Url::parse(url) {
                Err(e) => err("derivation.fhir_url", format!("expected the API's base URL, {url:?} is not a URL: {e}")),
                Ok(u) if u.scheme() == "https" => {}
                Ok(u) if u.scheme() == "http" && super::fhir::loopback(&u) => {}
                Ok(_) => err(
                    "derivation.fhir_url",
                    format!("expected https:// (http only to a loopback address), found {url:?}"),
                ),
            }
            if self.fhir_api_key_file.is_none() {
                err(
                    "derivation.fhir_api_key_file",
                    "required with derivation.fhir_url: the Annuaire Santé API wants a key".into(),
                );
            }
        }
        if reqwest::header::HeaderName::from_bytes(self.fhir_api_key_header.as_bytes()).is_err() {
            err(
                "derivation.fhir_api_key_header",
                format!("expected an HTTP header name, found {:?}", self.fhir_api_key_header),
            );
        }
        if !(1..=300).contains(&self.fhir_timeout_secs) {
            err("derivation.fhir_timeout_secs", format!("expected 1 to 300 seconds, found {}", self.fhir_timeout_secs));
        }
    }
}
