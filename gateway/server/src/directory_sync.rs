//! The sync of the establishment's directory (`[directory.ldap]`) into Vigie's: joiners created,
//! movers updated, accounts disabled there or gone (leavers) disabled here with their access
//! ended; run by `vigie directory sync` and, every `sync_interval_secs`, by one replica of `serve`
//! (a lease in the shared store, renewed while the pass runs).
//!
//! An entry is matched by its stable id (`objectGUID` / `entryUUID`, unchanged by a rename) first,
//! then by matricule (the HR key both share); the link is stored with the identity. A periodic
//! pass reads only the entries changed since the last one (AD's `uSNChanged`, OpenLDAP's
//! `entryCSN`, else `modifyTimestamp`: `vigie_directory_ldap::SyncMark`), kept in Vigie's
//! directory; every `full_sync_interval_secs` it reads them all, which is how leavers (entries
//! gone) are found.
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_core::directory::{Account, Directory, Identity};
use vigie_core::store::EphemeralStore;
use vigie_directory_ldap::{AccountState, LdapSource, LdapUser, MatriculeChanges, SyncMark};

use crate::config::Config;
use crate::session::keys;
use crate::state::{Audit, Ports};

/// The name of the LDAP source in the sync state and the lease.
pub const SOURCE: &str = "ldap";

/// Which entries a pass reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Every entry: joiners, movers and leavers.
    Full,
    /// Those changed since the last pass, when it left a mark this directory can use and the
    /// last full pass is less than `full_sync_interval_secs` old; a full pass otherwise.
    Changed,
}

/// What a sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every entry was read (leavers looked for); else only those changed since the last pass.
    pub full: bool,
    /// Entries the directory returned.
    pub read: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Accounts disabled because their entry is disabled or expired.
    pub disabled: usize,
    /// Entries without a matricule: nothing links them to HR's record.
    pub skipped: usize,
    /// Linked entries whose matricule changed, not synced (`matricule_changes = "refuse"`, or
    /// the new matricule is another identity's).
    pub refused: usize,
    /// Accounts disabled because their entry is gone from the directory.
    pub left: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "directory sync ({}, {} read): {} created, {} updated, {} unchanged, {} disabled, {} skipped (no \
             matricule), {} refused (matricule changed), {} left",
            if self.full { "full pass" } else { "changed since the last pass" },
            self.read,
            self.created,
            self.updated,
            self.unchanged,
            self.disabled,
            self.skipped,
            self.refused,
            self.left
        )
    }
}

/// An audit line of the sync about one account.
fn sync_event(identity_id: &str, username: &str, outcome: Outcome, object: String, reason: &str) -> AuditEvent {
    AuditEvent {
        kind: Some(AuditKind::DirectorySync),
        outcome: Some(outcome),
        subject: Some(identity_id.to_owned()),
        username: Some(username.to_owned()),
        actor: Some("directory-sync".into()),
        object: Some(object),
        reason: Some(reason.to_owned()),
        ..Default::default()
    }
}

/// The audit line of an account the sync disabled.
fn disabled_event(identity_id: &str, username: &str, reason: &str) -> AuditEvent {
    sync_event(identity_id, username, Outcome::Success, format!("account:{username}"), reason)
}

const DISABLED_THERE: &str = "account disabled: disabled or expired in the directory";
const GONE: &str = "account disabled: its entry is gone from the directory (a leaver)";
const LEASE_LOST: &str = "the sync's lease was lost (not renewed in time; another replica may run the sync now): \
     this pass stopped writing; the next one goes on from the last recorded mark";

