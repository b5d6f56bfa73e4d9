//! The HR feed (SIRH): a CSV file, the newest file of a drop directory or an export pulled over
//! HTTPS (`pull`), turned into a diff
//! against the directory (joiners, movers, leavers, returners) and applied all or nothing, unless
//! it is a dry run or its leavers pass the safety stop. Run by `vigie users feed` and, every
//! `lifecycle.hr_feed.interval_secs`, by one replica of `serve` (a lease in the shared store).
use std::path::{Path, PathBuf};

use std::time::Duration;
use vigie_core::store::StoreExt as _;

use anyhow::Context;
use serde::Serialize;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_directory_sql::lifecycle::{self, FeedDiff};
use vigie_directory_sql::{Applied, SqlDirectory};

use super::config::HrFeedConfig;
use super::pull::{self, Pulled, Validators};
use crate::config::Config;
use crate::directory_sync::Lease;
use crate::session::keys;
use crate::state::{Audit, Part, Ports};

/// How a run goes.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Compute and show the diff, write nothing.
    pub dry_run: bool,
    /// Apply even past the safety stop.
    pub force: bool,
    /// The safety stop: most leavers, in percent of the HR-fed population.
    pub max_leavers_percent: f64,
}

/// What a run did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum RunOutcome {
    /// A dry run: nothing written.
    DryRun { run: String, file: String, diff: FeedDiff },
    /// Nothing to change.
    Unchanged { run: String, file: String, diff: FeedDiff },
    /// Applied.
    Applied { run: String, file: String, diff: FeedDiff, applied: Applied },
    /// Refused whole by the safety stop: nothing written.
    Refused { run: String, file: String, diff: FeedDiff, reason: String },
    /// The HTTPS export answered `304 Not Modified`: the export already run, not read again.
    NotModified { run: String, file: String, diff: FeedDiff },
}

impl RunOutcome {
    /// The label of `vigie_hr_feed_total{result}`.
    pub fn result(&self) -> &'static str {
        match self {
            RunOutcome::DryRun { .. } => "dry_run",
            RunOutcome::Unchanged { .. } => "unchanged",
            RunOutcome::Applied { .. } => "applied",
            RunOutcome::Refused { .. } => "refused",
            RunOutcome::NotModified { .. } => "not_modified",
        }
    }

    /// The file or URL the run read.
    pub fn file(&self) -> &str {
        match self {
            RunOutcome::DryRun { file, .. }
            | RunOutcome::Unchanged { file, .. }
            | RunOutcome::Applied { file, .. }
            | RunOutcome::Refused { file, .. }
            | RunOutcome::NotModified { file, .. } => file,
        }
    }

    /// The diff the run computed.
    pub fn diff(&self) -> &FeedDiff {
        match self {
            RunOutcome::DryRun { diff, .. }
            | RunOutcome::Unchanged { diff, .. }
            | RunOutcome::Applied { diff, .. }
            | RunOutcome::Refused { diff, .. }
            | RunOutcome::NotModified { diff, .. } => diff,
        }
    }
}

/// The feed file `path` names: the file itself, or the newest file of a drop directory. Hidden
/// files and `*.tmp` / `*.part` are skipped: HR's export writes one of those, then renames it.
pub fn feed_file(path: &Path) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading the HR feed {}: check `lifecycle.hr_feed.path`", path.display()))?;
    if !meta.is_dir() {
        return Ok(path.to_path_buf());
    }
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(path).with_context(|| format!("listing the HR drop directory {}", path.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
            continue;
        }
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let at = meta.modified()?;
        // The newest; at the same time, the last by name (exports named by date sort by it).
        if newest.as_ref().is_none_or(|(t, p)| (at, entry.path()) > (*t, p.clone())) {
            newest = Some((at, entry.path()));
        }
    }
    newest.map(|(_, p)| p).ok_or_else(|| NoFeedYet(path.to_path_buf()).into())
}

