//! A received delivery (its data as a record, plus a handle that acks, nacks and extends
//! it), half messages, and workers.

use crate::convert::{opt_secs, secs};
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
    pub handle: Arc<FfiDelivery>,
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
        handle: Arc::new(FfiDelivery {
            q: q.clone(),
            d: Mutex::new(d),
        }),
    }
}

#[derive(uniffi::Object)]
pub struct FfiDelivery {
    q: Queue,
    d: Mutex<Delivery>,
}

impl FfiDelivery {
    pub fn lock(&self) -> MutexGuard<'_, Delivery> {
        self.d.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[uniffi::export]
impl FfiDelivery {
    pub fn ack(&self) -> FfiResult<()> {
        Ok(self.q.ack(&self.lock())?)
    }

    pub fn nack(&self, reason: String, delay_secs: Option<f64>) -> FfiResult<()> {
        let delay = opt_secs("delay", delay_secs)?;
        Ok(self.q.nack(&self.lock(), &reason, delay)?)
    }

    /// Renews the lease to `lease_secs` from now; returns the new end of the lease.
    pub fn extend(&self, lease_secs: f64) -> FfiResult<SystemTime> {
        let lease = secs("lease", lease_secs)?;
        let mut d = self.lock();
        self.q.extend(&mut d, lease)?;
        Ok(d.lease_until)
    }

    pub fn lease_until(&self) -> SystemTime {
        self.lock().lease_until
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