/// One pass. A failure stops it (what was written stays: each user is one upsert; the mark is
/// recorded only at the end, so the next pass reads again what this one did not finish). The
/// accounts it disables get a durable note of access to end, which `serve`'s sweep completes
/// (sessions, refresh families, back-channel logout); each is given to `audit`. The `lease` of a
/// pass run under one is confirmed before every write: once it is lost, the pass stops.
pub async fn sync(
    ldap: &LdapSource,
    directory: &dyn Directory,
    audit: &dyn Fn(AuditEvent),
    pass: Pass,
    lease: Option<&Lease>,
) -> anyhow::Result<Report> {
    let started_at = crate::now();
    let state = directory.directory_sync_state(SOURCE).await?;
    let full_every = ldap.full_sync_interval().as_secs() as i64;
    let since = match (pass, &state) {
        (Pass::Changed, Some((Some(mark), full_at))) if started_at - full_at < full_every => SyncMark::decode(mark),
        _ => None,
    };
    let listing = ldap.users_since(since.as_ref()).await?;
    let users = listing.users;
    let mut report = Report { full: listing.full, read: users.len(), ..Report::default() };
    // Every listed entry, matricule or not: only an entry the directory no longer lists has left.
    let listed: HashSet<&str> = users.iter().map(|u| u.id.as_str()).filter(|id| !id.is_empty()).collect();
    for user in &users {
        let Some(matricule) = user.matricule.clone().filter(|m| !m.trim().is_empty()) else {
            tracing::warn!(dn = %user.dn, "directory entry without a matricule: not synced");
            report.skipped += 1;
            continue;
        };
        check(lease).await?;
        let disabled = matches!(user.state, Some(AccountState::Disabled | AccountState::Expired));
        let mut existing = directory.identity_for_directory_entry(&user.id, &matricule).await?;
        let mut renumbered = false;
        // Found by its link with another matricule: the directory changed it (a lookup by
        // matricule finds only its own). Upserted as is, it would make a second identity.
        if let Some(before) = existing.as_mut().filter(|b| b.matricule != matricule) {
            if !matricule_changed(ldap, directory, audit, user, before, &matricule, disabled).await? {
                report.refused += 1;
                continue;
            }
            before.matricule = matricule.clone();
            renumbered = true;
        }
        let identity = merged(existing.as_ref(), user, &matricule);
        let id = directory.upsert_identity(&identity).await?;
        let linked = !user.id.is_empty() && directory.link_to_directory(&id, &user.id).await?;
        let old = match directory.username_of(&id).await? {
            Some(name) => directory.account_by_username(&name).await?,
            None => None,
        };
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
            Some(before)
                if before != Identity { id: before.id.clone(), ..identity }
                    || account_changed
                    || linked
                    || renumbered =>
            {
                report.updated += 1
            }
            Some(_) => report.unchanged += 1,
        }
    }
    if listing.full {
        report.left = leavers(directory, audit, &listed, lease).await?;
    }
    check(lease).await?;
    let full_at = match state {
        Some((_, at)) if !listing.full => at,
        _ => started_at,
    };
    directory.set_directory_sync_state(SOURCE, listing.mark.map(|m| m.encode()).as_deref(), full_at).await?;
    Ok(report)
}

/// Whether the pass may write now: always when run without a lease, else when its lease is
/// still this holder's right before the write (a holder paused past its TTL stops here).
async fn check(lease: Option<&Lease>) -> anyhow::Result<()> {
    match lease {
        Some(lease) if !lease.confirm().await => Err(anyhow::anyhow!(LEASE_LOST)),
        _ => Ok(()),
    }
}

/// Disables the accounts linked to an entry a full listing no longer holds; how many.
async fn leavers(
    directory: &dyn Directory,
    audit: &dyn Fn(AuditEvent),
    listed: &HashSet<&str>,
    lease: Option<&Lease>,
) -> anyhow::Result<usize> {
    // An empty listing is a misconfiguration (`user_base`, `user_filter`) or a directory
    // answering wrongly far more often than everyone leaving: nobody is disabled on it.
    let candidates = directory.directory_linked_enabled().await?;
    if listed.is_empty() && !candidates.is_empty() {
        anyhow::bail!(
            "the directory listed no user while {} accounts came from it: none disabled; check \
             `directory.ldap.user_base` and `user_filter`",
            candidates.len()
        );
    }
    let mut left = 0;
    for (identity_id, directory_id, username) in candidates {
        if listed.contains(directory_id.as_str()) {
            continue;
        }
        check(lease).await?;
        if directory.disable_account(&identity_id, GONE).await? {
            tracing::info!(%username, identity = %identity_id, "{GONE}");
            audit(disabled_event(&identity_id, &username, GONE));
            left += 1;
        }
    }
    Ok(left)
}

