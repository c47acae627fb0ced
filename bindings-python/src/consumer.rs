//! `ferrymq.Consumer`: the core's consumer (`ferrymq::Consumer`) as a Python iterator and
//! async iterator. Waiting happens in the core without the GIL (or on tokio, for `async
//! for`); the core renews the lease of the delivery in hand until the loop moves on, and
//! closing (or dropping the consumer, as a `for` loop that breaks does) puts back what it
//! holds. `receive_async` / `settle_async` serve `Queue.run_worker`'s concurrent tasks,
//! which share one consumer and say themselves when they are done with a delivery.

use crate::errors::OrPy;
use crate::interrupt::interruptible;
use crate::types::PyDelivery;
use ferrymq::{Delivery, ErrorKind, Queue};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

#[pyclass(name = "Consumer", module = "ferrymq", frozen)]
pub struct PyConsumer {
    q: Queue,
    c: Arc<ferrymq::Consumer>,
    /// The delivery the iterator handed out last: done with once the loop asks again.
    last: Arc<Mutex<Option<Delivery>>>,
}

impl PyConsumer {
    pub fn new(q: Queue, c: ferrymq::Consumer) -> Self {
        PyConsumer {
            q,
            c: Arc::new(c),
            last: Arc::new(Mutex::new(None)),
        }
    }
}

fn finish_last(c: &ferrymq::Consumer, last: &Mutex<Option<Delivery>>) {
    if let Some(d) = last.lock().unwrap_or_else(|e| e.into_inner()).take() {
        c.done(&d);
    }
}

/// Waits (tokio) until a delivery comes; `None` once the consumer or queue is closed.
async fn next_async(c: &ferrymq::Consumer) -> PyResult<Option<Delivery>> {
    loop {
        match c.next_async().await {
            Ok(Some(d)) => return Ok(Some(d)),
            Ok(None) => {}
            Err(e) if e.kind() == ErrorKind::Closed => return Ok(None),
            Err(e) => return Err(e).py_err(),
        }
    }
}

#[pymethods]
impl PyConsumer {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next delivery, waiting as long as it takes; Ctrl-C ends the wait.
    fn __next__(&self, py: Python<'_>) -> PyResult<PyDelivery> {
        finish_last(&self.c, &self.last);
        loop {
            let got = interruptible(py, |stop| self.c.next_interruptible(Some(stop)))?;
            match got {
                Ok(Some(d)) => {
                    *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.clone());
                    return Ok(PyDelivery::new(self.q.clone(), d));
                }
                Ok(None) => {}
                Err(e) if e.kind() == ErrorKind::Closed => {
                    return Err(PyStopIteration::new_err(()));
                }
                Err(e) => return Err(e).py_err(),
            }
        }
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        finish_last(&self.c, &self.last);
        let (q, c, last) = (self.q.clone(), Arc::clone(&self.c), Arc::clone(&self.last));
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match next_async(&c).await? {
                Some(d) => {
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(d.clone());
                    Ok(PyDelivery::new(q, d))
                }
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }

    /// The next delivery (awaitable), or None once the consumer is closed. The caller
    /// ends it with `settle_async`.
    fn receive_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (q, c) = (self.q.clone(), Arc::clone(&self.c));
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            Ok(next_async(&c).await?.map(|d| PyDelivery::new(q, d)))
        })
    }

    /// Acks when `error` is None, nacks with it otherwise, and stops renewing the lease;
    /// returns "acked", "retrying", "dead" or "lease_lost".
    #[pyo3(signature = (delivery, error=None))]
    fn settle_async<'py>(
        &self,
        py: Python<'py>,
        delivery: &PyDelivery,
        error: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (c, d) = (Arc::clone(&self.c), delivery.get());
        let outcome = error.map_or(Ok(()), Err);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            c.settle_async(d, outcome)
                .await
                .py_err()
                .map(ferrymq::Settled::as_str)
        })
    }

    /// Stops the lease renewals and puts back every delivery held and not settled.
    fn close(&self, py: Python<'_>) {
        let c = Arc::clone(&self.c);
        py.detach(move || c.close());
    }

    #[getter]
    fn closed(&self) -> bool {
        self.c.is_closed()
    }

    /// How many tasks `run_worker` runs over this consumer.
    #[getter]
    fn concurrency(&self) -> usize {
        self.c.concurrency()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}

// Dropped by the garbage collector without `close`: the put-back writes to the file, so it
// runs without the GIL (other Python threads go on meanwhile).
impl Drop for PyConsumer {
    fn drop(&mut self) {
        let c = Arc::clone(&self.c);
        Python::attach(|py| py.detach(move || c.close()));
    }
}
