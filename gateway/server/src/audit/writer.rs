//! The file trail's writer: one background thread seals each event into the hash chain
//! (`chain`), writes what is queued as one batch and syncs it once (group commit: no batch
//! window, the first caller waiting starts a sync at once and those arriving during it share the
//! next), then answers the callers that wait for their event to be on disk
//! (`AuditSink::record_acked`: logins, token issues, admin acts). Events nobody waits for gather in
//! the queue for a few milliseconds (`queue::GATHER`: one wake-up and one write per batch, not per
//! event), are then written (a crash of the process keeps them) and synced with the next batch
//! somebody waits for, or within [`LAZY_SYNC`]; an awaited event wakes the writer at once. A checkpoint is signed every `checkpoint_every` records or
//! `checkpoint_secs` seconds (`note`) and, for a file trail, logged and synced by a thread of its
//! own (`checkpoint_log`) so that its sync never holds a batch back. A failed write is counted, the trail marked unhealthy
//! (`vigie_audit_healthy`, `/readyz`), the file cut back to its last whole record and the batch
//! kept and tried again — or, with `on_failure = "spool"`, written to the spool file, where the
//! chain goes on. The queue is written out before the process ends.
//!
//! On PostgreSQL (`audit.url`, else a PostgreSQL `directory.url`) a batch is one transaction on
//! the shared table (`vigie_directory_sql::audit_trail`), sealed after the head the database
//! holds at that moment, so every replica's records make one chain; the acks follow COMMIT.
//! When the database fails, the spool is a chain of its own in a local file (the shared chain
//! goes on without this replica). While on it, the writer asks the database again and, once it
//! answers, replays the spool into the shared chain and goes back to the table (`writer/rejoin.rs`).
//! A spool left at a stop is replayed at the next start.
//!
//! Over 600 lines: the loop, its failure paths and its three outputs belong together; the way back
//! from the spool, the checkpoint log's thread and the tests are in `writer/`.
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigie_core::audit::{Ack, AuditEvent, AuditSink};

use vigie_directory_sql::audit_trail::PgAuditTrail;

use super::chain::{self, Link};
use super::note::Signer;
use super::pg::{link_at, seal_after};

mod checkpoint_log;
#[cfg(test)]
mod group_commit_tests;
pub(super) mod queue;
mod rejoin;
#[cfg(test)]
mod tests;
use checkpoint_log::CheckpointLog;
use rejoin::Rejoin;

/// The longest a flush waits for the writer: a stop must not hang on a dead disk.
const FLUSH_WAIT: Duration = Duration::from_secs(5);
/// How often a failed batch is tried again.
const RETRY: Duration = Duration::from_millis(500);
/// Records kept for a retry while the disk refuses them; past it the oldest are counted lost
/// (`vigie_audit_dropped_total`) and logged: memory is not a trail either.
const MAX_PENDING: usize = 100_000;
/// The longest a written batch that nobody waits for stays unsynced (issue 18: only the acts
/// that must be traced before their answer pay for a sync; the others lose at most this much on
/// a power cut, nothing on a crash of the process).
const LAZY_SYNC: Duration = Duration::from_secs(1);

enum Message {
    Event(String, Option<Ack>),
    /// Answered once every event queued before it is written and synced.
    Flush(mpsc::SyncSender<()>),
}

/// Where the writer is, for the health check and the metrics.
#[derive(Default)]
pub struct Status {
    write_errors: AtomicU64,
    syncs: AtomicU64,
    batches: AtomicU64,
    broken: AtomicBool,
    spooling: AtomicBool,
    /// A spool of an earlier outage waits to be replayed (this gateway's, not the process's).
    spool_pending: AtomicBool,
    /// That spool failed its checks (`spool::check`): kept, not replayed.
    spool_refused: AtomicBool,
}

