//! Wiring: the adapters chosen by configuration, the route table, the listeners.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, middleware::from_fn, web};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use vigie_core::audit::{AuditEvent, AuditSink};
use vigie_core::directory::{Directory, DirectoryError, Identity};
use vigie_core::policy::PolicyEngine;
use vigie_core::store::EphemeralStore;

use crate::config::{ClientConfig, Config, StoreKind};
use crate::keys::Keys;
use crate::secrets::SecretHash;

/// A registered client, ready to use.
pub struct Client {
    pub config: ClientConfig,
    pub secret: Option<SecretHash>,
    /// The inline `jwks`, parsed once (validated with the configuration).
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
}

impl Client {
    /// A registered client from its (validated) configuration.
    pub fn new(config: ClientConfig) -> Self {
        let secret = config.client_secret_hash.as_deref().and_then(SecretHash::parse);
        let jwks = config.jwks.clone().and_then(|j| serde_json::from_value(j).ok());
        Self { config, secret, jwks }
    }
}

/// Everything a handler needs. Cheap to clone; holds no per-user state.
pub struct AppState {
    pub config: Config,
    pub clients: HashMap<String, Client>,
    pub store: Arc<dyn EphemeralStore>,
    pub directory: Arc<dyn Directory>,
    /// FIDO2 security keys of each identity; the directory's database.
    pub fido2: Arc<dyn vigie_core::fido2::Fido2Credentials>,
    /// The WebAuthn relying party (`[webauthn]`, else the issuer's host and origin).
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// The attestation roots key registrations are verified against; `None` when
    /// `webauthn.attestation = "none"` (no key is then a hardware key).
    pub attestation_roots: Option<Arc<webauthn_rs::prelude::AttestationCaList>>,
    /// Account kind and employment status, for the policy engine; the directory's database.
    pub policy_attributes: Arc<dyn vigie_core::directory::PolicyAttributes>,
    /// The card registry (HR binding and life cycle); the directory's database.
    pub cards: Arc<dyn vigie_core::cards::CardRegistry>,
    /// Durable notes of access that must end (the directory's database).
    pub revocations: Arc<dyn vigie_core::directory::PendingRevocations>,
    /// Administrative roles of staff (the directory's database).
    pub roles: Arc<dyn vigie_core::roles::Roles>,
    /// Finding agents for the admin page and API.
    pub search: Arc<dyn vigie_core::roles::IdentitySearch>,
    /// Sponsorship: security answers, grants, e-mail addresses, colleagues (the directory's database).
    pub sponsorships: Arc<dyn vigie_core::sponsorship::Sponsorships>,
    /// Outgoing e-mail (`[mail]`): the sponsorship notices.
    pub mailer: Arc<vigie_mail::Mailer>,
    /// Card certificate validation, when `cards.trust` names anchors.
    pub card_validator: Option<Arc<vigie_igc_sante::CardValidator>>,
    pub keys: Arc<Keys>,
    pub policy: Arc<dyn PolicyEngine>,
    /// The policy set when it comes from `policy.dir`: reloaded on SIGHUP and on file change.
    pub policy_reload: Option<Arc<vigie_policies::ReloadablePolicies>>,
    pub audit: Arc<dyn AuditSink>,
    /// Outgoing HTTP: back-channel logout, client `jwks_uri`, the demo app.
    pub http: reqwest::Client,
    pub metrics: PrometheusHandle,
    /// `jwks_uri` documents of clients, cached briefly.
    pub client_jwks: moka_lite::Cache,
    /// Identities read for tokens and userinfo, reused for `directory.identity_cache_secs`.
    pub identities: IdentityCache,
    /// Principals for policy decisions, cached like identities.
    pub principals: TtlCache<vigie_core::policy::Principal>,
    /// `policy.zones`, parsed.
    pub zones: Vec<(String, Vec<crate::policy::Cidr>)>,
    /// Pro Santé Connect, when `psc.enabled`.
    pub psc: Option<Arc<crate::psc::PscRuntime>>,
    /// The DMP side (VIHF seal, relay), when `dmp.enabled`.
    pub dmp: Option<Arc<crate::dmp::Dmp>>,
    /// Circuit breakers of PSC, the CRL sources and the DMP: degraded mode (`[health]`).
    pub health: Arc<crate::health::Monitor>,
}

