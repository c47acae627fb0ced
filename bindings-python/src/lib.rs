//! The `ferrymq._native` extension module: Python classes over the ferrymq core. Every
//! queue decision lives in the core; this crate converts types and errors only.

mod callbacks;
mod consumer;
mod convert;
mod errors;
mod interrupt;
mod keys;
mod queue;
mod sql;
mod testing;
mod trace;
mod tx;
mod types;
mod views;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<tx::PyTransaction>()?;
    m.add_class::<types::PyMessage>()?;
    m.add_class::<types::PyRetryPolicy>()?;
    m.add_class::<types::PyResolution>()?;
    m.add_class::<types::PyDelivery>()?;
    m.add_class::<types::PyHalfMessage>()?;
    m.add_class::<types::PyWorker>()?;
    m.add_class::<consumer::PyConsumer>()?;
    views::register(m)?;
    keys::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // ferrymq.Queue subclasses it (ferrymq/__init__.py), so the package exports its own.
    internal(m, |m| m.add_class::<queue::PyQueue>())?;
    internal(m, |m| m.add_class::<testing::PyManualClock>())?;
    internal(m, sql::register)?;
    internal(m, trace::register)?;
    Ok(())
}

/// Registers what only the package's own modules use (ferrymq.testing, _sql, _trace,
/// _cli, and ferrymq.Queue's base) without listing it in `__all__`: `ferrymq/__init__.py` re-exports `__all__` with
/// a star import, so a public class or function added above needs no line there.
fn internal(
    m: &Bound<'_, PyModule>,
    register: impl FnOnce(&Bound<'_, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let all = m.index()?;
    let public = all.len();
    register(m)?;
    all.del_slice(public, all.len())
}
