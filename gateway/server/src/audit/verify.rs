//! `vigie audit verify`: reads a trail (one or more files as one stream: the trail, then its
//! spool) and its signed checkpoints, and names the first broken record — its file, line and
//! sequence number, and what is wrong: an edited record (its hash), a removed or moved one (the
//! sequence), a changed one (the next record's link), a rewrite or a cut tail (the checkpoints),
//! a forged checkpoint (its signature).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::chain::{self, GENESIS};
use super::note::{Checkpoint, Verifier};

/// Where the trail breaks first.
#[derive(Debug, PartialEq, Eq)]
pub struct Broken {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The record's sequence number, when it has one.
    pub seq: Option<u64>,
    pub what: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, "record seq {seq}: ")?;
        }
        f.write_str(&self.what)
    }
}

/// A trail that verified.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub records: u64,
    /// Sequence number of the last record.
    pub last: u64,
    /// Lines before the chain began (a trail written by a Vigie without the chain).
    pub unchained: u64,
    /// Checkpoints whose signature verified and whose head matched the trail.
    pub checkpoints: usize,
    /// The last record a checkpoint covers.
    pub covered: u64,
    /// Bytes of a half-written last line (a crash while writing it).
    pub torn: u64,
    /// Records purged by policy (stubs under a signed purge note), as ranges.
    pub purged: Vec<Purged>,
    /// Chains verified (a rotated copy, then the live trail: one each).
    pub chains: usize,
    /// Checkpoints written before chains were named, not checked because several chains were
    /// verified at once (verify each file alone to check them).
    pub unattributed: usize,
}

/// Records `first..=last` purged by policy (`vigie audit purge`) on `on` (the note's time).
#[derive(Debug, PartialEq, Eq)]
pub struct Purged {
    pub first: u64,
    pub last: u64,
    pub on: String,
}

/// A record a signed purge note lists: its hash, the note's time.
pub(super) struct Listed {
    hash: [u8; 32],
    on: String,
}

pub(super) struct Signed {
    checkpoint: Checkpoint,
    file: PathBuf,
    line: usize,
}

fn unreadable(file: &Path, what: &str, e: &std::io::Error) -> Broken {
    Broken { file: file.to_path_buf(), line: 0, seq: None, what: format!("cannot read the {what}: {e}") }
}

type Notes = (BTreeMap<u64, Vec<Signed>>, BTreeMap<u64, Listed>);

/// Reads and checks the checkpoints of `files`: JSON lines `{"checkpoint": note}` as the writer
/// keeps them, or a file that is one note (a witness's copy); and the purge notes among them
/// (`{"purge": note}`, `vigie audit purge`).
fn checkpoints(files: &[PathBuf], key: &Verifier) -> Result<Notes, Broken> {
    let (mut notes, mut purges) = (Vec::new(), Vec::new());
    for file in files {
        let text = std::fs::read(file)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| unreadable(file, "checkpoints", &e))?;
        if text.starts_with('{') {
            for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
                let value = serde_json::from_str::<serde_json::Value>(l).unwrap_or_default();
                if let Some(purge) = value["purge"].as_str() {
                    purges.push((file.clone(), i + 1, purge.to_string()));
                    continue;
                }
                let note = value["checkpoint"].as_str().map(str::to_string).unwrap_or_default();
                notes.push((file.clone(), i + 1, note));
            }
        } else {
            notes.push((file.clone(), 1, text));
        }
    }
    Ok((signed_notes(notes, key)?, purge_notes(purges, key)?))
}

/// Checks each signed purge note (where it was found) against `key`: the records they list, each
/// with its hash and the note's time.
pub(super) fn purge_notes(
    notes: Vec<(PathBuf, usize, String)>,
    key: &Verifier,
) -> Result<BTreeMap<u64, Listed>, Broken> {
    let mut listed = BTreeMap::new();
    for (file, line, note) in notes {
        let note = super::purge::open_note(key, &note).map_err(|e| Broken {
            file: file.clone(),
            line,
            seq: None,
            what: format!("purge note: {e}"),
        })?;
        for (seq, hash) in note.records {
            listed.insert(seq, Listed { hash, on: note.time.clone() });
        }
    }
    Ok(listed)
}