/// A small TTL map, bounded: past `MAX` entries the expired ones go, then all of them.
pub struct TtlCache<V>(std::sync::Mutex<HashMap<String, (std::time::Instant, V)>>);

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self(Default::default())
    }
}

impl<V: Clone> TtlCache<V> {
    const MAX: usize = 50_000;

    /// The value under `key`, if put less than `ttl` ago.
    pub fn get(&self, key: &str, ttl: Duration) -> Option<V> {
        self.0.lock().ok().and_then(|m| m.get(key).filter(|(t, _)| t.elapsed() < ttl).map(|(_, v)| v.clone()))
    }

    /// Keeps `value` under `key` (not at all when `ttl` is zero).
    pub fn put(&self, key: &str, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= Self::MAX {
                m.retain(|_, (t, _)| t.elapsed() < ttl);
                if m.len() >= Self::MAX {
                    m.clear();
                }
            }
            m.insert(key.to_owned(), (std::time::Instant::now(), value));
        }
    }
}

/// Identities read for tokens and userinfo: the directory is read at most once per identity and
/// period on the token path, instead of on every token.
#[derive(Default)]
pub struct IdentityCache(TtlCache<Arc<Identity>>);

impl IdentityCache {
    pub async fn get(&self, state: &AppState, id: &str) -> Result<Option<Arc<Identity>>, DirectoryError> {
        let ttl = Duration::from_secs(state.config.directory.identity_cache_secs);
        if let Some(hit) = self.0.get(id, ttl) {
            return Ok(Some(hit));
        }
        self.reload(state, id).await
    }

    /// The identity read now from the directory; the cache keeps it for the next readers.
    pub async fn reload(&self, state: &AppState, id: &str) -> Result<Option<Arc<Identity>>, DirectoryError> {
        let ttl = Duration::from_secs(state.config.directory.identity_cache_secs);
        let Some(identity) = state.directory.identity(id).await? else { return Ok(None) };
        let identity = Arc::new(identity);
        self.0.put(id, identity.clone(), ttl);
        Ok(Some(identity))
    }
}

pub type State = web::Data<AppState>;

impl AppState {
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.get(client_id)
    }

    /// Records an audit event, stamping its time.
    pub fn audit(&self, mut event: AuditEvent) {
        event.at = crate::rfc3339_now();
        self.audit.record(&event);
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.config.issuer)
    }
}

/// A tiny TTL cache for fetched client JWK Sets (a handful of entries).
pub mod moka_lite {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    #[derive(Default)]
    pub struct Cache(Mutex<HashMap<String, (Instant, String)>>);

    impl Cache {
        pub fn get(&self, key: &str, max_age: Duration) -> Option<String> {
            let g = self.0.lock().ok()?;
            g.get(key).filter(|(t, _)| t.elapsed() < max_age).map(|(_, v)| v.clone())
        }
        pub fn put(&self, key: &str, value: String) {
            if let Ok(mut g) = self.0.lock() {
                g.insert(key.to_owned(), (Instant::now(), value));
            }
        }
    }
}

pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the Prometheus recorder")
}

fn http_client(config: &Config) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &config.demo.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("demo CA certificate")?);
    }
    b.build().context("building the HTTP client")
}

