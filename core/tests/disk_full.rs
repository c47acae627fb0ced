//! Disk full: writes past the file's size cap fail with the storage error, the file stays
//! openable and consistent, and nothing returned as published is missing.

mod common;

use ferrymq::{ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions};
use rusqlite::types::Value;

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

    // Consuming still works (claims and acks rewrite rows in place) and frees room after a purge.
    let mut acked = 0;
    // One at a time: a claim of many rows at once may need a page the cap denies.
    while let Ok(ds) = q.receive("g", ReceiveOptions::new().max(1)) {
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

/// The outbox under a full disk: SQLite may undo a whole transaction on SQLITE_FULL. A
/// caller that swallows the error and goes on must not get its later publishes committed
/// one by one outside the transaction; and whatever commits keeps business rows and
/// messages together, every message with its delivery, and the counts exact.
#[test]
fn a_transaction_undone_by_a_full_disk_commits_nothing_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.db");
    let q = Queue::open(&path, Options::default().max_size(256 * 1024)).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    q.transaction(|tx| {
        tx.execute("CREATE TABLE orders (round INTEGER)", &[])
            .map(drop)
    })
    .unwrap();
    let (mut ok, mut refused, mut undone) = (0, 0, 0);
    for round in 0..40i64 {
        let mut tx = q.begin().unwrap();
        tx.execute(
            "INSERT INTO orders (round) VALUES (?1)",
            &[Value::Integer(round)],
        )
        .unwrap();
        for i in 0..50usize {
            let size = (round as usize * 50 + i) * 37 % 1900 + 1;
            let o = PublishOptions::new().key(format!("r{round}"));
            match tx.publish("t", vec![0x5au8; size], o) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
                    refused += 1;
                }
            }
        }
        if let Err(e) = tx.commit() {
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
            undone += 1;
        }
    }
    assert!(
        ok > 50 && refused > 50 && undone > 0,
        "published {ok}, refused {refused}, undone {undone}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count(
            "SELECT count(*) FROM ferrymq_messages m WHERE NOT EXISTS
             (SELECT 1 FROM orders o WHERE 'r' || o.round = m.key)"
        ),
        0,
        "messages committed without their business row"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM orders o WHERE NOT EXISTS
             (SELECT 1 FROM ferrymq_messages m WHERE m.key = 'r' || o.round)"
        ),
        0,
        "business rows committed without their messages"
    );
    assert_eq!(
        count(
            // A plain message's row is written by the group's claim: until then it waits
            // above the group's cursor.
            "SELECT count(*) FROM ferrymq_messages m WHERE NOT EXISTS
             (SELECT 1 FROM ferrymq_deliveries d WHERE d.message_id = m.id)
             AND NOT (m.via_cursor = 1 AND m.id > (SELECT delivered_through FROM ferrymq_groups))"
        ),
        0,
        "messages without their delivery"
    );
    let committed = count("SELECT count(*) FROM ferrymq_messages WHERE state = 0");
    assert_eq!(q.stats().unwrap().topics["t"].messages, committed as u64);
}
