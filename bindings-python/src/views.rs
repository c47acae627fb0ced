//! Read-only snapshots returned by stats(), message(), find(), half_messages() and
//! dead_letters(): plain attribute bags, built once from the core's structs.

use crate::convert::datetime;
use crate::types::PyResolution;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::collections::BTreeMap;

/// Adds every view class to the module: a new view is registered here, next to its
/// definition, not in `lib.rs`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStats>()?;
    m.add_class::<PyTopicStats>()?;
    m.add_class::<PyTopicInfo>()?;
    m.add_class::<PyGroupStats>()?;
    m.add_class::<PyScheduleInfo>()?;
    m.add_class::<PyMessageInfo>()?;
    m.add_class::<PyDeliveryInfo>()?;
    m.add_class::<PyAttempt>()?;
    m.add_class::<PyCheck>()?;
    m.add_class::<PyDeadLetter>()?;
    m.add_class::<PyAuditRecord>()?;
    Ok(())
}

/// `Queue.topics()`: one topic, its kept messages, ready deliveries and groups.
#[pyclass(name = "TopicInfo", module = "ferrymq", frozen, get_all)]
pub struct PyTopicInfo {
    name: String,
    messages: u64,
    ready: u64,
    groups: Vec<String>,
}

impl From<ferrymq::TopicInfo> for PyTopicInfo {
    fn from(t: ferrymq::TopicInfo) -> Self {
        let ferrymq::TopicInfo {
            name,
            messages,
            ready,
            groups,
        } = t;
        PyTopicInfo {
            name,
            messages,
            ready,
            groups,
        }
    }
}

#[pyclass(name = "TopicStats", module = "ferrymq", frozen, get_all)]
pub struct PyTopicStats {
    messages: u64,
    half: u64,
}

#[pyclass(name = "GroupStats", module = "ferrymq", frozen, get_all)]
pub struct PyGroupStats {
    topic: String,
    ready: u64,
    scheduled: u64,
    inflight: u64,
    retrying: u64,
    dead: u64,
    /// Seconds, or None when nothing is ready.
    oldest_ready_age: Option<f64>,
    paused: bool,
}

#[pyclass(name = "Stats", module = "ferrymq", frozen, get_all)]
pub struct PyStats {
    topics: BTreeMap<String, Py<PyTopicStats>>,
    groups: BTreeMap<String, Py<PyGroupStats>>,
}

pub fn stats(py: Python<'_>, s: ferrymq::Stats) -> PyResult<PyStats> {
    let topics = s
        .topics
        .into_iter()
        .map(|(k, t)| {
            Ok((
                k,
                Py::new(
                    py,
                    PyTopicStats {
                        messages: t.messages,
                        half: t.half,
                    },
                )?,
            ))
        })
        .collect::<PyResult<_>>()?;
    let groups = s
        .groups
        .into_iter()
        .map(|(k, g)| {
            let v = PyGroupStats {
                topic: g.topic,
                ready: g.ready,
                scheduled: g.scheduled,
                inflight: g.inflight,
                retrying: g.retrying,
                dead: g.dead,
                oldest_ready_age: g.oldest_ready_age.map(|d| d.as_secs_f64()),
                paused: g.paused,
            };
            Ok((k, Py::new(py, v)?))
        })
        .collect::<PyResult<_>>()?;
    Ok(PyStats { topics, groups })
}

#[pyclass(name = "AttemptRecord", module = "ferrymq", frozen, get_all)]
pub struct PyAttempt {
    attempt: u32,
    started_at: Py<PyAny>,
    ended_at: Option<Py<PyAny>>,
    /// "inflight", "acked", "nacked" or "lease_expired".
    outcome: &'static str,
    error: Option<String>,
}

#[pyclass(name = "DeliveryInfo", module = "ferrymq", frozen, get_all)]
pub struct PyDeliveryInfo {
    /// "ready", "scheduled", "inflight", "acked" or "dead".
    state: &'static str,
    attempts: u32,
    last_error: Option<String>,
    history: Vec<Py<PyAttempt>>,
}

#[pyclass(name = "CheckRecord", module = "ferrymq", frozen, get_all)]
pub struct PyCheck {
    at: Py<PyAny>,
    resolution: PyResolution,
    error: Option<String>,
}

#[pyclass(name = "MessageInfo", module = "ferrymq", frozen, get_all)]
pub struct PyMessageInfo {
    id: i64,
    topic: String,
    tag: Option<String>,
    key: Option<String>,
    payload: Py<PyBytes>,
    headers: BTreeMap<String, String>,
    ordering_key: Option<String>,
    published_at: Py<PyAny>,
    deliver_at: Py<PyAny>,
    /// "half", "committed" or "rolled_back".
    state: &'static str,
    priority: i32,
    deliveries: BTreeMap<String, Py<PyDeliveryInfo>>,
    checks: Vec<Py<PyCheck>>,
}

#[pymethods]
impl PyMessageInfo {
    fn __repr__(&self) -> String {
        format!(
            "MessageInfo(id={}, topic={:?}, state={:?})",
            self.id, self.topic, self.state
        )
    }
}

