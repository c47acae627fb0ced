//! All SQL lives under this module. Each function takes the connection (inside the
//! caller's transaction where it writes) and does one thing; the capability modules above
//! decide what to call and in which transaction.
//!
//! Invariant kept by every state change: the `WHERE` clause names the row (message id and
//! group id), the state the row must be in, and, for a held delivery, its lease token. A
//! change that finds no such row changes nothing and reports it.

pub(crate) mod busy;
pub(crate) mod claim;
pub(crate) mod dlq;
pub(crate) mod groups;
pub(crate) mod half;
pub(crate) mod inbox;
pub(crate) mod inspect;
#[cfg(test)]
mod plans;
pub(crate) mod publish;
pub(crate) mod purge;
pub(crate) mod schedules;
pub(crate) mod schema;
pub(crate) mod settle;

use crate::error::{Error, Result};
use std::collections::BTreeMap;

// Message states.
pub(crate) const COMMITTED: i64 = 0;
pub(crate) const HALF: i64 = 1;
pub(crate) const ROLLED_BACK: i64 = 2;

// Delivery states.
pub(crate) const PENDING: i64 = 0;
pub(crate) const INFLIGHT: i64 = 1;
pub(crate) const ACKED: i64 = 2;
pub(crate) const DEAD: i64 = 3;
pub(crate) const BLOCKED: i64 = 4;

pub(crate) fn encode_headers(headers: &BTreeMap<String, String>) -> Result<Option<String>> {
    if headers.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(headers)
        .map(Some)
        .map_err(|e| Error::invalid(format!("headers cannot be encoded: {e}")))
}

pub(crate) fn decode_headers(text: Option<String>) -> Result<BTreeMap<String, String>> {
    match text {
        None => Ok(BTreeMap::new()),
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| Error::Storage(format!("unreadable headers in the database: {e}"))),
    }
}

/// Runs `f` inside `BEGIN IMMEDIATE ... COMMIT` (immediate: in WAL mode a read that later
/// writes would fail with SQLITE_BUSY at once, ignoring busy_timeout). Rolls back on error.
pub(crate) fn write_tx<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    match f(conn) {
        Ok(v) => match conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
        {
            Ok(_) => Ok(v),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Runs `f` inside the caller's open transaction so that it happens entirely or not at
/// all: a write that fails partway (disk full between two of its statements, say) is
/// undone, and the caller may still commit what it did before. Used where the caller owns
/// the transaction (`Transaction`, `publish_in`, `ack_in`); our own transactions roll
/// back whole instead.
pub(crate) fn all_or_nothing<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("SAVEPOINT ferrymq_write")?
        .execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE ferrymq_write")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            // If SQLite already rolled the whole transaction back (it may, on a full
            // disk), the savepoint is gone and so is everything; the caller's commit then
            // fails.
            let _ = conn.execute_batch("ROLLBACK TO ferrymq_write; RELEASE ferrymq_write");
            Err(e)
        }
    }
}
