//! The conformance suite every [`EphemeralStore`] adapter must pass: one check per guarantee
//! stated on the port, run against the real backend by each adapter's own tests.
//!
//! Run it on a multi-thread runtime, or the concurrency checks prove nothing:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! async fn embedded_store_keeps_the_port_guarantees() {
//!     vigie_core::testkit::run_all(std::sync::Arc::new(EmbeddedStore::new())).await;
//! }
//! ```
//!
//! Every check writes under its own key prefix (process id, clock and a counter), so repeated
//! runs against one long-lived backend never see each other's keys.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Barrier;

use crate::store::{Attempt, EphemeralStore, StoreError, StoreExt};

/// A TTL no check outlives.
const LONG: Duration = Duration::from_secs(60);
/// A TTL the expiry checks wait out. Redis counts `PX` in whole milliseconds and checks
/// expiry with millisecond precision, so this is far above any backend's granularity.
const SHORT: Duration = Duration::from_millis(300);
/// How long the expiry checks sleep after writing with [`SHORT`].
const PAST_SHORT: Duration = Duration::from_millis(700);
/// How many tasks race in the concurrency checks.
const RACERS: usize = 32;
/// How many keys each race is repeated on: a lost race is rare, one round could miss it.
const ROUNDS: usize = 10;
/// How many tasks increment one counter.
const INCREMENTS: u64 = 50;

/// Runs every check of the suite against `store`, one after the other.
///
/// # Panics
///
/// On the first broken guarantee, with a message naming it; also when called outside a
/// multi-thread tokio runtime.
pub async fn run_all(store: Arc<dyn EphemeralStore>) {
    require_multi_thread();
    ping_answers(&store).await;
    put_get_delete_round_trip(&store).await;
    absent_keys_read_as_nothing(&store).await;
    put_overwrites(&store).await;
    values_expire_after_their_ttl(&store).await;
    take_returns_the_value_exactly_once(&store).await;
    concurrent_takes_yield_the_value_once(&store).await;
    put_if_absent_has_one_winner(&store).await;
    concurrent_put_if_absent_has_one_winner(&store).await;
    put_if_absent_succeeds_again_after_expiry(&store).await;
    concurrent_incr_counts_every_call(&store).await;
    incr_ttl_is_set_at_creation_and_not_extended(&store).await;
    concurrent_attempts_admit_exactly_the_limit(&store).await;
    sets_collect_distinct_members(&store).await;
    sets_expire_ttl_after_the_last_add(&store).await;
    unusual_keys_are_distinct_and_usable(&store).await;
    binary_values_round_trip(&store).await;
    keys_reused_for_another_kind_are_reported_corrupt(&store).await;
    replace_if_replaces_only_the_expected_value(&store).await;
    concurrent_replace_if_has_one_winner(&store).await;
}

/// Checks that `a` and `b`, two handles on one shared backend (two "replicas"), see each
/// other's writes, and that `take`, `put_if_absent` and `incr` stay exactly-once across them.
///
/// # Panics
///
/// As [`run_all`].
pub async fn replicas_share_state(a: Arc<dyn EphemeralStore>, b: Arc<dyn EphemeralStore>) {
    require_multi_thread();
    let p = prefix("replicas");
    let both: Vec<Arc<dyn EphemeralStore>> =
        (0..RACERS).map(|i| if i % 2 == 0 { a.clone() } else { b.clone() }).collect();

    let key = format!("{p}:visible");
    ok("put", a.put(&key, b"from-a", LONG).await);
    assert_eq!(
        ok("get", b.get(&key).await).as_deref(),
        Some(&b"from-a"[..]),
        "a write on one replica is not seen by the other"
    );
    ok("delete", b.delete(&key).await);
    assert_eq!(ok("get", a.get(&key).await), None, "a delete on one replica is not seen by the other");

    for round in 0..ROUNDS {
        let key = format!("{p}:take:{round}");
        ok("put", a.put(&key, b"code", LONG).await);
        let winners = race(&both, |store| {
            let key = key.clone();
            async move { ok("take", store.take(&key).await).is_some() }
        })
        .await;
        assert_eq!(winners, 1, "take across two replicas returned the value {winners} times, not once");
    }

    for round in 0..ROUNDS {
        let key = format!("{p}:nx:{round}");
        let winners = race(&both, |store| {
            let key = key.clone();
            async move { ok("put_if_absent", store.put_if_absent(&key, b"x", LONG).await) }
        })
        .await;
        assert_eq!(winners, 1, "put_if_absent across two replicas succeeded {winners} times, not once");
    }

    let key = format!("{p}:counter");
    let tasks: Vec<_> = (0..INCREMENTS)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move { ok("incr", store.incr(&key, LONG).await) })
        })
        .collect();
    let seen: Vec<u64> = join_all(tasks).await;
    let distinct: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(distinct, (1..=INCREMENTS).collect(), "incr across two replicas lost or repeated a count: {seen:?}");
}