/// Builds the state from a validated configuration: opens the directory and the store.
pub async fn build_state(config: Config, metrics: PrometheusHandle) -> anyhow::Result<AppState> {
    let store: Arc<dyn EphemeralStore> = match config.store.kind {
        StoreKind::Embedded => Arc::new(vigie_store_embedded::EmbeddedStore::new()),
        StoreKind::Redis => {
            let url = config.store.url.as_deref().unwrap_or_default();
            Arc::new(vigie_store_redis::RedisStore::connect(url, &config.store.key_prefix).await?)
        }
    };
    let directory = Arc::new(vigie_directory_sql::SqlDirectory::open(&config.directory.url).await?);
    let keys = Arc::new(Keys::load(&config.keys.file)?);
    let mailer = Arc::new(vigie_mail::Mailer::new(&config.mail).context("the mail relay: check `[mail]`")?);
    let audit = Arc::new(
        crate::audit::JsonLinesAudit::open(&config.audit.file)
            .with_context(|| format!("opening the audit file {:?}: check `audit.file`", config.audit.file))?,
    );
    let mut clients: HashMap<String, Client> =
        config.clients.iter().map(|c| (c.client_id.clone(), Client::new(c.clone()))).collect();
    // Vigie's own pages (card administration; sponsorship and security questions) sign people in
    // as built-in public clients, unless one is configured with the same id.
    let own = [crate::admin::page::builtin_client(&config), crate::sponsorship::sign_in::builtin_client(&config)];
    for builtin in own.into_iter().flatten() {
        clients.entry(builtin.client_id.clone()).or_insert_with(|| Client::new(builtin));
    }
    // An invalid policy set stops the start with one line per problem (file:line:column: reason).
    let (policy, policy_reload): (Arc<dyn PolicyEngine>, _) = match &config.policy.dir {
        Some(dir) => {
            let p = Arc::new(
                vigie_policies::ReloadablePolicies::load(dir)
                    .with_context(|| format!("loading the policy set {}: check `policy.dir`", dir.display()))?,
            );
            (p.clone(), Some(p))
        }
        None => (Arc::new(vigie_policies::CedarEngine::builtin().context("the built-in policy set")?), None),
    };
    let zones = crate::policy::parse_zones(&config.policy);
    let card_validator = if config.cards.trust.anchors.is_empty() && config.cards.trust.anchors_pem.is_empty() {
        None
    } else {
        let v = vigie_igc_sante::CardValidator::new(config.cards.trust.clone())
            .context("loading the card trust anchors: check `cards.trust`")?;
        Some(Arc::new(v))
    };
    let webauthn = Arc::new(crate::login::fido2::relying_party(&config)?);
    let attestation_roots = crate::login::attestation::trust_roots(&config.webauthn, crate::now())
        .map_err(|e| anyhow::anyhow!("`{}`: {}", e.key, e.message))?
        .map(Arc::new);
    if attestation_roots.as_ref().is_some_and(|r| r.is_empty()) {
        tracing::warn!(
            "`webauthn.attestation` is \"required\" and no attestation root is configured: security keys cannot be \
             registered until `webauthn.attestation_ca_files` or `webauthn.mds_blob_file` is set (or `attestation = \
             \"none\"`, where no key counts as a hardware key)"
        );
    }
    let psc = crate::psc::build(&config, directory.clone())?;
    let dmp = crate::dmp::build(&config)?;
    let watched = crate::health::watched(
        psc.is_some(),
        card_validator.is_some(),
        dmp.as_ref().is_some_and(|d| d.relay.is_some()),
    );
    let health = Arc::new(crate::health::Monitor::new(config.health.clone(), &watched, audit.clone()));
    Ok(AppState {
        http: http_client(&config)?,
        config,
        clients,
        store,
        fido2: directory.clone(),
        webauthn,
        attestation_roots,
        roles: directory.clone(),
        revocations: directory.clone(),
        search: directory.clone(),
        sponsorships: directory.clone(),
        mailer,
        cards: directory.clone(),
        policy_attributes: directory.clone(),
        directory,
        card_validator,
        keys,
        policy,
        policy_reload,
        audit,
        metrics,
        client_jwks: Default::default(),
        identities: Default::default(),
        principals: Default::default(),
        zones,
        psc,
        dmp,
        health,
    })
}

