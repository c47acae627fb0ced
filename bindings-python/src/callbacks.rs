//! Python callables as core callbacks: the checker of half messages and worker handlers.
//! An exception becomes `Err(str(exc))`, which the core turns into an unknown answer or a
//! nack; nothing raised in a callback reaches the thread that called it.

use crate::types::{PyDelivery, PyResolution};
use crate::views::ToHost;
use ferrymq::{Delivery, MessageInfo, Queue, Resolution};
use pyo3::prelude::*;

/// `str(exc)`, or the exception's type name when that is empty.
pub fn exc_text(py: Python<'_>, e: &PyErr) -> String {
    let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    if text.is_empty() {
        e.get_type(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "exception".into())
    } else {
        text
    }
}

/// A coroutine returned by a sync callback was never going to run: say so, and close it
/// so Python does not warn that it was never awaited.
fn refuse_coroutine(out: &Bound<'_, PyAny>, what: &str) -> Result<(), String> {
    if out.hasattr("__await__").unwrap_or(false) {
        let _ = out.call_method0("close");
        return Err(format!(
            "{what} returned a coroutine; pass a plain function (or use run_worker for async handlers)"
        ));
    }
    Ok(())
}

pub fn checker(
    cb: Py<PyAny>,
) -> impl Fn(&MessageInfo) -> Result<Resolution, String> + Send + Sync + 'static {
    move |info| {
        Python::attach(|py| {
            let arg = info.clone().to_host(py).map_err(|e| exc_text(py, &e))?;
            let out = cb.call1(py, (arg,)).map_err(|e| exc_text(py, &e))?;
            let out = out.bind(py);
            refuse_coroutine(out, "the checker")?;
            out.cast::<PyResolution>()
                .map(|r| (*r.get()).into())
                .map_err(|_| {
                    format!(
                        "the checker returned {}, not a Resolution",
                        out.repr().map(|r| r.to_string()).unwrap_or_default()
                    )
                })
        })
    }
}

pub fn handler(
    q: Queue,
    cb: Py<PyAny>,
) -> impl Fn(&Delivery) -> Result<(), String> + Send + Sync + 'static {
    move |d| {
        Python::attach(|py| {
            let arg =
                Py::new(py, PyDelivery::new(q.clone(), d.clone())).map_err(|e| exc_text(py, &e))?;
            let out = cb.call1(py, (arg,)).map_err(|e| exc_text(py, &e))?;
            refuse_coroutine(out.bind(py), "the handler")
        })
    }
}
