//! Read-only views: statistics, one message with its deliveries and history, lookup by
//! key. Every count runs over an index range; nothing loads a whole table.

use super::{ACKED, BLOCKED, DEAD, HALF, INFLIGHT, PENDING, ROLLED_BACK, decode_headers};
use super::{delivery_state, message_state};
use crate::api::{AttemptRecord, CheckRecord, DeliveryInfo, GroupStats, MessageInfo, TopicStats};
use crate::clock::ms_to_system_time;
use crate::error::{Error, Result};
use crate::model::{AttemptOutcome, DeliveryState, MessageState, Resolution};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::time::Duration;

fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<u64> {
    let n: i64 = conn.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
    Ok(n as u64)
}

pub(crate) fn topic_stats(conn: &Connection, topic_id: i64) -> Result<TopicStats> {
    let messages = count(
        conn,
        // The topic's count up to through_id, and the few newer ids counted here.
        concat!(
            "SELECT t.folded_messages + (SELECT count(*) FROM ferrymq_messages m
                              WHERE m.id > c.through_id AND m.topic_id = t.id AND m.state = ",
            message_state!(committed),
            ")
         FROM ferrymq_topics t, ferrymq_counted c WHERE t.id = ?1"
        ),
        [topic_id],
    )?;
    let half = count(
        conn,
        concat!(
            "SELECT count(*) FROM ferrymq_messages
         WHERE state <> ",
            message_state!(committed),
            " AND state = ?2 AND topic_id = ?1"
        ),
        params![topic_id, HALF],
    )?;
    Ok(TopicStats { messages, half })
}

