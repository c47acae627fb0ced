//! Writing messages: topic ids, the message row, idempotency keys, and the fan-out of one
//! delivery row per matching consumer group.

use super::{BLOCKED, PENDING};
use super::{delivery_state, message_state};
use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

/// A validated message, encoded for storage.
pub(crate) struct NewMessage<'a> {
    pub topic_id: i64,
    pub state: i64,
    pub tag: Option<&'a str>,
    pub key: Option<&'a str>,
    pub headers: Option<String>,
    pub ordering_group: Option<&'a str>,
    pub payload: &'a [u8],
    pub published_at: i64,
    pub deliver_at: i64,
    /// Half messages only: when the checker is first asked.
    pub check_at: Option<i64>,
    /// 0 to 9; copied into each delivery.
    pub priority: i32,
    /// A plain message: its delivery rows are written by each group's claim (schema 11).
    pub via_cursor: bool,
}

pub(crate) fn find_topic(conn: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM ferrymq_topics WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

/// The topic's id, creating the topic if needed. The flag says whether it already
/// existed: only ids that existed before this transaction are safe to cache, since a
/// rollback could take a new one back.
pub(crate) fn ensure_topic(conn: &Connection, name: &str) -> Result<(i64, bool)> {
    if let Some(id) = find_topic(conn, name)? {
        return Ok((id, true));
    }
    conn.prepare_cached("INSERT INTO ferrymq_topics (name) VALUES (?1)")?
        .execute([name])?;
    Ok((conn.last_insert_rowid(), false))
}

/// The publish whose message id is a multiple of this folds the newer ids into the
/// topics' counts (see migration 0002): a stats call counts at most this many rows of
/// its own, and a publish pays for the fold once in this many.
const FOLD_EVERY: i64 = 1024;

/// Counts message `id` of the topic as committed (+1) or gone (-1), where it changed
/// state after being published: ids above `through_id` are not in the topic's count yet,
/// and the next fold (or stats) finds them in their current state.
pub(crate) fn count_change(conn: &Connection, topic_id: i64, id: i64, delta: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE ferrymq_topics SET folded_messages = folded_messages + ?2
         WHERE id = ?1 AND ?3 <= (SELECT through_id FROM ferrymq_counted)",
    )?
    .execute(params![topic_id, delta, id])?;
    Ok(())
}

/// After inserting message `id`: on every `FOLD_EVERY`th id, moves the count of the
/// committed messages above `through_id` into their topics' rows.
pub(crate) fn fold_counts_if_due(conn: &Connection, id: i64) -> Result<()> {
    if id % FOLD_EVERY != 0 {
        return Ok(());
    }
    let through: i64 = conn
        .prepare_cached("SELECT through_id FROM ferrymq_counted")?
        .query_row([], |r| r.get(0))?;
    if id <= through {
        return Ok(());
    }
    let counts = conn
        .prepare_cached(concat!(
            "SELECT topic_id, count(*) FROM ferrymq_messages
             WHERE id > ?1 AND id <= ?2 AND state = ",
            message_state!(committed),
            " GROUP BY topic_id"
        ))?
        .query_map(params![through, id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
    let mut add = conn.prepare_cached(
        "UPDATE ferrymq_topics SET folded_messages = folded_messages + ?2 WHERE id = ?1",
    )?;
    for (topic_id, n) in counts {
        add.execute(params![topic_id, n])?;
    }
    conn.prepare_cached("UPDATE ferrymq_counted SET through_id = ?1")?
        .execute([id])?;
    Ok(())
}

pub(crate) fn find_idempotent(
    conn: &Connection,
    topic_id: i64,
    key: &str,
    now: i64,
) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            // A key whose half message was rolled back is free again: the producer's
            // retry must go through. (A purged message still holds its key.)
            concat!(
                "SELECT i.message_id FROM ferrymq_idempotency i
             LEFT JOIN ferrymq_messages m ON m.id = i.message_id
             WHERE i.topic_id = ?1 AND i.idem_key = ?2 AND i.expires_at > ?3
               AND (m.state IS NULL OR m.state <> ",
                message_state!(rolled_back),
                ")"
            ),
        )?
        .query_row(params![topic_id, key, now], |r| r.get(0))
        .optional()?)
}

pub(crate) fn remember_idempotent(
    conn: &Connection,
    topic_id: i64,
    key: &str,
    message_id: i64,
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ferrymq_idempotency (topic_id, idem_key, message_id, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![topic_id, key, message_id, expires_at])?;
    Ok(())
}

pub(crate) fn insert_message(conn: &Connection, m: &NewMessage<'_>) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO ferrymq_messages (topic_id, state, tag, key, headers, ordering_group,
             payload, published_at, deliver_at, check_at, priority, via_cursor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        m.topic_id,
        m.state,
        m.tag,
        m.key,
        m.headers,
        m.ordering_group,
        m.payload,
        m.published_at,
        m.deliver_at,
        m.check_at,
        m.priority,
        m.via_cursor
    ])?;
    let id = conn.last_insert_rowid();
    fold_counts_if_due(conn, id)?;
    Ok(id)
}

