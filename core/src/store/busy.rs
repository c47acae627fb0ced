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

/// A handler that retries until `timeout` has passed since the lock was first found
/// held, then gives up (the statement fails with SQLITE_BUSY, reported as `Busy`).
pub(crate) fn handler(timeout: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    move |tries| {
        if tries == 0 {
            since = Instant::now();
        }
        let Some(left) = timeout
            .checked_sub(since.elapsed())
            .filter(|l| !l.is_zero())
        else {
            return false;
        };
        std::thread::sleep(pause(tries).min(left));
        true
    }
}

/// 50, 100, 200, 400, 800 µs, then 1 ms.
fn pause(tries: i32) -> Duration {
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
        assert!(tries > 15, "only {tries} tries in {waited:?}");
        // A new locking event starts its own clock.
        assert!(h(0));
    }
}
