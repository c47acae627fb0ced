//! What `ferrymq.publish_in` / `ack_in` / `inbox_in` (python/ferrymq/_sql.py) need from `ferrymq::sql`:
//! the statements' text, the validated parameters of one publish or ack, and the mapping
//! of an error raised by Python's own SQLite library to ferrymq's exceptions. The
//! statements run on the caller's connection, in Python; every check and every decision
//! (validation, the queue's limits and clock, error kinds) stays in the core.

use crate::convert;
use crate::errors::{OrPy, to_py};
use crate::queue::PyQueue;
use crate::types::{PyDelivery, publish_options};
use crate::views::ToHost;
use ferrymq::sql::{self, AckRow, InboxRow, PublishRow};
use pyo3::exceptions::PyBaseException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

/// The parameters of `SQL.publish`, in its order, after the same checks as
/// `Queue.publish` (with `queue`'s max_payload, idempotency window and clock; without
/// one, the defaults and SQLite's clock). The payload comes back as bytes.
#[pyfunction]
#[pyo3(signature = (topic, payload, *, queue=None, **options))]
fn publish_row<'py>(
    py: Python<'py>,
    topic: &str,
    payload: &Bound<'py, PyAny>,
    queue: Option<PyRef<'py, PyQueue>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyTuple>> {
    // bytes are bound as they are (no copy of a payload that may be megabytes).
    let payload = match payload.cast::<PyBytes>() {
        Ok(b) => b.clone(),
        Err(_) => PyBytes::new(py, &convert::payload("payload", payload)?),
    };
    let options = publish_options(py, "publish_row", options)?;
    let q = queue.as_ref().map(|q| q.queue());
    let row = PublishRow::new(topic, payload.as_bytes().len(), &options, q).py_err()?;
    let mut items = vec![PyString::new(py, topic).into_any(), payload.into_any()];
    for v in row.params() {
        items.push(convert::py_value(py, &v)?);
    }
    PyTuple::new(py, items)
}

/// The parameters of `SQL.ack` for `delivery`, acked at `queue`'s clock (without one,
/// SQLite's).
#[pyfunction]
#[pyo3(signature = (delivery, *, queue=None))]
fn ack_row<'py>(
    py: Python<'py>,
    delivery: PyRef<'py, PyDelivery>,
    queue: Option<PyRef<'py, PyQueue>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let q = queue.as_ref().map(|q| q.queue());
    let row = delivery.read(|d| AckRow::new(d, q));
    convert::row(py, &row.params())
}

/// The parameters of `SQL.inbox` (key, now, window_ms) after the same checks as
/// `tx.inbox` (`window`: seconds or a timedelta; None: a week), at `queue`'s clock
/// (without one, SQLite's).
#[pyfunction]
#[pyo3(signature = (key, *, window=None, queue=None))]
fn inbox_row<'py>(
    py: Python<'py>,
    key: &str,
    window: Option<&Bound<'py, PyAny>>,
    queue: Option<PyRef<'py, PyQueue>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let window = convert::opt_seconds("window", window)?;
    let row = InboxRow::new(key, window, queue.as_ref().map(|q| q.queue())).py_err()?;
    convert::row(py, &row.params())
}

/// The ferrymq exception (not raised) for the text of an error Python's SQLite library
/// raised running one of these statements; `delivery`: the one being acked.
#[pyfunction]
#[pyo3(signature = (message, delivery=None))]
fn host_error<'py>(
    py: Python<'py>,
    message: &str,
    delivery: Option<PyRef<'py, PyDelivery>>,
) -> Bound<'py, PyBaseException> {
    let e = match delivery {
        Some(d) => d.read(|d| sql::host_error(message, Some(d))),
        None => sql::host_error(message, None),
    };
    to_py(e).into_value(py).into_bound(py)
}

/// The InvalidArgumentError (not raised) for a connection outside a transaction.
#[pyfunction]
fn no_transaction(py: Python<'_>) -> Bound<'_, PyBaseException> {
    to_py(sql::no_transaction()).into_value(py).into_bound(py)
}

/// Raises InvalidArgumentError when `main_file` (what `SQL.main_file` read on the
/// connection) is not `queue`'s file.
#[pyfunction]
fn check_file(queue: PyRef<'_, PyQueue>, main_file: &str) -> PyResult<()> {
    sql::check_file(queue.queue(), main_file).py_err()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SQL", sql::statements().to_host(m.py())?)?;
    m.add_function(wrap_pyfunction!(inbox_row, m)?)?;
    m.add_function(wrap_pyfunction!(check_file, m)?)?;
    m.add_function(wrap_pyfunction!(publish_row, m)?)?;
    m.add_function(wrap_pyfunction!(ack_row, m)?)?;
    m.add_function(wrap_pyfunction!(host_error, m)?)?;
    m.add_function(wrap_pyfunction!(no_transaction, m)?)?;
    Ok(())
}
