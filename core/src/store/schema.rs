//! Opening a connection and bringing the file to the current schema.
//!
//! The file is marked with `application_id` ("Frry") and versioned with `user_version`.
//! A file from a newer ferrymq, or one another application has marked, is refused before
//! anything in it changes. Business tables may share the file (the outbox), so a plain
//! SQLite file with neither mark is adopted and our `ferrymq_*` tables are added to it.
//!
//! Pragmas, and why:
//! | pragma | value | why |
//! |---|---|---|
//! | journal_mode | WAL | readers never block the writer; many processes share the file |
//! | synchronous | NORMAL (or FULL) | NORMAL: durable across process crashes, fsync only at checkpoint; FULL: across power loss |
//! | (busy handler) | Options::busy_timeout | contention waits instead of failing with "database is locked"; retried every 50 µs-1 ms (`busy`) |
//! | foreign_keys | OFF | the schema keeps its own integrity; FK checks would cost every publish |
//! | temp_store | MEMORY | sorts of claim candidates never touch disk |
//! | max_page_count | Options::max_size / page_size (only when set) | a size cap: writes past it fail as "disk full" |
//! | (db_config) ENABLE_QPSG | on | plans stay fixed per statement instead of being re-made per bound value |

use crate::error::{Error, Result};
use crate::options::Options;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const VERSION: i32 = 3;
/// "Frry" in ASCII.
pub const APPLICATION_ID: i32 = 0x4672_7279;

/// Migration `i` brings a file from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_counted.sql"),
    include_str!("../../migrations/0003_retention.sql"),
];

/// A connection plus the switch that puts its authorizer in "caller's SQL" mode.
pub(crate) struct Connected {
    pub conn: Connection,
    pub user_sql: Arc<AtomicBool>,
}

pub(crate) fn connect(path: &Path, opts: &Options) -> Result<Connected> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(super::busy::handler(opts.busy_timeout)))?;
    conn.pragma_update(None, "synchronous", opts.synchronous.pragma())?;
    conn.pragma_update(None, "foreign_keys", false)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    if let Some(bytes) = opts.max_size {
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        conn.pragma_update(
            None,
            "max_page_count",
            (bytes as i64 / page.max(512)).max(1),
        )?;
    }
    // Without the planner stability guarantee, SQLite (built with STAT4) re-plans a
    // statement whenever a bound value changes; measured: half of a receive's CPU.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    #[cfg(test)]
    super::plans::record(&mut conn);
    let user_sql = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&user_sql);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if flag.load(Ordering::Relaxed) && !user_may(&ctx.action) {
            Authorization::Deny
        } else {
            Authorization::Allow
        }
    }))?;
    Ok(Connected { conn, user_sql })
}

/// What SQL passed to `Transaction::execute`/`query` may do: anything to the caller's own
/// tables, read ours, but never end the transaction, attach files, change pragmas, or
/// write to `ferrymq_*` tables (that would break the queue's invariants).
fn user_may(action: &AuthAction<'_>) -> bool {
    use AuthAction as A;
    let ours = |table: &str| table.starts_with("ferrymq_");
    match action {
        A::Transaction { .. } | A::Savepoint { .. } | A::Attach { .. } | A::Detach { .. } => false,
        A::Pragma { pragma_value, .. } => pragma_value.is_none(),
        A::Insert { table_name }
        | A::Delete { table_name }
        | A::Update { table_name, .. }
        | A::DropTable { table_name }
        | A::AlterTable { table_name, .. }
        | A::CreateIndex { table_name, .. }
        | A::DropIndex { table_name, .. }
        | A::CreateTrigger { table_name, .. }
        | A::DropTrigger { table_name, .. }
        | A::CreateTable { table_name } => !ours(table_name),
        _ => true,
    }
}

/// Checks the file's marks, switches it to WAL and applies pending migrations. Several
/// processes opening a fresh file at once can get SQLITE_BUSY here without SQLite's busy
/// handler being consulted (the switch to WAL needs an exclusive lock), so the whole step
/// is retried until `busy_timeout` has passed.
pub(crate) fn prepare_file(conn: &Connection, busy_timeout: std::time::Duration) -> Result<()> {
    // One deadline for the whole step (not the busy handler, whose clock restarts after a
    // long gap: a BEGIN IMMEDIATE that waited out busy_timeout would restart it forever).
    let deadline = std::time::Instant::now() + busy_timeout;
    let mut tries = 0;
    loop {
        match prepare_once(conn) {
            Err(e)
                if e.kind() == crate::ErrorKind::Busy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(super::busy::pause(tries));
                tries += 1;
            }
            other => return other,
        }
    }
}

fn prepare_once(conn: &Connection) -> Result<()> {
    let marks = check_marks(conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Storage(format!(
            "could not switch the file to WAL mode (journal_mode is {mode})"
        )));
    }
    // A current file needs no write lock, so opening does not wait for another
    // process's long transaction (an outbox transaction, say).
    if marks == (APPLICATION_ID, VERSION) {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = migrate(conn);
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result
}

