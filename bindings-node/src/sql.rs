//! `publishIn` / `ackIn` / `inboxIn`: the pieces of `ferrymq::sql` that `index.js` needs to publish
//! and ack on the caller's own SQLite connection (better-sqlite3, node:sqlite). The
//! statements run in JS, on that connection; here are their texts, their validated
//! parameters, and the mapping of the host library's error text to ferrymq's kinds.

use crate::convert::{self, PublishOpts};
use crate::delivery::Delivery;
use crate::errors::{ErrorInfo, Result, error_info};
use crate::queue::NativeQueue;
use crate::views::{SqlStatements, ToHost};
use ferrymq::Value;
use ferrymq::sql::{self, AckRow, InboxRow, PublishRow};
use napi::bindgen_prelude::{BigInt, Buffer, Either5, Null};
use napi_derive::napi;

/// The SQL texts of `ferrymq::sql`, bound positionally.
#[napi]
pub fn sql_statements() -> SqlStatements {
    sql::statements().to_host()
}

/// A parameter of those statements. Integers are BigInts: better-sqlite3 and node:sqlite
/// bind every JS number as a REAL, which the triggers refuse where they need an integer.
pub type SqlArg = Either5<Null, String, BigInt, f64, Buffer>;

fn args(params: Vec<Value>) -> Vec<SqlArg> {
    params
        .into_iter()
        .map(|v| match v {
            Value::Null => Either5::A(Null),
            Value::Text(s) => Either5::B(s),
            Value::Integer(n) => Either5::C(BigInt::from(n)),
            Value::Real(f) => Either5::D(f),
            Value::Blob(b) => Either5::E(b.into()),
        })
        .collect()
}

/// The parameters of PUBLISH after `topic` and `payload`, checked as `publish` checks
/// them (with `queue`'s limits and clock when given).
#[napi]
pub fn publish_row(
    topic: String,
    payload_len: f64,
    opts: Option<PublishOpts>,
    queue: Option<&NativeQueue>,
) -> Result<Vec<SqlArg>> {
    let len = convert::count::<usize>("payload length", payload_len)?;
    let options = convert::publish_options(opts)?;
    let row = PublishRow::new(&topic, len, &options, queue.map(NativeQueue::queue))
        .map_err(crate::errors::to_js)?;
    Ok(args(row.params()))
}

/// The parameters of ACK for `delivery`.
#[napi]
pub fn ack_row(delivery: &Delivery, queue: Option<&NativeQueue>) -> Vec<SqlArg> {
    let row = delivery.read(|d| AckRow::new(d, queue.map(NativeQueue::queue)));
    args(row.params())
}

/// The parameters of INBOX (key, now, window_ms), checked as `tx.inbox` checks them
/// (`window_ms`: none for a week), at `queue`'s clock when given.
#[napi]
pub fn inbox_row(
    key: String,
    window_ms: Option<f64>,
    queue: Option<&NativeQueue>,
) -> Result<Vec<SqlArg>> {
    let window = convert::opt_ms("windowMs", window_ms)?;
    let row =
        InboxRow::new(&key, window, queue.map(NativeQueue::queue)).map_err(crate::errors::to_js)?;
    Ok(args(row.params()))
}

/// The ferrymq error for the text of an error the host library threw running one of the
/// statements (`delivery`: the one being acked).
#[napi]
pub fn sql_error(message: String, delivery: Option<&Delivery>) -> ErrorInfo {
    let e = match delivery {
        Some(d) => d.read(|d| sql::host_error(&message, Some(d))),
        None => sql::host_error(&message, None),
    };
    error_info(e)
}

/// The error for a connection outside a transaction.
#[napi]
pub fn no_transaction_error() -> ErrorInfo {
    error_info(sql::no_transaction())
}

/// Refuses a connection whose main file (what `mainFile` read) is not `queue`'s file.
#[napi]
pub fn check_file(queue: &NativeQueue, main_file: String) -> Result<()> {
    sql::check_file(queue.queue(), &main_file).map_err(crate::errors::to_js)
}
