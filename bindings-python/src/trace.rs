//! Trace propagation and the `ferrymq` command. The Python side (`ferrymq/_trace.py`)
//! reads and writes OpenTelemetry span contexts; which headers a message gets and which
//! received `traceparent` is valid is `ferrymq::trace`'s. `cli_main` runs the operator
//! command (crate ferrymq-cli) for the `ferrymq` console script.

use crate::errors::OrPy;
use crate::types::PyMessage;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyAny;
use std::collections::BTreeMap;

static CURRENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Adds the caller's current span context (`ferrymq._trace._current()`) to `headers`,
/// unless there is no span or the caller gave a `traceparent`.
pub fn inject(py: Python<'_>, headers: &mut BTreeMap<String, String>) -> PyResult<()> {
    if headers.contains_key(ferrymq::trace::TRACEPARENT) {
        return Ok(());
    }
    let current = CURRENT.import(py, "ferrymq._trace", "_current")?.call0()?;
    if current.is_none() {
        return Ok(());
    }
    let (traceparent, tracestate): (String, Option<String>) = current.extract()?;
    ferrymq::trace::inject(headers, &traceparent, tracestate.as_deref()).py_err()?;
    Ok(())
}

/// The messages of a `publish_batch`, each with the current span context unless it
/// carries a `traceparent` (from its caller, or from a span current when it was built).
pub fn traced_batch(
    py: Python<'_>,
    messages: &[PyRef<'_, PyMessage>],
) -> PyResult<Vec<ferrymq::Message>> {
    messages
        .iter()
        .map(|m| {
            let mut message = m.inner.clone();
            inject(py, &mut message.options.headers)?;
            Ok(message)
        })
        .collect()
}

/// A Worker's handler, each call inside the delivery's consumer span
/// (`ferrymq._trace._wrap_handler`; the handler itself without opentelemetry-api).
pub fn wrap_handler(py: Python<'_>, handler: Py<PyAny>) -> PyResult<Py<PyAny>> {
    let wrap = py.import("ferrymq._trace")?.getattr("_wrap_handler")?;
    Ok(wrap.call1((handler,))?.unbind())
}

/// The consumer span of a delivery (`Delivery.span()`), a context manager.
pub fn delivery_span<'py>(delivery: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = delivery.py();
    py.import("ferrymq._trace")?
        .getattr("delivery_span")?
        .call1((delivery,))
}

/// The producer context in a message's headers, as (trace id, span id, flags,
/// tracestate), or None when there is no valid `traceparent`.
#[pyfunction]
fn _trace_extract(
    headers: BTreeMap<String, String>,
) -> Option<(String, String, u8, Option<String>)> {
    ferrymq::trace::extract(&headers).map(|(p, state)| (p.trace_id, p.span_id, p.flags, state))
}

/// Runs the `ferrymq` command with `argv` (without the program name) and returns its exit
/// code. It writes to file descriptors 1 and 2 directly, as the Rust binary does.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let args = std::iter::once("ferrymq".to_string()).chain(argv);
    py.detach(|| ferrymq_cli::main(args))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_trace_extract, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add("TRACEPARENT", ferrymq::trace::TRACEPARENT)?;
    Ok(())
}
