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
//! | foreign_keys | Options::foreign_keys (None: the build's default, on in the bundled build) | what business tables' FOREIGN KEY clauses obey in `Transaction::execute`; the `ferrymq_*` tables have none |
//! | temp_store | MEMORY | sorts of claim candidates never touch disk |
//! | secure_delete | ON | deleted rows (purged payloads, dead letters) are overwritten with zeros, in the file and in the WAL frames that replace their pages, instead of lingering in free space |
//! | (key) | Options::key, through `sqlite3_key_v2` (encrypted files only; see `cipher`) | first, before any statement reads the file |
//! | max_page_count | Options::max_size / page_size (only when set) | a size cap: writes past it fail as "disk full"; a per-connection setting, so it binds this process's queue only |
//! | journal_size_limit | 64 MiB | a WAL that grew past it (one large batch) is cut back to it when SQLite next restarts the WAL |
//! | (wal hook) | checkpoint at 1,000 pages; TRUNCATE past 64 MiB | SQLite's own auto-checkpoint (PASSIVE), plus: once that copied a WAL over 64 MiB back whole, a TRUNCATE checkpoint empties the `-wal` file at once; it never waits (readers or a writer in the way: it gives up, and the next commit tries again) |
//! | auto_vacuum | INCREMENTAL (new files only) | `Queue::vacuum` can give the pages freed by purges back to the file system; it must be set before the first table, so files created without it (by older ferrymq, or business databases adopted) keep theirs, and `vacuum` frees nothing in them |
//! | (db_config) ENABLE_QPSG | on | plans stay fixed per statement instead of being re-made per bound value |

use crate::cipher::Keyring;
use crate::error::{Error, Result};
use crate::options::Options;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization, Wal};
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const VERSION: i32 = 11;
/// "Frry" in ASCII.
pub const APPLICATION_ID: i32 = 0x4672_7279;

/// Migration `i` brings a file from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_counted.sql"),
    include_str!("../../migrations/0003_retention.sql"),
    include_str!("../../migrations/0004_sql_producers.sql"),
    include_str!("../../migrations/0005_flow_control.sql"),
    include_str!("../../migrations/0006_schedules.sql"),
    include_str!("../../migrations/0007_rate_priority.sql"),
    include_str!("../../migrations/0008_priority_leases.sql"),
    include_str!("../../migrations/0009_inbox.sql"),
    include_str!("../../migrations/0010_audit.sql"),
    include_str!("../../migrations/0011_cursors.sql"),
];

/// A connection plus the switch that puts its authorizer in "caller's SQL" mode.
pub(crate) struct Connected {
    pub conn: Connection,
    pub user_sql: Arc<AtomicBool>,
    /// Makes the busy handler give up at once (set while the WAL hook checkpoints).
    no_wait: Arc<AtomicBool>,
    /// The keyring epoch whose key the connection was opened with (0 for plain files).
    pub epoch: u64,
}

/// `journal_size_limit`, and the WAL size past which a commit empties the `-wal` file.
const WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;
/// SQLite's default auto-checkpoint threshold, kept since the WAL hook replaces it.
const AUTOCHECKPOINT_PAGES: i32 = 1000;

#[cfg(test)]
pub(crate) fn connect(path: &Path, opts: &Options) -> Result<Connected> {
    connect_keyed(path, opts, None)
}

