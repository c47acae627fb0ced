//! JS values to core types: payloads, milliseconds, counts, ids, SQL values, publish
//! options. A value out of range is an INVALID_ARGUMENT error naming the argument.

use crate::errors::{OrJs, Result, invalid};
use ferrymq::{Message, PublishOptions, Value};
use napi::bindgen_prelude::{BigInt, Buffer, Either, Either5, Either6, Null};
use napi_derive::napi;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `index.js` has already turned `Uint8Array`s into `Buffer`s (without copying).
pub type Payload = Either<Buffer, String>;

pub fn payload(p: &Payload) -> &[u8] {
    match p {
        Either::A(b) => b,
        Either::B(s) => s.as_bytes(),
    }
}

pub fn ms(what: &str, v: f64) -> Result<Duration> {
    ferrymq::seconds(what, v / 1000.0).js()
}

pub fn opt_ms(what: &str, v: Option<f64>) -> Result<Option<Duration>> {
    v.map(|v| ms(what, v)).transpose()
}

/// A whole number in the range of `T`; JS numbers are doubles, so 1.5 or NaN is refused
/// here instead of being truncated.
pub fn count<T: TryFrom<i64>>(what: &str, v: f64) -> Result<T> {
    if v.fract() != 0.0 || !v.is_finite() || v.abs() > 9_007_199_254_740_991.0 {
        return Err(invalid(format!("{what} must be a whole number, got {v}")));
    }
    T::try_from(v as i64).map_err(|_| invalid(format!("{what} is out of range: {v}")))
}

/// A JS number as the core's priority, which checks the range (0 to 9); a fraction or
/// a number past i32 is refused here with the same words.
fn priority(v: f64) -> Result<i32> {
    if v.fract() != 0.0 || !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&v) {
        return Err(invalid(format!(
            "priority must be an integer from 0 to {}, got {v}",
            ferrymq::limits::MAX_PRIORITY
        )));
    }
    Ok(v as i32)
}

pub fn opt_count<T: TryFrom<i64>>(what: &str, v: Option<f64>) -> Result<Option<T>> {
    v.map(|v| count(what, v)).transpose()
}

pub fn id(v: f64) -> Result<i64> {
    count("message id", v)
}

/// Milliseconds since the epoch (a `Date` is converted by `index.js`).
pub fn instant(what: &str, ms_since_epoch: f64) -> Result<SystemTime> {
    // The largest time a JS Date can hold.
    const MAX_DATE_MS: f64 = 8.64e15;
    if !ms_since_epoch.is_finite() || !(0.0..=MAX_DATE_MS).contains(&ms_since_epoch) {
        return Err(invalid(format!(
            "{what} must be a time after 1970 (a Date or milliseconds), got {ms_since_epoch}"
        )));
    }
    Ok(UNIX_EPOCH + Duration::from_millis(ms_since_epoch as u64))
}

pub fn epoch_ms(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(e) => -(e.duration().as_millis() as f64),
    }
}

#[napi(object)]
pub struct PublishOpts {
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: Option<HashMap<String, String>>,
    pub ordering_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub delay_ms: Option<f64>,
    /// Milliseconds since the epoch.
    pub deliver_at_ms: Option<f64>,
    pub priority: Option<f64>,
}

#[napi(object)]
pub struct ScheduleOpts {
    pub cron: Option<String>,
    pub every_ms: Option<f64>,
    pub tz: Option<String>,
    pub repeat: Option<f64>,
    /// Milliseconds since the epoch.
    pub start_at_ms: Option<f64>,
    pub delay_ms: Option<f64>,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: Option<HashMap<String, String>>,
    /// "catch_up", "once" (default) or "skip".
    pub missed: Option<String>,
}

pub fn schedule_options(o: ScheduleOpts) -> Result<ferrymq::ScheduleOptions> {
    Ok(ferrymq::ScheduleOptions {
        cron: o.cron,
        every: opt_ms("everyMs", o.every_ms)?,
        tz: o.tz,
        repeat: opt_count("repeat", o.repeat)?,
        start_at: o.start_at_ms.map(|ms| instant("startAt", ms)).transpose()?,
        delay: opt_ms("delayMs", o.delay_ms)?,
        tag: o.tag,
        key: o.key,
        headers: o.headers.unwrap_or_default().into_iter().collect(),
        missed: match o.missed {
            Some(m) => m.parse::<ferrymq::Missed>().js()?,
            None => ferrymq::Missed::default(),
        },
    })
}

pub fn publish_options(o: Option<PublishOpts>) -> Result<PublishOptions> {
    let mut out = PublishOptions::new();
    let Some(o) = o else { return Ok(out) };
    out.tag = o.tag;
    out.key = o.key;
    out.ordering_key = o.ordering_key;
    out.idempotency_key = o.idempotency_key;
    out.headers = o.headers.unwrap_or_default().into_iter().collect();
    out.delay = opt_ms("delayMs", o.delay_ms)?;
    out.deliver_at = o
        .deliver_at_ms
        .map(|t| instant("deliverAt", t))
        .transpose()?;
    if let Some(p) = o.priority {
        out.priority = priority(p)?;
    }
    Ok(out)
}

#[napi(object)]
pub struct BatchMessage {
    pub topic: String,
    pub payload: Payload,
    pub options: Option<PublishOpts>,
}

pub fn messages(batch: Vec<BatchMessage>) -> Result<Vec<Message>> {
    batch
        .into_iter()
        .map(|m| {
            Ok(
                Message::new(m.topic, payload(&m.payload))
                    .with_options(publish_options(m.options)?),
            )
        })
        .collect()
}

/// `index.js` maps `undefined` to null and booleans to 0/1.
pub type SqlParam = Either5<Null, f64, BigInt, String, Buffer>;

pub fn sql_params(params: Option<Vec<SqlParam>>) -> Result<Vec<Value>> {
    params
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(match p {
                Either5::A(_) => Value::Null,
                Either5::B(n) if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 => {
                    Value::Integer(n as i64)
                }
                Either5::B(n) => Value::Real(n),
                Either5::C(b) => {
                    let (v, lossless) = b.get_i64();
                    if !lossless {
                        return Err(invalid(format!(
                            "parameter {i}: BigInt out of 64-bit range"
                        )));
                    }
                    Value::Integer(v)
                }
                Either5::D(s) => Value::Text(s),
                Either5::E(b) => Value::Blob(b.to_vec()),
            })
        })
        .collect()
}

/// A SQL value out: integers as numbers while exact (|n| < 2^53) and as BigInt beyond,
/// blobs as Buffers, NULL as null.
pub type SqlOut = Either6<Null, i64, BigInt, f64, String, Buffer>;

const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

pub fn sql_out(v: Value) -> SqlOut {
    match v {
        Value::Null => Either6::A(Null),
        Value::Integer(n) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&n) => Either6::B(n),
        Value::Integer(n) => Either6::C(BigInt::from(n)),
        Value::Real(f) => Either6::D(f),
        Value::Text(s) => Either6::E(s),
        Value::Blob(b) => Either6::F(b.into()),
    }
}
