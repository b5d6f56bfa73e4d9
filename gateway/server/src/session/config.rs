//! `[session]`: how long an SSO session lives.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// An SSO session unused for this long ends (seconds).
    pub idle_timeout_secs: u64,
    /// An SSO session ends this long after login whatever its use (seconds).
    pub absolute_timeout_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        // A shift is 12 hours; a workstation left alone for 30 minutes is someone else's.
        Self { idle_timeout_secs: 30 * 60, absolute_timeout_secs: 12 * 3600 }
    }
}

impl SessionConfig {
    /// The keys that must be positive, with their values.
    pub(crate) fn counts(&self) -> [(&'static str, u64); 2] {
        [
            ("session.idle_timeout_secs", self.idle_timeout_secs),
            ("session.absolute_timeout_secs", self.absolute_timeout_secs),
        ]
    }

    pub(crate) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        if self.idle_timeout_secs > self.absolute_timeout_secs {
            err("session.idle_timeout_secs", "must not exceed `session.absolute_timeout_secs`".into());
        }
    }
}
