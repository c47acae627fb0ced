//! Wake-ups of waiting receives: a commit that may have made something deliverable bumps
//! a counter, and the receives waiting on it wake.
//!
//! On Linux the counter is the file's shared wake word (`shared`), so a commit in one
//! process wakes receives in every process at once: blocked receives sleep on the word
//! (a futex), async ones on a `Notify` that a watcher thread (one per queue, started by
//! its first async receive) pokes when another process bumps the word. Elsewhere, or
//! where the word cannot be had, the counter is this process's own (a condvar), and
//! commits by other processes are seen by polling `PRAGMA data_version` (`receive`).
//! The poll stays either way: it notices commits made without ferrymq (a client writing
//! the `ferrymq_publish` view itself).

#[cfg(target_os = "linux")]
mod shared;

use crate::inner::lock;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use shared::SharedWord;

/// No shared word off Linux: `open` never gives one.
#[cfg(not(target_os = "linux"))]
struct SharedWord;

#[cfg(not(target_os = "linux"))]
impl SharedWord {
    fn open(_db: &Path) -> Option<SharedWord> {
        None
    }
    fn load(&self) -> u32 {
        0
    }
    fn bump(&self) -> u32 {
        0
    }
    fn wait(&self, _seen: u32, _timeout: Duration) -> bool {
        false
    }
    fn expect_foreign(&self, _window: Duration) -> bool {
        false
    }
    fn foreign_expected(&self) -> bool {
        true
    }
}

#[derive(Default)]
struct Generation {
    value: u64,
    /// Threads blocked in `wait`: a bump with none skips the condvar, whose notify is a
    /// system call even when nobody waits (one per publish otherwise).
    sleepers: usize,
}

/// What the watcher thread shares with its queue.
struct Cross {
    word: Option<SharedWord>,
    notify: tokio::sync::Notify,
    /// The word's value after this process's last bump: a change that ends there was
    /// ours, and our bump notified already.
    own: AtomicU32,
    watching: AtomicBool,
    /// Set when the queue is gone: the watcher ends within `WATCH_SLICE`.
    stop: AtomicBool,
}

/// How long the watcher sleeps at a time before looking whether its queue is gone.
const WATCH_SLICE: Duration = Duration::from_millis(250);
/// The longest a waiting receive sleeps between two looks at `PRAGMA data_version` when
/// commits wake it through the shared word and none without ferrymq are expected.
const QUIET_POLL_MAX: Duration = Duration::from_millis(100);
/// How long one `publish_in` / `ack_in` keeps waiting receives polling at
/// `poll_interval` (its caller commits later, where no bump follows).
const FOREIGN_WINDOW: Duration = Duration::from_secs(10);
/// How long the counter must stand still after a commit that bumped nothing before a
/// second such commit opens the window. A ferrymq commit bumps just after its COMMIT, and
/// a process preempted between the two (50 starting on 2 cores) looks, for tens of ms,
/// like a client without ferrymq.
const FOREIGN_CONFIRM: Duration = Duration::from_millis(500);

pub(crate) struct Wake {
    generation: Mutex<Generation>,
    cv: Condvar,
    cross: Arc<Cross>,
    /// The counter's value when a commit that bumped nothing was first seen, and when.
    unbumped: Mutex<Option<(u64, Instant)>>,
}

impl Wake {
    /// The wake-up counter of the database at `db`: its shared word where the platform
    /// and the directory allow one, else this process's own.
    pub fn open(db: &Path) -> Wake {
        Wake::with_word(SharedWord::open(db))
    }

    fn with_word(word: Option<SharedWord>) -> Wake {
        Wake {
            generation: Mutex::default(),
            cv: Condvar::new(),
            cross: Arc::new(Cross {
                word,
                notify: tokio::sync::Notify::new(),
                own: AtomicU32::new(0),
                watching: AtomicBool::new(false),
                stop: AtomicBool::new(false),
            }),
            unbumped: Mutex::new(None),
        }
    }

    /// Whether commits in other processes wake this one's receives (else they poll).
    #[cfg(test)]
    fn is_shared(&self) -> bool {
        self.cross.word.is_some()
    }

    /// How long a receive that has waited `waited` so far may sleep before it looks at
    /// `PRAGMA data_version` again: `base` (`poll_interval`) without a shared word or
    /// while commits without ferrymq are expected; else a quarter of the time waited,
    /// between `base` and `QUIET_POLL_MAX`, since every ferrymq commit wakes it anyway
    /// and only the rare commit of a client without ferrymq is left to the poll.
    pub fn poll(&self, base: Duration, waited: Duration) -> Duration {
        match &self.cross.word {
            Some(w) if !w.foreign_expected() => (waited / 4).min(QUIET_POLL_MAX).max(base),
            _ => base,
        }
    }

    /// Says a commit without ferrymq is coming (`publish_in` / `ack_in` on the caller's
    /// connection): receives in every process poll at `poll_interval` for a while, and
    /// those sleeping longer are woken to start.
    pub fn expect_foreign_commit(&self) {
        if let Some(w) = &self.cross.word
            && w.expect_foreign(FOREIGN_WINDOW)
        {
            self.bump();
        }
    }

