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
//! refresh token lives (issue 15): an entry is one allocation, the key's bytes followed by the
//! value's, plus a 32-byte slot in its shard's table (the expiry as milliseconds on the store's
//! own clock, the key's length, the kind of value). A counter is its 8 bytes, a set its members
//! one after the other, each after its length: no table of its own per set. A shard's table is
//! shrunk when a sweep leaves it mostly empty, so a burst of short-lived entries (login flows,
//! codes) does not pin its peak size.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
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
    /// Entries are found by their key's bytes (`Entry: Borrow<[u8]>`).
    entries: HashSet<Entry>,
    /// Writes since the last sweep.
    writes: usize,
    /// Writes allowed before the next sweep.
    sweep_after: usize,
}

/// 32 bytes of table and one allocation: a third of the `String` / `Vec` / `Instant` layout
/// (96 bytes a slot and two allocations).
#[derive(Debug)]
struct Entry {
    /// The key's bytes, then the value's.
    data: Box<[u8]>,
    /// Milliseconds since the store's epoch.
    expires_at: u64,
    key_len: u32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bytes,
    /// 8 bytes, little-endian.
    Counter,
    /// Members one after the other, each after its length (4 bytes, little-endian).
    Set,
}

impl Entry {
    fn new(key: &str, kind: Kind, value: &[u8], expires_at: u64) -> Self {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key.as_bytes());
        data.extend_from_slice(value);
        // A key over 4 GiB cannot reach the store: the caller's request would not fit first.
        let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        Self { data: data.into_boxed_slice(), expires_at, key_len, kind }
    }

    fn counter(key: &str, n: u64, expires_at: u64) -> Self {
        Self::new(key, Kind::Counter, &n.to_le_bytes(), expires_at)
    }

    fn set(key: &str, members: &[&str], expires_at: u64) -> Self {
        let mut value = Vec::new();
        for m in members {
            push_member(&mut value, m);
        }
        Self::new(key, Kind::Set, &value, expires_at)
    }

    fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    fn value(&self) -> &[u8] {
        &self.data[self.key_len as usize..]
    }

    fn is_live(&self, now: u64) -> bool {
        now < self.expires_at
    }

    fn count(&self) -> u64 {
        let mut n = [0; 8];
        n.copy_from_slice(&self.value()[..8]);
        u64::from_le_bytes(n)
    }

    /// A set's members.
    fn members(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.value();
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let (member, tail) = tail.split_at_checked(u32::from_le_bytes(*len) as usize)?;
            rest = tail;
            Some(member)
        })
    }

    /// The value as `get` and `take` return it. A counter reads as its decimal digits, as with
    /// Redis, so that both adapters agree.
    fn bytes(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self.kind {
            Kind::Bytes => Ok(self.value().to_vec()),
            Kind::Counter => Ok(self.count().to_string().into_bytes()),
            Kind::Set => Err(wrong_type(key, "a set", "a value")),
        }
    }
}

fn push_member(value: &mut Vec<u8>, member: &str) {
    // A member over 4 GiB cannot reach the store either.
    value.extend_from_slice(&u32::try_from(member.len()).unwrap_or(u32::MAX).to_le_bytes());
    value.extend_from_slice(member.as_bytes());
}

// An entry is its key in the table: hashed and compared as the key's bytes, so that a lookup by
// `&[u8]` finds it (the `Borrow` contract).
impl Borrow<[u8]> for Entry {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl Hash for Entry {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl ShardState {
    /// The live entry under `key`, out of the table (to be put back changed); an expired one is
    /// dropped on the way.
    fn take_live(&mut self, key: &str, now: u64) -> Option<Entry> {
        self.entries.take(key.as_bytes()).filter(|e| e.is_live(now))
    }

    /// The live entry under `key`, leaving an expired one for the sweep: reads take one lookup.
    fn peek(&self, key: &str, now: u64) -> Option<&Entry> {
        self.entries.get(key.as_bytes()).filter(|e| e.is_live(now))
    }

    /// Counts a write, and sweeps expired entries once enough writes have come in: the sweep
    /// costs one pass over the shard, paid for by as many writes. A table left mostly empty is
    /// shrunk (its memory goes back to the allocator), keeping room for twice its entries.
    fn wrote(&mut self, now: u64) {
        self.writes += 1;
        if self.writes >= self.sweep_after {
            self.entries.retain(|e| e.is_live(now));
            let len = self.entries.len();
            if self.entries.capacity() > SHRINK_WHEN_ROOM_EXCEEDS * len.max(MIN_WRITES_BETWEEN_SWEEPS) {
                self.entries.shrink_to(2 * len);
            }
            self.writes = 0;
            self.sweep_after = self.entries.len().max(MIN_WRITES_BETWEEN_SWEEPS);
        }
    }

