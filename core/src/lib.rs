//! ferrymq: a durable message queue in one SQLite file, shared by many processes.
//!
//! Topics, tags and consumer groups (fan-out between groups, competing consumers inside
//! one), deliveries under a lease, retries on RocketMQ's schedule (or Alipay's, WeChat
//! Pay's, exponential, or your own) into a per-group dead-letter queue, idempotency keys,
//! delayed and ordered messages, the transactional outbox, RocketMQ-style half
//! messages with check-back, and flow control: pausing a consumer group
//! (`Queue::pause`/`resume`), a group's limit on deliveries in flight over every process
//! (`SubscribeOptions::max_inflight`), and backpressure on publishers
//! (`Options::max_ready`, error kind `Full`), and recurring messages
//! (`Queue::schedule` with a cron pattern or a period; fired by the processes that
//! receive from the file).
//!
//! ```
//! use ferrymq::{Queue, Options, SubscribeOptions, PublishOptions, ReceiveOptions, RetryPolicy};
//! use std::time::Duration;
//!
//! # fn main() -> ferrymq::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("bank.db");
//! let q = Queue::open(&path, Options::default())?;
//! q.subscribe("payment-center", "payments",
//!     SubscribeOptions::new().tags("created || retried").retry(RetryPolicy::rocketmq()))?;
//!
//! let id = q.publish("payments", b"{\"order\": 42}",
//!     PublishOptions::new().tag("created").key("order-42").idempotency_key("order-42/pay"))?;
//!
//! for d in q.receive("payment-center", ReceiveOptions::new().max(10).wait(Duration::from_secs(1)))? {
//!     assert_eq!(d.message_id, id);
//!     q.ack(&d)?;
//! }
//! q.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Processes and `fork()`: any number of processes may open one file. A process forked
//! from one that has queues open may open its own queues, on any file, unless the fork
//! happened while the parent had a transaction open on that file (then `Queue::open` on
//! it fails with `ErrorKind::Storage`); the parent's queues refuse calls in the child
//! with `ErrorKind::Closed`, and closing or dropping them there leaves the file alone.
//!
//! Modules: [`Queue`] (`queue`) is the handle; `publish`, `receive`, `outbox`, `half`
//! hold one capability each (`schedule` fires recurring messages); `store` holds all SQL;
//! `options`, `model`, `retry`, `filter`, `clock` and `validate` are pure parts;
//! [`metrics`] renders the counts for Prometheus; `trace` holds the W3C trace-context
//! headers the bindings put on messages and read back.

pub mod api;
mod audit;
mod cipher;
mod clock;
mod commit;
mod consume;
pub mod counters;
mod dlq;
mod error;
mod filter;
mod fork;
mod half;
mod heartbeat;
mod inner;
mod inspect;
mod lock_isolation;
pub mod metrics;
mod model;
mod options;
mod outbox;
mod publish;
mod queue;
mod receive;
mod retention;
mod retry;
mod schedule;
pub mod sql;
mod store;
pub mod trace;
mod validate;
mod wake;
mod worker;

pub use api::{
    AttemptRecord, AuditRecord, CheckRecord, DeadLetter, DeliveryInfo, FileCheck, GroupStats,
    MessageInfo, RECORDS, RecordShape, ScheduleInfo, SqlStatements, Stats, TopicInfo, TopicStats,
    VERBS,
};
pub use cipher::{Key, KeyProvider, KeySource, decrypt_file, encrypt_file};
pub use clock::{Clock, ManualClock, SystemClock};
pub use consume::{Consume, Consumer, ConsumerOptions};
pub use error::{Error, ErrorKind, Result};
pub use filter::TagFilter;
pub use half::{Checker, HalfMessage};
pub use model::{AttemptOutcome, Delivery, DeliveryState, MessageState, Resolution};
pub use options::{
    Message, Options, PublishOptions, ReceiveOptions, SubscribeOptions, Synchronous,
};
pub use outbox::Transaction;
pub use queue::Queue;
pub use retry::{AfterFailure, RetryPolicy};
pub use rusqlite;
/// A SQL value for `Transaction::execute`/`query` parameters and results.
pub use rusqlite::types::Value;
pub use schedule::{
    HEADER_SCHEDULE, HEADER_TICK, HEADER_TICKS, Missed, SKIP_GRACE, ScheduleOptions,
};
pub use validate::{MAX_LIST, seconds};
pub use worker::{ErrorHook, Handler, Settled, Worker, WorkerOptions, call_handler};

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The verbs of a transaction (`Transaction`, the `tx` of `q.transaction`) that every
/// language offers, named as in [`VERBS`]; `core/tests/surface.rs` fails when a binding
/// lacks one. (Ending it explicitly, `commit` / `rollback`, is Rust's and Python's only:
/// Node and Kotlin end it with the callback.)
pub const TX_VERBS: &[&str] = &[
    "execute",
    "query",
    "publish",
    "publish_batch",
    "ack",
    "nack",
    "inbox",
];

/// Limits on input, for bindings and callers that check before calling.
pub mod limits {
    /// Most bytes of a `Queue::with_reason` reason.
    pub use crate::audit::MAX_REASON_LEN;
    pub use crate::validate::{
        MAX_BATCH, MAX_DURATION, MAX_FLOW_LIMIT, MAX_HEADERS_BYTES, MAX_KEY_LEN, MAX_NAME_LEN,
        MAX_PAYLOAD, MAX_PRIORITY, MAX_RATE, MAX_RECEIVE, MAX_TAG_LEN, MIN_MAX_SIZE,
        SQLITE_MAX_LENGTH,
    };
}

/// Defaults that every binding offers for parameters a caller leaves out.
pub mod defaults {
    pub use crate::retry::{
        EXPONENTIAL_INITIAL, EXPONENTIAL_JITTER, EXPONENTIAL_MAX_DELAY, EXPONENTIAL_MAX_RETRIES,
    };
    use std::time::Duration;

    /// `half_messages` without a limit.
    pub const HALF_MESSAGES_LIMIT: usize = 1000;
    /// `dead_letters` without a limit.
    pub const DEAD_LETTERS_LIMIT: usize = 100;
    /// `audit` without a limit.
    pub const AUDIT_LIMIT: usize = 100;
    /// `purge_acked` without an age: a week, so an operator can still look a message up.
    pub const PURGE_ACKED_OLDER_THAN: Duration = Duration::from_secs(7 * 86_400);
    /// `Transaction::inbox` without a window: a week. It must outlast every redelivery of
    /// one key: the longest built-in retry schedules end within a day (RocketMQ's 16
    /// retries about 4 h 46 min, Alipay's notifications about 25 h, WeChat Pay's about
    /// 24 h), and a week also covers a consumer down over a long weekend whose broker
    /// then redelivers its backlog. It matches `PURGE_ACKED_OLDER_THAN`, so a message
    /// `purge_acked` still keeps is never redelivered past its key. A key costs one small
    /// row (the key and 8 bytes) until `purge_acked` deletes it after its window.
    pub const INBOX_WINDOW: Duration = Duration::from_secs(7 * 86_400);
    /// How long one `Consumer::next` waits when no wait is given (the consume loops of
    /// every language): long enough not to spin, short enough to notice a stop.
    pub const CONSUME_WAIT: Duration = Duration::from_secs(1);
}
