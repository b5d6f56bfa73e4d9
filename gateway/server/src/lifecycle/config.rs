//! `[lifecycle]`: the HR feed run by `serve` (`[lifecycle.hr_feed]`) and the longest a
//! time-bounded person added by hand may stay (docs/identity-lifecycle.md).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The life cycle of people.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// The HR feed `serve` runs every `interval_secs` (absent: only `vigie users feed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hr_feed: Option<HrFeedConfig>,
    /// Longest stay of a person added by `vigie users add-temporary`, in days.
    #[serde(default = "default_max_temporary_days")]
    pub max_temporary_days: u32,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self { hr_feed: None, max_temporary_days: default_max_temporary_days() }
    }
}

/// `[lifecycle.hr_feed]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrFeedConfig {
    /// One file, or a drop directory: the newest file in it is the feed.
    pub path: PathBuf,
    /// Seconds between two runs.
    #[serde(default = "default_interval_secs")]
    pub interval_secs: u64,
    /// A feed that would make leavers of more than this percentage of the HR-fed population is
    /// refused whole (a truncated export must not disable the hospital).
    #[serde(default = "default_max_leavers_percent")]
    pub max_leavers_percent: f64,
    /// The file's format: `csv` (the columns of docs/identity-lifecycle.md).
    #[serde(default = "default_format")]
    pub format: String,
}

fn default_max_temporary_days() -> u32 {
    183
}

fn default_interval_secs() -> u64 {
    3600
}

fn default_max_leavers_percent() -> f64 {
    5.0
}

fn default_format() -> String {
    "csv".into()
}

impl LifecycleConfig {
    /// Checks the section; one call of `err` per bad key (`lifecycle.<key>`).
    pub fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if self.max_temporary_days == 0 {
            err("lifecycle.max_temporary_days", "expected at least 1 (days)".into());
        }
        let Some(feed) = &self.hr_feed else { return };
        if feed.interval_secs == 0 {
            err("lifecycle.hr_feed.interval_secs", "expected a positive number of seconds (e.g. 3600)".into());
        }
        if !(0.0..=100.0).contains(&feed.max_leavers_percent) {
            err(
                "lifecycle.hr_feed.max_leavers_percent",
                format!("expected a percentage from 0 to 100, found {}", feed.max_leavers_percent),
            );
        }
        if feed.format != "csv" {
            err(
                "lifecycle.hr_feed.format",
                format!("unknown format {:?}: `csv` (docs/identity-lifecycle.md)", feed.format),
            );
        }
        if feed.path.as_os_str().is_empty() {
            err("lifecycle.hr_feed.path", "expected the feed file, or the directory HR drops it in".into());
        }
    }
}
