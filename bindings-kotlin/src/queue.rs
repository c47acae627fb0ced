//! `FfiQueue`: each method converts its arguments, calls the core, and converts the
//! result or error back. Also the retry policies and the test-only manual clock.
//!
//! A method taking and returning plain values (no seconds, `*Args` or handles) reaches
//! the Kotlin `Queue` with no Kotlin code: `uniffi-bindgen ferrymq-layer` generates its
//! `suspend` member (class `QueueCalls`) with this file's doc comment as its KDoc, so
//! those comments are written for Kotlin readers (`[group]` names a parameter).

use crate::callbacks::{self, FfiChecker, FfiHandler};
use crate::convert::{
    self, MessageArgs, PublishArgs, ReceiveArgs, count, ffi_settings, int, opt_secs, parsed, secs,
    value,
};
use crate::delivery::{FfiHalfMessage, FfiReceiveSlot, FfiWorker};
use crate::error::{FfiError, FfiResult};
use crate::handles::Registry;
use crate::keys::{self, FfiKey, FfiKeyProvider};
use crate::tx::FfiTransaction;
use crate::views::{DeadLetter, MessageInfo, MessageState, Stats, ToHost};
use ferrymq::{Clock, Options, Queue, SubscribeOptions};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::SystemTime;

ffi_settings! {
    /// How a queue opens its file; `None` keeps the core's default.
    OpenArgs for Options {
        /// "normal" or "full".
        synchronous: String => synchronous(parsed),
        busy_timeout_secs: f64 => busy_timeout(secs),
        max_payload: i64 => max_payload(int),
        idempotency_window_secs: f64 => idempotency_window(secs),
        check_after_secs: f64 => check_after(secs),
        check_interval_secs: f64 => check_interval(secs),
        check_max: i64 => check_max(int),
        poll_interval_secs: f64 => poll_interval(secs),
        max_size: i64 => max_size(int),
        #[uniffi(default = None)]
        foreign_keys: bool => foreign_keys(value),
        #[uniffi(default = None)]
        max_ready: i64 => max_ready(int);
        /// Encryption at rest: a key, or a provider of the keys to try (not both).
        #[uniffi(default = None)]
        key: Option<Arc<FfiKey>>,
        #[uniffi(default = None)]
        key_provider: Option<Arc<dyn FfiKeyProvider>>,
    }
}

impl OpenArgs {
    fn into_core(mut self) -> FfiResult<Options> {
        let mut o = self.settings()?;
        match (self.key, self.key_provider) {
            (Some(_), Some(_)) => {
                return Err(FfiError::invalid("give a key or a key provider, not both"));
            }
            (Some(k), None) => o = o.key(k.key.clone()),
            (None, Some(p)) => o = o.key_provider(keys::provider(p)),
            (None, None) => {}
        }
        Ok(o)
    }
}

/// A clock that moves only when told: for tests and the shared scenarios. Reached from
/// Kotlin only through `ferrymq.testing.ManualClock`.
#[derive(uniffi::Object)]
pub struct FfiManualClock {
    clock: ferrymq::ManualClock,
}

#[uniffi::export]
impl FfiManualClock {
    #[uniffi::constructor]
    pub fn new(start_ms: i64) -> Arc<Self> {
        Arc::new(FfiManualClock {
            clock: ferrymq::ManualClock::new(start_ms),
        })
    }

    pub fn advance(&self, by_secs: f64) -> FfiResult<()> {
        self.clock.advance(secs("advance", by_secs)?);
        Ok(())
    }