/// `ping` succeeds on a reachable backend.
pub async fn ping_answers(store: &Arc<dyn EphemeralStore>) {
    if let Err(e) = store.ping().await {
        panic!("ping failed on a reachable backend: {e}");
    }
}

/// A value put is read back, survives a read, and is gone once deleted; deleting twice is fine.
pub async fn put_get_delete_round_trip(store: &Arc<dyn EphemeralStore>) {
    let p = prefix("round-trip");
    let key = format!("{p}:k");
    let other = format!("{p}:other");
    ok("put", store.put(&key, b"value", LONG).await);
    ok("put", store.put(&other, b"other", LONG).await);
    assert_eq!(ok("get", store.get(&key).await).as_deref(), Some(&b"value"[..]), "get did not return what put stored");
    assert_eq!(ok("get", store.get(&key).await).as_deref(), Some(&b"value"[..]), "get is not repeatable");
    ok("delete", store.delete(&key).await);
    assert_eq!(ok("get", store.get(&key).await), None, "a deleted value is still returned");
    ok("delete", store.delete(&key).await);
    assert_eq!(ok("get", store.get(&other).await).as_deref(), Some(&b"other"[..]), "delete removed another key");
}

/// Reading, taking or deleting a key never written gives nothing, without error.
pub async fn absent_keys_read_as_nothing(store: &Arc<dyn EphemeralStore>) {
    let key = format!("{}:never-written", prefix("absent"));
    assert_eq!(ok("get", store.get(&key).await), None, "get of an absent key returned a value");
    assert_eq!(ok("take", store.take(&key).await), None, "take of an absent key returned a value");
    ok("delete", store.delete(&key).await);
    assert!(ok("members", store.members(&key).await).is_empty(), "members of an absent key is not empty");
}

/// A second `put` replaces the value, including with an empty one.
pub async fn put_overwrites(store: &Arc<dyn EphemeralStore>) {
    let key = format!("{}:k", prefix("overwrite"));
    ok("put", store.put(&key, b"first", LONG).await);
    ok("put", store.put(&key, b"second", LONG).await);
    assert_eq!(ok("get", store.get(&key).await).as_deref(), Some(&b"second"[..]), "put did not replace the value");
    ok("put", store.put(&key, b"", LONG).await);
    assert_eq!(ok("get", store.get(&key).await), Some(Vec::new()), "an empty value reads back as something else");
}

