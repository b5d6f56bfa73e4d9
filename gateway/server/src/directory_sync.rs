//! The sync of the establishment's directory (`[directory.ldap]`) into Vigie's: joiners created,
//! movers updated, accounts disabled there or gone (leavers) disabled here with their access
//! ended; run by `vigie directory sync` and, every `sync_interval_secs`, by one replica of `serve`.
//!
//! An entry is matched by its stable id (`objectGUID` / `entryUUID`, unchanged by a rename) first,
//! then by matricule (the HR key both share); the link is stored with the identity.
use std::collections::HashSet;
use std::time::Duration;

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::{Account, Directory, Identity};
use vigie_core::store::EphemeralStore;
use vigie_directory_ldap::{AccountState, LdapSource, LdapUser};

use crate::config::Config;
use crate::session::keys;
use crate::state::{Audit, Ports};

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Accounts disabled because their entry is disabled or expired.
    pub disabled: usize,
    /// Entries without a matricule: nothing links them to HR's record.
    pub skipped: usize,
    /// Accounts disabled because their entry is gone from the directory.
    pub left: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "directory sync: {} created, {} updated, {} unchanged, {} disabled, {} skipped (no matricule), {} left",
            self.created, self.updated, self.unchanged, self.disabled, self.skipped, self.left
        )
    }
}

/// The audit line of an account the sync disabled.
fn disabled_event(identity_id: &str, username: &str, reason: &str) -> AuditEvent {
    AuditEvent {
        kind: Some(AuditKind::DirectorySync),
        outcome: Some(Outcome::Success),
        subject: Some(identity_id.to_owned()),
        username: Some(username.to_owned()),
        actor: Some("directory-sync".into()),
        object: Some(format!("account:{username}")),
        reason: Some(reason.to_owned()),
        ..Default::default()
    }
}

const DISABLED_THERE: &str = "account disabled: disabled or expired in the directory";
const GONE: &str = "account disabled: its entry is gone from the directory (a leaver)";

/// One full pass. A failure stops it (what was written stays: each user is one upsert). The
/// accounts it disables get a durable note of access to end, which `serve`'s sweep completes
/// (sessions, refresh families, back-channel logout); each is given to `audit`.
pub async fn sync(ldap: &LdapSource, directory: &dyn Directory, audit: &dyn Fn(AuditEvent)) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let users = ldap.users().await?;
    // Every listed entry, matricule or not: only an entry the directory no longer lists has left.
    let listed: HashSet<&str> = users.iter().map(|u| u.id.as_str()).filter(|id| !id.is_empty()).collect();
    for user in &users {
        let Some(matricule) = user.matricule.clone().filter(|m| !m.trim().is_empty()) else {
            tracing::warn!(dn = %user.dn, "directory entry without a matricule: not synced");
            report.skipped += 1;
            continue;
        };
        let existing = directory.identity_for_directory_entry(&user.id, &matricule).await?;
        let identity = merged(existing.as_ref(), user, &matricule);
        let id = directory.upsert_identity(&identity).await?;
        let linked = !user.id.is_empty() && directory.link_to_directory(&id, &user.id).await?;
        let old = match directory.username_of(&id).await? {
            Some(name) => directory.account_by_username(&name).await?,
            None => None,
        };
        let disabled = matches!(user.state, Some(AccountState::Disabled | AccountState::Expired));
        // An account that could log in until now is disabled with its access ended, below.
        let disabling = disabled && old.as_ref().is_some_and(|a| !a.disabled);
        let account = Account {
            identity_id: id.clone(),
            username: user.login.clone(),
            // Kept as they were: the TOTP is Vigie's; a password hash is unused once the
            // directory checks passwords, and is dropped by nobody here.
            password_hash: old.as_ref().and_then(|a| a.password_hash.clone()),
            totp_secret: old.as_ref().and_then(|a| a.totp_secret.clone()),
            disabled: disabled && !disabling,
        };
        let account_changed = old.as_ref() != Some(&Account { disabled, ..account.clone() });
        if old.as_ref() != Some(&account) {
            directory.upsert_account(&account).await?;
        }
        if disabling && directory.disable_account(&id, DISABLED_THERE).await? {
            tracing::info!(username = %user.login, identity = %id, "{DISABLED_THERE}");
            audit(disabled_event(&id, &user.login, DISABLED_THERE));
            report.disabled += 1;
        } else if disabled && old.is_none() {
            report.disabled += 1;
        }
        match existing {
            None => report.created += 1,
            Some(before) if before != Identity { id: before.id.clone(), ..identity } || account_changed || linked => {
                report.updated += 1
            }
            Some(_) => report.unchanged += 1,
        }
    }
    // Leavers. An empty listing is a misconfiguration (`user_base`, `user_filter`) or a directory
    // answering wrongly far more often than everyone leaving: nobody is disabled on it.
    let candidates = directory.directory_linked_enabled().await?;
    if listed.is_empty() && !candidates.is_empty() {
        anyhow::bail!(
            "the directory listed no user while {} accounts came from it: none disabled; check \
             `directory.ldap.user_base` and `user_filter`",
            candidates.len()
        );
    }
    for (identity_id, directory_id, username) in candidates {
        if !listed.contains(directory_id.as_str()) && directory.disable_account(&identity_id, GONE).await? {
            tracing::info!(%username, identity = %identity_id, "{GONE}");
            audit(disabled_event(&identity_id, &username, GONE));
            report.left += 1;
        }
    }
    Ok(report)
}

