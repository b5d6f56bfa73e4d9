//! The Redis [`EphemeralStore`], shared by every Vigie replica: one Redis (≥ 6.2, for `GETDEL`)
//! holds the sessions, login flows, codes and counters, under a per-deployment key prefix.
//!
//! Each operation is one atomic Redis command or script, so the port's exactly-once guarantees
//! hold across replicas. The connection reconnects by itself; while Redis is down, operations
//! fail within bounded time (see [`RedisTimeouts`]) with [`StoreError::Unavailable`] rather
//! than hang, so `/readyz` can report it. TLS (`rediss://`) and Redis Sentinel: [`RedisOptions`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Script};
use vigie_core::store::{EphemeralStore, StoreError};

mod connect;
pub use connect::{RedisOptions, RedisSentinel, RedisTls};

/// Increments a counter and gives it its TTL only when this increment created it, so the
/// window of a rate limit is fixed at its first hit. A counter found without a TTL (written by
/// something else) gets one rather than living forever.
const INCR_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
";

/// Adds a member to a set and restarts the set's TTL. A script rather than `MULTI`: when
/// `SADD` fails (the key holds another type), `PEXPIRE` must not run either.
const ADD_TO_SET_SCRIPT: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// How long a [`RedisStore`] waits on Redis before reporting it unavailable.
///
/// With the defaults, an operation against a Redis that is down fails in under 2 s when nothing
/// answers (3 attempts of 500 ms plus backoff), and at once when the connection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// The time allowed to open one connection.
    pub connect: Duration,
    /// The time allowed for the answer to one command.
    pub response: Duration,
    /// How many times a failed connection is retried, after a short backoff, before the
    /// operation waiting on it fails.
    pub connect_retries: usize,
    /// With Sentinel: how long an operation waits for the sentinels to name a reachable primary
    /// after its own is gone, before it fails. The sentinels take `down-after-milliseconds`
    /// plus the election (about 3 s with 1 s); a failover shorter than this wait costs a delay,
    /// not an error.
    pub failover_wait: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(500),
            response: Duration::from_millis(500),
            connect_retries: 2,
            failover_wait: Duration::from_secs(5),
        }
    }
}

/// How often an operation waiting for a failover asks again (the sentinels are asked at most
/// every 200 ms whatever the number of waiting operations: `connect::Link::rediscover`).
const FAILOVER_POLL: Duration = Duration::from_millis(100);

/// Whether an operation may be sent again after a connection dropped with it in flight (Redis
/// may have run it): yes for what gives the same result twice, no for `take`, `put_if_absent`
/// and `incr`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Again {
    Idempotent,
    Once,
}