impl Status {
    /// Writes and syncs that failed since the start.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// Syncs of the trail (a file's `fdatasync`, a PostgreSQL COMMIT) since the start: one per
    /// group of batches, not one per event.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Batches written to the trail since the start: under load, many events each.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// False while the last batch could not be written to the trail.
    pub fn healthy(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    /// True once the trail's disk failed and events go to the spool.
    pub fn spooling(&self) -> bool {
        self.spooling.load(Ordering::Relaxed)
    }

    /// True while a spool of an earlier outage waits to be replayed into the table.
    pub fn spool_pending(&self) -> bool {
        self.spool_pending.load(Ordering::Relaxed)
    }

    /// True when that spool did not verify: it is kept and not replayed.
    pub fn spool_refused(&self) -> bool {
        self.spool_refused.load(Ordering::Relaxed)
    }

    /// `records` of a spool wait to be replayed (none: replayed, and any refusal is over).
    pub(super) fn set_spool_pending(&self, records: usize) {
        self.spool_pending.store(records > 0, Ordering::Relaxed);
        if records == 0 {
            self.spool_refused.store(false, Ordering::Relaxed);
        }
        metrics::gauge!("vigie_audit_spool_pending").set(records as f64);
    }

    /// A replay did not end (the database failed): the spool waits for the next.
    pub(super) fn keep_spool(&self) {
        self.spool_pending.store(true, Ordering::Relaxed);
    }

    /// The alarm for a spool that does not verify: counted, `/readyz` degraded, the first bad
    /// record named; the spool is left as it is, evidence for whoever looks into it.
    pub(super) fn refuse_spool(&self, spool: &std::path::Path, broken: &super::verify::Broken) {
        self.spool_pending.store(true, Ordering::Relaxed);
        self.spool_refused.store(true, Ordering::Relaxed);
        metrics::counter!("vigie_audit_spool_refused_total").increment(1);
        tracing::error!(
            spool = %spool.display(), first_bad_record = %broken,
            "the audit spool does not verify: it is kept as it is and not replayed into the shared trail; check it \
             with `vigie audit verify SPOOL` and compare it with its archived copies (docs/audit.md)"
        );
    }

    fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::Relaxed);
        metrics::gauge!("vigie_audit_healthy").set(if broken { 0.0 } else { 1.0 });
    }

    /// A sync done, begun at `began` (with the batch's write when it was written with it): one
    /// slow sync holds every answer waiting for it, which the histogram shows.
    fn synced(&self, began: Option<Instant>) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vigie_audit_syncs_total").increment(1);
        if let Some(began) = began {
            metrics::histogram!("vigie_audit_sync_seconds").record(began.elapsed().as_secs_f64());
        }
    }

    fn failed(&self, e: &std::io::Error, events: usize) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        self.set_broken(true);
        metrics::counter!("vigie_audit_write_errors_total").increment(1);
        tracing::error!(error = %e, events, "the audit trail could not be written: check `audit.file` and its disk");
    }
}

/// Signed checkpoints: the key, how often, where.
pub struct Checkpoints {
    pub signer: Signer,
    pub every: u64,
    pub interval: Duration,
    /// `<trail>.checkpoints`: one JSON line `{"checkpoint": "<signed note>"}` each.
    pub log: PathBuf,
    /// The latest note alone, replaced at each checkpoint (a copy an outside witness keeps).
    pub witness: Option<PathBuf>,
}

/// How the writer behaves: checkpoints, where the events go when the trail cannot be written, and
/// how a spool is replayed into PostgreSQL.
#[derive(Default)]
pub struct Options {
    pub checkpoints: Option<Checkpoints>,
    pub spool: Option<PathBuf>,
    pub replay: super::spool::Pace,
    /// The least time from one sync's start to the next (`audit.commit_interval_us`) while the
    /// trail is busy (its syncs come more often than one per two intervals, on average): a batch
    /// somebody waits for that comes sooner waits for the rest of it, gathering what arrives
    /// meanwhile into the same sync. Zero: each such batch is synced at once.
    pub commit_interval: Duration,
}

