//! The account's standing (disabled, employment status) as `/authorize`, `/userinfo` and the
//! forward-auth check ask it at every request, kept by each replica for as long as the
//! deployment's mark of access changes (`policy::view`) stays the same: the SSO hot path reads the
//! mark from the shared store (one `GET`, next to the session it reads there anyway) instead of
//! two directory reads (issue 15: with PostgreSQL, two database round trips per SSO round trip).
//!
//! Why this keeps "at the next request": every writer of a status or of `disabled` replaces the
//! mark after its write and before it answers (`view::Signalling` for SCIM and roles,
//! `view::tell_replicas` for maintenance commands, the LDAP sync, the life cycle), and the mark is
//! read on each request, not polled: the next request of any replica sees the new mark and reads
//! the directory. A mark read before the directory was read is what is kept with the standing,
//! so a change that lands in between is seen at the next request too.
//!
//! Only with a shared store (Redis): an embedded store lives inside one gateway, where a
//! maintenance command in another process cannot replace the mark; there the directory is read
//! each time, as before. A store that cannot answer: the directory is read, nothing is kept.
use std::time::Duration;

use crate::state::{Ports, TtlCache};

/// What one replica keeps: per identity, the mark it was read under and the standing.
pub struct Standings {
    entries: TtlCache<(Option<Vec<u8>>, Option<String>)>,
    /// How long a standing is kept at most (a change whose signal failed still counts within
    /// it): `directory.identity_cache_secs`; zero keeps none.
    ttl: Duration,
}

impl Standings {
    /// Keeps standings `ttl` when the store is `shared` across processes; else keeps none.
    pub fn new(ttl: Duration, shared: bool) -> Self {
        Standings { entries: TtlCache::default(), ttl: if shared { ttl } else { Duration::ZERO } }
    }

    /// Why the account may no longer be used, if it may not (`oidc::token::account_standing`),
    /// as the directory says since the last change of access in the deployment.
    pub async fn of(&self, ports: &Ports, identity_id: &str) -> Result<Option<String>, String> {
        if self.ttl.is_zero() {
            return crate::oidc::token::account_standing(ports, identity_id).await;
        }
        let mark = match super::view::mark(ports.store.as_ref()).await {
            Ok(mark) => mark,
            Err(e) => {
                tracing::debug!(error = %e, "the mark of access changes cannot be read: the directory is");
                return crate::oidc::token::account_standing(ports, identity_id).await;
            }
        };
        if let Some((seen, standing)) = self.entries.get(identity_id, self.ttl)
            && seen == mark
        {
            return Ok(standing);
        }
        let standing = crate::oidc::token::account_standing(ports, identity_id).await?;
        self.entries.put(identity_id, (mark, standing.clone()), self.ttl);
        Ok(standing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_store_keeps_no_standing() {
        assert!(Standings::new(Duration::from_secs(600), false).ttl.is_zero());
        assert_eq!(Standings::new(Duration::from_secs(600), true).ttl, Duration::from_secs(600));
    }
}