/// A value is never returned after its TTL, by `get` or `take`; a `put` over a live value sets
/// the new TTL, shorter or longer.
pub async fn values_expire_after_their_ttl(store: &Arc<dyn EphemeralStore>) {
    let [short, taken, long, shortened, lengthened] = on_time("a value with a short TTL", || async move {
        let p = prefix("ttl");
        let keys = ["short", "short-taken", "long", "shortened", "lengthened"].map(|k| format!("{p}:{k}"));
        let [short, taken, long, shortened, lengthened] = &keys;
        let written = Instant::now();
        ok("put", store.put(short, b"v", SHORT).await);
        ok("put", store.put(taken, b"v", SHORT).await);
        ok("put", store.put(long, b"v", LONG).await);
        ok("put", store.put(shortened, b"v", LONG).await);
        ok("put", store.put(shortened, b"v", SHORT).await);
        ok("put", store.put(lengthened, b"v", SHORT).await);
        ok("put", store.put(lengthened, b"v", LONG).await);
        let fresh = ok("get", store.get(short).await);
        // Past half the TTL, a value gone proves nothing: that round stalled.
        if written.elapsed() >= SHORT / 2 {
            return None;
        }
        assert!(fresh.is_some(), "a value with a {SHORT:?} TTL is gone right after put");
        Some(keys)
    })
    .await;

    // A clock step: the TTLs must run out, and a value that must be gone gives nothing to wait on.
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(ok("get", store.get(&short).await), None, "get returned a value after its TTL");
    assert_eq!(ok("take", store.take(&taken).await), None, "take returned a value after its TTL");
    assert_eq!(ok("get", store.get(&shortened).await), None, "a put with a shorter TTL kept the old, longer one");
    assert!(ok("get", store.get(&long).await).is_some(), "a value expired long before its TTL");
    assert!(ok("get", store.get(&lengthened).await).is_some(), "a put with a longer TTL kept the old, shorter one");
}

/// `take` returns the value, then nothing; the value is gone for `get` too.
pub async fn take_returns_the_value_exactly_once(store: &Arc<dyn EphemeralStore>) {
    let key = format!("{}:k", prefix("take"));
    ok("put", store.put(&key, b"authorization-code", LONG).await);
    assert_eq!(
        ok("take", store.take(&key).await).as_deref(),
        Some(&b"authorization-code"[..]),
        "take did not return the stored value"
    );
    assert_eq!(ok("take", store.take(&key).await), None, "a second take returned the value again");
    assert_eq!(ok("get", store.get(&key).await), None, "get returned a value already taken");
}

/// 32 tasks `take` one key at the same instant: exactly one gets the value.
pub async fn concurrent_takes_yield_the_value_once(store: &Arc<dyn EphemeralStore>) {
    require_multi_thread();
    let p = prefix("take-race");
    for round in 0..ROUNDS {
        let key = format!("{p}:{round}");
        ok("put", store.put(&key, b"code", LONG).await);
        let stores = vec![store.clone(); RACERS];
        let got: Vec<Option<Vec<u8>>> = race_collect(&stores, |store| {
            let key = key.clone();
            async move { ok("take", store.take(&key).await) }
        })
        .await;
        let winners: Vec<_> = got.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{RACERS} concurrent takes returned the value {} times, not once", winners.len());
        assert_eq!(winners[0], b"code", "the winning take returned another value");
    }
}

/// `put_if_absent` stores into an absent key, then refuses and keeps the first value.
pub async fn put_if_absent_has_one_winner(store: &Arc<dyn EphemeralStore>) {
    let key = format!("{}:k", prefix("nx"));
    assert!(
        ok("put_if_absent", store.put_if_absent(&key, b"first", LONG).await),
        "put_if_absent on an absent key did not store"
    );
    assert!(
        !ok("put_if_absent", store.put_if_absent(&key, b"second", LONG).await),
        "put_if_absent on a live key stored"
    );
    assert_eq!(
        ok("get", store.get(&key).await).as_deref(),
        Some(&b"first"[..]),
        "a refused put_if_absent overwrote the value"
    );
    ok("delete", store.delete(&key).await);
    assert!(
        ok("put_if_absent", store.put_if_absent(&key, b"third", LONG).await),
        "put_if_absent after delete did not store"
    );
}

