//! The spool re-joining the PostgreSQL chain (issue 18; docs/audit.md, "When the database
//! fails"): what a replica wrote to its local spool while PostgreSQL was unreachable is replayed
//! into `audit_records` when the trail is opened again, in the spool's order, each event once.
//!
//! Each spooled event's stable id is the hash of its spool record (fixed when the event reached
//! the spool's disk, unique since it covers the spool chain before it); the replayed record keeps
//! the event's fields as they were (its `at` among them) and adds `"spooled":"<that hash>"`, and
//! the row's `event_id` holds it under a unique index (`0004_audit_spool.sql`). A replay after a
//! crash mid-replay, or after COMMIT but before the spool was removed, skips what the table holds
//! already. The spool is removed only once every batch is committed; until then `/readyz` says
//! the trail is degraded and `vigie_audit_spool_pending` counts the records waiting.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use vigie_directory_sql::audit_trail::PgAuditTrail;

use super::chain;
use super::pg::{link_at, seal_after};

/// Records appended per transaction: a crash loses at most the batch in flight (replayed again).
const BATCH: usize = 1_000;

/// Whether this process holds a spool not yet replayed (one trail per process).
static PENDING: AtomicBool = AtomicBool::new(false);

/// True while a spool of an earlier outage waits to be replayed into the table.
pub fn pending() -> bool {
    PENDING.load(Ordering::Relaxed)
}

fn set_pending(records: usize) {
    PENDING.store(records > 0, Ordering::Relaxed);
    metrics::gauge!("vigie_audit_spool_pending").set(records as f64);
}

/// A spool record made ready for the shared chain: its id and the event as it will be sealed.
#[derive(Debug, PartialEq, Eq)]
pub struct Spooled {
    /// The spool record's hash (hex): the event's stable id.
    pub id: String,
    /// The event's fields as spooled, plus `"spooled":"<id>"`.
    pub json: String,
}

/// Reads a spool: every complete record, checked as a chain (intact, each linked to the one
/// before); a last line without its newline was never acknowledged and is left out. A spool that
/// does not verify is not replayed: the error names the line.
pub fn read(text: &str) -> anyhow::Result<Vec<Spooled>> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut before: Option<chain::Sealed> = None;
    let mut out = Vec::new();
    for (i, line) in complete.lines().enumerate() {
        let n = i + 1;
        let Some(sealed) = chain::open(line.as_bytes()) else {
            bail!("line {n} is not a sealed record");
        };
        if !sealed.intact {
            bail!("line {n} (seq {}): its content does not match its hash", sealed.seq);
        }
        if let Some(b) = &before
            && (sealed.seq != b.seq + 1 || sealed.prev != b.hash)
        {
            bail!("line {n} (seq {}) does not follow seq {}", sealed.seq, b.seq);
        }
        // `{"seq":N,"prev":"…"` then the event's fields, then `,"hash":"…"}` (chain.rs).
        let head = format!("{{\"seq\":{},\"prev\":\"{}\"", sealed.seq, chain::hex(&sealed.prev));
        let body = &line[..line.rfind(chain::HASH_MARK).unwrap_or(line.len())];
        let Some(fields) = body.strip_prefix(&head) else {
            bail!("line {n} (seq {}) does not begin with its seq and prev", sealed.seq);
        };
        let id = chain::hex(&sealed.hash);
        let fields = fields.strip_prefix(',').map(|f| format!("{f},")).unwrap_or_default();
        out.push(Spooled { json: format!("{{{fields}\"spooled\":\"{id}\"}}"), id });
        before = Some(sealed);
    }
    Ok(out)
}

/// A spool being replayed a batch at a time: the writer of a running gateway takes what arrives
/// meanwhile between two batches (into the spool, behind the records being replayed), so an
/// answer waiting for its trace waits one batch at most.
pub struct Replay {
    path: PathBuf,
    /// The spool's records as last read, and the spool's length then.
    records: Vec<Spooled>,
    len: u64,
    /// How many of `records` are in the table (appended now or found there).
    done: usize,
    /// How many this replay appended.
    pub appended: usize,
}

impl Replay {
    /// Reads and checks the spool at `path`; `None` when there is none (or it is empty).
    pub fn open(path: &Path) -> anyhow::Result<Option<Self>> {
        let mut replay = Self { path: path.to_path_buf(), records: Vec::new(), len: 0, done: 0, appended: 0 };
        replay.refresh()?;
        Ok((!replay.records.is_empty()).then_some(replay))
    }

