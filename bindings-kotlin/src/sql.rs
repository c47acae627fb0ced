//! `ferrymq::sql` for the Kotlin `Outbox`: publishing and acking on the caller's own JDBC
//! connection, in its transaction. The Kotlin layer runs the statements with `java.sql`;
//! everything it needs besides is here: the statements' text, the validated columns (the
//! core's checks, with a queue's limits and clock when one is given), and the mapping of
//! the driver's error text to ferrymq's error kinds. Nothing is decided in this file but
//! [`sql_check_alone`].
//!
//! Why the check: the JDBC driver carries its own copy of SQLite (sqlite-jdbc's native
//! library), this cdylib another. SQLite's locks are POSIX advisory locks, which belong
//! to the process: two copies of SQLite in one process do not exclude each other (a
//! queue's write went through while a JDBC transaction held the write lock), and
//! closing a file in one copy drops the other's locks (<https://sqlite.org/howtocorrupt.html>,
//! 2.2.1). So the connection's file must not be open through this cdylib in the same
//! process: `publish_in` on a file a queue of this process holds is refused, and there
//! is no `ack_in` in the Kotlin API (its delivery always comes from such a queue).

use crate::convert::{PublishArgs, int};
use crate::delivery::FfiDelivery;
use crate::error::{FfiError, FfiResult};
use crate::queue::FfiQueue;
use ferrymq::sql;
use std::path::{Path, PathBuf};
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

/// Refuses `file` (the JDBC connection's main database) when a queue of this process, or
/// a delivery received from one, has it open (see the module header for why).
#[uniffi::export]
pub fn sql_check_alone(file: String) -> FfiResult<()> {
    if file.is_empty() {
        return Ok(()); // an in-memory or temporary database: no queue can share it
    }
    let target = same_file_key(Path::new(&file));
    let mut held = crate::queue::held_files();
    held.extend(FfiDelivery::held_files());
    if held.iter().any(|p| same_file_key(p) == target) {
        return Err(FfiError::invalid(format!(
            "a ferrymq Queue of this process has {file} open: SQLite's locks do not work \
             between the JDBC driver's SQLite and ferrymq's in one process, so publishing \
             with SQL there could corrupt the file. Publish with Queue.publish or \
             Queue.transaction in this process, or with Outbox.publishIn in a process \
             without a Queue on this file"
        )));
    }
    Ok(())
}

/// A path as the file system names it (symlinks and `..` resolved), or as given when it
/// cannot be resolved.
fn same_file_key(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
