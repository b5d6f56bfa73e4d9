//! The trail in PostgreSQL (docs/audit.md, "One trail for all replicas"): how a record is sealed
//! after the head the table holds, and `vigie audit verify` of the table and its checkpoints,
//! naming the first broken row. The table itself is `vigie_directory_sql::audit_trail`.
use std::path::{Path, PathBuf};

use anyhow::bail;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use vigie_directory_sql::audit_trail::{AuditHead, PgAuditTrail, SealedRecord};

use super::chain::{self, Link};
use super::note::{Signer, Verifier};
use super::purge::{Outcome, Retention, Verdict, judge, signed_note};
use super::verify::{Broken, Chain, Report, purge_notes, signed_notes};

/// Rows read at a time by the verifier: the trail is large, memory is not.
const PAGE: i64 = 10_000;

/// The chain's link at a head read from the table; a head whose hash is not hex (an edited row)
/// is chained after as if it were zeros: `verify` names that row anyway.
pub fn link_at(head: Option<&AuditHead>) -> Link {
    head.map_or_else(Link::default, |h| Link {
        seq: u64::try_from(h.seq).unwrap_or(0),
        head: chain::unhex(&h.hash).unwrap_or(chain::GENESIS),
    })
}

/// Seals `event_json` after `at` (advancing it) as a row of the table.
pub fn seal_after(at: &mut Link, event_json: &str) -> (SealedRecord, String) {
    let prev = chain::hex(&at.head);
    let line = at.seal(event_json);
    let record = SealedRecord {
        seq: i64::try_from(at.seq).unwrap_or(i64::MAX),
        prev,
        hash: chain::hex(&at.head),
        record: line.trim_end_matches('\n').to_owned(),
        event_id: None,
    };
    (record, line)
}

/// Seals one event after `head`.
pub fn seal(head: Option<&AuditHead>, event_json: &str) -> SealedRecord {
    seal_after(&mut link_at(head), event_json).0
}

/// Where a row is, for a [`Broken`]: the table's name as the "file", the row's rank by `seq`.
const RECORDS: &str = "audit_records";

