//! The writer's queue (issue 18, the trail's cost on a busy gateway): events nobody waits for
//! gather for up to [`GATHER`] (or until [`BATCH`] of them are queued) before the writer is woken,
//! so that it pays one wake-up and one write per batch, not per event; an event somebody waits for
//! (`record_acked`) and a flush wake it at once and never wait for a gather window.
//!
//! Bounded ([`CAPACITY`]): a caller finding it full waits for room, as with the channel it replaces
//! (an audit trail with holes is worth little). Messages come out in the order they went in; once
//! the sending side is dropped the writer gets what is left, then `None`; once the writer is gone a
//! send is refused (the caller counts the event lost).
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest an event nobody waits for stays queued before the writer takes it (the `perf` of
/// the SSO round trip put the writer's wake-ups per event on top): under load, a batch of some
/// tens of events per write; a crash of the process may lose these last milliseconds of them,
/// never an event an answer waited for.
pub(super) const GATHER: Duration = Duration::from_millis(5);
/// So many queued events wake the writer without waiting for the rest of the window.
pub(super) const BATCH: usize = 256;
/// The most events queued; past it a caller waits for the writer to take them.
pub(in crate::audit) const CAPACITY: usize = 8192;

struct State<M> {
    messages: Vec<M>,
    /// When the oldest queued message came in (`None`: the queue is empty).
    since: Option<Instant>,
    /// Somebody waits for a queued message: the writer takes the queue at once.
    urgent: bool,
    /// The writer sleeps on `ready` (a caller wakes it only then: a wake-up is a system call).
    sleeping: bool,
    /// Callers sleeping on `room`.
    waiting_for_room: usize,
    /// The sending side is dropped: no more messages.
    closed: bool,
    /// The writer is gone: a send is refused.
    gone: bool,
}

struct Shared<M> {
    state: Mutex<State<M>>,
    /// Wakes the writer.
    ready: Condvar,
    /// Wakes the callers waiting for room.
    room: Condvar,
    gather: Duration,
}

impl<M> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // Nothing in the state is left half-updated by a panic: go on with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The callers' side; dropping it lets the writer write out what is left and stop.
pub(super) struct Sender<M>(Arc<Shared<M>>);

/// The writer's side; dropping it (the writer ended) makes every send fail.
pub(super) struct Receiver<M>(Arc<Shared<M>>);

/// A queue of [`CAPACITY`] whose messages nobody waits for gather for `gather`.
pub(super) fn bounded<M>(gather: Duration) -> (Sender<M>, Receiver<M>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            messages: Vec::new(),
            since: None,
            urgent: false,
            sleeping: false,
            waiting_for_room: 0,
            closed: false,
            gone: false,
        }),
        ready: Condvar::new(),
        room: Condvar::new(),
        gather,
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<M> Sender<M> {
    /// Queues `message`, waking the writer at once when it is `urgent` (somebody waits for it);
    /// waits for room while the queue is full. Gives the message back when the writer is gone.
    pub(super) fn send(&self, message: M, urgent: bool) -> Result<(), M> {
        let mut s = self.0.lock();
        while s.messages.len() >= CAPACITY && !s.gone {
            s.waiting_for_room += 1;
            s = self.0.room.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.waiting_for_room -= 1;
        }
        if s.gone {
            return Err(message);
        }
        s.messages.push(message);
        s.since.get_or_insert_with(Instant::now);
        s.urgent |= urgent;
        // The first message after an idle spell starts the gather window of a writer asleep
        // without one; a full batch or an urgent one ends it.
        let wake = s.sleeping && (s.urgent || s.messages.len() == 1 || s.messages.len() >= BATCH);
        if wake {
            s.sleeping = false;
            drop(s);
            self.0.ready.notify_one();
        }
        Ok(())
    }
}

impl<M> Drop for Sender<M> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_one();
    }
}

