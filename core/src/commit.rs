//! Group commit: concurrent single writes (publish, ack) from one process share one
//! SQLite transaction, so eight threads publishing durably pay for one commit, not eight.
//!
//! Each caller queues its write. If no leader is running, the caller becomes the leader:
//! it waits (yielding) until about as many writes are queued as it committed last time,
//! takes them all, runs them in one transaction, commits once, and answers exactly the
//! callers whose writes it committed. While several writes keep arriving it leads more
//! rounds (at most 16 or 1 ms), then hands leadership to the oldest waiting caller, so its
//! own return is never delayed for long; a single waiter gets leadership at once. A
//! waiting caller polls its own slot (yielding the CPU) for a short while and then sleeps
//! on it: on 2 vCPUs a thread that kept its vCPU busy is answered far sooner than one
//! whose vCPU went idle, and waking all waiters per commit spent a third of the CPU in the
//! scheduler. Nobody returns before the commit that holds its write, so "a publish that
//! returned is durable" still holds. A write that fails on its own (a lost lease) fails
//! alone; a storage error or a failed commit fails every write in the batch.

use crate::error::{Error, ErrorKind, Result};
use crate::inner::{Inner, lock};
use crate::store;
use crate::store::publish::Matches;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A queued write. It gets the batch's memo of subscription lookups: subscriptions
/// cannot change while the batch holds the write lock.
pub(crate) type Job = Box<dyn FnOnce(&Connection, &mut Matches) -> Result<i64> + Send>;

/// A leader hands over after this many batches or `MAX_LEAD`, whichever comes first: long
/// enough that leadership rarely changes hands while writes keep coming (a hand-over costs
/// a wake-up), short enough that the leader's own caller is not kept waiting.
const MAX_ROUNDS: usize = 16;
const MAX_LEAD: Duration = Duration::from_millis(1);

/// How long a waiting writer polls before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

enum Turn {
    Waiting,
    Lead,
    Done(Result<i64>),
}

struct Slot {
    turn: Mutex<(Turn, Sleeping)>,
    cv: Condvar,
    /// Set with every `set`, so a waiter can poll before it sleeps.
    ready: AtomicBool,
}

/// Whether the caller sleeps on the condvar: most are answered while they poll, and a
/// notify is a system call even when nobody waits.
type Sleeping = bool;

impl Slot {
    fn set(&self, turn: Turn) {
        let mut guard = lock(&self.turn);
        guard.0 = turn;
        self.ready.store(true, Ordering::Release);
        if guard.1 {
            self.cv.notify_one();
        }
    }

    /// Polls (yielding the CPU) for up to `SPIN` before the caller sleeps on the condvar:
    /// the commit it waits for usually lands within that, and a vCPU that went idle
    /// takes far longer to wake than a thread that kept it busy.
    fn spin(&self) {
        let until = Instant::now() + SPIN;
        while !self.ready.load(Ordering::Acquire) && Instant::now() < until {
            std::thread::yield_now();
        }
    }
}

struct Queued {
    job: Job,
    slot: Arc<Slot>,
    wakes: bool,
}

#[derive(Default)]
struct State {
    queued: Vec<Queued>,
    leading: bool,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    commits: AtomicU64,
    writes: AtomicU64,
    last_batch: AtomicU64,
}

impl GroupCommit {
    /// Runs `job` in a write transaction shared with whatever other writes are queued.
    pub fn run(&self, inner: &Arc<Inner>, wakes: bool, job: Job) -> Result<i64> {
        let slot = Arc::new(Slot {
            turn: Mutex::new((Turn::Waiting, false)),
            cv: Condvar::new(),
            ready: AtomicBool::new(false),
        });
        let lead_now = {
            let mut state = lock(&self.state);
            state.queued.push(Queued {
                job,
                slot: Arc::clone(&slot),
                wakes,
            });
            !std::mem::replace(&mut state.leading, true)
        };
        if lead_now {
            self.lead_rounds(inner);
        } else {
            slot.spin();
        }
        loop {
            let mut guard = lock(&slot.turn);
            match std::mem::replace(&mut guard.0, Turn::Waiting) {
                Turn::Done(result) => return result,
                Turn::Lead => {
                    slot.ready.store(false, Ordering::Relaxed);
                    drop(guard);
                    self.lead_rounds(inner);
                }
                Turn::Waiting => {
                    guard.1 = true;
                    let mut guard = slot.cv.wait(guard).unwrap_or_else(|e| e.into_inner());
                    guard.1 = false;
                }
            }
        }
    }

    /// Commits queued batches until the queue is empty (leadership ends) or the round
    /// limit is reached (leadership passes to the oldest waiting caller).
    fn lead_rounds(&self, inner: &Arc<Inner>) {
        let started = Instant::now();
        for round in 0.. {
            // When the last commit was shared, let writers that are runnable right now
            // join this one: on few cores they are waiting for the CPU, not for us.
            let target = self.last_batch.load(Ordering::Relaxed) as usize;
            if target > 1 {
                for _ in 0..8 {
                    if lock(&self.state).queued.len() >= target {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
            let batch = {
                let mut state = lock(&self.state);
                if state.queued.is_empty() {
                    state.leading = false;
                    return;
                }
                // A lone waiter commits its own write: this thread has a next write of
                // its own to make, and with few writers leading for one another would
                // leave one of them idle (2 threads: 1.0 -> 1.95 writes per commit).
                if round > 0 && state.queued.len() == 1
                    || round == MAX_ROUNDS
                    || (round > 0 && started.elapsed() >= MAX_LEAD)
                {
                    state.queued[0].slot.set(Turn::Lead);
                    return;
                }
                std::mem::take(&mut state.queued)
            };
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.last_batch.store(batch.len() as u64, Ordering::Relaxed);
            inner.counters.batch(batch.len());
            let slots: Vec<Arc<Slot>> = batch.iter().map(|q| Arc::clone(&q.slot)).collect();
            let results =
                catch_unwind(AssertUnwindSafe(|| lead(inner, batch))).unwrap_or_else(|_| {
                    // A panic must not leave callers waiting forever: answer them.
                    vec![
                        Err(Error::Storage(
                            "a queued write panicked inside ferrymq".into()
                        ));
                        slots.len()
                    ]
                });
            for (slot, r) in slots.iter().zip(results) {
                slot.set(Turn::Done(r));
            }
        }
    }

    /// (transactions, writes) run through group commit so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

fn lead(inner: &Arc<Inner>, batch: Vec<Queued>) -> Vec<Result<i64>> {
    let n = batch.len();
    let wakes = batch.iter().any(|q| q.wakes);
    let outcome = inner.conn().and_then(|conn| {
        store::write_tx(&conn, |c| {
            let mut results = Vec::with_capacity(n);
            let mut matches = Matches::default();
            for q in batch {
                let r = (q.job)(c, &mut matches);
                if let Err(e) = &r
                    && !fails_cleanly(e)
                {
                    // The job may have written part of its changes: undo the batch.
                    return Err(e.clone());
                }
                results.push(r);
            }
            Ok(results)
        })
    });
    match outcome {
        Ok(results) => {
            if wakes {
                inner.wake.bump();
            }
            results
        }
        Err(e) => vec![Err(e); n],
    }
}

/// Jobs keep one rule instead of paying for a savepoint each: they either fail before
/// writing anything, with an error of the caller's own (a lost lease, bad input, a full
/// group), or they fail with a storage error, which fails the whole batch.
fn fails_cleanly(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::LeaseLost | ErrorKind::InvalidArgument | ErrorKind::NotFound | ErrorKind::Full
    )
}
