//! Python classes for the core's values: Message, RetryPolicy, Resolution, Delivery,
//! HalfMessage, Worker; and the publish options, parsed once for every call taking them.
//! The read-only records are in views.rs.

use crate::convert;
use crate::errors::{OrPy, invalid};
use ferrymq::{PublishOptions, Queue};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The messages of a `publish_batch`.
pub type Batch<'py> = Vec<PyRef<'py, PyMessage>>;

/// The payload and options of a call that publishes one message.
pub fn publish_args(
    py: Python<'_>,
    call: &str,
    payload: &Bound<'_, PyAny>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(Vec<u8>, PublishOptions)> {
    Ok((
        convert::payload("payload", payload)?,
        publish_options(py, call, options)?,
    ))
}

/// The publish options, once for every call that takes them as `**options` (publish,
/// prepare, Message, Transaction.publish, publish_row); the stub spells each signature
/// out. None is the option's default; an unknown name is the TypeError Python raises for
/// one, a value of the wrong type an `InvalidArgumentError`.
pub fn publish_options(
    py: Python<'_>,
    call: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<PublishOptions> {
    let mut out = PublishOptions::default();
    for (name, value) in options.into_iter().flatten() {
        let name: String = name.extract()?;
        let value = Some(value).filter(|v| !v.is_none());
        match name.as_str() {
            "tag" => out.tag = opt_text(&name, value)?,
            "key" => out.key = opt_text(&name, value)?,
            "headers" => out.headers = convert::headers(value.as_ref())?,
            "ordering_key" => out.ordering_key = opt_text(&name, value)?,
            "idempotency_key" => out.idempotency_key = opt_text(&name, value)?,
            "delay" => out.delay = convert::opt_seconds(&name, value.as_ref())?,
            "deliver_at" => {
                out.deliver_at = value
                    .map(|d| convert::aware_datetime(&name, &d))
                    .transpose()?
            }
            "priority" => out.priority = convert::opt_int(&name, value.as_ref())?.unwrap_or(0),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{call}() got an unexpected keyword argument '{name}'"
                )));
            }
        }
    }
    crate::trace::inject(py, &mut out.headers)?;
    Ok(out)
}

fn opt_text(what: &str, value: Option<Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    value
        .map(|v| {
            v.extract::<String>().map_err(|_| {
                let ty = v
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                invalid(format!("{what} must be a str, not {ty}"))
            })
        })
        .transpose()
}

#[pyclass(name = "Message", module = "ferrymq", frozen)]
pub struct PyMessage {
    pub inner: ferrymq::Message,
}

#[pymethods]
impl PyMessage {
    #[new]
    #[pyo3(signature = (topic, payload, **options))]
    fn new(
        py: Python<'_>,
        topic: String,
        payload: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let (payload, options) = publish_args(py, "Message", payload, options)?;
        Ok(PyMessage {
            inner: ferrymq::Message::new(topic, payload).with_options(options),
        })
    }

    #[getter]
    fn topic(&self) -> &str {
        &self.inner.topic
    }

    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.payload)
    }

    fn __repr__(&self) -> String {
        format!(
            "Message(topic={:?}, {} bytes)",
            self.inner.topic,
            self.inner.payload.len()
        )
    }
}

#[pyclass(name = "RetryPolicy", module = "ferrymq", frozen)]
#[derive(Clone)]
pub struct PyRetryPolicy {
    pub inner: ferrymq::RetryPolicy,
}

#[pymethods]
impl PyRetryPolicy {
    /// RocketMQ's schedule: 10s 30s 1m 2m ... 1h 2h, 16 retries (the default).
    #[staticmethod]
    fn rocketmq() -> Self {
        PyRetryPolicy {
            inner: ferrymq::RetryPolicy::rocketmq(),
        }
    }

    /// Alipay's notification schedule: 4m 10m 10m 1h 2h 6h 15h.
    #[staticmethod]
    fn alipay() -> Self {
        PyRetryPolicy {
            inner: ferrymq::RetryPolicy::alipay(),
        }
    }

    /// WeChat Pay's notification schedule: 15s 15s 30s 3m 10m 20m 30m 30m 30m 60m 3h 3h 3h 6h 6h.
    #[staticmethod]
    fn wechat_pay() -> Self {
        PyRetryPolicy {
            inner: ferrymq::RetryPolicy::wechat_pay(),
        }
    }

