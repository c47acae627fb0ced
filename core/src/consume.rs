//! Consuming a group one delivery at a time, for every language: `Consumer` is the loop
//! each binding drives (Python's iterators, Node's `for await`, Kotlin's `Flow`), and
//! `Queue::consume` is Rust's blocking iterator over it.
//!
//! A consumer keeps the lease of every delivery it handed out alive (`heartbeat.rs`, one
//! thread per consumer) from the claim until the caller is done with it (`done`, or
//! `settle` through the consumer), so a handler slower than the lease does not see its
//! message handed to another consumer. The deliveries of a batch (`max` above 1) wait in a
//! buffer under the same heartbeat. Closing (or dropping) the consumer stops the
//! heartbeat and puts back, at once and without counting an attempt, every delivery it
//! still holds that nobody settled: breaking out of a loop loses no time to a lease.
//! The wait of one `next` when none is given is `defaults::CONSUME_WAIT`, here only.

use crate::error::{Error, ErrorKind, Result};
use crate::heartbeat::Heartbeat;
use crate::inner::lock;
use crate::model::Delivery;
use crate::options::ReceiveOptions;
use crate::queue::Queue;
use crate::receive;
use crate::store;
use crate::worker::Settled;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a consumer asks each claim for. A missing field is the core's default: `max` 1,
/// `wait` `defaults::CONSUME_WAIT`, `lease` the group's, `concurrency` 1.
#[derive(Debug, Clone, Default)]
pub struct ConsumerOptions {
    pub max: Option<usize>,
    pub wait: Option<Duration>,
    pub lease: Option<Duration>,
    /// How many loops share the consumer when a binding runs a worker on its event loop
    /// (Python's `run_worker`, Node's `worker`): 1 to 256, as a threaded worker's threads.
    pub concurrency: Option<usize>,
}

#[derive(Default)]
struct Held {
    /// Claimed and not handed out yet (the rest of a batch).
    buffer: VecDeque<Delivery>,
    /// Handed out and not done with: put back on close unless settled meanwhile.
    out: Vec<Delivery>,
}

/// A group's deliveries one at a time, their leases kept alive while held; see the
/// module header. Safe to share between threads (Node's and Python's concurrent loops
/// share one).
pub struct Consumer {
    q: Queue,
    group: String,
    receive: ReceiveOptions,
    heartbeat: Arc<Heartbeat>,
    beating: Mutex<Option<JoinHandle<()>>>,
    held: Mutex<Held>,
    closed: AtomicBool,
    /// The process that started the heartbeat: a forked child has no such thread.
    pid: u32,
    /// The last renewal that failed for a reason that may pass (the file busy past the
    /// timeout, a storage error); a lease already lost is not one.
    renewal_error: Arc<Mutex<Option<Error>>>,
    concurrency: usize,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.group)
            .field("closed", &self.closed.load(Ordering::Acquire))
            .finish()
    }
}

fn closed() -> Error {
    Error::Closed("the consumer was closed".into())
}

impl Queue {
    /// A consumer of `group` (see [`Consumer`]). A missing or zero `wait` is the default
    /// wait: a consumer always waits, as a worker does, rather than poll in a loop. The
    /// group is looked up on the first `next`.
    pub fn consumer(&self, group: &str, options: ConsumerOptions) -> Result<Consumer> {
        crate::validate::name("consumer group", group)?;
        let wait = options
            .wait
            .filter(|w| !w.is_zero())
            .unwrap_or(crate::defaults::CONSUME_WAIT);
        let mut receive = ReceiveOptions::new()
            .max(options.max.unwrap_or(1))
            .wait(wait);
        if let Some(lease) = options.lease {
            receive = receive.lease(lease);
        }
        receive.validate()?;
        let concurrency = crate::worker::check_concurrency(options.concurrency.unwrap_or(1))?;
        self.inner.check_open()?;
        // A failed renewal also shows as LeaseLost when the holder settles; kept here so
        // a caller can tell a lost lease from a slow handler before that.
        let renewal_error = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&renewal_error);
        let (heartbeat, beating) = Heartbeat::start(
            &self.inner,
            format!("ferrymq-consumer-{group}"),
            Arc::new(move |e: &Error| *lock(&seen) = Some(e.clone())),
        )?;
        Ok(Consumer {
            q: self.clone(),
            group: group.to_owned(),
            receive,
            heartbeat,
            beating: Mutex::new(Some(beating)),
            held: Mutex::new(Held::default()),
            closed: AtomicBool::new(false),
            pid: std::process::id(),
            renewal_error,
            concurrency,
        })
    }

    /// The deliveries of `group` as a blocking iterator over [`Queue::consumer`] with the
    /// same options (a batch waits in the consumer's buffer; a missing or zero wait is the
    /// default); ends (`None`) once the queue is closed. Each item still has to be acked
    /// or nacked; its lease is renewed until the iterator moves on or is dropped (dropping
    /// puts an unsettled one back).
    pub fn consume(&self, group: &str, options: ConsumerOptions) -> Result<Consume> {
        Ok(Consume {
            consumer: self.consumer(group, options)?,
            last: None,
        })
    }
}

impl Consumer {
    /// The next delivery, waiting up to the consumer's wait: `None` if nothing came in
    /// that time. `Closed` once the consumer or its queue is closed.
    pub fn next(&self) -> Result<Option<Delivery>> {
        self.next_interruptible(None)
    }

