//! `Delivery` (one leased message), `HalfMessage` and `RetryPolicy`.

use crate::convert::{self, epoch_ms, opt_ms};
use crate::errors::{OrJs, Result};
use chrono::{DateTime, Utc};
use ferrymq::Queue;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use std::collections::HashMap;
use std::sync::Mutex;

#[napi]
pub struct Delivery {
    q: Queue,
    d: Mutex<ferrymq::Delivery>,
}

impl Delivery {
    pub fn new(q: Queue, d: ferrymq::Delivery) -> Self {
        Delivery {
            q,
            d: Mutex::new(d),
        }
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&ferrymq::Delivery) -> T) -> T {
        f(&self.d.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[napi(object)]
pub struct NackOpts {
    pub delay_ms: Option<f64>,
}

/// The delivery's fields as JS getters, each read under the lock.
macro_rules! getters {
    ($($name:ident -> $ty:ty = |$d:ident| $read:expr;)*) => {
        #[napi]
        impl Delivery {
            $(
                #[napi(getter)]
                pub fn $name(&self) -> $ty {
                    self.read(|$d| $read)
                }
            )*
        }
    };
}

getters! {
    message_id -> i64 = |d| d.message_id;
    topic -> String = |d| d.topic.clone();
    tag -> Option<String> = |d| d.tag.clone();
    key -> Option<String> = |d| d.key.clone();
    payload -> Buffer = |d| d.payload.clone().into();
    headers -> HashMap<String, String> = |d| d.headers.clone().into_iter().collect();
    ordering_key -> Option<String> = |d| d.ordering_key.clone();
    priority -> i32 = |d| d.priority;
    attempt -> u32 = |d| d.attempt;
    consumer_group -> String = |d| d.consumer_group.clone();
    published_at_ms -> f64 = |d| epoch_ms(d.published_at);
    lease_until_ms -> f64 = |d| epoch_ms(d.lease_until);
    published_at -> DateTime<Utc> = |d| d.published_at.into();
    lease_until -> DateTime<Utc> = |d| d.lease_until.into();
}

#[napi]
impl Delivery {
    #[napi]
    pub fn ack(&self) -> Result<()> {
        self.read(|d| self.q.ack(d)).js()
    }

    #[napi]
    pub fn nack(&self, reason: Option<String>, opts: Option<NackOpts>) -> Result<()> {
        let delay = opt_ms("delayMs", opts.and_then(|o| o.delay_ms))?;
        self.read(|d| self.q.nack(d, reason.as_deref().unwrap_or(""), delay))
            .js()
    }

    #[napi]
    pub fn extend(&self, lease_ms: f64) -> Result<()> {
        let lease = convert::ms("leaseMs", lease_ms)?;
        let mut d = self.d.lock().unwrap_or_else(|e| e.into_inner());
        self.q.extend(&mut d, lease).js()
    }

    /// Acks when `error` is null, nacks with it otherwise (retry or dead is the core's
    /// decision). A lost lease is reported, not thrown.
    #[napi]
    pub fn settle(&self, error: Option<String>) -> Result<&'static str> {
        let outcome = match error {
            None => Ok(()),
            Some(e) => Err(e),
        };
        self.read(|d| self.q.settle(d, outcome))
            .map(ferrymq::Settled::as_str)
            .js()
    }
}

#[napi]
pub struct HalfMessage {
    pub(crate) inner: ferrymq::HalfMessage,
}

#[napi]
impl HalfMessage {
    #[napi(getter)]
    pub fn id(&self) -> i64 {
        self.inner.id
    }
    #[napi]
    pub fn commit(&self) -> Result<()> {
        self.inner.commit().js()
    }
    #[napi]
    pub fn rollback(&self) -> Result<()> {
        self.inner.rollback().js()
    }
}

#[napi]
pub struct RetryPolicy {
    pub(crate) inner: ferrymq::RetryPolicy,
}

#[napi(object)]
pub struct ExponentialOpts {
    pub initial_ms: Option<f64>,
    pub max_delay_ms: Option<f64>,
    pub max_retries: Option<f64>,
    pub jitter: Option<f64>,
}

#[napi]
impl RetryPolicy {
    #[napi(factory)]
    pub fn rocketmq() -> Self {
        RetryPolicy {
            inner: ferrymq::RetryPolicy::rocketmq(),
        }
    }
    #[napi(factory)]
    pub fn alipay() -> Self {
        RetryPolicy {
            inner: ferrymq::RetryPolicy::alipay(),
        }
    }
    #[napi(factory)]
    pub fn wechat_pay() -> Self {
        RetryPolicy {
            inner: ferrymq::RetryPolicy::wechat_pay(),
        }
    }
    #[napi(factory)]
    pub fn fixed(delays_ms: Vec<f64>) -> Result<Self> {
        let delays = delays_ms
            .into_iter()
            .map(|d| convert::ms("retry delay", d))
            .collect::<Result<Vec<_>>>()?;
        Ok(RetryPolicy {
            inner: ferrymq::RetryPolicy::fixed(delays).js()?,
        })
    }
    #[napi(factory)]
    pub fn exponential(opts: Option<ExponentialOpts>) -> Result<Self> {
        let o = opts.unwrap_or(ExponentialOpts {
            initial_ms: None,
            max_delay_ms: None,
            max_retries: None,
            jitter: None,
        });
        let jitter = o.jitter.unwrap_or(ferrymq::defaults::EXPONENTIAL_JITTER);
        let inner = ferrymq::RetryPolicy::exponential(
            match o.initial_ms {
                Some(ms) => convert::ms("initialMs", ms)?,
                None => ferrymq::defaults::EXPONENTIAL_INITIAL,
            },
            match o.max_delay_ms {
                Some(ms) => convert::ms("maxDelayMs", ms)?,
                None => ferrymq::defaults::EXPONENTIAL_MAX_DELAY,
            },
            match o.max_retries {
                Some(n) => convert::count("maxRetries", n)?,
                None => ferrymq::defaults::EXPONENTIAL_MAX_RETRIES,
            },
            jitter,
        )
        .js()?;
        Ok(RetryPolicy { inner })
    }
    #[napi(getter)]
    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries()
    }
    #[napi(js_name = "toString")]
    pub fn encoded(&self) -> String {
        self.inner.encode()
    }
}