/// 32 tasks `put_if_absent` one key at the same instant: exactly one wins, and its
/// value is the one stored.
pub async fn concurrent_put_if_absent_has_one_winner(store: &Arc<dyn EphemeralStore>) {
    require_multi_thread();
    let p = prefix("nx-race");
    for round in 0..ROUNDS {
        let key = format!("{p}:{round}");
        let stores = vec![store.clone(); RACERS];
        let wins: Vec<Option<String>> = race_collect(&stores, |store| {
            let key = key.clone();
            async move {
                let mine = format!("racer-{}", next_id());
                ok("put_if_absent", store.put_if_absent(&key, mine.as_bytes(), LONG).await).then_some(mine)
            }
        })
        .await;
        let winners: Vec<String> = wins.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{RACERS} concurrent put_if_absent stored {} times, not once", winners.len());
        assert_eq!(
            ok("get", store.get(&key).await).as_deref(),
            Some(winners[0].as_bytes()),
            "the stored value is not the winner's"
        );
    }
}

/// Once the value expires, `put_if_absent` stores again (a replay cache entry ends with its TTL).
pub async fn put_if_absent_succeeds_again_after_expiry(store: &Arc<dyn EphemeralStore>) {
    let key = format!("{}:k", prefix("nx-ttl"));
    assert!(
        ok("put_if_absent", store.put_if_absent(&key, b"first", SHORT).await),
        "put_if_absent on an absent key did not store"
    );
    // Waits for the store to take it again, up to ten times the TTL: a store that kept the first
    // value for good fails here.
    let deadline = Instant::now() + 10 * SHORT;
    while !ok("put_if_absent", store.put_if_absent(&key, b"again", LONG).await) {
        assert!(Instant::now() < deadline, "put_if_absent is refused {:?} after a {SHORT:?} TTL", 10 * SHORT);
        tokio::time::sleep(SHORT / 10).await;
    }
    assert_eq!(
        ok("get", store.get(&key).await).as_deref(),
        Some(&b"again"[..]),
        "put_if_absent after expiry did not store its value"
    );
}

/// 50 tasks `incr` one counter at once: they see each count from 1 exactly once.
pub async fn concurrent_incr_counts_every_call(store: &Arc<dyn EphemeralStore>) {
    require_multi_thread();
    let key = format!("{}:k", prefix("incr"));
    let barrier = Arc::new(Barrier::new(INCREMENTS as usize));
    let tasks: Vec<_> = (0..INCREMENTS)
        .map(|_| {
            let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                ok("incr", store.incr(&key, LONG).await)
            })
        })
        .collect();
    let seen: Vec<u64> = join_all(tasks).await;
    let distinct: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(distinct, (1..=INCREMENTS).collect(), "concurrent incr lost or repeated a count: {seen:?}");
    assert_eq!(ok("incr", store.incr(&key, LONG).await), INCREMENTS + 1, "the counter did not keep its total");
}

/// 50 guesses at one locked-out secret at once, limit 5: exactly 5 may be checked, whichever
/// they are, and the others are refused (a lockout is counted before the check, not after).
pub async fn concurrent_attempts_admit_exactly_the_limit(store: &Arc<dyn EphemeralStore>) {
    require_multi_thread();
    const LIMIT: u64 = 5;
    let key = format!("{}:k", prefix("attempt"));
    let stores = vec![store.clone(); INCREMENTS as usize];
    let seen = race_collect(&stores, |store| {
        let key = key.clone();
        async move { ok("attempt", store.attempt(&key, LIMIT, LONG).await) }
    })
    .await;
    let allowed: BTreeSet<u64> =
        seen.iter().filter_map(|a| if let Attempt::Allowed(n) = a { Some(*n) } else { None }).collect();
    assert_eq!(allowed, (1..=LIMIT).collect(), "concurrent attempts past the limit were let through: {seen:?}");
    assert_eq!(ok("count", store.count(&key).await), INCREMENTS, "refused attempts were not counted");
    ok("delete", store.delete(&key).await);
    assert_eq!(ok("attempt", store.attempt(&key, LIMIT, LONG).await), Attempt::Allowed(1), "a reset did not reopen");
}