/// A linked entry whose matricule the directory changed: `true` when the identity now carries
/// the new one (`matricule_changes = "follow"` and nobody else holds it); else the change is
/// refused, logged and audited, and the entry is not synced (its account is still disabled if
/// the directory disabled it: a refused matricule must not keep a leaver in).
async fn matricule_changed(
    ldap: &LdapSource,
    directory: &dyn Directory,
    audit: &dyn Fn(AuditEvent),
    user: &LdapUser,
    before: &Identity,
    matricule: &str,
    disabled: bool,
) -> anyhow::Result<bool> {
    let object = format!("matricule:{} -> {matricule}", before.matricule);
    let refusal = match ldap.matricule_changes() {
        MatriculeChanges::Refuse => Some(
            "matricule changed in the directory: not applied, HR's record owns it; make HR's record and the \
             directory agree, or set `directory.ldap.matricule_changes = \"follow\"`",
        ),
        MatriculeChanges::Follow => directory.identity_for_directory_entry("", matricule).await?.map(|_| {
            "matricule changed in the directory to one another identity holds: not applied; correct the directory's \
             entry or HR's record"
        }),
    };
    if let Some(reason) = refusal {
        tracing::warn!(dn = %user.dn, identity = %before.id, %object, "{reason}");
        audit(sync_event(&before.id, &user.login, Outcome::Failure, object, reason));
        if disabled && directory.disable_account(&before.id, DISABLED_THERE).await? {
            audit(disabled_event(&before.id, &user.login, DISABLED_THERE));
        }
        return Ok(false);
    }
    directory.change_matricule(&before.id, matricule).await?;
    let reason =
        "matricule changed in the directory: applied to the linked identity (`matricule_changes = \"follow\"`)";
    tracing::info!(identity = %before.id, %object, "{reason}");
    audit(sync_event(&before.id, &user.login, Outcome::Success, object, reason));
    Ok(true)
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

/// Runs a pass every `directory.ldap.sync_interval_secs` on one replica at a time. Every replica
/// wakes at the same instants (multiples of the period since the epoch); the one that claims the
/// period in the shared store runs its pass, under the lease (which also keeps out a `vigie
/// directory sync` running then). So each period gets one pass whichever replicas are alive: a
/// replica killed between passes is replaced at the next period, one killed mid-pass once its
/// lease lapses ([`lease_ttl`]). A failed pass is logged and counted
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
    let since_epoch = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    actix_web::rt::spawn(async move {
        // A pass at start, in the current period (unless another replica ran it), then one at
        // the start of each next period.
        let mut period = since_epoch().as_secs() / every;
        loop {
            once(&ldap, &ports, &audit, period, every).await;
            let now = since_epoch();
            period = now.as_secs() / every + 1;
            tokio::time::sleep(Duration::from_secs(period * every).saturating_sub(now)).await;
        }
    });
}

/// The pass of `period`, if this replica claims it and takes the lease.
async fn once(ldap: &LdapSource, ports: &Ports, audit: &Audit, period: u64, every: u64) {
    let store = ports.store.as_ref();
    // The claim outlives the period, so that a replica waking late cannot claim it again.
    let claim = format!("{}:period:{period}", keys::directory_sync_lease(SOURCE));
    let claimed = store.put_if_absent(&claim, b"claimed", Duration::from_secs(every * 2)).await;
    if let Err(e) = &claimed {
        tracing::warn!(error = %e, "directory sync: the period could not be claimed; tried again next period");
        metrics::counter!("vigie_directory_sync_total", "result" => "failed").increment(1);
    }
    if !claimed.unwrap_or(false) {
        return;
    }
    match Lease::take(ports.store.clone(), keys::directory_sync_lease(SOURCE), lease_ttl(every), "vigie serve").await {
        Ok(Ok(lease)) => {
            let started = Instant::now();
            let record = |event: AuditEvent| audit.record(event);
            match sync(ldap, ports.directory.as_ref(), &record, Pass::Changed, Some(&lease)).await {
                Ok(report) => {
                    tracing::info!(period, elapsed_ms = started.elapsed().as_millis() as u64, "{report}");
                    metrics::counter!("vigie_directory_sync_total", "result" => "ok").increment(1);
                    if report.disabled + report.left > 0 {
                        tell(store).await;
                    }
                }
                Err(e) => {
                    tracing::error!(period, error = %e, "directory sync failed; tried again next period");
                    metrics::counter!("vigie_directory_sync_total", "result" => "failed").increment(1);
                }
            }
            lease.release().await;
        }
        Ok(Err(holder)) => {
            tracing::info!(period, %holder, "directory sync: this period's pass is skipped, another sync is running")
        }
        Err(e) => {
            tracing::warn!(error = %e, "directory sync: the lease could not be taken; tried again next period");
            metrics::counter!("vigie_directory_sync_total", "result" => "failed").increment(1);
        }
    }
}

