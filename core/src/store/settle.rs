//! Ending or changing a held delivery: ack, nack (retry or dead), extend. Each statement
//! names the row, requires `state = inflight` and the caller's lease token, and reports
//! `LeaseLost` when the row no longer matches; nothing else is touched.

use super::delivery_state;
use super::{ACKED, DEAD, PENDING};
use crate::error::{Error, Result};
use crate::model::Delivery;
use crate::retry::{AfterFailure, RetryPolicy};
use rusqlite::{Connection, OptionalExtension, ToSql, params, params_from_iter};

/// `UPDATE ferrymq_deliveries SET $set` on the row a holder names: ?1-?3 are the message
/// id, group id and lease token, the state must still be in flight; `$set` uses ?4 on.
macro_rules! update_held {
    ($set:literal) => {
        concat!(
            "UPDATE ferrymq_deliveries SET ",
            $set,
            " WHERE message_id = ?1 AND group_id = ?2 AND lease_token = ?3 AND state = ",
            delivery_state!(inflight)
        )
    };
}

/// Runs an [`update_held!`] statement for `d` with `values` as ?4...; the rows changed
/// (0: the lease was lost).
fn on_held(conn: &Connection, sql: &str, d: &Delivery, values: &[&dyn ToSql]) -> Result<usize> {
    let key: [&dyn ToSql; 3] = [&d.message_id, &d.group_id, &d.lease_token];
    let all = key.into_iter().chain(values.iter().copied());
    Ok(conn.prepare_cached(sql)?.execute(params_from_iter(all))?)
}

fn lease_lost(d: &Delivery) -> Error {
    Error::LeaseLost {
        message_id: d.message_id,
        group: d.consumer_group.clone(),
    }
}

pub(crate) fn ack(conn: &Connection, d: &Delivery, now: i64) -> Result<()> {
    let sql = update_held!("state = ?4, due_at = ?5, lease_token = NULL");
    if on_held(conn, sql, d, &[&ACKED, &now])? == 0 {
        return Err(lease_lost(d));
    }
    if let Some(og) = &d.ordering_key {
        unblock_next(conn, d.group_id, og)?;
    }
    Ok(())
}

pub(crate) fn nack(
    conn: &Connection,
    d: &Delivery,
    reason: &str,
    delay_ms: Option<i64>,
    now: i64,
    jitter_unit: f64,
) -> Result<AfterFailure> {
    let held: Option<(i64, Option<i64>, String)> = conn
        .prepare_cached(concat!(
            "SELECT d.attempt, d.claimed_at, g.retry_policy
             FROM ferrymq_deliveries d JOIN ferrymq_groups g ON g.id = d.group_id
             WHERE d.message_id = ?1 AND d.group_id = ?2 AND d.lease_token = ?3 AND d.state = ",
            delivery_state!(inflight)
        ))?
        .query_row(params![d.message_id, d.group_id, d.lease_token], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((attempt, claimed_at, policy)) = held else {
        return Err(lease_lost(d));
    };
    let policy = RetryPolicy::decode(&policy)?;
    record_attempt(
        conn,
        d.message_id,
        d.group_id,
        attempt,
        claimed_at.unwrap_or(now),
        now,
        "nacked",
        Some(reason),
    )?;
    let outcome = policy.after_failure(attempt as u32, delay_ms, now, jitter_unit);
    let (state, due_at) = match outcome {
        AfterFailure::RetryAt(at) => (PENDING, at),
        AfterFailure::Dead => (DEAD, now),
    };
    let sql = update_held!("state = ?4, due_at = ?5, last_error = ?6, lease_token = NULL");
    on_held(conn, sql, d, &[&state, &due_at, &reason])?;
    if outcome == AfterFailure::Dead
        && let Some(og) = &d.ordering_key
    {
        unblock_next(conn, d.group_id, og)?;
    }
    Ok(outcome)
}

/// Moves the lease end to `now + lease_ms`; returns the new end.
pub(crate) fn extend(conn: &Connection, d: &Delivery, lease_ms: i64, now: i64) -> Result<i64> {
    let until = now.saturating_add(lease_ms);
    if on_held(conn, update_held!("due_at = ?4"), d, &[&until])? == 0 {
        return Err(lease_lost(d));
    }
    Ok(until)
}

/// Puts a held delivery back as if it had never been handed out (the attempt is not
/// counted). For a claim whose caller vanished before it saw the delivery.
pub(crate) fn release(conn: &Connection, d: &Delivery) -> Result<()> {
    let sql = update_held!(
        "state = ?5, attempt = attempt - 1, lease_token = NULL, claimed_at = NULL, due_at = ?4"
    );
    let due = crate::clock::system_time_to_ms(d.published_at).unwrap_or(0);
    on_held(conn, sql, d, &[&due, &PENDING])?;
    Ok(())
}

/// A delivery whose lease expired on its last allowed attempt.
pub(crate) fn kill_expired(
    conn: &Connection,
    message_id: i64,
    group_id: i64,
    attempt: i64,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE ferrymq_deliveries SET state = ",
        delivery_state!(dead),
        ", due_at = ?4, lease_token = NULL,
             last_error = 'lease expired'
         WHERE message_id = ?1 AND group_id = ?2 AND attempt = ?3 AND state = ",
        delivery_state!(inflight)
    ))?
    .execute(params![message_id, group_id, attempt, now])?;
    Ok(())
}

/// Releases the oldest blocked message of an ordering key once nothing of that key
/// is pending or inflight any more in the consumer group.
pub(crate) fn unblock_next(conn: &Connection, group_id: i64, ordering_group: &str) -> Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE ferrymq_deliveries SET state = ",
        delivery_state!(pending),
        "
         WHERE group_id = ?1 AND message_id = (
             SELECT message_id FROM ferrymq_deliveries
             WHERE group_id = ?1 AND ordering_group = ?2 AND state = ",
        delivery_state!(blocked),
        "
             ORDER BY message_id LIMIT 1)
           AND NOT EXISTS (
             SELECT 1 FROM ferrymq_deliveries
             WHERE group_id = ?1 AND ordering_group = ?2 AND state IN (",
        delivery_state!(pending),
        ", ",
        delivery_state!(inflight),
        "))"
    ))?
    .execute(params![group_id, ordering_group])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn record_attempt(
    conn: &Connection,
    message_id: i64,
    group_id: i64,
    attempt: i64,
    started_at: i64,
    ended_at: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ferrymq_attempts (message_id, group_id, attempt, started_at, ended_at, outcome, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![message_id, group_id, attempt, started_at, ended_at, outcome, error])?;
    Ok(())
}
