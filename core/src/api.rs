//! The records that calls return, declared once for four languages.
//!
//! [`for_each_record!`] holds the list. Core declares its structs from it (below), and
//! each binding passes a macro of its own that declares its host class per record (a
//! pyo3 class, a napi object, a uniffi record) and converts field by field through a
//! trait it implements per field *type*. A record added here therefore reaches Python,
//! Node and Kotlin without binding code; a binding changes only for a field type it has
//! never converted. [`RECORDS`] is the same list as data, for the stub generators and the
//! tests that check each binding's type declarations against it.
//!
//! Field types are written as full paths (`$crate::...`, `::std::...`) because the list
//! expands inside the bindings too, where a bare `DeliveryInfo` would be their own class.

/// Calls `$then! { Record { field: Type, ... } ... }` with every record, docs included;
/// tokens after `$then,` are passed first.
#[macro_export]
macro_rules! for_each_record {
    ($($then:ident)::+ $(, $($with:tt)*)?) => {
        $($then)::+! {
            $($($with)*)?
            /// One attempt to hand one message to one consumer group.
            AttemptRecord {
                /// 1 for the first delivery, 2 for the first retry, ...
                attempt: u32,
                started_at: ::std::time::SystemTime,
                /// When the attempt was settled or its lease ran out; unset while in flight.
                ended_at: ::std::option::Option<::std::time::SystemTime>,
                outcome: $crate::AttemptOutcome,
                /// What the consumer's nack said, or why the lease ended.
                error: ::std::option::Option<::std::string::String>,
            }
            /// Where one message stands in one consumer group.
            DeliveryInfo {
                state: $crate::DeliveryState,
                attempts: u32,
                last_error: ::std::option::Option<::std::string::String>,
                /// One entry per attempt, oldest first.
                history: ::std::vec::Vec<$crate::AttemptRecord>,
            }
            /// One check-back of a half message.
            CheckRecord {
                at: ::std::time::SystemTime,
                resolution: $crate::Resolution,
                /// Set when the checker failed; the check counted as unknown.
                error: ::std::option::Option<::std::string::String>,
            }
            /// Everything known about one message.
            MessageInfo {
                id: i64,
                topic: ::std::string::String,
                tag: ::std::option::Option<::std::string::String>,
                key: ::std::option::Option<::std::string::String>,
                payload: ::std::vec::Vec<u8>,
                headers: ::std::collections::BTreeMap<::std::string::String, ::std::string::String>,
                /// Deliveries of one ordering key reach a consumer group in order.
                ordering_key: ::std::option::Option<::std::string::String>,
                published_at: ::std::time::SystemTime,
                deliver_at: ::std::time::SystemTime,
                state: $crate::MessageState,
                /// 0 to 9 (`PublishOptions::priority`).
                priority: i32,
                /// Per consumer group; empty for half messages and messages no group matched.
                deliveries: ::std::collections::BTreeMap<::std::string::String, $crate::DeliveryInfo>,
                /// Check-backs of a half message, oldest first.
                checks: ::std::vec::Vec<$crate::CheckRecord>,
            }
            /// A delivery that used up its retries, kept for an operator.
            DeadLetter {
                message_id: i64,
                topic: ::std::string::String,
                tag: ::std::option::Option<::std::string::String>,
                key: ::std::option::Option<::std::string::String>,
                payload: ::std::vec::Vec<u8>,
                headers: ::std::collections::BTreeMap<::std::string::String, ::std::string::String>,
                attempts: u32,
                last_error: ::std::option::Option<::std::string::String>,
                died_at: ::std::time::SystemTime,
                history: ::std::vec::Vec<$crate::AttemptRecord>,
            }
            /// One topic's share of `Queue::stats`.
            TopicStats {
                /// Committed messages kept in the file (acked ones stay until `purge_acked`).
                messages: u64,
                /// Half messages still undecided.
                half: u64,
            }
            /// One consumer group's share of `Queue::stats`.
            GroupStats {
                topic: ::std::string::String,
                ready: u64,
                /// Delayed first deliveries and ordered messages waiting for their predecessor.
                scheduled: u64,
                inflight: u64,
                /// Waiting out a retry delay.
                retrying: u64,
                dead: u64,
                /// How long the oldest ready delivery has been ready.
                oldest_ready_age: ::std::option::Option<::std::time::Duration>,
                /// Whether `pause` holds the group: its receives return nothing until `resume`.
                paused: bool,
            }
            /// Counts per topic and per consumer group (`Queue::stats`).
            Stats {
                topics: ::std::collections::BTreeMap<::std::string::String, $crate::TopicStats>,
                groups: ::std::collections::BTreeMap<::std::string::String, $crate::GroupStats>,
            }
            /// One topic as `Queue::topics` lists it.
            TopicInfo {
                name: ::std::string::String,
                /// Committed messages kept in the file (acked ones stay until `purge_acked`).
                messages: u64,
                /// Deliveries ready now, summed over the topic's consumer groups.
                ready: u64,
                /// The consumer groups subscribed to it, by name.
                groups: ::std::vec::Vec<::std::string::String>,
            }
            /// One schedule as `Queue::schedules` lists it.
            ScheduleInfo {
                name: ::std::string::String,
                topic: ::std::string::String,
                cron: ::std::option::Option<::std::string::String>,
                every: ::std::option::Option<::std::time::Duration>,
                /// The cron pattern's time zone (`UTC` unless given); unset for `every`.
                tz: ::std::option::Option<::std::string::String>,
                /// The next tick not yet handled (in the past if nobody received since it came due).
                next_at: ::std::time::SystemTime,
                /// Tick times handled so far (published, merged by `once` or skipped).
                fired: u64,
                /// Tick times left, the next included (unset: no end).
                repeat_left: ::std::option::Option<u64>,
                missed: $crate::Missed,
                tag: ::std::option::Option<::std::string::String>,
                key: ::std::option::Option<::std::string::String>,
                headers: ::std::collections::BTreeMap<::std::string::String, ::std::string::String>,
            }
            /// One record of the audit trail (`Queue::audit`).
            AuditRecord {
                /// Increasing in the order the actions committed.
                id: i64,
                /// When, on the clock of the queue that acted.
                at: ::std::time::SystemTime,
                /// The verb: `pause`, `resume`, `schedule`, `unschedule`, `commit_half`,
                /// `rollback_half`, `redrive`, `purge_dead_letters`, `purge_dead_letter_ids`,
                /// `purge_acked`, `vacuum` or `rekey`.
                action: ::std::string::String,
                /// The consumer group, schedule name or message id acted on; empty for the whole file.
                target: ::std::string::String,
                /// JSON text: what was asked and what changed (see docs/DESIGN.md).
                detail: ::std::option::Option<::std::string::String>,
                pid: i64,
                /// The executable's file name (`ferrymq`, `python3.12`, `node`, `java`).
                process: ::std::string::String,
                host: ::std::string::String,
                /// The effective OS user.
                user: ::std::string::String,
                /// What the caller gave to `Queue::with_reason`.
                reason: ::std::option::Option<::std::string::String>,
            }
            /// What `Queue::check_file` found: SQLite's integrity check and the file's marks.
            FileCheck {
                /// The lines of `PRAGMA integrity_check`: `["ok"]` for a sound file.
                integrity: ::std::vec::Vec<::std::string::String>,
                /// `PRAGMA user_version`: the schema version the file is at.
                schema_version: i64,
                /// The schema version this build writes.
                expected_schema_version: i64,
                /// `PRAGMA application_id` ("Frry", 0x46727279, for a ferrymq file).
                application_id: i64,
                expected_application_id: i64,
            }
            /// The SQL that publishes, acks and keeps inbox keys on a caller's own connection
            /// (`sql::statements`), each bound with the parameters its `sql` row gives.
            SqlStatements {
                /// The INSERT that publishes: topic, payload, then `PublishRow::params`.
                publish: ::std::string::String,
                /// The SELECT of the id just published: topic, idempotency key.
                published_id: ::std::string::String,
                /// The INSERT that acks: `AckRow::params`.
                ack: ::std::string::String,
                /// The SELECT of the connection's main file, for `sql::check_file`.
                main_file: ::std::string::String,
                /// The inbox INSERT: `InboxRow::params`; one row changed means a new key.
                inbox: ::std::string::String,
            }
        }
    };
}

