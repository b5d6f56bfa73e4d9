//! The spool re-joining the PostgreSQL chain (issue 18; docs/audit.md, "When the database
//! fails"): what a replica wrote to its local spool while PostgreSQL was unreachable is replayed
//! into `audit_records` when the trail is opened again, in the spool's order, each event once.
//!
//! Each spooled event's stable id is the hash of its spool record (fixed when the event reached
//! the spool's disk, unique since it covers the spool chain before it); the replayed record keeps
//! the event's fields as they were (its `at` among them) and adds `"spooled":"<that hash>"`, and
//! the row's `event_id` holds it under a unique index (`0004_audit_spool.sql`). A replay after a
//! crash mid-replay, or after COMMIT but before the spool was archived, skips what the table holds
//! already. Before a replay the spool must pass the checks of `vigie audit verify` (its chain from
//! seq 1, its signed checkpoints, an unsigned tail no longer than the writer can leave): one that
//! fails is kept, not replayed, and the alarm raised. A replay holds the spool's `flock`, so no
//! other process replays it or writes to it meanwhile. The spool is archived
//! (`<spool>.replayed-<UTC time>`) only once every batch is committed; until then `/readyz` says
//! the trail is degraded and `vigie_audit_spool_pending` counts the records waiting.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use vigie_directory_sql::audit_trail::PgAuditTrail;

use super::chain::{self, Link};
use super::note::Verifier;
use super::pg::{link_at, seal_after};
use super::verify::{self, Broken};
use super::writer::{Checkpoints, Status, queue};

/// Records appended per transaction by default (`audit.replay_batch`): a crash loses at most the
/// batch in flight (replayed again).
pub const BATCH: usize = 1_000;
/// The longest one replay transaction may take: a database that answered the probe and then
/// hangs must not hold the writer (and the answers waiting behind it) for ever.
const STEP_WAIT: Duration = Duration::from_secs(30);

/// How a replay goes: how many records each transaction appends, and how long one may take.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// Records per transaction (`audit.replay_batch`).
    pub batch: usize,
    /// The longest one transaction may take, on the server as on this side: past it the
    /// transaction is rolled back and its connection closed (`PgAuditTrail::append_once_within`).
    pub step_wait: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self { batch: BATCH, step_wait: STEP_WAIT }
    }
}

/// What a spool must pass to be replayed: the checks of `vigie audit verify SPOOL`.
pub struct Trust {
    /// The checkpoints' verifier key (none: the chain alone is checked).
    key: Option<Verifier>,
    /// The most records a spool may hold after its last signed checkpoint.
    unsigned: u64,
}

impl Trust {
    /// The checks for the spool of a writer signing `checkpoints`: the writer signs every
    /// `checkpoint_every` records, once they are synced, and at most a queue's worth arrives
    /// between two checks, so a longer unsigned tail was not written by it.
    pub fn of(checkpoints: Option<&Checkpoints>) -> Self {
        let key = checkpoints.and_then(|c| Verifier::parse(&c.signer.verifier_key()).ok());
        let unsigned = checkpoints.map_or(u64::MAX, |c| c.every + queue::CAPACITY as u64);
        Self { key, unsigned }
    }
}

/// A spool that failed its checks: not replayed, kept as it is.
#[derive(Debug)]
pub struct Refused(pub Broken);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the spool does not verify, so it is not replayed: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// Where a spool's checkpoints are kept (the writer's `Checkpoints::log` for a spool).
fn checkpoints_of(spool: &Path) -> PathBuf {
    PathBuf::from(format!("{}.checkpoints", spool.display()))
}

/// Checks the spool at `path` as `vigie audit verify SPOOL` does, and more: docs/audit.md, "When
/// the database fails" — the spool is a chain of its own, so it starts at seq 1 after the genesis
/// (a front cut is refused, not taken for a continuation); every record verifies, linked to the one
/// before; its signed checkpoints match it; and no more than `trust.unsigned` records follow the
/// last checkpoint (a forged tail).
pub fn check(path: &Path, trust: &Trust) -> Result<verify::Report, Broken> {
    let log = checkpoints_of(path);
    let logs = if log.exists() { vec![log] } else { Vec::new() };
    let report = verify::verify(&[path.to_path_buf()], &logs, trust.key.as_ref())?;
    let at = |line: u64, seq: Option<u64>, what: String| Broken {
        file: path.to_path_buf(),
        line: usize::try_from(line).unwrap_or(usize::MAX),
        seq,
        what,
    };
    if report.unchained > 0 {
        return Err(at(1, None, "not a sealed audit record: a spool holds only its own chain".into()));
    }
    let unsigned = report.last - report.covered;
    if trust.key.is_some() && unsigned > trust.unsigned {
        let first = report.covered + 1;
        return Err(at(
            first,
            Some(first),
            format!(
                "records {first}..{} follow the last signed checkpoint: more than the {} the writer can leave                  unsigned (`audit.checkpoint_every` + its queue), so a tail was added by another hand",
                report.last, trust.unsigned
            ),
        ));
    }
    Ok(report)
}

