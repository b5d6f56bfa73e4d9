//! Retention and purge of the file trail (docs/audit.md, "Retention and purge"): how long each
//! kind of record is kept (`[audit.retention]`), and `vigie audit purge`, which replaces the
//! records past their retention by stubs keeping `seq`, `prev` and `hash` (so the records after
//! them still link, and the checkpoints still match) and appends one signed note listing the
//! stubbed records. `verify` accepts a stub only under such a note.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::chain::{self, HASH_MARK, hex};
use super::note::{Signer, Verifier};

/// DMP traces (VIHF made, DMP calls) are kept 10 years (the DMP's AIR rules, issue 18): 3653 days,
/// so that leap days never make it less.
pub const DMP_DAYS: u64 = 3653;
/// Everything else, access logs first: 1 year (CNIL: 6 months to 1 year for access logs).
pub const DEFAULT_DAYS: u64 = 365;
/// The kinds that are DMP traces.
const DMP_KINDS: [&str; 2] = ["vihf_issued", "dmp_call"];
/// The field that marks a stub, holding the day of the purge.
const PURGED: &str = "purged";

/// `[audit.retention]`: days by kind, or `default` for the kinds not named (DMP traces keep their
/// 10 years unless named themselves: a shorter `default` must not cut them by accident).
pub struct Retention<'a>(pub &'a BTreeMap<String, u64>);

impl Retention<'_> {
    /// Each key is `default` or a kind of the trail; each value at least one day.
    pub fn validate(map: &BTreeMap<String, u64>, err: &mut dyn FnMut(&str, String)) {
        for (kind, days) in map {
            let key = format!("audit.retention.{kind}");
            let known = serde_json::from_value::<vigie_core::audit::AuditKind>(serde_json::Value::String(kind.clone()));
            if kind != "default" && known.is_err() {
                err(
                    &key,
                    "not an event kind: use `default` or a kind as the trail writes it (`vihf_issued`, `dmp_call`, \
                     `login`, …: docs/audit.md)"
                        .into(),
                );
            }
            if *days == 0 {
                err(&key, "must be at least 1 (days): 0 would purge a record as soon as it is written".into());
            }
        }
    }

    /// Days a record of `kind` is kept (`None`: a record without a kind).
    pub fn days(&self, kind: Option<&str>) -> u64 {
        if let Some(days) = kind.and_then(|k| self.0.get(k)) {
            return *days;
        }
        if kind.is_some_and(|k| DMP_KINDS.contains(&k)) {
            return DMP_DAYS;
        }
        self.0.get("default").copied().unwrap_or(DEFAULT_DAYS)
    }
}

/// The stub that replaces a purged record: its link kept, its content gone.
fn stub(record: &chain::Sealed, day: &str) -> String {
    format!(
        "{{\"seq\":{},\"prev\":\"{}\",\"{PURGED}\":\"{day}\"{HASH_MARK}{}\"}}\n",
        record.seq,
        hex(&record.prev),
        hex(&record.hash)
    )
}

/// Whether a line is a stub: `seq`, `prev`, `purged` and `hash`, nothing else.
pub fn is_stub(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line)
        .is_ok_and(|m| m.len() == 4 && ["seq", "prev", PURGED, "hash"].iter().all(|k| m.contains_key(*k)))
}

/// A signed purge note, opened: when, and the records it stubbed (sequence number, hash).
pub struct PurgeNote {
    pub time: String,
    pub records: Vec<(u64, [u8; 32])>,
}

/// The note's text: origin, `purge`, `time <RFC 3339>`, then one `<seq> <hex hash>` per record.
fn note_text(origin: &str, time: &str, records: &[(u64, [u8; 32])]) -> String {
    let mut text = format!("{origin}\npurge\ntime {time}\n");
    for (seq, hash) in records {
        text.push_str(&format!("{seq} {}\n", hex(hash)));
    }
    text
}