enum Out {
    Stdout,
    File {
        file: std::fs::File,
        path: PathBuf,
        len: u64,
        /// The hash of the file's first record, the id checkpoints name (`chain::first_hash`),
        /// read when the file is opened or replaced, not at each checkpoint.
        chain: Option<[u8; 32]>,
        /// Whether its lock is held across batches (a replay of the spool), not per batch.
        held: bool,
    },
    /// The shared table, driven from the writer thread through a runtime of its own (the
    /// writer outlives the server's runtime at a stop: it writes the queue out after it).
    Postgres {
        trail: PgAuditTrail,
        rt: tokio::runtime::Runtime,
    },
}

impl Out {
    fn file(path: PathBuf) -> std::io::Result<(Self, Link)> {
        let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        let r = chain::resume(&mut file)?;
        if r.torn > 0 {
            tracing::warn!(path = %path.display(), bytes = r.torn, "the audit trail ended in half a record (a crash while writing it, never acknowledged): cut off");
            file.set_len(r.len)?;
        }
        let chain = if r.len > 0 { chain::first_hash(&path) } else { None };
        Ok((Out::File { file, path, len: r.len, chain, held: false }, r.link))
    }

    /// Takes the file's lock and keeps it across batches, until [`Out::release`]: a replay of
    /// the spool, during which this writer still appends to it.
    fn hold(&mut self) -> std::io::Result<()> {
        if let Out::File { file, held, .. } = self {
            file.lock()?;
            *held = true;
        }
        Ok(())
    }

    fn release(&mut self) {
        if let Out::File { file, held, .. } = self
            && std::mem::take(held)
        {
            let _ = file.unlock();
        }
    }

    /// The id of the chain the file holds: the hash of its first record.
    fn chain(&self) -> Option<[u8; 32]> {
        match self {
            Out::File { chain, .. } => *chain,
            Out::Stdout | Out::Postgres { .. } => None,
        }
    }

    /// Appends the batch and, with `sync`, syncs it: on disk, not only in the page cache (a
    /// PostgreSQL batch is always committed). Another process
    /// (a maintenance command: `audit::append_now`) may append between two batches under the
    /// same lock: then the chain is picked up again from its record and the batch sealed anew.
    fn write(&mut self, link: &mut Link, pending: &mut [Pending], sync: bool) -> std::io::Result<()> {
        match self {
            Out::Stdout => {
                let mut out = std::io::stdout().lock();
                for p in pending.iter() {
                    out.write_all(p.line.as_bytes())?;
                }
                out.flush()
            }
            Out::File { file, path, len, chain: id, held } => {
                if !*held {
                    file.lock()?;
                }
                // `vigie audit purge` renames its purged copy over the trail under this lock, and
                // a replay in another process archives the spool under it: go on in the file the
                // path names now, not in the old one nobody reads any more.
                if super::purge::replaced(file, path) || !path.exists() {
                    let fresh = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&*path)?;
                    let _ = file.unlock();
                    *file = fresh;
                    file.lock()?;
                    *len = u64::MAX;
                }
                let result = (|| {
                    if file.metadata()?.len() != *len {
                        let r = chain::resume(file)?;
                        // Another file, or this one cut (logrotate's `copytruncate`): another chain.
                        if r.len < *len || id.is_none() {
                            *id = if r.len > 0 { chain::first_hash(path) } else { None };
                        }
                        *len = r.len;
                        *link = r.link;
                        for p in pending.iter_mut() {
                            p.line = link.seal(&p.json);
                        }
                    }
                    let batch: String = pending.iter().map(|p| p.line.as_str()).collect();
                    let written =
                        file.write_all(batch.as_bytes()).and_then(|()| if sync { file.sync_data() } else { Ok(()) });
                    match written {
                        Ok(()) => {
                            *len += batch.len() as u64;
                            if id.is_none() {
                                *id = pending
                                    .first()
                                    .and_then(|p| chain::open(p.line.trim_end().as_bytes()))
                                    .map(|r| r.hash);
                            }
                        }
                        // Half a batch must not stay: the retry would chain after a torn line.
                        Err(_) => {
                            let _ = file.set_len(*len);
                        }
                    }
                    written
                })();
                if !*held {
                    let _ = file.unlock();
                }
                result
            }
            Out::Postgres { trail, rt } => {
                let appended = rt.block_on(trail.append(|head| {
                    let mut at = link_at(head.as_ref());
                    pending
                        .iter_mut()
                        .map(|p| {
                            let (record, line) = seal_after(&mut at, &p.json);
                            p.line = line;
                            record
                        })
                        .collect()
                }));
                match appended {
                    Ok(head) => {
                        *link = link_at(head.as_ref());
                        Ok(())
                    }
                    Err(e) => Err(std::io::Error::other(e)),
                }
            }
        }
    }

    /// Syncs what earlier batches wrote without syncing.
    fn sync(&mut self) -> std::io::Result<()> {
        match self {
            Out::File { file, .. } => file.sync_data(),
            Out::Stdout | Out::Postgres { .. } => Ok(()),
        }
    }

    /// Whether a batch written with `sync` reached stable storage (stdout has none).
    fn syncs(&self, sync: bool) -> bool {
        match self {
            Out::Stdout => false,
            Out::File { .. } => sync,
            Out::Postgres { .. } => true,
        }
    }

    fn path(&self) -> Option<&PathBuf> {
        match self {
            Out::Stdout | Out::Postgres { .. } => None,
            Out::File { path, .. } => Some(path),
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self, Out::Postgres { .. })
    }
}

