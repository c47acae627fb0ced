//! All SQL lives under this module. Each function takes the connection (inside the
//! caller's transaction where it writes) and does one thing; the capability modules above
//! decide what to call and in which transaction.
//!
//! Invariant kept by every state change: the `WHERE` clause names the row (message id and
//! group id), the state the row must be in, and, for a held delivery, its lease token. A
//! change that finds no such row changes nothing and reports it.

pub(crate) mod audit;
pub(crate) mod busy;
pub(crate) mod claim;
pub(crate) mod cursor;
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

/// The states rows store, in one place. SQL text names a state with `delivery_state!` or
/// `message_state!`, which expand to its integer literal, spliced in with `concat!` at
/// compile time (the text stays fixed, so prepared statements are cached, and partial
/// indexes, which need literals, still match); values bound or matched in Rust are the
/// constants below, taken from [`DeliveryRow`] and [`MessageRow`]. The `const` checks
/// keep the literals and the enums equal.
/// (The migrations in `core/migrations/` are history and keep their literal numbers;
/// `schema.rs` tests that their partial indexes name the same states.)
macro_rules! delivery_state {
    (pending) => {
        "0"
    };
    (inflight) => {
        "1"
    };
    (acked) => {
        "2"
    };
    (dead) => {
        "3"
    };
    (blocked) => {
        "4"
    };
}
macro_rules! message_state {
    (committed) => {
        "0"
    };
    (half) => {
        "1"
    };
    (rolled_back) => {
        "2"
    };
}
pub(crate) use {delivery_state, message_state};

/// `ferrymq_deliveries.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub(crate) enum DeliveryRow {
    /// Deliverable from `due_at`.
    Pending = 0,
    /// Leased until `due_at`.
    Inflight = 1,
    Acked = 2,
    Dead = 3,
    /// Behind an unfinished message of its ordering key.
    Blocked = 4,
}

/// `ferrymq_messages.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub(crate) enum MessageRow {
    Committed = 0,
    Half = 1,
    RolledBack = 2,
}

/// The one digit of a state literal.
const fn literal(s: &str) -> i64 {
    let b = s.as_bytes();
    assert!(b.len() == 1 && b[0].is_ascii_digit());
    (b[0] - b'0') as i64
}

const _: () = {
    assert!(literal(delivery_state!(pending)) == DeliveryRow::Pending as i64);
    assert!(literal(delivery_state!(inflight)) == DeliveryRow::Inflight as i64);
    assert!(literal(delivery_state!(acked)) == DeliveryRow::Acked as i64);
    assert!(literal(delivery_state!(dead)) == DeliveryRow::Dead as i64);
    assert!(literal(delivery_state!(blocked)) == DeliveryRow::Blocked as i64);
    assert!(literal(message_state!(committed)) == MessageRow::Committed as i64);
    assert!(literal(message_state!(half)) == MessageRow::Half as i64);
    assert!(literal(message_state!(rolled_back)) == MessageRow::RolledBack as i64);
};

// The numbers bound as parameters and matched in Rust, from the same enums.
pub(crate) const COMMITTED: i64 = MessageRow::Committed as i64;
pub(crate) const HALF: i64 = MessageRow::Half as i64;
pub(crate) const ROLLED_BACK: i64 = MessageRow::RolledBack as i64;
pub(crate) const PENDING: i64 = DeliveryRow::Pending as i64;
pub(crate) const INFLIGHT: i64 = DeliveryRow::Inflight as i64;
pub(crate) const ACKED: i64 = DeliveryRow::Acked as i64;
pub(crate) const DEAD: i64 = DeliveryRow::Dead as i64;
pub(crate) const BLOCKED: i64 = DeliveryRow::Blocked as i64;

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
