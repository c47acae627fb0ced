//! The test-only clock, reachable from JS only through `require('ferrymq/testing')`.

use crate::convert;
use crate::errors::Result;
use napi_derive::napi;

#[napi]
pub struct ManualClock {
    pub(crate) inner: ferrymq::ManualClock,
}

#[napi]
impl ManualClock {
    /// Starts at `startMs` (milliseconds since the epoch), or at the current time.
    #[napi(constructor)]
    pub fn new(start_ms: Option<f64>) -> Result<Self> {
        let inner = match start_ms {
            Some(ms) => ferrymq::ManualClock::new(convert::count("startMs", ms)?),
            None => ferrymq::ManualClock::starting_now(),
        };
        Ok(ManualClock { inner })
    }

    #[napi]
    pub fn advance(&self, ms: f64) -> Result<()> {
        self.inner.advance(convert::ms("advance", ms)?);
        Ok(())
    }

    #[napi]
    pub fn set(&self, ms: f64) -> Result<()> {
        self.inner.set_ms(convert::count("ms", ms)?);
        Ok(())
    }

    #[napi]
    pub fn now(&self) -> i64 {
        use ferrymq::Clock;
        self.inner.now_ms()
    }
}