/// An event sealed into the chain, waiting for its batch to reach the disk.
struct Pending {
    json: String,
    line: String,
    ack: Option<Ack>,
}

pub struct JsonLinesAudit {
    tx: Option<queue::Sender<Message>>,
    writer: Option<JoinHandle<()>>,
    status: Arc<Status>,
}

impl JsonLinesAudit {
    /// `-` writes to standard output; anything else is a file opened for append, its chain
    /// picked up from its last record.
    pub fn open(target: &str) -> std::io::Result<Self> {
        Self::open_with(target, Options::default())
    }

    pub fn open_with(target: &str, options: Options) -> std::io::Result<Self> {
        let (mut out, mut link) =
            if target == "-" { (Out::Stdout, Link::default()) } else { Out::file(target.into())? };
        // A spool left by an earlier failure holds the chain's end: go on there until an
        // operator has moved it back onto the trail (docs/audit.md, "When the disk fails").
        if let Some(spool) = options.spool.as_ref().filter(|s| std::fs::metadata(s).is_ok_and(|m| m.len() > 0)) {
            tracing::error!(spool = %spool.display(), "the audit spool holds records: writing there until it is appended to the trail (docs/audit.md)");
            (out, link) = Out::file(spool.clone())?;
        }
        Self::start(move |_| Ok((out, link)), options)
    }

    /// The trail in PostgreSQL's `audit_records` (its tables made or brought up to date first);
    /// fails when the database cannot be reached or migrated.
    pub fn open_postgres(url: &str, options: Options) -> std::io::Result<Self> {
        let (url, spool, pace) = (url.to_owned(), options.spool.clone(), options.replay);
        let trust = super::spool::Trust::of(options.checkpoints.as_ref());
        Self::start(
            move |status| {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let trail = rt.block_on(PgAuditTrail::open(&url, 2)).map_err(std::io::Error::other)?;
                super::spool::rejoin(&trail, &rt, spool.as_deref(), &trust, pace, status);
                Ok((Out::Postgres { trail, rt }, Link::default()))
            },
            options,
        )
    }

    /// Starts the writer thread on what `out` opens (in that thread: a runtime stays with the
    /// thread that made it; given the writer's status); returns once it is open.
    fn start(
        out: impl FnOnce(&Arc<Status>) -> std::io::Result<(Out, Link)> + Send + 'static,
        options: Options,
    ) -> std::io::Result<Self> {
        Self::start_gathering(out, options, queue::GATHER)
    }