/// Rolled-back half messages per topic name (topics without any are absent).
pub(crate) fn rolled_back_per_topic(c: &Connection) -> Result<BTreeMap<String, u64>> {
    let mut stmt = c.prepare_cached(concat!(
        "SELECT t.name, count(*) FROM ferrymq_messages m
         JOIN ferrymq_topics t ON t.id = m.topic_id
         WHERE m.state <> ",
        message_state!(committed),
        " AND m.state = ?1 GROUP BY t.name"
    ))?;
    let rows = stmt
        .query_map([ROLLED_BACK], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    Ok(rows)
}

pub(crate) fn group_stats(
    conn: &Connection,
    group_id: i64,
    topic: String,
    now: i64,
) -> Result<GroupStats> {
    let due = "SELECT count(*), min(due_at) FROM ferrymq_deliveries
               WHERE group_id = ?1 AND state = ?2 AND due_at <= ?3";
    let due_row = |state: i64| -> Result<(u64, Option<i64>)> {
        Ok(conn
            .prepare_cached(due)?
            .query_row(params![group_id, state, now], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })?)
    };
    let (ready_pending, oldest_pending) = due_row(PENDING)?;
    let (expired, oldest_expired) = due_row(INFLIGHT)?;
    let (waiting_first, waiting_retry): (i64, Option<i64>) = conn
        .prepare_cached(concat!(
            "SELECT count(*), sum(attempt > 0) FROM ferrymq_deliveries
             WHERE group_id = ?1 AND state = ",
            delivery_state!(pending),
            " AND due_at > ?2"
        ))?
        .query_row(params![group_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let retrying = waiting_retry.unwrap_or(0) as u64;
    let state_count = "SELECT count(*) FROM ferrymq_deliveries WHERE group_id = ?1 AND state = ?2";
    let inflight = count(conn, state_count, params![group_id, INFLIGHT])? - expired;
    let blocked = count(conn, state_count, params![group_id, BLOCKED])?;
    let dead = count(conn, state_count, params![group_id, DEAD])?;
    let (plain, oldest_plain) = super::cursor::above(conn, group_id, u64::MAX)?;
    let oldest = [oldest_pending, oldest_expired, oldest_plain]
        .into_iter()
        .flatten()
        .min();
    let paused = super::groups::is_paused(conn, group_id)?;
    Ok(GroupStats {
        topic,
        ready: ready_pending + expired + plain,
        scheduled: waiting_first as u64 - retrying + blocked,
        inflight,
        retrying,
        dead,
        oldest_ready_age: oldest
            .map(|t| Duration::from_millis(now.saturating_sub(t).max(0) as u64)),
        paused,
    })
}

pub(crate) fn topics(conn: &Connection) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM ferrymq_topics ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn delivery_state(state: i64, due_at: i64, now: i64) -> DeliveryState {
    match state {
        PENDING if due_at <= now => DeliveryState::Ready,
        PENDING | BLOCKED => DeliveryState::Scheduled,
        INFLIGHT if due_at > now => DeliveryState::Inflight,
        INFLIGHT => DeliveryState::Ready,
        ACKED => DeliveryState::Acked,
        _ => DeliveryState::Dead,
    }
}

fn message_state(state: i64) -> MessageState {
    match state {
        HALF => MessageState::Half,
        ROLLED_BACK => MessageState::RolledBack,
        _ => MessageState::Committed,
    }
}

/// The current (or successful) attempt, which lives in the delivery row itself.
pub(crate) struct Current {
    pub state: i64,
    pub attempt: i64,
    pub claimed_at: Option<i64>,
    pub due_at: i64,
}

/// One entry per attempt: the failed ones recorded in `ferrymq_attempts`, then the
/// running or acked one.
pub(crate) fn history(
    conn: &Connection,
    message_id: i64,
    group_id: i64,
    current: Option<&Current>,
) -> Result<Vec<AttemptRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, started_at, ended_at, outcome, error FROM ferrymq_attempts
         WHERE message_id = ?1 AND group_id = ?2 ORDER BY id",
    )?;
    let mut out = stmt
        .query_map(params![message_id, group_id], |r| {
            let outcome: String = r.get(3)?;
            Ok(AttemptRecord {
                attempt: r.get::<_, i64>(0)? as u32,
                started_at: ms_to_system_time(r.get(1)?),
                ended_at: Some(ms_to_system_time(r.get(2)?)),
                outcome: if outcome == "lease_expired" {
                    AttemptOutcome::LeaseExpired
                } else {
                    AttemptOutcome::Nacked
                },
                error: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if let Some(c) = current
        && let Some(started) = c.claimed_at
    {
        match c.state {
            INFLIGHT => out.push(AttemptRecord {
                attempt: c.attempt as u32,
                started_at: ms_to_system_time(started),
                ended_at: None,
                outcome: AttemptOutcome::Inflight,
                error: None,
            }),
            ACKED => out.push(AttemptRecord {
                attempt: c.attempt as u32,
                started_at: ms_to_system_time(started),
                ended_at: Some(ms_to_system_time(c.due_at)),
                outcome: AttemptOutcome::Acked,
                error: None,
            }),
            _ => {}
        }
    }
    Ok(out)
}

fn checks(conn: &Connection, message_id: i64) -> Result<Vec<CheckRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, resolution, error FROM ferrymq_checks WHERE message_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([message_id], |r| {
            let res: String = r.get(1)?;
            Ok(CheckRecord {
                at: ms_to_system_time(r.get(0)?),
                resolution: match res.as_str() {
                    "commit" => Resolution::Commit,
                    "rollback" => Resolution::Rollback,
                    _ => Resolution::Unknown,
                },
                error: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub(crate) fn message(conn: &Connection, id: i64, now: i64) -> Result<MessageInfo> {
    let row = conn
        .prepare_cached(
            "SELECT t.name, m.tag, m.key, m.payload, m.headers, m.ordering_group,
                    m.published_at, m.deliver_at, m.state, m.priority
             FROM ferrymq_messages m JOIN ferrymq_topics t ON t.id = m.topic_id
             WHERE m.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                (r.get::<_, i64>(8)?, r.get::<_, i32>(9)?),
            ))
        })
        .optional()?;
    let Some((
        topic,
        tag,
        key,
        payload,
        headers,
        group,
        published_at,
        deliver_at,
        (state, priority),
    )) = row
    else {
        return Err(Error::NotFound(format!("message {id} does not exist")));
    };
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.name, d.state, d.attempt, d.claimed_at, d.due_at, d.last_error
         FROM ferrymq_deliveries d JOIN ferrymq_groups g ON g.id = d.group_id
         WHERE d.message_id = ?1",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                Current {
                    state: r.get(2)?,
                    attempt: r.get(3)?,
                    claimed_at: r.get(4)?,
                    due_at: r.get(5)?,
                },
                r.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut deliveries = BTreeMap::new();
    for (group_id, name, current, last_error) in rows {
        deliveries.insert(
            name,
            DeliveryInfo {
                state: delivery_state(current.state, current.due_at, now),
                attempts: current.attempt as u32,
                last_error,
                history: history(conn, id, group_id, Some(&current))?,
            },
        );
    }
    // A plain message above a group's cursor has no row of that group yet: it is ready.
    for name in super::cursor::groups_behind(conn, id)? {
        deliveries.insert(
            name,
            DeliveryInfo {
                state: delivery_state(PENDING, deliver_at, now),
                attempts: 0,
                last_error: None,
                history: Vec::new(),
            },
        );
    }
    Ok(MessageInfo {
        id,
        topic,
        tag,
        key,
        payload,
        headers: decode_headers(headers)?,
        ordering_key: group,
        published_at: ms_to_system_time(published_at),
        deliver_at: ms_to_system_time(deliver_at),
        state: message_state(state),
        priority,
        deliveries,
        checks: checks(conn, id)?,
    })
}

/// Ids of the messages of a topic with this key, oldest first, at most `limit`.
pub(crate) fn ids_by_key(
    conn: &Connection,
    topic_id: i64,
    key: &str,
    limit: usize,
) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM ferrymq_messages WHERE topic_id = ?1 AND key = ?2 ORDER BY id LIMIT ?3",
    )?;
    let ids = stmt
        .query_map(params![topic_id, key, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// Ids of the committed messages of a topic above `after`, in id order, at most `limit`.
/// Walks the primary key from `after` (the `+` keeps the planner off the topic and state
/// indexes, which would sort the whole topic): a poll for new messages costs its rows.
pub(crate) fn ids_after(
    conn: &Connection,
    topic_id: i64,
    after: i64,
    limit: usize,
) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM ferrymq_messages
         WHERE id > ?2 AND +topic_id = ?1 AND +state = ?3 ORDER BY id LIMIT ?4",
    )?;
    let ids = stmt
        .query_map(
            params![topic_id, after, super::COMMITTED, limit as i64],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

/// The highest message id of a topic (any state), read backwards along the primary key.
pub(crate) fn last_id(conn: &Connection, topic_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM ferrymq_messages WHERE +topic_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([topic_id], |r| r.get(0))
        .optional()?)
}