/// Checks each note (where it was found: file or table, line or row) against `key`, by size.
pub(super) fn signed_notes(
    notes: Vec<(PathBuf, usize, String)>,
    key: &Verifier,
) -> Result<BTreeMap<u64, Vec<Signed>>, Broken> {
    let mut by_size: BTreeMap<u64, Vec<Signed>> = BTreeMap::new();
    for (file, line, note) in notes {
        let checkpoint = key.open(&note).map_err(|e| Broken {
            file: file.clone(),
            line,
            seq: None,
            what: format!("checkpoint: {e}"),
        })?;
        by_size.entry(checkpoint.size).or_default().push(Signed { checkpoint, file, line });
    }
    Ok(by_size)
}

/// Checks `trail` (its files in order) against the checkpoints in `checkpoint_files`, signed by
/// `key` (no key: the chain alone). A file whose first record starts a chain (seq 1 after the
/// genesis) begins a chain of its own — a copy logrotate moved aside, then the live trail — and
/// the files after it until the next such file continue it (a spool). Each chain is checked
/// against the checkpoints that name it (`chain <hash of its first record>`, `note.rs`), so the
/// old and new chains may share one `.checkpoints` file; a checkpoint that names none of the
/// chains given is named (a rotated copy removed, or not given). A checkpoint written before
/// chains were named applies when one chain is verified.
pub fn verify(trail: &[PathBuf], checkpoint_files: &[PathBuf], key: Option<&Verifier>) -> Result<Report, Broken> {
    let (signed, listed) = match key {
        Some(key) => checkpoints(checkpoint_files, key)?,
        None => Default::default(),
    };
    // Each chain: its files, each with the hash of its first record (the ids checkpoints name).
    type Files<'a> = Vec<(&'a PathBuf, Option<[u8; 32]>)>;
    let mut chains: Vec<Files> = Vec::new();
    for file in trail {
        let first = chain::first(file);
        let id = first.as_ref().map(|r| r.hash);
        match chains.last_mut() {
            Some(last) if !first.is_some_and(|r| r.seq == 1 && r.prev == GENESIS) => last.push((file, id)),
            _ => chains.push(vec![(file, id)]),
        }
    }
    let single = chains.len() <= 1;
    let mut unclaimed: Vec<Signed> = Vec::new();
    let mut by_chain: Vec<BTreeMap<u64, Vec<Signed>>> = (0..chains.len().max(1)).map(|_| BTreeMap::new()).collect();
    for s in signed.into_values().flatten() {
        let owner = match s.checkpoint.chain {
            None if single => Some(0),
            None => None,
            Some(id) => chains.iter().position(|c| c.iter().any(|(_, first)| *first == Some(id))),
        };
        match owner {
            Some(i) => by_chain[i].entry(s.checkpoint.size).or_default().push(s),
            None => unclaimed.push(s),
        }
    }
    if let Some(s) = unclaimed.iter().find(|s| s.checkpoint.chain.is_some()) {
        return Err(Broken {
            file: s.file.clone(),
            line: s.line,
            seq: None,
            what: format!(
                "the checkpoint of {} (seq {}) is of the chain {}, which none of the files given holds: a rotated \
                 copy of the trail was removed, or give it too (`vigie audit verify OLDER… TRAIL`)",
                s.checkpoint.time,
                s.checkpoint.size,
                &chain::hex(&s.checkpoint.chain.unwrap_or_default())[..16]
            ),
        });
    }
    let mut total = Report::default();
    for (files, notes) in chains.iter().zip(by_chain) {
        let mut chain = Chain::new(notes);
        chain.listed = listed.iter().map(|(k, l)| (*k, Listed { hash: l.hash, on: l.on.clone() })).collect();
        let files: Vec<PathBuf> = files.iter().map(|(f, _)| (*f).clone()).collect();
        let report = verify_one(&files, chain)?;
        total.records += report.records;
        total.unchained += report.unchained;
        total.checkpoints += report.checkpoints;
        total.torn = report.torn;
        total.purged.extend(report.purged);
        (total.last, total.covered) = (report.last, report.covered);
    }
    total.chains = chains.len();
    total.unattributed = unclaimed.len();
    Ok(total)
}

/// One chain: `trail`'s files in order, as one stream.
fn verify_one(trail: &[PathBuf], mut chain: Chain) -> Result<Report, Broken> {
    for file in trail {
        let bytes = std::fs::read(file).map_err(|e| unreadable(file, "trail", &e))?;
        if bytes.is_empty() {
            continue;
        }
        // A last line without its newline is a record the process was writing when it died:
        // never acknowledged, cut off by the writer at its next start. Not a break; said apart.
        let lines = match bytes.strip_suffix(b"\n") {
            Some(whole) => whole,
            None => {
                let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                chain.report.torn = (bytes.len() - end) as u64;
                bytes[..end.saturating_sub(1)].as_ref()
            }
        };
        if lines.is_empty() && bytes.last() != Some(&b'\n') {
            continue;
        }
        for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
            chain.next(file, i + 1, line)?;
        }
    }
    chain.end(trail.first().cloned().unwrap_or_default())
}

