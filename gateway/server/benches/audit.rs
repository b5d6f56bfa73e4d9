//! Audit events per second the trail sustains (issue 18's first figure), through the writer the
//! gateway uses (`vigie_gateway::audit::open`, as `serve` opens it): into a file (hash chain,
//! signed checkpoints every 1,000 records, `fdatasync` group commit) and into PostgreSQL (the
//! shared chain, one transaction per batch; a server the bench starts with `tests/postgres.sh`),
//! each with `audit.commit_interval_us` at 0 and at its default.
//!
//! Two phases of `--secs` (10) per trail:
//! - **acknowledged**: `--concurrency` (64) threads each record an event and wait for its
//!   acknowledgement (on stable storage), as the answers of logins and tokens do, then the next:
//!   acknowledged events per second, the wait's p50 and p99, syncs (or transactions) per event;
//! - **fire-and-forget**: one thread records as fast as it can (the events nobody waits for: policy
//!   decisions, refusals), then a flush: events per second until all are on disk.
//!
//! Each trail is verified afterwards as `vigie audit verify` does (file trails; the PostgreSQL one
//! by its chain's count): a figure for a trail that lost or broke records would be worth nothing.
//!
//! `cargo bench -p vigie-gateway --bench audit [-- --secs 10 --concurrency 64 --trail file|postgres|both]`
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use vigie_core::audit::{AuditEvent, AuditKind, AuditSink, Outcome};
use vigie_gateway::audit::note::{Signer, Verifier};
use vigie_gateway::audit::{AuditConfig, JsonLinesAudit, verify};

mod common;
use common::{Postgres, RemoveDir, arg, load_average};

/// An event the size of a login's line (about 600 bytes once sealed).
fn event(i: usize) -> AuditEvent {
    AuditEvent {
        at: vigie_gateway::rfc3339_now(),
        kind: Some(AuditKind::Login),
        outcome: Some(Outcome::Success),
        subject: Some(format!("identity-{i}")),
        client_id: Some("dpi".into()),
        method: Some("cps".into()),
        acr: Some("eidas2".into()),
        sid: Some(format!("sid-{i:016}")),
        ip: Some("10.1.2.3".into()),
        user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) bench".into()),
        request_id: Some(format!("req-{i:016}")),
        ..AuditEvent::default()
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// `concurrency` threads recording acknowledged events for `secs`: how many, and the waits.
fn acknowledged(sink: &Arc<JsonLinesAudit>, secs: u64, concurrency: usize) -> (usize, f64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|t| {
            let (sink, stop) = (sink.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut waits = Vec::new();
                let mut i = t * 10_000_000;
                while !stop.load(Ordering::Relaxed) {
                    let (tx, rx) = mpsc::sync_channel(1);
                    let asked = Instant::now();
                    sink.record_acked(
                        &event(i),
                        Box::new(move |ok| {
                            let _ = tx.send(ok);
                        }),
                    );
                    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true), "an event was not acknowledged");
                    waits.push(asked.elapsed());
                    i += 1;
                }
                waits
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut waits: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
    let elapsed = began.elapsed().as_secs_f64();
    waits.sort();
    (waits.len(), elapsed, waits)
}

/// One thread recording events nobody waits for as fast as it can for `secs`, then a flush.
fn fire_and_forget(sink: &JsonLinesAudit, secs: u64) -> (usize, f64) {
    let began = Instant::now();
    let mut n = 0;
    while began.elapsed() < Duration::from_secs(secs) {
        for _ in 0..100 {
            sink.record(&event(900_000_000 + n));
            n += 1;
        }
    }
    sink.flush();
    (n, began.elapsed().as_secs_f64())
}

fn main() {
    let secs: u64 = arg("--secs", "10").parse().expect("--secs N");
    let concurrency: usize = arg("--concurrency", "64").parse().expect("--concurrency N");
    let which = arg("--trail", "both");
    let dir = std::env::temp_dir().join(format!("vigie-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let _dir = RemoveDir(dir.clone());
    let key = dir.join("checkpoint.pem");
    std::fs::write(&key, Signer::generate_pem().expect("key")).expect("key file");
    let postgres = (which == "both" || which == "postgres").then(Postgres::start);
    println!("Vigie audit trail benchmark: {secs} s per phase, {concurrency} threads waiting for acknowledgements");
    let mut trails: Vec<(String, Option<String>)> = Vec::new();
    if which == "both" || which == "file" {
        trails.push(("file (fdatasync)".into(), None));
    }
    if let Some(pg) = &postgres {
        trails.push(("PostgreSQL".into(), Some(pg.url.clone())));
    }
    for (name, url) in trails {
        for interval in [0, AuditConfig::default().commit_interval_us] {
            let label = format!("{name}, commit interval {interval} µs");
            let file = dir.join(format!("audit-{}-{interval}.jsonl", url.is_some()));
            let config = AuditConfig {
                file: file.display().to_string(),
                url: url.clone(),
                checkpoint_key: Some(key.clone()),
                commit_interval_us: interval,
                ..AuditConfig::default()
            };
            // Each configuration its own chain: a database of its own.
            let url = url.as_ref().map(|maintenance| {
                let db = format!("audit_bench_{interval}");
                let create = format!("create database {db}");
                let made = std::process::Command::new("psql").args([maintenance, "-qAtc", &create]).status();
                assert!(made.is_ok_and(|s| s.success()), "could not create {db}");
                format!("{}/{db}", maintenance.rsplit_once('/').expect("a URL with a database").0)
            });
            let config = AuditConfig { url: url.clone(), ..config };
            let sink = Arc::new(vigie_gateway::audit::open(&config, "sqlite://unused").expect("open the trail"));
            let status = sink.status();
            let load = load_average();
            let syncs = status.syncs();
            let (acked, elapsed, waits) = acknowledged(&sink, secs, concurrency);
            let syncs = status.syncs() - syncs;
            println!(
                "[{label}] acknowledged: {:.0} events/s, wait p50 {:.2} ms p99 {:.2} ms, {:.3} syncs/event ({acked} events; load before {load})",
                acked as f64 / elapsed,
                pct(&waits, 0.50),
                pct(&waits, 0.99),
                syncs as f64 / acked.max(1) as f64,
            );
            let load = load_average();
            let (recorded, elapsed) = fire_and_forget(&sink, secs);
            println!(
                "[{label}] fire-and-forget: {:.0} events/s until on disk ({recorded} events; load before {load})",
                recorded as f64 / elapsed
            );
            assert_eq!(status.write_errors(), 0, "the trail failed writes: the figures are void");
            let sink = Arc::into_inner(sink).expect("the only handle");
            drop(sink);
            let total = acked + recorded;
            if url.is_none() {
                let log = config.checkpoint_log();
                let signer = Signer::load(&config.origin, &key).expect("key");
                let verifier = Verifier::parse(&signer.verifier_key()).expect("verifier key");
                let report = verify::verify(std::slice::from_ref(&file), std::slice::from_ref(&log), Some(&verifier))
                    .expect("the trail verifies");
                assert_eq!(report.records as usize, total, "every event is in the trail");
                println!(
                    "[{label}] verified: {} records, the last checkpoint covers {}",
                    report.records, report.covered
                );
            } else if let Some(url) = &url {
                let out = std::process::Command::new("psql")
                    .args([url, "-qAtc", "select count(*) from audit_records"])
                    .output()
                    .expect("psql");
                let rows: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
                assert_eq!(rows, total, "every event is in the table");
                println!("[{label}] in the table: {rows} records");
            }
        }
    }
}
