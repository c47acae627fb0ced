//! Boundary values to core types: seconds, counts, publish and receive options.

use crate::error::{FfiError, FfiResult};
use crate::views::Missed;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

pub fn secs(what: &str, s: f64) -> FfiResult<Duration> {
    Ok(ferrymq::seconds(what, s)?)
}

pub fn opt_secs(what: &str, s: Option<f64>) -> FfiResult<Option<Duration>> {
    s.map(|s| secs(what, s)).transpose()
}

/// An `i64` from Kotlin (`Int`/`Long`) into the core's integer type; out of range (a
/// negative count) is `InvalidArgument`.
pub fn int<T: TryFrom<i64>>(what: &str, n: i64) -> FfiResult<T> {
    T::try_from(n).map_err(|_| FfiError::invalid(format!("{what} is out of range: {n}")))
}

/// A count from the core as a Kotlin `Long` (saturating; counts never get near 2^63).
pub fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The optional parts of a message (`publish`, `prepare`, `Message`).
#[derive(uniffi::Record, Default)]
pub struct PublishArgs {
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub ordering_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub delay_secs: Option<f64>,
    pub deliver_at: Option<SystemTime>,
    /// 0 (default) to 9.
    pub priority: Option<i32>,
}

impl PublishArgs {
    pub fn into_core(self) -> FfiResult<ferrymq::PublishOptions> {
        Ok(ferrymq::PublishOptions {
            tag: self.tag,
            key: self.key,
            headers: self.headers.into_iter().collect(),
            ordering_key: self.ordering_key,
            idempotency_key: self.idempotency_key,
            delay: opt_secs("delay", self.delay_secs)?,
            deliver_at: self.deliver_at,
            priority: self.priority.unwrap_or(0),
        })
    }
}

/// One message of `publish_batch`.
#[derive(uniffi::Record)]
pub struct MessageArgs {
    pub topic: String,
    pub payload: Vec<u8>,
    pub options: PublishArgs,
}

pub fn messages(ms: Vec<MessageArgs>) -> FfiResult<Vec<ferrymq::Message>> {
    ms.into_iter()
        .map(|m| Ok(ferrymq::Message::new(m.topic, m.payload).with_options(m.options.into_core()?)))
        .collect()
}

/// `max`, `wait` and `lease` of `receive` and `worker`.
#[derive(uniffi::Record)]
pub struct ReceiveArgs {
    pub max: i64,
    pub wait_secs: f64,
    pub lease_secs: Option<f64>,
}

impl ReceiveArgs {
    pub fn into_core(self) -> FfiResult<ferrymq::ReceiveOptions> {
        let mut o = ferrymq::ReceiveOptions::new()
            .max(int("max", self.max)?)
            .wait(secs("wait", self.wait_secs)?);
        if let Some(l) = opt_secs("lease", self.lease_secs)? {
            o = o.lease(l);
        }
        Ok(o)
    }
}

/// The options of `schedule` (exactly one of `cron` and `every_secs`).
#[derive(uniffi::Record)]
pub struct ScheduleArgs {
    pub cron: Option<String>,
    pub every_secs: Option<f64>,
    pub tz: Option<String>,
    pub repeat: Option<i64>,
    pub start_at: Option<SystemTime>,
    pub delay_secs: Option<f64>,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
    pub missed: Missed,
}

impl ScheduleArgs {
    pub fn into_core(self) -> FfiResult<ferrymq::ScheduleOptions> {
        Ok(ferrymq::ScheduleOptions {
            cron: self.cron,
            every: opt_secs("every", self.every_secs)?,
            tz: self.tz,
            repeat: self.repeat.map(|n| int("repeat", n)).transpose()?,
            start_at: self.start_at,
            delay: opt_secs("delay", self.delay_secs)?,
            tag: self.tag,
            key: self.key,
            headers: self.headers.into_iter().collect(),
            missed: self.missed.into(),
        })
    }
}
