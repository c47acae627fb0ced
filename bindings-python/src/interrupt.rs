//! Waits in core that Ctrl-C can end, the way a blocking call of Python's own can.

use pyo3::prelude::*;
use std::sync::Mutex;

/// Runs `wait` without the GIL, handing it a probe that runs Python's signal handlers.
/// When a handler raised (KeyboardInterrupt), the probe tells core to stop waiting and
/// that exception is returned in place of the wait's outcome.
pub fn interruptible<T: Send>(
    py: Python<'_>,
    wait: impl FnOnce(&dyn Fn() -> bool) -> T + Send,
) -> PyResult<T> {
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let got = py.detach(|| {
        let interrupted = || {
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    *raised.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    true
                }
            })
        };
        wait(&interrupted)
    });
    match raised.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(got),
    }
}
