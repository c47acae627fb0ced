//! The inbox: keys a consumer has seen, each until its window ends (migration 0008).

use crate::error::Result;
use rusqlite::{Connection, params};

/// Records `key` as seen from `now` for `window_ms`, unless it is already seen at `now`;
/// returns true when it was not (first sight, or its earlier window has ended). One
/// statement ([`crate::sql::INBOX`], shared with callers on their own connection): the
/// row is inserted, or taken over only while its stored window has ended, so two
/// transactions can never both see it as new.
pub(crate) fn see(conn: &Connection, key: &str, now: i64, window_ms: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(crate::sql::INBOX)?
        .execute(params![key, now, window_ms])?;
    Ok(changed == 1)
}

/// Deletes up to `limit` keys whose window ended at or before `now`, oldest first
/// through the expiry index; returns how many went.
pub(crate) fn expired_keys(conn: &Connection, now: i64, limit: usize) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM ferrymq_inbox WHERE key IN (
                 SELECT key FROM ferrymq_inbox WHERE expires_at <= ?1
                 ORDER BY expires_at LIMIT ?2)",
        )?
        .execute(params![now, limit as i64])?;
    Ok(n as u64)
}