/// The route table of the main listeners (HTTPS, and plain HTTP for the proxies).
pub fn routes(cfg: &mut web::ServiceConfig, config: &Config) {
    use crate::{demo_app, login, oidc, ops};
    cfg.route("/.well-known/openid-configuration", web::get().to(oidc::discovery::configuration))
        .route("/jwks", web::get().to(oidc::discovery::jwks))
        .route("/authorize", web::get().to(oidc::authorize::get))
        .route("/authorize", web::post().to(oidc::authorize::post))
        .route("/token", web::post().to(oidc::token::token))
        .route("/userinfo", web::get().to(oidc::userinfo::userinfo))
        .route("/userinfo", web::post().to(oidc::userinfo::userinfo))
        .route("/introspect", web::post().to(oidc::introspect::introspect))
        .route("/revoke", web::post().to(oidc::revoke::revoke))
        .route("/logout", web::get().to(oidc::logout::get))
        .route("/logout", web::post().to(oidc::logout::post))
        .route("/login", web::get().to(login::page))
        .route("/login/password", web::post().to(login::password_totp::submit))
        .route("/login/cps", web::get().to(login::cps::login))
        .route("/login/sponsorship", web::post().to(login::sponsorship::submit))
        .route("/static/vigie.css", web::get().to(login::pages::stylesheet))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/", web::get().to(ops::home));
    if config.server.ops_listen.is_none() {
        cfg.configure(ops::probes);
    }
    cfg.configure(login::fido2::routes);
    cfg.configure(crate::account::routes);
    cfg.configure(crate::sponsorship::questions::routes);
    cfg.configure(crate::sponsorship::routes);
    demo_app::routes(cfg, &config.demo);
    cfg.configure(crate::admin::routes);
    cfg.configure(crate::psc::routes);
    cfg.configure(crate::dmp::routes);
}

/// Runs the HTTPS listener (and the plain one behind a proxy, and the ops one) until SIGTERM /
/// Ctrl-C.
/// `on_bound` runs once the listeners are bound, before the first request is served: what it
/// announces is then true.
pub async fn serve(state: AppState, on_bound: impl FnOnce(&AppState) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let tls = crate::tls::server_config(
        &state.config.server.tls_cert,
        &state.config.server.tls_key,
        crate::card::client_ca_subjects(&state),
    )?;
    let listen = state.config.server.listen;
    let plain = state.config.server.plain_http_listen;
    let max_body = state.config.server.max_body_bytes;
    let workers = state.config.server.workers;
    let state = web::Data::new(state);
    for warning in crate::admin::auth::token_warnings(&state.config.admin.tokens, crate::now()) {
        tracing::warn!("{warning}");
    }
    spawn_key_reloader(state.clone());
    spawn_revocation_sweeper(state.clone());
    crate::card::spawn_crl_refresher(&state);
    spawn_policy_reloader(state.clone());
    // Probes PSC (`psc.probe_interval_secs`), the CRL sources and the DMP; feeds the breakers.
    crate::health::spawn(state.clone());

    let s = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(web::FormConfig::default().limit(max_body))
            .app_data(web::JsonConfig::default().limit(max_body))
            .wrap(from_fn(crate::http::plain_http_only_from_proxies))
            .wrap(from_fn(crate::http::edge))
            .configure(|cfg| routes(cfg, &s.config))
            .default_service(web::to(crate::ops::not_found))
    })
    .on_connect(crate::tls::on_connect)
    // Without it, Nagle's algorithm holds a response written right after a TLS record the
    // client has not acknowledged yet (a session ticket at the end of a handshake) until the
    // client's delayed ACK, 40 ms later: measured on card logins, one new connection each.
    .tcp_nodelay(true)
    .shutdown_timeout(10)
    .client_request_timeout(Duration::from_secs(10))
    .bind_rustls_0_23(listen, tls)
    .with_context(|| format!("binding {listen}: check `server.listen` / --listen"))?;
    if workers > 0 {
        server = server.workers(workers);
    }
    if let Some(addr) = plain {
        server = server.bind(addr).with_context(|| format!("binding {addr}: check `server.plain_http_listen`"))?;
    }
    let ops = match state.config.server.ops_listen {
        Some(addr) => {
            let s = state.clone();
            let ops = HttpServer::new(move || {
                App::new()
                    .app_data(s.clone())
                    .wrap(from_fn(crate::http::edge))
                    .route("/healthz", web::get().to(crate::ops::healthz))
                    .configure(crate::ops::probes)
                    .default_service(web::to(crate::ops::not_found))
            })
            .workers(1)
            .shutdown_timeout(10)
            .bind(addr)
            .with_context(|| format!("binding {addr}: check `server.ops_listen`"))?;
            Some(ops.run())
        }
        None => None,
    };
    on_bound(&state)?;
    tracing::info!(%listen, issuer = %state.config.issuer, "vigie listening");
    let served = match ops {
        Some(ops) => futures_util::future::try_join(server.run(), ops).await.map(|_| ()),
        None => server.run().await,
    }
    .context("HTTP server");
    // The connections are drained: what they audited is queued; write it out before the end.
    state.audit.flush();
    served
}