    pub fn set_ms(&self, ms: i64) {
        self.clock.set_ms(ms);
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

#[derive(uniffi::Object)]
pub struct FfiRetryPolicy {
    inner: ferrymq::RetryPolicy,
}

/// The core's defaults for `RetryPolicy.exponential`'s parameters (`ferrymq::defaults`),
/// so that the Kotlin signature does not restate them.
#[derive(uniffi::Record)]
pub struct ExponentialDefaults {
    pub initial_secs: f64,
    pub max_delay_secs: f64,
    pub max_retries: i64,
    pub jitter: f64,
}

#[uniffi::export]
pub fn exponential_defaults() -> ExponentialDefaults {
    use ferrymq::defaults as d;
    ExponentialDefaults {
        initial_secs: d::EXPONENTIAL_INITIAL.as_secs_f64(),
        max_delay_secs: d::EXPONENTIAL_MAX_DELAY.as_secs_f64(),
        max_retries: d::EXPONENTIAL_MAX_RETRIES.into(),
        jitter: d::EXPONENTIAL_JITTER,
    }
}

#[uniffi::export]
impl FfiRetryPolicy {
    /// RocketMQ's schedule: 10s 30s 1m 2m ... 1h 2h, 16 retries (the default).
    #[uniffi::constructor]
    pub fn rocketmq() -> Arc<Self> {
        Arc::new(FfiRetryPolicy {
            inner: ferrymq::RetryPolicy::rocketmq(),
        })
    }

    #[uniffi::constructor]
    pub fn alipay() -> Arc<Self> {
        Arc::new(FfiRetryPolicy {
            inner: ferrymq::RetryPolicy::alipay(),
        })
    }

    #[uniffi::constructor]
    pub fn wechat_pay() -> Arc<Self> {
        Arc::new(FfiRetryPolicy {
            inner: ferrymq::RetryPolicy::wechat_pay(),
        })
    }

    /// Explicit delays in seconds; the number of delays is the number of retries.
    #[uniffi::constructor]
    pub fn fixed(delays_secs: Vec<f64>) -> FfiResult<Arc<Self>> {
        let delays = delays_secs
            .into_iter()
            .map(|d| secs("retry delay", d))
            .collect::<FfiResult<Vec<_>>>()?;
        Ok(Arc::new(FfiRetryPolicy {
            inner: ferrymq::RetryPolicy::fixed(delays)?,
        }))
    }

    #[uniffi::constructor]
    pub fn exponential(
        initial_secs: f64,
        max_delay_secs: f64,
        max_retries: i64,
        jitter: f64,
    ) -> FfiResult<Arc<Self>> {
        let inner = ferrymq::RetryPolicy::exponential(
            secs("initial", initial_secs)?,
            secs("max_delay", max_delay_secs)?,
            int("max_retries", max_retries)?,
            jitter,
        )?;
        Ok(Arc::new(FfiRetryPolicy { inner }))
    }

    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries()
    }

    pub fn describe(&self) -> String {
        self.inner.encode()
    }
}

#[derive(uniffi::Object)]
pub struct FfiQueue {
    pub(crate) q: Queue,
    /// The handle `fast_handle` gave out, if any: unregistered when this queue drops.
    fast: OnceLock<u64>,
}

/// The queues with a handle for the fast calls. Weak: a handle keeps no queue alive (the
/// Kotlin `Queue` does, through its uniffi object), so it needs no release; the entry
/// goes when the queue drops, and a handle used after that is `InvalidArgument`.
static QUEUES: Registry<Weak<FfiQueue>> = Registry::new("queue");

impl FfiQueue {
    /// The queue behind a handle from `fast_handle`; `InvalidArgument` for any other
    /// integer, or once the queue is gone.
    pub fn get(handle: u64) -> FfiResult<Arc<FfiQueue>> {
        QUEUES.get(handle, Weak::upgrade)
    }
}

impl Drop for FfiQueue {
    fn drop(&mut self) {
        if let Some(&id) = self.fast.get() {
            QUEUES.remove(id);
        }
    }
}

#[uniffi::export]
impl FfiQueue {
    /// Opens (creating and migrating if needed) the queue in `path`. `clock` is the
    /// test-only manual clock; `None` is the wall clock.
    #[uniffi::constructor]
    pub fn open(
        path: String,
        options: OpenArgs,
        clock: Option<Arc<FfiManualClock>>,
    ) -> FfiResult<Arc<Self>> {
        let mut o = options.into_core()?;
        if let Some(c) = clock {
            o = o.with_manual_clock(c.clock.clone());
        }
        Ok(Arc::new(FfiQueue {
            q: Queue::open(path, o)?,
            fast: OnceLock::new(),
        }))
    }