/// A drop directory HR has not dropped a file in yet: a state to wait in, not a failed run to
/// audit at every period.
#[derive(Debug, thiserror::Error)]
#[error("the HR drop directory {} holds no feed file yet (hidden, .tmp and .part files are skipped)", .0.display())]
pub struct NoFeedYet(PathBuf);

/// A feed that is not a valid HR CSV: where and what (kept whole for the run's record, `runs`).
#[derive(Debug, thiserror::Error)]
#[error("the HR feed {name}: {csv} (nothing was applied; columns: docs/identity-lifecycle.md)")]
pub struct MalformedFeed {
    name: String,
    /// The line, column and reason.
    pub csv: vigie_directory_sql::CsvError,
}

/// One run of the feed in `file` (already picked by [`feed_file`]). Each person it ends or brings
/// back, and the run itself when it writes or is refused, is given to `audit`.
pub async fn run(
    dir: &SqlDirectory,
    file: &Path,
    options: RunOptions,
    lease: Option<&Lease>,
    audit: &dyn Fn(AuditEvent),
) -> anyhow::Result<RunOutcome> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading the HR feed {}", file.display()))?;
    let short = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    run_text(dir, &text, &file.display().to_string(), &short, options, lease, audit).await
}

/// A scheduled run whose lease lapsed before it applied: another replica holds it and runs the feed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the HR feed's lease lapsed before the run applied (this replica paused, or the directory was slow) and \
     another replica took it over: nothing applied here; that replica runs the feed"
)]
pub struct LeaseLapsed;

/// One run of the feed whose CSV is `text`, read from `name` (a file, or a URL) and recorded under
/// `short` (a file name). A scheduled run gives its `lease`, confirmed right before it applies.
pub async fn run_text(
    dir: &SqlDirectory,
    text: &str,
    name: &str,
    short: &str,
    options: RunOptions,
    lease: Option<&Lease>,
    audit: &dyn Fn(AuditEvent),
) -> anyhow::Result<RunOutcome> {
    let rows = vigie_directory_sql::parse_hr_csv(text).map_err(|csv| MalformedFeed { name: name.to_owned(), csv })?;
    let now = lifecycle::stamp(time::OffsetDateTime::now_utc());
    let run = format!("{now}/{short}");
    let diff = lifecycle::diff(&dir.people().await?, &rows, &now);
    let name = name.to_owned();
    let event = |outcome: Outcome, reason: String| AuditEvent {
        kind: Some(AuditKind::Lifecycle),
        outcome: Some(outcome),
        actor: Some("hr-feed".into()),
        object: Some(format!("hr-feed:{run}")),
        reason: Some(reason),
        ..Default::default()
    };
    if options.dry_run {
        return Ok(RunOutcome::DryRun { run, file: name, diff });
    }
    if diff.is_empty() {
        return Ok(RunOutcome::Unchanged { run, file: name, diff });
    }
    let percent = diff.leavers_percent();
    if percent > options.max_leavers_percent && !options.force {
        let reason = format!(
            "safety stop: {} leaver(s) of {} HR-fed people ({percent:.1} %) no longer in the feed is more than \
             `lifecycle.hr_feed.max_leavers_percent` ({} %); nothing applied: check the export (a truncated file?), \
             then run `vigie users feed --force` if it is right",
            diff.missing(),
            diff.population,
            options.max_leavers_percent
        );
        audit(event(Outcome::Failure, reason.clone()));
        return Ok(RunOutcome::Refused { run, file: name, diff, reason });
    }
    // One replica at a time applies the feed (docs/identity-lifecycle.md "The HR feed"): a holder
    // paused past its lease's TTL while another took over must not apply on top of that one, nor
    // one paused after this confirmation, before its write committed (the lease's fence).
    if let Some(lease) = lease
        && !lease.confirm().await
    {
        return Err(LeaseLapsed.into());
    }
    let applied = match crate::directory_sync::fenced(dir, lease).apply_feed(&diff, &rows, &run).await {
        Err(e) if lease.is_some_and(|l| l.fenced_out(&e)) => return Err(LeaseLapsed.into()),
        applied => applied?,
    };
    let about = |e: &lifecycle::Entry, reason: String| AuditEvent {
        kind: Some(AuditKind::Lifecycle),
        outcome: Some(Outcome::Success),
        username: e.username.clone(),
        actor: Some(format!("hr-feed:{run}")),
        object: Some(format!("person:{}", e.matricule)),
        reason: Some(reason),
        ..Default::default()
    };
    for (entries, what) in [(&diff.leavers, "ended"), (&diff.returning, "brought back")] {
        for e in entries {
            audit(about(e, format!("{what}: {}", e.why.as_deref().unwrap_or_default())));
        }
    }
    // A role the feed grants or takes back opens or closes administration: each is on the record.
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for e in diff.joiners.iter().chain(&diff.movers) {
        for c in e.changes.iter().filter(|c| c.field == "roles") {
            audit(about(e, format!("roles of the HR feed: {} -> {}", show(&c.before), show(&c.after))));
        }
    }
    let forced = if percent > options.max_leavers_percent { " (past the safety stop: --force)" } else { "" };
    audit(event(
        Outcome::Success,
        format!(
            "applied{forced}: {} joiner(s), {} mover(s), {} leaver(s), {} returning, {} unchanged",
            applied.joiners, applied.movers, applied.leavers, applied.returning, diff.unchanged
        ),
    ));
    Ok(RunOutcome::Applied { run, file: name, diff, applied })
}

