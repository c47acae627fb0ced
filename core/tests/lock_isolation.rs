//! Another SQLite library in the same process (Python's sqlite3, better-sqlite3) opens and
//! closes descriptors of the queue's file and takes POSIX locks on it. Neither may drop
//! the other's locks: here the other library is played by the calls it makes (open,
//! close, fcntl), and another process checks which locks are still held.
#![cfg(target_os = "linux")]

mod common;

use common::{child_role, spawn_child};
use ferrymq::{Options, PublishOptions, Queue, SubscribeOptions};
use std::ffi::CString;
use std::path::Path;
use std::time::Duration;

/// What the other library does when one of its connections closes: it had opened the
/// database and its `-shm`, and now closes them, which drops every POSIX lock this
/// process holds on those files.
fn another_library_opens_and_closes(db: &Path) {
    for suffix in ["", "-shm"] {
        let path = CString::new(format!("{}{suffix}", db.display())).unwrap();
        // SAFETY: plain system calls on a NUL-terminated path.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDWR);
            assert!(fd >= 0, "open {path:?}");
            libc::close(fd);
        }
    }
}

/// Child: tries to take the write lock at once; prints LOCKED or WROTE.
fn try_to_write() {
    let conn = rusqlite::Connection::open(std::env::var("FERRYMQ_DB").unwrap()).unwrap();
    conn.busy_timeout(Duration::ZERO).unwrap();
    match conn.execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS probe(x); COMMIT") {
        Ok(()) => println!("WROTE"),
        Err(e) if e.to_string().contains("locked") => println!("LOCKED"),
        Err(e) => panic!("{e}"),
    }
}

fn child_output(test: &str, db: &Path) -> String {
    let out = spawn_child(test, "probe", &[("FERRYMQ_DB", db.display().to_string())])
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let marks = ["LOCKED", "WROTE", "HELD", "FREE"];
    text.lines()
        .find(|l| marks.contains(l))
        .unwrap_or_else(|| panic!("no answer from the child: {text}"))
        .to_owned()
}

#[test]
fn another_librarys_close_leaves_ferrymqs_write_lock_held() {
    if child_role(|_| try_to_write()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = Queue::open(&db, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let seen = q
        .transaction(|tx| {
            tx.publish("t", "x", PublishOptions::new())?;
            // ferrymq holds the write lock until this callback returns.
            another_library_opens_and_closes(&db);
            Ok(child_output(
                "another_librarys_close_leaves_ferrymqs_write_lock_held",
                &db,
            ))
        })
        .unwrap();
    assert_eq!(
        seen, "LOCKED",
        "another process wrote while ferrymq held the lock"
    );
}

/// Child: whether some process holds a lock on the range the parent locked.
fn lock_is_held() {
    let path = CString::new(std::env::var("FERRYMQ_DB").unwrap()).unwrap();
    // SAFETY: plain system calls; `lock` is fully initialised.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR);
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_WRLCK as i16;
        lock.l_whence = libc::SEEK_SET as i16;
        lock.l_start = RANGE.0;
        lock.l_len = RANGE.1;
        assert_eq!(libc::fcntl(fd, libc::F_GETLK, &mut lock), 0);
        println!(
            "{}",
            if lock.l_type == libc::F_UNLCK as i16 {
                "FREE"
            } else {
                "HELD"
            }
        );
    }
}

/// A byte range SQLite never locks, so only the other library's lock is on it.
const RANGE: (i64, i64) = (1 << 20, 16);

#[test]
fn ferrymqs_close_leaves_another_librarys_lock_held() {
    if child_role(|_| lock_is_held()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    Queue::open(&db, Options::default())
        .unwrap()
        .close()
        .unwrap();
    // The other library takes a POSIX lock on the database file and keeps it.
    let path = CString::new(db.display().to_string()).unwrap();
    // SAFETY: plain system calls; `lock` is fully initialised.
    let fd = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR);
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_RDLCK as i16;
        lock.l_whence = libc::SEEK_SET as i16;
        lock.l_start = RANGE.0;
        lock.l_len = RANGE.1;
        assert_eq!(libc::fcntl(fd, libc::F_SETLK, &lock), 0);
        fd
    };
    let test = "ferrymqs_close_leaves_another_librarys_lock_held";
    assert_eq!(child_output(test, &db), "HELD");
    // ferrymq opens, works and closes its connections: several descriptors of the file.
    for _ in 0..3 {
        let q = Queue::open(&db, Options::default()).unwrap();
        q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
        q.publish("t", "x", PublishOptions::new()).unwrap();
        q.stats().unwrap();
        q.close().unwrap();
    }
    assert_eq!(
        child_output(test, &db),
        "HELD",
        "ferrymq's close dropped it"
    );
    // SAFETY: the descriptor opened above.
    unsafe { libc::close(fd) };
}

#[test]
fn ferrymqs_locks_conflict_with_another_librarys_in_the_same_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = Queue::open(
        &db,
        Options::default().busy_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    // The other library's write transaction: SQLite's WAL write lock is byte 120 of the
    // `-shm` file.
    let shm = CString::new(format!("{}-shm", db.display())).unwrap();
    // SAFETY: plain system calls; `lock` is fully initialised.
    let fd = unsafe {
        let fd = libc::open(shm.as_ptr(), libc::O_RDWR);
        let mut lock: libc::flock = std::mem::zeroed();
        lock.l_type = libc::F_WRLCK as i16;
        lock.l_whence = libc::SEEK_SET as i16;
        lock.l_start = 120;
        lock.l_len = 1;
        assert_eq!(libc::fcntl(fd, libc::F_SETLK, &lock), 0);
        fd
    };
    let err = q.publish("t", "x", PublishOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ferrymq::ErrorKind::Busy, "{err}");
    // SAFETY: the descriptor opened above; closing it releases the lock.
    unsafe { libc::close(fd) };
    q.publish("t", "x", PublishOptions::new()).unwrap();
}

#[test]
fn a_thousand_opens_and_closes_keep_few_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let count = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let q = Queue::open(&db, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let before = count();
    for _ in 0..1000 {
        let other = Queue::open(&db, Options::default()).unwrap();
        other.publish("t", "x", PublishOptions::new()).unwrap();
        other.close().unwrap();
    }
    let after = count();
    assert!(
        after <= before + 16,
        "descriptors grew from {before} to {after}"
    );
    drop(q);
    // A file deleted after its last close leaves no descriptor behind.
    let before = count();
    for i in 0..50 {
        let path = dir.path().join(format!("gone-{i}.db"));
        let q = Queue::open(&path, Options::default()).unwrap();
        q.publish("t", "x", PublishOptions::new()).unwrap();
        q.close().unwrap();
        std::fs::remove_file(&path).unwrap();
    }
    let q = Queue::open(dir.path().join("last.db"), Options::default()).unwrap();
    q.close().unwrap();
    let after = count();
    assert!(
        after <= before + 8,
        "descriptors of deleted files kept: {before} -> {after}"
    );
}