    /// [`Self::start`] with the queue's gather window (a test's is longer than any it waits).
    fn start_gathering(
        out: impl FnOnce(&Arc<Status>) -> std::io::Result<(Out, Link)> + Send + 'static,
        options: Options,
        gather: Duration,
    ) -> std::io::Result<Self> {
        let (tx, rx) = queue::bounded::<Message>(gather);
        let status = Arc::new(Status::default());
        status.set_broken(false);
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let thread_status = status.clone();
        let thread =
            std::thread::Builder::new().name("vigie-audit".into()).spawn(move || match out(&thread_status) {
                Ok((out, link)) => {
                    let log = match options.checkpoints.as_ref().map(|c| CheckpointLog::start(c, thread_status.clone()))
                    {
                        Some(Err(e)) => {
                            let _ = opened_tx.send(Err(e));
                            return;
                        }
                        log => log.and_then(Result::ok),
                    };
                    let _ = opened_tx.send(Ok(()));
                    let mut writer = Writer {
                        out,
                        link,
                        pending: Vec::new(),
                        status: thread_status,
                        options,
                        checkpointed: 0,
                        unsynced: None,
                        log,
                        rejoin: None,
                        failed_at: None,
                        sync_began: None,
                        sync_gap: None,
                    };
                    writer.run(&rx);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })?;
        match opened.recv() {
            Ok(Ok(())) => Ok(Self { tx: Some(tx), writer: Some(thread), status }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("the audit writer stopped while opening the trail")),
        }
    }

    /// The writer's state, for `/readyz` and the login gate.
    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// Writes and syncs that failed since the start.
    pub fn write_errors(&self) -> u64 {
        self.status.write_errors()
    }

    fn send(&self, event: &AuditEvent, ack: Option<Ack>) {
        // Sized for a whole event: serde_json's own buffer starts at 128 bytes and grows by copies,
        // on the request's thread.
        let mut buffer = Vec::with_capacity(512);
        let json = serde_json::to_writer(&mut buffer, event)
            .ok()
            .and_then(|()| String::from_utf8(buffer).ok())
            .unwrap_or_default();
        // Only an event somebody waits for wakes the writer at once; the others gather (`queue`).
        let urgent = ack.is_some();
        // A full queue waits rather than drops: an audit trail with holes is worth little.
        let sent = match &self.tx {
            Some(tx) => tx.send(Message::Event(json, ack), urgent),
            None => Err(Message::Event(json, ack)),
        };
        if let Err(Message::Event(_, ack)) = sent {
            tracing::error!("audit writer has stopped: an audit event was lost");
            metrics::counter!("vigie_audit_dropped_total").increment(1);
            if let Some(ack) = ack {
                ack(false);
            }
        }
    }

    /// Waits up to [`FLUSH_WAIT`] for the writer to confirm that every event queued so far is
    /// written and synced: a stop must not hang on a dead disk.
    fn written_out(&self) -> bool {
        let (ack, done) = mpsc::sync_channel(1);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(Message::Flush(ack), true).is_ok());
        let confirmed = sent && done.recv_timeout(FLUSH_WAIT).is_ok();
        if !confirmed {
            tracing::error!("the audit writer did not confirm its queue was written: audit events may be lost");
        }
        confirmed
    }
}

impl AuditSink for JsonLinesAudit {
    fn record(&self, event: &AuditEvent) {
        self.send(event, None);
    }

    fn record_acked(&self, event: &AuditEvent, ack: Ack) {
        self.send(event, Some(ack));
    }

    fn flush(&self) {
        self.written_out();
    }
}

impl Drop for JsonLinesAudit {
    /// Waits (bounded) for the writer to write out what it holds, then closes the queue; the
    /// writer thread is joined only once it has confirmed, so a dead disk cannot hang the stop.
    fn drop(&mut self) {
        close(self.written_out(), &mut self.tx, &mut self.writer);
    }
}

/// Closes a queue, then joins its thread only if it confirmed it wrote out what it held: a dead
/// disk must not hang a stop.
fn close<T>(confirmed: bool, tx: &mut Option<T>, thread: &mut Option<JoinHandle<()>>) {
    tx.take();
    if let Some(thread) = thread.take().filter(|_| confirmed) {
        let _ = thread.join();
    }
}

