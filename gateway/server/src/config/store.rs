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
    /// Most connections this process opens; absent: the adapter's (8 on SQLite, 10 on PostgreSQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// PostgreSQL: longest a statement runs before the server cancels it; SQLite: longest a
    /// write waits for another process's. Absent: the adapter's (5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout_ms: Option<u64>,
    /// The establishment's AD / OpenLDAP (`[directory.ldap]`, see docs/directory.md): the
    /// password of password + TOTP is checked there by bind, and its groups give roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<vigie_directory_ldap::LdapConfig>,
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
        if self.max_connections == Some(0) {
            err("directory.max_connections", "is 0: the directory needs at least 1 connection".into());
        }
        if self.statement_timeout_ms == Some(0) {
            err(
                "directory.statement_timeout_ms",
                "is 0: give the longest a statement may take, in milliseconds (e.g. 5000)".into(),
            );
        }
        if let Some(ldap) = &self.ldap {
            let roles = vigie_core::roles::Role::ALL.map(vigie_core::roles::Role::as_str);
            ldap.validate("directory.ldap", &roles, err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DirectoryConfig;

    fn problems(toml: &str) -> Vec<String> {
        let config: DirectoryConfig = toml::from_str(toml).expect("a [directory] section");
        let mut found = Vec::new();
        config.validate(&mut |key, msg| found.push(format!("`{key}`: {msg}")));
        found
    }

    #[test]
    fn zero_connections_or_zero_timeout_is_refused_naming_the_key() {
        let found = problems("url = \"sqlite::memory:\"\nmax_connections = 0\nstatement_timeout_ms = 0");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("`directory.max_connections`: is 0"), "{found:?}");
        assert!(found[1].starts_with("`directory.statement_timeout_ms`: is 0"), "{found:?}");
    }

    #[test]
    fn absent_options_keep_the_adapters_defaults() {
        let config: DirectoryConfig = toml::from_str("url = \"sqlite::memory:\"").expect("a [directory] section");
        assert!(problems("url = \"sqlite::memory:\"\nmax_connections = 4\nstatement_timeout_ms = 200").is_empty());
        assert_eq!((config.max_connections, config.statement_timeout_ms), (None, None));
    }
}