    /// `next` that asks `interrupted` every 50 ms while it waits and returns `None` once
    /// that says yes (Ctrl-C in Python).
    pub fn next_interruptible(
        &self,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<Option<Delivery>> {
        if let Some(d) = self.buffered()? {
            return Ok(Some(d));
        }
        let (ds, lease_ms) =
            receive::receive_leased(&self.q.inner, &self.group, &self.receive, interrupted)?;
        Ok(self.take(ds, lease_ms))
    }

    /// What `next` would hand out without waiting: the rest of a batch, or a claim of
    /// what is ready now (Node claims on its JS thread first, like `receive`).
    pub fn try_next(&self) -> Result<Option<Delivery>> {
        if let Some(d) = self.buffered()? {
            return Ok(Some(d));
        }
        let now = self.receive.clone().wait(Duration::ZERO);
        let (ds, lease_ms) = receive::receive_leased(&self.q.inner, &self.group, &now, None)?;
        Ok(self.take(ds, lease_ms))
    }

    /// `next` for tokio: the wait holds no thread; a cancelled call puts back what its
    /// claim took.
    pub async fn next_async(&self) -> Result<Option<Delivery>> {
        if let Some(d) = self.buffered()? {
            return Ok(Some(d));
        }
        let (ds, lease_ms) =
            receive::receive_async_leased(&self.q.inner, &self.group, &self.receive).await?;
        Ok(self.take(ds, lease_ms))
    }

    fn buffered(&self) -> Result<Option<Delivery>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let mut held = lock(&self.held);
        let d = held.buffer.pop_front();
        if let Some(d) = &d {
            held.out.push(d.handle());
        }
        Ok(d)
    }

    /// Holds a fresh claim under the heartbeat and hands out its first delivery. A claim
    /// that lands after `close` is put back at once.
    fn take(&self, ds: Vec<Delivery>, lease_ms: i64) -> Option<Delivery> {
        if ds.is_empty() {
            return None;
        }
        if self.closed.load(Ordering::Acquire) {
            self.put_back(&ds);
            return None;
        }
        self.heartbeat.hold(&ds, lease_ms);
        let mut held = lock(&self.held);
        held.buffer.extend(ds);
        let d = held.buffer.pop_front()?;
        held.out.push(d.handle());
        Some(d)
    }

    /// The caller is done with `d` (settled it, or leaves it to its lease): its lease is
    /// no longer renewed and `close` will not put it back.
    pub fn done(&self, d: &Delivery) {
        self.heartbeat.release(d);
        let mut held = lock(&self.held);
        held.out.retain(|h| {
            (h.message_id, h.group_id, h.lease_token) != (d.message_id, d.group_id, d.lease_token)
        });
    }

    /// `Queue::settle` (ack on `Ok`, nack with the reason on `Err`), then `done`.
    pub fn settle(
        &self,
        d: &Delivery,
        outcome: std::result::Result<(), String>,
    ) -> Result<Settled> {
        let settled = self.q.settle(d, outcome);
        self.done(d);
        settled
    }

    /// [`settle`](Self::settle) on one of tokio's blocking threads, for callers on an event
    /// loop (Python's `Consumer.settle_async`).
    pub async fn settle_async(
        self: Arc<Self>,
        d: Delivery,
        outcome: std::result::Result<(), String>,
    ) -> Result<Settled> {
        // Asked on the caller's thread: the write runs on one of tokio's.
        self.q.inner.refuse_inside_transaction()?;
        crate::queue::blocking(move || self.settle(&d, outcome)).await
    }

    /// Stops renewing and puts back every delivery still held that nobody settled (at
    /// once, without counting an attempt). Later `next` calls fail with `Closed`. Closing
    /// twice does nothing.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.heartbeat.stop();
        if self.pid != std::process::id() {
            // Forked: the heartbeat thread and the leases are the parent's.
            if let Some(t) = lock(&self.beating).take() {
                std::mem::forget(t);
            }
            return;
        }
        if let Some(t) = lock(&self.beating).take() {
            let _ = t.join();
        }
        let Held { buffer, out } = std::mem::take(&mut *lock(&self.held));
        let all: Vec<Delivery> = out.into_iter().chain(buffer).collect();
        self.put_back(&all);
    }

    /// Best effort: a settled delivery is not in flight under its token any more and is
    /// left alone; if the write fails the leases run out and the messages come back.
    fn put_back(&self, ds: &[Delivery]) {
        if ds.is_empty() || self.q.inner.check_open().is_err() {
            return;
        }
        let _ = self.q.inner.write(true, |c| {
            ds.iter().try_for_each(|d| store::settle::release(c, d))
        });
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How many loops an event-loop worker runs over this consumer
    /// (`ConsumerOptions::concurrency`).
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The last lease renewal that failed, as `Worker::last_error` has it: the deliveries
    /// it concerned may be handed to another consumer once their lease runs out.
    pub fn last_error(&self) -> Option<Error> {
        lock(&self.renewal_error).clone()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.close();
    }
}

/// `Queue::consume`: yields the group's deliveries forever, waiting as long as nothing
/// comes; ends (`None`) once the queue is closed. Moving on to the next item stops
/// renewing the previous one's lease.
#[derive(Debug)]
pub struct Consume {
    consumer: Consumer,
    last: Option<Delivery>,
}

impl Consume {
    /// The consumer behind the iterator.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }
}

impl Iterator for Consume {
    type Item = Result<Delivery>;

    fn next(&mut self) -> Option<Result<Delivery>> {
        if let Some(d) = self.last.take() {
            self.consumer.done(&d);
        }
        loop {
            match self.consumer.next() {
                Ok(Some(d)) => {
                    self.last = Some(d.handle());
                    return Some(Ok(d));
                }
                Ok(None) => {}
                Err(e) if e.kind() == ErrorKind::Closed => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
