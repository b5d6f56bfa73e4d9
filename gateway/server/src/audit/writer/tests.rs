//! The writer's own tests: the queue written out at the end, flushes and acks once on disk, failed
//! writes counted, a rotated trail's checkpoints, an unwritable spool retried after a pause.
use super::*;
use vigie_core::audit::AuditKind;

pub(super) fn event(i: usize) -> AuditEvent {
    AuditEvent { kind: Some(AuditKind::Login), reason: Some(format!("event {i}")), ..Default::default() }
}

pub(super) fn fresh(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vigie-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A sink on a fresh file of its own, with `n` events recorded.
fn filled(name: &str, n: usize) -> (PathBuf, JsonLinesAudit) {
    let path = fresh(name);
    let sink = JsonLinesAudit::open(path.to_str().unwrap()).unwrap();
    for i in 0..n {
        sink.record(&event(i));
    }
    (path, sink)
}

#[test]
fn the_queue_is_written_out_before_the_sink_goes() {
    let (path, sink) = filled("drop", 20_000);
    drop(sink);
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(written.lines().count(), 20_000, "queued audit events were lost at the end");
    assert!(written.lines().last().unwrap().contains("event 19999"));
}

#[test]
fn a_flush_returns_once_every_recorded_event_is_on_disk() {
    let (path, sink) = filled("flush", 5_000);
    sink.flush();
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(written.lines().count(), 5_000);
    assert_eq!(sink.write_errors(), 0);
}

#[test]
fn failed_writes_are_counted_not_ignored_and_acked_as_failed() {
    // /dev/full accepts the open and refuses every write with ENOSPC.
    let sink = JsonLinesAudit::open("/dev/full").unwrap();
    let (tx, rx) = mpsc::channel();
    sink.record(&event(1));
    sink.record_acked(&event(2), Box::new(move |ok| tx.send(ok).unwrap()));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(30)),
        Ok(false),
        "a caller waiting was told its event is not written"
    );
    assert!(sink.write_errors() >= 1, "{} write errors counted", sink.write_errors());
    assert!(!sink.status().healthy());
}

#[test]
fn an_ack_comes_once_the_event_is_on_disk() {
    let path = fresh("ack");
    let sink = JsonLinesAudit::open(path.to_str().unwrap()).unwrap();
    let (tx, rx) = mpsc::channel();
    sink.record_acked(&event(7), Box::new(move |ok| tx.send(ok).unwrap()));
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(written.contains("event 7"), "acknowledged before it was written: {written:?}");
}

/// The checkpoints a log holds, by the chain they name: how many, and the last size.
fn checkpoints_by_chain(log: &std::path::Path, key: &str) -> std::collections::BTreeMap<[u8; 32], Vec<u64>> {
    let key = super::super::note::Verifier::parse(key).unwrap();
    let mut by = std::collections::BTreeMap::<[u8; 32], Vec<u64>>::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let c = key.open(v["checkpoint"].as_str().unwrap()).unwrap();
        by.entry(c.chain.unwrap()).or_default().push(c.size);
    }
    by
}

#[test]
fn a_rotated_trail_gets_its_checkpoint_at_its_own_every() {
    let dir = fresh("rotated-every");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (trail, log) = (dir.join("audit.jsonl"), dir.join("audit.jsonl.checkpoints"));
    let pem = Signer::generate_pem().unwrap();
    let signer = Signer::from_pem("vigie.test/audit", &pem).unwrap();
    let key = signer.verifier_key();
    let every = 3;
    let options = Options {
        checkpoints: Some(Checkpoints {
            signer,
            every,
            interval: Duration::from_secs(3600),
            log: log.clone(),
            witness: None,
        }),
        ..Default::default()
    };
    let sink = JsonLinesAudit::open_with(trail.to_str().unwrap(), options).unwrap();
    // The old chain runs well past one period: 3 periods.
    for i in 0..9 {
        sink.record(&event(i));
        sink.flush();
    }
    // logrotate `create`: the trail moved aside, a new empty one in its place.
    std::fs::rename(&trail, dir.join("audit.jsonl.1")).unwrap();
    std::fs::write(&trail, "").unwrap();
    for i in 9..9 + every as usize {
        sink.record(&event(i));
        sink.flush();
    }
    let new_chain = chain::first_hash(&trail).unwrap();
    let by_chain = checkpoints_by_chain(&log, &key);
    drop(sink);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        by_chain.get(&new_chain).map(Vec::as_slice),
        Some(&[every][..]),
        "the new chain is checkpointed after its own {every} records, not after the old chain's seq: {by_chain:?}"
    );
}

#[test]
fn an_unwritable_spool_is_retried_after_a_pause_not_in_a_busy_loop_and_nothing_is_acked() {
    // The trail refuses every write (/dev/full) and the spool's directory does not exist.
    let spool = std::env::temp_dir().join(format!("vigie-no-such-dir-{}/spool.jsonl", std::process::id()));
    let options = Options { spool: Some(spool.clone()), ..Default::default() };
    let sink = JsonLinesAudit::open_with("/dev/full", options).unwrap();
    let started = Instant::now();
    let (mut acked, mut refused) = (0, 0);
    while started.elapsed() < Duration::from_secs(2) {
        let (tx, rx) = mpsc::channel();
        sink.record_acked(&event(1), Box::new(move |ok| tx.send(ok).unwrap()));
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(true) => acked += 1,
            _ => refused += 1,
        }
    }
    let errors = sink.write_errors();
    let tries = started.elapsed().as_millis() / RETRY.as_millis() + 2;
    assert_eq!(acked, 0, "nothing is acknowledged as written");
    assert!(refused > 10, "each caller is told at once: {refused}");
    assert!(errors >= 2, "the failures are counted: {errors}");
    assert!(
        u128::from(errors) <= 2 * tries,
        "{errors} write errors in 2 s for {refused} events: the writer tries once per {RETRY:?}, not per event"
    );
    assert!(!spool.exists());
    assert!(sink.status().spooling() && !sink.status().healthy());
}

#[test]
fn a_reopened_trail_continues_its_chain() {
    let (path, sink) = filled("reopen", 3);
    drop(sink);
    let sink = JsonLinesAudit::open(path.to_str().unwrap()).unwrap();
    sink.record(&event(3));
    drop(sink);
    let written = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let records: Vec<_> = written.lines().map(|l| chain::open(l.as_bytes()).unwrap()).collect();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(records[3].prev, records[2].hash);
}