    #[staticmethod]
    #[pyo3(
        signature = (
            initial=None,
            max_delay=None,
            max_retries=convert::Int(ferrymq::defaults::EXPONENTIAL_MAX_RETRIES as i64),
            jitter=ferrymq::defaults::EXPONENTIAL_JITTER
        ),
        text_signature = "(initial=None, max_delay=None, max_retries=16, jitter=0.1)"
    )]
    fn exponential(
        initial: Option<&Bound<'_, PyAny>>,
        max_delay: Option<&Bound<'_, PyAny>>,
        max_retries: convert::Int,
        jitter: f64,
    ) -> PyResult<Self> {
        let max_retries: u32 = max_retries.get("max_retries")?;
        let initial = convert::opt_seconds("initial", initial)?
            .unwrap_or(ferrymq::defaults::EXPONENTIAL_INITIAL);
        let max_delay = convert::opt_seconds("max_delay", max_delay)?
            .unwrap_or(ferrymq::defaults::EXPONENTIAL_MAX_DELAY);
        Ok(PyRetryPolicy {
            inner: ferrymq::RetryPolicy::exponential(initial, max_delay, max_retries, jitter)
                .py_err()?,
        })
    }

    /// Explicit delays in seconds; the number of delays is the number of retries.
    #[staticmethod]
    fn fixed(delays: &Bound<'_, PyAny>) -> PyResult<Self> {
        let items = delays
            .try_iter()
            .map_err(|_| invalid("delays must be a list of seconds"))?;
        let delays = items
            .map(|d| convert::seconds("delay", &d?))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyRetryPolicy {
            inner: ferrymq::RetryPolicy::fixed(delays).py_err()?,
        })
    }

    #[getter]
    fn max_retries(&self) -> u32 {
        self.inner.max_retries()
    }

    fn __repr__(&self) -> String {
        format!("RetryPolicy({})", self.inner.encode())
    }
}

#[pyclass(name = "Resolution", module = "ferrymq", eq, eq_int, frozen)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum PyResolution {
    COMMIT,
    ROLLBACK,
    UNKNOWN,
}

impl From<PyResolution> for ferrymq::Resolution {
    fn from(r: PyResolution) -> Self {
        match r {
            PyResolution::COMMIT => ferrymq::Resolution::Commit,
            PyResolution::ROLLBACK => ferrymq::Resolution::Rollback,
            PyResolution::UNKNOWN => ferrymq::Resolution::Unknown,
        }
    }
}

impl From<ferrymq::Resolution> for PyResolution {
    fn from(r: ferrymq::Resolution) -> Self {
        match r {
            ferrymq::Resolution::Commit => PyResolution::COMMIT,
            ferrymq::Resolution::Rollback => PyResolution::ROLLBACK,
            ferrymq::Resolution::Unknown => PyResolution::UNKNOWN,
        }
    }
}

#[pyclass(name = "Delivery", module = "ferrymq", frozen)]
pub struct PyDelivery {
    q: Queue,
    d: Mutex<ferrymq::Delivery>,
}

impl PyDelivery {
    pub fn new(q: Queue, d: ferrymq::Delivery) -> Self {
        PyDelivery {
            q,
            d: Mutex::new(d),
        }
    }

    pub fn get(&self) -> ferrymq::Delivery {
        self.read(Clone::clone)
    }

