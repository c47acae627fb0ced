//! Publishing and acking with SQL on the caller's own connection (`ferrymq::sql`): the
//! view's trigger stores exactly what `Queue::publish` stores, commits and rolls back
//! with the caller's transaction, and refuses bad input without writing anything.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, PublishOptions, ReceiveOptions, SubscribeOptions, sql};
use rusqlite::Connection;
use std::time::Duration;

fn subscribe_all(t: &TestQueue) {
    t.sub("all", "orders");
    t.sub_with(
        "paid",
        "orders",
        SubscribeOptions::new().tags("paid || refunded"),
    );
    t.sub_with("created", "orders", SubscribeOptions::new().tags("created"));
    t.sub("other", "invoices");
}

/// A mix of every option, ordering keys that block, repeated idempotency keys, and
/// more than 1,024 messages (the count fold).
fn messages() -> Vec<(&'static str, String, PublishOptions)> {
    let mut out = Vec::new();
    for i in 0..1100u32 {
        let mut o = PublishOptions::new().priority((i % 13 % 10) as i32);
        match i % 7 {
            0 => o = o.tag("paid").key(format!("order-{i}")),
            1 => {
                o = o
                    .tag("created")
                    .header("trace", format!("t{i}"))
                    .header("a", "b")
            }
            2 => o = o.ordering_key(format!("account-{}", i % 3)),
            3 => o = o.idempotency_key(format!("idem-{}", i % 5)),
            4 => o = o.delay(Duration::from_millis(u64::from(i))),
            5 => {
                o = o.deliver_at(
                    std::time::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + u64::from(i)),
                )
            }
            _ => o = o.tag("unknown-tag").ordering_key("account-1"),
        }
        let topic = if i % 11 == 0 { "invoices" } else { "orders" };
        out.push((topic, format!("payload {i}"), o));
    }
    out
}

fn dump(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<rusqlite::Result<Vec<_>>>()
    .unwrap()
}

fn queue_rows(conn: &Connection) -> Vec<Vec<String>> {
    [
        "SELECT * FROM ferrymq_topics ORDER BY id",
        "SELECT * FROM ferrymq_counted",
        "SELECT id, topic_id, state, tag, key, ordering_group, payload, published_at, deliver_at,
                check_at, decided_at, json_extract(headers, '$'), priority
         FROM ferrymq_messages ORDER BY id",
        "SELECT * FROM ferrymq_deliveries ORDER BY message_id, group_id",
        "SELECT * FROM ferrymq_idempotency ORDER BY topic_id, idem_key",
    ]
    .iter()
    .map(|q| dump(conn, q))
    .collect()
}

#[test]
fn a_message_published_with_sql_is_stored_as_publish_stores_it() {
    let by_queue = TestQueue::new();
    let by_sql = TestQueue::new();
    subscribe_all(&by_queue);
    subscribe_all(&by_sql);
    let mut conn = by_sql.raw();
    for (n, (topic, payload, o)) in messages().into_iter().enumerate() {
        let a = by_queue.q.publish(topic, &payload, o.clone()).unwrap();
        let tx = conn.transaction().unwrap();
        let b = sql::publish_in(&tx, topic, payload.as_bytes(), &o, Some(&by_sql.q)).unwrap();
        tx.commit().unwrap();
        assert_eq!(a, b, "message {n}");
        if n % 50 == 0 {
            by_queue.advance(Duration::from_millis(700));
            by_sql.advance(Duration::from_millis(700));
        }
    }
    let expected = queue_rows(&by_queue.raw());
    let got = queue_rows(&conn);
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e.len(), g.len());
        for (a, b) in e.iter().zip(g) {
            assert_eq!(a, b);
        }
    }
    assert_eq!(
        by_queue.q.stats().unwrap(),
        by_sql.q.stats().unwrap(),
        "stats read the folded counts"
    );
}

