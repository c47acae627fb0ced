//! Opening files: permissions, pragmas, busy waiting, many handles, close, and files
//! ferrymq must refuse without changing them.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, Synchronous};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[test]
fn a_new_file_is_private_to_its_owner() {
    let t = TestQueue::new();
    let mode = std::fs::metadata(t.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn synchronous_full_is_applied_to_the_queues_connections() {
    let dir = tempfile::tempdir().unwrap();
    for (setting, expected) in [(Synchronous::Normal, 1), (Synchronous::Full, 2)] {
        let q = Queue::open(
            dir.path().join("q.db"),
            Options::default().synchronous(setting),
        )
        .unwrap();
        let tx = q.begin().unwrap();
        let level: i64 = tx
            .connection()
            .unwrap()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let mode: String = tx
            .connection()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((level, mode.as_str()), (expected, "wal"));
    }
    assert_eq!(
        "sometimes".parse::<Synchronous>().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn contention_waits_for_the_writer_and_busy_comes_only_past_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let patient = Queue::open(
        &path,
        Options::default().busy_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let impatient = Queue::open(
        &path,
        Options::default().busy_timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    let err = impatient
        .publish("t", "x", PublishOptions::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");

    let waiter = std::thread::spawn(move || patient.publish("t", "x", PublishOptions::new()));
    std::thread::sleep(Duration::from_millis(300));
    holder.execute_batch("COMMIT").unwrap();
    waiter
        .join()
        .unwrap()
        .expect("the patient publish waited and succeeded");
}

#[test]
fn opening_a_current_file_does_not_wait_for_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.publish("t", "x", PublishOptions::new()).unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    let quick = Options::default().busy_timeout(Duration::from_millis(100));
    let second = Queue::open(&path, quick).expect("open waited for the writer");
    assert_eq!(second.stats().unwrap().topics["t"].messages, 1);
    let err = second.publish("t", "y", PublishOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{err}");
    holder.execute_batch("COMMIT").unwrap();
    second.publish("t", "y", PublishOptions::new()).unwrap();
}

#[test]
fn many_queues_on_one_file_see_each_other() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let others: Vec<Queue> = (0..3).map(|_| t.reopen()).collect();
    for (i, q) in others.iter().enumerate() {
        q.publish("t", format!("from {i}"), PublishOptions::new())
            .unwrap();
    }
    let got = others[0]
        .receive("g", ReceiveOptions::new().max(10))
        .unwrap();
    assert_eq!(got.len(), 3);
    for d in &got {
        others[2].ack(d).unwrap();
    }
    assert_eq!(t.q.stats().unwrap().groups["g"].ready, 0);
}

#[test]
fn a_closed_queue_refuses_every_call_and_the_data_stays() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let id = t.publish("t", "kept");
    let clone = t.q.clone();
    t.q.close().unwrap();
    t.q.close().unwrap();
    assert!(clone.is_closed());
    let errs = [
        clone.publish("t", "x", PublishOptions::new()).unwrap_err(),
        clone.receive("g", ReceiveOptions::new()).unwrap_err(),
        clone.stats().unwrap_err(),
        clone.message(id).unwrap_err(),
        clone.begin().unwrap_err(),
    ];
    for e in errs {
        assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    }
    let again = t.reopen();
    assert_eq!(again.message(id).unwrap().payload, b"kept");
}

fn refused_unchanged(path: &std::path::Path, needle: &str) {
    let before = std::fs::read(path).unwrap();
    let err = Queue::open(path, Options::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(
        err.to_string().contains(needle),
        "{err} should say {needle}"
    );
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the refused file was changed"
    );
}

#[test]
fn foreign_truncated_and_newer_files_are_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just text that is long enough ".repeat(100),
    )
    .unwrap();
    refused_unchanged(&text, "not a SQLite database");

    let t = TestQueue::new();
    for i in 0..50 {
        t.publish("t", &format!("m{i}"));
    }
    t.q.close().unwrap();
    let full = std::fs::read(t.path()).unwrap();
    let cut = dir.path().join("cut.db");
    std::fs::write(&cut, &full[..60]).unwrap();
    refused_unchanged(&cut, "");

    let newer = dir.path().join("newer.db");
    {
        let q = Queue::open(&newer, Options::default()).unwrap();
        q.close().unwrap();
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    refused_unchanged(&newer, "newer");
}

#[test]
fn paths_that_cannot_hold_a_shared_queue_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        Queue::open(":memory:", Options::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        Queue::open("", Options::default()).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        Queue::open(dir.path().join("missing/dir/q.db"), Options::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Storage
    );
    assert_eq!(
        Queue::open(dir.path(), Options::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Storage
    );
    let bad = Options::default().check_max(0);
    assert_eq!(
        Queue::open(dir.path().join("q.db"), bad)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn a_waiting_receive_does_not_hold_the_write_lock() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let q = t.q.clone();
    let waiter = std::thread::spawn(move || {
        q.receive("g", ReceiveOptions::new().wait(Duration::from_millis(800)))
    });
    std::thread::sleep(Duration::from_millis(100));
    let holder = t.raw();
    let start = Instant::now();
    holder.execute_batch("BEGIN IMMEDIATE; COMMIT").unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(waiter.join().unwrap().unwrap().is_empty());
}

#[test]
fn many_handles_opening_a_fresh_file_at_once_all_succeed() {
    for round in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("fresh{round}.db"));
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    Queue::open(&path, Options::default())
                        .and_then(|q| q.publish("t", "x", PublishOptions::new()))
                })
            })
            .collect();
        for h in opens {
            h.join().unwrap().expect("a concurrent open failed");
        }
    }
}