/// Opens the spool at `path` and takes its `flock`, waiting while another process holds it (a
/// writer appending, or another replay); `None` when there is no spool (any more: another
/// replay archived it while this one waited).
fn lock(path: &Path) -> anyhow::Result<Option<File>> {
    loop {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("opening the spool"),
        };
        file.lock().context("locking the spool")?;
        // Renamed away while this one waited: look at what the path holds now.
        if path.exists() && !super::purge::replaced(&file, path) {
            return Ok(Some(file));
        }
    }
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
    Ok(read_after(complete, None, 1)?.0)
}

/// [`read`]'s checks on `lines`, complete lines of a spool from its line `first` on, the first of
/// them following `before` (the record read before them; `None`: the spool's first lines). Returns
/// their records and where the chain stands after them.
fn read_after(lines: &str, mut before: Option<Link>, first: usize) -> anyhow::Result<(Vec<Spooled>, Option<Link>)> {
    let mut out = Vec::new();
    for (i, line) in lines.lines().enumerate() {
        let n = first + i;
        let Some(sealed) = chain::open(line.as_bytes()) else {
            bail!("line {n} is not a sealed record");
        };
        if !sealed.intact {
            bail!("line {n} (seq {}): its content does not match its hash", sealed.seq);
        }
        if let Some(b) = &before
            && (sealed.seq != b.seq + 1 || sealed.prev != b.head)
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
        before = Some(Link { seq: sealed.seq, head: sealed.hash });
    }
    Ok((out, before))
}

/// A spool being replayed a batch at a time: the writer of a running gateway takes what arrives
/// meanwhile between two batches (into the spool, behind the records being replayed), so an
/// answer waiting for its trace waits one batch at most. Each byte of the spool is read once (what
/// arrived is read from where the last read ended), and only the records not yet in the table are
/// kept.
pub struct Replay {
    path: PathBuf,
    /// The spool's `flock`, held until the replay ends; `None` when the caller holds it (the
    /// writer, through the file it appends with).
    _lock: Option<File>,
    /// The records read and not yet in the table, in the spool's order.
    records: VecDeque<Spooled>,
    /// The last record read: the next line must follow it.
    last: Option<Link>,
    /// The bytes of the spool read so far (its complete lines), and how many records they hold.
    len: u64,
    read: usize,
    /// How many this replay appended.
    pub appended: usize,
    pace: Pace,
    status: std::sync::Arc<Status>,
    /// Bytes of the spool read since the replay began.
    #[cfg(test)]
    bytes_read: u64,
}

impl Replay {
    /// Takes the spool's lock (waiting for another replay or writer to let it go), then reads
    /// and checks the spool at `path` (`check`); `None` when there is none (or it is empty).
    pub fn open(
        path: &Path,
        trust: &Trust,
        pace: Pace,
        status: std::sync::Arc<Status>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(lock) = lock(path)? else { return Ok(None) };
        Self::open_locked(path, trust, pace, Some(lock), status)
    }

