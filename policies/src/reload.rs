//! A policy set that can be reloaded while the gateway runs (SIGHUP, file change): the new set is
//! validated first and swapped in atomically; an invalid change keeps the old set.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use vigie_core::policy::{Decision, PolicyContext, PolicyEngine, PolicyRequest, TokenPrincipal};

use crate::cedar::{CedarEngine, Fingerprint, PolicyError};

/// The Cedar engine of a policy directory, reloadable. Deciding reads the current set without a
/// lock; a reload builds and validates the new set aside, then swaps it in one atomic store, so a
/// decision sees the old set or the new one, never a mix.
pub struct ReloadablePolicies {
    dir: PathBuf,
    current: ArcSwap<CedarEngine>,
    /// Serialises reloads (SIGHUP and the poller may race), and remembers the last rejected
    /// change so that a poller reports it once, not on every tick.
    reloading: Mutex<Option<Fingerprint>>,
}

impl std::fmt::Debug for ReloadablePolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadablePolicies").field("dir", &self.dir).field("current", &*self.current.load()).finish()
    }
}

impl ReloadablePolicies {
    /// Loads `dir` (see [`CedarEngine::load`]); fails as it does, so that an invalid set stops start-up.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Self, PolicyError> {
        let dir = dir.into();
        let engine = CedarEngine::load(&dir)?;
        Ok(Self { dir, current: ArcSwap::from_pointee(engine), reloading: Mutex::new(None) })
    }

    /// Reads and validates the directory again and swaps the new set in. On error the old set
    /// stays in force and the error says why (file:line: reason, one per problem).
    pub fn reload(&self) -> Result<(), PolicyError> {
        let mut rejected = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        match CedarEngine::load(&self.dir) {
            Ok(engine) => {
                self.current.store(Arc::new(engine));
                *rejected = None;
                Ok(())
            }
            Err(e) => {
                *rejected = Fingerprint::of_dir(&self.dir).ok();
                Err(e)
            }
        }
    }

    /// For a poller: reloads when the files differ from those of the set in force and from the
    /// last rejected change. `Ok(true)`: a new set is in force; `Ok(false)`: nothing new;
    /// `Err`: a new change was rejected (the old set stays; reported once per change).
    pub fn reload_if_changed(&self) -> Result<bool, PolicyError> {
        let on_disk = Fingerprint::of_dir(&self.dir)?;
        {
            let rejected = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
            if on_disk == *self.current.load().fingerprint() || rejected.as_ref() == Some(&on_disk) {
                return Ok(false);
            }
        }
        self.reload().map(|()| true)
    }

    /// The directory the set is read from.
    pub fn source_dir(&self) -> &Path {
        &self.dir
    }

    /// What the set in force was read from (files, sizes, mtimes, content hashes).
    pub fn fingerprint(&self) -> Fingerprint {
        self.current.load().fingerprint().clone()
    }

    /// The ids of the policies in force, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        self.current.load().policy_ids().to_vec()
    }

    /// The set in force (a snapshot: later reloads do not change it).
    pub fn current(&self) -> Arc<CedarEngine> {
        self.current.load_full()
    }
}

impl PolicyEngine for ReloadablePolicies {
    fn decide(&self, request: &PolicyRequest<'_>) -> Decision {
        self.current.load().decide(request)
    }

    fn decide_token(&self, token: &TokenPrincipal, context: &PolicyContext) -> Decision {
        self.current.load().decide_token(token, context)
    }

    fn name(&self) -> &'static str {
        "cedar"
    }
}