    /// A receive saw `PRAGMA data_version` move while the counter stayed at `seen`: a
    /// commit that bumped nothing, or one whose bump is still to come. Only when the
    /// counter still reads `seen` at such a sighting `FOREIGN_CONFIRM` or more after the
    /// first does it open the window: commits without ferrymq are coming.
    pub fn unbumped_commit_seen(&self, seen: u64) {
        let confirmed = {
            let mut first = lock(&self.unbumped);
            match *first {
                Some((at, since)) if at == seen => since.elapsed() >= FOREIGN_CONFIRM,
                _ => {
                    *first = Some((seen, Instant::now()));
                    false
                }
            }
        };
        if confirmed {
            *lock(&self.unbumped) = None;
            self.expect_foreign_commit();
        }
    }

    pub fn generation(&self) -> u64 {
        match &self.cross.word {
            Some(w) => u64::from(w.load()),
            None => lock(&self.generation).value,
        }
    }

    pub fn bump(&self) {
        match &self.cross.word {
            Some(w) => self.cross.own.store(w.bump(), Ordering::SeqCst),
            None => {
                let sleepers = {
                    let mut g = lock(&self.generation);
                    g.value += 1;
                    g.sleepers
                };
                if sleepers > 0 {
                    self.cv.notify_all();
                }
            }
        }
        self.cross.notify.notify_waiters();
    }

    /// Waits up to `timeout` for a bump after `seen` (from `generation`); true if one
    /// happened (a spurious or interrupted wait says false, as a timeout does).
    pub fn wait(&self, seen: u64, timeout: Duration) -> bool {
        if let Some(w) = &self.cross.word {
            return w.wait(seen as u32, timeout);
        }
        let mut guard = lock(&self.generation);
        guard.sleepers += 1;
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |g| g.value == seen)
            .unwrap_or_else(|e| e.into_inner());
        guard.sleepers -= 1;
        guard.value != seen
    }

    /// What async receives wait on. With a shared word, the first call starts the
    /// watcher that turns other processes' bumps into notifications.
    pub fn notify(&self) -> &tokio::sync::Notify {
        if let Some(word) = &self.cross.word
            && !self.cross.watching.swap(true, Ordering::AcqRel)
        {
            let cross = Arc::clone(&self.cross);
            // Read here, before the caller's claim: a bump between the two is then seen.
            let seen = word.load();
            let started = std::thread::Builder::new()
                .name("ferrymq-wake".into())
                .spawn(move || watch(&cross, seen));
            if started.is_err() {
                // No thread: async receives fall back to the poll alone; a later one tries
                // again.
                self.cross.watching.store(false, Ordering::Release);
            }
        }
        &self.cross.notify
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.cross.stop.store(true, Ordering::Release);
    }
}

/// The watcher: sleeps on the shared word and notifies this process's async receives of
/// each change that was not this process's own bump.
fn watch(cross: &Cross, mut seen: u32) {
    let Some(word) = &cross.word else { return };
    while !cross.stop.load(Ordering::Acquire) {
        word.wait(seen, WATCH_SLICE);
        let now = word.load();
        if now != seen {
            // A foreign bump after ours would end elsewhere; one before ours was visible
            // when our bump notified.
            if now != cross.own.load(Ordering::SeqCst) {
                cross.notify.notify_waiters();
            }
            seen = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_bump_wakes_a_waiter_before_its_timeout(w: Wake) {
        let w = Arc::new(w);
        let seen = w.generation();
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || w2.wait(seen, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        w.bump();
        assert!(t.join().unwrap());
        assert!(!w.wait(w.generation(), Duration::from_millis(1)));
    }

    #[test]
    fn a_bump_wakes_a_waiter_in_this_process() {
        a_bump_wakes_a_waiter_before_its_timeout(Wake::with_word(None));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_bump_wakes_a_waiter_through_the_shared_word() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        std::fs::write(&db, b"").unwrap();
        let w = Wake::open(&db);
        assert!(w.is_shared());
        a_bump_wakes_a_waiter_before_its_timeout(w);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_a_second_unbumped_commit_with_the_counter_standing_still_opens_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        std::fs::write(&db, b"").unwrap();
        let (mine, theirs) = (Wake::open(&db), Wake::open(&db));
        let base = Duration::from_millis(2);
        let quiet = || mine.poll(base, Duration::from_secs(1)) > base;
        assert!(quiet());
        // A commit whose bump comes late: its bump clears the suspicion.
        mine.unbumped_commit_seen(mine.generation());
        theirs.bump();
        std::thread::sleep(FOREIGN_CONFIRM);
        mine.unbumped_commit_seen(mine.generation());
        assert!(quiet(), "a late bump opened the window");
        // Two commits without a bump, too close together: not yet.
        mine.unbumped_commit_seen(mine.generation());
        assert!(
            quiet(),
            "the window opened before the counter stood still long enough"
        );
        // The counter stood still through FOREIGN_CONFIRM: commits without ferrymq.
        std::thread::sleep(FOREIGN_CONFIRM);
        mine.unbumped_commit_seen(mine.generation());
        assert!(!quiet(), "the window stayed shut");
        assert_eq!(
            theirs.poll(base, Duration::from_secs(1)),
            base,
            "the window is the file's"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn another_queues_bump_notifies_async_receives_through_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        std::fs::write(&db, b"").unwrap();
        // Two wakes of one file stand for two processes.
        let (mine, theirs) = (Wake::open(&db), Wake::open(&db));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let notified = mine.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Let the watcher start sleeping on the word.
            tokio::time::sleep(Duration::from_millis(50)).await;
            theirs.bump();
            tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .expect("the other queue's bump never reached this one's async receives");
        });
    }
}
