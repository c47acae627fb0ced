//! Consumer groups and their subscription rows, and their flow control: `paused` and
//! `max_inflight` live in the group's row (migration 0005), so every process's claim
//! reads them with the row it reads anyway.

use crate::error::{Error, Result};
use crate::filter::TagFilter;
use crate::retry::RetryPolicy;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, Clone)]
pub(crate) struct GroupRow {
    pub id: i64,
    pub name: String,
    pub topic: String,
    pub retry: RetryPolicy,
    pub lease_ms: i64,
    pub paused: bool,
    pub max_inflight: Option<i64>,
}

pub(crate) struct Subscription<'a> {
    pub group: &'a str,
    pub topic_id: i64,
    pub topic: &'a str,
    pub filter: &'a TagFilter,
    pub retry: &'a RetryPolicy,
    pub lease_ms: i64,
    pub max_inflight: Option<i64>,
}

/// Creates the group or updates its settings. A group follows one topic for life.
pub(crate) fn subscribe(conn: &Connection, s: &Subscription<'_>, now: i64) -> Result<()> {
    let existing: Option<(i64, i64)> = conn
        .prepare_cached("SELECT id, topic_id FROM ferrymq_groups WHERE name = ?1")?
        .query_row([s.group], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let group_id = match existing {
        Some((_, topic_id)) if topic_id != s.topic_id => {
            let current: String = conn.query_row(
                "SELECT name FROM ferrymq_topics WHERE id = ?1",
                [topic_id],
                |r| r.get(0),
            )?;
            return Err(Error::invalid(format!(
                "consumer group {:?} already subscribes to topic {current:?}, not {:?}; use another group name",
                s.group, s.topic
            )));
        }
        Some((id, _)) => {
            conn.prepare_cached(
                "UPDATE ferrymq_groups SET tag_filter = ?2, retry_policy = ?3, lease_ms = ?4,
                     max_inflight = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                s.filter.to_string(),
                s.retry.encode(),
                s.lease_ms,
                s.max_inflight
            ])?;
            conn.prepare_cached("DELETE FROM ferrymq_subscriptions WHERE group_id = ?1")?
                .execute([id])?;
            id
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO ferrymq_groups (name, topic_id, tag_filter, retry_policy, lease_ms,
                     created_at, max_inflight)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.group,
                s.topic_id,
                s.filter.to_string(),
                s.retry.encode(),
                s.lease_ms,
                now,
                s.max_inflight
            ])?;
            conn.last_insert_rowid()
        }
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO ferrymq_subscriptions (topic_id, tag, group_id) VALUES (?1, ?2, ?3)",
    )?;
    for tag in s.filter.stored_tags() {
        insert.execute(params![s.topic_id, tag, group_id])?;
    }
    Ok(())
}

pub(crate) fn by_name(conn: &Connection, name: &str) -> Result<GroupRow> {
    let row = conn
        .prepare_cached(
            "SELECT g.id, t.name, g.retry_policy, g.lease_ms, g.paused, g.max_inflight
             FROM ferrymq_groups g JOIN ferrymq_topics t ON t.id = g.topic_id
             WHERE g.name = ?1",
        )?
        .query_row([name], |r| {
            Ok((
                (
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ),
                (r.get::<_, bool>(4)?, r.get::<_, Option<i64>>(5)?),
            ))
        })
        .optional()?;
    let Some(((id, topic, retry, lease_ms), (paused, max_inflight))) = row else {
        return Err(Error::NotFound(format!(
            "consumer group {name:?} does not exist; call subscribe first"
        )));
    };
    Ok(GroupRow {
        id,
        name: name.to_owned(),
        topic,
        retry: RetryPolicy::decode(&retry)?,
        lease_ms,
        paused,
        max_inflight,
    })
}

/// Pauses (`true`) or resumes the group; pausing a paused group changes nothing.
pub(crate) fn set_paused(conn: &Connection, name: &str, paused: bool) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE ferrymq_groups SET paused = ?2 WHERE name = ?1 AND paused <> ?2")?
        .execute(params![name, paused])?;
    if changed == 0 {
        let exists: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM ferrymq_groups WHERE name = ?1)")?
            .query_row([name], |r| r.get(0))?;
        if !exists {
            return Err(Error::NotFound(format!(
                "consumer group {name:?} does not exist; call subscribe first"
            )));
        }
    }
    Ok(())
}

/// Whether the group is paused.
pub(crate) fn is_paused(conn: &Connection, group_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT paused FROM ferrymq_groups WHERE id = ?1")?
        .query_row([group_id], |r| r.get(0))?)
}

/// `(id, name, topic)` of every group, by name.
pub(crate) fn all(conn: &Connection) -> Result<Vec<(i64, String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.name, t.name FROM ferrymq_groups g
         JOIN ferrymq_topics t ON t.id = g.topic_id ORDER BY g.name",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
