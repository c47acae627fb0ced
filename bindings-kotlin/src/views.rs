//! The records calls return and the enums they use, as uniffi records and enums. The
//! records are not written here: `ferrymq::host_records!` expands once per record
//! of the core's list, declaring a uniffi record of the same name whose
//! fields are the core's mapped through [`ToHost`], which is implemented per field TYPE.
//! A record added to the core therefore reaches Kotlin with no code here; a field type
//! never converted before fails to compile until it gets a `ToHost` impl.
//!
//! Kotlin idioms by type: `SystemTime` is `java.time.Instant` (uniffi's builtin),
//! `Duration` is `kotlin.time.Duration` (the custom type [`KtDuration`], see uniffi.toml),
//! counts (`u64`) are `Long` clamped at `Long.MAX_VALUE`, `Vec<u8>` is `ByteArray`, maps
//! are `Map`, the core's state enums are the Kotlin enums below.

use crate::convert::count;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

// The types uniffi passes as they are; maps are Kotlin `Map`s.
ferrymq::host_conversions!(map: HashMap, same: [String, i64, i32, u32, u8, bool, SystemTime]);

impl ToHost for u64 {
    type Host = i64;
    fn to_host(self) -> i64 {
        count(self)
    }
}

/// `kotlin.time.Duration` in Kotlin (uniffi.toml's `custom_types.KtDuration`): uniffi's
/// builtin `Duration` would be `java.time.Duration`, which Kotlin code does not use.
pub struct KtDuration(pub Duration);
uniffi::custom_type!(KtDuration, Duration, {
    lower: |d| d.0,
    try_lift: |d| Ok(KtDuration(d)),
});

impl ToHost for Duration {
    type Host = KtDuration;
    fn to_host(self) -> KtDuration {
        KtDuration(self)
    }
}

// One uniffi record per record of the core's list, docs included.
ferrymq::host_records!(#[derive(uniffi::Record)]);

/// A uniffi enum mirroring a core enum of the same variants, converted both ways.
macro_rules! kotlin_enum {
    ($(#[doc = $doc:expr])* $name:ident { $($v:ident),* }) => {
        $(#[doc = $doc])*
        #[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
        pub enum $name { $($v),* }

        impl From<$name> for ferrymq::$name {
            fn from(e: $name) -> Self {
                match e { $($name::$v => ferrymq::$name::$v),* }
            }
        }

        impl ToHost for ferrymq::$name {
            type Host = $name;
            fn to_host(self) -> $name {
                match self { $(ferrymq::$name::$v => $name::$v),* }
            }
        }
    };
}

kotlin_enum!(
    /// A checker's answer about a half message.
    Resolution { Commit, Rollback, Unknown }
);
kotlin_enum!(
    /// RocketMQ's transaction states; `Committed` for ordinary messages.
    MessageState { Half, Committed, RolledBack }
);
kotlin_enum!(DeliveryState {
    Ready,
    Scheduled,
    Inflight,
    Acked,
    Dead
});
kotlin_enum!(AttemptOutcome {
    Inflight,
    Acked,
    Nacked,
    LeaseExpired
});
kotlin_enum!(
    /// What a tick missed while nothing fired gives (`ferrymq::Missed`).
    Missed { CatchUp, Once, Skip }
);
