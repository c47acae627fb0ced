//! Half messages (RocketMQ transactional messages): stored invisible, made deliverable by
//! commit (which fans them out then), discarded by rollback, and checked back under a
//! token so that one checker at a time answers for each.

use super::message_state;
use super::publish::{Matches, count_change, fan_out};
use super::{COMMITTED, ROLLED_BACK};
use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

/// What deciding a half message found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decided {
    /// This call decided it.
    Now,
    /// It was already decided the same way.
    Already,
    /// A check token was given and another checker holds the message now.
    Stale,
}

/// The message's state and whether it was ever a half message (decided or not).
fn current_state(conn: &Connection, id: i64) -> Result<Option<(i64, bool)>> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT state, state <> ",
            message_state!(committed),
            " OR decided_at IS NOT NULL FROM ferrymq_messages WHERE id = ?1"
        ))?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

fn after_miss(conn: &Connection, id: i64, wanted: i64, token: Option<i64>) -> Result<Decided> {
    match current_state(conn, id)? {
        None => Err(Error::NotFound(format!("half message {id} does not exist"))),
        // A checker's answer that lost to another checker, or to the producer's own
        // commit or rollback, is moot, not an error.
        Some(_) if token.is_some() => Ok(Decided::Stale),
        Some((_, false)) => Err(Error::invalid(format!(
            "message {id} is not a half message: it was published committed"
        ))),
        Some((s, true)) if s == wanted => Ok(Decided::Already),
        Some((ROLLED_BACK, true)) => Err(Error::invalid(format!(
            "half message {id} was already rolled back; it cannot be committed"
        ))),
        Some(_) => Err(Error::invalid(format!(
            "half message {id} was already committed; it cannot be rolled back"
        ))),
    }
}

/// Records when the half message `id` was decided (committed or rolled back), in the
/// transaction that decided it: what tells it from an ordinary message later, and when
/// the retention of a rolled-back message starts.
pub(crate) fn stamp_decided(conn: &Connection, id: i64, now: i64) -> Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE ferrymq_messages SET decided_at = ?2
         WHERE id = ?1 AND state <> ",
        message_state!(half),
        " AND decided_at IS NULL"
    ))?
    .execute(params![id, now])?;
    Ok(())
}

/// What a half message's commit fans out: topic id, tag, ordering key, deliver_at, priority.
type Committed = (i64, Option<String>, Option<String>, i64, i32);

pub(crate) fn commit(conn: &Connection, id: i64, token: Option<i64>) -> Result<Decided> {
    let row: Option<Committed> = conn
        .prepare_cached(concat!(
            "UPDATE ferrymq_messages SET state = ?3, check_at = NULL, check_token = NULL
             WHERE id = ?1 AND state = ",
            message_state!(half),
            " AND (?2 IS NULL OR check_token = ?2)
             RETURNING topic_id, tag, ordering_group, deliver_at, priority"
        ))?
        .query_row(params![id, token, COMMITTED], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    match row {
        Some((topic_id, tag, group, deliver_at, priority)) => {
            count_change(conn, topic_id, id, 1)?;
            fan_out(
                conn,
                &mut Matches::default(),
                id,
                topic_id,
                tag.as_deref(),
                group.as_deref(),
                (deliver_at, priority),
            )?;
            Ok(Decided::Now)
        }
        None => after_miss(conn, id, COMMITTED, token),
    }
}

pub(crate) fn rollback(conn: &Connection, id: i64, token: Option<i64>) -> Result<Decided> {
    let changed = conn
        .prepare_cached(concat!(
            "UPDATE ferrymq_messages SET state = ?3, check_at = NULL, check_token = NULL
             WHERE id = ?1 AND state = ",
            message_state!(half),
            " AND (?2 IS NULL OR check_token = ?2)"
        ))?
        .execute(params![id, token, ROLLED_BACK])?;
    if changed > 0 {
        return Ok(Decided::Now);
    }
    after_miss(conn, id, ROLLED_BACK, token)
}

/// Takes up to `limit` half messages of the topic that are due for a check, moving
/// their next check to `hold_until` so that no other checker takes them meanwhile.
/// Whether any half message of the topic is due for a check: a read, so that an idle
/// checker never takes the write lock.
pub(crate) fn checks_due(conn: &Connection, topic_id: i64, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM ferrymq_messages
             WHERE topic_id = ?1 AND state <> ",
            message_state!(committed),
            " AND state = ",
            message_state!(half),
            " AND check_at <= ?2)"
        ))?
        .query_row(params![topic_id, now], |r| r.get(0))?)
}

pub(crate) fn claim_checks(
    conn: &Connection,
    topic_id: i64,
    now: i64,
    hold_until: i64,
    token: i64,
    limit: usize,
) -> Result<Vec<i64>> {
    let ids = conn
        .prepare_cached(concat!(
            "SELECT id FROM ferrymq_messages
             WHERE topic_id = ?1 AND state <> ",
            message_state!(committed),
            " AND state = ",
            message_state!(half),
            " AND check_at <= ?2
             ORDER BY check_at LIMIT ?3"
        ))?
        .query_map(params![topic_id, now, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut claim = conn.prepare_cached(concat!(
        "UPDATE ferrymq_messages SET check_token = ?2, check_at = ?3
         WHERE id = ?1 AND state = ",
        message_state!(half),
        " AND check_at <= ?4"
    ))?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        if claim.execute(params![id, token, hold_until, now])? > 0 {
            claimed.push(id);
        }
    }
    Ok(claimed)
}

/// An unknown answer: check again at `next_at`, or roll back (and keep) after `check_max`.
/// Returns true when this answer rolled the message back.
pub(crate) fn unknown(
    conn: &Connection,
    id: i64,
    token: i64,
    next_at: i64,
    check_max: u32,
) -> Result<bool> {
    let state: Option<i64> = conn
        .prepare_cached(concat!(
            "UPDATE ferrymq_messages
             SET check_count = check_count + 1, check_token = NULL,
                 state = CASE WHEN check_count + 1 >= ?4 THEN ",
            message_state!(rolled_back),
            " ELSE ",
            message_state!(half),
            " END,
                 check_at = CASE WHEN check_count + 1 >= ?4 THEN NULL ELSE ?3 END
             WHERE id = ?1 AND state = ",
            message_state!(half),
            " AND check_token = ?2
             RETURNING state"
        ))?
        .query_row(params![id, token, next_at, check_max], |r| r.get(0))
        .optional()?;
    Ok(state == Some(ROLLED_BACK))
}

pub(crate) fn record_check(
    conn: &Connection,
    id: i64,
    at: i64,
    resolution: &str,
    error: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ferrymq_checks (message_id, at, resolution, error) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, at, resolution, error])?;
    // The answer may have decided the message (a commit, a rollback, the last unknown).
    stamp_decided(conn, id, at)
}

/// Ids of up to `limit` messages in `state` (half or rolled back), oldest first: read in
/// order from `ferrymq_messages_by_state`, nothing sorted.
pub(crate) fn ids_in_state(conn: &Connection, state: i64, limit: usize) -> Result<Vec<i64>> {
    let ids = conn
        .prepare_cached(concat!(
            "SELECT id FROM ferrymq_messages INDEXED BY ferrymq_messages_by_state
             WHERE state <> ",
            message_state!(committed),
            " AND state = ?1 ORDER BY id LIMIT ?2"
        ))?
        .query_map(params![state, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}