/// A new connection to the file, keyed with `keyring`'s current key when it is encrypted.
/// A key that does not open the file is an `Encryption` error.
pub(crate) fn connect_keyed(
    path: &Path,
    opts: &Options,
    keyring: Option<&Keyring>,
) -> Result<Connected> {
    crate::lock_isolation::install();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    let epoch = match keyring {
        Some(k) => {
            crate::cipher::quiet();
            let epoch = k.apply(&conn)?;
            if !crate::cipher::opens(&conn)? {
                return Err(Error::Encryption(format!(
                    "the queue's key no longer opens {} (rekeyed by another process?)",
                    path.display()
                )));
            }
            epoch
        }
        None => 0,
    };
    // Set while the WAL hook checkpoints: a checkpoint after a commit must not wait.
    let no_wait = Arc::new(AtomicBool::new(false));
    let mut wait = super::busy::handler(opts.busy_timeout);
    let flag = Arc::clone(&no_wait);
    let hook_flag = Arc::clone(&no_wait);
    conn.busy_handler(Some(move |tries| {
        !flag.load(Ordering::Relaxed) && wait(tries)
    }))?;
    conn.pragma_update(None, "synchronous", opts.synchronous.pragma())?;
    if let Some(on) = opts.foreign_keys {
        conn.pragma_update(None, "foreign_keys", on)?;
    }
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "secure_delete", true)?;
    conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)?;
    let page = page_size(&conn)?;
    let page = page.max(512);
    if let Some(bytes) = opts.max_size {
        // Options::validate keeps bytes within i64.
        let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page;
        conn.pragma_update(None, "max_page_count", pages.max(1))?;
    }
    let large = i32::try_from(WAL_KEEP_BYTES / page).unwrap_or(i32::MAX);
    conn.wal_hook(Some(move |wal: &mut Wal, pages: i32| {
        checkpoint_after_commit(
            &mut |mode| wal.checkpoint_v2(mode),
            pages,
            large,
            &hook_flag,
        );
        Ok(())
    }))?;
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
        if !flag.load(Ordering::Relaxed) {
            return Authorization::Allow;
        }
        match user_may(&ctx.action) {
            Ok(()) => {
                if let AuthAction::CreateTrigger { trigger_name, .. } = ctx.action {
                    CREATED_TRIGGER.set(Some(trigger_name.to_owned()));
                }
                Authorization::Allow
            }
            Err(why) => {
                REFUSED.set(Some(why));
                Authorization::Deny
            }
        }
    }))?;
    Ok(Connected {
        conn,
        user_sql,
        no_wait,
        epoch,
    })
}

/// `PRAGMA page_size`, which SQLCipher answers as text on a keyed connection.
pub(crate) fn page_size(conn: &Connection) -> Result<i64> {
    let v: rusqlite::types::Value = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    match v {
        rusqlite::types::Value::Integer(n) => Ok(n),
        rusqlite::types::Value::Text(t) => t
            .parse()
            .map_err(|_| Error::Storage(format!("unreadable page_size {t:?}"))),
        other => Err(Error::Storage(format!("unreadable page_size {other:?}"))),
    }
}

/// What the WAL hook does after each commit with `pages` frames in the WAL. SQLite's own
/// auto-checkpoint (PASSIVE at 1,000 pages) copies pages back but never shrinks the
/// file, so one large batch would leave a `-wal` of its size until the last connection
/// closes. When a PASSIVE checkpoint copied a large WAL back whole, a TRUNCATE
/// checkpoint empties the file: it has nothing left to copy, and with `no_wait` set the
/// busy handler gives up at once, so a reader or writer in the way makes it fail
/// quickly (the next large commit tries again) instead of stalling this caller.
/// Errors are dropped: the commit has happened, and a failed checkpoint loses nothing.
fn checkpoint_after_commit(
    checkpoint: &mut dyn FnMut(CheckpointMode) -> rusqlite::Result<(i32, i32)>,
    pages: i32,
    large: i32,
    no_wait: &AtomicBool,
) {
    if pages < AUTOCHECKPOINT_PAGES.min(large) {
        return;
    }
    let Ok((log, copied)) = checkpoint(CheckpointMode::PASSIVE) else {
        return;
    };
    if pages >= large && copied == log {
        no_wait.store(true, Ordering::Relaxed);
        let _ = checkpoint(CheckpointMode::TRUNCATE);
        no_wait.store(false, Ordering::Relaxed);
    }
}

/// After a purge: copies the WAL back and empties it (TRUNCATE), so the zeroed pages
/// `secure_delete` wrote replace the old ones in the file and no frame of the `-wal` keeps
/// a purged row. Gives up at once when a reader or writer is in the way; a later
/// checkpoint does it then.
pub(crate) fn scrub_wal(c: &Connected) {
    c.no_wait.store(true, Ordering::Relaxed);
    let _ = c
        .conn
        .wal_checkpoint_v2(None::<&str>, CheckpointMode::TRUNCATE);
    c.no_wait.store(false, Ordering::Relaxed);
}

