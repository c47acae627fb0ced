//! A received delivery (its data as a record, plus a handle that acks, nacks and extends
//! it), half messages, and workers.

use crate::error::FfiResult;
use crate::handles::Registry;
use ferrymq::{Delivery, Queue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// One delivery as it crosses to Kotlin in one call: the data, and the handle that
/// settles it. The payload and headers move into the record; the handle keeps what
/// settling needs (ids, lease token, ordering key).
#[derive(uniffi::Record)]
pub struct Received {
    /// The id of an `FfiDelivery` in a registry (see `crate::handles`), owned by the
    /// receiver: settled through the structure-free calls of `crate::fast` and released
    /// with `ferrymq_kt_delivery_release` (the Kotlin `Delivery` does both). A uniffi
    /// object would cost two JNA structures per call and one more to free it.
    pub handle: u64,
    pub message_id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    /// The ordering key of the message (not the consumer group).
    pub ordering_key: Option<String>,
    /// 0 to 9.
    pub priority: i32,
    pub attempt: u32,
    pub published_at: SystemTime,
    pub consumer_group: String,
}

pub fn received(q: &Queue, mut d: Delivery) -> Received {
    let payload = std::mem::take(&mut d.payload);
    let headers = std::mem::take(&mut d.headers).into_iter().collect();
    Received {
        message_id: d.message_id,
        topic: d.topic.clone(),
        tag: d.tag.clone(),
        key: d.key.clone(),
        payload,
        headers,
        ordering_key: d.ordering_key.clone(),
        priority: d.priority,
        attempt: d.attempt,
        published_at: d.published_at,
        consumer_group: d.consumer_group.clone(),
        handle: DELIVERIES.insert(Arc::new(FfiDelivery {
            q: q.clone(),
            d: Mutex::new(d),
        })),
    }
}

/// Every delivery handed to Kotlin and not released yet, by handle.
static DELIVERIES: Registry<Arc<FfiDelivery>> = Registry::new("delivery");

/// What settling a delivery needs. Reached from Kotlin by the handle of `Received`.
pub struct FfiDelivery {
    pub(crate) q: Queue,
    d: Mutex<Delivery>,
}

impl FfiDelivery {
    /// The delivery behind a handle of `Received`; `InvalidArgument` for any other
    /// integer (0, released, never handed out).
    pub fn get(handle: u64) -> FfiResult<Arc<FfiDelivery>> {
        DELIVERIES.get(handle, |d| Some(Arc::clone(d)))
    }

    /// How many delivery handles are live (handed out and not released): for tests.
    pub fn live() -> usize {
        DELIVERIES.len()
    }

    /// Drops the reference a `Received` handed out; a no-op for an unknown handle.
    pub fn release(handle: u64) {
        drop(DELIVERIES.remove(handle));
    }

    /// A copy of what settling needs (the payload and headers went to Kotlin), taken
    /// under the lock, which is released before the caller writes: a transaction acking
    /// this delivery on one thread never makes an `extend` on another wait for its write.
    pub fn snapshot(&self) -> Delivery {
        self.lock().clone()
    }

    /// Renews the lease to `lease` from now; returns the new end.
    pub fn extend(&self, lease: Duration) -> FfiResult<SystemTime> {
        let mut d = self.snapshot();
        self.q.extend(&mut d, lease)?;
        self.lock().lease_until = d.lease_until;
        Ok(d.lease_until)
    }

    pub fn lease_until(&self) -> SystemTime {
        self.lock().lease_until
    }

    fn lock(&self) -> MutexGuard<'_, Delivery> {
        self.d.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where `FfiQueue::receive_async` leaves what it received, for `take` to hand over.
///
/// Why not return the deliveries: uniffi lowers an async result when the future
/// completes, so a Kotlin coroutine cancelled between that and reading the result would
/// drop the lowered bytes, and with them the only reference to each handle (which would
/// stay registered for good). The slot is owned by the Kotlin caller instead, who takes
/// the deliveries with a synchronous call (lowered and read in one go) or, when
/// cancelled, closes the slot: the deliveries in it are dropped unsettled (their leases
/// run out as for any delivery never settled) and no handle was ever made for them.
#[derive(uniffi::Object, Default)]
pub struct FfiReceiveSlot {
    got: Mutex<Vec<(Queue, Delivery)>>,
}

impl FfiReceiveSlot {
    pub(crate) fn put(&self, q: &Queue, ds: Vec<Delivery>) {
        let mut got = self.got.lock().unwrap_or_else(|e| e.into_inner());
        got.extend(ds.into_iter().map(|d| (q.clone(), d)));
    }
}

#[uniffi::export]
impl FfiReceiveSlot {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The deliveries left here, each with a new handle owned by the caller; empty when
    /// none are left.
    pub fn take(&self) -> Vec<Received> {
        let got = std::mem::take(&mut *self.got.lock().unwrap_or_else(|e| e.into_inner()));
        got.into_iter().map(|(q, d)| received(&q, d)).collect()
    }
}

#[derive(uniffi::Object)]
pub struct FfiHalfMessage {
    pub(crate) inner: ferrymq::HalfMessage,
}

#[uniffi::export]
impl FfiHalfMessage {
    pub fn id(&self) -> i64 {
        self.inner.id
    }

    pub fn commit(&self) -> FfiResult<()> {
        Ok(self.inner.commit()?)
    }

    pub fn rollback(&self) -> FfiResult<()> {
        Ok(self.inner.rollback()?)
    }
}

#[derive(uniffi::Object)]
pub struct FfiWorker {
    pub(crate) inner: Mutex<Option<ferrymq::Worker>>,
}

#[uniffi::export]
impl FfiWorker {
    /// Stops the threads after the deliveries in hand are settled, and waits for them.
    pub fn stop(&self) {
        let taken = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut w) = taken {
            w.stop();
        }
    }

    pub fn is_running(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|w| w.is_running())
    }
}
