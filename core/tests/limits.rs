//! Limits set at open: max_payload stays below what SQLite can store in one row, and
//! max_size must fit a page count. A value past either is refused before anything is
//! created, and a payload past max_payload never reaches a shared commit.

mod common;

use ferrymq::{ErrorKind, Options, PublishOptions, Queue, limits};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn max_payload_above_sqlites_row_limit_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    // 1 GiB was accepted, but SQLite refuses any row over 1,000,000,000 bytes.
    for bytes in [
        1usize << 30,
        limits::SQLITE_MAX_LENGTH,
        limits::MAX_PAYLOAD + 1,
    ] {
        let err = Queue::open(&path, Options::default().max_payload(bytes)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains("1000000000"), "{err}");
        assert!(!path.exists(), "a refused open created the file");
    }
    Queue::open(&path, Options::default().max_payload(limits::MAX_PAYLOAD)).unwrap();
}

#[test]
fn max_size_that_wraps_or_leaves_no_room_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    for bytes in [u64::MAX, i64::MAX as u64 + 1, 4096, 0] {
        let err = Queue::open(&path, Options::default().max_size(bytes)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bytes}: {err}");
        assert!(err.to_string().contains("max_size"), "{err}");
        assert!(!path.exists(), "a refused open created the file");
    }
    let q = Queue::open(&path, Options::default().max_size(i64::MAX as u64)).unwrap();
    q.publish("t", "fits", PublishOptions::new()).unwrap();
}

/// Before the cap, a payload over SQLite's limit failed inside the shared commit as a
/// storage error and took the other threads' publishes of that commit with it.
#[test]
fn an_oversized_payload_is_refused_alone_while_other_threads_publish() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        dir.path().join("q.db"),
        Options::default().max_payload(limits::MAX_PAYLOAD),
    )
    .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            let (q, done) = (q.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) || n < 50 {
                    q.publish("t", "small", PublishOptions::new()).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    // Zeroed and never written: the pages stay unallocated.
    let huge = vec![0u8; limits::MAX_PAYLOAD + 1];
    for _ in 0..20 {
        let err = q.publish("t", &huge, PublishOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains("max_payload"), "{err}");
    }
    done.store(true, Ordering::Relaxed);
    let published: u64 = publishers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(q.stats().unwrap().topics["t"].messages, published);
}