/// An [`EphemeralStore`] in Redis, shared by every replica connected to the same server with
/// the same key prefix.
#[derive(Clone)]
pub struct RedisStore {
    link: Arc<connect::Link>,
    key_prefix: String,
    /// The URL with its credentials masked, for error messages.
    shown_url: String,
    failover_wait: Duration,
    incr: Script,
    add_to_set: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shown_url)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port[/db]`) with the
    /// default [`RedisTimeouts`]; every key is stored under `key_prefix`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the URL is invalid, Redis cannot be reached or refuses
    /// the credentials; the message never contains the password.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<RedisStore, StoreError> {
        Self::connect_with(url, key_prefix, &RedisTimeouts::default()).await
    }

    /// [`RedisStore::connect`] with explicit timeouts.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`].
    pub async fn connect_with(url: &str, key_prefix: &str, timeouts: &RedisTimeouts) -> Result<RedisStore, StoreError> {
        Self::open(&RedisOptions { timeouts: timeouts.clone(), ..RedisOptions::new(url, key_prefix) }).await
    }

    /// Connects as `options` say: one Redis, over TLS with its CA and client certificate for
    /// `rediss://`, or the primary Redis Sentinel names.
    ///
    /// With Sentinel, an operation that meets a demoted primary (`READONLY`) or a connection
    /// that failed asks the sentinels again for the primary; the operation is tried once more on
    /// the new one only when Redis cannot have run it (refused, `READONLY`), so a `take` is never
    /// run twice.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`]; an untrusted Redis certificate names `store.ca_file`, and no
    /// reachable primary names `store.sentinel`.
    pub async fn open(options: &RedisOptions) -> Result<RedisStore, StoreError> {
        let shown_url = redact(&options.url);
        let link = connect::open(options, &shown_url).await?;
        let store = RedisStore {
            link: Arc::new(link),
            key_prefix: options.key_prefix.clone(),
            shown_url,
            failover_wait: options.timeouts.failover_wait,
            incr: Script::new(INCR_SCRIPT),
            add_to_set: Script::new(ADD_TO_SET_SCRIPT),
        };
        store.ping().await?;
        Ok(store)
    }

    /// The node the store writes to (`host:port`): with Sentinel, the primary it last found.
    pub fn node(&self) -> String {
        self.link.current().node.clone()
    }

    fn key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.key_prefix.len() + key.len());
        full.extend_from_slice(self.key_prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    async fn run<T: FromRedisValue + Send>(&self, key: &str, again: Again, cmd: &Cmd) -> Result<T, StoreError> {
        self.with_connection(key, &command_name(cmd), again, |mut connection| async move {
            cmd.query_async(&mut connection).await
        })
        .await
    }

    /// Runs `op` on the current connection. With Sentinel, an error a failover explains leads
    /// to asking the sentinels again, and `op` runs again on the primary they name when Redis
    /// cannot have run it, or when running it twice does no harm ([`Again`]); while the
    /// sentinels still name an unreachable primary, for up to [`RedisTimeouts::failover_wait`].
    async fn with_connection<T, F, Fut>(&self, key: &str, command: &str, again: Again, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let deadline = Instant::now() + self.failover_wait;
        loop {
            let current = self.link.current();
            // Cloning the manager clones an `Arc`: every call shares the one multiplexed connection.
            let e = match op(current.manager.clone()).await {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !(self.link.has_sentinel() && failover_explains(&e)) {
                return Err(self.command_error(key, command, &e));
            }
            // Not run by Redis: a demoted primary refuses writes before running them, a refused
            // connection carried nothing, and a broken pipe is a write to a connection Redis had
            // already closed (a demoted primary closes its clients'). A connection dropped after
            // the command was sent may have run it: only a command that may run twice is sent
            // again (a `take` must not be).
            let not_run = e.code() == Some("READONLY") || e.is_connection_refusal() || broken_pipe(&e);
            let switched = self.link.rediscover(current.generation).await;
            if !(not_run || again == Again::Idempotent) || Instant::now() >= deadline {
                return Err(self.command_error(key, command, &e));
            }
            if !switched {
                tokio::time::sleep(FAILOVER_POLL).await;
            }
        }
    }

    fn command_error(&self, key: &str, command: &str, e: &RedisError) -> StoreError {
        let url = if self.link.has_sentinel() {
            &format!("{} (primary {})", self.shown_url, self.link.current().node)
        } else {
            &self.shown_url
        };
        let detail = one_line(e);
        // A key reused for another kind of data: the same error as the embedded store gives.
        if e.code() == Some("WRONGTYPE") || detail.contains("not an integer") {
            return StoreError::Corrupt {
                key: key.to_owned(),
                reason: format!("the key holds another kind of data ({detail}): two features share one key name"),
            };
        }
        if e.code() == Some("READONLY") {
            return StoreError::Unavailable(format!(
                "Redis at {url} is a read-only replica (`{command}` refused): point `store.url` at the primary, \
                 or use `[store.sentinel]` to follow failovers"
            ));
        }
        if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
            return StoreError::Unavailable(format!(
                "Redis at {url} refused `{command}`: {detail}: Vigie needs Redis 6.2 or later, a \
                 writable primary, and a user allowed GET, SET, GETDEL, DEL, INCR, PTTL, \
                 PEXPIRE, SADD, SMEMBERS, EVALSHA, SCRIPT LOAD and PING"
            ));
        }
        StoreError::Unavailable(format!(
            "Redis at {url} did not complete `{command}`: {detail}: check that Redis is running and \
             reachable at `store.url`"
        ))
    }
}

/// Whether `e` is what a failover looks like from a client: the primary refused a write as a
/// replica, or the connection to it failed.
fn failover_explains(e: &RedisError) -> bool {
    e.code() == Some("READONLY")
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_io_error()
        || e.is_timeout()
}

/// The redis crate keeps the `io::Error` to itself: its text is all there is to read.
fn broken_pipe(e: &RedisError) -> bool {
    e.is_io_error() && e.to_string().to_ascii_lowercase().contains("broken pipe")
}

pub(crate) fn connect_error(shown_url: &str, timeouts: &RedisTimeouts, e: &RedisError) -> StoreError {
    let detail = one_line(e);
    let message = if detail.contains("certificate") || detail.contains("UnknownIssuer") {
        format!(
            "the TLS certificate of Redis at {shown_url} is not trusted ({detail}): check `store.ca_file` \
             (the CA that issued Redis's certificate) and that the certificate names the host of `store.url`"
        )
    } else if detail.contains("handshake") || detail.contains("alert") {
        format!(
            "Redis at {shown_url} refused the TLS handshake ({detail}): if Redis asks for a client \
             certificate (`tls-auth-clients`), set `store.client_cert` and `store.client_key`"
        )
    } else if e.kind() == ErrorKind::AuthenticationFailed || matches!(e.code(), Some("WRONGPASS" | "NOAUTH")) {
        format!(
            "Redis at {shown_url} refused the credentials: {detail}: check the user and password \
             in `store.url`"
        )
    } else if e.is_timeout() {
        format!(
            "Redis at {shown_url} did not answer ({} attempts of {:?}): check `store.url`, the \
             network and that Redis is running",
            timeouts.connect_retries + 1,
            timeouts.connect
        )
    } else if e.kind() == ErrorKind::Parse {
        format!(
            "the server at {shown_url} does not speak the Redis protocol ({detail}): check that \
             `store.url` points at Redis"
        )
    } else {
        format!(
            "cannot reach Redis at {shown_url}: {detail}: check `store.url` and that Redis is \
             running"
        )
    };
    StoreError::Unavailable(message)
}