/// Copies the WAL back into the file without waiting for anyone (PASSIVE); when it
/// copies everything, SQLite also truncates the file to its current page count, which is
/// how pages freed by an incremental vacuum leave it.
pub(crate) fn checkpoint(conn: &Connection) -> Result<()> {
    conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)?;
    Ok(())
}

/// Frees up to `max` pages (at least 1) of the file's free list and returns how many
/// went; run inside a write transaction. A file whose auto_vacuum is not
/// INCREMENTAL frees nothing and returns 0: SQLite ignores the pragma there.
pub(crate) fn incremental_vacuum(conn: &Connection, max: u64) -> Result<u64> {
    let free = |c: &Connection| -> Result<i64> {
        Ok(c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?)
    };
    let before = free(conn)?;
    // SQLite reads 0 as "all": keep 1 meaning 1.
    let n = max.clamp(1, i32::MAX as u64);
    // One result row per page freed: it frees pages only as its rows are stepped.
    let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({n})"))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    Ok((before - free(conn)?).max(0) as u64)
}

/// `PRAGMA integrity_check` (its lines; `["ok"]` for a sound file), `user_version` and
/// `application_id`, read on one connection.
pub(crate) fn integrity(conn: &Connection) -> Result<(Vec<String>, i64, i64)> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    Ok((lines, version, app))
}

thread_local! {
    /// Why the authorizer refused the caller's statement last on this thread: SQLite
    /// reports only "not authorized", and the caller should learn what to change.
    static REFUSED: Cell<Option<&'static str>> = const { Cell::new(None) };
    /// The trigger the caller's statement created last on this thread: its body is not
    /// authorized when it is created, only when it fires, so it is read after the fact.
    static CREATED_TRIGGER: Cell<Option<String>> = const { Cell::new(None) };
}

/// The reason of the last refusal on this thread, if any; clears it.
pub(crate) fn take_refusal() -> Option<&'static str> {
    REFUSED.take()
}

/// Forgets a trigger name left by a statement that failed after creating it.
pub(crate) fn forget_created_trigger() {
    CREATED_TRIGGER.take();
}

/// Refuses the trigger the caller's statement just created (if it did) when its body
/// touches ferrymq's tables: it would fire on the caller's other connections and in other
/// processes, where no authorizer watches, and write around the queue's invariants.
pub(crate) fn check_created_trigger(conn: &Connection) -> Result<()> {
    let Some(name) = CREATED_TRIGGER.take() else {
        return Ok(());
    };
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
            [&name],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if sql.is_some_and(|s| s.to_ascii_lowercase().contains("ferrymq_")) {
        return Err(Error::invalid(format!(
            "trigger {name:?} names ferrymq's own tables in its body: it would change the \
             queue's rows from any connection, around its invariants"
        )));
    }
    Ok(())
}

