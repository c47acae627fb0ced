//! Group commit: concurrent single writes (publish, ack) from one process share one
//! SQLite transaction, so eight threads publishing durably pay for one commit, not eight.
//!
//! Each caller queues its write and then waits for the writer lock. Whoever gets the lock
//! first becomes the leader: it takes every queued write, runs each inside its own
//! savepoint of one transaction, commits once, and hands each caller its own result. A
//! caller whose write a leader already committed finds its result when it gets the lock
//! and returns at once. Nobody returns before the commit that holds its write, so "a
//! publish that returned is durable" still holds; a failed write rolls back only its
//! savepoint, and a failed commit fails every write in it.

use crate::error::Result;
use crate::inner::{Inner, lock};
use crate::store;
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) type Job = Box<dyn FnOnce(&Connection) -> Result<i64> + Send>;

struct Queued {
    job: Job,
    slot: Arc<Mutex<Option<Result<i64>>>>,
    wakes: bool,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    queued: Mutex<Vec<Queued>>,
    writer: Mutex<()>,
    commits: AtomicU64,
    writes: AtomicU64,
}

impl GroupCommit {
    /// Runs `job` in a write transaction shared with whatever other writes are queued.
    pub fn run(&self, inner: &Arc<Inner>, wakes: bool, job: Job) -> Result<i64> {
        let slot = Arc::new(Mutex::new(None));
        lock(&self.queued).push(Queued {
            job,
            slot: Arc::clone(&slot),
            wakes,
        });
        let _leader = lock(&self.writer);
        if let Some(done) = lock(&slot).take() {
            return done;
        }
        let batch = std::mem::take(&mut *lock(&self.queued));
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        lead(inner, batch);
        lock(&slot)
            .take()
            .expect("the leader fills every slot of its batch")
    }
}

impl GroupCommit {
    /// (transactions, writes) run through group commit so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

fn lead(inner: &Arc<Inner>, batch: Vec<Queued>) {
    let wakes = batch.iter().any(|q| q.wakes);
    let (jobs, slots): (Vec<(Job, bool)>, Vec<_>) = batch
        .into_iter()
        .map(|q| ((q.job, q.wakes), q.slot))
        .unzip();
    let single = jobs.len() == 1;
    let outcome = inner.conn().and_then(|conn| {
        store::write_tx(&conn, |c| {
            let mut results = Vec::with_capacity(jobs.len());
            for (job, _) in jobs {
                results.push(if single {
                    job(c)
                } else {
                    in_savepoint(c, job)?
                });
            }
            Ok(results)
        })
    });
    match outcome {
        Ok(results) => {
            for (slot, r) in slots.iter().zip(results) {
                *lock(slot) = Some(r);
            }
            if wakes {
                inner.wake.bump();
            }
        }
        Err(e) => {
            for slot in &slots {
                *lock(slot) = Some(Err(e.clone()));
            }
        }
    }
}

/// Runs one job so that its failure undoes only its own changes. The outer `Result` is a
/// failure of the savepoint machinery itself, which aborts the whole transaction.
fn in_savepoint(c: &Connection, job: Job) -> Result<Result<i64>> {
    c.prepare_cached("SAVEPOINT ferrymq_job")?.execute([])?;
    let r = job(c);
    if r.is_err() {
        c.prepare_cached("ROLLBACK TO ferrymq_job")?.execute([])?;
    }
    c.prepare_cached("RELEASE ferrymq_job")?.execute([])?;
    Ok(r)
}