impl<M> Receiver<M> {
    /// Waits up to `timeout` for a batch and moves it into `into` (empty): at once when a message
    /// is urgent, [`BATCH`] are queued or the sending side is closed; else once the oldest has
    /// waited the gather window; else at `timeout` (then possibly nothing). False once the
    /// sending side is closed and everything was taken.
    pub(super) fn batch(&self, timeout: Duration, into: &mut Vec<M>) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.0.lock();
        loop {
            if s.urgent || s.closed || s.messages.len() >= BATCH {
                break;
            }
            let until = s.since.map_or(deadline, |since| deadline.min(since + self.0.gather));
            let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                break;
            };
            s.sleeping = true;
            s = self.0.ready.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
            s.sleeping = false;
        }
        if s.closed && s.messages.is_empty() {
            return false;
        }
        self.take(s, into);
        true
    }

    /// Moves what is queued now into `into` (empty), without waiting.
    pub(super) fn try_batch(&self, into: &mut Vec<M>) {
        self.take(self.0.lock(), into);
    }

    fn take(&self, mut s: MutexGuard<'_, State<M>>, into: &mut Vec<M>) {
        // Swapped, not copied: the two vectors keep their room from one batch to the next.
        std::mem::swap(&mut s.messages, into);
        (s.since, s.urgent) = (None, false);
        if s.waiting_for_room > 0 {
            drop(s);
            self.0.room.notify_all();
        }
    }
}

impl<M> Drop for Receiver<M> {
    fn drop(&mut self) {
        self.0.lock().gone = true;
        self.0.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window no test waits for: whatever comes out before it did not wait for it.
    const LONG: Duration = Duration::from_secs(600);

    #[test]
    fn an_awaited_message_is_taken_at_once_not_after_the_gather_window() {
        let (tx, rx) = bounded(LONG);
        tx.send(1, false).unwrap();
        let writer = std::thread::spawn(move || {
            let mut batch = Vec::new();
            let began = Instant::now();
            assert!(rx.batch(LONG, &mut batch));
            (batch, began.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        tx.send(2, true).unwrap();
        let (batch, waited) = writer.join().unwrap();
        assert_eq!(batch, [1, 2], "what was gathered goes with the awaited message, in order");
        assert!(waited < Duration::from_secs(30), "the awaited message waited {waited:?} for the gather window");
    }

    #[test]
    fn messages_nobody_waits_for_are_taken_together_once_the_window_ends() {
        let gather = Duration::from_millis(200);
        let (tx, rx) = bounded(gather);
        let began = Instant::now();
        for i in 0..10 {
            tx.send(i, false).unwrap();
        }
        let mut batch = Vec::new();
        assert!(rx.batch(LONG, &mut batch));
        assert_eq!(batch, (0..10).collect::<Vec<_>>());
        assert!(began.elapsed() >= gather, "taken after {:?}, before the window ended", began.elapsed());
    }

    #[test]
    fn a_full_batch_is_taken_without_waiting_for_the_window() {
        let (tx, rx) = bounded(LONG);
        for i in 0..BATCH {
            tx.send(i, false).unwrap();
        }
        let mut batch = Vec::new();
        assert!(rx.batch(LONG, &mut batch));
        assert_eq!(batch.len(), BATCH);
    }

    #[test]
    fn a_caller_finding_the_queue_full_waits_for_room_and_loses_nothing() {
        let (tx, rx) = bounded(LONG);
        let caller = std::thread::spawn(move || {
            for i in 0..CAPACITY + 10 {
                tx.send(i, false).unwrap();
            }
        });
        let mut all = Vec::new();
        let mut batch = Vec::new();
        while rx.batch(LONG, &mut batch) {
            all.append(&mut batch);
        }
        caller.join().unwrap();
        assert_eq!(all, (0..CAPACITY + 10).collect::<Vec<_>>(), "every message, in order, then the end");
    }

    #[test]
    fn a_send_after_the_writer_ended_is_refused() {
        let (tx, rx) = bounded(LONG);
        drop(rx);
        assert_eq!(tx.send(7, true), Err(7));
    }
}