/// The identity as the directory says it, over what Vigie had: what the directory does not hold
/// (birth date; unit, métier, grade, idNat when not mapped or empty) is kept.
fn merged(existing: Option<&Identity>, user: &LdapUser, matricule: &str) -> Identity {
    let keep = |new: &Option<String>, old: Option<&Option<String>>| new.clone().or_else(|| old.cloned().flatten());
    Identity {
        id: existing.map(|i| i.id.clone()).unwrap_or_default(),
        matricule: matricule.to_owned(),
        family_name: user.family_name.clone().or_else(|| existing.map(|i| i.family_name.clone())).unwrap_or_default(),
        given_name: user.given_name.clone().or_else(|| existing.map(|i| i.given_name.clone())).unwrap_or_default(),
        birth_date: existing.and_then(|i| i.birth_date.clone()),
        metier: keep(&user.metier, existing.map(|i| &i.metier)),
        grade: keep(&user.grade, existing.map(|i| &i.grade)),
        idnat: user
            .idnat
            .as_deref()
            .and_then(|s| vigie_core::idnat::IdNat::parse(s).ok())
            .or_else(|| existing.and_then(|i| i.idnat.clone())),
        units: if user.units.is_empty() {
            existing.map(|i| i.units.clone()).unwrap_or_default()
        } else {
            let share = (100 / user.units.len()).max(1) as u8;
            user.units.iter().map(|uf| vigie_core::directory::Affectation { uf: uf.clone(), share }).collect()
        },
    }
}

/// Runs a pass every `directory.ldap.sync_interval_secs` on one replica at a time: the one that
/// takes the lease in the shared store. A failed pass is logged and counted
/// (`vigie_directory_sync_total{result="failed"}`) and tried again at the next period; the
/// server goes on.
pub fn spawn(
    config: crate::state::Part<Config>,
    ports: crate::state::Part<Ports>,
    upstreams: crate::state::Part<crate::state::Upstreams>,
    audit: crate::state::Part<Audit>,
) {
    let Some(ldap) = upstreams.ldap.clone() else { return };
    let every = config.directory.ldap.as_ref().map_or(0, |l| l.sync_interval_secs);
    if every == 0 {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            once(&ldap, &ports, &audit, every).await;
        }
    });
}

/// One periodic pass, if this replica takes the lease.
async fn once(ldap: &LdapSource, ports: &Ports, audit: &Audit, every: u64) {
    let store = ports.store.as_ref();
    match Lease::take(store, every).await {
        Ok(Some(lease)) => {
            let started = std::time::Instant::now();
            let record = |event: AuditEvent| audit.record(event);
            match sync(ldap, ports.directory.as_ref(), &record).await {
                Ok(report) => {
                    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "{report}");
                    metrics::counter!("vigie_directory_sync_total", "result" => "ok").increment(1);
                    if report.disabled + report.left > 0 {
                        tell(store).await;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "directory sync failed; tried again next period");
                    metrics::counter!("vigie_directory_sync_total", "result" => "failed").increment(1);
                }
            }
            lease.release(store).await;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "directory sync: the lease could not be taken; tried again next period");
            metrics::counter!("vigie_directory_sync_total", "result" => "failed").increment(1);
        }
    }
}

/// The right to run a pass, held by one replica at a time.
struct Lease;

impl Lease {
    /// `None` when another replica holds it.
    async fn take(store: &dyn EphemeralStore, every: u64) -> Result<Option<Lease>, vigie_core::store::StoreError> {
        // Longer than a pass (10,006 entries take about 20 s: docs/directory.md) and than the
        // period, so that a replica that dies mid-pass holds the others back for a while only.
        let ttl = Duration::from_secs(every.max(600) * 2);
        Ok(store.put_if_absent(&keys::directory_sync_lease("ldap"), b"1", ttl).await?.then_some(Lease))
    }

    async fn release(self, store: &dyn EphemeralStore) {
        if let Err(e) = store.delete(&keys::directory_sync_lease("ldap")).await {
            tracing::warn!(error = %e, "directory sync: the lease could not be released; it lapses by itself");
        }
    }
}

/// Every replica drops its cached principals: a disabled account's must not outlive the change.
async fn tell(store: &dyn EphemeralStore) {
    if let Err(e) = crate::policy::view::signal_change(store).await {
        tracing::warn!(error = %e, "directory sync: replicas not told; their caches lapse by themselves");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_replica_at_a_time_runs_a_pass_and_the_next_may_once_it_is_released() {
        let store = vigie_store_embedded::EmbeddedStore::new();
        let first = Lease::take(&store, 60).await.unwrap().expect("a free lease is taken");
        assert!(Lease::take(&store, 60).await.unwrap().is_none(), "a second replica waits");
        first.release(&store).await;
        assert!(Lease::take(&store, 60).await.unwrap().is_some(), "released: the next pass may run");
    }
}
