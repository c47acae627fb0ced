//! A received delivery (its data as a record, plus a handle that acks, nacks and extends
//! it), half messages, and workers.

use crate::error::FfiResult;
use ferrymq::{Delivery, Queue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// One delivery as it crosses to Kotlin in one call: the data, and the handle that
/// settles it. The payload and headers move into the record; the handle keeps what
/// settling needs (ids, lease token, ordering group).
#[derive(uniffi::Record)]
pub struct Received {
    /// A raw reference to an `FfiDelivery` (`Arc::into_raw`), owned by the receiver:
    /// settled through the structure-free calls of `crate::fast` and released with
    /// `ferrymq_kt_delivery_release` (the Kotlin `Delivery` does both). A uniffi object
    /// would cost two JNA structures per call and one more to free it.
    pub handle: u64,
    pub message_id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    /// The ordering group of the message (not the consumer group).
    pub group: Option<String>,
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
        group: d.group.clone(),
        attempt: d.attempt,
        published_at: d.published_at,
        consumer_group: d.consumer_group.clone(),
        handle: Arc::into_raw(Arc::new(FfiDelivery {
            q: q.clone(),
            d: Mutex::new(d),
        })) as usize as u64,
    }
}

/// What settling a delivery needs. Reached from Kotlin by the raw handle of `Received`.
pub struct FfiDelivery {
    pub(crate) q: Queue,
    d: Mutex<Delivery>,
}

impl FfiDelivery {
    pub fn lock(&self) -> MutexGuard<'_, Delivery> {
        self.d.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The delivery behind a raw handle of `Received`.
    ///
    /// # Safety
    /// `handle` must come from `Received::handle` and not be released yet; the Kotlin
    /// `Delivery` guarantees this by keeping itself reachable during every call and
    /// releasing the handle only from its cleaner.
    pub unsafe fn borrow<'a>(handle: u64) -> &'a FfiDelivery {
        // SAFETY: per the contract above, the pointer is a live `Arc<FfiDelivery>`.
        unsafe { &*(handle as usize as *const FfiDelivery) }
    }

    /// Drops the reference a `Received` handed out.
    ///
    /// # Safety
    /// `handle` must come from `Received::handle`, and be released once.
    pub unsafe fn release(handle: u64) {
        // SAFETY: per the contract above, this is the reference `into_raw` made.
        drop(unsafe { Arc::from_raw(handle as usize as *const FfiDelivery) });
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
