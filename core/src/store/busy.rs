//! The busy handler: what a connection does while another one holds the write lock.
//!
//! SQLite's own handler (what `busy_timeout` installs) sleeps 1, 2, 5, 10, 15, 20, 25,
//! 25, 25, 50, 50, 100 ms between tries. Under steady contention from other processes,
//! whose transactions leave only short gaps, a writer that started waiting keeps waking
//! up inside someone else's transaction: measured, a consumer process waited 330 ms for
//! its first claim while another process took every message. Retrying every 50 µs at
//! first, and never less often than every 1 ms, takes one of the next gaps instead.

use std::time::{Duration, Instant};

const FIRST_PAUSE: Duration = Duration::from_micros(50);
const MAX_PAUSE: Duration = Duration::from_millis(1);

/// Longer than any pause plus a try: a call after such a gap belongs to a new locking
/// event even if SQLite did not reset its count (it resets per step, and only after a
/// prepare, so a wait inside a prepare can inherit the last step's count).
const NEW_EVENT_GAP: Duration = Duration::from_millis(50);

/// A handler that retries until `timeout` has passed since the lock was first found
/// held, then gives up (the statement fails with SQLITE_BUSY, reported as `Busy`).
pub(crate) fn handler(timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    let mut last = since;
    move |tries| {
        let now = Instant::now();
        if tries == 0 || now.duration_since(last) > NEW_EVENT_GAP {
            since = now;
        }
        let Some(left) = timeout
            .checked_sub(now.duration_since(since))
            .filter(|l| !l.is_zero())
        else {
            return false;
        };
        WAITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(pause(tries).min(left));
        last = Instant::now();
        true
    }
}

/// Busy-handler sleeps of every connection in the process (a metric: lock contention).
static WAITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn waits() -> u64 {
    WAITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// 50, 100, 200, 400, 800 µs, then 1 ms.
pub(crate) fn pause(tries: i32) -> Duration {
    let doublings = tries.clamp(0, 5) as u32;
    (FIRST_PAUSE * 2u32.pow(doublings)).min(MAX_PAUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_a_millisecond() {
        let pauses: Vec<u128> = (0..8).map(|t| pause(t).as_micros()).collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn gives_up_once_the_timeout_has_passed_since_the_first_try() {
        let mut h = handler(Duration::from_millis(20));
        let started = Instant::now();
        let mut tries = 0;
        while h(tries) {
            tries += 1;
        }
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(20),
            "gave up after {waited:?}"
        );
        // SQLite's own handler gets 4 tries in 20 ms (it sleeps 1, 2, 5 and 10 ms).
        assert!(tries >= 5, "only {tries} tries in {waited:?}");
        // A new locking event starts its own clock, whether SQLite says so (count 0) or
        // a count left over from an earlier event comes after a long gap.
        assert!(h(0));
        std::thread::sleep(NEW_EVENT_GAP * 2);
        assert!(
            h(tries + 1),
            "a stale count after a long gap gave up at once"
        );
    }
}
