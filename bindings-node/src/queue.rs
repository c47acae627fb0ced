//! `NativeQueue`: each method converts its arguments, calls the core, and converts the
//! result or error back. Calls that can wait run off the JS thread and return Promises.

use crate::checker::{self, Bridge, Dispatch};
use crate::consumer::NativeConsumer;
use crate::convert::{
    self, BatchMessage, Payload, PublishOpts, QueueOpts, ReceiveOpts, SubscribeOpts,
};
use crate::delivery::{Delivery, HalfMessage, RetryPolicy};
use crate::errors::{OrJs, Result, internal, promise};
use crate::keys::{self, JsKey, KeyArg};
use crate::testing::ManualClock;
use crate::tx::Transaction;
use crate::views::{self, DeadLetter, MessageInfo, Stats, ToHost};
use ferrymq::{MessageState, Options, Queue, ReceiveOptions, SubscribeOptions};
use napi::Env;
use napi::bindgen_prelude::{Function, PromiseRaw, ToNapiValue, Unknown};
use napi_derive::napi;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Ends a waiting `receive` early (an `AbortSignal` in `index.js` fires it).
#[napi]
pub struct ReceiveCancel {
    inner: Arc<(AtomicBool, Notify)>,
}

#[napi]
impl ReceiveCancel {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ReceiveCancel {
            inner: Arc::new((AtomicBool::new(false), Notify::new())),
        }
    }

    #[napi]
    pub fn cancel(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }
}

impl ReceiveCancel {
    pub(crate) fn shared(&self) -> Arc<(AtomicBool, Notify)> {
        Arc::clone(&self.inner)
    }
}