/// A counter's TTL starts when it is created; later `incr` do not push it back, and once it
/// has expired `incr` starts again from 1 (a rate-limit window is fixed).
pub async fn incr_ttl_is_set_at_creation_and_not_extended(store: &Arc<dyn EphemeralStore>) {
    on_time("a counter's TTL", || async move {
        let key = format!("{}:k", prefix("incr-ttl"));
        let ttl = Duration::from_millis(1000);
        let created = Instant::now();
        assert_eq!(ok("incr", store.incr(&key, ttl).await), 1, "a new counter does not start at 1");
        let created_in = created.elapsed();
        if created_in >= Duration::from_millis(200) {
            return None;
        }

        // Clock steps, here and below: the counter's age is what is checked.
        tokio::time::sleep_until((created + Duration::from_millis(500)).into()).await;
        let second = Instant::now();
        let n = ok("incr", store.incr(&key, ttl).await);
        if created.elapsed() >= ttl - Duration::from_millis(100) {
            return None;
        }
        assert_eq!(n, 2, "the counter expired before its TTL");

        // Past the first TTL (with margin for the first call's duration), but before the TTL the
        // second incr would have set had it extended it.
        tokio::time::sleep_until((created + created_in + Duration::from_millis(1250)).into()).await;
        let after = ok("incr", store.incr(&key, ttl).await);
        if second.elapsed() >= ttl {
            return None;
        }
        assert_eq!(after, 1, "incr extended the counter's TTL (the counter read {after} after its TTL)");
        Some(())
    })
    .await;
}

/// A set holds each distinct member once, in any order.
pub async fn sets_collect_distinct_members(store: &Arc<dyn EphemeralStore>) {
    let p = prefix("set");
    let key = format!("{p}:sessions");
    let other = format!("{p}:other");
    for member in ["sid-b", "sid-a", "sid-b", "sid:ç é", "sid-a"] {
        ok("add_to_set", store.add_to_set(&key, member, LONG).await);
    }
    ok("add_to_set", store.add_to_set(&other, "elsewhere", LONG).await);
    let mut members = ok("members", store.members(&key).await);
    members.sort();
    assert_eq!(members, ["sid-a", "sid-b", "sid:ç é"], "members is not the distinct members added");
    ok("delete", store.delete(&key).await);
    assert!(ok("members", store.members(&key).await).is_empty(), "a deleted set still has members");
    assert_eq!(ok("members", store.members(&other).await), ["elsewhere"], "deleting one set changed another");
}

/// A set lives `ttl` from the last `add_to_set`, then reads as empty.
pub async fn sets_expire_ttl_after_the_last_add(store: &Arc<dyn EphemeralStore>) {
    on_time("a set's TTL", || async move {
        let key = format!("{}:k", prefix("set-ttl"));
        let ttl = Duration::from_millis(600);
        let first = Instant::now();
        ok("add_to_set", store.add_to_set(&key, "one", ttl).await);
        // Clock steps, here and below: the set's age is what is checked.
        tokio::time::sleep_until((first + Duration::from_millis(300)).into()).await;
        let second = Instant::now();
        ok("add_to_set", store.add_to_set(&key, "two", ttl).await);

        // Past the first add's TTL, before the second's.
        tokio::time::sleep_until((first + Duration::from_millis(750)).into()).await;
        let mut members = ok("members", store.members(&key).await);
        members.sort();
        if second.elapsed() >= ttl - Duration::from_millis(50) {
            return None;
        }
        assert_eq!(members, ["one", "two"], "the set expired ttl after its first add, not its last");

        tokio::time::sleep_until((second + ttl + Duration::from_millis(400)).into()).await;
        assert!(ok("members", store.members(&key).await).is_empty(), "a set still has members after its TTL");
        Some(())
    })
    .await;
}

