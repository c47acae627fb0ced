//! The dead-letter queue of each consumer group: listing, redrive, purge.

use super::delivery_state;
use super::inspect::history;
use super::{DEAD, decode_headers};
use crate::api::DeadLetter;
use crate::clock::ms_to_system_time;
use crate::error::Result;
use rusqlite::{Connection, params};

pub(crate) fn list(conn: &Connection, group_id: i64, limit: usize) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT d.message_id, d.attempt, d.last_error, d.due_at,
                t.name, m.tag, m.key, m.headers, m.payload
         FROM ferrymq_deliveries d
         JOIN ferrymq_messages m ON m.id = d.message_id
         JOIN ferrymq_topics t ON t.id = m.topic_id
         WHERE d.group_id = ?1 AND d.state = ",
        delivery_state!(dead),
        "
         ORDER BY d.due_at, d.message_id LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![group_id, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Vec<u8>>(8)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(
            |(id, attempt, last_error, died_at, topic, tag, key, headers, payload)| {
                Ok(DeadLetter {
                    message_id: id,
                    topic,
                    tag,
                    key,
                    payload,
                    headers: decode_headers(headers)?,
                    attempts: attempt as u32,
                    last_error,
                    died_at: ms_to_system_time(died_at),
                    history: history(conn, id, group_id, None)?,
                })
            },
        )
        .collect()
}

/// The highest message id among the group's dead deliveries: where a redrive or purge
/// that starts now ends.
pub(crate) fn last_dead_id(conn: &Connection, group_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT max(message_id) FROM ferrymq_deliveries INDEXED BY ferrymq_deliveries_dead
             WHERE group_id = ?1 AND state = ",
            delivery_state!(dead)
        ))?
        .query_row([group_id], |r| r.get(0))?)
}

/// Ids of up to `limit` dead deliveries of the group with ids in (`after`, `through`]
/// that died at or before `cutoff`, in id order: redriven in that order, an ordering
/// group keeps its order. Read in order from `ferrymq_deliveries_dead`, so a page costs
/// its own rows, never a sort of every dead letter.
pub(crate) fn dead_page(
    conn: &Connection,
    group_id: i64,
    after: i64,
    through: i64,
    cutoff: i64,
    limit: usize,
) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT message_id FROM ferrymq_deliveries INDEXED BY ferrymq_deliveries_dead
         WHERE group_id = ?1 AND state = ",
        delivery_state!(dead),
        " AND message_id > ?2 AND message_id <= ?3
           AND due_at <= ?4
         ORDER BY message_id LIMIT ?5"
    ))?;
    let ids = stmt
        .query_map(
            params![group_id, after, through, cutoff, limit as i64],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Puts one dead delivery back in line with a fresh set of retries. An ordered message
/// waits behind whatever of its group is still unfinished. Returns whether it was dead.
pub(crate) fn redrive_one(
    conn: &Connection,
    group_id: i64,
    message_id: i64,
    now: i64,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            concat!("UPDATE ferrymq_deliveries
             SET state = CASE WHEN ordering_group IS NOT NULL AND EXISTS (
                         SELECT 1 FROM ferrymq_deliveries b
                         WHERE b.group_id = ?1 AND b.ordering_group = ferrymq_deliveries.ordering_group
                           AND b.state IN (", delivery_state!(pending), ", ", delivery_state!(inflight), ", ", delivery_state!(blocked), "))
                     THEN 4 ELSE 0 END,
                 attempt = 0, due_at = ?3, lease_token = NULL, claimed_at = NULL
             WHERE message_id = ?2 AND group_id = ?1 AND state = ?4"),
        )?
        .execute(params![group_id, message_id, now, DEAD])?;
    Ok(changed > 0)
}

pub(crate) fn purge_one(conn: &Connection, group_id: i64, message_id: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(concat!(
            "DELETE FROM ferrymq_deliveries WHERE message_id = ?1 AND group_id = ?2 AND state = ",
            delivery_state!(dead)
        ))?
        .execute(params![message_id, group_id])?;
    if changed > 0 {
        conn.prepare_cached(
            "DELETE FROM ferrymq_attempts WHERE message_id = ?1 AND group_id = ?2",
        )?
        .execute(params![message_id, group_id])?;
    }
    Ok(changed > 0)
}
