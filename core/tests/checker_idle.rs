//! An idle checker reads before it writes: with nothing due it never asks for the write
//! lock, so it neither waits behind nor stalls other writers.

use ferrymq::{Options, PublishOptions, Queue, Resolution};
use std::time::Duration;

#[test]
fn run_checks_with_nothing_due_does_not_need_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = Queue::open(
        &db,
        Options::default().busy_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    // A half message that is not due yet (check_after is 6 s), so the topic exists.
    q.prepare("fund-purchase", b"buy", PublishOptions::new())
        .unwrap();
    q.set_checker("fund-purchase", |_| Ok(Resolution::Commit))
        .unwrap();

    let other = ferrymq::rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Before the fix this took the write lock and failed with Busy after busy_timeout.
    assert_eq!(q.run_checks().unwrap(), 0);
    other.execute_batch("ROLLBACK").unwrap();
    q.close().unwrap();
}
