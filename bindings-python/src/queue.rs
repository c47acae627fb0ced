//! `ferrymq.Queue`: each method converts its arguments, calls the core without the GIL,
//! and converts the result or error back.

use crate::callbacks;
use crate::consumer::PyConsumer;
use crate::convert::given;
use crate::convert::{self, Int};
use crate::errors::{OrPy, invalid};
use crate::interrupt::interruptible;
use crate::testing::PyManualClock;
use crate::tx::PyTransaction;
use crate::types::{Batch, PyDelivery, PyHalfMessage, PyRetryPolicy, PyWorker, publish_args};
use crate::views::{self, ToHost};
use ferrymq::{MessageState, Options, Queue, ReceiveOptions, SubscribeOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Mutex;

thread_local! {
    /// The handle `with_reason` passes to the `__new__` it calls (on this thread, under
    /// the GIL), so the new object is of the caller's class (`ferrymq.Queue`, or the
    /// caller's own subclass) and shares the open queue instead of opening the file again.
    static SHARED: RefCell<Option<Queue>> = const { RefCell::new(None) };
}

#[pyclass(name = "Queue", module = "ferrymq", subclass, frozen)]
pub struct PyQueue {
    q: Queue,
}

impl PyQueue {
    /// The core queue, for `publish_row` / `ack_row` (its limits and clock).
    pub fn queue(&self) -> &Queue {
        &self.q
    }
}

fn receive_options(
    max: Int,
    wait: Option<&Bound<'_, PyAny>>,
    lease: Option<&Bound<'_, PyAny>>,
) -> PyResult<ReceiveOptions> {
    let mut o = ReceiveOptions::new().max(max.get("max")?);
    given!(o, wait: opt_seconds, lease: opt_seconds);
    Ok(o)
}

#[pymethods]
impl PyQueue {
    #[new]
    #[pyo3(signature = (path, *, synchronous="normal", busy_timeout=None, max_payload=None, idempotency_window=None, check_after=None, check_interval=None, check_max=None, poll_interval=None, max_size=None, max_ready=None, foreign_keys=None, test_clock=None, key=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        synchronous: &str,
        busy_timeout: Option<&Bound<'_, PyAny>>,
        max_payload: Option<&Bound<'_, PyAny>>,
        idempotency_window: Option<&Bound<'_, PyAny>>,
        check_after: Option<&Bound<'_, PyAny>>,
        check_interval: Option<&Bound<'_, PyAny>>,
        check_max: Option<&Bound<'_, PyAny>>,
        poll_interval: Option<&Bound<'_, PyAny>>,
        max_size: Option<&Bound<'_, PyAny>>,
        max_ready: Option<&Bound<'_, PyAny>>,
        foreign_keys: Option<bool>,
        test_clock: Option<PyRef<'_, PyManualClock>>,
        key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        if let Some(q) = SHARED.with(|s| s.borrow_mut().take()) {
            return Ok(PyQueue { q });
        }
        let mut o = Options::default().synchronous(synchronous.parse().py_err()?);
        given!(o,
            busy_timeout: opt_seconds,
            max_payload: opt_int,
            idempotency_window: opt_seconds,
            check_after: opt_seconds,
            check_interval: opt_seconds,
            check_max: opt_int,
            poll_interval: opt_seconds,
            max_size: opt_int,
            max_ready: opt_int,
            foreign_keys: opt_value,
        );
        if let Some(clock) = test_clock {
            o = o.with_manual_clock(clock.inner.clone());
        }
        if let Some(k) = key {
            o = crate::keys::with_key(o, k)?;
        }
        let q = py.detach(|| Queue::open(&path, o)).py_err()?;
        Ok(PyQueue { q })
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.q.path().to_owned()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.q.is_closed()
    }

    /// Stops background work and closes the file; later calls raise ClosedError.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.q.close()).py_err()
    }

    /// Rewrites the encrypted file under `key` (str or 32 bytes) in one transaction.
    fn rekey(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = crate::keys::key(key)?;
        py.detach(|| self.q.rekey(key)).py_err()
    }

    #[pyo3(signature = (group, topic, *, tags="*", retry=None, lease=None, max_inflight=None, rate=None, burst=None))]
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        group: &str,
        topic: &str,
        tags: &str,
        retry: Option<PyRef<'_, PyRetryPolicy>>,
        lease: Option<&Bound<'_, PyAny>>,
        max_inflight: Option<&Bound<'_, PyAny>>,
        rate: Option<&Bound<'_, PyAny>>,
        burst: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let mut o = SubscribeOptions::new().tags(tags);
        if let Some(r) = retry {
            o = o.retry(r.inner.clone());
        }
        given!(o, lease: opt_seconds, max_inflight: opt_int, rate: opt_number, burst: opt_int);
        py.detach(|| self.q.subscribe(group, topic, o)).py_err()
    }

    /// Stops handing out the group's deliveries in every process until `resume`.
    fn pause(&self, py: Python<'_>, group: &str) -> PyResult<()> {
        py.detach(|| self.q.pause(group)).py_err()
    }

    /// Hands out the group's deliveries again after `pause`.
    fn resume(&self, py: Python<'_>, group: &str) -> PyResult<()> {
        py.detach(|| self.q.resume(group)).py_err()
    }

    /// The Prometheus text exposition: the file's gauges and this handle's counters.
    fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.q.metrics()).py_err()
    }

    /// Creates (or replaces) schedule `name`: `payload` to `topic` on every tick of `cron`
    /// or `every` (seconds or a timedelta).
    #[pyo3(signature = (name, topic, payload, *, cron=None, every=None, tz=None, repeat=None, start_at=None, delay=None, tag=None, key=None, headers=None, missed="once"))]
    #[allow(clippy::too_many_arguments)]
    fn schedule(
        &self,
        py: Python<'_>,
        name: &str,
        topic: &str,
        payload: &Bound<'_, PyAny>,
        cron: Option<String>,
        every: Option<&Bound<'_, PyAny>>,
        tz: Option<String>,
        repeat: Option<&Bound<'_, PyAny>>,
        start_at: Option<&Bound<'_, PyAny>>,
        delay: Option<&Bound<'_, PyAny>>,
        tag: Option<String>,
        key: Option<String>,
        headers: Option<&Bound<'_, PyAny>>,
        missed: &str,
    ) -> PyResult<()> {
        let payload = convert::payload("payload", payload)?;
        let o = ferrymq::ScheduleOptions {
            cron,
            every: convert::opt_seconds("every", every)?,
            tz,
            repeat: convert::opt_int("repeat", repeat)?,
            start_at: start_at
                .map(|t| convert::aware_datetime("start_at", t))
                .transpose()?,
            delay: convert::opt_seconds("delay", delay)?,
            tag,
            key,
            headers: convert::headers(headers)?,
            missed: missed.parse().py_err()?,
        };
        py.detach(|| self.q.schedule(name, topic, payload, o))
            .py_err()
    }

    /// Removes schedule `name` (NotFoundError if there is none).
    fn unschedule(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.q.unschedule(name)).py_err()
    }

    /// A queue of the same class on the same open file (closing one closes both) whose
    /// operator actions record `reason` in the audit trail.
    fn with_reason<'py>(slf: &Bound<'py, Self>, reason: String) -> PyResult<Bound<'py, PyAny>> {
        let shared = slf.get().q.with_reason(reason).py_err()?;
        let cls = slf.get_type();
        SHARED.with(|s| *s.borrow_mut() = Some(shared));
        let made = cls.call_method1("__new__", (&cls, slf.get().q.path()));
        // Left there only if a subclass's __new__ failed before reaching ours.
        SHARED.with(|s| s.borrow_mut().take());
        made
    }

    /// The audit trail: records with ids above `after`, oldest first, at most `limit`.
    #[pyo3(signature = (after=None, limit=None))]
    fn audit(
        &self,
        py: Python<'_>,
        after: Option<Int>,
        limit: Option<Int>,
    ) -> PyResult<Vec<Py<views::AuditRecord>>> {
        let after = after.map(|a| a.get::<i64>("after")).transpose()?;
        let limit = match limit {
            Some(n) => n.get("limit")?,
            None => ferrymq::defaults::AUDIT_LIMIT,
        };
        let all = py.detach(|| self.q.audit(after, limit)).py_err()?;
        all.to_host(py)
    }

    /// Every schedule of the file, by name.
    fn schedules(&self, py: Python<'_>) -> PyResult<Vec<Py<views::ScheduleInfo>>> {
        let all = py.detach(|| self.q.schedules()).py_err()?;
        all.to_host(py)
    }

    #[pyo3(signature = (topic, payload, **options))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &str,
        payload: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<i64> {
        let (payload, options) = publish_args(py, "publish", payload, options)?;
        py.detach(|| self.q.publish(topic, payload, options))
            .py_err()
    }

    fn publish_batch(&self, py: Python<'_>, messages: Batch<'_>) -> PyResult<Vec<i64>> {
        let batch = crate::trace::traced_batch(py, &messages)?;
        py.detach(|| self.q.publish_batch(&batch)).py_err()
    }

    /// Up to `max` deliveries, waiting up to `wait` seconds for the first. Ctrl-C ends a
    /// long wait (the KeyboardInterrupt is raised here).
    #[pyo3(
        signature = (group, *, max=Int(1), wait=None, lease=None),
        text_signature = "($self, group, *, max=1, wait=None, lease=None)"
    )]
    fn receive(
        &self,
        py: Python<'_>,
        group: &str,
        max: Int,
        wait: Option<&Bound<'_, PyAny>>,
        lease: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<PyDelivery>> {
        let o = receive_options(max, wait, lease)?;
        let got = interruptible(py, |stop| self.q.receive_interruptible(group, o, stop))?;
        Ok(got
            .py_err()?
            .into_iter()
            .map(|d| PyDelivery::new(self.q.clone(), d))
            .collect())
    }

    /// `receive` for asyncio: an awaitable; no thread waits while it does.
    #[pyo3(
        signature = (group, *, max=Int(1), wait=None, lease=None),
        text_signature = "($self, group, *, max=1, wait=None, lease=None)"
    )]
    fn receive_async<'py>(
        &self,
        py: Python<'py>,
        group: String,
        max: Int,
        wait: Option<&Bound<'_, PyAny>>,
        lease: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let o = receive_options(max, wait, lease)?;
        let q = self.q.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let ds = q.receive_async(&group, o).await.py_err()?;
            Ok(ds
                .into_iter()
                .map(|d| PyDelivery::new(q.clone(), d))
                .collect::<Vec<_>>())
        })
    }

    /// The deliveries of `group`, one at a time, as an iterator (`for d in ...`) and an
    /// async iterator (`async for d in ...`). Each wait is `wait` seconds (default: the
    /// core's); the lease of the delivery in hand is renewed until the loop moves on, and
    /// breaking out or closing puts back what the consumer holds.
    #[pyo3(
        signature = (group, *, max=Int(1), wait=None, lease=None, concurrency=None),
        text_signature = "($self, group, *, max=1, wait=None, lease=None, concurrency=None)"
    )]
    fn consume(
        &self,
        group: &str,
        max: Int,
        wait: Option<&Bound<'_, PyAny>>,
        lease: Option<&Bound<'_, PyAny>>,
        concurrency: Option<Int>,
    ) -> PyResult<PyConsumer> {
        let o = ferrymq::ConsumerOptions {
            max: Some(max.get("max")?),
            wait: convert::opt_seconds("wait", wait)?,
            lease: convert::opt_seconds("lease", lease)?,
            concurrency: concurrency.map(|n| n.get("concurrency")).transpose()?,
        };
        let c = self.q.consumer(group, o).py_err()?;
        Ok(PyConsumer::new(self.q.clone(), c))
    }

    /// Runs `handler(delivery)` on `concurrency` threads: returning acks, raising nacks
    /// with str(exception). Stop it with `.stop()` or use it as a context manager.
    #[pyo3(
        signature = (group, handler, *, concurrency=Int(1), max=Int(1), wait=None, lease=None),
        text_signature = "($self, group, handler, *, concurrency=1, max=1, wait=None, lease=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn worker(
        &self,
        py: Python<'_>,
        group: &str,
        handler: Py<PyAny>,
        concurrency: Int,
        max: Int,
        wait: Option<&Bound<'_, PyAny>>,
        lease: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyWorker> {
        if !handler.bind(py).is_callable() {
            return Err(invalid("handler must be callable"));
        }
        let o = receive_options(max, wait, lease)?;
        let handler = crate::trace::wrap_handler(py, handler)?;
        let h = callbacks::handler(self.q.clone(), handler);
        let concurrency: usize = concurrency.get("concurrency")?;
        let w = py
            .detach(|| self.q.worker(group, h, concurrency, o))
            .py_err()?;
        Ok(PyWorker {
            inner: Mutex::new(Some(w)),
        })
    }

    /// The outbox: `with q.transaction() as tx:` commits on exit, rolls back on exception.
    fn transaction(&self) -> PyTransaction {
        PyTransaction::new(self.q.clone())
    }

    /// Commits the half message `id` (a no-op if it is committed already).
    fn commit_half(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        py.detach(|| self.q.commit_half(id)).py_err()
    }

    /// Rolls back the half message `id` (kept for audit until retention removes it).
    fn rollback_half(&self, py: Python<'_>, id: i64) -> PyResult<()> {
        py.detach(|| self.q.rollback_half(id)).py_err()
    }

    #[pyo3(signature = (topic, payload, **options))]
    fn prepare(
        &self,
        py: Python<'_>,
        topic: &str,
        payload: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyHalfMessage> {
        let (payload, options) = publish_args(py, "prepare", payload, options)?;
        let h = py
            .detach(|| self.q.prepare(topic, payload, options))
            .py_err()?;
        Ok(PyHalfMessage { inner: h })
    }

    /// Registers `checker(info) -> Resolution` for the topic's half messages.
    fn set_checker(&self, py: Python<'_>, topic: &str, checker: Py<PyAny>) -> PyResult<()> {
        if !checker.bind(py).is_callable() {
            return Err(invalid("checker must be callable"));
        }
        let cb = callbacks::checker(checker);
        py.detach(|| self.q.set_checker(topic, cb)).py_err()
    }

    fn remove_checker(&self, topic: &str) -> bool {
        self.q.remove_checker(topic)
    }

    /// Asks the checkers about due half messages now; returns how many were decided.
    fn run_checks(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.q.run_checks()).py_err()
    }

    /// Half messages still undecided or rolled back; `state` "half" or "rolled_back".
    #[pyo3(signature = (state=None, limit=None))]
    fn half_messages(
        &self,
        py: Python<'_>,
        state: Option<&str>,
        limit: Option<Int>,
    ) -> PyResult<Vec<Py<views::MessageInfo>>> {
        let limit = match limit {
            Some(n) => n.get("limit")?,
            None => ferrymq::defaults::HALF_MESSAGES_LIMIT,
        };
        let state = state.map(str::parse::<MessageState>).transpose().py_err()?;
        let ms = py.detach(|| self.q.half_messages(state, limit)).py_err()?;
        ms.to_host(py)
    }

    #[pyo3(signature = (group, limit=None))]
    fn dead_letters(
        &self,
        py: Python<'_>,
        group: &str,
        limit: Option<Int>,
    ) -> PyResult<Vec<Py<views::DeadLetter>>> {
        let limit = match limit {
            Some(n) => n.get("limit")?,
            None => ferrymq::defaults::DEAD_LETTERS_LIMIT,
        };
        let ds = py.detach(|| self.q.dead_letters(group, limit)).py_err()?;
        ds.to_host(py)
    }

    /// Replays dead letters (all, or the given message ids); returns how many.
    #[pyo3(signature = (group, ids=None))]
    fn redrive(&self, py: Python<'_>, group: &str, ids: Option<Vec<i64>>) -> PyResult<u64> {
        py.detach(|| self.q.redrive(group, ids.as_deref())).py_err()
    }

    #[pyo3(signature = (group, older_than=None))]
    fn purge_dead_letters(
        &self,
        py: Python<'_>,
        group: &str,
        older_than: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let older_than = convert::opt_seconds("older_than", older_than)?;
        py.detach(|| self.q.purge_dead_letters(group, older_than))
            .py_err()
    }

    fn stats(&self, py: Python<'_>) -> PyResult<Py<views::Stats>> {
        let s = py.detach(|| self.q.stats()).py_err()?;
        s.to_host(py)
    }

    /// Every topic by name: kept messages, deliveries ready over its groups, its groups.
    fn topics(&self, py: Python<'_>) -> PyResult<Vec<Py<views::TopicInfo>>> {
        let ts = py.detach(|| self.q.topics()).py_err()?;
        ts.to_host(py)
    }

    /// `PRAGMA integrity_check`, the schema version and the application id of the file.
    fn check_file(&self, py: Python<'_>) -> PyResult<Py<views::FileCheck>> {
        py.detach(|| self.q.check_file()).py_err()?.to_host(py)
    }

    fn message(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Py<views::MessageInfo>> {
        let id: i64 = convert::int("id", id)?;
        let m = py.detach(|| self.q.message(id)).py_err()?;
        m.to_host(py)
    }

    fn find(
        &self,
        py: Python<'_>,
        topic: &str,
        key: &str,
    ) -> PyResult<Vec<Py<views::MessageInfo>>> {
        let ms = py.detach(|| self.q.find(topic, key)).py_err()?;
        ms.to_host(py)
    }

    /// Deletes messages acked by every group at least `older_than` seconds ago.
    #[pyo3(signature = (older_than=None))]
    fn purge_acked(&self, py: Python<'_>, older_than: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let older_than = convert::opt_seconds("older_than", older_than)?
            .unwrap_or(ferrymq::defaults::PURGE_ACKED_OLDER_THAN);
        py.detach(|| self.q.purge_acked(older_than)).py_err()
    }

    /// Gives pages freed by purges back to the file system (None: all); returns how many.
    #[pyo3(signature = (pages=None))]
    fn vacuum(&self, py: Python<'_>, pages: Option<&Bound<'_, PyAny>>) -> PyResult<u64> {
        let pages = convert::opt_int("pages", pages)?;
        py.detach(|| self.q.vacuum(pages)).py_err()
    }

    fn __repr__(&self) -> String {
        format!("Queue({:?})", self.q.path().display().to_string())
    }
}
