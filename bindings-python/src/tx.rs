//! `with q.transaction() as tx:` — the outbox. Commits on normal exit, rolls back when
//! the block raises (and the exception propagates).

use crate::convert;
use crate::errors::{OrPy, invalid};
use crate::types::{Batch, PyDelivery, publish_args};
use ferrymq::{Queue, Transaction};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::sync::Mutex;

#[pyclass(name = "Transaction", module = "ferrymq", frozen)]
pub struct PyTransaction {
    q: Queue,
    tx: Mutex<Option<Transaction>>,
}

impl PyTransaction {
    pub fn new(q: Queue) -> Self {
        PyTransaction {
            q,
            tx: Mutex::new(None),
        }
    }

    fn with<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Transaction) -> ferrymq::Result<T> + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        py.detach(|| {
            let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut() {
                Some(tx) => f(tx).map_err(Some),
                None => Err(None),
            }
        })
        .map_err(|e| match e {
            Some(e) => crate::errors::to_py(e),
            None => {
                invalid("the transaction is not open: use it inside `with q.transaction() as tx:`")
            }
        })
    }
}

#[pymethods]
impl PyTransaction {
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let this = slf.get();
        let py = slf.py();
        {
            let guard = this.tx.lock().unwrap_or_else(|e| e.into_inner());
            if guard.as_ref().is_some_and(|t| t.is_open()) {
                return Err(invalid("this transaction is already open"));
            }
        }
        let tx = py.detach(|| this.q.begin()).py_err()?;
        *this.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        Ok(slf.clone())
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let failed = exc_type.is_some_and(|t| !t.is_none());
        // The ended transaction stays, so later use says "already ended".
        let finish = py.detach(|| {
            let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut() {
                Some(tx) if tx.is_open() => {
                    if failed {
                        tx.rollback()
                    } else {
                        tx.commit()
                    }
                }
                _ => Ok(()),
            }
        });
        // When the block raised, its exception wins over a failed rollback.
        if !failed {
            finish.py_err()?;
        }
        Ok(false)
    }

    /// Runs one statement of your SQL with bound parameters; returns rows changed.
    #[pyo3(signature = (sql, params=None))]
    fn execute(
        &self,
        py: Python<'_>,
        sql: String,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let params = convert::sql_params(params)?;
        self.with(py, |tx| tx.execute(&sql, &params))
    }

    /// Runs one query of your SQL; returns every row as a tuple.
    #[pyo3(signature = (sql, params=None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        sql: String,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let params = convert::sql_params(params)?;
        let rows = self.with(py, |tx| tx.query(&sql, &params))?;
        let tuples = rows
            .iter()
            .map(|r| convert::row(py, r))
            .collect::<PyResult<Vec<Bound<'py, PyTuple>>>>()?;
        PyList::new(py, tuples)
    }

    #[pyo3(signature = (topic, payload, **options))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: String,
        payload: &Bound<'_, PyAny>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<i64> {
        let (payload, options) = publish_args(py, "publish", payload, options)?;
        self.with(py, |tx| tx.publish(&topic, &payload, options))
    }

    fn publish_batch(&self, py: Python<'_>, messages: Batch<'_>) -> PyResult<Vec<i64>> {
        let batch = crate::trace::traced_batch(py, &messages)?;
        self.with(py, |tx| tx.publish_batch(&batch))
    }

    /// Acks in this transaction: LeaseLostError here rolls your writes back with it.
    fn ack(&self, py: Python<'_>, delivery: PyRef<'_, PyDelivery>) -> PyResult<()> {
        let d = delivery.get();
        self.with(py, |tx| tx.ack(&d))
    }

    #[pyo3(signature = (delivery, reason="", delay=None))]
    fn nack(
        &self,
        py: Python<'_>,
        delivery: PyRef<'_, PyDelivery>,
        reason: &str,
        delay: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let delay = convert::opt_seconds("delay", delay)?;
        let d = delivery.get();
        self.with(py, |tx| tx.nack(&d, reason, delay))
    }

    /// The inbox: True the first time `key` is seen within `window` (seconds or a
    /// timedelta; None: a week), False for a redelivery. Remembered only if this
    /// transaction commits.
    #[pyo3(signature = (key, *, window=None))]
    fn inbox(
        &self,
        py: Python<'_>,
        key: String,
        window: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let window = convert::opt_seconds("window", window)?;
        self.with(py, |tx| tx.inbox(&key, window))
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |tx| tx.commit())
    }

    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |tx| tx.rollback())
    }
}