/// Keys with separators, spaces, control characters and non-ASCII text are stored as given and
/// never collide with one another.
pub async fn unusual_keys_are_distinct_and_usable(store: &Arc<dyn EphemeralStore>) {
    let p = prefix("keys");
    let suffixes = ["a:b", "a b", "a:b ", "a\tb\nc", "clé d'été/ünïcødé 🔑", "*?[]{}", "'\"\\", ""];
    let keys: Vec<String> = suffixes.iter().map(|s| format!("{p}:{s}")).collect();
    for (i, key) in keys.iter().enumerate() {
        ok("put", store.put(key, i.to_string().as_bytes(), LONG).await);
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            ok("get", store.get(key).await),
            Some(i.to_string().into_bytes()),
            "key {key:?} read back another key's value"
        );
    }
    let set_key = &keys[4];
    ok("delete", store.delete(set_key).await);
    ok("add_to_set", store.add_to_set(set_key, "membre été 🔑", LONG).await);
    assert_eq!(
        ok("members", store.members(set_key).await),
        ["membre été 🔑"],
        "a non-ASCII set key or member did not round-trip"
    );
    assert_eq!(ok("take", store.take(&keys[0]).await), Some(b"0".to_vec()), "take of key {:?} failed", keys[0]);
    assert_eq!(ok("get", store.get(&keys[1]).await), Some(b"1".to_vec()), "taking {:?} removed {:?}", keys[0], keys[1]);
}

/// Values holding every byte value, including NUL and invalid UTF-8, round-trip unchanged.
pub async fn binary_values_round_trip(store: &Arc<dyn EphemeralStore>) {
    let p = prefix("binary");
    let all_bytes: Vec<u8> = (0..=u8::MAX).collect();
    let reversed: Vec<u8> = all_bytes.iter().rev().copied().collect();
    let key = format!("{p}:all");
    ok("put", store.put(&key, &all_bytes, LONG).await);
    assert_eq!(ok("get", store.get(&key).await), Some(all_bytes.clone()), "get altered a binary value");
    assert_eq!(ok("take", store.take(&key).await), Some(all_bytes), "take altered a binary value");
    let key = format!("{p}:nx");
    assert!(
        ok("put_if_absent", store.put_if_absent(&key, &reversed, LONG).await),
        "put_if_absent on an absent key did not store"
    );
    assert_eq!(ok("get", store.get(&key).await), Some(reversed), "put_if_absent altered a binary value");
}

/// A key written as one kind (value, counter, set) and used as another gives
/// [`StoreError::Corrupt`] naming the key, and leaves the stored data as it was.
pub async fn keys_reused_for_another_kind_are_reported_corrupt(store: &Arc<dyn EphemeralStore>) {
    let p = prefix("kinds");
    let value = format!("{p}:value");
    ok("put", store.put(&value, b"not a number", LONG).await);
    expect_corrupt(&value, "add_to_set on a value", store.add_to_set(&value, "m", LONG).await);
    expect_corrupt(&value, "members of a value", store.members(&value).await);
    expect_corrupt(&value, "incr of a non-numeric value", store.incr(&value, LONG).await);
    assert_eq!(
        ok("get", store.get(&value).await).as_deref(),
        Some(&b"not a number"[..]),
        "a refused operation changed the value"
    );

    let set = format!("{p}:set");
    ok("add_to_set", store.add_to_set(&set, "m", LONG).await);
    expect_corrupt(&set, "get of a set", store.get(&set).await);
    expect_corrupt(&set, "take of a set", store.take(&set).await);
    expect_corrupt(&set, "incr of a set", store.incr(&set, LONG).await);
    assert_eq!(ok("members", store.members(&set).await), ["m"], "a refused operation changed the set");
}

