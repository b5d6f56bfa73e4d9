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
use vigie_core::directory::{Account, Directory, DirectoryError, Fence, Identity};
use vigie_core::store::{EphemeralStore, StoreError};
use vigie_directory_ldap::{AccountState, LdapSource, LdapUser, MatriculeChanges, SyncMark};
use vigie_directory_sql::SqlDirectory;

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
const LEASE_LOST: &str = "the sync's lease was lost (not renewed in time, or taken over while this replica paused; \
     another replica may run the sync now): \
     this pass stopped writing; the next one goes on from the last recorded mark";

/// One pass. A failure stops it (what was written stays: each user is one upsert; the mark is
/// recorded only at the end, so the next pass reads again what this one did not finish). The
/// accounts it disables get a durable note of access to end, which `serve`'s sweep completes
/// (sessions, refresh families, back-channel logout); each is given to `audit`. The `lease` of a
/// pass run under one is confirmed before every write, and each write carries its fence: once it
/// is lost, or the directory refuses a write by its fence, the pass stops.
pub async fn sync(
    ldap: &LdapSource,
    directory: &SqlDirectory,
    audit: &dyn Fn(AuditEvent),
    pass: Pass,
    lease: Option<&Lease>,
) -> anyhow::Result<Report> {
    let directory = fenced(directory, lease);
    run(ldap, &directory, audit, pass, lease).await.map_err(|e| match lease {
        Some(lease) if e.downcast_ref::<DirectoryError>().is_some_and(|d| lease.fenced_out(d)) => {
            anyhow::anyhow!(LEASE_LOST)
        }
        _ => e,
    })
}

