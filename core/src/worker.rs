//! Handler-driven consumption: `settle` turns a handler's outcome into an ack or a nack,
//! and `Worker` runs a handler on `concurrency` threads until stopped. Bindings pass their
//! language's callables in and convert exceptions to `Err(text)`; the decision of what a
//! failure means (nack with its text, retried on the group's schedule) lives here.
//!
//! While a handler runs, the worker's heartbeat (`heartbeat.rs`) renews the lease of every
//! delivery it holds, so a handler slower than the lease, or a batch whose last delivery
//! waits for the others, does not see its message handed out again. Errors of the worker's
//! own calls go to the error hook and `Worker::last_error`; a busy file is waited out, and
//! any other error that repeats on three tries in a row stops the worker instead of
//! letting it spin.

use crate::error::{Error, ErrorKind, Result};
use crate::heartbeat::Heartbeat;
use crate::inner::lock;
use crate::model::Delivery;
use crate::options::ReceiveOptions;
use crate::queue::Queue;
use crate::retry::AfterFailure;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// Hears every error a worker meets (receive, settle, lease renewal). It runs on a
/// worker thread: keep it short. A panic in it is ignored.
pub type ErrorHook = dyn Fn(&Error) + Send + Sync;

/// How long one receive of a worker waits before it looks at its stop flag again.
const WORKER_WAIT: Duration = Duration::from_millis(200);
const MAX_CONCURRENCY: usize = 256;
/// The threads of a worker, or the loops of a binding's event-loop worker over one
/// `Consumer` (`ConsumerOptions::concurrency`): 1 to 256.
pub(crate) fn check_concurrency(n: usize) -> Result<usize> {
    if n == 0 || n > MAX_CONCURRENCY {
        return Err(Error::invalid(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY}, got {n}"
        )));
    }
    Ok(n)
}

/// A worker thread that meets this many non-transient errors in a row (with a pause
/// that doubles between them: 0.2 s, then 0.4 s) stops the worker.
const GIVE_UP_AFTER: u32 = 3;

/// How a worker runs: its threads, what each receive asks for, and who hears of errors.
#[derive(Clone)]
pub struct WorkerOptions {
    concurrency: usize,
    receive: ReceiveOptions,
    on_error: Option<Arc<ErrorHook>>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            receive: ReceiveOptions::new(),
            on_error: None,
        }
    }
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("concurrency", &self.concurrency)
            .field("receive", &self.receive)
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl WorkerOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Threads running the handler (1 to 256; default 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// What each receive asks for (`max`, `lease`; `wait` is capped at 200 ms).
    pub fn receive(mut self, o: ReceiveOptions) -> Self {
        self.receive = o;
        self
    }

    /// Called with every error the worker meets; see [`ErrorHook`].
    pub fn on_error(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }
}

/// Errors that pass by themselves: a file busy past busy_timeout, a lease another
/// consumer took over. Anything else (a corrupt or unreadable file, a dropped table, a
/// full disk) is counted, and stops the worker when it keeps coming.
fn transient(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Busy | ErrorKind::LeaseLost)
}

/// What the worker's threads share.
struct Shared {
    stop: AtomicBool,
    /// Work threads still running; the last one out stops the heartbeat.
    live: AtomicUsize,
    last_error: Mutex<Option<Error>>,
    on_error: Option<Arc<ErrorHook>>,
    heartbeat: OnceLock<Arc<Heartbeat>>,
}

impl Shared {
    fn report(&self, e: &Error) {
        *lock(&self.last_error) = Some(e.clone());
        if let Some(hook) = &self.on_error {
            let _ = catch_unwind(AssertUnwindSafe(|| hook(e)));
        }
    }

    fn heartbeat(&self) -> &Heartbeat {
        self.heartbeat.get().expect("set before any thread starts")
    }

