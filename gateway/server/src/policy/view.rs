//! One view of access across replicas: a change of a status, a role or an identity (the CLI, an
//! HR import) replaces a random mark in the ephemeral store, and every replica, reading the mark
//! each second, drops its caches of principals and identities when it changed.
//!
//! Why a mark polled each second rather than Redis pub/sub: the store port stays as it is (the
//! embedded store and Redis keep one contract), a replica that was disconnected when the change
//! was made still sees it at its next read (a missed message is never missed here), and the SSO
//! hot path costs nothing more: it reads the local caches as before; the poll is one `GET` per
//! replica per second, off every request's path. Every cache is dropped, not one person's:
//! changes are rare (HR events), and the price is one directory read per active person.
//! Cards, FIDO2 keys and sponsorships are not cached: an SSO round trip and a refresh read them
//! each time (`oidc::token::withdrawn_mie`), so their changes need no mark.
use std::sync::Arc;
use std::time::Duration;

use vigie_core::directory::DirectoryError;
use vigie_core::provisioning::{GroupRecord, Provisioning, ProvisioningError, Stored, UserRecord};
use vigie_core::roles::{Role, Roles};
use vigie_core::store::{EphemeralStore, StoreError};

use crate::session::keys;
use crate::state::{Part, PolicyGate, Ports};

/// The one scope of the mark: who may access what.
const SCOPE: &str = "access";
/// How long the mark lives after the last change; its absence reads as one more change, which
/// only drops the caches once more.
const MARK_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often each replica reads the mark: about the longest a replica goes on deciding on a
/// principal or an identity that changed elsewhere.
pub const POLL: Duration = Duration::from_secs(1);

/// Tells every replica sharing `store` that who may access what changed. Called after the change
/// is written: a replica that reads the directory after seeing the mark reads the new state.
pub async fn signal_change(store: &dyn EphemeralStore) -> Result<(), StoreError> {
    let mut random = [0u8; 16];
    // A mark never met before, so that no replica can take a new change for one it already saw.
    aws_lc_rs::rand::fill(&mut random).map_err(|_| StoreError::Unavailable("no system randomness".into()))?;
    let mark: String = random.iter().map(|b| format!("{b:02x}")).collect();
    store.put(&keys::view_epoch(SCOPE), mark.as_bytes(), MARK_TTL).await
}

/// The mark as it is now (`None` before the first change, or 30 days after the last).
pub async fn mark(store: &dyn EphemeralStore) -> Result<Option<Vec<u8>>, StoreError> {
    store.get(&keys::view_epoch(SCOPE)).await
}

/// From a maintenance command, another process: tells the replicas through the deployment's
/// store when it is shared (Redis). The change is saved already: a failure here is a warning on
/// standard error, with what it means.
pub async fn tell_replicas(config: &crate::config::Config) {
    let within = config.directory.identity_cache_secs;
    let url = match (config.store.kind, config.store.url.as_deref()) {
        (crate::config::StoreKind::Redis, Some(url)) => url,
        _ => {
            // The embedded store lives inside the running gateway: nothing outside it can reach it.
            eprintln!(
                "note: the store is embedded: a running `vigie serve` applies this change within \
                 `directory.identity_cache_secs` ({within} s)"
            );
            return;
        }
    };
    let told = match vigie_store_redis::RedisStore::connect(url, &config.store.key_prefix).await {
        Ok(store) => signal_change(&store).await,
        Err(e) => Err(e),
    };
    if let Err(e) = told {
        eprintln!(
            "warning: the change is saved, but the replicas could not be told ({e}): they apply it within \
             `directory.identity_cache_secs` ({within} s); run the command again once the store answers"
        );
    }
}

/// The directory's role and provisioning writes, each followed by [`signal_change`]: every write
/// of who holds which role or whether a person is active (SCIM Users and Groups, the roles the
/// LDAP password login brings in from the directory's groups, the demo's seed) goes through the
/// ports built from this, so no caller can forget the signal and none sends its own. A write that
/// failed changed nothing and signals nothing; a write that succeeded but whose signal failed is
/// saved, and the replicas apply it within `directory.identity_cache_secs` (logged).
/// Maintenance commands (`vigie users …`, another process) tell the replicas by [`tell_replicas`].
pub struct Signalling<D: ?Sized> {
    inner: Arc<D>,
    store: Arc<dyn EphemeralStore>,
}

impl<D: ?Sized> Signalling<D> {
    pub fn new(inner: Arc<D>, store: Arc<dyn EphemeralStore>) -> Self {
        Signalling { inner, store }
    }