/// How long the lease lasts unless renewed: a holder that dies mid-pass holds the others back
/// this long at most. Three periods (a pass is renewed every third of it), between 6 s and 2 min.
pub fn lease_ttl(every_secs: u64) -> Duration {
    Duration::from_secs(every_secs.saturating_mul(3).clamp(6, 120))
}

/// The right to run a job, held by one process at a time under its key (the LDAP sync, by a replica
/// of `serve` or `vigie directory sync`; the HR feed, the reminders, the RPPS refresh): its own
/// random token under the key, followed by who holds it (for the one that waits), renewed by
/// compare-and-set on that token (`EphemeralStore::replace_if`), so that a holder whose lease
/// lapsed and was taken by another cannot renew it back. A job asks [`Lease::confirm`] right
/// before each write: a holder paused past its TTL (a stopped process, a slow database) learns
/// there that another took over, before it writes, not at its next renewal.
pub struct Lease {
    store: Arc<dyn EphemeralStore>,
    key: String,
    token: Vec<u8>,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    /// When the last renewal that found this holder's token was sent: the lease lasts at least
    /// `ttl` from then.
    renewed: Arc<std::sync::Mutex<Instant>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// The lease under `key` (`keys::directory_sync_lease(job)`), or who holds it (`what`:
    /// "vigie serve", "vigie directory sync"). Renewed every third of `ttl` until released.
    pub async fn take(
        store: Arc<dyn EphemeralStore>,
        key: String,
        ttl: Duration,
        what: &str,
    ) -> Result<Result<Lease, String>, vigie_core::store::StoreError> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let token = format!(
            "{} {what} on {} (pid {}) since {}",
            uuid::Uuid::new_v4(),
            host.trim(),
            std::process::id(),
            crate::rfc3339_now()
        )
        .into_bytes();
        let asked = Instant::now();
        if !store.put_if_absent(&key, &token, ttl).await? {
            let held = store.get(&key).await?.unwrap_or_default();
            let held = String::from_utf8_lossy(&held);
            // The text after the token; a holder gone in between is "someone" for this once.
            let holder = held.split_once(' ').map_or("another process", |(_, who)| who);
            return Ok(Err(holder.to_owned()));
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewed = Arc::new(std::sync::Mutex::new(asked));
        let renewer =
            tokio::spawn(renew(store.clone(), key.clone(), token.clone(), ttl, lost.clone(), renewed.clone()));
        Ok(Ok(Lease { store, key, token, ttl, lost, renewed, renewer }))
    }

