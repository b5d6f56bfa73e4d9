//! The gateway's state: what every request may reach (configuration, ports, OIDC, policy gate,
//! upstreams) and the small caches it holds. Built once by `wiring::build`.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use metrics_exporter_prometheus::PrometheusHandle;
use vigie_core::audit::{AuditEvent, AuditSink};
use vigie_core::directory::{Directory, DirectoryError, Identity};
use vigie_core::policy::PolicyEngine;
use vigie_core::store::EphemeralStore;

use crate::config::{ClientConfig, Config};
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

/// Everything a request may reach, in parts: a handler takes the parts it needs ([`Part`]), a
/// service takes `&Ports`, `&OidcState`, `&PolicyGate`, `&Upstreams`, `&Audit`, `&Config` —
/// never the whole. Holds no per-user state.
pub struct AppState {
    pub config: Config,
    pub audit: Audit,
    pub metrics: PrometheusHandle,
    /// The WebAuthn relying party (`[webauthn]`, else the issuer's host and origin).
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// The attestation roots key registrations are verified against; `None` when
    /// `webauthn.attestation = "none"` (no key is then a hardware key).
    pub attestation_roots: Option<Arc<webauthn_rs::prelude::AttestationCaList>>,
    pub ports: Ports,
    pub oidc: OidcState,
    pub policy: PolicyGate,
    pub upstreams: Upstreams,
    /// The SAML IdP (`[saml]`), when set up.
    pub saml: crate::saml::SamlIdp,
    /// The audit trail the searches read (the console, `GET /admin/audit`).
    pub audit_trail: crate::audit::api::AuditTrail,
}

/// The store and the directory, the directory seen through each of its ports.
pub struct Ports {
    pub store: Arc<dyn EphemeralStore>,
    pub directory: Arc<dyn Directory>,
    /// FIDO2 security keys of each identity; the directory's database.
    pub fido2: Arc<dyn vigie_core::fido2::Fido2Credentials>,
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
    /// People and groups pushed through SCIM (the directory's database).
    pub provisioning: Arc<dyn vigie_core::provisioning::Provisioning>,
    /// The life cycle of people: the HR feed, end dates (the directory's database).
    pub lifecycle: Arc<vigie_directory_sql::SqlDirectory>,
}

/// The provider's own material: registered clients, signing keys, clients' fetched key sets.
pub struct OidcState {
    pub clients: HashMap<String, Client>,
    pub keys: Arc<Keys>,
    /// `jwks_uri` documents of clients, cached briefly.
    pub client_jwks: moka_lite::Cache,
}

/// The policy gate: the engine and what it decides on.
pub struct PolicyGate {
    pub engine: Arc<dyn PolicyEngine>,
    /// The policy set when it comes from `policy.dir`: reloaded on SIGHUP and on file change.
    pub reload: Option<Arc<vigie_policies::ReloadablePolicies>>,
    /// Principals for policy decisions, cached like identities.
    pub principals: TtlCache<vigie_core::policy::Principal>,
    /// Identities read for tokens and userinfo, reused for `directory.identity_cache_secs`.
    pub identities: IdentityCache,
    /// How long a principal is reused (`directory.identity_cache_secs`, as identities).
    pub principal_ttl: Duration,
    /// Accounts' standing, kept while the deployment's mark of access changes stays the same.
    pub standings: crate::policy::standing::Standings,
    /// What a decision's context is read from: `[policy]` (zones parsed) and degraded mode.
    pub context: crate::policy::ContextSource,
    /// Where decisions are audited.
    pub audit: Audit,
}

/// The outside systems the gateway calls, and their health.
pub struct Upstreams {
    /// Pro Santé Connect, when `psc.enabled`.
    pub psc: Option<Arc<crate::psc::PscRuntime>>,
    /// The DMP side (VIHF seal, relay), when `dmp.enabled`.
    pub dmp: Option<Arc<crate::dmp::Dmp>>,
    /// Outgoing e-mail (`[mail]`): the sponsorship notices.
    pub mailer: Arc<dyn vigie_core::mail::Mailer>,
    /// Card certificate validation, when `cards.trust` names anchors.
    pub card_validator: Option<Arc<dyn vigie_core::cards::CardValidation>>,
    /// Outgoing HTTP: back-channel logout, client `jwks_uri`, the demo app.
    pub http: reqwest::Client,
    /// Circuit breakers of PSC, the CRL sources, the DMP and the LDAP directory: degraded mode
    /// (`[health]`).
    pub health: Arc<crate::health::Monitor>,
    /// The establishment's AD / OpenLDAP, when `[directory.ldap]` is set: passwords are checked
    /// there by bind, its groups give roles, the sync reads it and the health probe binds to it
    /// (the SQL directory stays the store of the rest).
    pub ldap: Option<Arc<vigie_directory_ldap::LdapSource>>,
}