    /// As [`Replay::open`], the caller holding the spool's lock.
    pub fn open_locked(
        path: &Path,
        trust: &Trust,
        pace: Pace,
        lock: Option<File>,
        status: std::sync::Arc<Status>,
    ) -> anyhow::Result<Option<Self>> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            check(path, trust).map_err(Refused)?;
        }
        let mut replay = Self {
            path: path.to_path_buf(),
            _lock: lock,
            records: VecDeque::new(),
            last: None,
            len: 0,
            read: 0,
            appended: 0,
            pace,
            status,
            #[cfg(test)]
            bytes_read: 0,
        };
        replay.refresh()?;
        Ok((!replay.records.is_empty()).then_some(replay))
    }

    /// Reads what the spool gained since it was last read (events this writer spooled during the
    /// replay): only the bytes past those read, whose first record must follow the last one read,
    /// each record checked as [`read`] does. What was read is not read again: the replay holds the
    /// spool's `flock` and whoever writes to the spool takes it first (this writer appends through
    /// the file that holds it; another gateway or a `vigie` command waits), so nobody rewrites the
    /// part read meanwhile; a spool shorter than that part was cut under the replay and is refused.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let changed = || anyhow::anyhow!("the spool changed under its replay: it is not replayed further");
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.len == 0 => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(changed()),
            Err(e) => return Err(e).context("reading the spool"),
        };
        let size = file.metadata().context("reading the spool")?.len();
        if size < self.len {
            return Err(changed());
        }
        if size == self.len {
            return Ok(());
        }
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(self.len)).context("reading the spool")?;
        file.take(size - self.len).read_to_end(&mut tail).context("reading the spool")?;
        #[cfg(test)]
        {
            self.bytes_read += tail.len() as u64;
        }
        // A last line without its newline was never acknowledged: read again once complete.
        let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |end| end + 1);
        let (records, last) = std::str::from_utf8(&tail[..complete])
            .map_err(|_| anyhow::anyhow!("line {} is not text (UTF-8)", self.read + 1))
            .and_then(|lines| read_after(lines, self.last, self.read + 1))
            .context("the spool does not verify, so it is not replayed")?;
        self.len += complete as u64;
        self.read += records.len();
        self.last = last;
        self.records.extend(records);
        self.status.set_spool_pending(self.remaining());
        Ok(())
    }

    /// Records of the spool not yet in the table.
    pub fn remaining(&self) -> usize {
        self.records.len()
    }

    /// Replays the next batch (`Pace::batch` records) in one transaction, given `Pace::step_wait`
    /// at most.
    pub async fn step(&mut self, trail: &PgAuditTrail) -> anyhow::Result<()> {
        let n = self.records.len().min(self.pace.batch.max(1));
        let batch = self.records.range(..n);
        let ids: Vec<String> = batch.clone().map(|r| r.id.clone()).collect();
        let mut appended = 0;
        trail
            .append_once_within(&ids, self.pace.step_wait, |head, present| {
                let mut at = link_at(head.as_ref());
                let fresh: Vec<_> = batch
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
            .await
            .context("replaying a batch of the spool")?;
        self.records.drain(..n);
        self.appended += appended;
        self.status.set_spool_pending(self.remaining());
        Ok(())
    }

    /// Once every record is in the table: archives the spool and its checkpoints beside it
    /// (`<spool>.replayed-<UTC time>`, `….checkpoints`): the evidence of the outage stays, and
    /// the next outage starts a spool of its own. Returns how many records the spool held.
    pub fn finish(self) -> anyhow::Result<usize> {
        debug_assert_eq!(self.remaining(), 0);
        let stamp = crate::rfc3339_now().replace(':', "");
        let archive = PathBuf::from(format!("{}.replayed-{stamp}", self.path.display()));
        // The checkpoints first: a crash between the two leaves a spool whose replay adds
        // nothing, never checkpoints of a spool chain that is gone beside the next outage's spool.
        match std::fs::rename(checkpoints_of(&self.path), checkpoints_of(&archive)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("archiving the spool's checkpoints");
            }
            _ => {}
        }
        std::fs::rename(&self.path, &archive)
            .with_context(|| format!("archiving the replayed spool as {}", archive.display()))?;
        self.status.set_spool_pending(0);
        Ok(self.read)
    }
}

