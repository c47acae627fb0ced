//! `NativeConsumer`: the core's consumer (`ferrymq::Consumer`) for `index.js`'s `consume`
//! (`for await`) and `worker`. `nextNow` claims on the JS thread (a short write, as
//! `receiveNow`); `next` waits on tokio, holding no thread, and ends early when its
//! `ReceiveCancel` fires. The core renews the lease of every delivery handed out until
//! `done`/`settle`, and `close` puts back what is still held.

use crate::delivery::Delivery;
use crate::errors::{OrJs, Result, promise};
use crate::queue::{ReceiveCancel, cancelled};
use ferrymq::Queue;
use napi::Env;
use napi::bindgen_prelude::PromiseRaw;
use napi_derive::napi;
use std::sync::Arc;

#[napi]
pub struct NativeConsumer {
    q: Queue,
    c: Arc<ferrymq::Consumer>,
}

impl NativeConsumer {
    pub(crate) fn new(q: Queue, c: ferrymq::Consumer) -> Self {
        NativeConsumer { q, c: Arc::new(c) }
    }
}

#[napi]
impl NativeConsumer {
    /// How many loops `worker` runs over this consumer.
    #[napi(getter)]
    pub fn concurrency(&self) -> u32 {
        self.c.concurrency() as u32
    }

    /// A delivery ready now, or null; CLOSED once closed.
    #[napi]
    pub fn next_now(&self) -> Result<Option<Delivery>> {
        let d = self.c.try_next().js()?;
        Ok(d.map(|d| Delivery::new(self.q.clone(), d)))
    }

    /// Waits up to the consumer's wait: a delivery, or null if none came (or `cancel`
    /// fired); rejects with CLOSED once closed.
    #[napi]
    pub fn next<'env>(
        &self,
        env: &'env Env,
        cancel: Option<&ReceiveCancel>,
    ) -> Result<PromiseRaw<'env, Option<Delivery>>> {
        let (q, c) = (self.q.clone(), Arc::clone(&self.c));
        let cancel = cancel.map(ReceiveCancel::shared);
        promise(env, async move {
            let got = match cancel {
                None => c.next_async().await,
                Some(stop) => tokio::select! {
                    biased;
                    r = c.next_async() => r,
                    () = cancelled(stop) => Ok(None),
                },
            };
            Ok(got.js()?.map(|d| Delivery::new(q, d)))
        })
    }

    /// The loop is done with `delivery`: its lease is no longer renewed.
    #[napi]
    pub fn done(&self, delivery: &Delivery) {
        delivery.read(|d| self.c.done(d));
    }

    /// Acks when `error` is null, nacks with it otherwise, then `done`.
    #[napi]
    pub fn settle(&self, delivery: &Delivery, error: Option<String>) -> Result<&'static str> {
        let outcome = error.map_or(Ok(()), Err);
        delivery
            .read(|d| self.c.settle(d, outcome))
            .map(ferrymq::Settled::as_str)
            .js()
    }

    /// Stops renewing and puts back every delivery held and not settled.
    #[napi]
    pub fn close(&self) {
        self.c.close();
    }
}