    /// The handle of this queue for the structure-free calls of `crate::fast` (an id in a
    /// registry, see `crate::handles`): the same on every call, valid while the queue
    /// lives, never released by hand.
    pub fn fast_handle(self: Arc<Self>) -> u64 {
        *self
            .fast
            .get_or_init(|| QUEUES.insert(Arc::downgrade(&self)))
    }

    pub fn path(&self) -> String {
        self.q.path().display().to_string()
    }

    pub fn is_closed(&self) -> bool {
        self.q.is_closed()
    }

    /// Named so: generated Kotlin objects already have `AutoCloseable.close()`, which
    /// frees the handle (the Kotlin `Queue.close()` calls this instead).
    pub fn close_queue(&self) -> FfiResult<()> {
        Ok(self.q.close()?)
    }

    pub fn now(&self) -> SystemTime {
        self.q.now()
    }

    /// Rewrites the encrypted file under `key` (`ferrymq::Queue::rekey`).
    pub fn rekey(&self, key: Arc<FfiKey>) -> FfiResult<()> {
        Ok(self.q.rekey(key.key.clone())?)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &self,
        group: String,
        topic: String,
        tags: Option<String>,
        retry: Option<Arc<FfiRetryPolicy>>,
        lease_secs: Option<f64>,
        max_inflight: Option<i64>,
        rate: Option<f64>,
        burst: Option<i64>,
    ) -> FfiResult<()> {
        let mut o = SubscribeOptions::new();
        if let Some(t) = tags {
            o = o.tags(t);
        }
        if let Some(r) = retry {
            o = o.retry(r.inner.clone());
        }
        if let Some(l) = opt_secs("lease", lease_secs)? {
            o = o.lease(l);
        }
        if let Some(n) = max_inflight {
            o = o.max_inflight(int("max_inflight", n)?);
        }
        if let Some(r) = rate {
            o = o.rate(r);
        }
        if let Some(n) = burst {
            o = o.burst(int("burst", n)?);
        }
        Ok(self.q.subscribe(&group, &topic, o)?)
    }

    /// Stops handing out [group]'s messages (in every process on the file) until [resume];
    /// its messages keep accumulating, and deliveries already out can still be settled.
    /// Pausing twice is fine; an unknown group is [FerrymqException.NotFound].
    pub fn pause(&self, group: String) -> FfiResult<()> {
        Ok(self.q.pause(&group)?)
    }

    /// Hands out [group]'s messages again after [pause]; a waiting receive gets them.
    pub fn resume(&self, group: String) -> FfiResult<()> {
        Ok(self.q.resume(&group)?)
    }

    /// The Prometheus text exposition (format 0.0.4): the file's gauges per topic and
    /// consumer group, then this handle's own counters (published, acked, nacked, ...).
    pub fn metrics(&self) -> FfiResult<String> {
        Ok(self.q.metrics()?)
    }

    pub fn schedule(
        &self,
        name: String,
        topic: String,
        payload: Vec<u8>,
        args: convert::ScheduleArgs,
    ) -> FfiResult<()> {
        let o = args.into_core()?;
        Ok(self.q.schedule(&name, &topic, payload, o)?)
    }

    /// Removes schedule [name]; [FerrymqException.NotFound] if there is none.
    pub fn unschedule(&self, name: String) -> FfiResult<()> {
        Ok(self.q.unschedule(&name)?)
    }

    /// Every schedule of the file, by name.
    pub fn schedules(&self) -> FfiResult<Vec<crate::views::ScheduleInfo>> {
        Ok(self.q.schedules()?.to_host())
    }

