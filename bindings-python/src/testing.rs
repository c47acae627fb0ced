//! The test-only clock, imported as `ferrymq.testing.ManualClock` and passed as
//! `Queue(path, test_clock=clock)`: time then moves only when the test moves it.

use crate::convert::{self, Int};
use crate::errors::invalid;
use pyo3::prelude::*;

#[pyclass(name = "ManualClock", module = "ferrymq.testing", frozen)]
pub struct PyManualClock {
    pub inner: ferrymq::ManualClock,
}

#[pymethods]
impl PyManualClock {
    /// Starts at `start_ms` (milliseconds since the epoch), or at the current time.
    #[new]
    #[pyo3(signature = (start_ms=None))]
    fn new(start_ms: Option<Int>) -> PyResult<Self> {
        let inner = match start_ms {
            Some(ms) => ferrymq::ManualClock::new(ms.get("start_ms")?),
            None => ferrymq::ManualClock::starting_now(),
        };
        Ok(PyManualClock { inner })
    }

    /// Moves the clock forward by `seconds` (int, float or timedelta).
    fn advance(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.advance(convert::seconds("advance", seconds)?);
        Ok(())
    }

    fn set_ms(&self, ms: Int) -> PyResult<()> {
        let ms: i64 = ms.get("ms")?;
        if ms < 0 {
            return Err(invalid("ms must be >= 0"));
        }
        self.inner.set_ms(ms);
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        use ferrymq::Clock;
        self.inner.now_ms()
    }
}
