//! Retention: deleting fully acked messages, and rolled-back half messages once their
//! audit period is over, a chunk per transaction so that the write lock is never held
//! for long and memory stays flat however large the file is.

use super::COMMITTED;
use super::{delivery_state, message_state};
use crate::error::Result;
use rusqlite::{Connection, params};

pub(crate) struct Chunk {
    pub deleted: u64,
    /// Highest id looked at; the next chunk starts after it.
    pub last_id: i64,
    /// No more candidates: the end of the table, or messages newer than the cutoff.
    pub done: bool,
}

/// Looks at up to `limit` messages after `after_id` and deletes those published and
/// acked by every group at or before `cutoff`. The newest message is always kept so that
/// SQLite never hands its id out again.
pub(crate) fn acked_chunk(
    conn: &Connection,
    after_id: i64,
    cutoff: i64,
    limit: usize,
) -> Result<Chunk> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, published_at, state, topic_id FROM ferrymq_messages
         WHERE id > ?1 AND id < (SELECT max(id) FROM ferrymq_messages)
         ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![after_id, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut chunk = Chunk {
        deleted: 0,
        last_id: after_id,
        done: rows.len() < limit,
    };
    for (id, published_at, state, topic_id) in rows {
        // Ids grow with publish time, so the first message newer than the cutoff ends
        // the scan.
        if published_at > cutoff {
            chunk.done = true;
            break;
        }
        chunk.last_id = id;
        if state != COMMITTED {
            continue;
        }
        let unfinished: bool = conn
            .prepare_cached(concat!(
                "SELECT EXISTS (SELECT 1 FROM ferrymq_deliveries
                                WHERE message_id = ?1 AND (state <> ",
                delivery_state!(acked),
                " OR due_at > ?2))"
            ))?
            .query_row(params![id, cutoff], |r| r.get(0))?;
        if unfinished || !super::cursor::groups_behind(conn, id)?.is_empty() {
            continue;
        }
        conn.prepare_cached("DELETE FROM ferrymq_deliveries WHERE message_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM ferrymq_attempts WHERE message_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM ferrymq_checks WHERE message_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM ferrymq_messages WHERE id = ?1")?
            .execute([id])?;
        super::publish::count_change(conn, topic_id, id, -1)?;
        chunk.deleted += 1;
    }
    Ok(chunk)
}

/// Deletes up to `limit` rolled-back messages rolled back at or before `cutoff`, with
/// their check history and idempotency keys (a key whose message is gone would count as
/// taken, yet a rolled-back message frees its key). Returns how many went. Rolled-back
/// messages are never in the topic counts, so those stay as they are. The newest message
/// is kept, as in `acked_chunk`.
pub(crate) fn rolled_back_chunk(conn: &Connection, cutoff: i64, limit: usize) -> Result<u64> {
    let ids = conn
        .prepare_cached(concat!(
            "SELECT id FROM ferrymq_messages INDEXED BY ferrymq_messages_rolled_back
             WHERE state = ",
            message_state!(rolled_back),
            " AND decided_at <= ?1
               AND id < (SELECT max(id) FROM ferrymq_messages)
             ORDER BY decided_at LIMIT ?2"
        ))?
        .query_map(params![cutoff, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut deleted = 0;
    for id in ids {
        let gone = conn
            .prepare_cached(concat!(
                "DELETE FROM ferrymq_messages WHERE id = ?1 AND state = ",
                message_state!(rolled_back)
            ))?
            .execute([id])?;
        if gone == 0 {
            continue;
        }
        conn.prepare_cached("DELETE FROM ferrymq_checks WHERE message_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM ferrymq_idempotency WHERE message_id = ?1")?
            .execute([id])?;
        deleted += 1;
    }
    Ok(deleted)
}

pub(crate) fn expired_idempotency_keys(conn: &Connection, now: i64, limit: usize) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM ferrymq_idempotency WHERE (topic_id, idem_key) IN (
                 SELECT topic_id, idem_key FROM ferrymq_idempotency
                 WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now, limit as i64])?;
    Ok(n as u64)
}
