//! The record list of `api.rs` expands outside the crate the way a binding uses it: a
//! macro of the caller's declares one struct per record with each field's type mapped
//! through a trait of the caller's, and a conversion from core's record.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A toy host: times as milliseconds, enums as text, records as their mirrors.
trait Host {
    type Out;
    fn host(self) -> Self::Out;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl Host for $t {
            type Out = $t;
            fn host(self) -> $t { self }
        }
    )*};
}
same!(String, i64, i32, u32, u64, bool, Vec<u8>);

impl Host for SystemTime {
    type Out = u128;
    fn host(self) -> u128 {
        self.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    }
}
impl Host for Duration {
    type Out = u128;
    fn host(self) -> u128 {
        self.as_millis()
    }
}
impl<T: Host> Host for Option<T> {
    type Out = Option<T::Out>;
    fn host(self) -> Self::Out {
        self.map(T::host)
    }
}
impl Host for Vec<String> {
    type Out = Vec<String>;
    fn host(self) -> Self::Out {
        self
    }
}
impl<T: Host> Host for BTreeMap<String, T> {
    type Out = BTreeMap<String, T::Out>;
    fn host(self) -> Self::Out {
        self.into_iter().map(|(k, v)| (k, v.host())).collect()
    }
}
macro_rules! text {
    ($($t:ty),*) => {$(
        impl Host for $t {
            type Out = &'static str;
            fn host(self) -> &'static str { self.as_str() }
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

macro_rules! mirror {
    ($( $(#[doc = $doc:expr])* $name:ident { $( $(#[doc = $fdoc:expr])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            #[derive(Debug)]
            #[allow(dead_code)]
            struct $name { $( $field: <$ty as Host>::Out, )* }
            impl Host for ferrymq::$name {
                type Out = $name;
                fn host(self) -> $name {
                    let ferrymq::$name { $($field),* } = self;
                    $name { $( $field: $field.host(), )* }
                }
            }
        )*
    };
}
ferrymq::for_each_record!(mirror);

impl Host for Vec<ferrymq::AttemptRecord> {
    type Out = Vec<AttemptRecord>;
    fn host(self) -> Self::Out {
        self.into_iter().map(Host::host).collect()
    }
}
impl Host for Vec<ferrymq::CheckRecord> {
    type Out = Vec<CheckRecord>;
    fn host(self) -> Self::Out {
        self.into_iter().map(Host::host).collect()
    }
}

#[test]
fn a_record_converts_through_the_callers_macro() {
    let dir = tempfile::tempdir().unwrap();
    let q = ferrymq::Queue::open(dir.path().join("q.db"), ferrymq::Options::default()).unwrap();
    q.subscribe("g", "t", Default::default()).unwrap();
    let id = q.publish("t", "x", Default::default()).unwrap();
    let m: MessageInfo = q.message(id).unwrap().host();
    assert_eq!((m.id, m.state, m.payload), (id, "committed", b"x".to_vec()));
    assert_eq!(m.deliveries["g"].state, "ready");
    let s: Stats = q.stats().unwrap().host();
    assert_eq!(s.groups["g"].ready, 1);
}

#[test]
fn the_shapes_list_every_record_with_its_fields() {
    let names: Vec<_> = ferrymq::RECORDS.iter().map(|r| r.name).collect();
    for n in [
        "MessageInfo",
        "DeadLetter",
        "Stats",
        "TopicInfo",
        "AuditRecord",
        "FileCheck",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let info = ferrymq::RECORDS
        .iter()
        .find(|r| r.name == "TopicInfo")
        .unwrap();
    let fields: Vec<_> = info.fields.iter().map(|f| f.0).collect();
    assert_eq!(fields, ["name", "messages", "ready", "groups"]);
    assert!(info.fields[1].2.contains("Committed messages kept"));
}