    fn thread_done(&self) {
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.heartbeat().stop();
        }
    }
}

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
                AfterFailure::RetryAt(_) => Settled::Retrying,
                AfterFailure::Dead => Settled::Dead,
            }),
        };
        match done {
            Err(e) if e.kind() == ErrorKind::LeaseLost => Ok(Settled::LeaseLost),
            other => other,
        }
    }

    /// Runs `handler` for every delivery of `group` on `concurrency` threads until
    /// `Worker::stop`: `worker_with` with the default error handling (no hook).
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
        let options = WorkerOptions::new()
            .concurrency(concurrency)
            .receive(receive);
        self.worker_with(group, handler, options)
    }

    /// Runs `handler` for every delivery of `group` until `Worker::stop`. A handler that
    /// fails or panics nacks its delivery with the text. Every delivery held (running or
    /// waiting its turn in a batch) has its lease renewed at a third of the lease until it
    /// is settled. Errors go to the hook and `Worker::last_error`; a non-transient one
    /// that keeps coming stops the worker.
    pub fn worker_with<F>(&self, group: &str, handler: F, options: WorkerOptions) -> Result<Worker>
    where
        F: Fn(&Delivery) -> std::result::Result<(), String> + Send + Sync + 'static,
    {
        crate::validate::name("consumer group", group)?;
        let WorkerOptions {
            concurrency,
            receive,
            on_error,
        } = options;
        check_concurrency(concurrency)?;
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
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            live: AtomicUsize::new(concurrency),
            last_error: Mutex::new(None),
            on_error,
            heartbeat: OnceLock::new(),
        });
        let reporter = Arc::clone(&shared);
        let (heartbeat, beating) = Heartbeat::start(
            &self.inner,
            format!("ferrymq-heartbeat-{group}"),
            Arc::new(move |e: &Error| reporter.report(e)),
        )?;
        let _ = shared.heartbeat.set(heartbeat);
        let handler: Arc<Handler> = Arc::new(handler);
        let mut threads = Vec::with_capacity(concurrency);
        for i in 0..concurrency {
            let (q, mine, handler) = (self.clone(), Arc::clone(&shared), Arc::clone(&handler));
            let (group, receive) = (group.to_owned(), receive.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ferrymq-worker-{group}-{i}"))
                .spawn(move || {
                    work(&q, &group, &*handler, &receive, &mine);
                    mine.thread_done();
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // The threads already started end on their own.
                    shared.stop.store(true, Ordering::Release);
                    shared.heartbeat().stop();
                    return Err(Error::Storage(format!("cannot start a worker thread: {e}")));
                }
            }
        }
        Ok(Worker {
            shared,
            threads,
            heartbeat: Some(beating),
            pid: std::process::id(),
        })
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

fn work(q: &Queue, group: &str, handler: &Handler, receive: &ReceiveOptions, shared: &Shared) {
    let mut failures = 0;
    while !shared.stop.load(Ordering::Acquire) {
        let step = crate::receive::receive_leased(&q.inner, group, receive, None)
            .and_then(|(ds, lease_ms)| run_batch(q, handler, shared, ds, lease_ms));
        let e = match step {
            Ok(()) => {
                failures = 0;
                continue;
            }
            // Closed by its owner: not a failure of the worker.
            Err(e) if e.kind() == ErrorKind::Closed => return,
            Err(e) => e,
        };
        shared.report(&e);
        let mut pause = WORKER_WAIT;
        if !transient(&e) {
            failures += 1;
            if failures >= GIVE_UP_AFTER {
                shared.stop.store(true, Ordering::Release);
                return;
            }
            pause *= 1 << (failures - 1);
        }
        sleep_unless_stopped(pause, &shared.stop);
    }
}

/// Runs the handler over a claimed batch in order, renewing the leases of all of it
/// until each is settled. A settle that fails for a transient reason is reported and
/// its delivery left to its lease (it comes back); any other failure ends the batch and
/// leaves the rest to their leases too.
fn run_batch(
    q: &Queue,
    handler: &Handler,
    shared: &Shared,
    ds: Vec<Delivery>,
    lease_ms: i64,
) -> Result<()> {
    let heartbeat = shared.heartbeat();
    heartbeat.hold(&ds, lease_ms);
    let mut failed = None;
    for d in &ds {
        if failed.is_none() {
            let outcome = call_handler(handler, d);
            match q.settle(d, outcome) {
                Ok(_) => {}
                Err(e) if transient(&e) => shared.report(&e),
                Err(e) => failed = Some(e),
            }
        }
        heartbeat.release(d);
    }
    failed.map_or(Ok(()), Err)
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Acquire) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// Threads running a handler, and the thread renewing their leases. `stop` ends them
/// after the deliveries in hand and waits; dropping only asks them to end. A worker that
/// met a persistent error stops by itself: `is_running` turns false and `last_error`
/// says why.
pub struct Worker {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    heartbeat: Option<JoinHandle<()>>,
    /// The process that started the threads: a forked child has none of them.
    pid: u32,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("threads", &self.threads.len())
            .field("running", &self.is_running())
            .finish()
    }
}

impl Worker {
    /// Asks every thread to stop and waits for the deliveries in hand to be settled.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if self.forget_if_forked() {
            return;
        }
        let me = std::thread::current().id();
        let mut all_joined = true;
        for t in self.threads.drain(..) {
            // Stopped from inside a handler: that thread ends by itself after it returns,
            // and the heartbeat with it.
            if t.thread().id() == me {
                all_joined = false;
            } else {
                let _ = t.join();
            }
        }
        if all_joined && let Some(h) = self.heartbeat.take() {
            self.shared.heartbeat().stop();
            let _ = h.join();
        }
    }

    /// In a forked child the threads are the parent's: joining one would wait forever.
    fn forget_if_forked(&mut self) -> bool {
        if self.pid == std::process::id() {
            return false;
        }
        self.threads.drain(..).for_each(std::mem::forget);
        if let Some(h) = self.heartbeat.take() {
            std::mem::forget(h);
        }
        true
    }

    /// False once stopped, or once every thread ended by itself (see `last_error`).
    pub fn is_running(&self) -> bool {
        self.threads.iter().any(|t| !t.is_finished())
    }

    /// The last error the worker met (also given to the hook), if any: after the worker
    /// stopped by itself, the one that stopped it.
    pub fn last_error(&self) -> Option<Error> {
        lock(&self.shared.last_error).clone()
    }
}

impl Drop for Worker {
    /// Signals the threads and does not wait: a binding may drop a worker while holding
    /// a lock its handlers need (Python's GIL), and joining then would deadlock.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.forget_if_forked();
    }
}
