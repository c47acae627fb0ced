//! Handler-driven consumption: `settle` turns a handler's outcome into an ack or a nack,
//! and `Worker` runs a handler on `concurrency` threads until stopped. Bindings pass their
//! language's callables in and convert exceptions to `Err(text)`; the decision of what a
//! failure means (nack with its text, retried on the group's schedule) lives here.

use crate::error::{Error, ErrorKind, Result};
use crate::model::Delivery;
use crate::options::ReceiveOptions;
use crate::queue::Queue;
use crate::store::settle::NackOutcome;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What `settle` did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acked,
    /// Nacked; it will be retried.
    Retrying,
    /// Nacked past its last retry: in the dead-letter queue now.
    Dead,
    /// The lease was lost meanwhile (another consumer has the message): nothing done.
    LeaseLost,
}

impl Settled {
    /// "acked", "retrying", "dead" or "lease_lost": how bindings report it.
    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Acked => "acked",
            Settled::Retrying => "retrying",
            Settled::Dead => "dead",
            Settled::LeaseLost => "lease_lost",
        }
    }
}

/// A handler for `Queue::worker`: `Ok` acks, `Err(reason)` nacks with the reason.
pub type Handler = dyn Fn(&Delivery) -> std::result::Result<(), String> + Send + Sync;

/// How long one receive of a worker waits before it looks at its stop flag again.
const WORKER_WAIT: Duration = Duration::from_millis(200);
const MAX_CONCURRENCY: usize = 256;

impl Queue {
    /// Acks on `Ok`, nacks with the reason on `Err`. A lost lease is reported, not an
    /// error: the message is already someone else's.
    pub fn settle(
        &self,
        delivery: &Delivery,
        outcome: std::result::Result<(), String>,
    ) -> Result<Settled> {
        let done = match outcome {
            Ok(()) => self.ack(delivery).map(|()| Settled::Acked),
            Err(reason) => self.nack_outcome(delivery, &reason, None).map(|o| match o {
                NackOutcome::RetryAt(_) => Settled::Retrying,
                NackOutcome::Dead => Settled::Dead,
            }),
        };
        match done {
            Err(e) if e.kind() == ErrorKind::LeaseLost => Ok(Settled::LeaseLost),
            other => other,
        }
    }

    /// Runs `handler` for every delivery of `group` on `concurrency` threads until
    /// `Worker::stop`. A handler that fails or panics nacks its delivery with the text.
    pub fn worker<F>(
        &self,
        group: &str,
        handler: F,
        concurrency: usize,
        receive: ReceiveOptions,
    ) -> Result<Worker>
    where
        F: Fn(&Delivery) -> std::result::Result<(), String> + Send + Sync + 'static,
    {
        crate::validate::name("consumer group", group)?;
        if concurrency == 0 || concurrency > MAX_CONCURRENCY {
            return Err(Error::invalid(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"
            )));
        }
        receive.validate()?;
        // A worker always waits (a zero wait would poll in a loop), but never longer than
        // it takes to notice `stop`.
        let wait = if receive.wait.is_zero() {
            WORKER_WAIT
        } else {
            receive.wait.min(WORKER_WAIT)
        };
        let receive = receive.wait(wait);
        // Fail here, not in a thread, on a group that does not exist.
        let conn = self.inner.conn()?;
        self.inner.group_id(&conn, group)?;
        drop(conn);
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let threads = (0..concurrency)
            .map(|i| {
                let (q, stop, handler) = (self.clone(), Arc::clone(&stop), Arc::clone(&handler));
                let (group, receive) = (group.to_owned(), receive.clone());
                std::thread::Builder::new()
                    .name(format!("ferrymq-worker-{group}-{i}"))
                    .spawn(move || work(&q, &group, &*handler, &receive, &stop))
                    .map_err(|e| Error::Storage(format!("cannot start a worker thread: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Worker { stop, threads })
    }
}

/// Runs one delivery through a handler, turning a panic into a failure.
pub fn call_handler(handler: &Handler, d: &Delivery) -> std::result::Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| handler(d))) {
        Ok(r) => r,
        Err(panic) => Err(format!(
            "handler panicked: {}",
            crate::error::panic_text(&*panic)
        )),
    }
}

fn work(q: &Queue, group: &str, handler: &Handler, receive: &ReceiveOptions, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match q.receive(group, receive.clone()) {
            Ok(ds) => {
                for d in ds {
                    let outcome = call_handler(handler, &d);
                    // A settle that fails (busy file, closed queue) leaves the delivery to
                    // its lease: it comes back.
                    let _ = q.settle(&d, outcome);
                }
            }
            Err(e) if e.kind() == ErrorKind::Closed => return,
            Err(_) => std::thread::sleep(WORKER_WAIT),
        }
    }
}

/// Threads running a handler; `stop` ends them after the deliveries in hand and waits;
/// dropping only asks them to end.
pub struct Worker {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl Worker {
    /// Asks every thread to stop and waits for the deliveries in hand to be settled.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // Stopped from inside a handler: that thread ends by itself after it returns.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    pub fn is_running(&self) -> bool {
        !self.threads.is_empty()
    }
}

impl Drop for Worker {
    /// Signals the threads and does not wait: a binding may drop a worker while holding
    /// a lock its handlers need (Python's GIL), and joining then would deadlock.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