fn history(py: Python<'_>, h: Vec<ferrymq::AttemptRecord>) -> PyResult<Vec<Py<PyAttempt>>> {
    h.into_iter()
        .map(|a| {
            let v = PyAttempt {
                attempt: a.attempt,
                started_at: datetime(py, a.started_at)?.unbind(),
                ended_at: a
                    .ended_at
                    .map(|t| datetime(py, t).map(Bound::unbind))
                    .transpose()?,
                outcome: a.outcome.as_str(),
                error: a.error,
            };
            Py::new(py, v)
        })
        .collect()
}

pub fn message_info(py: Python<'_>, m: ferrymq::MessageInfo) -> PyResult<PyMessageInfo> {
    let deliveries = m
        .deliveries
        .into_iter()
        .map(|(g, d)| {
            let v = PyDeliveryInfo {
                state: d.state.as_str(),
                attempts: d.attempts,
                last_error: d.last_error,
                history: history(py, d.history)?,
            };
            Ok((g, Py::new(py, v)?))
        })
        .collect::<PyResult<_>>()?;
    let checks = m
        .checks
        .into_iter()
        .map(|c| {
            let v = PyCheck {
                at: datetime(py, c.at)?.unbind(),
                resolution: c.resolution.into(),
                error: c.error,
            };
            Py::new(py, v)
        })
        .collect::<PyResult<_>>()?;
    Ok(PyMessageInfo {
        id: m.id,
        topic: m.topic,
        tag: m.tag,
        key: m.key,
        payload: PyBytes::new(py, &m.payload).unbind(),
        headers: m.headers,
        ordering_key: m.ordering_key,
        published_at: datetime(py, m.published_at)?.unbind(),
        deliver_at: datetime(py, m.deliver_at)?.unbind(),
        state: m.state.as_str(),
        priority: m.priority,
        deliveries,
        checks,
    })
}

#[pyclass(name = "DeadLetter", module = "ferrymq", frozen, get_all)]
pub struct PyDeadLetter {
    message_id: i64,
    topic: String,
    tag: Option<String>,
    key: Option<String>,
    payload: Py<PyBytes>,
    headers: BTreeMap<String, String>,
    attempts: u32,
    last_error: Option<String>,
    died_at: Py<PyAny>,
    history: Vec<Py<PyAttempt>>,
}

pub fn dead_letter(py: Python<'_>, d: ferrymq::DeadLetter) -> PyResult<PyDeadLetter> {
    Ok(PyDeadLetter {
        message_id: d.message_id,
        topic: d.topic,
        tag: d.tag,
        key: d.key,
        payload: PyBytes::new(py, &d.payload).unbind(),
        headers: d.headers,
        attempts: d.attempts,
        last_error: d.last_error,
        died_at: datetime(py, d.died_at)?.unbind(),
        history: history(py, d.history)?,
    })
}

#[pyclass(name = "ScheduleInfo", module = "ferrymq", frozen, get_all)]
pub struct PyScheduleInfo {
    name: String,
    topic: String,
    cron: Option<String>,
    /// A `datetime.timedelta`, or None for a cron schedule.
    every: Option<Py<PyAny>>,
    tz: Option<String>,
    /// An aware UTC `datetime`.
    next_at: Py<PyAny>,
    fired: u64,
    repeat_left: Option<u64>,
    /// "catch_up", "once" or "skip".
    missed: &'static str,
    tag: Option<String>,
    key: Option<String>,
    headers: BTreeMap<String, String>,
}

pub fn schedule_info(py: Python<'_>, s: ferrymq::ScheduleInfo) -> PyResult<PyScheduleInfo> {
    let every = match s.every {
        Some(d) => {
            let delta = py.import("datetime")?.getattr("timedelta")?;
            let kw = pyo3::types::PyDict::new(py);
            kw.set_item("milliseconds", d.as_millis() as u64)?;
            Some(delta.call((), Some(&kw))?.unbind())
        }
        None => None,
    };
    Ok(PyScheduleInfo {
        name: s.name,
        topic: s.topic,
        cron: s.cron,
        every,
        tz: s.tz,
        next_at: datetime(py, s.next_at)?.unbind(),
        fired: s.fired,
        repeat_left: s.repeat_left,
        missed: s.missed.as_str(),
        tag: s.tag,
        key: s.key,
        headers: s.headers,
    })
}

/// `Queue.audit()`: one operator action of the audit trail.
#[pyclass(name = "AuditRecord", module = "ferrymq", frozen, get_all)]
pub struct PyAuditRecord {
    id: i64,
    /// An aware UTC `datetime`.
    at: Py<PyAny>,
    action: String,
    target: String,
    /// JSON text.
    detail: Option<String>,
    pid: i64,
    process: String,
    host: String,
    user: String,
    reason: Option<String>,
}

pub fn audit_record(py: Python<'_>, r: ferrymq::AuditRecord) -> PyResult<PyAuditRecord> {
    Ok(PyAuditRecord {
        id: r.id,
        at: datetime(py, r.at)?.unbind(),
        action: r.action,
        target: r.target,
        detail: r.detail,
        pid: r.pid,
        process: r.process,
        host: r.host,
        user: r.user,
        reason: r.reason,
    })
}