    /// Tells the replicas after a write that may have changed access; passes its outcome on.
    async fn after<T, E>(&self, what: &str, written: Result<T, E>) -> Result<T, E> {
        if written.is_ok()
            && let Err(e) = signal_change(self.store.as_ref()).await
        {
            tracing::warn!(
                error = %e,
                "{what} is saved, but the replicas could not be told: they apply it within \
                 `directory.identity_cache_secs`"
            );
        }
        written
    }
}

#[async_trait::async_trait]
impl<D: Roles + ?Sized> Roles for Signalling<D> {
    async fn roles_of(&self, identity_id: &str) -> Result<Vec<Role>, DirectoryError> {
        self.inner.roles_of(identity_id).await
    }

    async fn grant(&self, identity_id: &str, role: Role, by: &str) -> Result<(), DirectoryError> {
        self.after("a role granted", self.inner.grant(identity_id, role, by).await).await
    }

    async fn revoke(&self, identity_id: &str, role: Role) -> Result<bool, DirectoryError> {
        // A role that was not held changed nothing.
        match self.inner.revoke(identity_id, role).await? {
            true => self.after("a role revoked", Ok(true)).await,
            false => Ok(false),
        }
    }
}

/// Reads pass through; every write of a User or a Group tells the replicas.
#[async_trait::async_trait]
impl<D: Provisioning + ?Sized> Provisioning for Signalling<D> {
    async fn create_user(&self, user: &UserRecord) -> Result<Stored, ProvisioningError> {
        self.after("a SCIM User", self.inner.create_user(user).await).await
    }
    async fn replace_user(&self, id: &str, user: &UserRecord, v: Option<i64>) -> Result<Stored, ProvisioningError> {
        self.after("a SCIM User", self.inner.replace_user(id, user, v).await).await
    }
    async fn delete_user(&self, id: &str, v: Option<i64>) -> Result<(), ProvisioningError> {
        self.after("a SCIM User's deletion", self.inner.delete_user(id, v).await).await
    }
    async fn create_group(&self, group: &GroupRecord) -> Result<Stored, ProvisioningError> {
        self.after("a SCIM Group (a role)", self.inner.create_group(group).await).await
    }
    async fn replace_group(&self, id: &str, group: &GroupRecord, v: Option<i64>) -> Result<Stored, ProvisioningError> {
        self.after("a SCIM Group (a role)", self.inner.replace_group(id, group, v).await).await
    }
    async fn delete_group(&self, id: &str, v: Option<i64>) -> Result<(), ProvisioningError> {
        self.after("a SCIM Group's deletion (a role)", self.inner.delete_group(id, v).await).await
    }
    async fn user(&self, id: &str) -> Result<Option<Stored>, ProvisioningError> {
        self.inner.user(id).await
    }
    async fn users(&self) -> Result<Vec<Stored>, ProvisioningError> {
        self.inner.users().await
    }
    async fn group(&self, id: &str) -> Result<Option<Stored>, ProvisioningError> {
        self.inner.group(id).await
    }
    async fn groups(&self) -> Result<Vec<Stored>, ProvisioningError> {
        self.inner.groups().await
    }
}

/// Drops this replica's caches that decide access.
pub fn drop_caches(gate: &PolicyGate) {
    gate.principals.clear();
    gate.identities.clear();
}

/// Reads the mark each [`POLL`] and drops the caches when it changed.
pub fn spawn(policy: Part<PolicyGate>, ports: Part<Ports>) {
    actix_web::rt::spawn(async move {
        let mut watch = Watch::default();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            watch.tick(ports.store.as_ref(), || drop_caches(&policy)).await;
        }
    });
}

/// What a replica last read of the mark.
#[derive(Default)]
struct Watch {
    /// `None` before the first read and after a failed one: the next read drops the caches,
    /// since a change may have been missed meanwhile.
    seen: Option<Option<Vec<u8>>>,
}

