//! This replica's memory of the checks it let through in the last second: the proxy checks every
//! request of an app (a page and its dozens of assets), and the same cookie's answer is reused
//! for at most [`TTL`] instead of reading the store and the directory again each time.
//!
//! Never reused after something that ends access on this replica: an entry is dropped when a
//! session ends here (`session::end`: a logout, the sweep, `/authorize` finding the account
//! gone), when the deployment's view of access changes (`policy::view` clears the principal
//! cache, whose generation the entry carries), and at the session's end. Sessions of a
//! sponsorship are not kept: their temporary credential ends at a time the check reads from
//! the directory. A card or key withdrawn on another replica, which signals nothing, counts
//! within [`TTL`]. Kept in the process (one gateway state per process), keyed by the hash of a
//! random cookie: nothing to share across replicas.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an answer is reused: the longest a withdrawal that signals nothing goes unseen.
pub const TTL: Duration = Duration::from_secs(1);
/// Past this many entries the expired go, then all: a bound on memory, not a policy.
const MAX: usize = 100_000;

/// The identity headers of an answer that let a session into an app.
pub type Headers = Arc<Vec<(&'static str, String)>>;

/// When an answer was worth reusing: the generations it was decided under, and until when.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Since {
    principals: u64,
    sessions: u64,
}

struct Entry {
    until: Instant,
    since: Since,
    headers: Headers,
}

/// The answers and the sessions ended in this process.
#[derive(Default)]
pub struct Decisions {
    /// Sessions ended here: every answer decided before the last one is dropped.
    sessions_ended: AtomicU64,
    answers: Mutex<HashMap<String, Entry>>,
}

static GLOBAL: OnceLock<Decisions> = OnceLock::new();

/// This process's answers (what the checks and `session::end` use).
pub fn global() -> &'static Decisions {
    GLOBAL.get_or_init(Decisions::default)
}

fn key(handle_key: &str, client_id: &str) -> String {
    format!("{handle_key}\n{client_id}")
}

impl Decisions {
    /// A session ended on this replica: no answer decided before is reused.
    pub fn session_ended(&self) {
        self.sessions_ended.fetch_add(1, Ordering::SeqCst);
    }

    /// The generations to give [`Decisions::put`]: taken before reading what the answer is
    /// decided on.
    pub fn since(&self, principals_generation: u64) -> Since {
        Since { principals: principals_generation, sessions: self.sessions_ended.load(Ordering::SeqCst) }
    }

    /// The answer reused for this handle and app, if one was decided less than [`TTL`] ago and
    /// nothing that ends access happened here since.
    pub fn get(&self, handle_key: &str, client_id: &str, principals_generation: u64) -> Option<Headers> {
        let now = self.since(principals_generation);
        let map = self.answers.lock().ok()?;
        let e = map.get(&key(handle_key, client_id))?;
        (e.since == now && Instant::now() < e.until).then(|| e.headers.clone())
    }

    /// Keeps an answer for at most [`TTL`] and `left` (what the session has to live), unless
    /// something that ends access happened since `since` (the answer may be stale already).
    pub fn put(
        &self,
        handle_key: &str,
        client_id: &str,
        headers: Headers,
        since: Since,
        principals_now: u64,
        left: Duration,
    ) {
        let ttl = TTL.min(left);
        if ttl.is_zero() || self.since(principals_now) != since {
            return;
        }
        let Ok(mut map) = self.answers.lock() else { return };
        let now = Instant::now();
        if map.len() >= MAX {
            map.retain(|_, e| e.until > now);
            if map.len() >= MAX {
                map.clear();
            }
        }
        map.insert(key(handle_key, client_id), Entry { until: now + ttl, since, headers });
    }

    /// Forgets the answers of a handle (its cookie logged out or its access ended here).
    pub fn forget(&self, handle_key: &str) {
        if let Ok(mut map) = self.answers.lock() {
            let prefix = format!("{handle_key}\n");
            map.retain(|k, _| !k.starts_with(&prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Headers {
        Arc::new(vec![("X-Vigie-User", "u".to_owned())])
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_answer_is_not_reused_after_a_session_ends_here_or_access_changes() {
        let d = Decisions::default();
        d.put("h", "lab", headers(), d.since(7), 7, MINUTE);
        assert!(d.get("h", "lab", 7).is_some(), "reused within the second");
        assert!(d.get("h", "rh", 7).is_none(), "per app");
        assert!(d.get("h", "lab", 8).is_none(), "the view of access changed");
        d.session_ended();
        assert!(d.get("h", "lab", 7).is_none(), "a session ended on this replica");
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let d = Decisions::default();
        let before = d.since(3);
        d.session_ended();
        d.put("h", "lab", headers(), before, 3, MINUTE);
        assert!(d.get("h", "lab", 3).is_none(), "a session ended while deciding");
        d.put("h", "lab", headers(), d.since(3), 4, MINUTE);
        assert!(d.get("h", "lab", 4).is_none(), "the principals changed while deciding");
    }

    #[test]
    fn an_answer_lives_no_longer_than_the_second_or_the_session() {
        let d = Decisions::default();
        d.put("h", "lab", headers(), d.since(1), 1, Duration::ZERO);
        assert!(d.get("h", "lab", 1).is_none(), "a session ending now is not kept");
        d.put("h", "lab", headers(), d.since(1), 1, Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(80));
        assert!(d.get("h", "lab", 1).is_none(), "gone with the session");
        d.put("h", "lab", headers(), d.since(1), 1, MINUTE);
        d.forget("h");
        assert!(d.get("h", "lab", 1).is_none(), "forgotten at logout");
    }
}
