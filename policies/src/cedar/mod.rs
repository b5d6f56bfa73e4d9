//! The Cedar policy engine: loads a policy set and its schema, validates the set in strict mode,
//! and answers [`PolicyRequest`]s with the ids of the deciding policies and, when refused, the MIE
//! with which a fresh login would be allowed (step-up). This file holds the engine's type; its
//! parts: `source` (reading a set, errors), `compile`, `entities`, `decide` and `cache`.

mod cache;
mod compile;
mod decide;
mod entities;
mod source;

pub use source::{BUILTIN_POLICIES, BUILTIN_SCHEMA, FileStamp, Fingerprint, PolicyError, PolicySource, Problem};

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use cedar_policy::PolicySet;
use cedar_policy_core::ast::Value;
use vigie_core::policy::{ALL_MIE, Decision};

use compile::Compiled;
use entities::Names;

/// A validated Cedar policy set, ready to decide. Cheap to share (`Arc`); immutable once loaded.
pub struct CedarEngine {
    /// The whole validated set.
    policies: PolicySet,
    /// Per action (in `Action::ALL` order), the policies whose scope can match it, compiled.
    slices: [Vec<Compiled>; 5],
    ids: Vec<String>,
    source: PolicySource,
    fingerprint: Fingerprint,
    names: Names,
    /// Per action, whether a policy of its slice reads `context.authentication.age_secs`.
    reads_age: [bool; 5],
    /// The `context.authentication` of a login with each of [`ALL_MIE`] made at the time of the
    /// request (age 0): the step-up candidates, built once.
    fresh: [Value; ALL_MIE.len()],
    /// Decisions of this set, by everything they depend on (see [`CedarEngine::cache_key`]).
    /// A reload builds a new engine, hence a new cache: a decision of an old set is never served.
    /// Seeded per process (foldhash's random state): fast, and keys cannot be chosen to collide.
    cache: Mutex<HashMap<Vec<u8>, Decision, foldhash::fast::RandomState>>,
}

impl fmt::Debug for CedarEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CedarEngine").field("source", &self.source).field("policies", &self.ids).finish()
    }
}

impl CedarEngine {
    /// The validated Cedar policy set (ids are the `@id` annotations), e.g. to list its texts.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    /// The ids (`@id`) of the loaded policies, sorted.
    pub fn policy_ids(&self) -> &[String] {
        &self.ids
    }

    /// Where the set came from.
    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The files (with sizes, mtimes and content hashes) the set was read from.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
}

/// The built-in engine, loaded once for the unit tests of every part.
#[cfg(test)]
fn builtin() -> &'static CedarEngine {
    static E: std::sync::OnceLock<CedarEngine> = std::sync::OnceLock::new();
    E.get_or_init(|| CedarEngine::builtin().expect("built-in"))
}