impl Watch {
    /// One read of the mark; `drop` runs when it differs from the last one seen. Tells whether
    /// it ran.
    async fn tick(&mut self, store: &dyn EphemeralStore, drop: impl FnOnce()) -> bool {
        // The mark as every reader reads it (`standing::Standings` too): one path, so that
        // what this replica saw and what a request compares against cannot drift apart.
        match mark(store).await {
            Ok(mark) => {
                let changed = self.seen.as_ref() != Some(&mark);
                if changed {
                    if self.seen.is_some() {
                        tracing::info!("access changed in the deployment: cached principals and identities dropped");
                    }
                    drop();
                }
                self.seen = Some(mark);
                changed
            }
            Err(e) => {
                if self.seen.is_some() {
                    tracing::warn!(
                        error = %e,
                        "cannot read the mark of access changes: a status or role changed elsewhere takes effect \
                         here within `directory.identity_cache_secs`, until the store answers again"
                    );
                }
                self.seen = None;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TtlCache;

    #[tokio::test]
    async fn a_change_signalled_by_one_replica_drops_the_caches_of_the_others_at_their_next_read() {
        let store = vigie_store_embedded::EmbeddedStore::new();
        let (mut a, mut b) = (Watch::default(), Watch::default());
        // The first read drops (nothing is known of what happened before), then nothing changes.
        assert!(a.tick(&store, || ()).await && b.tick(&store, || ()).await);
        assert!(!a.tick(&store, || ()).await && !b.tick(&store, || ()).await);
        signal_change(&store).await.unwrap();
        let cache = TtlCache::default();
        cache.put("i1", "active", Duration::from_secs(600));
        assert!(b.tick(&store, || cache.clear()).await, "the mark changed: B drops its caches");
        assert_eq!(cache.get("i1", Duration::from_secs(600)), None);
        assert!(a.tick(&store, || ()).await, "and so does A");
        assert!(!b.tick(&store, || ()).await, "once per change");
        signal_change(&store).await.unwrap();
        signal_change(&store).await.unwrap();
        assert!(b.tick(&store, || ()).await, "two changes between two reads drop once");
    }

    #[tokio::test]
    async fn the_watch_keeps_the_mark_as_mark_reads_it() {
        let store = vigie_store_embedded::EmbeddedStore::new();
        let mut w = Watch::default();
        assert!(w.tick(&store, || ()).await);
        assert_eq!(w.seen, Some(None), "before any change the mark is absent, and seen so");
        signal_change(&store).await.unwrap();
        assert!(w.tick(&store, || ()).await);
        let now = mark(&store).await.unwrap();
        assert!(now.is_some(), "a change leaves a mark");
        assert_eq!(w.seen, Some(now), "the watch saw the very mark the requests compare against");
    }

    #[tokio::test]
    async fn a_read_failure_drops_the_caches_at_the_next_read_that_succeeds() {
        let inner: Arc<dyn EphemeralStore> = Arc::new(vigie_store_embedded::EmbeddedStore::new());
        let mut w = Watch::default();
        assert!(w.tick(inner.as_ref(), || ()).await);
        // A store that cannot answer: the mark may have changed meanwhile.
        assert!(!w.tick(&Unreachable, || ()).await);
        assert!(w.tick(inner.as_ref(), || ()).await, "after a failed read, the next one drops the caches");
    }

    #[test]
    fn a_value_read_before_a_clear_is_not_kept_after_it() {
        let cache = TtlCache::default();
        let ttl = Duration::from_secs(600);
        let before = cache.generation();
        // A request read the directory (the old status); the change is signalled and dropped
        // meanwhile; the request must not put back what it read.
        cache.clear();
        cache.put_since("i1", "active", ttl, before);
        assert_eq!(cache.get("i1", ttl), None, "a stale read survived the change");
        let after = cache.generation();
        cache.put_since("i1", "suspended", ttl, after);
        assert_eq!(cache.get("i1", ttl), Some("suspended"));
    }

    /// A store that never answers.
    struct Unreachable;

    #[async_trait::async_trait]
    impl EphemeralStore for Unreachable {
        async fn put(&self, _: &str, _: &[u8], _: Duration) -> Result<(), StoreError> {
            Err(down())
        }
        async fn put_if_absent(&self, _: &str, _: &[u8], _: Duration) -> Result<bool, StoreError> {
            Err(down())
        }
        async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Err(down())
        }
        async fn take(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Err(down())
        }
        async fn delete(&self, _: &str) -> Result<(), StoreError> {
            Err(down())
        }
        async fn incr(&self, _: &str, _: Duration) -> Result<u64, StoreError> {
            Err(down())
        }
        async fn add_to_set(&self, _: &str, _: &str, _: Duration) -> Result<(), StoreError> {
            Err(down())
        }
        async fn members(&self, _: &str) -> Result<Vec<String>, StoreError> {
            Err(down())
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Err(down())
        }
        async fn replace_if(&self, _: &str, _: Option<&[u8]>, _: &[u8], _: Duration) -> Result<bool, StoreError> {
            Err(down())
        }
    }

    fn down() -> StoreError {
        StoreError::Unavailable("down".into())
    }
}