/// Both marks from one snapshot: read apart, another process's migration could land in
/// between and look like another application's file.
fn marks(conn: &Connection) -> Result<(i32, i32)> {
    Ok(conn.query_row(
        "SELECT a.application_id, v.user_version FROM pragma_application_id() a, pragma_user_version() v",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// The file's marks, if this build may use the file.
fn check_marks(conn: &Connection) -> Result<(i32, i32)> {
    let (app, version) = marks(conn)?;
    match (app, version) {
        (0, 0) => Ok((app, version)),
        (0, v) => Err(Error::Storage(format!(
            "not a ferrymq database: user_version {v} was set by another application"
        ))),
        (APPLICATION_ID, v) if v > VERSION => Err(Error::Storage(format!(
            "the file has ferrymq schema version {v}, newer than this build supports ({VERSION}); upgrade ferrymq"
        ))),
        (APPLICATION_ID, _) => Ok((app, version)),
        (other, _) => Err(Error::Storage(format!(
            "not a ferrymq database: application_id {other:#x} belongs to another application"
        ))),
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    // Read again under the write lock: another process may have migrated meanwhile.
    let (_, version) = check_marks(conn)?;
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(sql)
            .map_err(|e| Error::Storage(format!("migration {} failed: {e}", from + 1)))?;
    }
    if version < VERSION {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "user_version", VERSION)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Result<Connection> {
        let c = connect(path, &Options::default())?;
        prepare_file(&c.conn, std::time::Duration::from_secs(5))?;
        Ok(c.conn)
    }

    #[test]
    fn a_fresh_file_gets_the_current_version_and_mark() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("q.db")).unwrap();
        assert_eq!(marks(&conn).unwrap(), (APPLICATION_ID, VERSION));
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'ferrymq_%' AND type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 9);
    }

    #[test]
    fn preparing_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        assert_eq!(marks(&conn).unwrap(), (APPLICATION_ID, VERSION));
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let conn = open(&path).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Storage);
        assert!(err.to_string().contains("newer"), "{err}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(marks(&conn).unwrap(), (APPLICATION_ID, VERSION + 1));
    }

    #[test]
    fn a_version_1_file_keeps_its_topic_counts_after_migrating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO ferrymq_topics (id, name, messages) VALUES (1, 't', 2);
             INSERT INTO ferrymq_messages (topic_id, state, payload, published_at, deliver_at)
             VALUES (1, 0, x'00', 0, 0), (1, 1, x'00', 0, 0), (1, 0, x'00', 0, 0);",
        )
        .unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        assert_eq!(marks(&conn).unwrap(), (APPLICATION_ID, VERSION));
        assert_eq!(
            super::super::inspect::topic_stats(&conn, 1)
                .unwrap()
                .messages,
            2
        );
        conn.execute(
            "INSERT INTO ferrymq_messages (topic_id, state, payload, published_at, deliver_at)
             VALUES (1, 0, x'00', 0, 0)",
            [],
        )
        .unwrap();
        assert_eq!(
            super::super::inspect::topic_stats(&conn, 1)
                .unwrap()
                .messages,
            3
        );
        // What a version-1 process that opened the file before the migration runs next:
        // it fails instead of adding to a count that now means something else.
        let old_publish = conn.execute(
            "UPDATE ferrymq_topics SET messages = messages + ?2 WHERE id = ?1",
            [1, 1],
        );
        assert!(old_publish.is_err(), "a version-1 count update still works");
    }

    #[test]
    fn another_applications_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x); PRAGMA user_version = 7;")
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        assert!(err.to_string().contains("another application"), "{err}");
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "the foreign file was switched to WAL");
    }

    #[test]
    fn a_plain_business_database_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER); INSERT INTO orders VALUES (1, 5);").unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        let amount: i64 = conn
            .query_row("SELECT amount FROM orders", [], |r| r.get(0))
            .unwrap();
        assert_eq!(amount, 5);
    }

    #[test]
    fn the_user_sql_guard_protects_queue_tables_and_the_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let c = connect(&dir.path().join("q.db"), &Options::default()).unwrap();
        prepare_file(&c.conn, std::time::Duration::from_secs(5)).unwrap();
        c.user_sql.store(true, Ordering::Relaxed);
        for sql in [
            "DELETE FROM ferrymq_messages",
            "COMMIT",
            "SAVEPOINT x",
            "PRAGMA synchronous = OFF",
            "ATTACH 'x.db' AS x",
            "DROP TABLE ferrymq_topics",
        ] {
            assert!(c.conn.prepare(sql).is_err(), "{sql} was allowed");
        }
        assert!(
            c.conn
                .prepare("SELECT count(*) FROM ferrymq_messages")
                .is_ok()
        );
        assert!(c.conn.prepare("CREATE TABLE orders(id)").is_ok());
        c.user_sql.store(false, Ordering::Relaxed);
        assert!(c.conn.prepare("DELETE FROM ferrymq_messages").is_ok());
    }
}