fn expect_corrupt<T: std::fmt::Debug>(key: &str, what: &str, result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Corrupt { key: named, .. }) => {
            assert_eq!(named, key, "the Corrupt error of {what} names another key");
        }
        other => panic!("{what} gave {other:?}, not StoreError::Corrupt"),
    }
}

/// A store that fails on command: it passes every call to the store it wraps, but the next write
/// of a value (`put`, or `replace_if`: a refresh rotation writes by compare-and-set) under a key
/// starting with an armed prefix fails (once), as a backend lost mid-request would. For the
/// tests of what callers do after a store error.
pub struct FailingStore {
    inner: Arc<dyn EphemeralStore>,
    fail_put: std::sync::Mutex<Option<String>>,
    /// The key of every `put` so far, in order: for the tests that count writes.
    puts: std::sync::Mutex<Vec<String>>,
}

impl FailingStore {
    /// Wraps `inner`, failing nothing yet.
    pub fn new(inner: Arc<dyn EphemeralStore>) -> Self {
        Self { inner, fail_put: std::sync::Mutex::new(None), puts: std::sync::Mutex::new(Vec::new()) }
    }

    /// How many `put`s so far were under a key starting with `prefix`.
    pub fn puts_under(&self, prefix: &str) -> usize {
        self.puts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|k| k.starts_with(prefix))
            .count()
    }

    /// Makes the next `put` or `replace_if` under a key starting with `prefix` fail.
    pub fn fail_next_put(&self, prefix: &str) {
        *self.fail_put.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(prefix.to_owned());
    }

    /// Whether this write under `key` is the one to fail (disarming it).
    fn armed(&self, key: &str) -> bool {
        let mut fail = self.fail_put.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let hit = fail.as_deref().is_some_and(|p| key.starts_with(p));
        if hit {
            *fail = None;
        }
        hit
    }
}

#[async_trait::async_trait]
impl EphemeralStore for FailingStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.puts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(key.to_owned());
        if self.armed(key) {
            return Err(StoreError::Unavailable("failing on command".into()));
        }
        self.inner.put(key, value, ttl).await
    }
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        self.inner.put_if_absent(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key).await
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.take(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, StoreError> {
        self.inner.incr(key, ttl).await
    }
    async fn add_to_set(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        self.inner.add_to_set(key, member, ttl).await
    }
    async fn members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.inner.members(key).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn replace_if(&self, key: &str, old: Option<&[u8]>, new: &[u8], ttl: Duration) -> Result<bool, StoreError> {
        if self.armed(key) {
            return Err(StoreError::Unavailable("failing on command".into()));
        }
        self.inner.replace_if(key, old, new, ttl).await
    }
}

/// `replace_if` stores into an absent key only when nothing is expected, replaces a value
/// only when it is the one expected, sets the TTL it is given, and leaves a refused key as it was.
pub async fn replace_if_replaces_only_the_expected_value(store: &Arc<dyn EphemeralStore>) {
    let key = format!("{}:k", prefix("cas"));
    let cas = |expected: Option<&'static [u8]>, value: &'static [u8], ttl| {
        let (store, key) = (store.clone(), key.clone());
        async move { ok("replace_if", store.replace_if(&key, expected, value, ttl).await) }
    };
    assert!(!cas(Some(b"v1"), b"v2", LONG).await, "replace_if stored into an absent key expecting a value");
    assert_eq!(ok("get", store.get(&key).await), None, "a refused replace_if wrote");
    assert!(cas(None, b"v1", LONG).await, "replace_if expecting nothing did not store into an absent key");
    assert!(!cas(None, b"other", LONG).await, "replace_if expecting nothing replaced a live value");
    assert!(!cas(Some(b"v0"), b"other", LONG).await, "replace_if replaced a value it did not expect");
    assert_eq!(ok("get", store.get(&key).await).as_deref(), Some(&b"v1"[..]), "a refused replace_if wrote");
    assert!(cas(Some(b"v1"), b"v2", SHORT).await, "replace_if did not replace the expected value");
    assert_eq!(ok("get", store.get(&key).await).as_deref(), Some(&b"v2"[..]));
    // The TTL given is the new value's: once it is past, the key holds nothing again.
    let deadline = Instant::now() + 10 * SHORT;
    while ok("get", store.get(&key).await).is_some() {
        assert!(Instant::now() < deadline, "a replace_if value outlived its {SHORT:?} TTL by {:?}", 9 * SHORT);
        tokio::time::sleep(SHORT / 10).await;
    }
    assert!(cas(None, b"v3", LONG).await, "replace_if expecting nothing refused an expired key");
}

