//! Searching the trail (issue 18, "Using it"; docs/audit.md, "Searching"): by person (directory
//! id or idNat), client, event kind, time range and result, newest first, a page at a time — on
//! the file trail (the file, its rotated copies and the spool) or on the PostgreSQL table (its
//! indexes: `audit-migrations/0002_audit_search.sql`). [`search`] is the one entry point:
//! `vigie audit search`, `GET /admin/audit` and the admin console call it.
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use vigie_core::audit::{AuditEvent, AuditKind, Outcome};
use vigie_directory_sql::audit_trail::{PgAuditTrail, TrailQuery};

/// The most records one page holds.
pub const MAX_LIMIT: usize = 1000;

/// What is searched for; every filter given must match (an empty query: every record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// The person: their directory id (`subject`) or idNat, any of these.
    pub persons: Vec<String>,
    /// The OAuth client.
    pub client: Option<String>,
    /// Event kinds, any of these.
    pub kinds: Vec<AuditKind>,
    /// The result.
    pub outcome: Option<Outcome>,
    /// From this Unix time, inclusive.
    pub from: Option<i64>,
    /// Up to this Unix time, exclusive.
    pub to: Option<i64>,
    /// Only records older than this position (a page's `next`).
    pub before: Option<u64>,
    /// At most this many (1..=[`MAX_LIMIT`]).
    pub limit: usize,
}

/// One record found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Record {
    /// Where it is in the searched trail: the sequence number in PostgreSQL, the rank from the
    /// oldest line of the oldest file for files (rotated files each restart their `seq`).
    pub position: u64,
    /// The event as read.
    pub event: AuditEvent,
    /// The record as written (its `seq`, `prev`, `hash` and every field).
    pub raw: Value,
}

/// A page of records, newest first, and the `before` of the next page when there may be one.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Page {
    pub records: Vec<Record>,
    pub next: Option<u64>,
}

/// Where the trail is searched.
pub enum Trail {
    /// Trail files, oldest first (rotated copies, then the file, then the spool).
    Files(Vec<PathBuf>),
    Postgres(PgAuditTrail),
}

impl Trail {
    /// The trail `serve` writes with this configuration: the PostgreSQL table, else `audit.file`
    /// with its rotated copies ([`rotated`]) and the spool when it holds records.
    pub async fn open(config: &super::AuditConfig, directory_url: &str) -> anyhow::Result<Self> {
        if let Some(url) = config.postgres_url(directory_url) {
            let trail = PgAuditTrail::open(url, 2)
                .await
                .context("opening the audit trail in PostgreSQL: check `audit.url` (else `directory.url`)")?;
            return Ok(Trail::Postgres(trail));
        }
        if config.file == "-" {
            anyhow::bail!("`audit.file` is `-` (standard output): there is no trail to search; name the files");
        }
        let mut files = rotated(Path::new(&config.file))?;
        files.extend(config.spool.clone().filter(|s| std::fs::metadata(s).is_ok_and(|m| m.len() > 0)));
        Ok(Trail::Files(files))
    }

    pub async fn close(&self) {
        if let Trail::Postgres(t) = self {
            t.close().await;
        }
    }
}

/// `file` and its rotated copies beside it, oldest first: logrotate's `file.N` (the highest N
/// oldest) and `file-DATE` / `file.DATE` (in name order), then `file`. Compressed copies (`.gz`,
/// `.xz`, `.zst`) cannot be read as lines: refused, naming them, rather than silently skipped.
pub fn rotated(file: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = file.file_name().and_then(|n| n.to_str()).context("`audit.file` has no file name")?;
    let mut numbered = Vec::new();
    let mut dated = Vec::new();
    let mut compressed = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries.flatten() {
        let Some(other) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let Some(suffix) = other.strip_prefix(name).and_then(|s| s.strip_prefix(['.', '-'])) else { continue };
        // Not rotations: the checkpoints (the trail's, a rotated copy's), a witness's or a
        // purge's temporary file.
        let beside = |end: &str| suffix.starts_with(end) || suffix.ends_with(&format!(".{end}"));
        if beside("checkpoints") || beside("purge-tmp") || suffix == "tmp" || suffix.is_empty() {
            continue;
        }
        if [".gz", ".xz", ".zst", ".bz2"].iter().any(|z| suffix.ends_with(z)) {
            compressed.push(other);
        } else if let Ok(n) = suffix.parse::<u64>() {
            numbered.push((n, entry.path()));
        } else {
            dated.push(entry.path());
        }
    }
    if !compressed.is_empty() {
        compressed.sort();
        anyhow::bail!(
            "rotated audit files are compressed ({}): decompress them (or set logrotate's `delaycompress`/`nocompress` \
             for the trail) so that the search reads them",
            compressed.join(", ")
        );
    }
    numbered.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    dated.sort();
    let mut files: Vec<PathBuf> = numbered.into_iter().map(|(_, p)| p).collect();
    files.extend(dated);
    files.push(file.to_path_buf());
    Ok(files)
}

