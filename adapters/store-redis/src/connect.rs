//! Where the store's connection goes: one Redis named by `store.url` (plain or `rediss://` with
//! its CA and client certificate), or the primary that Redis Sentinel names, asked again after a
//! failover.
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisError, TlsCertificates, TlsMode};
use vigie_core::store::StoreError;

use crate::RedisTimeouts;

/// The PEM files of a TLS connection to Redis (`rediss://`), already read: the operator's
/// files are read by the gateway, which names their keys when one is missing.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// CA certificates that Redis's certificate must chain to (`store.ca_file`); absent: the
    /// system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and its private key, for Redis's `tls-auth-clients yes`
    /// (`store.client_cert`, `store.client_key`).
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client_pem.is_some())
            .finish()
    }
}

impl RedisTls {
    fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self
                .client_pem
                .as_ref()
                .map(|(cert, key)| ClientTlsConfig { client_cert: cert.clone(), client_key: key.clone() }),
            root_cert: self.ca_pem.clone(),
        }
    }
}

/// Redis Sentinel (`[store.sentinel]`): the sentinels to ask which node is the primary of
/// `master_name`. The data nodes' credentials, database and TLS come from `store.url`.
#[derive(Clone)]
pub struct RedisSentinel {
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> …`).
    pub master_name: String,
    /// `host:port` of each sentinel; any one that answers is enough.
    pub nodes: Vec<String>,
    /// The sentinels' own `requirepass`, if they have one.
    pub password: Option<String>,
    /// Whether the sentinels are reached over TLS (with the same CA and client certificate as
    /// the data nodes).
    pub tls: bool,
}

impl std::fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSentinel")
            .field("master_name", &self.master_name)
            .field("nodes", &self.nodes)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// Everything [`crate::RedisStore::open`] needs.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]` or `rediss://…`. With [`RedisSentinel`], its
    /// host and port are not used: the sentinels name the primary.
    pub url: String,
    /// Prefix of every key (one deployment's keys apart from another's).
    pub key_prefix: String,
    /// How long to wait on Redis.
    pub timeouts: RedisTimeouts,
    /// CA and client certificate for `rediss://`.
    pub tls: RedisTls,
    /// Find the primary through Redis Sentinel.
    pub sentinel: Option<RedisSentinel>,
}

impl RedisOptions {
    /// Options for one Redis at `url`, without Sentinel, with the system's TLS roots.
    pub fn new(url: &str, key_prefix: &str) -> Self {
        Self {
            url: url.to_owned(),
            key_prefix: key_prefix.to_owned(),
            timeouts: RedisTimeouts::default(),
            tls: RedisTls::default(),
            sentinel: None,
        }
    }
}

/// The connection in use, and how many times it was replaced (a caller that saw an error on
/// generation `n` asks for a new one only if nobody has replaced `n` already).
pub(crate) struct Current {
    pub generation: u64,
    pub manager: ConnectionManager,
    /// `host:port` of the node, for error messages.
    pub node: String,
}

/// How long after a failed rediscovery the next one may ask the sentinels again: while they
/// still name a dead primary (the `down-after-milliseconds` window), every request would
/// otherwise queue behind one more attempt.
const REDISCOVERY_PAUSE: Duration = Duration::from_millis(200);

struct Discovery {
    client: SentinelClient,
    last_failure: Option<Instant>,
}

pub(crate) struct Link {
    current: RwLock<Arc<Current>>,
    sentinel: Option<tokio::sync::Mutex<Discovery>>,
    config: ConnectionManagerConfig,
}

impl Link {
    pub fn current(&self) -> Arc<Current> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn has_sentinel(&self) -> bool {
        self.sentinel.is_some()
    }

    /// Asks the sentinels for the primary again, after `seen` failed in a way a failover
    /// explains; returns whether a connection newer than `seen` is in place.
    pub async fn rediscover(&self, seen: u64) -> bool {
        let Some(discovery) = &self.sentinel else { return false };
        let mut discovery = discovery.lock().await;
        if self.current().generation != seen {
            return true;
        }
        if discovery.last_failure.is_some_and(|at| at.elapsed() < REDISCOVERY_PAUSE) {
            return false;
        }
        let found = match discovery.client.async_get_client().await {
            Ok(client) => {
                let node = node_of(&client);
                ConnectionManager::new_with_config(client, self.config.clone()).await.map(|m| (m, node))
            }
            Err(e) => Err(e),
        };
        match found {
            Ok((manager, node)) => {
                discovery.last_failure = None;
                let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                *current = Arc::new(Current { generation: seen + 1, manager, node });
                true
            }
            Err(_) => {
                discovery.last_failure = Some(Instant::now());
                false
            }
        }
    }
}

