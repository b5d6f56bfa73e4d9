//! The ephemeral store port: sessions, login flows, codes, refresh-token families, replay
//! caches and rate-limit counters, shared by every replica. Entries expire by TTL.
use std::time::Duration;

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};

/// A failure to reach or use the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or refused the command.
    #[error("ephemeral store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("ephemeral store value under {key:?} is corrupt: {reason}")]
    Corrupt {
        /// The key whose value is corrupt.
        key: String,
        /// What was wrong.
        reason: String,
    },
}

/// Ephemeral key-value state shared by all replicas.
///
/// Guarantees every adapter must keep (checked by the shared `testkit` suite):
/// - a value is never returned after its TTL has elapsed;
/// - `take` returns a value at most once across all replicas, even under concurrency;
/// - `put_if_absent` succeeds for exactly one caller while the key lives;
/// - `incr` is atomic; the TTL is set when the counter is created and not extended;
/// - `replace_if` (compare-and-set) replaces a value only if it still is the one expected: of
///   callers expecting the same value at once, exactly one succeeds.
#[async_trait]
pub trait EphemeralStore: Send + Sync {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    /// Stores `value` only if `key` holds nothing; tells whether it did.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError>;
    /// Reads the value under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads and removes the value under `key` atomically: at most one caller gets it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Increments the counter under `key` and returns its new value.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError>;
    /// Adds `member` to the set under `key`; the set lives `ttl` from this call.
    async fn add_to_set(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError>;
    /// The members of the set under `key` (empty when absent).
    async fn members(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Stores `new` for `ttl` only if `key` holds `old` (`None`: holds nothing); tells
    /// whether it did. Callers that read a value and race to replace it: one wins, the others
    /// read again (a shared state with versions, written on transitions).
    async fn replace_if(&self, key: &str, old: Option<&[u8]>, new: &[u8], ttl: Duration) -> Result<bool, StoreError>;
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain data structs to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(key: &str, bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    bytes
        .map(|b| {
            serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
        })
        .transpose()
}

/// Typed (JSON) access to any [`EphemeralStore`].
#[async_trait]
pub trait StoreExt: EphemeralStore {
    /// [`EphemeralStore::put`] of a JSON-encoded value.
    async fn put_json<T: Serialize + Sync>(&self, key: &str, value: &T, ttl: Duration) -> Result<(), StoreError> {
        self.put(key, &encode(value), ttl).await
    }
    /// [`EphemeralStore::get`] of a JSON-encoded value.
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        decode(key, self.get(key).await?)
    }
    /// [`EphemeralStore::take`] of a JSON-encoded value.
    async fn take_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        decode(key, self.take(key).await?)
    }
    /// The counter [`StoreExt::attempt`] keeps at `key`, 0 when there is none: for a page that
    /// says "locked" before asking anything. It guards nothing: only `attempt` does.
    async fn count(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self.get(key).await?.and_then(|v| String::from_utf8(v).ok()).and_then(|v| v.parse().ok()).unwrap_or(0))
    }
    /// Counts one attempt at a secret guarded by a lockout (a password, security answers, a
    /// temporary code) *before* the secret is checked, and tells whether it may be checked: at
    /// most `limit` attempts per `window` (fixed at the first one) are, whatever their
    /// concurrency, since each takes its number from one atomic [`EphemeralStore::incr`]
    /// (NIST SP 800-63B §5.2.2, throttling: the limit must hold against parallel guesses). The
    /// caller resets the counter (`delete`) when the secret was right.
    async fn attempt(&self, key: &str, limit: u64, window: Duration) -> Result<Attempt, StoreError> {
        let n = self.incr(key, window).await?;
        Ok(if n > limit { Attempt::Refused(n) } else { Attempt::Allowed(n) })
    }
}

/// Whether an attempt counted by [`StoreExt::attempt`] may be checked; with its number in the
/// window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Within the limit: check the secret.
    Allowed(u64),
    /// Past the limit: refuse without checking anything.
    Refused(u64),
}

impl<S: EphemeralStore + ?Sized> StoreExt for S {}
