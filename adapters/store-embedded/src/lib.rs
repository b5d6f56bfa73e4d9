//! The in-process [`EphemeralStore`] for a single Vigie node: state lives in this process's
//! memory and is lost on restart. Replicas cannot share it; use the Redis store for those.
//!
//! Keys are spread over mutex-guarded shards so that concurrent logins rarely contend. No lock
//! is ever held across an `.await` (no method awaits at all). Expired entries are invisible from
//! the instant their TTL elapses, and a shard sweeps them out after as many writes as it held
//! entries at its last sweep, so memory stays proportional to the live entries at an amortised
//! O(1) cost per write.
//!
//! Entries are kept small, since a node holds one or two per live grant for as long as its
//! refresh token lives: keys and values in boxed slices, expiry as milliseconds on the store's
//! own clock, sets boxed; a shard's table is shrunk when a sweep leaves it mostly empty, so a
//! burst of short-lived entries (login flows, codes) does not pin its peak size.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use vigie_core::store::{EphemeralStore, StoreError};

/// How many shards the key space is split over: a power of two, well above the core count of
/// the machines Vigie runs on, so that two logins rarely wait on the same lock.
const SHARDS: usize = 64;
/// The fewest writes between two sweeps of a shard, so small shards are not swept constantly.
const MIN_WRITES_BETWEEN_SWEEPS: usize = 1024;
/// A swept shard whose table has this many times more room than entries is shrunk.
const SHRINK_WHEN_ROOM_EXCEEDS: usize = 4;

/// An in-process, single-node [`EphemeralStore`].
#[derive(Debug)]
pub struct EmbeddedStore {
    shards: Box<[Shard]>,
    hasher: RandomState,
    /// The origin of the store's clock: expiry instants are milliseconds since then.
    epoch: Instant,
}

/// One lock and its part of the key space, on its own cache line so that two busy shards do
/// not slow each other down.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(Mutex<ShardState>);

#[derive(Debug, Default)]
struct ShardState {
    entries: HashMap<Box<str>, Entry>,
    /// Writes since the last sweep.
    writes: usize,
    /// Writes allowed before the next sweep.
    sweep_after: usize,
}

/// 32 bytes, plus the key's 16 in the table: less than half the `String` / `Vec` / `Instant`
/// layout (96 bytes a slot).
#[derive(Debug)]
struct Entry {
    value: Value,
    /// Milliseconds since the store's epoch.
    expires_at: u64,
}

#[derive(Debug)]
enum Value {
    Bytes(Box<[u8]>),
    Counter(u64),
    /// Boxed: a set is rare, and inline it would make every entry as large as a table.
    #[allow(clippy::box_collection)]
    Set(Box<HashSet<String>>),
}