/// Reloads the policy set on SIGHUP and when its files change (every `policy.reload_poll_secs`):
/// validated first, swapped atomically; an invalid change keeps the set in force and says why in
/// the log, an audit line and `vigie_policy_reload_total{result="rejected"}`.
fn spawn_policy_reloader(state: web::Data<AppState>) {
    let poll = state.config.policy.reload_poll_secs;
    actix_web::rt::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: the policy set reloads only when its files change");
            return;
        };
        let Some(policies) = state.policy_reload.clone() else {
            // The built-in set cannot change; SIGHUP must still not end the process.
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: the built-in policy set is in force (no `policy.dir`), nothing to reload");
            }
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(poll.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                _ = hup.recv() => Some(policies.reload().map(|()| true)),
                _ = tick.tick(), if poll > 0 => Some(policies.reload_if_changed()),
            };
            match result {
                Some(Ok(true)) => policy_reloaded(&state, &policies, None),
                Some(Err(e)) => policy_reloaded(&state, &policies, Some(e.to_string())),
                _ => {}
            }
        }
    });
}

fn policy_reloaded(state: &AppState, policies: &vigie_policies::ReloadablePolicies, error: Option<String>) {
    let ids = policies.policy_ids();
    let (result, outcome, reason) = match &error {
        None => {
            tracing::info!(policies = ids.len(), dir = %policies.source_dir().display(), "policy set reloaded");
            (
                "applied",
                vigie_core::audit::Outcome::Success,
                format!("{} policies in force: {}", ids.len(), ids.join(", ")),
            )
        }
        Some(e) => {
            tracing::error!(error = %e, "the changed policy set is invalid; the previous set stays in force");
            ("rejected", vigie_core::audit::Outcome::Failure, format!("changed set refused, previous kept: {e}"))
        }
    };
    metrics::counter!("vigie_policy_reload_total", "result" => result).increment(1);
    state.audit(AuditEvent {
        kind: Some(vigie_core::audit::AuditKind::PolicyReloaded),
        outcome: Some(outcome),
        object: Some(policies.source_dir().display().to_string()),
        reason: Some(reason),
        ..Default::default()
    });
}

/// Completes the endings of access still pending (a status set from the command line, an
/// ending that failed): at start, then every `session::SWEEP_SECS`.
fn spawn_revocation_sweeper(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(crate::session::SWEEP_SECS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            crate::session::complete_pending(&state).await;
        }
    });
}

fn spawn_key_reloader(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            match state.keys.reload_if_changed() {
                Ok(true) => tracing::info!("signing keys reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "signing keys not reloaded; the previous set stays in use"),
            }
        }
    });
}