    /// Reads one field without cloning the whole delivery (its payload may be megabytes).
    pub fn read<T>(&self, f: impl FnOnce(&ferrymq::Delivery) -> T) -> T {
        f(&self.d.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[pymethods]
impl PyDelivery {
    #[getter]
    fn message_id(&self) -> i64 {
        self.read(|d| d.message_id)
    }
    #[getter]
    fn topic(&self) -> String {
        self.read(|d| d.topic.clone())
    }
    #[getter]
    fn tag(&self) -> Option<String> {
        self.read(|d| d.tag.clone())
    }
    #[getter]
    fn key(&self) -> Option<String> {
        self.read(|d| d.key.clone())
    }
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.read(|d| PyBytes::new(py, &d.payload))
    }
    #[getter]
    fn headers(&self) -> BTreeMap<String, String> {
        self.read(|d| d.headers.clone())
    }
    #[getter]
    fn ordering_key(&self) -> Option<String> {
        self.read(|d| d.ordering_key.clone())
    }
    /// 0 to 9: higher is received first within a consumer group.
    #[getter]
    fn priority(&self) -> i32 {
        self.read(|d| d.priority)
    }
    #[getter]
    fn attempt(&self) -> u32 {
        self.read(|d| d.attempt)
    }
    /// The consumer span of this attempt, current inside `with delivery.span():`
    /// (OpenTelemetry; yields None without opentelemetry-api).
    fn span<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        crate::trace::delivery_span(slf.as_any())
    }
    #[getter]
    fn consumer_group(&self) -> String {
        self.read(|d| d.consumer_group.clone())
    }
    #[getter]
    fn published_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::datetime(py, self.read(|d| d.published_at))
    }
    #[getter]
    fn lease_until<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::datetime(py, self.read(|d| d.lease_until))
    }

    /// Ends the delivery. LeaseLostError if another consumer took it over.
    fn ack(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.read(|d| self.q.ack(d))).py_err()
    }

    /// Retries on the group's schedule (or after `delay` seconds); dead past the last retry.
    #[pyo3(signature = (reason="", delay=None))]
    fn nack(&self, py: Python<'_>, reason: &str, delay: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let delay = convert::opt_seconds("delay", delay)?;
        py.detach(|| self.read(|d| self.q.nack(d, reason, delay)))
            .py_err()
    }

    /// Renews the lease to `lease` seconds from now.
    fn extend(&self, py: Python<'_>, lease: &Bound<'_, PyAny>) -> PyResult<()> {
        let lease = convert::seconds("lease", lease)?;
        py.detach(|| {
            self.q
                .extend(&mut self.d.lock().unwrap_or_else(|e| e.into_inner()), lease)
        })
        .py_err()
    }

    /// Acks when `error` is None, nacks with it otherwise; returns "acked", "retrying",
    /// "dead" or "lease_lost".
    #[pyo3(signature = (error=None))]
    fn settle(&self, py: Python<'_>, error: Option<String>) -> PyResult<&'static str> {
        let outcome = error.map_or(Ok(()), Err);
        py.detach(|| self.read(|d| self.q.settle(d, outcome)))
            .py_err()
            .map(ferrymq::Settled::as_str)
    }

    fn ack_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (q, d) = (self.q.clone(), self.get());
        pyo3_async_runtimes::tokio::future_into_py(py, async move { q.ack_async(d).await.py_err() })
    }

    #[pyo3(signature = (reason="", delay=None))]
    fn nack_async<'py>(
        &self,
        py: Python<'py>,
        reason: &str,
        delay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let delay = convert::opt_seconds("delay", delay)?;
        let (q, d, reason) = (self.q.clone(), self.get(), reason.to_owned());
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            q.nack_async(d, reason, delay).await.py_err()
        })
    }

    #[pyo3(signature = (error=None))]
    fn settle_async<'py>(
        &self,
        py: Python<'py>,
        error: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (q, d) = (self.q.clone(), self.get());
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let outcome = error.map_or(Ok(()), Err);
            tokio::task::spawn_blocking(move || q.settle(&d, outcome))
                .await
                .map_err(|e| crate::errors::StorageError::new_err(e.to_string()))?
                .py_err()
                .map(ferrymq::Settled::as_str)
        })
    }

    fn __repr__(&self) -> String {
        let d = self.get();
        format!(
            "Delivery(message_id={}, topic={:?}, consumer_group={:?}, attempt={})",
            d.message_id, d.topic, d.consumer_group, d.attempt
        )
    }
}

#[pyclass(name = "HalfMessage", module = "ferrymq", frozen)]
pub struct PyHalfMessage {
    pub inner: ferrymq::HalfMessage,
}

#[pymethods]
impl PyHalfMessage {
    #[getter]
    fn id(&self) -> i64 {
        self.inner.id
    }
    /// Makes the message deliverable; a no-op if already committed.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.commit()).py_err()
    }
    /// Discards the message (kept for audit); a no-op if already rolled back.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.rollback()).py_err()
    }
    fn __repr__(&self) -> String {
        format!("HalfMessage(id={})", self.inner.id)
    }
}

#[pyclass(name = "Worker", module = "ferrymq", frozen)]
pub struct PyWorker {
    pub inner: Mutex<Option<ferrymq::Worker>>,
}

#[pymethods]
impl PyWorker {
    /// Stops the threads after the deliveries in hand are settled, and waits for them.
    fn stop(&self, py: Python<'_>) {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut w) = taken {
            // The handlers need the GIL to finish: wait without it.
            py.detach(move || w.stop());
        }
    }

    #[getter]
    fn running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|w| w.is_running())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py);
        false
    }
}