/// 32 tasks replace one value they all read at once: exactly one wins, and its value is stored.
pub async fn concurrent_replace_if_has_one_winner(store: &Arc<dyn EphemeralStore>) {
    require_multi_thread();
    let p = prefix("cas-race");
    for round in 0..ROUNDS {
        let key = format!("{p}:{round}");
        ok("put", store.put(&key, b"version-1", LONG).await);
        let stores = vec![store.clone(); RACERS];
        let wins: Vec<Option<String>> = race_collect(&stores, |store| {
            let key = key.clone();
            async move {
                let mine = format!("racer-{}", next_id());
                let won = store.replace_if(&key, Some(b"version-1"), mine.as_bytes(), LONG).await;
                ok("replace_if", won).then_some(mine)
            }
        })
        .await;
        let winners: Vec<String> = wins.into_iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{RACERS} concurrent replace_if replaced {} times, not once", winners.len());
        assert_eq!(
            ok("get", store.get(&key).await).as_deref(),
            Some(winners[0].as_bytes()),
            "the stored value is not the winner's"
        );
    }
}

/// Unwraps a store result, naming the operation when it failed.
/// How many rounds of a timed check may stall before it fails.
const TIMED_ROUNDS: usize = 5;

/// Runs `round`, a timed check on fresh keys, until one round ran on time (it returns `Some`):
/// a round that stalled past its timing (`None`) proves nothing either way, and a check that
/// never ran must fail, not pass.
async fn on_time<T, F, Fut>(what: &str, mut round: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..TIMED_ROUNDS {
        if let Some(v) = round().await {
            return v;
        }
    }
    panic!("{what}: {TIMED_ROUNDS} rounds in a row stalled past their timing, so nothing was checked")
}

fn ok<T>(operation: &str, result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("{operation} failed: {e}"))
}

/// A key prefix no other check, process or earlier run uses.
fn prefix(check: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("vigie-testkit:{}:{nanos:x}:{}:{check}", std::process::id(), next_id())
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn require_multi_thread() {
    let flavor = Handle::try_current().map(|h| h.runtime_flavor()).ok();
    assert!(
        flavor == Some(RuntimeFlavor::MultiThread),
        "the store conformance suite needs a multi-thread tokio runtime, or its concurrency checks \
         prove nothing: use #[tokio::test(flavor = \"multi_thread\", worker_threads = 4)]"
    );
}

/// Runs `op` once per store, all tasks released together, and counts the `true` results.
async fn race<F, Fut>(stores: &[Arc<dyn EphemeralStore>], op: F) -> usize
where
    F: Fn(Arc<dyn EphemeralStore>) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    race_collect(stores, op).await.into_iter().filter(|won| *won).count()
}

/// Runs `op` once per store, all tasks released together, and returns their results.
async fn race_collect<F, Fut, T>(stores: &[Arc<dyn EphemeralStore>], op: F) -> Vec<T>
where
    F: Fn(Arc<dyn EphemeralStore>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(stores.len()));
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let barrier = barrier.clone();
            let fut = op(store.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    join_all(tasks).await
}

async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(result) => results.push(result),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a racing task was cancelled: {e}"),
        }
    }
    results
}