/// Replays `spool` into `trail` (batches of `pace.batch`, each one transaction) under its lock,
/// then archives it and its checkpoints. Returns how many records the spool held and how many
/// were appended (fewer when an earlier replay was cut short).
pub async fn replay(
    trail: &PgAuditTrail,
    spool: &Path,
    trust: &Trust,
    pace: Pace,
    status: std::sync::Arc<Status>,
) -> anyhow::Result<(usize, usize)> {
    let Some(mut replay) = Replay::open(spool, trust, pace, status)? else { return Ok((0, 0)) };
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

/// A replay that failed: a spool that does not verify raises the alarm (`Status::refuse_spool`);
/// otherwise the spool waits for the next try. Returns whether the spool was refused.
pub fn failed(status: &Status, spool: &Path, e: &anyhow::Error) -> bool {
    match e.downcast_ref::<Refused>() {
        Some(Refused(broken)) => {
            status.refuse_spool(spool, broken);
            true
        }
        None => {
            status.keep_spool();
            false
        }
    }
}

/// At the trail's opening: replays a spool left by an earlier outage, if any. A failure is an
/// alarm, not a stop (the spool stays, `/readyz` degraded): the trail goes on in the table, and
/// the spool is replayed at the next start.
pub fn rejoin(
    trail: &PgAuditTrail,
    rt: &tokio::runtime::Runtime,
    spool: Option<&Path>,
    trust: &Trust,
    pace: Pace,
    status: &std::sync::Arc<Status>,
) {
    let Some(spool) = spool.filter(|s| std::fs::metadata(s).is_ok_and(|m| m.len() > 0)) else { return };
    match rt.block_on(replay(trail, spool, trust, pace, status.clone())) {
        Ok((records, appended)) => tracing::warn!(
            spool = %spool.display(), records, appended,
            "the audit spool of an earlier database outage is replayed into the shared trail and archived"
        ),
        Err(e) if failed(status, spool, &e) => {}
        Err(e) => tracing::error!(
            spool = %spool.display(), error = format!("{e:#}"),
            "the audit spool could not be replayed into the shared trail: it is kept and replayed at the next \
             start; check it with `vigie audit verify SPOOL` (docs/audit.md)"
        ),
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

/// The checks before a replay (issue 18's security review): a spool edited, cut at its front or
/// given a forged tail is refused and kept; and, against a real PostgreSQL, a good one is replayed
/// and archived, and two replays of one spool never run together.
#[cfg(test)]
mod checks {
    use std::sync::Arc;

    use super::super::note::Signer;
    use super::*;

    /// A spool of `n` records in a directory of its own, checkpointed every `every` records as
    /// the writer does (each note naming the spool's chain), and the trust of that writer.
    struct Spool {
        dir: PathBuf,
        path: PathBuf,
        lines: Vec<String>,
        signer: Signer,
        link: chain::Link,
    }

    impl Spool {
        fn new(name: &str, n: usize, every: usize) -> Self {
            let dir = std::env::temp_dir().join(format!("vigie-spool-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let signer = Signer::from_pem("vigie.test/audit", &Signer::generate_pem().unwrap()).unwrap();
            let mut spool =
                Self { path: dir.join("spool.jsonl"), dir, lines: Vec::new(), signer, link: Default::default() };
            let mut notes = String::new();
            for i in 1..=n {
                spool.push(i);
                if i % every == 0 {
                    let first = chain::open(spool.lines[0].trim_end().as_bytes()).unwrap().hash;
                    let note = spool.signer.checkpoint_of(&spool.link, Some(&first), "t");
                    notes.push_str(&format!("{}\n", serde_json::json!({ "checkpoint": note })));
                }
            }
            std::fs::write(checkpoints_of(&spool.path), notes).unwrap();
            spool.write();
            spool
        }

        fn push(&mut self, i: usize) {
            self.lines.push(self.link.seal(&format!(r#"{{"kind":"login","reason":"event {i}"}}"#)));
        }

        fn write(&self) {
            std::fs::write(&self.path, self.lines.concat()).unwrap();
        }

        fn trust(&self, unsigned: u64) -> Trust {
            Trust { key: Some(Verifier::parse(&self.signer.verifier_key()).unwrap()), unsigned }
        }

        /// Opens the spool for a replay: refused (the alarm raised, named) or not.
        fn open(&self, unsigned: u64) -> (anyhow::Result<Option<Replay>>, Arc<Status>) {
            let status = Arc::new(Status::default());
            (Replay::open(&self.path, &self.trust(unsigned), Pace::default(), status.clone()), status)
        }

        /// The spool is refused, its first bad record named as `line`, `says`; it is kept as it
        /// was, and the gateway says so.
        fn refused(&self, line: usize, says: &str) {
            let before = std::fs::read(&self.path).unwrap();
            let (opened, status) = self.open(2 + queue::CAPACITY as u64);
            let e = opened.err().expect("a spool that does not verify is not replayed");
            let Some(Refused(broken)) = e.downcast_ref::<Refused>() else { panic!("not refused: {e:#}") };
            assert_eq!(broken.line, line, "{broken}");
            assert!(broken.what.contains(says), "{broken}");
            assert!(failed(&status, &self.path, &e), "counted as refused");
            assert!(status.spool_pending() && status.spool_refused(), "/readyz says the spool waits, refused");
            assert_eq!(std::fs::read(&self.path).unwrap(), before, "the spool is kept as it is");
        }
    }

    impl Drop for Spool {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_spool_with_an_edited_line_is_refused_and_kept() {
        let mut s = Spool::new("edited", 6, 2);
        s.lines[2] = s.lines[2].replace("event 3", "event 9");
        s.write();
        s.refused(3, "edited");
    }

    #[test]
    fn a_spool_with_its_first_line_removed_is_refused_and_kept() {
        let mut s = Spool::new("front", 6, 2);
        s.lines.remove(0);
        // Its checkpoints would name the removed record's chain: without them, the cut front
        // alone must be caught (a spool is a chain of its own, from seq 1).
        std::fs::remove_file(checkpoints_of(&s.path)).unwrap();
        s.write();
        s.refused(1, "expected seq 1 here");
    }

    #[test]
    fn a_spool_with_a_forged_tail_longer_than_the_writer_leaves_unsigned_is_refused_and_kept() {
        let mut s = Spool::new("tail", 4, 2);
        // Sealed as the writer would, but never checkpointed: one more than allowed.
        let allowed = 2 + queue::CAPACITY;
        for i in 5..=4 + allowed + 1 {
            s.push(i);
        }
        s.write();
        s.refused(5, "follow the last signed checkpoint");
        // The tail the writer can leave (a period and a queue) is accepted.
        s.lines.pop();
        s.write();
        let (opened, status) = s.open(allowed as u64);
        assert_eq!(opened.unwrap().unwrap().remaining(), 4 + allowed);
        assert!(status.spool_pending() && !status.spool_refused());
    }

    #[test]
    fn a_spool_that_verifies_with_its_checkpoints_is_opened_for_its_replay() {
        let s = Spool::new("good", 6, 2);
        let (opened, status) = s.open(2);
        assert_eq!(opened.unwrap().unwrap().remaining(), 6);
        assert!(status.spool_pending() && !status.spool_refused());
    }

    /// Appends `lines` to the spool at `path`, as the writer does (under the replay's lock).
    fn append(path: &Path, lines: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(lines.as_bytes()).unwrap();
    }

    #[test]
    fn a_replay_reads_each_byte_of_its_spool_once_however_many_batches_arrive_meanwhile() {
        let mut s = Spool::new("linear", 10, 5);
        let mut replay = s.open(u64::MAX).0.unwrap().unwrap();
        // The writer spools what arrives between two replayed batches: 300 batches of 10.
        for batch in 0..300 {
            let before = s.lines.len();
            for i in 0..10 {
                s.push(11 + batch * 10 + i);
            }
            append(&s.path, &s.lines[before..].concat());
            replay.refresh().unwrap();
        }
        let text = std::fs::read_to_string(&s.path).unwrap();
        assert_eq!(replay.remaining(), 3_010);
        assert!(replay.records.iter().eq(read(&text).unwrap().iter()), "every record read, in order, once");
        assert_eq!(
            replay.bytes_read,
            text.len() as u64,
            "a {}-byte spool is read once, not again at each batch that arrived",
            text.len()
        );
    }

    #[test]
    fn a_tail_that_does_not_continue_the_chain_read_is_refused() {
        let s = Spool::new("fork", 4, 2);
        let last = chain::open(s.lines[3].trim_end().as_bytes()).unwrap();
        // Another chain's first record; then the right seq after another hash than the last one's.
        let other = chain::Link::default().seal(r#"{"kind":"login"}"#);
        let forged = chain::Link { seq: last.seq, head: [7; 32] }.seal(r#"{"kind":"login"}"#);
        for (tail, says) in
            [(other, "line 5 (seq 1) does not follow seq 4"), (forged, "line 5 (seq 5) does not follow seq 4")]
        {
            s.write();
            let mut replay = s.open(u64::MAX).0.unwrap().unwrap();
            append(&s.path, &tail);
            let e = replay.refresh().expect_err("a tail of another chain is not replayed");
            assert!(format!("{e:#}").contains(says), "{e:#}");
        }
    }

    #[test]
    fn a_spool_cut_under_its_replay_is_refused() {
        let mut s = Spool::new("cut", 4, 2);
        let mut replay = s.open(u64::MAX).0.unwrap().unwrap();
        s.lines.truncate(2);
        s.write();
        let e = replay.refresh().expect_err("a spool cut under its replay is not replayed further");
        assert!(format!("{e:#}").contains("the spool changed under its replay"), "{e:#}");
    }

    /// `sql` run by psql on `url`: its output, trimmed.
    fn psql(url: &str, sql: &str) -> String {
        let out = std::process::Command::new("psql").args(["-X", "-q", "-t", "-A", url, "-c", sql]).output().unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh database on the test PostgreSQL (`VIGIE_TEST_POSTGRES_URL`, tests/postgres.sh).
    fn database(name: &str) -> Option<(String, impl Fn(&str) -> String)> {
        let Ok(admin) = std::env::var("VIGIE_TEST_POSTGRES_URL") else {
            eprintln!("skipped: VIGIE_TEST_POSTGRES_URL is not set (tests/postgres.sh)");
            return None;
        };
        let name = format!("{name}_{}", std::process::id());
        psql(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        let count = {
            let url = url.clone();
            move |what: &str| psql(&url, &format!("SELECT count(*) FROM audit_records {what}"))
        };
        Some((url, count))
    }

    /// A replay in a thread of its own (its own runtime and connections, as another process).
    fn replay_in_thread(
        url: &str,
        spool: &Path,
        trust: Trust,
    ) -> std::thread::JoinHandle<anyhow::Result<(usize, usize)>> {
        let (url, spool) = (url.to_owned(), spool.to_path_buf());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let trail = rt.block_on(PgAuditTrail::open(&url, 2))?;
            rt.block_on(replay(&trail, &spool, &trust, Pace::default(), Arc::new(Status::default())))
        })
    }

    fn archives(s: &Spool) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&s.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("spool.jsonl.replayed-"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn a_good_spool_is_replayed_and_archived_with_its_checkpoints_not_deleted() {
        let Some((url, count)) = database("spool_archive") else { return };
        let s = Spool::new("archive", 6, 2);
        let spooled = std::fs::read(&s.path).unwrap();
        let done = replay_in_thread(&url, &s.path, s.trust(2)).join().unwrap().unwrap();
        assert_eq!(done, (6, 6));
        assert_eq!(count("WHERE event_id IS NOT NULL"), "6");
        assert!(!s.path.exists() && !checkpoints_of(&s.path).exists(), "the next outage starts a spool of its own");
        let archived = archives(&s);
        assert_eq!(archived.len(), 2, "the spool and its checkpoints, archived: {archived:?}");
        assert_eq!(std::fs::read(&archived[0]).unwrap(), spooled, "the evidence is kept as it was");
        assert!(check(&archived[0], &s.trust(2)).is_ok(), "the archive verifies with its checkpoints");
    }

    #[test]
    fn two_replayers_of_one_spool_never_replay_together_and_lose_nothing() {
        let Some((url, count)) = database("spool_two") else { return };
        let mut s = Spool::new("two", 4, 2);
        // Another process holds the spool (a replay, or its writer appending): a replay waits.
        let holder = File::open(&s.path).unwrap();
        holder.lock().unwrap();
        let first = replay_in_thread(&url, &s.path, s.trust(u64::MAX));
        let second = replay_in_thread(&url, &s.path, s.trust(u64::MAX));
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert_eq!(count(""), "0", "nothing is replayed while another process holds the spool");
        // The holder appends an event it acknowledged, then lets go: it must be replayed too.
        s.push(5);
        s.write();
        holder.unlock().unwrap();
        let mut results = [first.join().unwrap().unwrap(), second.join().unwrap().unwrap()];
        results.sort();
        assert_eq!(results, [(0, 0), (5, 5)], "one replays all five, the other finds it done");
        assert_eq!(count(""), "5");
        assert_eq!(archives(&s).len(), 2, "archived once, with its checkpoints");
    }

    /// A replay driven as the writer drives its own: from a thread with its runtime and its
    /// connections, one try when told, the runtime idle between two tries.
    struct Replayer {
        tries: std::sync::mpsc::Sender<Duration>,
        results: std::sync::mpsc::Receiver<anyhow::Result<(usize, usize)>>,
    }

    impl Replayer {
        /// Opens the trail (its tables made) for replays of `spool`.
        fn start(url: &str, spool: &Path, trust: Trust) -> Self {
            let (tries, asked) = std::sync::mpsc::channel::<Duration>();
            let (answer, results) = std::sync::mpsc::channel();
            let (url, spool) = (url.to_owned(), spool.to_path_buf());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let trail = rt.block_on(PgAuditTrail::open(&url, 2)).unwrap();
                let _ = answer.send(Ok((0, 0)));
                for step_wait in asked {
                    let pace = Pace { step_wait, ..Pace::default() };
                    let _ = answer.send(rt.block_on(replay(&trail, &spool, &trust, pace, Arc::new(Status::default()))));
                }
            });
            results.recv().expect("the trail opened").unwrap();
            Self { tries, results }
        }

        /// One try, each transaction given `step_wait`.
        fn replay(&self, step_wait: Duration) -> anyhow::Result<(usize, usize)> {
            self.tries.send(step_wait).unwrap();
            self.results.recv().unwrap()
        }
    }

    /// Another session holding `LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE` (a hung
    /// maintenance job's) until released: the trail's statements wait for it.
    struct TableLock {
        psql: std::process::Child,
        /// The server process of that session.
        pid: String,
    }

    impl TableLock {
        fn take(url: &str) -> Self {
            use std::io::Write;
            let mut session = std::process::Command::new("psql")
                .args(["-X", "-q", url])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let stdin = session.stdin.as_mut().unwrap();
            stdin.write_all(b"BEGIN;\nLOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE;\n").unwrap();
            Self { psql: session, pid: Self::holder(url) }
        }

        /// The server process holding the lock, once it is granted.
        fn holder(url: &str) -> String {
            let held = "SELECT pid FROM pg_locks WHERE relation = 'audit_records'::regclass \
                        AND mode = 'AccessExclusiveLock' AND granted";
            let started = std::time::Instant::now();
            loop {
                let pid = psql(url, held);
                if !pid.is_empty() {
                    return pid;
                }
                assert!(started.elapsed() < Duration::from_secs(30), "the table lock was not taken");
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        fn release(mut self) {
            use std::io::Write;
            self.psql.stdin.as_mut().unwrap().write_all(b"COMMIT;\n").unwrap();
            drop(self.psql.stdin.take());
            assert!(self.psql.wait().unwrap().success());
        }
    }

    #[test]
    fn a_replay_step_blocked_in_the_database_ends_there_too_at_its_deadline_and_the_next_try_replays_each_event_once() {
        let Some((url, count)) = database("spool_blocked") else { return };
        let s = Spool::new("blocked", 6, 2);
        let replayer = Replayer::start(&url, &s.path, s.trust(2));
        let lock = TableLock::take(&url);
        let step_wait = Duration::from_secs(1);
        let started = std::time::Instant::now();
        let e = replayer.replay(step_wait).expect_err("a replay step blocked by the table lock fails");
        let took = started.elapsed();
        let said = format!("{e:#}");
        assert!(said.contains("took longer than 1s") && said.contains("rolled back"), "{said}");
        assert!(took < step_wait + Duration::from_secs(2), "the step ends at its deadline: {took:?}");
        // The server side ends too, while the lock is still held and the replayer's runtime idle
        // (as the writer's is until its next try, up to a minute later): no transaction of the
        // replay is left there, waiting or holding the append lock the other replicas need.
        let others_in_a_transaction = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid NOT IN ({}, pg_backend_pid()) AND xact_start IS NOT NULL",
            lock.pid
        );
        let ended = std::time::Instant::now();
        while psql(&url, &others_in_a_transaction) != "0" {
            assert!(
                ended.elapsed() < 2 * step_wait,
                "the replay's transaction still runs on the server {:?} after its step began ({step_wait:?} given): {}",
                took + ended.elapsed(),
                psql(
                    &url,
                    "SELECT pid, state, wait_event_type, left(query, 60) FROM pg_stat_activity \
                            WHERE datname = current_database()"
                )
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(s.path.exists() && archives(&s).is_empty(), "the spool is kept for the next try");
        lock.release();
        assert_eq!(count(""), "0", "nothing of the batch is in the table");

        let next_try = replayer.replay(Duration::from_secs(30));
        assert_eq!(next_try.unwrap(), (6, 6), "the next try replays the spool");
        assert_eq!(count(""), "6");
        assert_eq!(psql(&url, "SELECT count(DISTINCT event_id) FROM audit_records"), "6", "each event once");
        assert!(!s.path.exists() && archives(&s).len() == 2, "replayed, the spool is archived");
    }
}