/// What SQL passed to `Transaction::execute`/`query` may do: anything to the caller's own
/// tables, read ours, but never end the transaction, attach files, change pragmas, write
/// to `ferrymq_*` tables (that would break the queue's invariants), or create temporary
/// triggers, tables or views: those live on the pooled connection after the transaction
/// ends, where a temporary trigger fires on the queue's own statements (a trigger on
/// `ferrymq_messages` could delete every publish) and a later transaction finds objects
/// it did not create.
fn user_may(action: &AuthAction<'_>) -> std::result::Result<(), &'static str> {
    use AuthAction as A;
    let ours = |table: &str| table.starts_with("ferrymq_");
    let refuse_ours = |table: &str| {
        if ours(table) {
            Err("it would write to or change ferrymq's own tables")
        } else {
            Ok(())
        }
    };
    match action {
        A::Transaction { .. } | A::Savepoint { .. } => Err("it would end the transaction"),
        A::Attach { .. } | A::Detach { .. } => Err("it would attach or detach a file"),
        A::Pragma {
            pragma_value: Some(_),
            ..
        } => Err("it would set a pragma"),
        A::CreateTempTrigger { .. } | A::CreateTempTable { .. } | A::CreateTempView { .. } => Err(
            "it would create a temporary trigger, table or view, which would outlive the \
             transaction on ferrymq's pooled connection (a temporary trigger would fire on \
             the queue's own statements); create a permanent one instead",
        ),
        A::Insert { table_name }
        | A::Delete { table_name }
        | A::Update { table_name, .. }
        | A::DropTable { table_name }
        | A::AlterTable { table_name, .. }
        | A::CreateIndex { table_name, .. }
        | A::DropIndex { table_name, .. }
        | A::DropTrigger { table_name, .. }
        | A::CreateTable { table_name } => refuse_ours(table_name),
        A::CreateTrigger {
            table_name,
            trigger_name,
        } => refuse_ours(table_name).and_then(|()| {
            if ours(trigger_name) {
                Err("trigger names starting with ferrymq_ are the queue's own")
            } else {
                Ok(())
            }
        }),
        _ => Ok(()),
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
    incremental_vacuum_if_new(conn)?;
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

/// A file with no pages yet is created with `auto_vacuum = INCREMENTAL` (before the WAL
/// switch writes its first page), so `Queue::vacuum` can shrink it. SQLite fixes the
/// mode when the first page is written: existing files keep theirs.
fn incremental_vacuum_if_new(conn: &Connection) -> Result<()> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    Ok(())
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
        assert_eq!(n, 12);
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
    fn the_bundled_sqlite_limits_a_row_to_what_max_payload_assumes() {
        let conn = Connection::open_in_memory().unwrap();
        let len = |n: usize| {
            conn.query_row("SELECT length(zeroblob(?1))", [n as i64], |r| {
                r.get::<_, i64>(0)
            })
        };
        let limit = crate::validate::SQLITE_MAX_LENGTH;
        assert_eq!(len(limit).unwrap(), limit as i64);
        let err = len(limit + 1).unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::TooBig),
            "{err}"
        );
    }

    #[test]
    fn foreign_keys_default_to_the_builds_default_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let fk = |opts: &Options| -> i64 {
            let c = connect(&dir.path().join("q.db"), opts).unwrap();
            c.conn
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap()
        };
        let build_default: i64 = Connection::open_in_memory()
            .unwrap()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        // libsqlite3-sys builds the bundled SQLite with SQLITE_DEFAULT_FOREIGN_KEYS=1.
        assert_eq!(build_default, 1);
        assert_eq!(fk(&Options::default()), build_default);
        assert_eq!(fk(&Options::default().foreign_keys(false)), 0);
        assert_eq!(fk(&Options::default().foreign_keys(true)), 1);
    }

    #[test]
    fn the_post_commit_truncate_gives_up_at_once_when_a_reader_is_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let opts = Options::default().busy_timeout(std::time::Duration::from_secs(30));
        let c = connect(&path, &opts).unwrap();
        prepare_file(&c.conn, opts.busy_timeout).unwrap();
        c.conn
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (zeroblob(100000));")
            .unwrap();
        let wal = path.with_extension("db-wal");
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let reader_path = path.clone();
        // A reader whose snapshot has every frame: PASSIVE copies all, and only TRUNCATE
        // (which must wait for readers to leave the WAL) is held up, for one second.
        let reader = std::thread::spawn(move || {
            let r = Connection::open(reader_path).unwrap();
            r.execute_batch("BEGIN").unwrap();
            r.query_row("SELECT count(*) FROM t", [], |_| Ok(()))
                .unwrap();
            ready_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_secs(1));
            r.execute_batch("COMMIT").unwrap();
        });
        ready.recv().unwrap();
        let no_wait = &c.no_wait;
        let conn = &c.conn;
        checkpoint_after_commit(
            &mut |mode| conn.wal_checkpoint_v2(None::<&str>, mode),
            1,
            1,
            no_wait,
        );
        let wal_len = std::fs::metadata(&wal).unwrap().len();
        reader.join().unwrap();
        assert!(
            wal_len > 0,
            "the checkpoint waited for the reader to leave instead of giving up"
        );
        // With the reader gone, the same call empties the WAL.
        checkpoint_after_commit(
            &mut |mode| conn.wal_checkpoint_v2(None::<&str>, mode),
            1,
            1,
            no_wait,
        );
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
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
            "CREATE TEMP TRIGGER t AFTER INSERT ON ferrymq_messages BEGIN SELECT 1; END",
            "CREATE TEMP TABLE scratch(x)",
            "CREATE TEMP VIEW v AS SELECT 1",
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
