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
use crate::tx::SqlValue;
use crate::views::{SqlStatements, ToHost};
use ferrymq::sql;
use std::sync::Arc;

/// Core's parameters of a statement, as Kotlin binds them (`Outbox.bind`).
fn values(params: Vec<ferrymq::Value>) -> Vec<SqlValue> {
    params.into_iter().map(SqlValue::from).collect()
}

/// The text of the statements `Outbox` runs (see `ferrymq::sql` for their parameters).
#[uniffi::export]
pub fn sql_statements() -> SqlStatements {
    sql::statements().to_host()
}

/// Refuses a connection whose main file (what `SqlStatements.main_file` read) is not
/// `queue`'s.
#[uniffi::export]
pub fn sql_check_file(queue: Arc<FfiQueue>, main_file: String) -> FfiResult<()> {
    Ok(sql::check_file(&queue.q, &main_file)?)
}

/// Checks a message as `publish` does; the parameters of the publish INSERT after topic and
/// payload, in its order.
#[uniffi::export]
pub fn sql_publish_row(
    topic: String,
    payload_len: i64,
    options: PublishArgs,
    queue: Option<Arc<FfiQueue>>,
) -> FfiResult<Vec<SqlValue>> {
    let len = int("payload length", payload_len)?;
    let o = options.into_core()?;
    let row = sql::PublishRow::new(&topic, len, &o, queue.as_ref().map(|q| &q.q))?;
    Ok(values(row.params()))
}

/// The parameters of the ack INSERT for the delivery behind `delivery` (the handle of a
/// `Received`).
#[uniffi::export]
pub fn sql_ack_row(delivery: u64, queue: Option<Arc<FfiQueue>>) -> FfiResult<Vec<SqlValue>> {
    let d = FfiDelivery::get(delivery)?.snapshot();
    let r = sql::AckRow::new(&d, queue.as_ref().map(|q| &q.q));
    Ok(values(r.params()))
}

/// Checks an inbox key and window as `tx.inbox` does (`window_secs`: none for a week);
/// the parameters of the inbox INSERT.
#[uniffi::export]
pub fn sql_inbox_row(
    key: String,
    window_secs: Option<f64>,
    queue: Option<Arc<FfiQueue>>,
) -> FfiResult<Vec<SqlValue>> {
    let window = opt_secs("window", window_secs)?;
    let r = sql::InboxRow::new(&key, window, queue.as_ref().map(|q| &q.q))?;
    Ok(values(r.params()))
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