/// `e` on one line: some Redis errors span several, which breaks one-line JSON log readers.
pub(crate) fn one_line(e: &RedisError) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The name of `cmd`, for error messages: never its arguments, which hold keys and values.
fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
        _ => "command".to_owned(),
    }
}

/// `url` with its credentials (user info, and a query string, which may carry `pass=`) masked.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    // The last '@' ends the user info even if the password holds an unescaped '@', '/' or '?'.
    let (masked, rest) = match rest.rfind('@') {
        Some(at) => ("***@", &rest[at + 1..]),
        None => ("", rest),
    };
    match rest.split_once('?') {
        Some((before, _)) => format!("{scheme}://{masked}{before}?***"),
        None => format!("{scheme}://{masked}{rest}"),
    }
}

/// Milliseconds for `PX`/`PEXPIRE`, rounded down so a value never outlives its TTL; Redis
/// rejects 0, so a sub-millisecond TTL becomes 1 ms.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl));
        self.run(key, Again::Idempotent, &cmd).await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        // `SET … NX` answers OK when it stored and nil when the key already lived.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX").arg("PX").arg(millis(ttl));
        self.run(key, Again::Once, &cmd).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(key, Again::Idempotent, redis::cmd("GET").arg(self.key(key))).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // One command, so two replicas taking at once cannot both read the value.
        self.run(key, Again::Once, redis::cmd("GETDEL").arg(self.key(key))).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run(key, Again::Idempotent, redis::cmd("DEL").arg(self.key(key))).await
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let full = self.key(key);
        self.with_connection(key, "EVALSHA", Again::Once, |mut connection| {
            let mut invocation = self.incr.key(&full);
            invocation.arg(millis(ttl));
            async move { invocation.invoke_async(&mut connection).await }
        })
        .await
    }

    async fn add_to_set(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let full = self.key(key);
        self.with_connection(key, "EVALSHA", Again::Idempotent, |mut connection| {
            let mut invocation = self.add_to_set.key(&full);
            invocation.arg(member).arg(millis(ttl));
            async move { invocation.invoke_async(&mut connection).await }
        })
        .await
    }

    async fn members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.run(key, Again::Idempotent, redis::cmd("SMEMBERS").arg(self.key(key))).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.run("", Again::Idempotent, &redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "the server at {} answered PING with {pong:?}: check that `store.url` points at Redis",
                self.shown_url
            )))
        }
    }

    async fn replace_if(&self, key: &str, old: Option<&[u8]>, new: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        // Not re-sent after a failover: a compare-and-set that ran would then fail its comparison.
        let full = self.key(key);
        let script = &*REPLACE_IF;
        let stored: i64 = self
            .with_connection(key, "EVALSHA", Again::Once, |mut connection| {
                let mut invocation = script.key(&full);
                invocation
                    .arg(if old.is_some() { "1" } else { "0" })
                    .arg(old.unwrap_or_default())
                    .arg(new)
                    .arg(millis(ttl));
                async move { invocation.invoke_async(&mut connection).await }
            })
            .await?;
        Ok(stored == 1)
    }
}

/// `replace_if`'s compare-and-set, one script so that nothing runs between the comparison and
/// the write. `GET` answers false for an absent key; ARGV[1] says whether a value is expected at
/// all (an empty value is not an absent one). Built once: `Script::new` hashes its source (SHA-1)
/// and the health transitions and the sync's lease renewals call it on every replica.
static REPLACE_IF: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
",
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_host_and_drop_secrets() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("redis://:s3cret@redis:6379", "redis://***@redis:6379"),
            ("redis://vigie:s3cret@redis:6379/2", "redis://***@redis:6379/2"),
            ("redis://vigie:s3@c/r?t@redis:6379", "redis://***@redis:6379"),
            ("redis+unix:///run/redis.sock?db=1&pass=s3cret", "redis+unix:///run/redis.sock?***"),
            ("s3cret", "<not a URL>"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn sub_millisecond_ttls_round_up_to_one_millisecond() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
    }

    #[test]
    fn error_messages_name_the_command_not_its_arguments() {
        assert_eq!(command_name(redis::cmd("GETDEL").arg("secret-key")), "GETDEL");
        assert_eq!(command_name(redis::cmd("set").arg("k").arg("v")), "SET");
    }
}
