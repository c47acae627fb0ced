//! Keeping leases alive while a worker's handler runs. The worker registers every
//! delivery it holds, from the claim until it is settled (also those still waiting their
//! turn in a batch), and one thread per worker renews each at about a third of its lease,
//! all renewals that are due in one write transaction. A delivery whose lease was lost
//! meanwhile is forgotten; its handler's settle reports `LeaseLost` as before.
//!
//! The renewal interval is real time (it paces a thread), the renewed lease end is the
//! queue's clock read inside the write transaction, like every lease end.

use crate::error::{Error, ErrorKind, Result};
use crate::inner::{Inner, lock};
use crate::model::Delivery;
use crate::store::settle;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// After a renewal failed for a reason that may pass (a busy file), try again this soon,
/// or at the normal interval if that is sooner.
const RETRY: Duration = Duration::from_millis(100);
/// The longest the thread sleeps without looking at its list.
const IDLE: Duration = Duration::from_secs(1);

/// (message id, group id, lease token): one holding of one delivery.
type Key = (i64, i64, i64);

struct Held {
    delivery: Delivery,
    lease_ms: i64,
    next: Instant,
}

#[derive(Default)]
struct State {
    held: HashMap<Key, Held>,
    stopping: bool,
}

#[derive(Default)]
pub(crate) struct Heartbeat {
    state: Mutex<State>,
    cv: Condvar,
}

fn key(d: &Delivery) -> Key {
    (d.message_id, d.group_id, d.lease_token)
}

/// A third of the lease, so that two renewals may fail (a busy file) before it runs out.
fn interval(lease_ms: i64) -> Duration {
    Duration::from_millis((lease_ms / 3).max(1) as u64)
}

/// Reports a failed renewal that was not a lost lease (which is expected: the handler
/// took too long once, or the delivery was settled just now).
pub(crate) type Report = dyn Fn(&Error) + Send + Sync;

impl Heartbeat {
    /// Starts the renewing thread; it runs until `stop`.
    pub fn start(
        inner: &Arc<Inner>,
        name: String,
        report: Arc<Report>,
    ) -> Result<(Arc<Heartbeat>, JoinHandle<()>)> {
        let hb = Arc::new(Heartbeat::default());
        let (me, inner) = (Arc::clone(&hb), Arc::clone(inner));
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || me.run(&inner, &*report))
            .map_err(|e| Error::Storage(format!("cannot start a heartbeat thread: {e}")))?;
        Ok((hb, thread))
    }

    /// Keeps renewing `ds`, claimed with a lease of `lease_ms`, until `release`.
    pub fn hold(&self, ds: &[Delivery], lease_ms: i64) {
        let next = Instant::now() + interval(lease_ms);
        let mut state = lock(&self.state);
        for d in ds {
            let delivery = d.handle();
            let held = Held {
                delivery,
                lease_ms,
                next,
            };
            state.held.insert(key(d), held);
        }
        self.cv.notify_one();
    }

    pub fn release(&self, d: &Delivery) {
        lock(&self.state).held.remove(&key(d));
    }

    pub fn stop(&self) {
        lock(&self.state).stopping = true;
        self.cv.notify_one();
    }

    fn run(&self, inner: &Arc<Inner>, report: &Report) {
        while let Some(due) = self.wait_for_due() {
            let results = renew(inner, &due);
            let now = Instant::now();
            let mut state = lock(&self.state);
            for ((k, lease_ms), r) in due.iter().map(|d| (key(&d.0), d.1)).zip(results) {
                match r {
                    Ok(_) => {
                        if let Some(h) = state.held.get_mut(&k) {
                            h.next = now + interval(lease_ms);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::LeaseLost => {
                        state.held.remove(&k);
                    }
                    Err(e) if e.kind() == ErrorKind::Closed => return,
                    Err(e) => {
                        if let Some(h) = state.held.get_mut(&k) {
                            h.next = now + interval(lease_ms).min(RETRY);
                        }
                        drop(state);
                        report(&e);
                        state = lock(&self.state);
                    }
                }
            }
        }
    }

    /// Sleeps until some holding is due for renewal; `None` once stopped.
    fn wait_for_due(&self) -> Option<Vec<(Delivery, i64)>> {
        let mut state = lock(&self.state);
        loop {
            if state.stopping {
                return None;
            }
            let now = Instant::now();
            let due: Vec<(Delivery, i64)> = state
                .held
                .values()
                .filter(|h| h.next <= now)
                .map(|h| (h.delivery.clone(), h.lease_ms))
                .collect();
            if !due.is_empty() {
                return Some(due);
            }
            let first = state.held.values().map(|h| h.next).min();
            let sleep = first.map_or(IDLE, |t| t.saturating_duration_since(now).min(IDLE));
            state = self
                .cv
                .wait_timeout(state, sleep)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Renews every due holding in one write transaction; one result per holding, in order.
fn renew(inner: &Arc<Inner>, due: &[(Delivery, i64)]) -> Vec<Result<i64>> {
    let done = inner.write(false, |c| {
        // The lease end is read under the write lock: a wait for it must not eat the lease.
        let now = inner.now();
        Ok(due
            .iter()
            .map(|(d, lease_ms)| settle::extend(c, d, *lease_ms, now))
            .collect::<Vec<_>>())
    });
    match done {
        Ok(results) => results,
        Err(e) => vec![Err(e); due.len()],
    }
}
