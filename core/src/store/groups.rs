//! Consumer groups and their subscription rows, and their flow control: `paused` and
//! `max_inflight` (migration 0005) and the rate limit's token bucket (migration 0006)
//! live in the group's row, so every process's claim reads them with the row it reads
//! anyway.

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
    pub rate: Option<Bucket>,
}

/// A group's token bucket as stored: `tokens` left at `tokens_at` (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub rate: f64,
    pub burst: i64,
    pub tokens: f64,
    pub tokens_at: i64,
}

/// Rounding slack: a bucket refilled at the millisecond its next token is due holds one
/// token, not 0.9999999.
const EPSILON: f64 = 1e-9;

impl Bucket {
    /// Tokens at `now`: refilled at `rate` since `tokens_at`, up to `burst`. A clock that
    /// went back (another process's) refills nothing.
    pub fn available(&self, now: i64) -> f64 {
        let elapsed = now.saturating_sub(self.tokens_at).max(0) as f64;
        (self.tokens + elapsed * self.rate / 1000.0 + EPSILON).min(self.burst as f64)
    }

    /// Whole deliveries the bucket allows at `now`.
    pub fn whole(&self, now: i64) -> usize {
        self.available(now).floor().max(0.0) as usize
    }

    /// When the bucket holds a whole token (ms): `tokens_at` if it already did then.
    pub fn next_token_at(&self) -> i64 {
        let missing = 1.0 - self.tokens - EPSILON;
        if missing <= 0.0 {
            return self.tokens_at;
        }
        let wait = (missing * 1000.0 / self.rate).ceil();
        self.tokens_at
            .saturating_add(wait.min(i64::MAX as f64) as i64)
    }
}

pub(crate) struct Subscription<'a> {
    pub group: &'a str,
    pub topic_id: i64,
    pub topic: &'a str,
    pub filter: &'a TagFilter,
    pub retry: &'a RetryPolicy,
    pub lease_ms: i64,
    pub max_inflight: Option<i64>,
    /// `(rate, burst)`; `None` removes the limit.
    pub rate: Option<(f64, i64)>,
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
            // Every process subscribes as it starts: the same rate again keeps the bucket
            // as it is (else each start would hand out a burst more); a new one starts full.
            conn.prepare_cached(
                "UPDATE ferrymq_groups SET tag_filter = ?2, retry_policy = ?3, lease_ms = ?4,
                     max_inflight = ?5,
                     tokens = CASE WHEN rate IS ?6 AND burst IS ?7 THEN tokens ELSE ?7 END,
                     tokens_at = CASE WHEN rate IS ?6 AND burst IS ?7 THEN tokens_at ELSE ?8 END,
                     rate = ?6, burst = ?7
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                s.filter.to_string(),
                s.retry.encode(),
                s.lease_ms,
                s.max_inflight,
                s.rate.map(|r| r.0),
                s.rate.map(|r| r.1),
                s.rate.map(|_| now)
            ])?;
            conn.prepare_cached("DELETE FROM ferrymq_subscriptions WHERE group_id = ?1")?
                .execute([id])?;
            id
        }
        None => {
            conn.prepare_cached(
                // A new group starts after every message already published (the cursor
                // of schema 11), as it gets no rows of those.
                "INSERT INTO ferrymq_groups (name, topic_id, tag_filter, retry_policy, lease_ms,
                     created_at, max_inflight, rate, burst, tokens, tokens_at, delivered_through)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10,
                         coalesce((SELECT max(id) FROM ferrymq_messages), 0))",
            )?
            .execute(params![
                s.group,
                s.topic_id,
                s.filter.to_string(),
                s.retry.encode(),
                s.lease_ms,
                now,
                s.max_inflight,
                s.rate.map(|r| r.0),
                s.rate.map(|r| r.1),
                s.rate.map(|_| now)
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
            "SELECT g.id, t.name, g.retry_policy, g.lease_ms, g.paused, g.max_inflight,
                    g.rate, g.burst, g.tokens, g.tokens_at
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
                bucket(r, 6)?,
            ))
        })
        .optional()?;
    let Some(((id, topic, retry, lease_ms), (paused, max_inflight), rate)) = row else {
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
        rate,
    })
}

/// The bucket in columns `at..at + 4` (rate, burst, tokens, tokens_at) of a group row.
pub(crate) fn bucket(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Bucket>> {
    let rate: Option<f64> = r.get(at)?;
    Ok(match rate {
        None => None,
        Some(rate) => Some(Bucket {
            rate,
            burst: r.get::<_, Option<i64>>(at + 1)?.unwrap_or(1),
            tokens: r.get::<_, Option<f64>>(at + 2)?.unwrap_or(0.0),
            tokens_at: r.get::<_, Option<i64>>(at + 3)?.unwrap_or(0),
        }),
    })
}

/// Takes `n` tokens from the group's bucket at `now` (inside the claim's transaction,
/// whose group row `bucket` was read from).
pub(crate) fn take_tokens(
    conn: &Connection,
    group_id: i64,
    b: &Bucket,
    n: usize,
    now: i64,
) -> Result<()> {
    let left = (b.available(now) - n as f64).max(0.0);
    conn.prepare_cached(
        "UPDATE ferrymq_groups SET tokens = ?2, tokens_at = max(tokens_at, ?3)
         WHERE id = ?1 AND rate IS NOT NULL",
    )?
    .execute(params![group_id, left, now])?;
    Ok(())
}

/// Pauses (`true`) or resumes the group; pausing a paused group changes nothing and
/// returns false. `NotFound` for no such group.
pub(crate) fn set_paused(conn: &Connection, name: &str, paused: bool) -> Result<bool> {
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
    Ok(changed > 0)
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