impl Entry {
    fn is_live(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

impl Value {
    /// The value as `get` and `take` return it. A counter reads as its decimal digits, as with
    /// Redis, so that both adapters agree.
    fn into_bytes(self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self {
            Value::Bytes(bytes) => Ok(bytes.into_vec()),
            Value::Counter(n) => Ok(n.to_string().into_bytes()),
            Value::Set(_) => Err(wrong_type(key, "a set", "a value")),
        }
    }
}

impl ShardState {
    /// The live entry under `key`; an expired one is removed on the way.
    fn live(&mut self, key: &str, now: u64) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| !e.is_live(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    /// The live entry under `key`, leaving an expired one for the sweep: reads take one lookup.
    fn peek(&self, key: &str, now: u64) -> Option<&Value> {
        self.entries.get(key).filter(|e| e.is_live(now)).map(|e| &e.value)
    }

    /// Counts a write, and sweeps expired entries once enough writes have come in: the sweep
    /// costs one pass over the shard, paid for by as many writes. A table left mostly empty is
    /// shrunk (its memory goes back to the allocator), keeping room for twice its entries.
    fn wrote(&mut self, now: u64) {
        self.writes += 1;
        if self.writes >= self.sweep_after {
            self.entries.retain(|_, e| e.is_live(now));
            let len = self.entries.len();
            if self.entries.capacity() > SHRINK_WHEN_ROOM_EXCEEDS * len.max(MIN_WRITES_BETWEEN_SWEEPS) {
                self.entries.shrink_to(2 * len);
            }
            self.writes = 0;
            self.sweep_after = self.entries.len().max(MIN_WRITES_BETWEEN_SWEEPS);
        }
    }

    /// Stores `entry` under `key`, reusing the existing key allocation when there is one.
    fn insert(&mut self, key: &str, entry: Entry) {
        match self.entries.get_mut(key) {
            Some(slot) => *slot = entry,
            None => {
                self.entries.insert(key.into(), entry);
            }
        }
    }
}

impl EmbeddedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the store's epoch (truncated: with the TTL truncated too, an entry
    /// is never seen live once its TTL has elapsed).
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, ShardState> {
        // SHARDS is a power of two: the mask keeps the low bits of the hash.
        let index = (self.hasher.hash_one(key) as usize) & (SHARDS - 1);
        // A panic while holding the lock cannot leave a shard half-updated (every update is a
        // single map operation), so a poisoned shard is still consistent.
        self.shards[index].0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for EmbeddedStore {
    fn default() -> Self {
        Self::new()
    }
}

/// The instant a TTL from `now` ends, on the store's clock; a TTL too long to represent never
/// ends in practice.
fn deadline(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

fn wrong_type(key: &str, holds: &str, wanted: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: format!("the key holds {holds}, not {wanted}: two features share one key name"),
    }
}

#[async_trait]
impl EphemeralStore for EmbeddedStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let now = self.now();
        let entry = Entry { value: Value::Bytes(value.into()), expires_at: deadline(now, ttl) };
        let mut shard = self.shard(key);
        shard.insert(key, entry);
        shard.wrote(now);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        if shard.live(key, now).is_some() {
            return Ok(false);
        }
        let entry = Entry { value: Value::Bytes(value.into()), expires_at: deadline(now, ttl) };
        shard.insert(key, entry);
        shard.wrote(now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now();
        match self.shard(key).peek(key, now) {
            None => Ok(None),
            Some(Value::Bytes(bytes)) => Ok(Some(bytes.to_vec())),
            Some(Value::Counter(n)) => Ok(Some(n.to_string().into_bytes())),
            Some(Value::Set(_)) => Err(wrong_type(key, "a set", "a value")),
        }
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        match shard.entries.remove(key) {
            Some(entry) if entry.is_live(now) => {
                if matches!(entry.value, Value::Set(_)) {
                    // A refused take leaves the set as it was.
                    shard.entries.insert(key.into(), entry);
                    return Err(wrong_type(key, "a set", "a value"));
                }
                entry.value.into_bytes(key).map(Some)
            }
            // Absent, or expired (and removed just now).
            _ => Ok(None),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.shard(key).entries.remove(key);
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        let count = match shard.live(key, now) {
            Some(entry) => {
                // The expiry instant is left alone: a counter's window is fixed at creation.
                let next = match &entry.value {
                    Value::Counter(n) => n.saturating_add(1),
                    Value::Bytes(bytes) => std::str::from_utf8(bytes)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| wrong_type(key, "a value", "a counter"))?
                        .saturating_add(1),
                    Value::Set(_) => return Err(wrong_type(key, "a set", "a counter")),
                };
                entry.value = Value::Counter(next);
                next
            }
            None => {
                shard.insert(key, Entry { value: Value::Counter(1), expires_at: deadline(now, ttl) });
                1
            }
        };
        shard.wrote(now);
        Ok(count)
    }

    async fn add_to_set(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = self.now();
        let expires_at = deadline(now, ttl);
        let mut shard = self.shard(key);
        match shard.live(key, now) {
            Some(Entry { value: Value::Set(members), expires_at: at }) => {
                if !members.contains(member) {
                    members.insert(member.to_owned());
                }
                *at = expires_at;
            }
            Some(_) => return Err(wrong_type(key, "a value", "a set")),
            None => {
                let members = Box::new(HashSet::from([member.to_owned()]));
                shard.insert(key, Entry { value: Value::Set(members), expires_at });
            }
        }
        shard.wrote(now);
        Ok(())
    }

    async fn members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let now = self.now();
        match self.shard(key).peek(key, now) {
            None => Ok(Vec::new()),
            Some(Value::Set(members)) => Ok(members.iter().cloned().collect()),
            Some(_) => Err(wrong_type(key, "a value", "a set")),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn replace_if(&self, key: &str, old: Option<&[u8]>, new: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        // Under the shard's lock: nobody writes the key between the comparison and the write.
        let holds = match shard.live(key, now) {
            None => None,
            Some(Entry { value: Value::Bytes(bytes), .. }) => Some(bytes.to_vec()),
            Some(Entry { value: Value::Counter(n), .. }) => Some(n.to_string().into_bytes()),
            Some(_) => return Err(wrong_type(key, "a set", "a value")),
        };
        if holds.as_deref() != old {
            return Ok(false);
        }
        shard.insert(key, Entry { value: Value::Bytes(new.into()), expires_at: deadline(now, ttl) });
        shard.wrote(now);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries the shards hold, and the room their tables have.
    fn tables(store: &EmbeddedStore) -> (usize, usize) {
        let shards = store.shards.iter().map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner));
        shards.fold((0, 0), |(len, room), s| (len + s.entries.len(), room + s.entries.capacity()))
    }

    #[tokio::test]
    async fn expired_entries_are_swept_without_being_read() {
        let store = EmbeddedStore::new();
        let abandoned = 2 * SHARDS * MIN_WRITES_BETWEEN_SWEEPS;
        for i in 0..abandoned {
            store.put(&format!("abandoned:{i}"), b"flow", Duration::from_millis(50)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Twice as many writes as a shard held: each shard sweeps at least once after expiry.
        let live = 2 * abandoned;
        for i in 0..live {
            store.put(&format!("live:{i}"), b"flow", Duration::from_secs(60)).await.unwrap();
        }
        let held = tables(&store).0;
        assert!(held < live + abandoned / 10, "{held} entries held for {live} live ones");
    }

    /// What a key costs in a shard's table besides its bytes: the slot of one entry.
    #[test]
    fn an_entry_takes_48_bytes_of_table() {
        assert_eq!(std::mem::size_of::<(Box<str>, Entry)>(), 48);
    }

    #[tokio::test]
    async fn a_burst_of_short_lived_entries_does_not_pin_the_tables() {
        let store = EmbeddedStore::new();
        let burst = 4 * SHARDS * MIN_WRITES_BETWEEN_SWEEPS;
        let ttl = Duration::from_secs(2);
        for i in 0..burst {
            store.put(&format!("code:{i}"), b"grant", ttl).await.unwrap();
        }
        let peak = tables(&store).1;
        // All of them, unless a loaded machine made the burst outlast their TTL.
        assert!(peak >= burst / 2, "{peak}");
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        // Enough writes for every shard to sweep at least once.
        for i in 0..2 * burst {
            store.put(&format!("live:{}", i % 4096), b"flow", Duration::from_secs(60)).await.unwrap();
        }
        let after = tables(&store).1;
        assert!(after * 4 < peak, "the tables kept room for {after} entries after a burst of {burst} (peak {peak})");
    }

    #[tokio::test]
    async fn a_counter_reads_as_its_decimal_value() {
        let store = EmbeddedStore::new();
        store.incr("attempts", Duration::from_secs(60)).await.unwrap();
        store.incr("attempts", Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.get("attempts").await.unwrap(), Some(b"2".to_vec()));
    }
}