/// The check of one chain, record after record, from wherever the records come (files, a table).
pub(super) struct Chain {
    signed: BTreeMap<u64, Vec<Signed>>,
    /// The records purge notes list.
    pub(super) listed: BTreeMap<u64, Listed>,
    pub(super) report: Report,
    /// The record before: its sequence number, hash, file (or table) and line (or row).
    before: Option<(u64, [u8; 32], PathBuf, usize)>,
}

impl Chain {
    pub(super) fn new(signed: BTreeMap<u64, Vec<Signed>>) -> Self {
        Self { signed, listed: BTreeMap::new(), report: Report::default(), before: None }
    }

    /// Checks the next record, `line` of `file`.
    pub(super) fn next(&mut self, file: &Path, line_no: usize, line: &[u8]) -> Result<(), Broken> {
        let report = &mut self.report;
        let at = |seq: Option<u64>, what: String| Broken { file: file.to_path_buf(), line: line_no, seq, what };
        let Some(record) = chain::open(line) else {
            let legacy =
                self.before.is_none() && serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| v.is_object());
            if legacy {
                report.unchained += 1;
                return Ok(());
            }
            return Err(at(None, "not a sealed audit record: inserted, cut or mangled".into()));
        };
        if !record.intact && super::purge::is_stub(line) {
            // A stub keeps the record's hash but not what it hashed: only a signed purge note
            // listing that hash vouches for it (docs/audit.md, "Retention and purge").
            match self.listed.get(&record.seq) {
                Some(l) if l.hash == record.hash => match report.purged.last_mut() {
                    Some(p) if p.last + 1 == record.seq && p.on == l.on => p.last = record.seq,
                    _ => report.purged.push(Purged { first: record.seq, last: record.seq, on: l.on.clone() }),
                },
                Some(_) => {
                    return Err(at(
                        Some(record.seq),
                        "a purged record whose hash differs from its signed purge note: stubbed by hand".into(),
                    ));
                }
                None => {
                    return Err(at(
                        Some(record.seq),
                        "a purged record, but no signed purge note covers it (checked with the verifier key): \
                         removed by hand, not by `vigie audit purge`"
                            .into(),
                    ));
                }
            }
        } else if !record.intact {
            return Err(at(Some(record.seq), "its content does not match its hash: the record was edited".into()));
        }
        let expected = self.before.as_ref().map_or(1, |(seq, ..)| seq + 1);
        if record.seq != expected {
            let what = if record.seq > expected {
                format!("expected seq {expected} here: seq {expected}..{} removed or moved", record.seq - 1)
            } else {
                format!("expected seq {expected} here: records out of order (moved or replayed)")
            };
            return Err(at(Some(record.seq), what));
        }
        let prev = self.before.as_ref().map_or(GENESIS, |(_, hash, ..)| *hash);
        if record.prev != prev {
            return Err(match &self.before {
                Some((seq, _, f, l)) => Broken {
                    file: f.clone(),
                    line: *l,
                    seq: Some(*seq),
                    what: "the record after it does not link to it: this record was changed".into(),
                },
                None => at(Some(record.seq), "the first record does not start a chain".into()),
            });
        }
        for s in self.signed.get(&record.seq).into_iter().flatten() {
            if s.checkpoint.head != record.hash {
                return Err(at(
                    Some(record.seq),
                    format!(
                        "differs from the checkpoint of {} ({}:{}): the trail up to here was rewritten",
                        s.checkpoint.time,
                        s.file.display(),
                        s.line
                    ),
                ));
            }
            report.checkpoints += 1;
            report.covered = record.seq;
        }
        report.records += 1;
        report.last = record.seq;
        self.before = Some((record.seq, record.hash, file.to_path_buf(), line_no));
        Ok(())
    }

    /// After the last record: no checkpoint may cover records the trail no longer has.
    pub(super) fn end(self, first: PathBuf) -> Result<Report, Broken> {
        let report = self.report;
        if let Some((size, list)) = self.signed.range(report.last + 1..).next() {
            let s = &list[0];
            let (file, line) = self.before.map_or((first, 0), |(_, _, f, l)| (f, l));
            return Err(Broken {
                file,
                line,
                seq: Some(report.last),
                what: format!(
                    "the trail ends here but the checkpoint of {} ({}:{}) covers seq {size}: records {}..{size} were removed",
                    s.checkpoint.time,
                    s.file.display(),
                    s.line,
                    report.last + 1
                ),
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::chain::Link;
    use super::super::note::Signer;
    use super::*;

    /// A trail of `n` records with a checkpoint at `checkpoint_at`, in a directory of its own.
    struct Trail {
        dir: PathBuf,
        lines: Vec<String>,
        signer: Signer,
    }

    impl Trail {
        fn new(name: &str, n: u64, checkpoint_at: &[u64]) -> Self {
            let dir = std::env::temp_dir().join(format!("vigie-verify-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let signer = Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap();
            let mut link = Link::default();
            let mut lines = Vec::new();
            let mut notes = String::new();
            for i in 1..=n {
                lines.push(link.seal(&format!(r#"{{"kind":"login","outcome":"failure","reason":"event {i}"}}"#)));
                if checkpoint_at.contains(&i) {
                    notes.push_str(&format!("{}\n", serde_json::json!({"checkpoint": signer.checkpoint(&link, "t")})));
                }
            }
            std::fs::write(dir.join("trail.checkpoints"), notes).unwrap();
            Self { dir, lines, signer }
        }

        fn check(&self) -> Result<Report, Broken> {
            std::fs::write(self.dir.join("trail"), self.lines.concat()).unwrap();
            let key = Verifier::parse(&self.signer.verifier_key()).unwrap();
            verify(&[self.dir.join("trail")], &[self.dir.join("trail.checkpoints")], Some(&key))
        }
    }

    impl Drop for Trail {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The writer's own trail, rotated as logrotate does (`create`: renamed, a new empty file):
    /// the old chain's checkpoints and the new one's share `audit.jsonl.checkpoints`.
    #[test]
    fn after_a_logrotate_each_chain_is_checked_against_its_own_checkpoints_in_the_shared_file() {
        use super::super::writer::{Checkpoints, JsonLinesAudit, Options};
        use vigie_core::audit::{AuditEvent, AuditKind, AuditSink};
        let dir = std::env::temp_dir().join(format!("vigie-verify-rotated-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (trail, rotated, log) =
            (dir.join("audit.jsonl"), dir.join("audit.jsonl.1"), dir.join("audit.jsonl.checkpoints"));
        let pem = Signer::generate_pem().unwrap();
        let signer = || Signer::from_pem("vigie.test/audit", &pem).unwrap();
        let options = Options {
            checkpoints: Some(Checkpoints {
                signer: signer(),
                every: 2,
                interval: std::time::Duration::from_secs(3600),
                log: log.clone(),
                witness: None,
            }),
            spool: None,
            commit_interval: std::time::Duration::ZERO,
            ..Default::default()
        };
        let sink = JsonLinesAudit::open_with(trail.to_str().unwrap(), options).unwrap();
        let event =
            |i: usize| AuditEvent { kind: Some(AuditKind::Login), reason: Some(format!("{i}")), ..Default::default() };
        for i in 0..4 {
            sink.record(&event(i));
            sink.flush();
        }
        std::fs::rename(&trail, &rotated).unwrap();
        std::fs::write(&trail, "").unwrap();
        for i in 4..10 {
            sink.record(&event(i));
            sink.flush();
        }
        drop(sink);
        let key = Verifier::parse(&signer().verifier_key()).unwrap();
        let checks = |files: &[&PathBuf]| {
            let files: Vec<PathBuf> = files.iter().map(|f| (*f).clone()).collect();
            verify(&files, std::slice::from_ref(&log), Some(&key))
        };

        let both = checks(&[&rotated, &trail]).unwrap();
        assert_eq!((both.chains, both.records, both.last), (2, 10, 6), "{both:?}");
        assert!(both.checkpoints >= 3, "the old chain's checkpoints and the new one's: {both:?}");
        for (alone, other) in [(&rotated, "the new"), (&trail, "the old")] {
            let b = checks(&[alone]).unwrap_err();
            assert_eq!(b.file, log, "{other} chain's checkpoint is named: {b}");
            assert!(b.what.contains("which none of the files given holds"), "{b}");
        }
        let text = std::fs::read_to_string(&rotated).unwrap();
        std::fs::write(&rotated, text.replacen("\"reason\":\"1\"", "\"reason\":\"7\"", 1)).unwrap();
        let b = checks(&[&rotated, &trail]).unwrap_err();
        assert_eq!((b.file.as_path(), b.line, b.seq), (rotated.as_path(), 2, Some(2)), "an edit in the old chain: {b}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_untouched_trail_verifies_with_its_checkpoints() {
        let t = Trail::new("intact", 10, &[5, 10]);
        assert_eq!(
            t.check().unwrap(),
            Report {
                records: 10,
                last: 10,
                unchained: 0,
                checkpoints: 2,
                covered: 10,
                torn: 0,
                purged: vec![],
                chains: 1,
                unattributed: 0
            }
        );
    }

    #[test]
    fn a_half_written_last_line_is_reported_apart_not_as_a_break() {
        let mut t = Trail::new("torn", 10, &[10]);
        let half = r#"{"seq":11,"prev":"ab"#;
        t.lines.push(half.into());
        let r = t.check().unwrap();
        assert_eq!((r.records, r.torn), (10, half.len() as u64));
    }

    /// A trail of 10 records checkpointed at `checkpoint_at`, tampered with by `tamper`: verify
    /// must name `line` (1-based) and `seq`, saying `says`.
    fn named(checkpoint_at: u64, tamper: impl FnOnce(&mut Vec<String>), line: usize, seq: u64, says: &str) {
        let mut t = Trail::new(&format!("{says}-{line}").replace(['.', ' '], "_"), 10, &[checkpoint_at]);
        tamper(&mut t.lines);
        let b = t.check().unwrap_err();
        assert_eq!((b.line, b.seq), (line, Some(seq)), "{b}");
        assert!(b.what.contains(says), "{b}");
    }

    #[test]
    fn a_deleted_line_is_named() {
        named(10, |l| drop(l.remove(3)), 4, 5, "seq 4..4 removed");
    }

    #[test]
    fn two_swapped_lines_are_named() {
        named(10, |l| l.swap(5, 6), 6, 7, "expected seq 6 here");
    }

    #[test]
    fn an_edited_field_is_named() {
        named(10, |l| l[2] = l[2].replace("failure", "success"), 3, 3, "edited");
    }

    #[test]
    fn an_edit_with_its_hash_recomputed_is_named_by_the_next_link() {
        let rehash = |l: &mut Vec<String>| {
            let edited = l[2].replace("failure", "success");
            let body = &edited[..edited.rfind(chain::HASH_MARK).unwrap()];
            l[2] = format!("{body}{}{}\"}}\n", chain::HASH_MARK, chain::hex(&chain::sha256(body.as_bytes())));
        };
        named(10, rehash, 3, 3, "changed");
    }

    #[test]
    fn a_tail_cut_after_a_checkpoint_is_named() {
        named(8, |l| l.truncate(6), 6, 6, "records 7..8 were removed");
    }

    #[test]
    fn a_whole_rewrite_is_caught_by_the_checkpoint() {
        let mut t = Trail::new("rewritten", 10, &[10]);
        let mut link = Link::default();
        for (i, line) in t.lines.iter_mut().enumerate() {
            *line = link.seal(&format!(r#"{{"kind":"login","outcome":"success","reason":"event {}"}}"#, i + 1));
        }
        let b = t.check().unwrap_err();
        assert_eq!((b.line, b.seq), (10, Some(10)), "{b}");
        assert!(b.what.contains("rewritten"), "{b}");
    }

    #[test]
    fn a_forged_checkpoint_is_named() {
        let t = Trail::new("forged", 10, &[5]);
        let forger = Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap();
        let mut notes = std::fs::read_to_string(t.dir.join("trail.checkpoints")).unwrap();
        let forged = forger.checkpoint(&Link { seq: 10, head: [1; 32] }, "t");
        // The forger's signature under the real key's id: what someone without the key can do.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let real_id = t.signer.verifier_key().split('+').nth(1).unwrap().to_string();
        let (text, sig) = forged.trim_end().rsplit_once(' ').unwrap();
        let mut sig = b64.decode(sig).unwrap();
        for (i, byte) in sig[..4].iter_mut().enumerate() {
            *byte = u8::from_str_radix(&real_id[2 * i..2 * i + 2], 16).unwrap();
        }
        let forged = format!("{text} {}\n", b64.encode(sig));
        notes.push_str(&format!("{}\n", serde_json::json!({ "checkpoint": forged })));
        std::fs::write(t.dir.join("trail.checkpoints"), notes).unwrap();
        let b = t.check().unwrap_err();
        assert_eq!((b.file.file_name().unwrap().to_str().unwrap(), b.line), ("trail.checkpoints", 2), "{b}");
        assert!(b.what.contains("does not verify"), "{b}");
    }
}
