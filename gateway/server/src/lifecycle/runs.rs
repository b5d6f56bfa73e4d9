//! The record of each HR feed run (migration `0016_feed_runs.sql`), read by the console's feeds
//! page, `GET /admin/api/feeds` and `vigie feeds`: its counts, the safety stop's reason, the diff
//! bounded to its first [`DIFF_LIMIT`] people per kind, and the error lines of a malformed feed.
use serde::{Deserialize, Serialize};
use vigie_directory_sql::lifecycle::{Entry, FeedDiff};
use vigie_directory_sql::{FeedRun, SqlDirectory};

use super::feed::{MalformedFeed, RunOutcome};

/// People of each kind (joiners, movers, leavers, returning) a recorded diff keeps.
pub const DIFF_LIMIT: usize = 50;

/// Fields whose values a record never holds: personal data beyond names and matricule (the
/// change is recorded, not what it was or became).
const UNRECORDED_VALUES: [&str; 1] = ["birth_date"];

/// One field that changes, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One person of a recorded diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub matricule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The first people of one kind, and how many more the run had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kind {
    pub people: Vec<Person>,
    pub more: usize,
}

/// A recorded diff.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub joiners: Kind,
    pub movers: Kind,
    pub leavers: Kind,
    pub returning: Kind,
}

/// An error line of a malformed feed: where, and what is wrong (never the row itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorLine {
    /// Line of the file, from 1; 0 when the error is not about a line (the file unreadable, the
    /// export not reachable).
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub reason: String,
}

/// The recorded diff and error lines of a run (empty when a row holds something unreadable:
/// written by a later version, say).
pub fn details(run: &FeedRun) -> (Diff, Vec<ErrorLine>) {
    (serde_json::from_str(&run.diff).unwrap_or_default(), serde_json::from_str(&run.error_lines).unwrap_or_default())
}

fn kind(entries: &[Entry]) -> Kind {
    let people = entries
        .iter()
        .take(DIFF_LIMIT)
        .map(|e| Person {
            matricule: e.matricule.clone(),
            username: e.username.clone(),
            changes: e
                .changes
                .iter()
                .map(|c| {
                    let hidden = UNRECORDED_VALUES.contains(&c.field);
                    let value = |v: &Option<String>| {
                        if hidden { v.as_ref().map(|_| "(not recorded)".into()) } else { v.clone() }
                    };
                    FieldChange { field: c.field.to_owned(), before: value(&c.before), after: value(&c.after) }
                })
                .collect(),
            why: e.why.clone(),
        })
        .collect();
    Kind { people, more: entries.len().saturating_sub(DIFF_LIMIT) }
}

/// The diff as recorded.
pub fn bounded(diff: &FeedDiff) -> Diff {
    Diff {
        joiners: kind(&diff.joiners),
        movers: kind(&diff.movers),
        leavers: kind(&diff.leavers),
        returning: kind(&diff.returning),
    }
}

/// The source as recorded: a file path as given, a URL without its user, password and query
/// (they may carry a credential).
pub fn source_label(source: &str) -> String {
    match reqwest::Url::parse(source) {
        Ok(mut u) if u.scheme() == "https" || u.scheme() == "http" => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        _ => source.to_owned(),
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The row of a run that ended as `outcome` (or failed), read from `source` (the file a drop
/// directory gave replaces it), started by
/// `started_by`. `None` for what is not a run: a pull answered `304 Not Modified`.
pub fn row(source: &str, started_by: &str, dry_run: bool, outcome: &anyhow::Result<RunOutcome>) -> Option<FeedRun> {
    let started_at = vigie_directory_sql::lifecycle::stamp(time::OffsetDateTime::now_utc());
    let mut run = FeedRun {
        started_at,
        source: source_label(source),
        started_by: started_by.to_owned(),
        dry_run,
        diff: "{}".into(),
        error_lines: "[]".into(),
        ..Default::default()
    };
    match outcome {
        Ok(RunOutcome::NotModified { .. }) => return None,
        Ok(o) => {
            run.source = source_label(o.file());
            let d = o.diff();
            run.result = o.result().to_owned();
            run.joiners = count(d.joiners.len());
            run.movers = count(d.movers.len());
            run.leavers = count(d.leavers.len());
            run.returners = count(d.returning.len());
            run.unchanged = count(d.unchanged);
            run.diff = serde_json::to_string(&bounded(d)).unwrap_or_else(|_| "{}".into());
            if let RunOutcome::Refused { reason, .. } = o {
                run.safety_stop = Some(reason.clone());
            }
        }
        Err(e) => {
            run.result = "failed".into();
            let line = match e.downcast_ref::<MalformedFeed>() {
                Some(m) => ErrorLine {
                    line: m.csv.line,
                    column: m.csv.column.map(str::to_owned),
                    reason: m.csv.reason.clone(),
                },
                None => ErrorLine { line: 0, column: None, reason: format!("{e:#}") },
            };
            run.errors = 1;
            run.error_lines = serde_json::to_string(&[line]).unwrap_or_else(|_| "[]".into());
        }
    }
    Some(run)
}

/// Records the run; a failure to record is logged, never the run's failure. An unchanged run
/// right after an unchanged run of the same source by the same starter is not recorded again: the
/// period of `serve` reads an unchanged drop every `interval_secs`, and the page would show
/// nothing else.
pub async fn record(
    dir: &SqlDirectory,
    source: &str,
    started_by: &str,
    dry_run: bool,
    outcome: &anyhow::Result<RunOutcome>,
) {
    let Some(run) = row(source, started_by, dry_run, outcome) else { return };
    if run.result == "unchanged"
        && let Ok(last) = dir.feed_runs(1).await
        && last
            .first()
            .is_some_and(|l| l.result == "unchanged" && l.source == run.source && l.started_by == run.started_by)
    {
        return;
    }
    if let Err(e) = dir.record_feed_run(&run).await {
        tracing::warn!(error = %e, "HR feed: the run could not be recorded for the console");
    }
}

/// A run without its diff and errors, as `GET /admin/api/feeds` lists it.
pub fn summary_json(r: &FeedRun) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "started_at": r.started_at,
        "source": r.source,
        "started_by": r.started_by,
        "dry_run": r.dry_run,
        "result": r.result,
        "counts": {
            "joiners": r.joiners, "movers": r.movers, "leavers": r.leavers,
            "returning": r.returners, "unchanged": r.unchanged, "errors": r.errors,
        },
        "safety_stop": r.safety_stop,
    })
}

/// A run with its diff and errors, as `GET /admin/api/feeds/{id}` shows it.
pub fn whole_json(r: &FeedRun) -> serde_json::Value {
    let (diff, errors) = details(r);
    let mut v = summary_json(r);
    v["diff"] = serde_json::to_value(diff).unwrap_or_default();
    v["errors"] = serde_json::to_value(errors).unwrap_or_default();
    v
}
