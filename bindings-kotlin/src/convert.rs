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

/// Declares a uniffi record per options struct of core (named after `for`), one line per field: the type
/// Kotlin passes and the function that turns it into the core's field of the same name
/// (given the name, for its error). Every core field is listed, so a field added to core
/// fails to compile here until Kotlin passes it.
macro_rules! ffi_options {
    ($( $(#[doc = $doc:expr])* $name:ident for $core:ident { $( $field:ident: $ty:ty => $conv:path ),* $(,)? } )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(uniffi::Record)]
            pub struct $name { $( pub $field: $ty, )* }

            impl $name {
                pub fn into_core(self) -> FfiResult<ferrymq::$core> {
                    Ok(ferrymq::$core { $( $field: $conv(stringify!($field), self.$field)?, )* })
                }
            }
        )*
    };
}

ffi_options! {
    /// The optional parts of a message (`publish`, `prepare`, `Message`).
    PublishArgs for PublishOptions {
        tag: Option<String> => value,
        key: Option<String> => value,
        headers: HashMap<String, String> => map,
        ordering_key: Option<String> => value,
        idempotency_key: Option<String> => value,
        delay: Option<f64> => opt_secs,
        deliver_at: Option<SystemTime> => value,
        priority: Option<i32> => or_default,
    }
    /// The options of `schedule` (exactly one of `cron` and `every`).
    ScheduleArgs for ScheduleOptions {
        cron: Option<String> => value,
        every: Option<f64> => opt_secs,
        tz: Option<String> => value,
        repeat: Option<i64> => opt_int,
        start_at: Option<SystemTime> => value,
        delay: Option<f64> => opt_secs,
        tag: Option<String> => value,
        key: Option<String> => value,
        headers: HashMap<String, String> => map,
        missed: Missed => into,
    }
}

/// Declares a uniffi record of optional settings of a core builder, one line per field:
/// the type Kotlin passes, the builder method that takes it and the conversion on the way
/// (given the method's name, for its error). An unset field keeps the core's default.
/// Fields after `;` are only declared, for the caller to apply.
macro_rules! ffi_settings {
    ($(#[doc = $doc:expr])* $name:ident for $core:ident {
        $( $(#[$fattr:meta])* $field:ident: $ty:ty => $setter:ident($conv:path) ),* ;
        $( $(#[$pattr:meta])* $pfield:ident: $pty:ty ),* $(,)?
    }) => {
        $(#[doc = $doc])*
        #[derive(uniffi::Record, Default)]
        pub struct $name {
            $( $(#[$fattr])* pub $field: Option<$ty>, )*
            $( $(#[$pattr])* pub $pfield: $pty, )*
        }

        impl $name {
            /// The settings given, over the core's defaults.
            fn settings(&mut self) -> FfiResult<ferrymq::$core> {
                let mut o = ferrymq::$core::default();
                $( if let Some(v) = self.$field.take() { o = o.$setter($conv(stringify!($setter), v)?); } )*
                Ok(o)
            }
        }
    };
}
pub(crate) use ffi_settings;

pub fn value<T>(_what: &str, v: T) -> FfiResult<T> {
    Ok(v)
}

pub fn parsed<T: std::str::FromStr<Err = ferrymq::Error>>(_what: &str, s: String) -> FfiResult<T> {
    Ok(s.parse()?)
}

fn into<T: Into<U>, U>(_what: &str, v: T) -> FfiResult<U> {
    Ok(v.into())
}

/// Unset is the core type's default (priority 0).
fn or_default<T: Default>(_what: &str, v: Option<T>) -> FfiResult<T> {
    Ok(v.unwrap_or_default())
}

fn map<C: FromIterator<(String, String)>>(_what: &str, m: HashMap<String, String>) -> FfiResult<C> {
    Ok(m.into_iter().collect())
}

fn opt_int<T: TryFrom<i64>>(what: &str, n: Option<i64>) -> FfiResult<Option<T>> {
    n.map(|n| int(what, n)).transpose()
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
