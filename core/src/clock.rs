//! Time as milliseconds since the Unix epoch, read through a [`Clock`] so that tests can
//! step through a 16-retry schedule without sleeping.
//!
//! Every scheduling decision (lease expiry, retry delay, `deliver_at`, half-message checks,
//! retention) reads the queue's clock. Waiting (how long `receive(wait=...)` sleeps) uses
//! real time, because the wait is about the caller's patience, not the queue's schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;

    /// Whether this clock is real time: a waiting receive may then sleep until the next
    /// due time it knows of, where under another clock it looks every `poll_interval`.
    fn is_wall_clock(&self) -> bool {
        false
    }
}

/// The wall clock. The default of every queue.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        system_time_to_ms(SystemTime::now()).unwrap_or(0)
    }

    fn is_wall_clock(&self) -> bool {
        true
    }
}

/// A clock that only moves when told to. For tests and the shared scenarios; it is set
/// only through [`crate::Options::with_manual_clock`], never by default.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        ManualClock {
            now: Arc::new(AtomicI64::new(start_ms)),
        }
    }

    /// Starts at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now_ms())
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(duration_to_ms(by), Ordering::SeqCst);
    }

    pub fn set_ms(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// Saturating: a duration beyond `i64::MAX` ms (292 million years) is clamped.
pub fn duration_to_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub fn ms_to_system_time(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// `None` for times before the epoch or past year 292 million.
pub fn system_time_to_ms(t: SystemTime) -> Option<i64> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_secs(10));
        assert_eq!(c.now_ms(), 11_000);
        let shared = c.clone();
        shared.set_ms(5);
        assert_eq!(c.now_ms(), 5);
    }

    #[test]
    fn ms_round_trips_through_system_time() {
        let t = ms_to_system_time(1_700_000_000_123);
        assert_eq!(system_time_to_ms(t), Some(1_700_000_000_123));
        assert_eq!(system_time_to_ms(UNIX_EPOCH - Duration::from_secs(1)), None);
    }
}
