//! Building the state from a validated configuration: the adapters it chooses, the clients,
//! the policy set, the upstreams (PSC, DMP, mail, card validation) and their health.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusHandle};
use vigie_core::store::EphemeralStore;

use crate::config::{Config, StoreKind};
use crate::state::{AppState, Client, IdentityCache, OidcState, PolicyGate, Ports, Upstreams};
use crate::wiring::files::{self, Loaded};

/// The buckets of the audit trail's time histograms, in seconds.
const AUDIT_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];

pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        .context("metrics buckets")?
        // The trail's syncs and the answers' waits for them are counted against a target of
        // "p99 + under 1 ms" (issue 18): finer below a millisecond.
        .set_buckets_for_metric(Matcher::Prefix("vigie_audit_".into()), AUDIT_BUCKETS)
        .context("audit metrics buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")
}

/// What a process that serves or writes people (`serve`, `vigie directory sync`) does with a
/// schema newer than its migrations: `directory.accept_newer_schema`.
pub fn serving_newer(config: &Config) -> vigie_directory_sql::NewerSchema {
    if config.directory.accept_newer_schema {
        vigie_directory_sql::NewerSchema::Accept
    } else {
        vigie_directory_sql::NewerSchema::Refuse
    }
}

/// Opens the directory (`[directory]`) and brings its schema up to date, behind the migration
/// lock: what `serve` does at start and `vigie migrate` does alone. `newer`: what to do with a
/// schema newer than this version's migrations (`serve`: `directory.accept_newer_schema`;
/// `migrate`: refuse), said in the log when it is accepted.
pub async fn open_directory(
    config: &Config,
    newer: vigie_directory_sql::NewerSchema,
) -> anyhow::Result<vigie_directory_sql::SqlDirectory> {
    let options = vigie_directory_sql::OpenOptions {
        max_connections: config.directory.max_connections,
        statement_timeout: config.directory.statement_timeout_ms.map(Duration::from_millis),
        connect_timeout: config.directory.connect_timeout_ms.map(Duration::from_millis),
        newer_schema: newer,
    };
    let directory = vigie_directory_sql::SqlDirectory::open_with(&config.directory.url, &options).await?;
    let versions = directory.schema_versions();
    if versions.is_newer_than_known() {
        tracing::warn!(
            schema = versions.after,
            known = versions.known,
            "the directory's schema is newer than this version's migrations (a rolling upgrade): running on it; \
             upgrade this replica"
        );
    }
    Ok(directory)
}

/// The shared store of `[store]` (`tls`: its files, read by [`files::load`] or
/// [`files::store_tls`]): what `serve` opens, and what the CLI opens to take the sync's lease.
pub async fn open_store(config: &Config, tls: vigie_store_redis::RedisTls) -> anyhow::Result<Arc<dyn EphemeralStore>> {
    Ok(match config.store.kind {
        StoreKind::Embedded => Arc::new(vigie_store_embedded::EmbeddedStore::new()),
        StoreKind::Redis => {
            let url = config.store.url.as_deref().unwrap_or_default();
            let sentinel = config.store.sentinel.as_ref().map(|s| vigie_store_redis::RedisSentinel {
                master_name: s.master_name.clone(),
                nodes: s.nodes.clone(),
                password: s.password.clone(),
                tls: s.tls,
            });
            let mut options = vigie_store_redis::RedisOptions {
                tls,
                sentinel,
                ..vigie_store_redis::RedisOptions::new(url, &config.store.key_prefix)
            };
            if let Some(ms) = config.store.sentinel.as_ref().and_then(|s| s.failover_wait_ms) {
                options.timeouts.failover_wait = Duration::from_millis(ms);
            }
            Arc::new(vigie_store_redis::RedisStore::open(&options).await?)
        }
    })
}

