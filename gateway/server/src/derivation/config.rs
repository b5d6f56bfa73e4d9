//! `[derivation]`: the idNat derived from the RPPS (docs/identity-lifecycle.md, "Derivation from
//! the RPPS"): what a struck-off professional loses and the optional columns of the extraction.
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
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    }
}