/// A small TTL map, bounded: past `MAX` entries the expired ones go, then all of them. A
/// generation counts the [`TtlCache::clear`]s (a change somewhere in the deployment): a value
/// read from the directory before a clear is not kept after it ([`TtlCache::put_since`]).
pub struct TtlCache<V>(std::sync::Mutex<(u64, TimedMap<V>)>);

/// Values by key, each with when it was put.
type TimedMap<V> = HashMap<String, (std::time::Instant, V)>;

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self(Default::default())
    }
}

impl<V: Clone> TtlCache<V> {
    const MAX: usize = 50_000;

    /// The value under `key`, if put less than `ttl` ago.
    pub fn get(&self, key: &str, ttl: Duration) -> Option<V> {
        self.0.lock().ok().and_then(|m| m.1.get(key).filter(|(t, _)| t.elapsed() < ttl).map(|(_, v)| v.clone()))
    }

    /// Keeps `value` under `key` (not at all when `ttl` is zero).
    pub fn put(&self, key: &str, value: V, ttl: Duration) {
        let generation = self.generation();
        self.put_since(key, value, ttl, generation);
    }

    /// The generation to give [`TtlCache::put_since`]: taken before reading what will be put.
    pub fn generation(&self) -> u64 {
        self.0.lock().map(|m| m.0).unwrap_or(u64::MAX)
    }

    /// Keeps `value` under `key` unless the cache was cleared since `generation`: the value may
    /// have been read before the change that cleared it.
    pub fn put_since(&self, key: &str, value: V, ttl: Duration, generation: u64) {
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut m) = self.0.lock() {
            if m.0 != generation {
                return;
            }
            let m = &mut m.1;
            if m.len() >= Self::MAX {
                m.retain(|_, (t, _)| t.elapsed() < ttl);
                if m.len() >= Self::MAX {
                    m.clear();
                }
            }
            m.insert(key.to_owned(), (std::time::Instant::now(), value));
        }
    }

    /// Drops every value (a status, a role or an identity changed somewhere: `policy::view`).
    pub fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.0 = m.0.wrapping_add(1);
            m.1.clear();
        }
    }
}

/// Identities read for tokens and userinfo: the directory is read at most once per identity and
/// period on the token path, instead of on every token.
pub struct IdentityCache {
    cache: TtlCache<Arc<Identity>>,
    ttl: Duration,
}

impl IdentityCache {
    /// A cache that keeps identities `ttl` (`directory.identity_cache_secs`; zero keeps none).
    pub fn new(ttl: Duration) -> Self {
        Self { cache: TtlCache::default(), ttl }
    }

    pub async fn get(&self, directory: &dyn Directory, id: &str) -> Result<Option<Arc<Identity>>, DirectoryError> {
        if let Some(hit) = self.cache.get(id, self.ttl) {
            return Ok(Some(hit));
        }
        self.reload(directory, id).await
    }

    /// The identity read now from the directory; the cache keeps it for the next readers.
    pub async fn reload(&self, directory: &dyn Directory, id: &str) -> Result<Option<Arc<Identity>>, DirectoryError> {
        let generation = self.cache.generation();
        let Some(identity) = directory.identity(id).await? else { return Ok(None) };
        let identity = Arc::new(identity);
        self.cache.put_since(id, identity.clone(), self.ttl, generation);
        Ok(Some(identity))
    }

    /// Drops every identity (`policy::view`).
    pub fn clear(&self) {
        self.cache.clear();
    }
}

pub type State = web::Data<AppState>;

/// The attestation roots of key registrations, as a handler takes them (`attestation_roots`).
pub type Attestation = Option<Arc<webauthn_rs::prelude::AttestationCaList>>;

/// The audit trail as handlers and services hold it: each event stamped with its time.
#[derive(Clone)]
pub struct Audit(Arc<dyn AuditSink>, Option<Arc<crate::audit::Status>>, Arc<crate::audit::ins::InsKey>);

impl Audit {
    pub fn new(sink: Arc<dyn AuditSink>) -> Self {
        Self(sink, None, Arc::new(crate::audit::ins::InsKey::ephemeral()))
    }

