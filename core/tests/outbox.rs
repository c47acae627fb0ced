//! The transactional outbox: business rows and messages commit together or not at all,
//! acks inside the consumer's transaction, and every misuse refused without a change.

mod common;

use common::TestQueue;
use ferrymq::{
    ErrorKind, Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions, Value,
};
use std::time::Duration;

fn with_orders(t: &TestQueue) {
    t.q.transaction(|tx| {
        tx.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)",
            &[],
        )?;
        tx.execute(
            "CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
            &[],
        )?;
        tx.execute("INSERT INTO accounts VALUES (7, 1000000)", &[])?;
        Ok(())
    })
    .unwrap();
    t.sub("payments", "orders");
}

fn count(t: &TestQueue, sql: &str) -> i64 {
    t.raw().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn the_row_and_its_message_commit_together() {
    let t = TestQueue::new();
    with_orders(&t);
    let id =
        t.q.transaction(|tx| {
            let n = tx.execute(
                "INSERT INTO orders(id, amount) VALUES (?, ?)",
                &[Value::Integer(42), Value::Integer(100)],
            )?;
            assert_eq!(n, 1);
            let id = tx.publish("orders", b"order 42", PublishOptions::new().key("order-42"))?;
            let rows = tx.query(
                "SELECT amount FROM orders WHERE id = ?",
                &[Value::Integer(42)],
            )?;
            assert_eq!(rows, vec![vec![Value::Integer(100)]]);
            Ok(id)
        })
        .unwrap();
    let d = t.take_one("payments").unwrap();
    assert_eq!((d.message_id, d.key.as_deref()), (id, Some("order-42")));
    assert_eq!(count(&t, "SELECT count(*) FROM orders"), 1);
}

#[test]
fn an_error_or_panic_rolls_back_the_row_and_the_message() {
    let t = TestQueue::new();
    with_orders(&t);
    let before = t.snapshot();
    let err =
        t.q.transaction(|tx| {
            tx.execute("INSERT INTO orders VALUES (1, 5)", &[])?;
            tx.publish("orders", "o1", PublishOptions::new())?;
            tx.publish_batch(&[Message::new("orders", "o1b")])?;
            Err::<(), _>(ferrymq::Error::Callback("payment service said no".into()))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Callback);
    let q = t.q.clone();
    let panicked = std::panic::catch_unwind(move || {
        q.transaction(|tx| {
            tx.execute("INSERT INTO orders VALUES (2, 5)", &[])?;
            tx.publish("orders", "o2", PublishOptions::new())?;
            panic!("handler bug");
            #[allow(unreachable_code)]
            Ok(())
        })
    });
    assert!(panicked.is_err());
    assert_eq!(count(&t, "SELECT count(*) FROM orders"), 0);
    assert_eq!(t.snapshot(), before);
    assert!(t.take_one("payments").is_none());
    // The queue is still usable from the thread that panicked.
    t.q.transaction(|tx| tx.publish("orders", "o3", PublishOptions::new()))
        .unwrap();
}

#[test]
fn an_ack_in_the_consumers_transaction_commits_with_its_write() {
    let t = TestQueue::new();
    with_orders(&t);
    t.publish("orders", "debit 100");
    let d = t.take_one("payments").unwrap();
    t.q.transaction(|tx| {
        tx.execute(
            "UPDATE accounts SET balance = balance - 100 WHERE id = 7",
            &[],
        )?;
        tx.ack(&d)
    })
    .unwrap();
    assert_eq!(
        count(&t, "SELECT balance FROM accounts WHERE id = 7"),
        999_900
    );
    assert_eq!(
        t.q.message(d.message_id).unwrap().deliveries["payments"]
            .state
            .as_str(),
        "acked"
    );
}

#[test]
fn a_lost_lease_rolls_the_consumers_write_back() {
    let t = TestQueue::new();
    with_orders(&t);
    t.publish("orders", "debit 100");
    let slow = t.take_one("payments").unwrap();
    t.advance(Duration::from_secs(31));
    let fast = t.take_one("payments").unwrap();
    t.q.transaction(|tx| {
        tx.execute(
            "UPDATE accounts SET balance = balance - 100 WHERE id = 7",
            &[],
        )?;
        tx.ack(&fast)
    })
    .unwrap();
    let err =
        t.q.transaction(|tx| {
            tx.execute(
                "UPDATE accounts SET balance = balance - 100 WHERE id = 7",
                &[],
            )?;
            tx.ack(&slow)
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(
        count(&t, "SELECT balance FROM accounts WHERE id = 7"),
        999_900
    );
}

/// Two consumers race for the same messages with leases shorter than their handler
/// sometimes takes; each debits inside the transaction that acks. Every message must be
/// applied exactly once.
#[test]
fn racing_consumers_with_short_leases_apply_each_message_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.transaction(|tx| {
        tx.execute(
            "CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)",
            &[],
        )?;
        tx.execute("CREATE TABLE applied(message_id INTEGER NOT NULL)", &[])?;
        tx.execute("INSERT INTO accounts VALUES (7, 0)", &[])?;
        Ok(())
    })
    .unwrap();
    q.subscribe(
        "bank",
        "debits",
        SubscribeOptions::new().lease(Duration::from_millis(15)),
    )
    .unwrap();
    let n = 2000;
    let batch: Vec<Message> = (0..n)
        .map(|i| Message::new("debits", format!("{i}")))
        .collect();
    q.publish_batch(&batch).unwrap();

    let lost = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let q = if w == 0 {
                q.clone()
            } else {
                Queue::open(&path, Options::default()).unwrap()
            };
            let lost = std::sync::Arc::clone(&lost);
            std::thread::spawn(move || {
                let mut k: u64 = w;
                loop {
                    let ds = q
                        .receive(
                            "bank",
                            ReceiveOptions::new().wait(Duration::from_millis(300)),
                        )
                        .unwrap();
                    let Some(d) = ds.into_iter().next() else {
                        return;
                    };
                    // One handler in four outlives its lease.
                    k = k
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if (k >> 33) % 4 == 0 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let r = q.transaction(|tx| {
                        tx.execute(
                            "UPDATE accounts SET balance = balance - 1 WHERE id = 7",
                            &[],
                        )?;
                        tx.execute(
                            "INSERT INTO applied(message_id) VALUES (?)",
                            &[Value::Integer(d.message_id)],
                        )?;
                        tx.ack(&d)
                    });
                    match r {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::LeaseLost => {
                            lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let balance: i64 = conn
        .query_row("SELECT balance FROM accounts", [], |r| r.get(0))
        .unwrap();
    let dupes: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT message_id FROM applied GROUP BY message_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let applied: i64 = conn
        .query_row("SELECT count(DISTINCT message_id) FROM applied", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(dupes, 0);
    assert_eq!(applied, n);
    assert_eq!(balance, -n);
    assert!(
        lost.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the race never happened: the test proves nothing"
    );
}

#[test]
fn misuse_is_refused_and_changes_nothing() {
    let t = TestQueue::new();
    with_orders(&t);
    let before = t.snapshot();
    let kinds = |r: Result<usize, ferrymq::Error>| r.unwrap_err().kind();

    let mut tx = t.q.begin().unwrap();
    assert_eq!(
        kinds(tx.execute("this is not SQL", &[])),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kinds(tx.execute("INSERT INTO nowhere VALUES (1)", &[])),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kinds(tx.execute("INSERT INTO orders VALUES (NULL, NULL)", &[])),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        kinds(tx.execute("INSERT INTO orders VALUES (?)", &[])),
        ErrorKind::InvalidArgument
    );
    for sql in [
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s",
        "DELETE FROM ferrymq_messages",
        "UPDATE ferrymq_deliveries SET state = 2",
        "PRAGMA journal_mode = DELETE",
        "ATTACH 'other.db' AS o",
        "SELECT 1; DELETE FROM orders",
    ] {
        assert_eq!(
            kinds(tx.execute(sql, &[])),
            ErrorKind::InvalidArgument,
            "{sql}"
        );
    }
    // A thread that holds a transaction cannot open another or write around it.
    assert_eq!(t.q.begin().unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        t.q.publish("orders", "x", PublishOptions::new())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    tx.execute("INSERT INTO orders VALUES (9, 9)", &[]).unwrap();
    tx.rollback().unwrap();
    assert_eq!(tx.commit().unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        kinds(tx.execute("SELECT 1", &[])),
        ErrorKind::InvalidArgument
    );

    let mut tx = t.q.begin().unwrap();
    tx.commit().unwrap();
    assert_eq!(
        tx.rollback().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        tx.publish("orders", "late", PublishOptions::new())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(t.snapshot(), before);
    // After the transaction ended the thread may write directly again.
    t.q.publish("orders", "fine", PublishOptions::new())
        .unwrap();
}

#[test]
fn dropping_an_open_transaction_rolls_it_back() {
    let t = TestQueue::new();
    with_orders(&t);
    {
        let mut tx = t.q.begin().unwrap();
        tx.execute("INSERT INTO orders VALUES (1, 1)", &[]).unwrap();
        tx.publish("orders", "o", PublishOptions::new()).unwrap();
    }
    assert_eq!(count(&t, "SELECT count(*) FROM orders"), 0);
    assert!(t.take_one("payments").is_none());
    t.q.transaction(|_| Ok(())).unwrap();
}

#[test]
fn publish_in_and_ack_in_join_a_callers_own_connection() {
    let t = TestQueue::new();
    with_orders(&t);
    let mut conn = rusqlite::Connection::open(t.path()).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO orders VALUES (5, 50)", []).unwrap();
    let id =
        t.q.publish_in(&tx, "orders", "o5", PublishOptions::new().key("order-5"))
            .unwrap();
    tx.rollback().unwrap();
    assert!(
        t.q.message(id).is_err(),
        "rolled back with the caller's transaction"
    );

    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    tx.execute("INSERT INTO orders VALUES (5, 50)", []).unwrap();
    let id =
        t.q.publish_in(&tx, "orders", "o5", PublishOptions::new())
            .unwrap();
    tx.commit().unwrap();
    let d = t.take_one("payments").unwrap();
    assert_eq!(d.message_id, id);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    t.q.ack_in(&tx, &d).unwrap();
    tx.commit().unwrap();
    assert_eq!(
        t.q.message(id).unwrap().deliveries["payments"]
            .state
            .as_str(),
        "acked"
    );

    // Outside a transaction, or on another file: refused.
    let err =
        t.q.publish_in(&conn, "orders", "x", PublishOptions::new())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = rusqlite::Connection::open(other_dir.path().join("x.db")).unwrap();
    let otx = other.transaction().unwrap();
    let err =
        t.q.publish_in(&otx, "orders", "x", PublishOptions::new())
            .unwrap_err();
    assert!(
        err.to_string().contains("not open on this queue's file"),
        "{err}"
    );
}

#[test]
fn a_temporary_trigger_is_refused_and_never_reaches_the_pooled_connection() {
    let t = TestQueue::new();
    with_orders(&t);
    let before = t.snapshot();
    // Were it allowed, it would stay on the pooled connection after this transaction
    // and fire on the queue's own publishes, taking every message's deliveries away.
    let created = t.q.transaction(|tx| {
        tx.execute(
            "CREATE TEMP TRIGGER swallow AFTER INSERT ON ferrymq_messages BEGIN \
             UPDATE accounts SET balance = 0 WHERE id = 7; END",
            &[],
        )
    });
    assert_eq!(t.snapshot(), before);
    t.q.publish("orders", "order 1", PublishOptions::new())
        .unwrap();
    let balance = count(&t, "SELECT balance FROM accounts WHERE id = 7");
    let temp_objects =
        t.q.transaction(|tx| tx.query("SELECT count(*) FROM sqlite_temp_master", &[]));
    assert_eq!(
        balance, 1_000_000,
        "the trigger fired on the queue's publish"
    );
    assert_eq!(temp_objects.unwrap(), vec![vec![Value::Integer(0)]]);
    let err = created.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("temporary trigger"), "{err}");
    for sql in [
        "CREATE TEMP TABLE scratch(x)",
        "CREATE TEMPORARY VIEW v AS SELECT 1",
        "CREATE TEMP TRIGGER t AFTER INSERT ON orders BEGIN SELECT 1; END",
    ] {
        let err = t.q.transaction(|tx| tx.execute(sql, &[])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{sql}: {err}");
    }
    // Permanent objects of the caller's own stay allowed.
    t.q.transaction(|tx| {
        tx.execute(
            "CREATE TRIGGER audit AFTER INSERT ON orders BEGIN SELECT 1; END",
            &[],
        )
    })
    .unwrap();
}

#[test]
fn business_foreign_keys_follow_the_option_and_the_queue_works_with_them_on() {
    let settings = [
        (Options::default().foreign_keys(true), true),
        (Options::default().foreign_keys(false), false),
        // None: the bundled SQLite's default, which is on.
        (Options::default(), true),
    ];
    for (options, enforced) in settings {
        let t = TestQueue::with(options);
        t.sub("g", "t");
        t.q.transaction(|tx| {
            tx.execute("CREATE TABLE customers(id INTEGER PRIMARY KEY)", &[])?;
            tx.execute(
                "CREATE TABLE orders(id INTEGER PRIMARY KEY, \
                 customer INTEGER NOT NULL REFERENCES customers(id))",
                &[],
            )
        })
        .unwrap();
        let result = t.q.transaction(|tx| {
            tx.execute("INSERT INTO orders VALUES (1, 99)", &[])?;
            tx.publish("t", "order 1", PublishOptions::new())
        });
        let orders = count(&t, "SELECT count(*) FROM orders");
        if enforced {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
            assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
            assert_eq!(orders, 0);
        } else {
            result.unwrap();
            assert_eq!(orders, 1);
        }
        // The queue's own statements never trip over the setting (purge keeps the newest).
        t.publish("t", "x");
        t.publish("t", "y");
        for d in t.take("g", 10) {
            t.q.ack(&d).unwrap();
        }
        t.advance(Duration::from_secs(1));
        assert!(t.q.purge_acked(Duration::ZERO).unwrap() >= 1);
    }
}

#[test]
fn a_trigger_whose_body_touches_the_queues_tables_is_refused_and_a_business_one_is_not() {
    let t = TestQueue::new();
    with_orders(&t);
    let before = t.snapshot();
    // It would fire on inserts from any connection (the sqlite3 shell, another process),
    // where no authorizer watches, and delete the queue's messages there.
    let refused = t.q.transaction(|tx| {
        tx.execute(
            "CREATE TRIGGER wipe AFTER INSERT ON accounts BEGIN \
             DELETE FROM ferrymq_messages; END",
            &[],
        )
    });
    let err = refused.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("wipe"), "{err}");
    let named_ours = t.q.transaction(|tx| {
        tx.execute(
            "CREATE TRIGGER ferrymq_audit AFTER INSERT ON accounts BEGIN SELECT 1; END",
            &[],
        )
    });
    assert_eq!(named_ours.unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(t.snapshot(), before);
    let triggers = t.q.transaction(|tx| {
        tx.query(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name",
            &[],
        )
    });
    let ours = [
        "ferrymq_ack_insert",
        "ferrymq_audit_no_delete",
        "ferrymq_audit_no_update",
        "ferrymq_groups_need_a_cursor",
        "ferrymq_messages_keep_unreached",
        "ferrymq_publish_insert",
    ];
    let ours: Vec<Vec<Value>> = ours
        .iter()
        .map(|n| vec![Value::Text((*n).into())])
        .collect();
    assert_eq!(triggers.unwrap(), ours, "only the schema's own triggers");

    // A trigger on the caller's own tables is the caller's business.
    t.q.transaction(|tx| {
        tx.execute("CREATE TABLE audit(id INTEGER)", &[])?;
        tx.execute(
            "CREATE TRIGGER audit_accounts AFTER UPDATE ON accounts BEGIN \
             INSERT INTO audit VALUES (new.id); END",
            &[],
        )?;
        tx.execute(
            "UPDATE accounts SET balance = balance - 1 WHERE id = 7",
            &[],
        )
    })
    .unwrap();
    assert_eq!(count(&t, "SELECT count(*) FROM audit"), 1);
}
