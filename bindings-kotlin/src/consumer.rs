//! `FfiConsumer`: the core's consumer (`ferrymq::Consumer`) behind `Queue.consume`'s
//! `Flow`. `next_now` claims on the calling thread (one short write); `next_async` waits
//! holding no thread and leaves what came in an `FfiReceiveSlot` (see there why). The
//! core renews the lease of each delivery handed out until `done`, and `end` (the
//! Flow's `finally`, on completion or cancellation) puts back what is still held.

use crate::delivery::{FfiDelivery, FfiReceiveSlot, Received, received};
use crate::error::FfiResult;
use ferrymq::Queue;
use std::sync::Arc;

#[derive(uniffi::Object)]
pub struct FfiConsumer {
    q: Queue,
    c: ferrymq::Consumer,
}

impl FfiConsumer {
    pub(crate) fn new(q: Queue, c: ferrymq::Consumer) -> Arc<Self> {
        Arc::new(FfiConsumer { q, c })
    }
}

#[uniffi::export]
impl FfiConsumer {
    /// A delivery ready now (its handle owned by the caller), or null.
    pub fn next_now(&self) -> FfiResult<Option<Received>> {
        Ok(self.c.try_next()?.map(|d| received(&self.q, d)))
    }

    /// The loop is done with the delivery of `handle`: its lease is no longer renewed.
    pub fn done(&self, handle: u64) -> FfiResult<()> {
        let d = FfiDelivery::get(handle)?.snapshot();
        self.c.done(&d);
        Ok(())
    }

    /// Stops renewing and puts back every delivery held and not settled. (Not `close`:
    /// uniffi gives every object a `close` that frees its handle.)
    pub fn end(&self) {
        self.c.close();
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl FfiConsumer {
    /// Waits up to the consumer's wait; leaves the delivery (if one came) in `slot` and
    /// returns how many it left (0 or 1).
    pub async fn next_async(&self, slot: Arc<FfiReceiveSlot>) -> FfiResult<u32> {
        match self.c.next_async().await? {
            Some(d) => {
                slot.put(&self.q, vec![d]);
                Ok(1)
            }
            None => Ok(0),
        }
    }
}