    /// Stores `entry`, replacing whatever its key held.
    fn insert(&mut self, entry: Entry, now: u64) {
        self.entries.replace(entry);
        self.wrote(now);
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
        // A panic while holding the lock cannot leave a shard half-updated (an entry taken out
        // to be changed is only dropped, as if deleted), so a poisoned shard is still consistent.
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
        let entry = Entry::new(key, Kind::Bytes, value, deadline(now, ttl));
        self.shard(key).insert(entry, now);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        if shard.peek(key, now).is_some() {
            return Ok(false);
        }
        shard.insert(Entry::new(key, Kind::Bytes, value, deadline(now, ttl)), now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now();
        self.shard(key).peek(key, now).map(|e| e.bytes(key)).transpose()
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        let Some(entry) = shard.take_live(key, now) else { return Ok(None) };
        if entry.kind == Kind::Set {
            // A refused take leaves the set as it was.
            shard.entries.insert(entry);
            return Err(wrong_type(key, "a set", "a value"));
        }
        entry.bytes(key).map(Some)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.shard(key).entries.remove(key.as_bytes());
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        let now = self.now();
        let mut shard = self.shard(key);
        let Some(entry) = shard.take_live(key, now) else {
            shard.insert(Entry::counter(key, 1, deadline(now, ttl)), now);
            return Ok(1);
        };
        let current = match entry.kind {
            Kind::Counter => Some(entry.count()),
            Kind::Bytes => std::str::from_utf8(entry.value()).ok().and_then(|s| s.parse::<u64>().ok()),
            Kind::Set => None,
        };
        let Some(current) = current else {
            let holds = if entry.kind == Kind::Set { "a set" } else { "a value" };
            shard.entries.insert(entry);
            return Err(wrong_type(key, holds, "a counter"));
        };
        // The expiry instant is left alone: a counter's window is fixed at creation.
        let next = current.saturating_add(1);
        shard.insert(Entry::counter(key, next, entry.expires_at), now);
        Ok(next)
    }

    async fn add_to_set(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = self.now();
        let expires_at = deadline(now, ttl);
        let mut shard = self.shard(key);
        let entry = match shard.take_live(key, now) {
            None => Entry::set(key, &[member], expires_at),
            Some(mut entry) if entry.kind == Kind::Set => {
                if !entry.members().any(|m| m == member.as_bytes()) {
                    // Grown in place where the allocator can: one copy at most.
                    let mut data = std::mem::take(&mut entry.data).into_vec();
                    data.reserve_exact(4 + member.len());
                    push_member(&mut data, member);
                    entry.data = data.into_boxed_slice();
                }
                entry.expires_at = expires_at;
                entry
            }
            Some(entry) => {
                shard.entries.insert(entry);
                return Err(wrong_type(key, "a value", "a set"));
            }
        };
        shard.insert(entry, now);
        Ok(())
    }

    async fn members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let now = self.now();
        match self.shard(key).peek(key, now) {
            None => Ok(Vec::new()),
            // Members went in as `&str`: their bytes are UTF-8.
            Some(e) if e.kind == Kind::Set => {
                Ok(e.members().map(|m| String::from_utf8_lossy(m).into_owned()).collect())
            }
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
        let holds = match shard.peek(key, now) {
            None => None,
            Some(e) if e.kind == Kind::Bytes => Some(std::borrow::Cow::Borrowed(e.value())),
            Some(e) if e.kind == Kind::Counter => Some(std::borrow::Cow::Owned(e.count().to_string().into_bytes())),
            Some(_) => return Err(wrong_type(key, "a set", "a value")),
        };
        if holds.as_deref() != old {
            return Ok(false);
        }
        shard.insert(Entry::new(key, Kind::Bytes, new, deadline(now, ttl)), now);
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

    /// What a key costs in a shard's table besides its bytes (one allocation with its value):
    /// the slot of one entry.
    #[test]
    fn an_entry_takes_32_bytes_of_table() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
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

    #[tokio::test]
    async fn a_set_is_one_flat_value_of_its_members() {
        let store = EmbeddedStore::new();
        let ttl = Duration::from_secs(60);
        for m in ["3:abc", "", "é☃", "3:abc", "4:def"] {
            store.add_to_set("rt-spent:f", m, ttl).await.unwrap();
        }
        let mut members = store.members("rt-spent:f").await.unwrap();
        members.sort();
        assert_eq!(members, ["", "3:abc", "4:def", "é☃"]);
        let shard = store.shard("rt-spent:f");
        let entry = shard.peek("rt-spent:f", store.now()).unwrap();
        // The key, then each member once after its 4-byte length: nothing else allocated.
        assert_eq!(entry.data.len(), "rt-spent:f".len() + 4 * 4 + 5 + 5 + "é☃".len());
    }

    /// What the store holds, the simple way: the model the property test checks it against.
    #[derive(Clone, Debug, PartialEq)]
    enum Model {
        Bytes(Vec<u8>),
        Counter(u64),
        Set(std::collections::BTreeSet<String>),
    }

    #[derive(Clone, Debug)]
    enum Op {
        Put(usize, Vec<u8>),
        PutIfAbsent(usize, Vec<u8>),
        Get(usize),
        Take(usize),
        Delete(usize),
        Incr(usize),
        Add(usize, String),
        Members(usize),
        ReplaceIf(usize, Option<Vec<u8>>, Vec<u8>),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let key = 0..4usize;
        let bytes = proptest::collection::vec(any::<u8>(), 0..6);
        prop_oneof![
            (key.clone(), bytes.clone()).prop_map(|(k, v)| Op::Put(k, v)),
            (key.clone(), bytes.clone()).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
            key.clone().prop_map(Op::Get),
            key.clone().prop_map(Op::Take),
            key.clone().prop_map(Op::Delete),
            key.clone().prop_map(Op::Incr),
            (key.clone(), "[a-c☃]{0,3}").prop_map(|(k, m)| Op::Add(k, m)),
            key.clone().prop_map(Op::Members),
            (key, proptest::option::of(bytes.clone()), bytes).prop_map(|(k, o, n)| Op::ReplaceIf(k, o, n)),
        ]
    }

    /// The model's answer to `get`: a counter reads as its digits.
    fn as_bytes(v: Option<&Model>) -> Result<Option<Vec<u8>>, ()> {
        match v {
            None => Ok(None),
            Some(Model::Bytes(b)) => Ok(Some(b.clone())),
            Some(Model::Counter(n)) => Ok(Some(n.to_string().into_bytes())),
            Some(Model::Set(_)) => Err(()),
        }
    }

    proptest::proptest! {
        /// Any sequence of operations answers as the model does, and leaves what the model holds.
        #[test]
        fn the_compact_entries_behave_as_plain_values(ops in proptest::collection::vec(op(), 1..60)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let store = EmbeddedStore::new();
            let mut model: std::collections::HashMap<usize, Model> = Default::default();
            let ttl = Duration::from_secs(600);
            let key = |k: usize| format!("k{k}");
            for op in ops {
                rt.block_on(async {
                    match op {
                        Op::Put(k, v) => {
                            store.put(&key(k), &v, ttl).await.unwrap();
                            model.insert(k, Model::Bytes(v));
                        }
                        Op::PutIfAbsent(k, v) => {
                            let done = store.put_if_absent(&key(k), &v, ttl).await.unwrap();
                            assert_eq!(done, !model.contains_key(&k));
                            model.entry(k).or_insert(Model::Bytes(v));
                        }
                        Op::Get(k) => assert_eq!(store.get(&key(k)).await.map_err(|_| ()), as_bytes(model.get(&k))),
                        Op::Take(k) => {
                            let want = as_bytes(model.get(&k));
                            assert_eq!(store.take(&key(k)).await.map_err(|_| ()), want);
                            if want.is_ok() {
                                model.remove(&k);
                            }
                        }
                        Op::Delete(k) => {
                            store.delete(&key(k)).await.unwrap();
                            model.remove(&k);
                        }
                        Op::Incr(k) => {
                            let next = match model.get(&k) {
                                None => Ok(1),
                                Some(Model::Counter(n)) => Ok(n + 1),
                                Some(Model::Bytes(b)) => {
                                    std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok()).map(|n| n + 1).ok_or(())
                                }
                                Some(Model::Set(_)) => Err(()),
                            };
                            assert_eq!(store.incr(&key(k), ttl).await.map_err(|_| ()), next);
                            if let Ok(n) = next {
                                model.insert(k, Model::Counter(n));
                            }
                        }
                        Op::Add(k, m) => {
                            let got = store.add_to_set(&key(k), &m, ttl).await.map_err(|_| ());
                            match model.entry(k).or_insert_with(|| Model::Set(Default::default())) {
                                Model::Set(s) => {
                                    assert_eq!(got, Ok(()));
                                    s.insert(m);
                                }
                                _ => assert_eq!(got, Err(())),
                            }
                        }
                        Op::Members(k) => {
                            let got = store.members(&key(k)).await.map_err(|_| ()).map(|m| m.into_iter().collect());
                            let want = match model.get(&k) {
                                None => Ok(Default::default()),
                                Some(Model::Set(s)) => Ok(s.clone()),
                                Some(_) => Err(()),
                            };
                            assert_eq!(got, want);
                        }
                        Op::ReplaceIf(k, old, new) => {
                            let got = store.replace_if(&key(k), old.as_deref(), &new, ttl).await.map_err(|_| ());
                            match as_bytes(model.get(&k)) {
                                Err(()) => assert_eq!(got, Err(())),
                                Ok(holds) => {
                                    assert_eq!(got, Ok(holds == old));
                                    if holds == old {
                                        model.insert(k, Model::Bytes(new));
                                    }
                                }
                            }
                        }
                    }
                });
            }
        }
    }
}