fn node_of(client: &Client) -> String {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}"),
        ConnectionAddr::Unix(path) => path.display().to_string(),
        _ => "?".to_owned(),
    }
}

/// Opens the link: to `options.url`, or to the primary the sentinels name.
pub(crate) async fn open(options: &RedisOptions, shown_url: &str) -> Result<Link, StoreError> {
    let timeouts = &options.timeouts;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeouts.connect))
        .set_response_timeout(Some(timeouts.response))
        .set_number_of_retries(timeouts.connect_retries)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(250));
    let info = options.url.as_str().into_connection_info().map_err(|e| {
        StoreError::Unavailable(format!(
            "`store.url` ({shown_url}) is not a Redis URL: {}: expected redis://[user:password@]host:port[/db] \
             or rediss://…",
            crate::one_line(&e)
        ))
    })?;
    let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    if !tls && (options.tls.ca_pem.is_some() || options.tls.client_pem.is_some()) {
        return Err(StoreError::Unavailable(format!(
            "`store.ca_file` or `store.client_cert` is set but `store.url` ({shown_url}) is not a rediss:// URL: \
             use rediss:// for TLS, or remove the TLS keys"
        )));
    }
    let Some(sentinel) = &options.sentinel else {
        let client = if tls { Client::build_with_tls(info, options.tls.certificates()) } else { Client::open(info) }
            .map_err(|e| crate::connect_error(shown_url, timeouts, &e))?;
        let node = node_of(&client);
        let manager = ConnectionManager::new_with_config(client, config.clone())
            .await
            .map_err(|e| crate::connect_error(shown_url, timeouts, &e))?;
        return Ok(Link {
            current: RwLock::new(Arc::new(Current { generation: 0, manager, node })),
            sentinel: None,
            config,
        });
    };
    let mut client = sentinel_client(sentinel, &info, tls, &options.tls)
        .map_err(|e| StoreError::Unavailable(format!("`store.sentinel`: {}", crate::one_line(&e))))?;
    let primary = client.async_get_client().await.map_err(|e| {
        StoreError::Unavailable(format!(
            "no sentinel of `store.sentinel.nodes` ({}) named a reachable primary for `{}`: {}: check \
             `store.sentinel.nodes`, `store.sentinel.master_name`, `store.sentinel.password` and that the \
             sentinels run",
            sentinel.nodes.join(", "),
            sentinel.master_name,
            crate::one_line(&e)
        ))
    })?;
    let node = node_of(&primary);
    let manager = ConnectionManager::new_with_config(primary, config.clone())
        .await
        .map_err(|e| crate::connect_error(&format!("{shown_url} (primary {node})"), timeouts, &e))?;
    Ok(Link {
        current: RwLock::new(Arc::new(Current { generation: 0, manager, node })),
        sentinel: Some(tokio::sync::Mutex::new(Discovery { client, last_failure: None })),
        config,
    })
}

fn sentinel_client(
    sentinel: &RedisSentinel,
    info: &redis::ConnectionInfo,
    tls: bool,
    files: &RedisTls,
) -> Result<SentinelClient, RedisError> {
    let mut nodes = Vec::with_capacity(sentinel.nodes.len());
    for node in &sentinel.nodes {
        let (host, port) = node
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.trim_matches(['[', ']']).to_owned(), port.parse::<u16>().ok()?)))
            .ok_or_else(|| {
                RedisError::from((
                    redis::ErrorKind::InvalidClientConfig,
                    "a node is not host:port",
                    format!("{node:?}: expected e.g. \"10.0.0.5:26379\""),
                ))
            })?;
        nodes.push(if sentinel.tls {
            ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host, port)
        });
    }
    let redis = info.redis_settings();
    let mut builder = SentinelClientBuilder::new(nodes, &sentinel.master_name, SentinelServerType::Master)?
        .set_client_to_redis_db(redis.db());
    if let Some(user) = redis.username() {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = redis.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_redis_certificates(files.certificates());
    }
    if let Some(password) = &sentinel.password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if sentinel.tls {
        builder = builder
            .set_client_to_sentinel_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_certificates(files.certificates());
    }
    builder.build()
}