/// The records of `trail` that `query` matches, newest first, one page.
pub async fn search(trail: &Trail, query: &Query) -> anyhow::Result<Page> {
    let limit = query.limit.clamp(1, MAX_LIMIT);
    let records = match trail {
        Trail::Files(files) => {
            let files = files.clone();
            let query = query.clone();
            tokio::task::spawn_blocking(move || search_files(&files, &query, limit)).await??
        }
        Trail::Postgres(t) => search_postgres(t, query, limit).await?,
    };
    let next = (records.len() == limit).then(|| records.last().map(|r| r.position)).flatten();
    Ok(Page { records, next })
}

/// The event a trail line holds, as `vigie audit export` reads it; `None` for a line that is no event.
fn event_of(value: &Value) -> Option<AuditEvent> {
    value.get("kind")?;
    serde_json::from_value(value.clone()).ok()
}

impl Query {
    /// Whether `e` matches (the filters the table's SQL also applies, for the files).
    pub fn matches(&self, e: &AuditEvent) -> bool {
        let who = [&e.subject, &e.idnat];
        let person = self.persons.is_empty()
            || who.iter().any(|w| w.as_ref().is_some_and(|w| self.persons.iter().any(|p| p == w)));
        let at = crate::parse_rfc3339(&e.at);
        let in_period = (self.from.is_none() && self.to.is_none())
            || at.is_some_and(|t| self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|u| t < u));
        person
            && in_period
            && self.client.as_ref().is_none_or(|c| e.client_id.as_ref() == Some(c))
            && (self.kinds.is_empty() || e.kind.is_some_and(|k| self.kinds.contains(&k)))
            && self.outcome.is_none_or(|o| e.outcome == Some(o))
    }

    /// The table's form: one JSON object per (person field, kind) alternative, each holding the
    /// client and the outcome too; empty when nothing is filtered by equality.
    fn containments(&self) -> Vec<String> {
        let mut base = serde_json::Map::new();
        if let Some(c) = &self.client {
            base.insert("client_id".into(), c.clone().into());
        }
        if let Some(o) = self.outcome {
            base.insert("outcome".into(), serde_json::to_value(o).unwrap_or_default());
        }
        let persons: Vec<Option<(&str, &String)>> = if self.persons.is_empty() {
            vec![None]
        } else {
            self.persons.iter().flat_map(|p| [Some(("subject", p)), Some(("idnat", p))]).collect()
        };
        let kinds: Vec<Option<AuditKind>> =
            if self.kinds.is_empty() { vec![None] } else { self.kinds.iter().copied().map(Some).collect() };
        let mut out = Vec::new();
        for person in &persons {
            for kind in &kinds {
                let mut object = base.clone();
                if let Some((field, value)) = person {
                    object.insert((*field).into(), (*value).clone().into());
                }
                if let Some(kind) = kind {
                    object.insert("kind".into(), serde_json::to_value(kind).unwrap_or_default());
                }
                out.push(Value::Object(object).to_string());
            }
        }
        if out == ["{}"] { Vec::new() } else { out }
    }
}

/// A Unix time as the UTC `at` text of its second without a zone: every `at` written in that
/// second or later sorts at or after it (`…:22Z`, `…:22.5Z` ≥ `…:22`).
fn at_prefix(t: i64) -> String {
    let full = crate::rfc3339(t);
    full.trim_end_matches('Z').to_owned()
}

