//! `[store]` and `[directory]`: which adapter backs the ephemeral store, and where the directory
//! is; the wiring builds them from these. Kept under `config/` until the wiring has its folder.
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In-process: one node only.
    #[default]
    Embedded,
    /// Redis, shared by replicas.
    Redis,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    /// `redis://[user:password@]host:port/db` or `rediss://…`.
    pub url: Option<String>,
    pub key_prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { kind: StoreKind::Embedded, url: None, key_prefix: "vigie:".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `sqlite:///var/lib/vigie/directory.db` (one machine) or
    /// `postgres://vigie@db.example/vigie?sslmode=verify-full` (replicas).
    pub url: String,
    /// How long identity claims read for tokens and userinfo are reused (seconds; 0: never).
    /// Logins always read the account itself.
    #[serde(default = "default_identity_cache_secs")]
    pub identity_cache_secs: u64,
}

fn default_identity_cache_secs() -> u64 {
    30
}

impl StoreConfig {
    pub(super) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        match (self.kind, &self.url) {
            (StoreKind::Redis, None) => err("store.url", "required when `store.kind` is \"redis\"".into()),
            (StoreKind::Redis, Some(u)) if !(u.starts_with("redis://") || u.starts_with("rediss://")) => {
                err("store.url", "expected a redis:// or rediss:// URL".into())
            }
            _ => {}
        }
    }
}

impl DirectoryConfig {
    pub(super) fn validate(&self, err: &mut dyn FnMut(&str, String)) {
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|scheme| self.url.starts_with(scheme)) {
            // The URL is not echoed: a PostgreSQL URL may carry a password.
            err("directory.url", "expected a sqlite: URL or a postgres:// URL".into());
        }
    }
}