struct Writer {
    out: Out,
    link: Link,
    pending: Vec<Pending>,
    status: Arc<Status>,
    options: Options,
    /// The sequence number the last checkpoint covers.
    checkpointed: u64,
    /// Since when batches nobody waited for are written but not synced.
    unsynced: Option<Instant>,
    /// The checkpoints of a file trail, logged off the writer's path.
    log: Option<CheckpointLog>,
    /// While on the spool of a database outage: the table to go back to.
    rejoin: Option<Rejoin>,
    /// When the last batch could not be written: the next try waits [`RETRY`] after it.
    failed_at: Option<Instant>,
    /// When the last sync began ([`Options::commit_interval`] counts from it).
    sync_began: Option<Instant>,
    /// The time between two syncs' starts, a moving average ([`Writer::sync_begins`]): whether
    /// the trail is busy enough for the commit floor.
    sync_gap: Option<Duration>,
}

impl Writer {
    fn run(&mut self, rx: &queue::Receiver<Message>) {
        let mut last_checkpoint = Instant::now();
        let mut inbox = Vec::new();
        loop {
            let wait = match (self.pending.is_empty(), self.unsynced) {
                (false, _) => RETRY,
                (true, Some(since)) => LAZY_SYNC.saturating_sub(since.elapsed()),
                (true, None) => self.options.checkpoints.as_ref().map_or(Duration::from_secs(3600), |c| c.interval),
            };
            let wait =
                self.rejoin.as_ref().map_or(wait, |r| wait.min(r.next.saturating_duration_since(Instant::now())));
            if !rx.batch(wait, &mut inbox) {
                break;
            }
            self.gather_for_commit(rx, &mut inbox);
            self.turn(&mut inbox, &mut last_checkpoint);
            self.try_rejoin(rx, &mut last_checkpoint);
        }
        self.write_pending(true);
        self.sync_written();
        if self.pending.is_empty() && self.unsynced.is_none() && self.link.seq > self.checkpointed {
            self.checkpoint();
        }
        // Its last notes are logged before the writer ends.
        self.log.take();
    }

    /// Group commit with a floor ([`Options::commit_interval`]): on a busy trail, a batch
    /// somebody waits for that comes sooner than the interval after the last sync began waits for
    /// the rest of it, and what arrives meanwhile shares its sync. Each sync of a file costs the
    /// gateway's CPU (on the benchmark's virtio disk about 0.1 ms: the data, the inode's new size,
    /// the cache flush: docs/benchmarks.md), so on a busy gateway this bounds the syncs to one per
    /// interval. Busy: the syncs' average gap ([`Writer::sync_begins`]) is under two intervals
    /// (without one yet, this batch's gap). A quiet trail holds nobody: at a hospital's rate
    /// (50 logins a second, arriving independently) one awaited event in twenty comes within a
    /// millisecond of the last sync by chance, and holding it was most of the trail's p99
    /// (docs/benchmarks.md). A flush is never held.
    fn gather_for_commit(&self, rx: &queue::Receiver<Message>, inbox: &mut Vec<Message>) {
        let interval = self.options.commit_interval;
        let Some(began) = self.sync_began.filter(|_| !interval.is_zero()) else { return };
        let since = began.elapsed();
        let busy = self.sync_gap.unwrap_or(since) < interval * 2;
        let awaited = inbox.iter().any(|m| matches!(m, Message::Event(_, Some(_))));
        let flush = inbox.iter().any(|m| matches!(m, Message::Flush(_)));
        let Some(left) = interval.checked_sub(since).filter(|_| awaited && !flush && busy) else { return };
        std::thread::sleep(left);
        let mut more = Vec::new();
        rx.try_batch(&mut more);
        inbox.append(&mut more);
    }