    // `publish`, and `receive` with no wait, are the structure-free calls of `crate::fast`.

    pub fn publish_batch(&self, messages: Vec<MessageArgs>) -> FfiResult<Vec<i64>> {
        Ok(self.q.publish_batch(&convert::messages(messages)?)?)
    }

    /// The core's consumer of `group` (`Queue.consume`); `None` is the core's default.
    pub fn consumer(
        &self,
        group: String,
        max: Option<i64>,
        wait_secs: Option<f64>,
        lease_secs: Option<f64>,
    ) -> FfiResult<Arc<crate::consumer::FfiConsumer>> {
        let o = ferrymq::ConsumerOptions {
            max: max.map(|m| int("max", m)).transpose()?,
            wait: opt_secs("wait", wait_secs)?,
            lease: opt_secs("lease", lease_secs)?,
            concurrency: None,
        };
        let c = self.q.consumer(&group, o)?;
        Ok(crate::consumer::FfiConsumer::new(self.q.clone(), c))
    }

    pub fn worker(
        &self,
        group: String,
        handler: Arc<dyn FfiHandler>,
        concurrency: i64,
        args: ReceiveArgs,
    ) -> FfiResult<Arc<FfiWorker>> {
        let h = callbacks::handler(self.q.clone(), handler);
        let w = self.q.worker(
            &group,
            h,
            int("concurrency", concurrency)?,
            args.into_core()?,
        )?;
        Ok(Arc::new(FfiWorker {
            inner: Mutex::new(Some(w)),
        }))
    }

    /// Opens the outbox transaction on the calling thread; every call on it must come
    /// from that thread until commit or rollback.
    pub fn begin(&self) -> FfiResult<Arc<FfiTransaction>> {
        Ok(Arc::new(FfiTransaction::new(self.q.begin()?)))
    }

    pub fn prepare(
        &self,
        topic: String,
        payload: Vec<u8>,
        options: PublishArgs,
    ) -> FfiResult<Arc<FfiHalfMessage>> {
        let inner = self.q.prepare(&topic, payload, options.into_core()?)?;
        Ok(Arc::new(FfiHalfMessage { inner }))
    }

    pub fn commit_half(&self, id: i64) -> FfiResult<()> {
        Ok(self.q.commit_half(id)?)
    }

    pub fn rollback_half(&self, id: i64) -> FfiResult<()> {
        Ok(self.q.rollback_half(id)?)
    }

    pub fn set_checker(&self, topic: String, checker: Arc<dyn FfiChecker>) -> FfiResult<()> {
        Ok(self.q.set_checker(&topic, callbacks::checker(checker))?)
    }

    pub fn remove_checker(&self, topic: String) -> bool {
        self.q.remove_checker(&topic)
    }

    /// Asks the checkers about due half messages now; returns how many were decided.
    pub fn run_checks(&self) -> FfiResult<i64> {
        Ok(count(self.q.run_checks()?))
    }

    /// Half messages still undecided ([MessageState.HALF]), rolled back, or both (null).
    pub fn half_messages(
        &self,
        state: Option<MessageState>,
        limit: Option<i64>,
    ) -> FfiResult<Vec<MessageInfo>> {
        let limit = match limit {
            Some(n) => int("limit", n)?,
            None => ferrymq::defaults::HALF_MESSAGES_LIMIT,
        };
        let ms = self.q.half_messages(state.map(Into::into), limit)?;
        Ok(ms.to_host())
    }

    /// A queue on the same open file (closing one closes both) whose operator actions
    /// record `reason` in the audit trail.
    pub fn with_reason(&self, reason: String) -> FfiResult<Arc<FfiQueue>> {
        Ok(Arc::new(FfiQueue {
            q: self.q.with_reason(reason)?,
            fast: OnceLock::new(),
        }))
    }

