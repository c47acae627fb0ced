//! The records calls return (`stats()`, `message()`, `deadLetters()`, `schedules()`, ...)
//! as plain JS objects. One `#[napi(object)]` per record of the core's list,
//! declared by `ferrymq::host_records!` and filled field by field through [`ToHost`], which is
//! implemented per field *type*: a record added to core needs no code here.
//!
//! Per type: times are `Date`s, durations milliseconds, counts numbers (clamped to
//! 2^63-1), payloads `Buffer`s, states their text, maps plain objects, unset fields `null`.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

// Maps are plain objects.
ferrymq::host_conversions!(map: BTreeMap, same: [(), String, bool, i32, u32, i64]);

macro_rules! clamped {
    ($($t:ty),*) => {$(
        impl ToHost for $t {
            type Host = i64;
            fn to_host(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
clamped!(u64, usize);

/// napi's `chrono_date` makes a JS `Date` of it.
impl ToHost for SystemTime {
    type Host = chrono::DateTime<chrono::Utc>;
    fn to_host(self) -> Self::Host {
        self.into()
    }
}

/// Milliseconds (the unit of every `...Ms` option).
impl ToHost for Duration {
    type Host = f64;
    fn to_host(self) -> f64 {
        self.as_millis() as f64
    }
}

impl ToHost for Vec<u8> {
    type Host = Buffer;
    fn to_host(self) -> Buffer {
        self.into()
    }
}

macro_rules! text {
    ($($t:ty),*) => {$(
        impl ToHost for $t {
            type Host = String;
            fn to_host(self) -> String { self.as_str().to_owned() }
        }
    )*};
}
text!(
    ferrymq::AttemptOutcome,
    ferrymq::DeliveryState,
    ferrymq::MessageState,
    ferrymq::Resolution,
    ferrymq::Missed
);

ferrymq::host_records!(#[napi(object, object_from_js = false)]);
