//! The SQL of schedules (migration 0006). A tick is handled by `advance` or `finish`, whose
//! `WHERE` names the schedule and the tick it handles (`next_at`): a second firing of
//! the same tick changes no row, and its caller then publishes nothing.

use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

/// A schedule's row.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleRow {
    pub name: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: Option<String>,
    pub cron: Option<String>,
    pub tz: Option<String>,
    pub every_ms: Option<i64>,
    pub missed: i64,
    pub next_at: i64,
    pub fired: i64,
    pub repeat_left: Option<i64>,
}

const COLUMNS: &str = "name, topic, payload, tag, key, headers, cron, tz, every_ms, missed, \
                       next_at, fired, repeat_left";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        name: r.get(0)?,
        topic: r.get(1)?,
        payload: r.get(2)?,
        tag: r.get(3)?,
        key: r.get(4)?,
        headers: r.get(5)?,
        cron: r.get(6)?,
        tz: r.get(7)?,
        every_ms: r.get(8)?,
        missed: r.get(9)?,
        next_at: r.get(10)?,
        fired: r.get(11)?,
        repeat_left: r.get(12)?,
    })
}

/// Creates the schedule, or replaces the one of that name whole (its count starts over).
pub(crate) fn put(conn: &Connection, s: &ScheduleRow, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ferrymq_schedules
             (name, topic, payload, tag, key, headers, cron, tz, every_ms, missed, next_at,
              fired, repeat_left, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13)",
    )?
    .execute(params![
        s.name,
        s.topic,
        s.payload,
        s.tag,
        s.key,
        s.headers,
        s.cron,
        s.tz,
        s.every_ms,
        s.missed,
        s.next_at,
        s.repeat_left,
        now
    ])?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, name: &str) -> Result<()> {
    let changed = conn
        .prepare_cached("DELETE FROM ferrymq_schedules WHERE name = ?1")?
        .execute([name])?;
    if changed == 0 {
        return Err(Error::NotFound(format!("no schedule named {name:?}")));
    }
    Ok(())
}

/// Every schedule, by name.
pub(crate) fn list(conn: &Connection) -> Result<Vec<ScheduleRow>> {
    // `name > ''` rather than no WHERE: the primary key is searched, never scanned whole
    // (the query-plan test holds every statement to that).
    let sql = format!("SELECT {COLUMNS} FROM ferrymq_schedules WHERE name > ?1 ORDER BY name");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map([""], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The earliest tick of any schedule (`None`: there is no schedule). The check a receive
/// makes before firing, through the index: no rows read when there are none.
pub(crate) fn earliest(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT min(next_at) FROM ferrymq_schedules")?
        .query_row([], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// Schedules with a tick due at `now`, earliest first, at most `limit`.
pub(crate) fn due(conn: &Connection, now: i64, limit: usize) -> Result<Vec<ScheduleRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ferrymq_schedules WHERE next_at <= ?1 ORDER BY next_at LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params![now, limit as i64], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Moves the schedule from the tick `from` to `to`, counting `ticks` handled. False if
/// the schedule is not at `from` any more (replaced, removed, or that tick handled).
pub(crate) fn advance(
    conn: &Connection,
    name: &str,
    from: i64,
    to: i64,
    ticks: i64,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE ferrymq_schedules
             SET next_at = ?3, fired = fired + ?4, repeat_left = repeat_left - ?4
             WHERE name = ?1 AND next_at = ?2",
        )?
        .execute(params![name, from, to, ticks])?;
    Ok(changed == 1)
}

/// Ends the schedule at its last tick `at`. False as for `advance`.
pub(crate) fn finish(conn: &Connection, name: &str, at: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM ferrymq_schedules WHERE name = ?1 AND next_at = ?2")?
        .execute(params![name, at])?;
    Ok(changed == 1)
}