    /// One turn of the loop: the messages taken from the queue (left empty), written as one batch
    /// (synced when somebody waits for it), a checkpoint when due, the flushes answered.
    fn turn(&mut self, messages: &mut Vec<Message>, last_checkpoint: &mut Instant) {
        let mut flushes = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Event(json, ack) => {
                    let line = self.link.seal(&json);
                    self.pending.push(Pending { json, line, ack });
                }
                Message::Flush(ack) => flushes.push(ack),
            }
        }
        if let Some(written) = self.log.as_ref().and_then(CheckpointLog::take_failed) {
            // The last note could not be logged: sign one again now rather than at the next.
            self.checkpointed = written;
        }
        let due =
            self.options.checkpoints.as_ref().is_some_and(|c| {
                self.link.seq >= self.checkpointed + c.every || last_checkpoint.elapsed() >= c.interval
            });
        // A checkpoint covers only synced records; a flush and an old unsynced batch sync too.
        let sync = !flushes.is_empty() || due || self.unsynced.is_some_and(|s| s.elapsed() >= LAZY_SYNC);
        self.write_pending(sync);
        if sync && self.pending.is_empty() {
            self.sync_written();
        }
        if due && self.pending.is_empty() && self.unsynced.is_none() && self.link.seq > self.checkpointed {
            self.checkpoint();
            *last_checkpoint = Instant::now();
        }
        if !flushes.is_empty()
            && let Some(log) = &self.log
        {
            let _ = log.written_out();
        }
        for ack in flushes {
            let _ = ack.send(());
        }
    }

    /// A sync begins now: its gap from the last one goes into the average (a quarter's weight:
    /// some ten short gaps in a row make a trail busy, and a few long ones quiet again).
    fn sync_begins(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.sync_began {
            let gap = now.duration_since(last);
            self.sync_gap = Some(self.sync_gap.map_or(gap, |average| (average * 3 + gap) / 4));
        }
        self.sync_began = Some(now);
    }

    /// Syncs the batches written without a sync, if any.
    fn sync_written(&mut self) {
        if self.unsynced.is_none() {
            return;
        }
        self.sync_begins();
        match self.out.sync() {
            Ok(()) => {
                self.unsynced = None;
                self.status.synced(self.sync_began);
            }
            Err(e) => {
                self.failed(&e, 0);
                // Tried again after LAZY_SYNC, not in a loop.
                self.unsynced = Some(Instant::now());
            }
        }
    }

    /// Writes what is pending; syncs it when `sync` is asked or a caller waits for one of its
    /// events (otherwise it is synced later: `sync_written`).
    fn write_pending(&mut self, sync: bool) {
        if self.pending.is_empty() {
            return;
        }
        if self.failed_at.is_some_and(|at| at.elapsed() < RETRY) {
            // The last try failed a moment ago: the callers waiting are refused at once, and the
            // disk is not tried again for each event that arrives (a busy loop on a dead disk).
            for p in &mut self.pending {
                if let Some(ack) = p.ack.take() {
                    ack(false);
                }
            }
            return;
        }
        let sync = sync || self.pending.iter().any(|p| p.ack.is_some());
        if self.out.syncs(sync) {
            self.sync_begins();
        }
        let chain = self.out.chain();
        let result = self.out.write(&mut self.link, &mut self.pending, sync);
        if chain.is_some() && self.out.chain() != chain {
            // Logrotate: a new chain, checkpointed from its own first records (docs/audit.md).
            self.checkpointed = 0;
        }
        let result = match (result, self.options.spool.clone()) {
            (Err(e), Some(spool)) if !self.status.spooling() => {
                self.failed(&e, self.pending.len());
                // What the trail holds unsynced is synced before the spool continues its chain:
                // a checkpoint of the spool covers it (docs/audit.md, "When the disk fails").
                self.sync_written();
                tracing::error!(spool = %spool.display(), "audit trail unwritable: events go to the spool from now on (docs/audit.md)");
                self.status.spooling.store(true, Ordering::Relaxed);
                self.spool(spool)
            }
            (r, _) => r,
        };
        self.failed_at = result.is_err().then(Instant::now);
        match result {
            Ok(()) => {
                self.status.batches.fetch_add(1, Ordering::Relaxed);
                if !self.status.spooling() {
                    self.status.set_broken(false);
                }
                if self.rejoin.is_some() {
                    super::spool::spooled(self.link.seq);
                }
                if self.out.syncs(sync) {
                    self.unsynced = None;
                    self.status.synced(self.sync_began);
                } else if matches!(self.out, Out::File { .. }) {
                    self.unsynced.get_or_insert_with(Instant::now);
                }
                for p in self.pending.drain(..) {
                    if let Some(ack) = p.ack {
                        ack(true);
                    }
                }
            }
            Err(e) => {
                self.failed(&e, self.pending.len());
                // The callers waiting are answered now (refused); their events stay for the retry.
                for p in &mut self.pending {
                    if let Some(ack) = p.ack.take() {
                        ack(false);
                    }
                }
                if self.pending.len() > MAX_PENDING {
                    let lost = self.pending.len() - MAX_PENDING;
                    tracing::error!(
                        lost,
                        "the audit trail has been unwritable too long: the oldest pending events are lost"
                    );
                    metrics::counter!("vigie_audit_dropped_total").increment(lost as u64);
                    // Dropping from the front would break the chain of the rest: seal them anew.
                    self.pending.drain(..lost);
                    self.reseal();
                }
            }
        }
    }

    /// The chain from the last record on disk through what is still pending.
    fn reseal(&mut self) {
        let Some(path) = self.out.path().cloned() else { return };
        if let Ok((out, link)) = Out::file(path) {
            (self.out, self.link) = (out, link);
            // A new chain (logrotate) gets its own checkpoints from its first records.
            self.checkpointed = self.link.seq;
            for p in &mut self.pending {
                p.line = self.link.seal(&p.json);
            }
        }
    }

    fn spool(&mut self, path: PathBuf) -> std::io::Result<()> {
        if self.out.is_postgres() {
            // Other replicas go on with the shared chain: the spool cannot continue it, so it is
            // a chain of its own (continued across outages), replayed into the shared chain at the next
            // start (`audit::spool::rejoin`, docs/audit.md).
            let (spool, link) = Out::file(path)?;
            if let Out::Postgres { trail, rt } = std::mem::replace(&mut self.out, spool) {
                self.rejoin = Some(Rejoin::new(trail, rt));
            }
            self.link = link;
            self.checkpointed = self.link.seq;
            for p in &mut self.pending {
                p.line = self.link.seal(&p.json);
            }
            return self.out.write(&mut self.link, &mut self.pending, true);
        }
        // The spool continues the chain the trail's disk could not take: its first record's
        // `prev` is the trail's last hash, so the two verify as one (`vigie audit verify TRAIL SPOOL`).
        let file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        let chain = if len > 0 { chain::first_hash(&path) } else { None };
        self.out = Out::File { file, path, len, chain, held: false };
        let mut link = self.link;
        let result = self.out.write(&mut link, &mut self.pending, true);
        self.link = link;
        result
    }

    fn failed(&self, e: &std::io::Error, events: usize) {
        self.status.failed(e, events);
    }

    fn checkpoint(&mut self) {
        let Some(c) = &self.options.checkpoints else { return };
        let note = c.signer.checkpoint_of(&self.link, self.out.chain().as_ref(), &crate::rfc3339_now());
        if !self.out.is_postgres()
            && let Some(log) = &self.log
        {
            log.send(note, self.link.seq);
            self.checkpointed = self.link.seq;
            return;
        }
        let line = format!("{}\n", serde_json::json!({ "checkpoint": note }));
        let logged = match &self.out {
            Out::Postgres { trail, rt } => rt
                .block_on(trail.checkpoint(i64::try_from(self.link.seq).unwrap_or(i64::MAX), &note))
                .map_err(std::io::Error::other),
            _ => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&c.log)
                .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data())),
        };
        let witnessed = c.witness.as_ref().map_or(Ok(()), |w| {
            let tmp = w.with_extension("tmp");
            std::fs::write(&tmp, &note).and_then(|()| std::fs::rename(&tmp, w))
        });
        match logged.and(witnessed) {
            Ok(()) => {
                self.checkpointed = self.link.seq;
                metrics::counter!("vigie_audit_checkpoints_total").increment(1);
            }
            Err(e) => self.failed(&e, 0),
        }
    }
}
