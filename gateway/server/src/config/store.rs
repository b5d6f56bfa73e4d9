//! `[store]` and `[directory]`: which adapter backs the ephemeral store, and where the directory
//! is; the wiring builds them from these. Kept under `config/` until the wiring has its folder.
use std::path::PathBuf;

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
    /// `redis://[user:password@]host:port/db` or `rediss://…`. With `[store.sentinel]`, its
    /// scheme (TLS or not), credentials and database apply to the primary the sentinels name;
    /// its host and port are not used.
    pub url: Option<String>,
    pub key_prefix: String,
    /// `rediss://`: the CA certificates (PEM) Redis's certificate must chain to; absent: the
    /// system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// `rediss://` to a Redis with `tls-auth-clients yes`: this client's certificate chain (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of `client_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Find the primary through Redis Sentinel, and follow its failovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Embedded,
            url: None,
            key_prefix: "vigie:".into(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            sentinel: None,
        }
    }
}

/// `[store.sentinel]`: the sentinels that name the Redis primary (a section rather than a
/// `redis+sentinel://` URL: the redis crate does not parse one, and the nodes read better as a
/// list than packed into a URL).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> …`).
    pub master_name: String,
    /// `host:port` of each sentinel (26379 by default on their side); one that answers is enough.
    pub nodes: Vec<String>,
    /// The sentinels' own `requirepass`, if set (the data nodes' password is in `store.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Reach the sentinels over TLS, with `store.ca_file` and the client certificate.
    #[serde(default)]
    pub tls: bool,
    /// How long an operation waits for the sentinels to name a reachable primary after its own
    /// is gone, before it fails (milliseconds; absent: the store's, 5000). Above the sentinels'
    /// `down-after-milliseconds` plus about 2 s, a failover costs a delay rather than errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_wait_ms: Option<u64>,
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
    /// PostgreSQL: longest a request waits for a connection (the pool's, or a new one to a server
    /// that is down) before the directory answers "unavailable". Absent: the adapter's (5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// Whether `serve` runs on a schema that has migrations this version does not know (a newer
    /// version migrated it: a rolling upgrade, docs/operations.md). `vigie migrate` never does.
    #[serde(default = "default_accept_newer_schema")]
    pub accept_newer_schema: bool,
    /// The establishment's AD / OpenLDAP (`[directory.ldap]`, see docs/directory.md): the
    /// password of password + TOTP is checked there by bind, and its groups give roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<vigie_directory_ldap::LdapConfig>,
}

fn default_accept_newer_schema() -> bool {
    true
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
        let tls = self.url.as_deref().is_some_and(|u| u.starts_with("rediss://"));
        let sentinel_tls = self.sentinel.as_ref().is_some_and(|s| s.tls);
        for (key, set) in [("ca_file", &self.ca_file), ("client_cert", &self.client_cert)] {
            if set.is_some() && !tls && !sentinel_tls {
                err(&format!("store.{key}"), "is for TLS: use a rediss:// `store.url` or remove it".into());
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            err(
                "store.client_key",
                "`store.client_cert` and `store.client_key` go together: set both or neither".into(),
            );
        }
        if let Some(sentinel) = &self.sentinel {
            if sentinel.master_name.trim().is_empty() {
                err(
                    "store.sentinel.master_name",
                    "is empty: give the name the sentinels monitor (e.g. \"vigie\")".into(),
                );
            }
            if sentinel.nodes.is_empty() {
                err("store.sentinel.nodes", "is empty: list the sentinels as [\"host:26379\", …]".into());
            }
            if sentinel.failover_wait_ms.is_some_and(|ms| ms > 60_000) {
                err(
                    "store.sentinel.failover_wait_ms",
                    "is over 60000: requests would hang that long; lower the sentinels' down-after-milliseconds instead"
                        .into(),
                );
            }
            for node in &sentinel.nodes {
                if !node.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) {
                    err("store.sentinel.nodes", format!("{node:?} is not host:port (e.g. \"10.0.0.5:26379\")"));
                }
            }
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
        if self.connect_timeout_ms == Some(0) {
            err(
                "directory.connect_timeout_ms",
                "is 0: give the longest a request may wait for a connection, in milliseconds (e.g. 5000)".into(),
            );
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
    use super::{DirectoryConfig, StoreConfig};

    fn store_problems(toml: &str) -> Vec<String> {
        let config: StoreConfig = toml::from_str(toml).expect("a [store] section");
        let mut found = Vec::new();
        config.validate(&mut |key, msg| found.push(format!("`{key}`: {msg}")));
        found
    }

    #[test]
    fn redis_tls_and_sentinel_keys_are_checked_naming_the_key() {
        let found = store_problems(
            "kind = \"redis\"\nurl = \"redis://r:6379\"\nca_file = \"ca.pem\"\nclient_cert = \"c.pem\"\n\
             [sentinel]\nmaster_name = \"\"\nnodes = [\"s1:26379\", \"s2\"]\nfailover_wait_ms = 70000",
        );
        let keys: Vec<&str> = found.iter().map(|f| f.split(':').next().unwrap_or_default()).collect();
        assert_eq!(
            keys,
            [
                "`store.ca_file`",
                "`store.client_cert`",
                "`store.client_key`",
                "`store.sentinel.master_name`",
                "`store.sentinel.failover_wait_ms`",
                "`store.sentinel.nodes`"
            ],
            "{found:?}"
        );
        assert!(found[5].contains("\"s2\" is not host:port"), "{found:?}");
        assert!(
            store_problems(
                "kind = \"redis\"\nurl = \"rediss://:pw@vigie/0\"\nca_file = \"ca.pem\"\nclient_cert = \"c.pem\"\n\
                 client_key = \"k.pem\"\n[sentinel]\nmaster_name = \"vigie\"\nnodes = [\"10.0.0.5:26379\"]"
            )
            .is_empty()
        );
    }

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

    #[test]
    fn a_zero_connect_timeout_is_refused_naming_the_key() {
        let found = problems("url = \"postgres://vigie@db/vigie\"\nconnect_timeout_ms = 0");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("`directory.connect_timeout_ms`: is 0"), "{found:?}");
    }
}