async fn search_postgres(trail: &PgAuditTrail, query: &Query, limit: usize) -> anyhow::Result<Vec<Record>> {
    let q = TrailQuery {
        any_of: query.containments(),
        from: query.from.map(|t| (t, at_prefix(t))),
        to: query.to.map(|t| (t, at_prefix(t))),
        before: query.before.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        limit: i64::try_from(limit).unwrap_or(1),
    };
    let rows = trail.search(&q).await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let raw: Value = serde_json::from_str(&row.record)
            .with_context(|| format!("audit record seq {} is not JSON: run `vigie audit verify`", row.seq))?;
        let Some(event) = event_of(&raw) else { continue };
        records.push(Record { position: u64::try_from(row.seq).unwrap_or(0), event, raw });
    }
    Ok(records)
}

/// Reads every file through, keeping the last `limit` matches before `query.before`.
fn search_files(files: &[PathBuf], query: &Query, limit: usize) -> anyhow::Result<Vec<Record>> {
    let mut kept = VecDeque::with_capacity(limit);
    let mut position = 0u64;
    for file in files {
        let input = std::fs::File::open(file).with_context(|| format!("opening the trail file {}", file.display()))?;
        for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", file.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            position += 1;
            if query.before.is_some_and(|b| position >= b) {
                break;
            }
            let Ok(raw) = serde_json::from_str::<Value>(&line) else {
                // A torn last line (a crash while writing it) is not an event; anything else is.
                anyhow::bail!(
                    "{}:{} is not a JSON record: run `vigie audit verify` on the trail",
                    file.display(),
                    n + 1
                );
            };
            let Some(event) = event_of(&raw).filter(|e| query.matches(e)) else { continue };
            if kept.len() == limit {
                kept.pop_front();
            }
            kept.push_back(Record { position, event, raw });
        }
    }
    Ok(kept.into_iter().rev().collect())
}

/// `AuditKind` from its label (`login`, `vihf_issued`…), or a message naming the known ones.
pub fn parse_kind(s: &str) -> Result<AuditKind, String> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| {
        format!(
            "unknown event kind {:?}: expected one of the `kind` values of docs/audit.md (login, token_issued, \
             vihf_issued, dmp_call, refused, admin_api…)",
            s.chars().take(40).collect::<String>()
        )
    })
}

/// `success` or `failure`.
pub fn parse_outcome(s: &str) -> Result<Outcome, String> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| {
        format!("unknown result {:?}: expected success or failure", s.chars().take(40).collect::<String>())
    })
}

/// A time bound: RFC 3339, or a day `YYYY-MM-DD` meaning its midnight UTC.
pub fn parse_time(what: &str, v: &str) -> Result<i64, String> {
    crate::parse_rfc3339(v).or_else(|| crate::parse_rfc3339(&format!("{v}T00:00:00Z"))).ok_or_else(|| {
        format!("`{what}` {:?}: expected 2026-12-05 or 2026-12-05T08:00:00Z", v.chars().take(40).collect::<String>())
    })
}

