//! In-process wake-ups: a commit that may have made something deliverable bumps a
//! generation counter; blocked receivers wait on a condvar, async ones on a `Notify`.
//! Commits by other processes are noticed by polling `PRAGMA data_version` instead.

use crate::inner::lock;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Generation {
    value: u64,
    /// Threads blocked in `wait`: a bump with none skips the condvar, whose notify is a
    /// system call even when nobody waits (one per publish otherwise).
    sleepers: usize,
}

#[derive(Default)]
pub(crate) struct Wake {
    generation: Mutex<Generation>,
    cv: Condvar,
    pub notify: tokio::sync::Notify,
}

impl Wake {
    pub fn generation(&self) -> u64 {
        lock(&self.generation).value
    }

    pub fn bump(&self) {
        let sleepers = {
            let mut g = lock(&self.generation);
            g.value += 1;
            g.sleepers
        };
        if sleepers > 0 {
            self.cv.notify_all();
        }
        self.notify.notify_waiters();
    }

    /// Waits up to `timeout` for a bump after `seen`; true if one happened.
    pub fn wait(&self, seen: u64, timeout: Duration) -> bool {
        let mut guard = lock(&self.generation);
        guard.sleepers += 1;
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |g| g.value == seen)
            .unwrap_or_else(|e| e.into_inner());
        guard.sleepers -= 1;
        guard.value != seen
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
