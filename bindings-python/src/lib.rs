//! The `ferrymq._native` extension module: Python classes over the ferrymq core. Every
//! queue decision lives in the core; this crate converts types and errors only.

mod callbacks;
mod consumer;
mod convert;
mod errors;
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
    m.add_class::<queue::PyQueue>()?;
    m.add_class::<tx::PyTransaction>()?;
    m.add_class::<types::PyMessage>()?;
    m.add_class::<types::PyRetryPolicy>()?;
    m.add_class::<types::PyResolution>()?;
    m.add_class::<types::PyDelivery>()?;
    m.add_class::<types::PyHalfMessage>()?;
    m.add_class::<types::PyWorker>()?;
    m.add_class::<consumer::PyConsumer>()?;
    views::register(m)?;
    m.add_class::<testing::PyManualClock>()?;
    sql::register(m)?;
    keys::register(m)?;
    trace::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