    /// The audit trail: operator actions with ids above [after], oldest first, at most [limit] (1-10,000; 100).
    pub fn audit(
        &self,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> FfiResult<Vec<crate::views::AuditRecord>> {
        let limit = match limit {
            Some(n) => int("limit", n)?,
            None => ferrymq::defaults::AUDIT_LIMIT,
        };
        let list = self.q.audit(after, limit)?;
        Ok(list.to_host())
    }

    /// The group's dead letters, oldest death first.
    pub fn dead_letters(&self, group: String, limit: Option<i64>) -> FfiResult<Vec<DeadLetter>> {
        let limit = match limit {
            Some(n) => int("limit", n)?,
            None => ferrymq::defaults::DEAD_LETTERS_LIMIT,
        };
        let ds = self.q.dead_letters(&group, limit)?;
        Ok(ds.to_host())
    }

    /// Replays dead letters (all, or the given message ids); returns how many.
    pub fn redrive(&self, group: String, ids: Option<Vec<i64>>) -> FfiResult<i64> {
        Ok(count(self.q.redrive(&group, ids.as_deref())?))
    }

    pub fn purge_dead_letters(
        &self,
        group: String,
        older_than_secs: Option<f64>,
    ) -> FfiResult<i64> {
        let older_than = opt_secs("older_than", older_than_secs)?;
        Ok(count(self.q.purge_dead_letters(&group, older_than)?))
    }

    /// Counts per topic and per consumer group.
    pub fn stats(&self) -> FfiResult<Stats> {
        Ok(self.q.stats()?.to_host())
    }

    /// Every topic by name: kept messages, deliveries ready over its groups, its groups.
    pub fn topics(&self) -> FfiResult<Vec<crate::views::TopicInfo>> {
        Ok(self.q.topics()?.to_host())
    }

    /// `PRAGMA integrity_check`, the schema version and the application id of the file.
    pub fn check_file(&self) -> FfiResult<crate::views::FileCheck> {
        Ok(self.q.check_file()?.to_host())
    }

    /// One message with its state in every group and its attempt and check history.
    pub fn message(&self, id: i64) -> FfiResult<MessageInfo> {
        Ok(self.q.message(id)?.to_host())
    }

    /// Messages of [topic] with business key [key], oldest first.
    pub fn find(&self, topic: String, key: String) -> FfiResult<Vec<MessageInfo>> {
        let ms = self.q.find(&topic, &key)?;
        Ok(ms.to_host())
    }

    pub fn purge_acked(&self, older_than_secs: Option<f64>) -> FfiResult<i64> {
        let older_than = opt_secs("older_than", older_than_secs)?
            .unwrap_or(ferrymq::defaults::PURGE_ACKED_OLDER_THAN);
        Ok(count(self.q.purge_acked(older_than)?))
    }

    /// Gives pages freed by purges back to the file system: up to [pages] (null: all).
    /// Returns how many were freed; 0 for a file created without auto-vacuum (by an older
    /// ferrymq, or a business database ferrymq adopted).
    pub fn vacuum(&self, pages: Option<i64>) -> FfiResult<i64> {
        let pages = pages.map(|n| int("pages", n)).transpose()?;
        Ok(count(self.q.vacuum(pages)?))
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl FfiQueue {
    /// `receive` that holds no thread while it waits; leaves the deliveries in `slot`
    /// (see `FfiReceiveSlot` for why) and returns how many. Cancelling the Kotlin
    /// coroutine drops this future: the wait ends at once, and a claim that was running
    /// is put back by the core without counting an attempt.
    pub async fn receive_async(
        &self,
        group: String,
        args: ReceiveArgs,
        slot: Arc<FfiReceiveSlot>,
    ) -> FfiResult<u32> {
        let ds = self.q.receive_async(&group, args.into_core()?).await?;
        let n = u32::try_from(ds.len()).unwrap_or(u32::MAX);
        slot.put(&self.q, ds);
        Ok(n)
    }
}
