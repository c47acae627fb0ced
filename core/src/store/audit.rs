//! The audit trail's SQL (`ferrymq_audit`, migration 0010): one INSERT per operator
//! action, run inside that action's write transaction, and the listing by id. The table
//! has no UPDATE or DELETE here: its triggers refuse both on every connection.

use crate::error::Result;
use rusqlite::{Connection, params};

/// One row as stored.
pub(crate) struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
    pub pid: i64,
    pub process: String,
    pub host: String,
    pub user: String,
    pub reason: Option<String>,
}

/// Who acted: the process, its host and its OS user.
pub(crate) struct Actor<'a> {
    pub pid: i64,
    pub process: &'a str,
    pub host: &'a str,
    pub user: &'a str,
}

/// What one action writes: `at` on the queue's clock, `detail` as JSON text.
pub(crate) struct Entry<'a> {
    pub at: i64,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// Appends one record; returns its id.
pub(crate) fn insert(conn: &Connection, e: &Entry<'_>, who: &Actor<'_>) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO ferrymq_audit (at, action, target, detail, pid, process, host, user, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.at,
        e.action,
        e.target,
        e.detail,
        who.pid,
        who.process,
        who.host,
        who.user,
        e.reason
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Records with ids above `after`, oldest first, at most `limit`.
pub(crate) fn list(conn: &Connection, after: i64, limit: usize) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, action, target, detail, pid, process, host, user, reason
         FROM ferrymq_audit WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        Ok(AuditRow {
            id: r.get(0)?,
            at: r.get(1)?,
            action: r.get(2)?,
            target: r.get(3)?,
            detail: r.get(4)?,
            pid: r.get(5)?,
            process: r.get(6)?,
            host: r.get(7)?,
            user: r.get(8)?,
            reason: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