/// Checks a purge note's signature by `key` and reads it; the error says what is wrong.
pub fn open_note(key: &Verifier, note: &str) -> Result<PurgeNote, String> {
    let text = key.open_text(note)?;
    let mut lines = text.lines();
    let (_origin, kind, time) = (lines.next(), lines.next(), lines.next());
    if kind != Some("purge") {
        return Err("not a purge note (no `purge` on its second line)".into());
    }
    let time = time.and_then(|t| t.strip_prefix("time ")).ok_or("no time on its third line")?.to_string();
    let records = lines
        .map(|l| {
            let (seq, hash) = l.split_once(' ')?;
            Some((seq.parse().ok()?, chain::unhex(hash)?))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("a line that is not `<seq> <hash>`")?;
    Ok(PurgeNote { time, records })
}

/// What a purge did (or would do, dry run).
#[derive(Debug, Default)]
pub struct Outcome {
    /// The sequence numbers stubbed.
    pub purged: Vec<u64>,
    /// Records still within their retention.
    pub kept: u64,
    /// Records whose time cannot be read: never purged.
    pub undated: u64,
    /// Stubs of earlier purges.
    pub already: u64,
}

/// What a purge does with one sealed line.
pub(super) enum Verdict {
    /// Past its retention: to become a stub.
    Stub(chain::Sealed),
    /// Within its retention.
    Keep,
    /// No readable `at`: never purged.
    Undated,
    /// A stub already.
    Already,
    /// Not a sealed record (a line from before the chain): left as it is, not counted.
    Unsealed,
}

/// Whether the sealed line `body` is past its retention as of `now` (by its `at` and `kind`).
pub(super) fn judge(body: &[u8], retention: &Retention, now: OffsetDateTime) -> Verdict {
    if is_stub(body) {
        return Verdict::Already;
    }
    let Some(record) = chain::open(body) else { return Verdict::Unsealed };
    #[derive(serde::Deserialize)]
    struct Dated {
        at: Option<String>,
        kind: Option<String>,
    }
    let dated: Option<Dated> = serde_json::from_slice(body).ok();
    let at = dated.as_ref().and_then(|d| OffsetDateTime::parse(d.at.as_deref()?, &Rfc3339).ok());
    let Some(at) = at else { return Verdict::Undated };
    let days = retention.days(dated.as_ref().and_then(|d| d.kind.as_deref()));
    if now - at > time::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400)) {
        Verdict::Stub(record)
    } else {
        Verdict::Keep
    }
}

impl Outcome {
    /// Counts a record that stays as it is.
    pub(super) fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Keep => self.kept += 1,
            Verdict::Undated => self.undated += 1,
            Verdict::Already => self.already += 1,
            Verdict::Stub(_) | Verdict::Unsealed => {}
        }
    }
}

/// The text of a purge note listing `records`, signed by `signer` at `time`.
pub(super) fn signed_note(signer: &Signer, time: &str, records: &[(u64, [u8; 32])]) -> String {
    signer.sign(&note_text(signer.name(), time, records))
}

/// Purges `trail` as of `now`: verifies it first (a purge must not hide a break), then appends the
/// signed note to `checkpoints` and replaces the trail by its purged copy (a new file renamed over
/// it: never a half-purged file). Holds the writers' lock throughout; a gateway writing the trail
/// waits, then goes on in the new file.
pub fn purge(
    trail: &Path,
    checkpoints: &Path,
    signer: &Signer,
    retention: &Retention,
    now: OffsetDateTime,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let file = std::fs::File::open(trail).with_context(|| format!("opening the trail {}", trail.display()))?;
    file.lock().context("locking the trail")?;
    let key = Verifier::parse(&signer.verifier_key())?;
    let notes: Vec<PathBuf> = Some(checkpoints.to_path_buf()).filter(|p| p.exists()).into_iter().collect();
    if let Err(broken) = super::verify::verify(&[trail.to_path_buf()], &notes, Some(&key)) {
        bail!("the trail does not verify, so it is not purged (a purge must not hide a break): {broken}");
    }
    let bytes = std::fs::read(trail)?;
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let time = now.format(&Rfc3339)?;
    let day = now.date().to_string();
    let mut out = Vec::with_capacity(bytes.len());
    let mut outcome = Outcome::default();
    let mut listed = Vec::new();
    for line in bytes[..end].split_inclusive(|&b| b == b'\n') {
        match judge(&line[..line.len() - 1], retention, now) {
            Verdict::Stub(record) => {
                out.extend_from_slice(stub(&record, &day).as_bytes());
                listed.push((record.seq, record.hash));
                outcome.purged.push(record.seq);
            }
            verdict => {
                outcome.count(&verdict);
                out.extend_from_slice(line);
            }
        }
    }
    if listed.is_empty() || dry_run {
        return Ok(outcome);
    }
    // The note first: a crash after it leaves whole records under a note (accepted; the next
    // purge stubs them), never stubs without one.
    let note = signed_note(signer, &time, &listed);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(checkpoints)
        .with_context(|| format!("opening the checkpoints {}", checkpoints.display()))?;
    log.write_all(format!("{}\n", serde_json::json!({ "purge": note })).as_bytes())?;
    log.sync_all()?;
    out.extend_from_slice(&bytes[end..]);
    let fresh = PathBuf::from(format!("{}.purge-tmp", trail.display()));
    let mut new = std::fs::File::create(&fresh).with_context(|| format!("writing {}", fresh.display()))?;
    new.set_permissions(file.metadata()?.permissions())?;
    new.write_all(&out)?;
    new.sync_all()?;
    std::fs::rename(&fresh, trail).with_context(|| format!("replacing {} by its purged copy", trail.display()))?;
    if let Some(dir) = trail.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(outcome)
}