/// One record's name and its fields' names and Rust types, as [`for_each_record!`] has them.
#[derive(Debug, Clone, Copy)]
pub struct RecordShape {
    pub name: &'static str,
    pub doc: &'static str,
    /// `(name, Rust type as written, doc)`; the type's paths are spelled out in full.
    pub fields: &'static [(&'static str, &'static str, &'static str)],
}

macro_rules! define_records {
    ($( $(#[doc = $doc:expr])* $name:ident { $( $(#[doc = $fdoc:expr])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $name {
                $( $(#[doc = $fdoc])* pub $field: $ty, )*
            }
        )*

        /// Every record of [`for_each_record!`], in its order.
        pub const RECORDS: &[RecordShape] = &[$(
            RecordShape {
                name: stringify!($name),
                doc: concat!($($doc, "\n",)* ""),
                fields: &[$( (stringify!($field), stringify!($ty), concat!($($fdoc, " ",)* "")) ),*],
            }
        ),*];
    };
}

for_each_record!(define_records);

/// Declares, in a binding, the trait `ToHost` (a core value as the host value a record
/// field holds; the binding's record macro converts field by field through it) with its
/// impls for what every record is built of: the types listed after `same` (taken as they
/// are), and `Option`, `Vec` and string-keyed maps of anything convertible, a map becoming
/// `$map` (an ident in scope at the call). The binding adds one impl per host idiom
/// (times, durations, payloads, states). For hosts whose conversion cannot fail and needs
/// no runtime handle (Node, Kotlin); Python's needs the GIL token and declares its own.
#[macro_export]
macro_rules! host_conversions {
    (map: $map:ident, same: [$($t:ty),* $(,)?]) => {
        /// A core value as the host value a record field holds.
        pub trait ToHost {
            type Host;
            fn to_host(self) -> Self::Host;
        }

        $(
            impl ToHost for $t {
                type Host = $t;
                fn to_host(self) -> $t {
                    self
                }
            }
        )*

        /// `None` stays unset (the host's null).
        impl<T: ToHost> ToHost for Option<T> {
            type Host = Option<T::Host>;
            fn to_host(self) -> Self::Host {
                self.map(T::to_host)
            }
        }

        impl<T: ToHost> ToHost for Vec<T> {
            type Host = Vec<T::Host>;
            fn to_host(self) -> Self::Host {
                self.into_iter().map(T::to_host).collect()
            }
        }

        impl<T: ToHost> ToHost for ::std::collections::BTreeMap<String, T> {
            type Host = $map<String, T::Host>;
            fn to_host(self) -> Self::Host {
                self.into_iter().map(|(k, v)| (k, v.to_host())).collect()
            }
        }
    };
}

/// Declares, in a binding, one host struct per record of [`for_each_record!`], of the same
/// name and fields, each field's type the core's mapped through the binding's `ToHost`
/// (see [`host_conversions!`]), and `ToHost` for the core record. The attribute given
/// (one: the binding generator's derive) goes on every struct. For Node and Kotlin; Python's
/// classes need the GIL token and a `__repr__`, and declare their own.
#[macro_export]
macro_rules! host_records {
    (#[$($attr:tt)*]) => {
        $crate::for_each_record!($crate::__host_records, [$($attr)*]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __host_records {
    ($attr:tt $( $(#[doc = $doc:expr])* $name:ident { $( $(#[doc = $fdoc:expr])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[doc = $doc])*
            #$attr
            pub struct $name { $( $(#[doc = $fdoc])* pub $field: <$ty as ToHost>::Host, )* }

            impl ToHost for $crate::$name {
                type Host = $name;
                fn to_host(self) -> $name {
                    let $crate::$name { $($field),* } = self;
                    $name { $( $field: $field.to_host(), )* }
                }
            }
        )*
    };
}

/// The verbs of a queue that every language offers, under this name in Rust and Python and
/// in camelCase in Node and Kotlin (`ack`, `nack` and `extend` are methods of a delivery
/// there). `core/tests/surface.rs` fails when a binding lacks one.
pub const VERBS: &[&str] = &[
    "close",
    "subscribe",
    "publish",
    "publish_batch",
    "receive",
    "consume",
    "worker",
    "ack",
    "nack",
    "extend",
    "transaction",
    "prepare",
    "commit_half",
    "rollback_half",
    "set_checker",
    "remove_checker",
    "run_checks",
    "half_messages",
    "dead_letters",
    "redrive",
    "purge_dead_letters",
    "stats",
    "topics",
    "check_file",
    "message",
    "find",
    "purge_acked",
    "vacuum",
    "pause",
    "resume",
    "schedule",
    "unschedule",
    "schedules",
    "metrics",
    "with_reason",
    "audit",
    "rekey",
];

// Not derived: the list's attributes reach the bindings' classes too, which have no `Default`.
#[allow(clippy::derivable_impls)]
impl Default for TopicStats {
    fn default() -> Self {
        TopicStats {
            messages: 0,
            half: 0,
        }
    }
}

#[allow(clippy::derivable_impls)]
impl Default for Stats {
    fn default() -> Self {
        Stats {
            topics: Default::default(),
            groups: Default::default(),
        }
    }
}

impl FileCheck {
    /// Sound, at this build's schema version and marked as ferrymq's.
    pub fn ok(&self) -> bool {
        self.integrity == ["ok"]
            && self.schema_version == self.expected_schema_version
            && self.application_id == self.expected_application_id
    }
}
