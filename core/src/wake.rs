//! In-process wake-ups: a commit that may have made something deliverable bumps a
//! generation counter; blocked receivers wait on a condvar, async ones on a `Notify`.
//! Commits by other processes are noticed by polling `PRAGMA data_version` instead.

use crate::inner::lock;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Wake {
    generation: Mutex<u64>,
    cv: Condvar,
    pub notify: tokio::sync::Notify,
}

impl Wake {
    pub fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    pub fn bump(&self) {
        *lock(&self.generation) += 1;
        self.cv.notify_all();
        self.notify.notify_waiters();
    }

    /// Waits up to `timeout` for a bump after `seen`; true if one happened.
    pub fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let guard = lock(&self.generation);
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |g| *g == seen)
            .unwrap_or_else(|e| e.into_inner());
        *guard != seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_bump_wakes_a_waiter_before_its_timeout() {
        let w = Arc::new(Wake::default());
        let seen = w.generation();
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || w2.wait(seen, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        w.bump();
        assert!(t.join().unwrap());
        assert!(!w.wait(w.generation(), Duration::from_millis(1)));
    }
}