/// Builds the state from a validated configuration: opens the directory and the store.
/// What `serve` reads from disk is read first ([`files::load`], as `check-config` reads it), so
/// that a bad file stops the start before the directory or the store is opened (the TLS pair is
/// read by `serve` itself, right after: the state is also built without a listener).
pub async fn build_state(config: Config, metrics: PrometheusHandle) -> anyhow::Result<AppState> {
    let mut loaded = files::load(&config, files::Mode::Serve)?;
    let store_tls = std::mem::take(&mut loaded.store_tls);
    let Loaded {
        keys, policy, policy_reload, http, card_validator, webauthn, attestation_roots, psc, dmp, mailer, ..
    } = loaded;
    let store = open_store(&config, store_tls).await?;
    let ldap = files::ldap_source(&config)?;
    let directory = Arc::new(open_directory(&config, serving_newer(&config)).await?);
    let mailer = Arc::new(mailer);
    let trail = Arc::new(crate::audit::open(&config.audit, &config.directory.url)?);
    let audit_status = trail.status();
    let audit = crate::audit_export::with_exports(trail, config.audit.syslog.as_ref())?;
    let mut clients: HashMap<String, Client> =
        config.clients.iter().map(|c| (c.client_id.clone(), Client::new(c.clone()))).collect();
    // Vigie's own pages (card administration; sponsorship and security questions) sign people in
    // as built-in public clients, unless one is configured with the same id.
    let own = [crate::admin::page::builtin_client(&config), crate::sponsorship::sign_in::builtin_client(&config)];
    for builtin in own.into_iter().flatten() {
        clients.entry(builtin.client_id.clone()).or_insert_with(|| Client::new(builtin));
    }
    let keys = Arc::new(keys);
    let webauthn = Arc::new(webauthn);
    let attestation_roots = attestation_roots.map(Arc::new);
    if attestation_roots.as_ref().is_some_and(|r| r.is_empty()) {
        tracing::warn!(
            "`webauthn.attestation` is \"required\" and no attestation root is configured: security keys cannot be \
             registered until `webauthn.attestation_ca_files` or `webauthn.mds_blob_file` is set (or `attestation = \
             \"none\"`, where no key counts as a hardware key)"
        );
    }
    let watched = crate::health::watched(
        psc.is_some(),
        card_validator.is_some(),
        dmp.as_ref().is_some_and(|d| d.relay.is_some()),
        ldap.is_some(),
    );
    let health = crate::health::Monitor::new(config.health.clone(), &watched, audit.clone());
    // Replicas share one breaker state per upstream; one node keeps its own, as it always did.
    let health =
        Arc::new(if config.store.kind == StoreKind::Redis { health.shared_through(store.clone()) } else { health });
    let ins_key = config.audit.ins_key()?;
    if ins_key.ephemeral {
        tracing::warn!(
            "`audit.ins_key_file` unset: patients in the audit trail are keyed for this process only and cannot be \
             matched after a restart (`vigie audit keygen --ins-key FILE`, docs/audit.md)"
        );
    }
    let audit = crate::state::Audit::new(audit).watching(audit_status).with_ins_key(ins_key);
    let principal_ttl = Duration::from_secs(config.directory.identity_cache_secs);
    let shared_store = config.store.kind == StoreKind::Redis;
    let context = crate::policy::ContextSource::new(&config.policy, health.clone());
    let policy_audit = audit.clone();
    let identities = IdentityCache::new(Duration::from_secs(config.directory.identity_cache_secs));
    // Role and SCIM writes tell every replica (`policy::view::Signalling`).
    let roles = Arc::new(crate::policy::view::Signalling::new(directory.clone(), store.clone()));
    let provisioning = Arc::new(crate::policy::view::Signalling::new(directory.clone(), store.clone()));
    let saml = crate::saml::SamlIdp::load(&config).await?;
    Ok(AppState {
        saml,
        audit_trail: Default::default(),
        config,
        audit,
        metrics,
        webauthn,
        attestation_roots,
        ports: Ports {
            store,
            fido2: directory.clone(),
            roles,
            revocations: directory.clone(),
            search: directory.clone(),
            sponsorships: directory.clone(),
            provisioning,
            lifecycle: directory.clone(),
            cards: directory.clone(),
            policy_attributes: directory.clone(),
            directory,
        },
        oidc: OidcState { clients, keys, client_jwks: Default::default() },
        policy: PolicyGate {
            engine: policy,
            reload: policy_reload,
            principals: Default::default(),
            identities,
            principal_ttl,
            standings: crate::policy::standing::Standings::new(principal_ttl, shared_store),
            context,
            audit: policy_audit,
        },
        upstreams: Upstreams { http, psc, dmp, mailer, card_validator, health, ldap },
    })
}
