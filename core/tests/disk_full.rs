//! Disk full: writes past the file's size cap fail with the storage error, the file stays
//! openable and consistent, and nothing returned as published is missing.

mod common;

use ferrymq::{ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions};

#[test]
fn writes_past_the_cap_fail_cleanly_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.db");
    let q = Queue::open(&path, Options::default().max_size(512 * 1024)).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let payload = vec![0x5au8; 1500];
    let mut ids = Vec::new();
    let mut full = None;
    for i in 0..10_000 {
        match q.publish("t", &payload, PublishOptions::new().key(format!("k{i}"))) {
            Ok(id) => ids.push(id),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the cap was never reached");
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    assert!(ids.len() > 100, "only {} publishes fit", ids.len());

    // Every other write path fails the same way, and the queue keeps working for reads.
    let tx_err = q
        .transaction(|tx| {
            tx.execute("CREATE TABLE IF NOT EXISTS big(x)", &[])?;
            for _ in 0..100 {
                tx.publish("t", &payload, PublishOptions::new())?;
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(tx_err.kind(), ErrorKind::Storage, "{tx_err}");
    let batch = vec![ferrymq::Message::new("t", payload.clone()); 50];
    assert_eq!(
        q.publish_batch(&batch).unwrap_err().kind(),
        ErrorKind::Storage
    );
    assert_eq!(q.stats().unwrap().topics["t"].messages, ids.len() as u64);

    // Consuming still works (acks rewrite rows in place) and frees room after a purge.
    let mut acked = 0;
    while let Ok(ds) = q.receive("g", ReceiveOptions::new().max(100)) {
        if ds.is_empty() {
            break;
        }
        for d in ds {
            if q.ack(&d).is_ok() {
                acked += 1;
            }
        }
    }
    assert!(acked > 0);
    q.close().unwrap();

    let conn = rusqlite::Connection::open(&path).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    drop(conn);
    let q = Queue::open(&path, Options::default()).unwrap();
    for id in &ids {
        q.message(*id)
            .unwrap_or_else(|e| panic!("published message {id} is missing: {e}"));
    }
    q.publish("t", &payload, PublishOptions::new())
        .expect("writes work again without the cap");
}
