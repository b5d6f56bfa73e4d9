//! The way back from the spool of a database outage (issue 18; docs/audit.md, "When the database
//! fails"): while on it, the writer asks the database again (every [`REJOIN_FIRST`], doubling up to
//! [`REJOIN_MAX`]); once it answers, the spool is replayed into the shared chain a batch at a time
//! (`audit::spool::Replay`), what arrives meanwhile going to the spool behind it, and the writer
//! goes back to the table.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vigie_directory_sql::audit_trail::PgAuditTrail;

use super::{Link, Message, Out, Writer, queue};
use crate::audit::spool;

/// When a replica on its spool first asks the database again, then twice as long each time it
/// does not answer, up to [`REJOIN_MAX`].
const REJOIN_FIRST: Duration = Duration::from_secs(5);
const REJOIN_MAX: Duration = Duration::from_secs(60);
/// The longest the writer waits for the database's answer before a replay: it holds the queue
/// meanwhile, so a database still down costs the answers waiting at most this much per try.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// The shared table a replica on its spool goes back to once the database answers again.
pub(super) struct Rejoin {
    trail: PgAuditTrail,
    rt: tokio::runtime::Runtime,
    /// When to ask the database again.
    pub(super) next: Instant,
    backoff: Duration,
}

impl Rejoin {
    /// The table left for the spool now: asked again after [`REJOIN_FIRST`].
    pub(super) fn new(trail: PgAuditTrail, rt: tokio::runtime::Runtime) -> Self {
        Self { trail, rt, next: Instant::now() + REJOIN_FIRST, backoff: REJOIN_FIRST }
    }
}

impl Writer {
    /// On the spool of a database outage, when it is time to ask again: replays the spool into
    /// the table and goes back to it, or tries again later (backoff).
    pub(super) fn try_rejoin(&mut self, rx: &queue::Receiver<Message>, last_checkpoint: &mut Instant) {
        if !self.pending.is_empty() || self.rejoin.as_ref().is_none_or(|r| r.next > Instant::now()) {
            return;
        }
        let Some(mut rejoin) = self.rejoin.take() else { return };
        match self.replay_spool(&rejoin, rx, last_checkpoint) {
            Ok(records) => {
                let Rejoin { trail, rt, .. } = rejoin;
                self.out = Out::Postgres { trail, rt };
                // Sealed after the table's head at the next batch; the shared chain's
                // checkpoints start afresh, as at an opening.
                (self.link, self.checkpointed, self.unsynced) = (Link::default(), 0, None);
                self.status.spooling.store(false, Ordering::Relaxed);
                self.status.set_broken(false);
                tracing::warn!(
                    records,
                    "the audit trail's database answers again: the spool is replayed into the shared trail and archived, \
                     events go to the database again"
                );
            }
            Err(e) => {
                if let Some(path) = self.out.path() {
                    spool::failed(&self.status, path, &e);
                }
                rejoin.next = Instant::now() + rejoin.backoff;
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_secs = rejoin.backoff.as_secs(),
                    "the audit trail is still on its spool: its replay into the database failed"
                );
                rejoin.backoff = (rejoin.backoff * 2).min(REJOIN_MAX);
                self.rejoin = Some(rejoin);
            }
        }
    }

    /// Replays the spool a batch at a time; between two batches what arrived goes to the spool
    /// behind them (so nothing overtakes a spooled event, and an answer waits one batch at most),
    /// until the replay has caught up. Returns how many records the spool held.
    fn replay_spool(
        &mut self,
        rejoin: &Rejoin,
        rx: &queue::Receiver<Message>,
        last_checkpoint: &mut Instant,
    ) -> anyhow::Result<usize> {
        let Some(path) = self.out.path().cloned() else { return Ok(0) };
        // The timer is made inside the runtime: it needs its clock.
        let probe = rejoin
            .rt
            .block_on(async { tokio::time::timeout(PROBE_WAIT, rejoin.trail.records_after(i64::MAX, 1)).await });
        probe.map_err(|_| anyhow::anyhow!("no answer within {PROBE_WAIT:?}"))??;
        self.sync_written();
        // The spool is checked against its checkpoints: all of them on disk first.
        if let Some(log) = &self.log {
            let _ = log.written_out();
        }
        // The replay holds the spool's lock until it ends, so no other process replays it or
        // writes to it meanwhile; this writer appends through the file that holds it.
        self.out.hold()?;
        let replayed = self.replay_held(&path, rejoin, rx, last_checkpoint);
        self.out.release();
        replayed
    }

    /// [`Writer::replay_spool`] once the spool's lock is held.
    fn replay_held(
        &mut self,
        path: &std::path::Path,
        rejoin: &Rejoin,
        rx: &queue::Receiver<Message>,
        last_checkpoint: &mut Instant,
    ) -> anyhow::Result<usize> {
        let trust = spool::Trust::of(self.options.checkpoints.as_ref());
        let Some(mut replay) =
            spool::Replay::open_locked(path, &trust, self.options.replay, None, self.status.clone())?
        else {
            return Ok(0);
        };
        while replay.remaining() > 0 {
            rejoin.rt.block_on(replay.step(&rejoin.trail))?;
            let mut next = Vec::new();
            rx.try_batch(&mut next);
            if !next.is_empty() {
                self.turn(&mut next, last_checkpoint);
                if !self.pending.is_empty() {
                    anyhow::bail!("the spool cannot be written");
                }
                replay.refresh()?;
            }
        }
        // The spool's checkpoints are all logged before they are removed with it.
        if let Some(log) = &self.log {
            let _ = log.written_out();
        }
        self.sync_written();
        replay.finish()
    }
}
