//! The file's size on disk: a large batch does not leave a WAL of its size behind, new
//! files are created with incremental auto-vacuum, and `vacuum` gives the pages that
//! purges freed back to the file system. Old files without auto-vacuum keep working.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, Message, Options, PublishOptions, Queue, ReceiveOptions};
use std::path::Path;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;
/// The WAL is cut back to journal_size_limit (64 MiB) at most.
const WAL_BOUND: u64 = 64 * MIB;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn wal(t: &TestQueue) -> u64 {
    size(&t.path().with_extension("db-wal"))
}

fn big_batch(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message::new("t", vec![i as u8; MIB as usize]))
        .collect()
}

fn consume_all(t: &TestQueue) {
    loop {
        let ds = t.q.receive("g", ReceiveOptions::new().max(100)).unwrap();
        if ds.is_empty() {
            return;
        }
        for d in ds {
            t.q.ack(&d).unwrap();
        }
    }
}

#[test]
fn a_large_batch_leaves_no_large_wal_behind() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.q.publish_batch(&big_batch(200)).unwrap();
    let after_batch = wal(&t);
    assert!(
        after_batch < WAL_BOUND,
        "a 200 MiB batch left a {after_batch}-byte WAL"
    );
    consume_all(&t);
    t.advance(Duration::from_secs(1));
    assert_eq!(t.q.purge_acked(Duration::ZERO).unwrap(), 199);
    assert!(wal(&t) < WAL_BOUND, "WAL of {} bytes", wal(&t));
}

#[test]
fn vacuum_gives_purged_pages_back_and_the_file_shrinks() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let auto_vacuum: i64 = t
        .raw()
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(auto_vacuum, 2, "a new file is not INCREMENTAL");
    t.q.publish_batch(&big_batch(200)).unwrap();
    consume_all(&t);
    t.advance(Duration::from_secs(1));
    t.q.purge_acked(Duration::ZERO).unwrap();
    let before = size(&t.path());
    assert!(before > 200 * MIB, "{before}");
    // A partial vacuum frees what it was asked to, and no more.
    assert_eq!(t.q.vacuum(Some(10)).unwrap(), 10);
    let freed = t.q.vacuum(None).unwrap();
    let after = size(&t.path());
    assert!(freed * 4096 > 190 * MIB, "only {freed} pages freed");
    assert!(after < 10 * MIB, "the file is {after} bytes after vacuum");
    assert!(wal(&t) < WAL_BOUND, "WAL of {} bytes", wal(&t));
    assert_eq!(t.q.vacuum(None).unwrap(), 0, "nothing is left to free");
    // The kept message is intact.
    let kept = t.q.publish("t", "after", PublishOptions::new()).unwrap();
    assert_eq!(t.q.message(kept).unwrap().payload, b"after");
    assert_eq!(t.q.stats().unwrap().topics["t"].messages, 2);
    let err = t.q.vacuum(Some(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn a_file_without_auto_vacuum_keeps_it_and_vacuum_frees_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE orders(id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(raw);
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", Default::default()).unwrap();
    for _ in 0..20 {
        q.publish("t", vec![1u8; 100_000], PublishOptions::new())
            .unwrap();
    }
    for d in q.receive("g", ReceiveOptions::new().max(100)).unwrap() {
        q.ack(&d).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(q.purge_acked(Duration::ZERO).unwrap(), 19);
    assert_eq!(q.vacuum(None).unwrap(), 0);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let (mode, free): (i64, i64) = raw
        .query_row(
            "SELECT a.auto_vacuum, f.freelist_count FROM pragma_auto_vacuum() a, pragma_freelist_count() f",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(mode, 0, "the adopted file's mode changed");
    assert!(free > 0, "the purge freed no pages");
    q.publish("t", "still works", PublishOptions::new())
        .unwrap();
}
