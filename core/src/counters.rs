//! What this process did through one queue handle, counted since it opened: messages
//! published, acked, nacked, dead-lettered and redriven, check-back answers, group-commit
//! batch sizes, and busy waits. The file keeps rows, not running totals (a total row
//! updated by every publish would cost one more page per commit), so these counters live
//! in memory, the way every Prometheus client keeps its counters: each process exports
//! its own, and Prometheus sums them over processes. They start at zero when the handle
//! opens (a counter reset, which `rate()` handles).
//!
//! An event is counted once its commit succeeded; in a `Transaction`, at its commit.

use crate::inner::lock;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a counter counts. Labels: the topic, and the consumer group where there is one
/// (empty otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    Published,
    Acked,
    Nacked,
    /// A nack that used the last retry (lease expiries that kill a message are counted
    /// by the file's `dead` gauge only: they happen inside whichever process claims next).
    DeadLettered,
    Redriven,
    CheckCommit,
    CheckRollback,
    CheckUnknown,
}

/// Upper bounds of the group-commit batch-size histogram's buckets (`+Inf` follows).
pub const BATCH_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

#[derive(Default)]
pub(crate) struct Counters {
    events: Mutex<BTreeMap<(Event, String, String), u64>>,
    /// Per bucket of `BATCH_BUCKETS`, then the overflow bucket.
    batches: [AtomicU64; BATCH_BUCKETS.len() + 1],
    batch_writes: AtomicU64,
}

/// A copy of the counters at one moment, for rendering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// (event, topic, consumer group) -> count.
    pub events: BTreeMap<(Event, String, String), u64>,
    /// Batches per bucket of `BATCH_BUCKETS` (not cumulative), then those above the last.
    pub batches: Vec<u64>,
    /// Writes committed through group commit (the histogram's sum).
    pub batch_writes: u64,
    /// Busy-handler waits of every connection in this process.
    pub busy_waits: u64,
}

impl Counters {
    pub(crate) fn add(&self, event: Event, topic: &str, group: &str, n: u64) {
        if n == 0 {
            return;
        }
        *lock(&self.events)
            .entry((event, topic.to_owned(), group.to_owned()))
            .or_default() += n;
    }

    pub(crate) fn add_all(&self, events: impl IntoIterator<Item = (Event, String, String)>) {
        let mut map = lock(&self.events);
        for key in events {
            *map.entry(key).or_default() += 1;
        }
    }

    pub(crate) fn batch(&self, size: usize) {
        let size = size as u64;
        let bucket = BATCH_BUCKETS
            .iter()
            .position(|&le| size <= le)
            .unwrap_or(BATCH_BUCKETS.len());
        self.batches[bucket].fetch_add(1, Ordering::Relaxed);
        self.batch_writes.fetch_add(size, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            events: lock(&self.events).clone(),
            batches: self
                .batches
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            batch_writes: self.batch_writes.load(Ordering::Relaxed),
            busy_waits: crate::store::busy::waits(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_land_in_the_first_bucket_that_holds_them() {
        let c = Counters::default();
        for size in [1, 2, 3, 128, 129, 1000] {
            c.batch(size);
        }
        let s = c.snapshot();
        assert_eq!(s.batches, vec![1, 1, 1, 0, 0, 0, 0, 1, 2]);
        assert_eq!(s.batch_writes, 1 + 2 + 3 + 128 + 129 + 1000);
    }

    #[test]
    fn events_add_up_per_label_set() {
        let c = Counters::default();
        c.add(Event::Acked, "t", "g", 2);
        c.add(Event::Acked, "t", "g", 1);
        c.add(Event::Acked, "t", "h", 0);
        let s = c.snapshot();
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[&(Event::Acked, "t".into(), "g".into())], 3);
    }
}