/// Runs the feed every `lifecycle.hr_feed.interval_secs` on one replica at a time: the one that
/// takes the lease in the shared store. A failed run (a file missing, a pull refused or timed out,
/// a malformed export) is audited as a failure, logged and counted
/// (`vigie_hr_feed_total{result="failed"}`), applies nothing, and is tried again at the next period.
pub fn spawn(config: Part<Config>, ports: Part<Ports>, audit: Part<Audit>) {
    let Some(feed) = config.lifecycle.hr_feed.clone() else { return };
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(feed.interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let options = RunOptions { dry_run: false, force: false, max_leavers_percent: feed.max_leavers_percent };
        loop {
            tick.tick().await;
            once(&config.lifecycle, &feed, options, &ports, &audit).await;
        }
    });
}

/// The lease of the periodic feed, in the shared store.
fn lease_key() -> String {
    keys::directory_sync_lease("hr-feed")
}

/// The validators of the last export applied, kept as long as an export may stay unchanged.
const VALIDATORS_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// One run from the configured source: the file drop, or the HTTPS pull (conditional on the
/// validators of the last export run, shared by the replicas).
async fn from_source(
    feed: &HrFeedConfig,
    options: RunOptions,
    ports: &Ports,
    lease: Option<&Lease>,
    audit: &dyn Fn(AuditEvent),
) -> anyhow::Result<RunOutcome> {
    let Some(url) = &feed.url else {
        return run(&ports.lifecycle, &feed_file(&feed.path)?, options, lease, audit).await;
    };
    let store = ports.store.as_ref();
    let since: Option<Validators> = store.get_json(&keys::hr_feed_validators(url)).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "HR feed: the last export's validators could not be read; pulled whole");
        None
    });
    let short = pull::name_of(url);
    let (text, validators) = match pull::pull(&pull::client(feed)?, feed, url, since.as_ref()).await? {
        Pulled::Export { text, validators } => (text, validators),
        Pulled::NotModified => {
            let run = format!("{}/{short}", lifecycle::stamp(time::OffsetDateTime::now_utc()));
            return Ok(RunOutcome::NotModified { run, file: url.clone(), diff: FeedDiff::default() });
        }
    };
    let outcome = run_text(&ports.lifecycle, &text, url, &short, options, lease, audit).await?;
    // Only an export run whole is "seen": a refused one is pulled and refused again until HR fixes
    // it (or forces it from the command line).
    let whole = matches!(outcome, RunOutcome::Applied { .. } | RunOutcome::Unchanged { .. });
    if whole
        && validators != Validators::default()
        && let Err(e) = store.put_json(&keys::hr_feed_validators(url), &validators, VALIDATORS_TTL).await
    {
        tracing::warn!(error = %e, "HR feed: the export's validators could not be kept; the next pull is whole");
    }
    Ok(outcome)
}

