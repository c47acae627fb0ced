//! `ferrymq::sql` for the Kotlin `Outbox`: publishing, acking and the inbox on the caller's own JDBC
//! connection, in its transaction. The Kotlin layer runs the statements with `java.sql`;
//! everything it needs besides is here: the statements' text, the validated columns (the
//! core's checks, with a queue's limits and clock when one is given), and the mapping of
//! the driver's error text to ferrymq's error kinds. Nothing is decided in this file.
//!
//! The JDBC driver carries its own copy of SQLite (sqlite-jdbc's native library), this
//! cdylib another; on Linux the core's `lock_isolation` lets the two share a file in one
//! process, so a Queue and the caller's connection may work on it side by side.

use crate::convert::{PublishArgs, int, opt_secs};
use crate::delivery::FfiDelivery;
use crate::error::{FfiError, FfiResult};
use crate::queue::FfiQueue;
use ferrymq::sql;
use std::sync::Arc;

/// The INSERT that publishes (see `ferrymq::sql::PUBLISH` for its parameters).
#[uniffi::export]
pub fn sql_publish() -> String {
    sql::PUBLISH.to_owned()
}

/// The SELECT of the id just published (`ferrymq::sql::PUBLISHED_ID`).
#[uniffi::export]
pub fn sql_published_id() -> String {
    sql::PUBLISHED_ID.to_owned()
}

/// The INSERT that acks (`ferrymq::sql::ACK`).
#[uniffi::export]
pub fn sql_ack() -> String {
    sql::ACK.to_owned()
}

/// The SELECT of the connection's main file (`ferrymq::sql::MAIN_FILE`).
#[uniffi::export]
pub fn sql_main_file() -> String {
    sql::MAIN_FILE.to_owned()
}

/// Refuses a connection whose main file (what `sql_main_file` read) is not `queue`'s.
#[uniffi::export]
pub fn sql_check_file(queue: Arc<FfiQueue>, main_file: String) -> FfiResult<()> {
    Ok(sql::check_file(&queue.q, &main_file)?)
}

/// `ferrymq::sql::PublishRow`: the parameters of the publish INSERT after topic and payload.
#[derive(uniffi::Record)]
pub struct SqlPublishRow {
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: Option<String>,
    pub ordering_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub delay_ms: Option<i64>,
    pub deliver_at: Option<i64>,
    pub idempotency_window_ms: i64,
    pub published_at: Option<i64>,
    pub priority: i64,
}

impl From<sql::PublishRow> for SqlPublishRow {
    fn from(r: sql::PublishRow) -> Self {
        SqlPublishRow {
            tag: r.tag,
            key: r.key,
            headers: r.headers,
            ordering_key: r.ordering_key,
            idempotency_key: r.idempotency_key,
            delay_ms: r.delay_ms,
            deliver_at: r.deliver_at,
            idempotency_window_ms: r.idempotency_window_ms,
            published_at: r.published_at,
            priority: r.priority,
        }
    }
}

/// Checks a message as `publish` does and resolves its columns.
#[uniffi::export]
pub fn sql_publish_row(
    topic: String,
    payload_len: i64,
    options: PublishArgs,
    queue: Option<Arc<FfiQueue>>,
) -> FfiResult<SqlPublishRow> {
    let len = int("payload length", payload_len)?;
    let o = options.into_core()?;
    let row = sql::PublishRow::new(&topic, len, &o, queue.as_ref().map(|q| &q.q))?;
    Ok(row.into())
}

/// `ferrymq::sql::AckRow`: the parameters of the ack INSERT.
#[derive(uniffi::Record)]
pub struct SqlAckRow {
    pub message_id: i64,
    pub consumer_group: String,
    pub lease_token: i64,
    pub acked_at: Option<i64>,
}

/// The ack columns of the delivery behind `delivery` (the handle of a `Received`).
#[uniffi::export]
pub fn sql_ack_row(delivery: u64, queue: Option<Arc<FfiQueue>>) -> FfiResult<SqlAckRow> {
    let d = FfiDelivery::get(delivery)?.snapshot();
    let r = sql::AckRow::new(&d, queue.as_ref().map(|q| &q.q));
    Ok(SqlAckRow {
        message_id: r.message_id,
        consumer_group: r.consumer_group,
        lease_token: r.lease_token,
        acked_at: r.acked_at,
    })
}

/// The inbox INSERT (`ferrymq::sql::INBOX`): one row changed means a new key.
#[uniffi::export]
pub fn sql_inbox() -> String {
    sql::INBOX.to_owned()
}

/// `ferrymq::sql::InboxRow`: the parameters of the inbox INSERT.
#[derive(uniffi::Record)]
pub struct SqlInboxRow {
    pub key: String,
    pub now: Option<i64>,
    pub window_ms: i64,
}

/// Checks an inbox key and window as `tx.inbox` does (`window_secs`: none for a week).
#[uniffi::export]
pub fn sql_inbox_row(
    key: String,
    window_secs: Option<f64>,
    queue: Option<Arc<FfiQueue>>,
) -> FfiResult<SqlInboxRow> {
    let window = opt_secs("window", window_secs)?;
    let r = sql::InboxRow::new(&key, window, queue.as_ref().map(|q| &q.q))?;
    Ok(SqlInboxRow {
        key: r.key,
        now: r.now,
        window_ms: r.window_ms,
    })
}

/// The error for a connection outside a transaction (`ferrymq::sql::no_transaction`).
#[uniffi::export]
pub fn sql_no_transaction() -> FfiError {
    sql::no_transaction().into()
}

/// The ferrymq error for the text of an error the driver raised running one of the
/// statements (`delivery`: the handle of the delivery acked).
#[uniffi::export]
pub fn sql_host_error(message: String, delivery: Option<u64>) -> FfiResult<FfiError> {
    let d = delivery
        .map(|h| FfiDelivery::get(h).map(|d| d.snapshot()))
        .transpose()?;
    Ok(sql::host_error(&message, d.as_ref()).into())
}