/// Inserts one delivery per consumer group of the topic whose filter matches `tag`.
/// An ordered message whose group already has an unfinished message in that consumer
/// group is inserted blocked, behind it. (Plain INSERTs: an INSERT ... SELECT that reads
/// the deliveries table while writing it makes SQLite buffer through a temp table.)
pub(crate) fn fan_out(
    conn: &Connection,
    matches: &mut Matches,
    message_id: i64,
    topic_id: i64,
    tag: Option<&str>,
    ordering_group: Option<&str>,
    (due_at, priority): (i64, i32),
) -> Result<usize> {
    let groups = matches.groups(conn, topic_id, tag)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at, ordering_group,
             priority)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for &group_id in groups {
        let state = match ordering_group {
            Some(og) if has_unfinished(conn, group_id, og)? => BLOCKED,
            _ => PENDING,
        };
        insert.execute(params![
            message_id,
            group_id,
            state,
            due_at,
            ordering_group,
            priority
        ])?;
    }
    Ok(groups.len())
}

/// The fan-out of the unordered committed messages with ids in `lo..=hi`, in one
/// statement: what `fan_out` does one message at a time.
pub(crate) fn fan_out_range(conn: &Connection, lo: i64, hi: i64) -> Result<()> {
    conn.prepare_cached(concat!(
        "INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at, priority)
         SELECT m.id, s.group_id, ?3, m.deliver_at, m.priority
         FROM ferrymq_messages m JOIN ferrymq_subscriptions s
           ON s.topic_id = m.topic_id AND s.tag IN ('*', m.tag)
         WHERE m.id BETWEEN ?1 AND ?2 AND m.ordering_group IS NULL AND m.via_cursor = 0
           AND m.state = ",
        message_state!(committed)
    ))?
    .execute(params![lo, hi, PENDING])?;
    Ok(())
}

/// The consumer groups matching a (topic, tag), remembered for one write transaction
/// (subscriptions cannot change under a transaction that holds the write lock), so a
/// batch of 1,000 looks them up once. Hashed by topic id, then by tag (kept apart from
/// untagged messages), so a lookup costs the same for the 2,000th distinct tag as for
/// the first and needs no allocation.
#[derive(Default)]
pub(crate) struct Matches {
    untagged: HashMap<i64, Vec<i64>>,
    tagged: HashMap<i64, HashMap<String, Vec<i64>>>,
}

impl Matches {
    pub(crate) fn groups(
        &mut self,
        conn: &Connection,
        topic_id: i64,
        tag: Option<&str>,
    ) -> Result<&[i64]> {
        let known = match tag {
            None => self.untagged.contains_key(&topic_id),
            Some(t) => self
                .tagged
                .get(&topic_id)
                .is_some_and(|m| m.contains_key(t)),
        };
        if !known {
            let ids = conn
                .prepare_cached(
                    "SELECT group_id FROM ferrymq_subscriptions
                     WHERE topic_id = ?1 AND tag IN ('*', ?2)",
                )?
                .query_map(params![topic_id, tag], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            match tag {
                None => self.untagged.insert(topic_id, ids),
                Some(t) => self
                    .tagged
                    .entry(topic_id)
                    .or_default()
                    .insert(t.to_owned(), ids),
            };
        }
        let found = match tag {
            None => self.untagged.get(&topic_id),
            Some(t) => self.tagged.get(&topic_id).and_then(|m| m.get(t)),
        };
        Ok(found.map_or(&[], Vec::as_slice))
    }
}

/// Whether the ordering key has a message pending, inflight or blocked in the group.
pub(crate) fn has_unfinished(
    conn: &Connection,
    group_id: i64,
    ordering_group: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM ferrymq_deliveries
                            WHERE group_id = ?1 AND ordering_group = ?2 AND state IN (",
            delivery_state!(pending),
            ", ",
            delivery_state!(inflight),
            ", ",
            delivery_state!(blocked),
            "))"
        ))?
        .query_row(params![group_id, ordering_group], |r| r.get(0))?)
}

/// Backpressure (`Options::max_ready`): fails with `Full` when one of `groups` has more
/// than `allowed` deliveries waiting (pending or blocked: ready, scheduled, retrying).
/// Counts at most `allowed + 1` entries of `ferrymq_deliveries_due` and plain messages
/// above the group's cursor per group, inside the write transaction, so every process's
/// rows count.
pub(crate) fn refuse_if_full(
    conn: &Connection,
    groups: &[i64],
    allowed: u64,
    limit: u64,
) -> Result<()> {
    let mut count = conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM ferrymq_deliveries
                               WHERE group_id = ?1 AND state IN (?2, ?3) LIMIT ?4)",
    )?;
    for &group_id in groups {
        let cap = i64::try_from(allowed.saturating_add(1)).unwrap_or(i64::MAX);
        let rows: i64 = count.query_row(params![group_id, PENDING, BLOCKED, cap], |r| r.get(0))?;
        let (plain, _) = super::cursor::above(conn, group_id, (cap - rows) as u64)?;
        let waiting = rows + plain as i64;
        if waiting > cap - 1 {
            let name: String = conn
                .prepare_cached("SELECT name FROM ferrymq_groups WHERE id = ?1")?
                .query_row([group_id], |r| r.get(0))?;
            return Err(Error::Full(format!(
                "consumer group {name:?} already has {limit} messages waiting (max_ready); \
                 nothing was published: retry once its consumers catch up"
            )));
        }
    }
    Ok(())
}
