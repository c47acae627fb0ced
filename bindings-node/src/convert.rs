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
fn priority(_what: &str, v: f64) -> Result<i32> {
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

/// Declares the options object of one call: a `#[napi(object)]` struct `$name` of optional
/// fields and `$name::apply`, which sets each field the caller gave on the core's builder
/// `$builder`, converted by its kind. The quoted name is the option as JS callers write it:
/// it names the value in errors and lists the option in [`option_keys`]. Kinds: `ms`
/// (milliseconds to a `Duration`), `count` (a whole number), `instant` (epoch
/// milliseconds), `priority`, `parsed` (text to a core enum), `value` (as is) and `each`
/// (a map, one setter call per entry).
macro_rules! js_options {
    ($(
        $(#[doc = $doc:expr])*
        $name:ident for $builder:ty {
            $( $(#[doc = $fdoc:expr])* $field:ident : $js:ty => $setter:ident($kind:ident $what:literal) ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[napi(object)]
            #[derive(Default)]
            pub struct $name { $( $(#[doc = $fdoc])* pub $field: Option<$js>, )* }

            impl $name {
                pub fn apply(self, mut out: $builder) -> Result<$builder> {
                    $( if let Some(v) = self.$field { js_options!(@set out, $setter, $kind, $what, v); } )*
                    Ok(out)
                }
            }
        )*

        /// The options each call takes, by the names JS callers write (`index.js` refuses
        /// other keys).
        // Registered with Node only outside `cfg(test)` (see lib.rs).
        #[cfg_attr(test, allow(dead_code))]
        #[napi]
        pub fn option_keys() -> HashMap<String, Vec<&'static str>> {
            HashMap::from([$( (stringify!($name).to_owned(), vec![$($what),*]) ),*])
        }
    };
    (@set $out:ident, $setter:ident, each, $what:literal, $v:ident) => {
        for (k, x) in $v {
            $out = $out.$setter(k, x);
        }
    };
    (@set $out:ident, $setter:ident, $kind:ident, $what:literal, $v:ident) => {
        $out = $out.$setter($kind($what, $v)?);
    };
}

fn value<T>(_what: &str, v: T) -> Result<T> {
    Ok(v)
}

fn parsed<T: std::str::FromStr<Err = ferrymq::Error>>(_what: &str, text: String) -> Result<T> {
    text.parse::<T>().js()
}

js_options! {
    /// `new Queue(path, opts)`.
    QueueOpts for ferrymq::Options {
        synchronous: String => synchronous(parsed "synchronous"),
        busy_timeout_ms: f64 => busy_timeout(ms "busyTimeoutMs"),
        max_payload: f64 => max_payload(count "maxPayload"),
        idempotency_window_ms: f64 => idempotency_window(ms "idempotencyWindowMs"),
        check_after_ms: f64 => check_after(ms "checkAfterMs"),
        check_interval_ms: f64 => check_interval(ms "checkIntervalMs"),
        check_max: f64 => check_max(count "checkMax"),
        poll_interval_ms: f64 => poll_interval(ms "pollIntervalMs"),
        max_size: f64 => max_size(count "maxSize"),
        foreign_keys: bool => foreign_keys(value "foreignKeys"),
        max_ready: f64 => max_ready(count "maxReady"),
    }
    /// `subscribe(group, topic, opts)`.
    SubscribeOpts for ferrymq::SubscribeOptions {
        tags: String => tags(value "tags"),
        lease_ms: f64 => lease(ms "leaseMs"),
        max_inflight: f64 => max_inflight(count "maxInflight"),
        /// Deliveries per second.
        rate: f64 => rate(value "rate"),
        burst: f64 => burst(count "burst"),
    }
    /// `receive`, `consume` and `worker`.
    ReceiveOpts for ferrymq::ReceiveOptions {
        max: f64 => max(count "max"),
        wait_ms: f64 => wait(ms "waitMs"),
        lease_ms: f64 => lease(ms "leaseMs"),
    }
    /// Every publish path (`index.js` has turned `deliverAt` into milliseconds).
    PublishOpts for PublishOptions {
        tag: String => tag(value "tag"),
        key: String => key(value "key"),
        headers: HashMap<String, String> => header(each "headers"),
        ordering_key: String => ordering_key(value "orderingKey"),
        idempotency_key: String => idempotency_key(value "idempotencyKey"),
        delay_ms: f64 => delay(ms "delayMs"),
        /// Milliseconds since the epoch.
        deliver_at_ms: f64 => deliver_at(instant "deliverAt"),
        priority: f64 => priority(priority "priority"),
    }
    /// `schedule(name, topic, payload, opts)` (`index.js` has turned `startAt` into
    /// milliseconds).
    ScheduleOpts for ferrymq::ScheduleOptions {
        cron: String => cron(value "cron"),
        every_ms: f64 => every(ms "everyMs"),
        tz: String => tz(value "tz"),
        repeat: f64 => repeat(count "repeat"),
        /// Milliseconds since the epoch.
        start_at_ms: f64 => start_at(instant "startAt"),
        delay_ms: f64 => delay(ms "delayMs"),
        tag: String => tag(value "tag"),
        key: String => key(value "key"),
        headers: HashMap<String, String> => header(each "headers"),
        /// "catch_up", "once" (default) or "skip".
        missed: String => missed(parsed "missed"),
    }
}

pub fn publish_options(o: Option<PublishOpts>) -> Result<PublishOptions> {
    o.map_or(Ok(PublishOptions::new()), |o| {
        o.apply(PublishOptions::new())
    })
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