/// Checks the table's chain and its checkpoints (signed by `key`; none: the chain alone).
pub async fn verify_table(trail: &PgAuditTrail, key: Option<&Verifier>) -> anyhow::Result<Result<Report, Broken>> {
    let (signed, listed) = match key {
        Some(key) => {
            let at = |table: &str, rows: Vec<(i64, String)>| -> Vec<(PathBuf, usize, String)> {
                let place = PathBuf::from(format!("{table} id"));
                rows.into_iter().map(|(id, note)| (place.clone(), usize::try_from(id).unwrap_or(0), note)).collect()
            };
            let notes = at("audit_checkpoints", trail.checkpoints().await?);
            let purges = at("audit_purge_notes", trail.purge_notes().await?);
            match signed_notes(notes, key).and_then(|s| Ok((s, purge_notes(purges, key)?))) {
                Ok(s) => s,
                Err(b) => return Ok(Err(b)),
            }
        }
        None => Default::default(),
    };
    let mut chain = Chain::new(signed);
    chain.listed = listed;
    let table = Path::new(RECORDS);
    let (mut after, mut rank) = (i64::MIN, 0usize);
    loop {
        let rows = trail.records_after(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in rows {
            rank += 1;
            // The columns are copies of the record's own fields, for the order and lookups: one
            // that disagrees was edited apart from the record.
            let sealed = chain::open(row.record.as_bytes());
            let agrees = sealed.as_ref().is_some_and(|s| {
                u64::try_from(row.seq) == Ok(s.seq)
                    && chain::hex(&s.prev) == row.prev
                    && chain::hex(&s.hash) == row.hash
            });
            if sealed.is_some() && !agrees {
                return Ok(Err(Broken {
                    file: table.to_path_buf(),
                    line: rank,
                    seq: u64::try_from(row.seq).ok(),
                    what: "its columns seq, prev, hash differ from its record: the row was edited".into(),
                }));
            }
            if let Err(b) = chain.next(table, rank, row.record.as_bytes()) {
                return Ok(Err(b));
            }
        }
    }
    Ok(chain.end(table.to_path_buf()))
}

/// `vigie audit purge` on the table (docs/audit.md, "Retention and purge"): verifies it first (a
/// purge must not hide a break), then, a page at a time, signs one purge note listing the page's
/// records past their retention and has `vigie_audit_purge` store the note and stub them in one
/// transaction (the only change the trail's trigger lets through; `0003_audit_purge.sql`).
pub async fn purge_table(
    trail: &PgAuditTrail,
    signer: &Signer,
    retention: &Retention<'_>,
    now: OffsetDateTime,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let key = Verifier::parse(&signer.verifier_key())?;
    if let Err(broken) = verify_table(trail, Some(&key)).await? {
        bail!("the trail does not verify, so it is not purged (a purge must not hide a break): {broken}");
    }
    let (time, day) = (now.format(&Rfc3339)?, now.date().to_string());
    let mut outcome = Outcome::default();
    let mut after = i64::MIN;
    loop {
        let rows = trail.records_after(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let mut listed = Vec::new();
        for row in rows {
            match judge(row.record.as_bytes(), retention, now) {
                Verdict::Stub(record) => listed.push((record.seq, record.hash)),
                verdict => outcome.count(&verdict),
            }
        }
        outcome.purged.extend(listed.iter().map(|(seq, _)| *seq));
        if listed.is_empty() || dry_run {
            continue;
        }
        let note = signed_note(signer, &time, &listed);
        let rows: Vec<(i64, String)> =
            listed.iter().map(|(seq, hash)| (i64::try_from(*seq).unwrap_or(i64::MAX), chain::hex(hash))).collect();
        let stubbed = trail.purge(&rows, &day, &note).await.map_err(|e| {
            anyhow::anyhow!(
                "{e}: the purge's role needs EXECUTE on vigie_audit_purge (`audit.purge_url`, docs/audit.md), and the \
                 trail's migrations up to date (`vigie migrate`)"
            )
        })?;
        if stubbed != rows.len() as u64 {
            bail!(
                "{} of {} records listed by the purge note became stubs: another purge ran at the same time, or a row \
                 changed since it was verified; run `vigie audit verify`",
                stubbed,
                rows.len()
            );
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use vigie_core::audit::{AuditEvent, AuditKind, AuditSink};

    use super::super::writer::{JsonLinesAudit, Options};

    /// Audit events per second into PostgreSQL with group commit, from 8 callers that each wait
    /// for their acknowledgement (as logins do). `VIGIE_TEST_POSTGRES_URL=… cargo test -p
    /// vigie-gateway --lib audit::pg::tests::events_per_second -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: run by hand against a PostgreSQL (tests/postgres.sh)"]
    fn events_per_second_on_postgresql_with_group_commit() {
        let Ok(admin) = std::env::var("VIGIE_TEST_POSTGRES_URL") else { return };
        let name = format!("bench_audit_{}", std::process::id());
        let psql = |url: &str, sql: &str| {
            let ok = std::process::Command::new("psql").args(["-X", "-q", url, "-c", sql]).status().unwrap();
            assert!(ok.success(), "{sql}");
        };
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        let sink = JsonLinesAudit::open_postgres(&url, Options::default()).unwrap();
        let (callers, each) = (8, 2_500);
        let started = Instant::now();
        std::thread::scope(|s| {
            for c in 0..callers {
                let sink = &sink;
                s.spawn(move || {
                    for i in 0..each {
                        let (tx, rx) = mpsc::channel();
                        let event = AuditEvent {
                            kind: Some(AuditKind::Login),
                            reason: Some(format!("caller {c} event {i}")),
                            ..Default::default()
                        };
                        sink.record_acked(&event, Box::new(move |ok| tx.send(ok).unwrap()));
                        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(true));
                    }
                });
            }
        });
        let acked = started.elapsed();
        let n = callers * each;
        eprintln!("{n} acknowledged events in {acked:?}: {:.0} events/s", n as f64 / acked.as_secs_f64());
        let started = Instant::now();
        for i in 0..n {
            sink.record(&AuditEvent {
                kind: Some(AuditKind::Login),
                reason: Some(format!("{i}")),
                ..Default::default()
            });
        }
        sink.flush();
        let flushed = started.elapsed();
        eprintln!("{n} fire-and-forget events in {flushed:?}: {:.0} events/s", n as f64 / flushed.as_secs_f64());
        drop(sink);
        psql(&admin, &format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