pub(crate) async fn cancelled(c: Arc<(AtomicBool, Notify)>) {
    loop {
        let notified = c.1.notified();
        if c.0.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

#[napi(js_name = "NativeQueue")]
pub struct NativeQueue {
    q: Queue,
    checks: Arc<Bridge>,
}

fn receive_options(o: Option<ReceiveOpts>) -> Result<ReceiveOptions> {
    o.map_or(Ok(ReceiveOptions::new()), |o| {
        o.apply(ReceiveOptions::new())
    })
}

/// Runs `f` on the blocking pool: the Promise resolves to its result as JS has it
/// ([`ToHost`]) or rejects with its error.
fn off_thread<'env, T>(
    env: &'env Env,
    f: impl FnOnce() -> ferrymq::Result<T> + Send + 'static,
) -> Result<PromiseRaw<'env, T::Host>>
where
    T: ToHost + Send + 'static,
    T::Host: ToNapiValue + Send + 'static,
{
    promise(env, async move {
        let v = napi::bindgen_prelude::spawn_blocking(f)
            .await
            .map_err(internal)?
            .js()?;
        Ok(v.to_host())
    })
}

fn deliveries(q: &Queue, ds: Vec<ferrymq::Delivery>) -> Vec<Delivery> {
    ds.into_iter()
        .map(|d| Delivery::new(q.clone(), d))
        .collect()
}

impl NativeQueue {
    /// The core queue, for `publishRow` / `ackRow` (its limits and clock).
    pub(crate) fn queue(&self) -> &Queue {
        &self.q
    }
}

#[napi]
impl NativeQueue {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        path: String,
        opts: Option<QueueOpts>,
        clock: Option<&ManualClock>,
        key: Option<KeyArg<'_>>,
    ) -> Result<Self> {
        let mut o = match opts {
            Some(opts) => opts.apply(Options::default())?,
            None => Options::default(),
        };
        if let Some(c) = clock {
            o = o.with_manual_clock(c.inner.clone());
        }
        if let Some(k) = key {
            o = keys::with_key(&env, o, k)?;
        }
        let checks = Arc::new(Bridge::new(o.check_interval));
        let q = Queue::open(&path, o).js()?;
        Ok(NativeQueue { q, checks })
    }

    #[napi(getter)]
    pub fn path(&self) -> String {
        self.q.path().display().to_string()
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.q.is_closed()
    }

    /// Stops background work and closes the file; later calls fail with CLOSED.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        self.checks.close();
        let q = self.q.clone();
        off_thread(env, move || q.close())
    }

    /// Rewrites the encrypted file under `key` (off the JS thread: every page is rewritten).
    #[napi]
    pub fn rekey<'env>(&self, env: &'env Env, key: JsKey) -> Result<PromiseRaw<'env, ()>> {
        let key = keys::key(&key).js()?;
        let q = self.q.clone();
        off_thread(env, move || q.rekey(key))
    }

    #[napi]
    pub fn subscribe(
        &self,
        group: String,
        topic: String,
        opts: Option<SubscribeOpts>,
        retry: Option<&RetryPolicy>,
    ) -> Result<()> {
        let mut o = match opts {
            Some(opts) => opts.apply(SubscribeOptions::new())?,
            None => SubscribeOptions::new(),
        };
        if let Some(r) = retry {
            o = o.retry(r.inner.clone());
        }
        self.q.subscribe(&group, &topic, o).js()
    }

    /// Holds the group's deliveries (in every process) until `resume`.
    #[napi]
    pub fn pause(&self, group: String) -> Result<()> {
        self.q.pause(&group).js()
    }

    #[napi]
    pub fn resume(&self, group: String) -> Result<()> {
        self.q.resume(&group).js()
    }

    /// The Prometheus text exposition: the file's gauges and this handle's counters.
    #[napi]
    pub fn metrics(&self) -> Result<String> {
        self.q.metrics().js()
    }

    /// Creates (or replaces) schedule `name`.
    #[napi]
    pub fn schedule(
        &self,
        name: String,
        topic: String,
        payload: Payload,
        opts: convert::ScheduleOpts,
    ) -> Result<()> {
        let o = opts.apply(ferrymq::ScheduleOptions::new())?;
        self.q
            .schedule(&name, &topic, convert::payload(&payload), o)
            .js()
    }

    #[napi]
    pub fn unschedule(&self, name: String) -> Result<()> {
        self.q.unschedule(&name).js()
    }

    /// A queue on the same open file (closing one closes both; checkers are shared)
    /// whose operator actions record `reason` in the audit trail.
    #[napi]
    pub fn with_reason(&self, reason: String) -> Result<NativeQueue> {
        Ok(NativeQueue {
            q: self.q.with_reason(reason).js()?,
            checks: Arc::clone(&self.checks),
        })
    }

    /// The audit trail: records with ids above `after`, oldest first, at most `limit`.
    #[napi]
    pub fn audit(&self, after: Option<f64>, limit: Option<f64>) -> Result<Vec<views::AuditRecord>> {
        let after = convert::opt_count("after", after)?;
        let limit = convert::opt_count("limit", limit)?.unwrap_or(ferrymq::defaults::AUDIT_LIMIT);
        let list = self.q.audit(after, limit).js()?;
        Ok(list.to_host())
    }

    #[napi]
    pub fn schedules(&self) -> Result<Vec<views::ScheduleInfo>> {
        Ok(self.q.schedules().js()?.to_host())
    }

    #[napi]
    pub fn publish(
        &self,
        topic: String,
        payload: Payload,
        opts: Option<PublishOpts>,
    ) -> Result<i64> {
        let options = convert::publish_options(opts)?;
        self.q
            .publish(&topic, convert::payload(&payload), options)
            .js()
    }

    /// `publish` off the JS thread: the Promise settles once the message is durable.
    #[napi]
    pub fn publish_async<'env>(
        &self,
        env: &'env Env,
        topic: String,
        payload: Payload,
        opts: Option<PublishOpts>,
    ) -> Result<PromiseRaw<'env, i64>> {
        let options = convert::publish_options(opts)?;
        let bytes = convert::payload(&payload).to_vec();
        let q = self.q.clone();
        promise(env, async move {
            q.publish_async(&topic, bytes, options).await.js()
        })
    }

    #[napi]
    pub fn publish_batch(&self, messages: Vec<BatchMessage>) -> Result<Vec<i64>> {
        let batch = convert::messages(messages)?;
        self.q.publish_batch(&batch).js()
    }

    /// What `receive` would return without waiting, claimed on the JS thread: a claim is a
    /// short write, like `publish`, and skipping the hop to another thread and back makes
    /// a drain several times faster. `index.js` waits with `receive` only when this is empty.
    #[napi]
    pub fn receive_now(&self, group: String, opts: Option<ReceiveOpts>) -> Result<Vec<Delivery>> {
        let o = receive_options(opts)?.wait(std::time::Duration::ZERO);
        Ok(deliveries(&self.q, self.q.receive(&group, o).js()?))
    }

    /// Up to `max` deliveries, waiting up to `waitMs` for the first; no thread waits.
    #[napi]
    pub fn receive<'env>(
        &self,
        env: &'env Env,
        group: String,
        opts: Option<ReceiveOpts>,
        cancel: Option<&ReceiveCancel>,
    ) -> Result<PromiseRaw<'env, Vec<Delivery>>> {
        let o = receive_options(opts)?;
        let q = self.q.clone();
        let cancel = cancel.map(|c| Arc::clone(&c.inner));
        promise(env, async move {
            let got = match cancel {
                None => q.receive_async(&group, o).await,
                Some(c) => tokio::select! {
                    biased;
                    r = q.receive_async(&group, o) => r,
                    () = cancelled(c) => Ok(Vec::new()),
                },
            };
            Ok(deliveries(&q, got.js()?))
        })
    }

    /// The core's consumer of `group` (`consume` and `worker` in `index.js`); a missing
    /// `waitMs` is the core's default wait.
    #[napi]
    pub fn consumer(
        &self,
        group: String,
        opts: Option<ReceiveOpts>,
        concurrency: Option<f64>,
    ) -> Result<NativeConsumer> {
        let o = opts.unwrap_or_default();
        let o = ferrymq::ConsumerOptions {
            max: convert::opt_count("max", o.max)?,
            wait: convert::opt_ms("waitMs", o.wait_ms)?,
            lease: convert::opt_ms("leaseMs", o.lease_ms)?,
            concurrency: convert::opt_count("concurrency", concurrency)?,
        };
        let c = self.q.consumer(&group, o).js()?;
        Ok(NativeConsumer::new(self.q.clone(), c))
    }

    #[napi]
    pub fn begin(&self) -> Result<Transaction> {
        Ok(Transaction {
            tx: Some(self.q.begin().js()?),
        })
    }

    #[napi]
    pub fn prepare(
        &self,
        topic: String,
        payload: Payload,
        opts: Option<PublishOpts>,
    ) -> Result<HalfMessage> {
        let options = convert::publish_options(opts)?;
        let inner = self
            .q
            .prepare(&topic, convert::payload(&payload), options)
            .js()?;
        Ok(HalfMessage { inner })
    }

    /// Commits the half message `id` (a no-op if it is committed already).
    #[napi]
    pub fn commit_half(&self, id: f64) -> Result<()> {
        self.q.commit_half(convert::id(id)?).js()
    }

    /// Rolls back the half message `id` (kept for audit until retention removes it).
    #[napi]
    pub fn rollback_half(&self, id: f64) -> Result<()> {
        self.q.rollback_half(convert::id(id)?).js()
    }

    /// `dispatch(requestId, info)` is `index.js`'s adapter around the user's checker; it
    /// answers through `answerCheck`.
    #[napi]
    pub fn set_checker(
        &self,
        topic: String,
        dispatch: Function<'_, (u32, MessageInfo), Unknown<'static>>,
    ) -> Result<()> {
        let tsfn: Dispatch = dispatch
            .build_threadsafe_function::<(u32, MessageInfo)>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()
            .js()?;
        let cb = checker::checker(Arc::clone(&self.checks), tsfn);
        self.q.set_checker(&topic, cb).js()
    }

    #[napi]
    pub fn answer_check(&self, request: u32, resolution: Option<String>, error: Option<String>) {
        self.checks.answer(request, resolution, error);
    }

    #[napi]
    pub fn remove_checker(&self, topic: String) -> bool {
        self.q.remove_checker(&topic)
    }

    /// Asks the checkers about due half messages now. A Promise: the checkers themselves
    /// run on the JS thread, which must stay free meanwhile.
    #[napi]
    pub fn run_checks<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, i64>> {
        let q = self.q.clone();
        off_thread(env, move || q.run_checks())
    }

    #[napi]
    pub fn half_messages(
        &self,
        state: Option<String>,
        limit: Option<f64>,
    ) -> Result<Vec<MessageInfo>> {
        let limit =
            convert::opt_count("limit", limit)?.unwrap_or(ferrymq::defaults::HALF_MESSAGES_LIMIT);
        let state = state
            .as_deref()
            .map(str::parse::<MessageState>)
            .transpose()
            .js()?;
        let ms = self.q.half_messages(state, limit).js()?;
        Ok(ms.to_host())
    }

    #[napi]
    pub fn dead_letters(&self, group: String, limit: Option<f64>) -> Result<Vec<DeadLetter>> {
        let limit =
            convert::opt_count("limit", limit)?.unwrap_or(ferrymq::defaults::DEAD_LETTERS_LIMIT);
        let ds = self.q.dead_letters(&group, limit).js()?;
        Ok(ds.to_host())
    }

    #[napi]
    pub fn redrive(&self, group: String, ids: Option<Vec<f64>>) -> Result<i64> {
        let ids = ids
            .map(|v| v.into_iter().map(convert::id).collect::<Result<Vec<_>>>())
            .transpose()?;
        let n = self.q.redrive(&group, ids.as_deref()).js()?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    #[napi]
    pub fn purge_dead_letters(&self, group: String, older_than_ms: Option<f64>) -> Result<i64> {
        let older = convert::opt_ms("olderThanMs", older_than_ms)?;
        let n = self.q.purge_dead_letters(&group, older).js()?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    #[napi]
    pub fn stats(&self) -> Result<Stats> {
        Ok(self.q.stats().js()?.to_host())
    }

    #[napi]
    pub fn topics(&self) -> Result<Vec<views::TopicInfo>> {
        Ok(self.q.topics().js()?.to_host())
    }

    /// `PRAGMA integrity_check` and the file's marks, off the JS thread (it reads every page).
    #[napi]
    pub fn check_file<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, views::FileCheck>> {
        let q = self.q.clone();
        off_thread(env, move || q.check_file())
    }

    #[napi]
    pub fn message(&self, id: f64) -> Result<MessageInfo> {
        Ok(self.q.message(convert::id(id)?).js()?.to_host())
    }

    #[napi]
    pub fn find(&self, topic: String, key: String) -> Result<Vec<MessageInfo>> {
        let ms = self.q.find(&topic, &key).js()?;
        Ok(ms.to_host())
    }

    /// Deletes messages acked by every group at least `olderThanMs` ago (default 7 days),
    /// in chunks, off the JS thread.
    #[napi]
    pub fn purge_acked<'env>(
        &self,
        env: &'env Env,
        older_than_ms: Option<f64>,
    ) -> Result<PromiseRaw<'env, i64>> {
        let older = convert::opt_ms("olderThanMs", older_than_ms)?
            .unwrap_or(ferrymq::defaults::PURGE_ACKED_OLDER_THAN);
        let q = self.q.clone();
        off_thread(env, move || q.purge_acked(older))
    }

    /// Gives pages freed by purges back to the file system (all when `pages` is left
    /// out), off the JS thread; resolves to the number of pages freed.
    #[napi]
    pub fn vacuum<'env>(
        &self,
        env: &'env Env,
        pages: Option<f64>,
    ) -> Result<PromiseRaw<'env, i64>> {
        let pages = convert::opt_count("pages", pages)?;
        let q = self.q.clone();
        off_thread(env, move || q.vacuum(pages))
    }
}
