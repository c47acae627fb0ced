//! Consumer groups as cursors over their topic (schema 11). A plain message (committed
//! at publish, no ordering key, no priority, no delay) is written with `via_cursor = 1`
//! and no delivery rows; each group's `delivered_through` is the highest message id of
//! its topic it has rows for or has passed. A claim first writes the rows of the plain
//! messages above the cursor (`catch_up`); readers that count what waits (stats,
//! `max_ready`, purge) add the plain messages above it (`above`).

use super::PENDING;
use crate::error::Result;
use rusqlite::{Connection, params};
use std::collections::HashSet;

/// How many plain messages above its cursor a claim writes the delivery rows of at once
/// (at least as many as it wants): a drain pays for those rows' pages once per this many.
const CATCH_UP: usize = 256;
/// The most plain messages one claim passes over looking for ones its group's filter
/// takes: the bound on how long a claim holds the write lock for a filter that takes few
/// of a busy topic's messages (the next claim goes on from there).
const MAX_SCAN: usize = 16_384;

/// A group's place in its topic.
struct Cursor {
    topic_id: i64,
    through: i64,
    /// The group's filter is `*`: every message of the topic is taken.
    every_tag: bool,
}

fn cursor(conn: &Connection, group_id: i64) -> Result<Cursor> {
    Ok(conn
        .prepare_cached(
            "SELECT g.topic_id, g.delivered_through,
                    EXISTS (SELECT 1 FROM ferrymq_subscriptions s
                            WHERE s.topic_id = g.topic_id AND s.tag = '*' AND s.group_id = g.id)
             FROM ferrymq_groups g WHERE g.id = ?1",
        )?
        .query_row([group_id], |r| {
            Ok(Cursor {
                topic_id: r.get(0)?,
                through: r.get(1)?,
                every_tag: r.get(2)?,
            })
        })?)
}

/// A plain message above a group's cursor, with the group's topic and cursor.
struct Above {
    id: i64,
    deliver_at: i64,
    tag: Option<String>,
    topic_id: i64,
    through: i64,
}

/// Writes the group's pending delivery rows of the plain messages above its cursor, and
/// moves the cursor past every message it looked at: a page of `CATCH_UP` (or `want`, if
/// more), and more pages while the filter has taken fewer than `want`, up to `MAX_SCAN`.
/// Must run inside the claim's write transaction: no message can then commit at or below
/// the cursor (ids only grow, and the newest message is never deleted).
///
/// On a full file (`max_size`, or the disk), the rows written before the one that did
/// not fit stay, the cursor moves past them, and the claim goes on with those and the
/// rows already pending: a full file can still be drained (and then purged). The error
/// comes back for the claim to return if it finds nothing at all.
pub(crate) fn catch_up(
    conn: &Connection,
    group_id: i64,
    want: usize,
) -> Result<Option<crate::error::Error>> {
    let page = want.max(CATCH_UP);
    // The group's row comes with the first page: a claim with nothing above its cursor
    // (a drain's steady state) costs this one statement.
    let mut next = conn.prepare_cached(
        "SELECT m.id, m.deliver_at, m.tag, g.topic_id, g.delivered_through
         FROM ferrymq_groups g JOIN ferrymq_messages m
           ON m.topic_id = g.topic_id AND m.via_cursor = 1 AND m.id > max(g.delivered_through, ?2)
         WHERE g.id = ?1
         ORDER BY m.id LIMIT ?3",
    )?;
    let mut read = |after: i64| -> Result<Vec<Above>> {
        Ok(next
            .query_map(params![group_id, after, page as i64], |r| {
                Ok(Above {
                    id: r.get(0)?,
                    deliver_at: r.get(1)?,
                    tag: r.get(2)?,
                    topic_id: r.get(3)?,
                    through: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    };
    let mut rows = read(0)?;
    let Some(&Above {
        topic_id,
        through: start,
        ..
    }) = rows.first()
    else {
        return Ok(None);
    };
    let tags: HashSet<String> = conn
        .prepare_cached(
            "SELECT tag FROM ferrymq_subscriptions WHERE topic_id = ?1 AND group_id = ?2",
        )?
        .query_map(params![topic_id, group_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let every_tag = tags.contains("*");
    // OR IGNORE: a row already there (never written for a plain message today) must not
    // stop the group's claims for good.
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO ferrymq_deliveries (message_id, group_id, state, due_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let (mut through, mut taken, mut scanned) = (start, 0, 0);
    let mut full = None;
    'pages: loop {
        for m in &rows {
            if every_tag || m.tag.as_ref().is_some_and(|t| tags.contains(t)) {
                match insert.execute(params![m.id, group_id, PENDING, m.deliver_at]) {
                    Ok(_) => taken += 1,
                    // SQLite undid the statement only (else the transaction is gone).
                    Err(e) if is_full(&e) && !conn.is_autocommit() => {
                        full = Some(e);
                        break 'pages;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            through = m.id;
        }
        scanned += rows.len();
        if rows.len() < page || taken >= want || scanned >= MAX_SCAN {
            break;
        }
        rows = read(through)?;
    }
    if through != start {
        conn.prepare_cached("UPDATE ferrymq_groups SET delivered_through = ?2 WHERE id = ?1")?
            .execute(params![group_id, through])?;
    }
    Ok(full.map(Into::into))
}

fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// The plain messages above the group's cursor that its tag filter takes: how many (up to
/// `cap`), and the oldest one's due time. They are all due: plain messages have no delay.
/// A group taking every tag counts index entries only.
pub(crate) fn above(conn: &Connection, group_id: i64, cap: u64) -> Result<(u64, Option<i64>)> {
    let c = cursor(conn, group_id)?;
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    if c.every_tag {
        let n: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM ferrymq_messages
                 WHERE topic_id = ?1 AND via_cursor = 1 AND id > ?2 LIMIT ?3)",
            )?
            .query_row(params![c.topic_id, c.through, cap], |r| r.get(0))?;
        let oldest = if n == 0 {
            None
        } else {
            conn.prepare_cached(
                "SELECT deliver_at FROM ferrymq_messages
                 WHERE topic_id = ?1 AND via_cursor = 1 AND id > ?2 ORDER BY id LIMIT 1",
            )?
            .query_row(params![c.topic_id, c.through], |r| r.get(0))?
        };
        return Ok((n as u64, oldest));
    }
    Ok(conn
        .prepare_cached(
            "SELECT count(*), min(deliver_at) FROM (
                 SELECT m.deliver_at FROM ferrymq_messages m
                 WHERE m.topic_id = ?1 AND m.via_cursor = 1 AND m.id > ?2
                   AND EXISTS (SELECT 1 FROM ferrymq_subscriptions s
                               WHERE s.topic_id = ?1 AND s.tag = m.tag AND s.group_id = ?3)
                 LIMIT ?4)",
        )?
        .query_row(params![c.topic_id, c.through, group_id, cap], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })?)
}

/// The groups that have not reached plain message `id` yet and whose filter takes it: it
/// waits for them without a row (`message()` shows it ready there; `purge_acked` keeps it).
pub(crate) fn groups_behind(conn: &Connection, id: i64) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT g.name FROM ferrymq_messages m
             JOIN ferrymq_groups g ON g.topic_id = m.topic_id
             WHERE m.id = ?1 AND m.via_cursor = 1 AND g.delivered_through < m.id
               AND EXISTS (SELECT 1 FROM ferrymq_subscriptions s
                           WHERE s.topic_id = m.topic_id AND s.tag IN ('*', m.tag)
                             AND s.group_id = g.id)",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}