async fn run(
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
            match sync(ldap, &ports.lifecycle, &record, Pass::Changed, Some(&lease)).await {
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
///
/// A pause between that confirmation and the commit of the write is caught by the write itself:
/// each take issues a greater fencing token ([`Lease::fence`]), and the directory the job writes
/// through ([`fenced`]) refuses a write whose token is lower than one it has seen for the job.
pub struct Lease {
    hold: Arc<Hold>,
    fence: Fence,
    renewer: tokio::task::JoinHandle<()>,
}

/// What a holder and its renewals share.
struct Hold {
    store: Arc<dyn EphemeralStore>,
    key: String,
    token: Vec<u8>,
    ttl: Duration,
    lost: AtomicBool,
    /// When the last renewal that found this holder's token was sent: the lease lasts at least
    /// `ttl` from then.
    renewed: std::sync::Mutex<Instant>,
}

impl Hold {
    fn renewed(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renews the lease by compare-and-set on this holder's token: `true` (and when it was asked,
    /// recorded) while it is this holder's; `false` once another holds it, which stops this holder
    /// for good. An error: the store could not say.
    async fn renew(&self) -> Result<bool, StoreError> {
        let asked = Instant::now();
        if self.store.replace_if(&self.key, Some(&self.token), &self.token, self.ttl).await? {
            *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = asked;
            return Ok(true);
        }
        tracing::warn!(lease = %self.key, "the lease lapsed and another holder took it; this job stops writing");
        self.lost.store(true, Ordering::SeqCst);
        Ok(false)
    }
}

/// How long the counter of a lease's fencing tokens lives: long enough never to lapse in practice
/// (one that does starts again from the clock, above the tokens it gave).
const FENCE_COUNTER_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A fencing token is at least the time in milliseconds when its counter was started (2001 and
/// after are above this); a counter below it was made by `incr` alone, not started from the clock.
const STARTED_FROM_THE_CLOCK: u64 = 1_000_000_000_000;

/// The next fencing token of `job`'s lease: the counter `keys::lease_fence(job)` of the shared
/// store, incremented at each take, started from the time in milliseconds, so that a counter lost
/// with the store (an embedded store restarted, a Redis without persistence) starts again above
/// every token it gave (a job takes its lease far less often than every millisecond). Asked before
/// the lease is put: a holder's token is then lower than any later holder's.
async fn next_token(store: &dyn EphemeralStore, job: &str) -> Result<u64, StoreError> {
    let counter = keys::lease_fence(job);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    store.put_if_absent(&counter, now_ms.to_string().as_bytes(), FENCE_COUNTER_TTL).await?;
    let token = store.incr(&counter, FENCE_COUNTER_TTL).await?;
    if token < STARTED_FROM_THE_CLOCK {
        // It lapsed between the two calls and `incr` made it again from 0: started from the
        // clock at the next take.
        store.delete(&counter).await?;
        return Err(StoreError::Unavailable(format!(
            "the fencing counter of the {job} job's lease lapsed as it was read; the lease is taken again at the \
             next period"
        )));
    }
    Ok(token)
}

impl Lease {
    /// The lease under `key` (`keys::directory_sync_lease(job)`), or who holds it (`what`:
    /// "vigie serve", "vigie directory sync"). Renewed every third of `ttl` until released.
    pub async fn take(
        store: Arc<dyn EphemeralStore>,
        key: String,
        ttl: Duration,
        what: &str,
    ) -> Result<Result<Lease, String>, StoreError> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let token = format!(
            "{} {what} on {} (pid {}) since {}",
            uuid::Uuid::new_v4(),
            host.trim(),
            std::process::id(),
            crate::rfc3339_now()
        )
        .into_bytes();
        // The job is the last part of the key (`keys::directory_sync_lease`). Its token is asked
        // before the lease is put: a take that finds it held only uses up a number.
        let job = key.rsplit(':').next().unwrap_or(&key).to_owned();
        let fence = Fence::new(&job, next_token(store.as_ref(), &job).await?);
        let asked = Instant::now();
        if !store.put_if_absent(&key, &token, ttl).await? {
            let held = store.get(&key).await?.unwrap_or_default();
            let held = String::from_utf8_lossy(&held);
            // The text after the token; a holder gone in between is "someone" for this once.
            let holder = held.split_once(' ').map_or("another process", |(_, who)| who);
            return Ok(Err(holder.to_owned()));
        }
        let hold = Arc::new(Hold {
            store,
            key,
            token,
            ttl,
            lost: AtomicBool::new(false),
            renewed: std::sync::Mutex::new(asked),
        });
        let renewer = tokio::spawn(renew(hold.clone()));
        Ok(Ok(Lease { hold, fence, renewer }))
    }

    /// Whether this holder may still write, as far as its renewals know: false once a renewal
    /// found another token, or could not reach the store for so long that the lease may have
    /// lapsed. A paused holder's renewals are paused too: before a write, ask [`Lease::confirm`].
    pub fn held(&self) -> bool {
        !self.hold.lost.load(Ordering::SeqCst)
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
        if self.hold.renewed().elapsed() < self.hold.ttl / 3 {
            return true;
        }
        self.hold.renew().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, lease = %self.hold.key, "the lease could not be confirmed; nothing written");
            false
        })
    }

    /// The fencing token this take was issued, which the job's writes carry ([`fenced`]).
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether `e` is the directory refusing this holder's write by its fence: another replica
    /// took the lease over and has written since (this one was paused, or its write slow, past
    /// the lease, after [`Lease::confirm`] said yes). Then the lease is this holder's no more
    /// ([`Lease::held`]: the job stops as when `confirm` says no), and it is logged once as a
    /// warning and counted (`vigie_lease_fenced_total{job}`).
    pub fn fenced_out(&self, e: &DirectoryError) -> bool {
        if !matches!(e, DirectoryError::Fenced { job } if job == self.fence.job()) {
            return false;
        }
        if !self.hold.lost.swap(true, Ordering::SeqCst) {
            let job = self.fence.job().to_owned();
            tracing::warn!(
                %job,
                "a write of the {job} job was refused: another replica holds its lease and has written since (this \
                 one was paused or slow past the lease); nothing of it was kept, this job stops writing"
            );
            metrics::counter!("vigie_lease_fenced_total", "job" => job).increment(1);
        }
        true
    }

    /// Stops renewing and frees the lease if this holder still holds it (compare-and-set: never
    /// another's). A lease that could not be freed lapses by itself.
    pub async fn release(self) {
        self.renewer.abort();
        let Hold { store, key, token, .. } = self.hold.as_ref();
        let released = store.replace_if(key, Some(token), b"released", Duration::from_millis(1)).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, lease = %key, "the lease could not be released; it lapses by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// `directory` as the holder of `lease` writes it: each write transaction checks the lease's
/// fence ([`SqlDirectory::fenced`]); without a lease (a command run alone), as it is.
pub fn fenced(directory: &SqlDirectory, lease: Option<&Lease>) -> SqlDirectory {
    match lease {
        Some(lease) => directory.fenced(lease.fence().clone()),
        None => directory.clone(),
    }
}

/// Renews the lease every third of its TTL until aborted; marks it lost when the store holds
/// another token, or when no renewal succeeded for two thirds of the TTL (the next attempt could
/// come after it lapsed).
async fn renew(hold: Arc<Hold>) {
    let ttl = hold.ttl;
    loop {
        tokio::time::sleep(ttl / 3).await;
        match hold.renew().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) if hold.renewed().elapsed() + ttl / 3 >= ttl => {
                tracing::warn!(error = %e, lease = %hold.key, "the lease could not be renewed in time; the job stops writing");
                hold.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(error = %e, lease = %hold.key, "the lease could not be renewed; tried again"),
        }
    }
}

/// A holder paused past its lease's TTL (the whole process stopped, its renewals with it: the
/// test's runtime is blocked) while another took the lease over: the lapsed holder, then the one
/// that took over. It confirmed its lease before the pause, as a job does right before a write;
/// its renewals have not run since, so [`Lease::held`] still says yes.
#[cfg(test)]
pub(crate) async fn lapsed_lease(store: Arc<dyn EphemeralStore>, key: &str) -> (Lease, Lease) {
    let ttl = Duration::from_millis(300);
    let lapsed = Lease::take(store.clone(), key.to_owned(), ttl, "vigie serve").await.unwrap().expect("a free lease");
    assert!(lapsed.confirm().await, "before the pause, the lease is its holder's");
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

/// A `redis-server` of a test's own (the Redis store's test harness).
#[cfg(test)]
#[path = "../../../adapters/store-redis/tests/common/redis_server.rs"]
mod redis_server;

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
        let a_renewer = tokio::spawn(renew(a.hold.clone()));
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

    fn person(matricule: &str) -> Identity {
        Identity {
            id: String::new(),
            matricule: matricule.into(),
            family_name: "Nom".into(),
            given_name: "Prénom".into(),
            birth_date: None,
            metier: None,
            grade: None,
            idnat: None,
            units: Vec::new(),
        }
    }

    /// Whether the directory holds the identity of this matricule.
    async fn holds(dir: &SqlDirectory, matricule: &str) -> bool {
        dir.identity_for_directory_entry("", matricule).await.unwrap().is_some()
    }

    /// A holder confirmed its lease right before a write, then paused (a stopped process, a
    /// database slow to commit) past the lease while another replica took it over and wrote: its
    /// write, when it comes, is refused by the directory in its own transaction, nothing of it is
    /// kept, the holder stops for good, and the new holder writes on.
    async fn a_write_slower_than_the_lease_cannot_land_after_the_next_holders(
        store: Arc<dyn EphemeralStore>,
        dir: &SqlDirectory,
    ) {
        let (lapsed, taker) = lapsed_lease(store.clone(), &key()).await;
        assert!(lapsed.fence().token() < taker.fence().token(), "each take gets a greater token");
        fenced(dir, Some(&taker)).upsert_identity(&person("T0001")).await.expect("the new holder writes");

        // The lapsed holder's write: its confirmation was made before the pause.
        let refused = fenced(dir, Some(&lapsed)).upsert_identity(&person("S0001")).await;
        let refused = refused.expect_err("the lapsed holder's write is refused");
        assert!(matches!(&refused, DirectoryError::Fenced { job } if job == SOURCE), "{refused:?}");
        assert!(refused.to_string().contains("another replica holds its lease"), "{refused}");
        assert!(!holds(dir, "S0001").await, "nothing of the lapsed holder's write is in the directory");
        assert!(lapsed.fenced_out(&refused), "the job knows its write was fenced out");
        assert!(!lapsed.held() && !lapsed.confirm().await, "and stops for good");

        assert!(holds(dir, "T0001").await);
        fenced(dir, Some(&taker)).set_directory_sync_state(SOURCE, Some("mark"), 1).await.expect("it writes on");
        let late = fenced(dir, Some(&lapsed)).set_directory_sync_state(SOURCE, Some("stale"), 2).await;
        assert!(matches!(late, Err(DirectoryError::Fenced { .. })), "{late:?}");
        assert_eq!(dir.directory_sync_state(SOURCE).await.unwrap(), Some((Some("mark".into()), 1)));
        // Another job's lease is fenced apart.
        let feed = Lease::take(store, job_key("hr-feed"), LEASE_TTL, "vigie serve").await.unwrap().expect("free");
        fenced(dir, Some(&feed)).upsert_identity(&person("F0001")).await.expect("the HR feed's fence is its own");
    }

    #[tokio::test]
    async fn a_write_slower_than_the_lease_is_refused_on_sqlite() {
        let dir = SqlDirectory::open("sqlite::memory:").await.expect("a directory");
        a_write_slower_than_the_lease_cannot_land_after_the_next_holders(store(), &dir).await;
    }

    /// The same on PostgreSQL, with a real Redis issuing the tokens. Needs
    /// `VIGIE_TEST_POSTGRES_URL` (tests/postgres.sh) and `redis-server`; says it is skipped without
    /// the first.
    #[tokio::test]
    async fn a_write_slower_than_the_lease_is_refused_on_postgresql_with_redis() {
        let Ok(admin) = std::env::var("VIGIE_TEST_POSTGRES_URL") else {
            eprintln!("skipped: VIGIE_TEST_POSTGRES_URL is not set (tests/postgres.sh)");
            return;
        };
        let server = sqlx::PgPool::connect(&admin).await.expect("the test PostgreSQL");
        let name = format!("t_lease_fence_{}", std::process::id());
        for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&server).await.expect("a database of the test's own");
        }
        let dir = SqlDirectory::open(&format!("{}/{name}", admin.rsplit_once('/').expect("a URL").0)).await.unwrap();
        let redis = super::redis_server::RedisServer::start();
        let store = vigie_store_redis::RedisStore::connect(&redis.url(), "vigie:").await.expect("the test Redis");
        a_write_slower_than_the_lease_cannot_land_after_the_next_holders(Arc::new(store), &dir).await;
        dir.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}"))).execute(&server).await.unwrap();
    }

    /// A store that lost its counters (the embedded store restarted with its process, a Redis
    /// without persistence) issues tokens above those it gave before: the jobs' writes are not
    /// refused for ever after.
    #[tokio::test]
    async fn a_store_that_lost_its_counters_issues_greater_tokens() {
        let dir = SqlDirectory::open("sqlite::memory:").await.expect("a directory");
        let before = Lease::take(store(), key(), LEASE_TTL, "vigie serve").await.unwrap().expect("free");
        fenced(&dir, Some(&before)).upsert_identity(&person("B0001")).await.expect("written");
        std::thread::sleep(Duration::from_millis(5));
        let after = Lease::take(store(), key(), LEASE_TTL, "vigie serve").await.unwrap().expect("a new store");
        assert!(after.fence().token() > before.fence().token(), "{:?} then {:?}", before.fence(), after.fence());
        fenced(&dir, Some(&after)).upsert_identity(&person("A0001")).await.expect("the job writes on");
    }
}