/// Whether the file at `path` is no longer `file` (another inode: `purge` replaced it: the writer then goes on in the new file).
pub(super) fn replaced(file: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => (open.dev(), open.ino()) != (named.dev(), named.ino()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::chain::Link;
    use super::super::verify::{Purged, verify};
    use super::*;

    /// A trail in a directory of its own: records of `kinds` at `ages` days before `now`, a
    /// checkpoint at the end.
    struct Trail {
        dir: PathBuf,
        signer: Signer,
        now: OffsetDateTime,
    }

    impl Trail {
        fn new(name: &str, records: &[(&str, i64)]) -> Self {
            let dir = std::env::temp_dir().join(format!("vigie-purge-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let signer = Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap();
            let now = OffsetDateTime::parse("2026-12-05T10:00:00Z", &Rfc3339).unwrap();
            let mut link = Link::default();
            let mut lines = String::new();
            for (kind, age) in records {
                let at = (now - time::Duration::days(*age)).format(&Rfc3339).unwrap();
                lines.push_str(&link.seal(&format!(r#"{{"at":"{at}","kind":"{kind}","username":"jdupont"}}"#)));
            }
            std::fs::write(dir.join("trail"), lines).unwrap();
            let note = serde_json::json!({"checkpoint": signer.checkpoint(&link, "t")});
            std::fs::write(dir.join("trail.checkpoints"), format!("{note}\n")).unwrap();
            Self { dir, signer, now }
        }

        fn purge(&self, dry_run: bool) -> Outcome {
            let days = BTreeMap::new();
            let (trail, notes) = (self.dir.join("trail"), self.dir.join("trail.checkpoints"));
            purge(&trail, &notes, &self.signer, &Retention(&days), self.now, dry_run).unwrap()
        }

        fn verify(&self) -> Result<super::super::verify::Report, super::super::verify::Broken> {
            let key = Verifier::parse(&self.signer.verifier_key()).unwrap();
            verify(&[self.dir.join("trail")], &[self.dir.join("trail.checkpoints")], Some(&key))
        }

        /// `verify` fails at `line` (1-based), record `seq`, saying `says`.
        fn named(&self, line: usize, seq: u64, says: &str) {
            let b = self.verify().unwrap_err();
            assert_eq!((b.line, b.seq), (line, Some(seq)), "{b}");
            assert!(b.what.contains(says), "{b}");
        }

        fn lines(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.join("trail")).unwrap().lines().map(|l| format!("{l}\n")).collect()
        }

        fn write(&self, lines: &[String]) {
            std::fs::write(self.dir.join("trail"), lines.concat()).unwrap();
        }
    }

    impl Drop for Trail {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const MIX: [(&str, i64); 6] =
        [("login", 400), ("login", 380), ("vihf_issued", 400), ("dmp_call", 3700), ("login", 10), ("logout", 366)];

    #[test]
    fn retention_defaults_keep_dmp_traces_ten_years_and_the_rest_one() {
        let named = BTreeMap::from([("default".to_string(), 30), ("login".to_string(), 180)]);
        let r = Retention(&named);
        assert_eq!((r.days(Some("login")), r.days(Some("logout")), r.days(None)), (180, 30, 30));
        assert_eq!((r.days(Some("vihf_issued")), r.days(Some("dmp_call"))), (DMP_DAYS, DMP_DAYS));
        let none = BTreeMap::new();
        assert_eq!((Retention(&none).days(Some("login"))), DEFAULT_DAYS);
    }

    #[test]
    fn a_bad_retention_is_named_by_its_key() {
        let map = BTreeMap::from([("logins".to_string(), 30), ("dmp_call".to_string(), 0), ("login".to_string(), 1)]);
        let mut errors = Vec::new();
        Retention::validate(&map, &mut |k, m| errors.push(format!("{k}: {m}")));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("audit.retention.dmp_call: must be at least 1"), "{errors:?}");
        assert!(errors[1].starts_with("audit.retention.logins: not an event kind"), "{errors:?}");
    }

    #[test]
    fn a_purge_stubs_what_is_past_its_retention_and_the_trail_still_verifies() {
        let t = Trail::new("ok", &MIX);
        let before = t.lines();
        let o = t.purge(false);
        assert_eq!((o.purged.as_slice(), o.kept), ([1, 2, 4, 6].as_slice(), 2));
        let after = t.lines();
        assert_eq!((after[2].as_str(), after[4].as_str()), (before[2].as_str(), before[4].as_str()));
        assert!(is_stub(after[0].trim_end().as_bytes()) && !after[0].contains("jdupont"), "{}", after[0]);
        let r = t.verify().unwrap();
        assert_eq!((r.records, r.last, r.checkpoints), (6, 6, 1));
        let on = "2026-12-05T10:00:00Z".to_string();
        assert_eq!(
            r.purged,
            vec![
                Purged { first: 1, last: 2, on: on.clone() },
                Purged { first: 4, last: 4, on: on.clone() },
                Purged { first: 6, last: 6, on }
            ]
        );
        // Again: nothing more to purge, and the stubs stay as they are.
        let again = t.purge(false);
        assert_eq!((again.purged.len(), again.already), (0, 4));
        assert_eq!(t.lines(), after);
    }

    #[test]
    fn a_gateway_writing_the_trail_goes_on_in_the_purged_file() {
        let t = Trail::new("live", &MIX);
        let path = t.dir.join("trail");
        let sink = super::super::JsonLinesAudit::open(path.to_str().unwrap()).unwrap();
        use vigie_core::audit::AuditSink;
        let event = |name: &str| vigie_core::audit::AuditEvent {
            at: t.now.format(&Rfc3339).unwrap(),
            kind: Some(vigie_core::audit::AuditKind::Login),
            username: Some(name.into()),
            ..Default::default()
        };
        sink.record(&event("before"));
        sink.flush();
        assert_eq!(t.purge(false).purged, vec![1, 2, 4, 6]);
        sink.record(&event("after"));
        sink.flush();
        drop(sink);
        let lines = t.lines();
        assert_eq!(lines.len(), 8, "{lines:?}");
        assert!(lines[6].contains("\"before\"") && lines[7].contains("\"after\""), "{lines:?}");
        let r = t.verify().unwrap();
        assert_eq!((r.records, r.purged.len()), (8, 3));
    }

    #[test]
    fn a_dry_run_changes_nothing() {
        let t = Trail::new("dry", &MIX);
        let (trail, notes) = (t.lines(), std::fs::read(t.dir.join("trail.checkpoints")).unwrap());
        assert_eq!(t.purge(true).purged, vec![1, 2, 4, 6]);
        assert_eq!((t.lines(), std::fs::read(t.dir.join("trail.checkpoints")).unwrap()), (trail, notes));
    }

    #[test]
    fn an_edit_a_removal_or_a_stub_by_hand_after_a_purge_is_still_named() {
        let t = Trail::new("edit", &MIX);
        t.purge(false);
        let after = t.lines();
        let mut lines = after.clone();
        lines[4] = lines[4].replace("jdupont", "mmartin");
        t.write(&lines);
        t.named(5, 5, "edited");
        lines.remove(4);
        t.write(&lines);
        t.named(5, 6, "seq 5..5 removed");
        // Record 5 is within its retention: stubbed by hand, the way the purge would have.
        let mut lines = after;
        let record = chain::open(lines[4].trim_end().as_bytes()).unwrap();
        lines[4] = stub(&record, "2026-12-05");
        t.write(&lines);
        t.named(5, 5, "no signed purge note covers it");
    }

    #[test]
    fn stubs_without_their_note_are_named() {
        let t = Trail::new("nonote", &MIX);
        t.purge(false);
        let log = t.dir.join("trail.checkpoints");
        let kept: String = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"purge\""))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&log, kept).unwrap();
        t.named(1, 1, "no signed purge note covers it");
    }

    #[test]
    fn a_purge_note_by_another_key_is_refused() {
        let t = Trail::new("forged", &MIX);
        let other = Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap();
        let days = BTreeMap::new();
        let (trail, notes) = (t.dir.join("trail"), t.dir.join("trail.checkpoints"));
        // The forger's key signs the purge; the trail's checkpoints are by the real key, so the
        // purge itself refuses (it verifies first) — and a note slipped in by hand is named.
        assert!(purge(&trail, &notes, &other, &Retention(&days), t.now, false).is_err());
        let record = chain::open(t.lines()[0].trim_end().as_bytes()).unwrap();
        let forged = other.sign(&note_text("vigie.test/audit", "t", &[(1, record.hash)]));
        let mut log = std::fs::read_to_string(&notes).unwrap();
        log.push_str(&format!("{}\n", serde_json::json!({ "purge": forged })));
        std::fs::write(&notes, log).unwrap();
        let b = t.verify().unwrap_err();
        assert!(b.what.contains("purge note"), "{b}");
    }
}