    /// Whether this holder may still write, as far as its renewals know: false once a renewal
    /// found another token, or could not reach the store for so long that the lease may have
    /// lapsed. A paused holder's renewals are paused too: before a write, ask [`Lease::confirm`].
    pub fn held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst)
    }

    /// Whether this holder may write now, asked right before each write. Within a third of the TTL
    /// of a renewal that found its token (monotonic clock, which runs on while a process is
    /// stopped) the lease is surely still its own; past that, it renews the lease there and then
    /// by compare-and-set on its token, so that the write that follows has a whole TTL before
    /// another replica can take over. False when another holds it (the lease lapsed and was
    /// taken: this holder stops for good) or the store cannot say (this write is not made).
    pub async fn confirm(&self) -> bool {
        if !self.held() {
            return false;
        }
        let asked = Instant::now();
        if asked.duration_since(*self.renewed.lock().unwrap_or_else(|e| e.into_inner())) < self.ttl / 3 {
            return true;
        }
        match self.store.replace_if(&self.key, Some(&self.token), &self.token, self.ttl).await {
            Ok(true) => {
                *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = asked;
                true
            }
            Ok(false) => {
                tracing::warn!(lease = %self.key, "the lease lapsed and another holder took it; this job stops writing");
                self.lost.store(true, Ordering::SeqCst);
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, lease = %self.key, "the lease could not be confirmed; nothing written");
                false
            }
        }
    }

    /// Stops renewing and frees the lease if this holder still holds it (compare-and-set: never
    /// another's). A lease that could not be freed lapses by itself.
    pub async fn release(self) {
        self.renewer.abort();
        let released = self.store.replace_if(&self.key, Some(&self.token), b"released", Duration::from_millis(1)).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, lease = %self.key, "the lease could not be released; it lapses by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Renews the lease every third of `ttl` until aborted; marks it lost when the store holds
/// another token, or when no renewal succeeded for two thirds of `ttl` (the next attempt could
/// come after it lapsed).
async fn renew(
    store: Arc<dyn EphemeralStore>,
    key: String,
    token: Vec<u8>,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    last: Arc<std::sync::Mutex<Instant>>,
) {
    let renewed = || *last.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = Instant::now();
        match store.replace_if(&key, Some(&token), &token, ttl).await {
            Ok(true) => *last.lock().unwrap_or_else(|e| e.into_inner()) = asked,
            Ok(false) => {
                tracing::warn!(lease = %key, "the lease is no longer this replica's; the job stops writing");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) if renewed().elapsed() + ttl / 3 >= ttl => {
                tracing::warn!(error = %e, lease = %key, "the lease could not be renewed in time; the job stops writing");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(error = %e, lease = %key, "the lease could not be renewed; tried again"),
        }
    }
}

/// A holder paused past its lease's TTL (the whole process stopped, its renewals with it: the
/// test's runtime is blocked) while another took the lease over: the lapsed holder, then the one
/// that took over. Its renewals have not run yet, so [`Lease::held`] still says yes.
#[cfg(test)]
pub(crate) async fn lapsed_lease(store: Arc<dyn EphemeralStore>, key: &str) -> (Lease, Lease) {
    let ttl = Duration::from_millis(300);
    let lapsed = Lease::take(store.clone(), key.to_owned(), ttl, "vigie serve").await.unwrap().expect("a free lease");
    std::thread::sleep(ttl * 2);
    let taker = Lease::take(store, key.to_owned(), Duration::from_secs(120), "vigie serve").await.unwrap();
    (lapsed, taker.expect("a lapsed lease is taken over"))
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

    fn store() -> Arc<dyn EphemeralStore> {
        Arc::new(vigie_store_embedded::EmbeddedStore::new())
    }

    const LEASE_TTL: Duration = Duration::from_secs(120);

    fn key() -> String {
        keys::directory_sync_lease(SOURCE)
    }

    #[tokio::test]
    async fn one_replica_at_a_time_runs_a_pass_and_the_next_may_once_it_is_released() {
        let store = store();
        let first =
            Lease::take(store.clone(), key(), LEASE_TTL, "vigie serve").await.unwrap().expect("a free lease is taken");
        let holder = Lease::take(store.clone(), key(), LEASE_TTL, "vigie directory sync").await.unwrap().err();
        let holder = holder.expect("a second one waits");
        assert!(
            holder.starts_with("vigie serve on ") && holder.contains(&format!("(pid {}) since 20", std::process::id())),
            "{holder}"
        );
        first.release().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            Lease::take(store, key(), LEASE_TTL, "vigie serve").await.unwrap().is_ok(),
            "released: the next pass may run"
        );
    }

    /// Two replicas as two tasks: the lease of a running pass is renewed past its TTL, so the
    /// other waits; the holder dead (no renewal), the other takes it within a TTL; a holder whose
    /// lease lapsed and was taken learns it at its next renewal and stops writing, and its
    /// release does not free the other's lease.
    #[tokio::test]
    async fn a_renewed_lease_outlives_its_ttl_a_dead_holder_frees_it_and_a_lapsed_one_stops_writing() {
        let ttl = Duration::from_millis(600);
        let store = store();
        let a = Lease::take(store.clone(), key(), ttl, "vigie serve").await.unwrap().expect("A takes the free lease");
        let other = {
            let store = store.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    if let Ok(lease) = Lease::take(store.clone(), key(), ttl, "vigie serve").await.unwrap() {
                        return (started.elapsed(), lease);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        tokio::time::sleep(ttl * 3).await;
        assert!(!other.is_finished(), "B waits while A renews, three TTLs long");
        assert!(a.held());

        // A dies mid-pass: its renewals stop (the task is gone), its lease lapses.
        a.renewer.abort();
        let (waited, b) = tokio::time::timeout(Duration::from_secs(30), other).await.expect("B takes it").unwrap();
        assert!(waited >= ttl * 3, "not before A stopped renewing: {waited:?}");
        assert!(b.held());
        // A, come back (a long pause rather than a death), has lost it: its next renewal finds
        // B's token, and `held` then stops its writes.
        let a_renewer =
            tokio::spawn(renew(store.clone(), key(), a.token.clone(), ttl, a.lost.clone(), a.renewed.clone()));
        tokio::time::timeout(Duration::from_secs(30), a_renewer).await.expect("A's renewal ends").unwrap();
        assert!(!a.held(), "A no longer writes");
        a.release().await;
        tokio::time::sleep(ttl).await;
        assert!(
            Lease::take(store.clone(), key(), ttl, "vigie serve").await.unwrap().is_err(),
            "A's release left B's lease alone"
        );
        assert!(b.held(), "B renews on");
        b.release().await;
    }

    /// A holder paused past its TTL has not yet heard from its renewals that another took over:
    /// asked right before a write, it learns it there, and stops for good; the new holder may write.
    #[tokio::test]
    async fn a_paused_holder_learns_before_writing_that_its_lease_was_taken_over() {
        let store = store();
        let (lapsed, taker) = lapsed_lease(store.clone(), &key()).await;
        assert!(!lapsed.confirm().await, "the lapsed holder may not write");
        assert!(!lapsed.held(), "and stops for good");
        assert!(taker.confirm().await, "the new holder may");
        lapsed.release().await;
        assert!(taker.confirm().await, "the lapsed holder's release left the new one's lease alone");
        let fresh = Lease::take(store, job_key("fresh"), LEASE_TTL, "vigie serve").await.unwrap().expect("free");
        assert!(fresh.confirm().await, "a lease just taken may write");
    }

    fn job_key(name: &str) -> String {
        keys::directory_sync_lease(name)
    }

    /// One lease type for every periodic job: each key is a lease of its own (the HR feed runs
    /// while the LDAP sync does), and the same key is held once.
    #[tokio::test]
    async fn each_jobs_key_is_a_lease_of_its_own() {
        let store = store();
        let job = |name: &str| keys::directory_sync_lease(name);
        let sync = Lease::take(store.clone(), key(), LEASE_TTL, "vigie serve").await.unwrap().expect("the sync's");
        let feed = Lease::take(store.clone(), job("hr-feed"), LEASE_TTL, "vigie serve").await.unwrap();
        let feed = feed.expect("the HR feed's lease is not the sync's");
        let again = Lease::take(store.clone(), job("hr-feed"), LEASE_TTL, "vigie serve").await.unwrap();
        assert!(again.is_err(), "the HR feed's lease is held once");
        feed.release().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = Lease::take(store.clone(), job("hr-feed"), LEASE_TTL, "vigie serve").await.unwrap();
        assert!(again.is_ok(), "released, the HR feed's lease is free again");
        assert!(sync.held(), "releasing the HR feed's lease left the sync's alone");
        sync.release().await;
    }
}