    /// Reads the spool again if it grew since (events spooled during the replay).
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).context("reading the spool"),
        };
        if text.len() as u64 == self.len && !self.records.is_empty() {
            return Ok(());
        }
        let records = read(&text).context("the spool does not verify, so it is not replayed")?;
        if records.len() < self.done || records[..self.done] != self.records[..self.done] {
            bail!("the spool changed under its replay: it is not replayed further");
        }
        (self.records, self.len) = (records, text.len() as u64);
        set_pending(self.records.len() - self.done);
        Ok(())
    }

    /// Records of the spool not yet in the table.
    pub fn remaining(&self) -> usize {
        self.records.len() - self.done
    }

    /// Replays the next batch of [`BATCH`] records in one transaction.
    pub async fn step(&mut self, trail: &PgAuditTrail) -> anyhow::Result<()> {
        let batch = &self.records[self.done..self.records.len().min(self.done + BATCH)];
        let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
        let mut appended = 0;
        trail
            .append_once(&ids, |head, present| {
                let mut at = link_at(head.as_ref());
                let fresh: Vec<_> = batch
                    .iter()
                    .filter(|r| !present.contains(&r.id))
                    .map(|r| {
                        let (mut record, _) = seal_after(&mut at, &r.json);
                        record.event_id = Some(r.id.clone());
                        record
                    })
                    .collect();
                appended = fresh.len();
                fresh
            })
            .await?;
        self.done += batch.len();
        self.appended += appended;
        set_pending(self.remaining());
        Ok(())
    }

    /// Once every record is in the table: removes the spool and its checkpoints (they sign a
    /// chain that now lives in the table). Returns how many records the spool held.
    pub fn finish(self) -> anyhow::Result<usize> {
        debug_assert_eq!(self.remaining(), 0);
        // The checkpoints first: a crash between the two leaves a spool whose replay adds
        // nothing, never checkpoints of a spool chain that is gone beside the next outage's spool.
        let checkpoints = PathBuf::from(format!("{}.checkpoints", self.path.display()));
        match std::fs::remove_file(&checkpoints) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("removing the spool's checkpoints");
            }
            _ => {}
        }
        std::fs::remove_file(&self.path).context("removing the replayed spool")?;
        set_pending(0);
        Ok(self.records.len())
    }
}

/// Replays `spool` into `trail` (batches of [`BATCH`], each one transaction), then removes it
/// and its checkpoints. Returns how many records the spool held and how many were appended
/// (fewer when an earlier replay was cut short).
pub async fn replay(trail: &PgAuditTrail, spool: &Path) -> anyhow::Result<(usize, usize)> {
    let Some(mut replay) = Replay::open(spool)? else { return Ok((0, 0)) };
    while replay.remaining() > 0 {
        replay.step(trail).await?;
    }
    let appended = replay.appended;
    Ok((replay.finish()?, appended))
}

/// Counts the records of the spool a running writer is writing to (`vigie_audit_spool_pending`).
pub fn spooled(records: u64) {
    metrics::gauge!("vigie_audit_spool_pending").set(records as f64);
}

/// At the trail's opening: replays a spool left by an earlier outage, if any. A failure is an
/// alarm, not a stop (the spool stays, `/readyz` degraded): the trail goes on in the table, and
/// the spool is replayed at the next start.
pub fn rejoin(trail: &PgAuditTrail, rt: &tokio::runtime::Runtime, spool: Option<&Path>) {
    let Some(spool) = spool.filter(|s| std::fs::metadata(s).is_ok_and(|m| m.len() > 0)) else { return };
    match rt.block_on(replay(trail, spool)) {
        Ok((records, appended)) => tracing::warn!(
            spool = %spool.display(), records, appended,
            "the audit spool of an earlier database outage is replayed into the shared trail and removed"
        ),
        Err(e) => {
            PENDING.store(true, Ordering::Relaxed);
            tracing::error!(
                spool = %spool.display(), error = format!("{e:#}"),
                "the audit spool could not be replayed into the shared trail: it is kept and replayed at the next \
                 start; check it with `vigie audit verify SPOOL` (docs/audit.md)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_becomes_its_events_with_their_fields_and_the_id_of_their_record() {
        let mut link = chain::Link::default();
        let a = link.seal(r#"{"at":"2026-12-06T00:00:00Z","kind":"login"}"#);
        let b = link.seal("{}");
        let read = read(&format!("{a}{b}{{\"seq\":3,\"pr")).unwrap();
        let id = |line: &str| chain::hex(&chain::open(line.trim_end().as_bytes()).unwrap().hash);
        assert_eq!(
            read,
            [
                Spooled {
                    json: format!(r#"{{"at":"2026-12-06T00:00:00Z","kind":"login","spooled":"{}"}}"#, id(&a)),
                    id: id(&a)
                },
                Spooled { json: format!(r#"{{"spooled":"{}"}}"#, id(&b)), id: id(&b) },
            ],
            "the torn last line was never acknowledged: left out"
        );
    }

    #[test]
    fn a_spool_that_does_not_verify_is_not_replayed_and_the_line_is_named() {
        let mut link = chain::Link::default();
        let lines: Vec<String> = (0..3).map(|i| link.seal(&format!(r#"{{"reason":"{i}"}}"#))).collect();
        let removed = format!("{}{}", lines[0], lines[2]);
        assert_eq!(read(&removed).unwrap_err().to_string(), "line 2 (seq 3) does not follow seq 1");
        let edited = lines.concat().replace(r#""reason":"1""#, r#""reason":"9""#);
        assert_eq!(read(&edited).unwrap_err().to_string(), "line 2 (seq 2): its content does not match its hash");
    }
}