/// Clears the immutable flag even when the test fails, so the temp dir can go.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: &std::path::Path) -> Immutable {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "chattr +i failed: this test needs e2fsprogs and root (as CI has)"
        );
        Immutable(path.to_owned())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_read_only_file_can_be_read_and_every_write_fails_typed() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let id = t.publish("t", "kept");
    t.q.close().unwrap();
    // Root ignores permission bits, so make the file immutable instead.
    let _guard = Immutable::set(&t.path());
    let before = std::fs::read(t.path()).unwrap();
    let q = Queue::open(t.path(), Options::default()).unwrap();
    assert_eq!(q.message(id).unwrap().payload, b"kept");
    assert_eq!(q.stats().unwrap().topics["t"].messages, 1);
    let err = q.publish("t", "x", PublishOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(
        q.receive("g", ReceiveOptions::new()).unwrap_err().kind(),
        ErrorKind::Storage
    );
    q.close().unwrap();
    assert_eq!(std::fs::read(t.path()).unwrap(), before);
}

#[test]
fn a_read_only_directory_gives_a_typed_error_and_changes_nothing() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.publish("t", "kept");
    t.q.close().unwrap();
    let dir = t.dir.path().to_owned();
    // Root ignores permission bits: an immutable directory refuses new files to anyone.
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    // The file and the wake word file its first open left.
    let files = names();
    let _guard = Immutable::set(&dir);
    let before = std::fs::read(t.path()).unwrap();
    let fresh = Queue::open(dir.join("new.db"), Options::default()).unwrap_err();
    assert_eq!(fresh.kind(), ErrorKind::Storage, "{fresh}");
    assert!(!dir.join("new.db").exists());
    // The existing file cannot get its -wal and -shm files: opening it fails, or it opens
    // and every write fails; either way with the storage error, and the bytes stay.
    match Queue::open(t.path(), Options::default()) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Storage, "{e}"),
        Ok(q) => {
            let err = q.publish("t", "x", PublishOptions::new()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
            q.close().unwrap();
        }
    }
    assert_eq!(std::fs::read(t.path()).unwrap(), before);
    assert_eq!(names(), files);
}