/// What a search asked, as one line for the trail (the search is itself audited: who searched what).
pub fn describe(query: &Query) -> String {
    let mut parts = Vec::new();
    if !query.persons.is_empty() {
        parts.push(format!("person={}", query.persons.join(",")));
    }
    if let Some(c) = &query.client {
        parts.push(format!("client={c}"));
    }
    if !query.kinds.is_empty() {
        let kinds: Vec<String> = query
            .kinds
            .iter()
            .map(|k| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
            .collect();
        parts.push(format!("kind={}", kinds.join(",")));
    }
    if let Some(o) = query.outcome {
        parts.push(format!("result={}", if o == Outcome::Success { "success" } else { "failure" }));
    }
    if let Some(f) = query.from {
        parts.push(format!("from={}", crate::rfc3339(f)));
    }
    if let Some(t) = query.to {
        parts.push(format!("to={}", crate::rfc3339(t)));
    }
    if let Some(b) = query.before {
        parts.push(format!("before={b}"));
    }
    if parts.is_empty() { "every record".into() } else { parts.join(" ") }
}

/// The trail's record of a search: who searched what, how many records came back.
pub fn searched(actor: &str, query: &Query, found: usize) -> AuditEvent {
    AuditEvent {
        kind: Some(AuditKind::AuditSearched),
        outcome: Some(Outcome::Success),
        actor: Some(actor.to_owned()),
        reason: Some(describe(query)),
        object: Some(format!("{found} record(s)")),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: &str, subject: &str, idnat: Option<&str>, kind: AuditKind, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            at: at.into(),
            kind: Some(kind),
            outcome: Some(outcome),
            subject: Some(subject.into()),
            idnat: idnat.map(str::to_owned),
            client_id: Some("dpi".into()),
            ..Default::default()
        }
    }

    #[test]
    fn each_filter_narrows_and_a_person_is_their_id_or_their_idnat() {
        let e = event("2026-12-05T10:00:00.5Z", "u1", Some("810100000011"), AuditKind::Login, Outcome::Failure);
        let q = |f: &dyn Fn(&mut Query)| {
            let mut q = Query::default();
            f(&mut q);
            q.matches(&e)
        };
        assert!(q(&|_| ()));
        assert!(q(&|q| q.persons = vec!["810100000011".into()]));
        assert!(q(&|q| q.persons = vec!["u1".into()]));
        assert!(!q(&|q| q.persons = vec!["u2".into()]));
        assert!(!q(&|q| q.client = Some("other".into())));
        assert!(q(&|q| q.kinds = vec![AuditKind::Logout, AuditKind::Login]));
        assert!(!q(&|q| q.kinds = vec![AuditKind::TokenIssued]));
        assert!(!q(&|q| q.outcome = Some(Outcome::Success)));
        let t = crate::parse_rfc3339("2026-12-05T10:00:00Z").unwrap();
        assert!(q(&|q| q.from = Some(t)), "the from bound is inclusive within its second");
        assert!(!q(&|q| q.to = Some(t)), "the to bound is exclusive");
        assert!(q(&|q| q.to = Some(t + 1)));
    }

    #[test]
    fn the_table_form_is_one_containment_per_alternative_each_with_the_common_filters() {
        let q = Query {
            persons: vec!["p".into()],
            kinds: vec![AuditKind::Login, AuditKind::VihfIssued],
            outcome: Some(Outcome::Success),
            ..Default::default()
        };
        let c: Vec<Value> = q.containments().iter().map(|s| serde_json::from_str(s).unwrap()).collect();
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|o| o["outcome"] == "success"));
        assert!(c.contains(&serde_json::json!({"idnat": "p", "kind": "vihf_issued", "outcome": "success"})));
        assert!(Query::default().containments().is_empty());
    }

    #[test]
    fn the_at_prefix_sorts_every_at_of_its_second_at_or_after_it() {
        let p = at_prefix(crate::parse_rfc3339("2026-12-05T10:00:22Z").unwrap());
        assert_eq!(p, "2026-12-05T10:00:22");
        for later in ["2026-12-05T10:00:22Z", "2026-12-05T10:00:22.000001Z", "2026-12-05T10:00:23Z"] {
            assert!(later >= p.as_str(), "{later}");
        }
        assert!("2026-12-05T10:00:21.999999Z" < p.as_str());
    }

    #[test]
    fn rotated_copies_come_oldest_first_and_compressed_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("vigie-rotated-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A purged rotated copy keeps its purge notes beside it (`audit.jsonl.1.checkpoints`).
        let files =
            ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2", "audit.jsonl.checkpoints", "audit.jsonl.1.checkpoints"];
        for f in files.iter().chain(&["other.jsonl", "audit.jsonl.2.purge-tmp"]) {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let names: Vec<String> = rotated(&dir.join("audit.jsonl"))
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]);
        std::fs::write(dir.join("audit.jsonl.3.gz"), "").unwrap();
        let e = rotated(&dir.join("audit.jsonl")).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("audit.jsonl.3.gz") && e.contains("decompress"), "{e}");
    }
}