async fn once(
    lifecycle: &super::config::LifecycleConfig,
    feed: &HrFeedConfig,
    options: RunOptions,
    ports: &Ports,
    audit: &Audit,
) {
    let store = ports.store.as_ref();
    // Longer than a run (10,000 people: docs/identity-lifecycle.md) and than the period, so that a
    // replica that dies mid-run holds the others back for a while only.
    let ttl = Duration::from_secs(feed.interval_secs.max(600) * 2);
    let lease = match Lease::take(ports.store.clone(), lease_key(), ttl, "vigie serve").await {
        Ok(Ok(lease)) => lease,
        Ok(Err(_)) => return,
        Err(e) => {
            tracing::warn!(error = %e, "HR feed: the lease could not be taken; tried again next period");
            metrics::counter!("vigie_hr_feed_total", "result" => "failed").increment(1);
            return;
        }
    };
    let started = std::time::Instant::now();
    let record = |event: AuditEvent| audit.record(event);
    let result = from_source(feed, options, ports, Some(&lease), &record).await;
    if !lease.held() {
        // Another replica may have taken the lapsed lease and run the same export: its record
        // of the run is the one kept.
        tracing::warn!("HR feed: the lease lapsed during the run; the run is not recorded");
        return lease.release().await;
    }
    if !result.as_ref().is_err_and(|e| e.downcast_ref::<NoFeedYet>().is_some()) {
        let source = feed.url.clone().unwrap_or_else(|| feed.path.display().to_string());
        super::runs::record(&ports.lifecycle, &source, "schedule", options.dry_run, &result).await;
    }
    match result {
        Ok(outcome) => {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let summary = outcome.diff().to_string();
            let summary = summary.lines().next().unwrap_or_default();
            match &outcome {
                RunOutcome::Refused { reason, .. } => tracing::error!(elapsed_ms, "HR feed refused: {reason}"),
                RunOutcome::NotModified { .. } => {
                    tracing::debug!(elapsed_ms, "HR feed: the export is not modified since the last run")
                }
                _ => tracing::info!(elapsed_ms, result = outcome.result(), "HR feed: {summary}"),
            }
            metrics::counter!("vigie_hr_feed_total", "result" => outcome.result()).increment(1);
            super::orders::after_run(&ports.lifecycle, lifecycle, &outcome, &record).await;
            if matches!(outcome, RunOutcome::Applied { .. }) {
                super::tell(store).await;
            }
        }
        Err(e) => {
            let error = format!("{e:#}");
            tracing::error!(error = %error, "HR feed failed; tried again next period");
            metrics::counter!("vigie_hr_feed_total", "result" => "failed").increment(1);
            if e.downcast_ref::<NoFeedYet>().is_some() {
                return lease.release().await;
            }
            audit.record(AuditEvent {
                kind: Some(AuditKind::Lifecycle),
                outcome: Some(Outcome::Failure),
                actor: Some("hr-feed".into()),
                object: Some(format!(
                    "hr-feed:{}",
                    feed.url.as_deref().map_or_else(|| feed.path.display().to_string(), pull::name_of)
                )),
                reason: Some(format!("failed, nothing applied: {error}")),
                ..Default::default()
            });
        }
    }
    lease.release().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const COLUMNS: &str = "matricule,family_name,given_name,birth_date,metier,grade,idnat,units,username,start_date,end_date,sponsor,kind";

    /// Replica A, paused past its lease's TTL (a stopped process, a slow database) while B took
    /// the lease over and runs the feed, wakes up with the diff it computed: it must not apply it.
    #[tokio::test]
    async fn a_holder_whose_lease_lapsed_applies_no_feed() {
        let dir = SqlDirectory::open("sqlite::memory:").await.expect("a directory");
        let store: Arc<dyn vigie_core::store::EphemeralStore> = Arc::new(vigie_store_embedded::EmbeddedStore::new());
        let (lapsed, taker) = crate::directory_sync::lapsed_lease(store, &lease_key()).await;
        let text =
            format!("{COLUMNS}\nH00001,Nom,Prénom,1980-01-01,Infirmier,IDE,,UF7001:100,hr.p1,2020-01-01,,,staff\n");
        let options = RunOptions { dry_run: false, force: false, max_leavers_percent: 5.0 };
        let audited = std::sync::Mutex::new(Vec::new());
        let audit = |e: AuditEvent| audited.lock().unwrap().push(e);

        let run = run_text(&dir, &text, "feed.csv", "feed.csv", options, Some(&lapsed), &audit).await;
        let error = run.expect_err("a lapsed holder's run is refused");
        assert!(error.downcast_ref::<LeaseLapsed>().is_some(), "{error:#}");
        assert!(dir.people().await.unwrap().is_empty(), "nobody joined through the lapsed holder");
        assert!(audited.lock().unwrap().is_empty(), "nothing applied, nothing audited as applied");

        // The replica that holds the lease applies the same feed.
        let run = run_text(&dir, &text, "feed.csv", "feed.csv", options, Some(&taker), &audit).await;
        assert!(matches!(run, Ok(RunOutcome::Applied { .. })), "{run:?}");
        assert_eq!(dir.people().await.unwrap().len(), 1);
    }

    /// Replica A holds the lease and confirms it from its last renewal (a third of the TTL not yet
    /// gone: the store is not asked), but the lease was lost meanwhile (deleted: a Redis failover,
    /// an operator) and B took it over and applied a feed: A's run must not apply after B's. The
    /// directory refuses it by the lease's fence, nothing of it is kept, and A stops.
    #[tokio::test]
    async fn a_run_confirmed_from_a_stale_renewal_is_not_applied_after_the_next_holders() {
        let dir = SqlDirectory::open("sqlite::memory:").await.expect("a directory");
        let store: Arc<dyn vigie_core::store::EphemeralStore> = Arc::new(vigie_store_embedded::EmbeddedStore::new());
        let ttl = Duration::from_secs(600);
        let a = Lease::take(store.clone(), lease_key(), ttl, "vigie serve").await.unwrap().expect("a free lease");
        store.delete(&lease_key()).await.unwrap();
        let b = Lease::take(store, lease_key(), ttl, "vigie serve").await.unwrap().expect("the lost lease is taken");
        let options = RunOptions { dry_run: false, force: false, max_leavers_percent: 100.0 };
        let row = |m: &str, login: &str| {
            format!("{m},Nom,Prénom,1980-01-01,Infirmier,IDE,,UF7001:100,{login},2020-01-01,,,staff\n")
        };
        let feed_b = format!("{COLUMNS}\n{}", row("H00002", "hr.p2"));
        let run = run_text(&dir, &feed_b, "b.csv", "b.csv", options, Some(&b), &|_| {}).await;
        assert!(matches!(run, Ok(RunOutcome::Applied { .. })), "{run:?}");

        let feed_a = format!("{COLUMNS}\n{}{}", row("H00001", "hr.p1"), row("H00002", "hr.p2"));
        let audited = std::sync::Mutex::new(Vec::new());
        let audit = |e: AuditEvent| audited.lock().unwrap().push(e);
        let run = run_text(&dir, &feed_a, "a.csv", "a.csv", options, Some(&a), &audit).await;
        let error = run.expect_err("A's run is refused");
        assert!(error.downcast_ref::<LeaseLapsed>().is_some(), "{error:#}");
        let people: Vec<String> = dir.people().await.unwrap().into_iter().map(|p| p.identity.matricule).collect();
        assert_eq!(people, ["H00002"], "nothing of A's run is in the directory");
        assert!(audited.lock().unwrap().is_empty(), "nothing applied, nothing audited as applied");
        assert!(!a.held(), "A stops");
        assert!(b.confirm().await, "B holds the lease");
    }
}