#[test]
fn it_commits_and_rolls_back_with_the_callers_rows() {
    let t = TestQueue::new();
    t.sub("payments", "orders");
    let mut conn = t.raw();
    conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)")
        .unwrap();

    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO orders VALUES (1, 100)", [])
        .unwrap();
    sql::publish_in(
        &tx,
        "orders",
        b"order 1",
        &PublishOptions::new(),
        Some(&t.q),
    )
    .unwrap();
    tx.rollback().unwrap();
    assert!(t.take_one("payments").is_none());

    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO orders VALUES (2, 250)", [])
        .unwrap();
    let id = sql::publish_in(
        &tx,
        "orders",
        b"order 2",
        &PublishOptions::new(),
        Some(&t.q),
    )
    .unwrap();
    tx.commit().unwrap();
    let d = t.take_one("payments").unwrap();
    assert_eq!((d.message_id, d.payload.as_slice()), (id, &b"order 2"[..]));
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn an_ack_commits_with_the_callers_rows_and_a_lost_lease_fails_it() {
    let t = TestQueue::new();
    t.sub_with(
        "payments",
        "orders",
        SubscribeOptions::new().lease(Duration::from_secs(30)),
    );
    let mut conn = t.raw();
    conn.execute_batch("CREATE TABLE done (id INTEGER PRIMARY KEY)")
        .unwrap();
    t.q.publish("orders", "a", PublishOptions::new()).unwrap();
    let d = t.take_one("payments").unwrap();

    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO done VALUES (1)", []).unwrap();
    sql::ack_in(&tx, &d, Some(&t.q)).unwrap();
    tx.rollback().unwrap();
    assert_eq!(
        t.q.message(d.message_id).unwrap().deliveries["payments"].state,
        ferrymq::DeliveryState::Inflight,
        "the rolled-back ack is undone"
    );

    // The lease expires and another consumer takes the message.
    t.advance(Duration::from_secs(31));
    let again = t.take_one("payments").unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO done VALUES (2)", []).unwrap();
    let err = sql::ack_in(&tx, &d, Some(&t.q)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    assert!(
        !tx.is_autocommit(),
        "the caller's transaction is still open"
    );
    tx.rollback().unwrap();

    let tx = conn.transaction().unwrap();
    sql::ack_in(&tx, &again, Some(&t.q)).unwrap();
    tx.commit().unwrap();
    let info = t.q.message(d.message_id).unwrap();
    assert_eq!(
        info.deliveries["payments"].state,
        ferrymq::DeliveryState::Acked
    );
}

#[test]
fn an_ack_releases_the_next_message_of_its_ordering_key() {
    let t = TestQueue::new();
    t.sub("payments", "orders");
    let o = PublishOptions::new().ordering_key("account-7");
    let first = t.q.publish("orders", "1", o.clone()).unwrap();
    let second = t.q.publish("orders", "2", o).unwrap();
    let d = t.take_one("payments").unwrap();
    assert_eq!(d.message_id, first);
    assert!(t.take_one("payments").is_none(), "the second waits");
    let mut conn = t.raw();
    let tx = conn.transaction().unwrap();
    sql::ack_in(&tx, &d, Some(&t.q)).unwrap();
    tx.commit().unwrap();
    assert_eq!(t.take_one("payments").unwrap().message_id, second);
}

#[test]
fn bad_input_is_refused_by_the_trigger_without_a_change() {
    let t = TestQueue::new();
    t.sub("payments", "orders");
    let mut conn = t.raw();
    let before = t.snapshot();
    let tx = conn.transaction().unwrap();
    let bad: &[(&str, &str)] = &[
        (
            "('or ders', x'01', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            "topic",
        ),
        (
            "('orders', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            "payload",
        ),
        (
            "('orders', zeroblob(4194305), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            "max_payload",
        ),
        (
            "('orders', 'x', 'a*b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            "tag",
        ),
        (
            "('orders', 'x', NULL, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            "key",
        ),
        (
            "('orders', 'x', NULL, NULL, 'not json', NULL, NULL, NULL, NULL, NULL, NULL)",
            "headers",
        ),
        (
            "('orders', 'x', NULL, NULL, '{\"a\": 1}', NULL, NULL, NULL, NULL, NULL, NULL)",
            "headers",
        ),
        (
            "('orders', 'x', NULL, NULL, '[1]', NULL, NULL, NULL, NULL, NULL, NULL)",
            "headers",
        ),
        (
            "('orders', 'x', NULL, NULL, NULL, NULL, NULL, 5, 7, NULL, NULL)",
            "not both",
        ),
        (
            "('orders', 'x', NULL, NULL, NULL, NULL, NULL, -1, NULL, NULL, NULL)",
            "delay_ms",
        ),
        (
            "('orders', 'x', NULL, NULL, NULL, NULL, NULL, 'soon', NULL, NULL, NULL)",
            "delay_ms",
        ),
    ];
    for (values, what) in bad {
        let text = tx
            .execute(
                &format!(
                    "INSERT INTO ferrymq_publish (topic, payload, tag, key, headers, ordering_key,
                     idempotency_key, delay_ms, deliver_at, idempotency_window_ms, published_at)
                     VALUES {values}"
                ),
                [],
            )
            .unwrap_err()
            .to_string();
        let err = sql::host_error(&text, None);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{values}: {text}");
        assert!(err.to_string().contains(what), "{values}: {err}");
        assert!(!tx.is_autocommit());
    }
    tx.commit().unwrap();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn the_checks_of_publish_run_before_anything_is_sent() {
    let t = TestQueue::new();
    let mut conn = t.raw();
    let tx = conn.transaction().unwrap();
    let err = sql::publish_in(&tx, "a b", b"x", &PublishOptions::new(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let big = vec![0u8; 4 * 1024 * 1024 + 1];
    let err = sql::publish_in(&tx, "t", &big, &PublishOptions::new(), None).unwrap_err();
    assert!(err.to_string().contains("max_payload"), "{err}");
    drop(tx);
    let err = sql::publish_in(&conn, "t", b"x", &PublishOptions::new(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("no transaction"), "{err}");
}

#[test]
fn a_file_without_the_schema_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("plain.db")).unwrap();
    let tx = conn.transaction().unwrap();
    let err = sql::publish_in(&tx, "t", b"x", &PublishOptions::new(), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("Queue.open"), "{err}");
}

#[test]
fn plain_sql_publishes_with_sqlites_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = ferrymq::Queue::open(&path, ferrymq::Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let conn = Connection::open(&path).unwrap();
    // What the sqlite3 shell or a Go service runs: no ferrymq library at all.
    conn.execute(
        "INSERT INTO ferrymq_publish (topic, payload, tag, headers) VALUES ('t', 'hello', 'x', '{\"k\": \"v\"}')",
        [],
    )
    .unwrap();
    let d = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(5)))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(d.payload, b"hello");
    assert_eq!(d.headers["k"], "v");
    let age = q.now().duration_since(d.published_at).unwrap_or_default();
    assert!(
        age < Duration::from_secs(60),
        "published_at is now: {age:?}"
    );
}

#[test]
fn a_waiting_consumer_wakes_for_a_message_published_with_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = ferrymq::Queue::open(&path, ferrymq::Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || {
            q.receive("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let mut conn = Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    let id = sql::publish_in(&tx, "t", b"x", &PublishOptions::new(), None).unwrap();
    tx.commit().unwrap();
    let got = waiter.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
}

#[test]
fn a_connection_to_another_file_than_the_queues_is_refused() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let other = TestQueue::new();
    let before = other.snapshot();
    let mut conn = other.raw();
    let tx = conn.transaction().unwrap();
    let err = sql::publish_in(&tx, "t", b"x", &PublishOptions::new(), Some(&t.q)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("not on the queue's file"), "{err}");
    t.q.publish("t", "x", PublishOptions::new()).unwrap();
    let d = t.take_one("g").unwrap();
    let err = sql::ack_in(&tx, &d, Some(&t.q)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    tx.commit().unwrap();
    assert_eq!(
        other.snapshot(),
        before,
        "nothing written to the other file"
    );
    let mut mine = t.raw();
    let tx = mine.transaction().unwrap();
    sql::ack_in(&tx, &d, Some(&t.q)).unwrap();
}