    /// With the file trail's writer state, for `/readyz`.
    pub fn watching(self, status: Arc<crate::audit::Status>) -> Self {
        Self(self.0, Some(status), self.2)
    }

    /// With the key of patient references (`audit.ins_key_file`).
    pub fn with_ins_key(self, key: crate::audit::ins::InsKey) -> Self {
        Self(self.0, self.1, Arc::new(key))
    }

    /// How a patient appears in audit lines: the keyed HMAC of their INS, never the INS itself
    /// nor its plain hash (`audit::ins`).
    pub fn patient_ref(&self, ins: &vigie_core::dmp::InsNir) -> String {
        self.2.reference(ins)
    }

    /// Whether the trail is being written (`None`: no writer of ours to watch).
    pub fn status(&self) -> Option<&crate::audit::Status> {
        self.1.as_deref()
    }

    /// Records an audit event, stamping its time; a security-relevant one is awaited by the
    /// request's answer (`audit::durable`).
    pub fn record(&self, mut event: AuditEvent) {
        event.at = crate::rfc3339_now();
        crate::audit::durable::record(&*self.0, &event);
    }

    /// Writes out what is queued (a graceful stop).
    pub fn flush(&self) {
        self.0.flush();
    }

    /// The sink itself, for a component that records on its own (the health monitor).
    pub fn sink(&self) -> Arc<dyn AuditSink> {
        self.0.clone()
    }
}

/// A part of the state a handler may take alone.
pub trait StatePart: 'static {
    fn of(state: &AppState) -> &Self;
}

macro_rules! state_part {
    ($($ty:ty => |$s:ident| $e:expr),* $(,)?) => {
        $(impl StatePart for $ty {
            fn of($s: &AppState) -> &Self {
                $e
            }
        })*
    };
}

state_part! {
    Config => |s| &s.config,
    Audit => |s| &s.audit,
    Ports => |s| &s.ports,
    OidcState => |s| &s.oidc,
    PolicyGate => |s| &s.policy,
    Upstreams => |s| &s.upstreams,
    webauthn_rs::Webauthn => |s| &s.webauthn,
    PrometheusHandle => |s| &s.metrics,
    Attestation => |s| &s.attestation_roots,
    crate::saml::SamlIdp => |s| &s.saml,
    crate::audit::api::AuditTrail => |s| &s.audit_trail,
}

/// One part of the state, as a handler extracts it (`ports: Part<Ports>`): the handler's
/// signature says what it reaches, and it reaches nothing else. Costs a reference count.
pub struct Part<T: StatePart>(web::Data<AppState>, PhantomData<fn() -> T>);

impl<T: StatePart> Part<T> {
    /// The part of a state held outside a request (a background task).
    pub fn of(state: &web::Data<AppState>) -> Self {
        Part(state.clone(), PhantomData)
    }
}

impl<T: StatePart> Clone for Part<T> {
    fn clone(&self) -> Self {
        Part(self.0.clone(), PhantomData)
    }
}

impl<T: StatePart> Deref for Part<T> {
    type Target = T;
    fn deref(&self) -> &T {
        T::of(&self.0)
    }
}

impl<T: StatePart> FromRequest for Part<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Part::of_request(req))
    }
}

impl<T: StatePart> Part<T> {
    /// The part of the state registered with the application serving `req`.
    pub fn of_request(req: &HttpRequest) -> Result<Self, actix_web::Error> {
        match req.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(Part::of(state)),
            None => {
                tracing::error!("the gateway's state is not registered with the application");
                Err(actix_web::error::ErrorInternalServerError("internal error"))
            }
        }
    }
}

/// A handler's share of the state as one extractor, a struct of [`Part`]s: for a handler that
/// reaches more parts than a signature reads well with.
macro_rules! parts {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($fvis:vis $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone)]
        $vis struct $name {
            $($fvis $field: $crate::state::Part<$ty>),*
        }

        impl actix_web::FromRequest for $name {
            type Error = actix_web::Error;
            type Future = std::future::Ready<Result<Self, Self::Error>>;

            fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
                let parts = || Ok(Self { $($field: $crate::state::Part::of_request(req)?),* });
                std::future::ready(parts())
            }
        }
    };
}
pub(crate) use parts;

impl AppState {
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.oidc.clients.get(client_id)
    }

    /// Records an audit event, stamping its time.
    pub fn audit(&self, event: AuditEvent) {
        self.audit.record(event);
    }

    pub fn endpoint(&self, path: &str) -> String {
        self.config.endpoint(path)
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