fn schema_of(path: &std::path::Path) -> Vec<(String, String, Option<String>)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut stmt = c
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE name LIKE 'ferrymq%' ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A file as ferrymq's schema version 2 left it, written with that version's migrations:
/// an ordinary message dead in group g, a half message committed by its checker, one
/// still undecided, one rolled back (with its key), and the newest, pending.
fn write_version_2_file(path: &std::path::Path, group_row_from: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(include_str!("../migrations/0001_init.sql"))
        .unwrap();
    c.execute_batch(include_str!("../migrations/0002_counted.sql"))
        .unwrap();
    c.execute_batch(&format!(
        "ATTACH '{}' AS fresh;
         INSERT INTO ferrymq_topics (id, name) VALUES (1, 't');
         INSERT INTO ferrymq_groups (id, name, topic_id, tag_filter, retry_policy, lease_ms, created_at)
             SELECT 1, name, 1, tag_filter, retry_policy, lease_ms, created_at
             FROM fresh.ferrymq_groups WHERE name = 'g';
         DETACH fresh;
         INSERT INTO ferrymq_subscriptions VALUES (1, '*', 1);
         INSERT INTO ferrymq_messages (id, topic_id, state, payload, published_at, deliver_at, check_at)
             VALUES (1, 1, 0, CAST('dead' AS BLOB), 1000, 1000, NULL), (2, 1, 0, CAST('checked' AS BLOB), 1001, 1001, NULL),
                    (3, 1, 1, CAST('undecided' AS BLOB), 1002, 1002, 9000), (4, 1, 2, CAST('rolled back' AS BLOB), 1003, 1003, NULL),
                    (5, 1, 0, CAST('newest' AS BLOB), 1004, 1004, NULL);
         INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at, attempt, last_error)
             VALUES (1, 1, 3, 1500, 1, 'poison'), (2, 1, 2, 1600, 1, NULL), (5, 1, 0, 1004, 0, NULL);
         INSERT INTO ferrymq_checks (message_id, at, resolution) VALUES
             (2, 1200, 'commit'), (4, 1300, 'unknown'), (4, 1400, 'rollback');
         INSERT INTO ferrymq_idempotency VALUES (1, 'pay-4', 4, 99999999999999);
         PRAGMA application_id = {};
         PRAGMA user_version = 2;",
        group_row_from.display(),
        0x4672_7279
    ))
    .unwrap();
}

#[test]
fn a_version_2_file_upgrades_to_the_fresh_schema_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    let q = Queue::open(&fresh, Options::default()).unwrap();
    q.subscribe("g", "t", ferrymq::SubscribeOptions::new())
        .unwrap();
    q.close().unwrap();
    let old = dir.path().join("v2.db");
    write_version_2_file(&old, &fresh);

    let q = Queue::open(&old, Options::default()).unwrap();
    assert_eq!(schema_of(&old), schema_of(&fresh));
    let version: i64 = rusqlite::Connection::open(&old)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 11);

    let stats = q.stats().unwrap();
    assert_eq!((stats.topics["t"].messages, stats.topics["t"].half), (3, 1));
    assert_eq!((stats.groups["g"].dead, stats.groups["g"].ready), (1, 1));
    let dead = q.dead_letters("g", 10).unwrap();
    assert_eq!(
        (dead[0].message_id, &dead[0].payload[..]),
        (1, &b"dead"[..])
    );
    assert_eq!(q.message(4).unwrap().checks.len(), 2);
    let listed: Vec<i64> = q
        .half_messages(None, 10)
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, [3, 4]);
    // Known as half messages from version 2: the one its checker committed, and the
    // rolled-back one; an ordinary message is not.
    q.commit_half(2).unwrap();
    assert_eq!(
        q.commit_half(4).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        q.commit_half(1).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // Version 2 did not say when message 4 was rolled back: its retention starts at the
    // upgrade, so it stays.
    q.purge_acked(Duration::from_secs(1)).unwrap();
    assert_eq!(q.message(4).unwrap().payload, b"rolled back");
    assert_eq!(q.redrive("g", None).unwrap(), 1);
    assert_eq!(
        q.receive("g", ReceiveOptions::new().max(10)).unwrap().len(),
        2
    );
}
