//! The inbox (`Transaction::inbox`): a key is new once per window, remembered only when
//! its transaction commits, refused without a change when malformed, and pruned by
//! `purge_acked` after its window.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, PublishOptions, Value, defaults};
use std::time::Duration;

fn see(t: &TestQueue, key: &str, window: Option<Duration>) -> bool {
    t.q.transaction(|tx| tx.inbox(key, window)).unwrap()
}

fn inbox_rows(t: &TestQueue) -> i64 {
    t.raw()
        .query_row("SELECT count(*) FROM ferrymq_inbox", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_key_is_new_once_and_a_redelivery_is_not() {
    let t = TestQueue::new();
    assert!(see(&t, "alipay:2026120722001", None));
    assert!(!see(&t, "alipay:2026120722001", None));
    assert!(see(&t, "alipay:2026120722002", None));
    // Within one transaction too: the second sight is a duplicate.
    let both =
        t.q.transaction(|tx| Ok((tx.inbox("k", None)?, tx.inbox("k", None)?)))
            .unwrap();
    assert_eq!(both, (true, false));
    // Another handle on the file sees what this one committed.
    let other = t.reopen();
    assert!(!other.transaction(|tx| tx.inbox("k", None)).unwrap());
}

#[test]
fn a_rolled_back_transaction_leaves_the_key_unseen() {
    let t = TestQueue::new();
    t.q.transaction(|tx| {
        tx.execute("CREATE TABLE paid(notify_id TEXT NOT NULL)", &[])?;
        Ok(())
    })
    .unwrap();
    // The business write fails after the inbox said "new": all of it rolls back.
    let failed = t.q.transaction(|tx| {
        assert!(tx.inbox("n1", None)?);
        tx.execute("INSERT INTO paid VALUES (?)", &[Value::Text("n1".into())])?;
        tx.execute("INSERT INTO no_such_table VALUES (1)", &[])
    });
    assert_eq!(failed.unwrap_err().kind(), ErrorKind::InvalidArgument);
    // Explicit rollback, and a dropped transaction.
    let mut tx = t.q.begin().unwrap();
    assert!(tx.inbox("n1", None).unwrap());
    tx.rollback().unwrap();
    let mut tx = t.q.begin().unwrap();
    assert!(tx.inbox("n1", None).unwrap());
    drop(tx);
    assert_eq!(inbox_rows(&t), 0);
    // So the redelivery is applied, once.
    for _ in 0..3 {
        t.q.transaction(|tx| {
            if tx.inbox("n1", None)? {
                tx.execute("INSERT INTO paid VALUES (?)", &[Value::Text("n1".into())])?;
            }
            Ok(())
        })
        .unwrap();
    }
    let paid: i64 = t
        .raw()
        .query_row("SELECT count(*) FROM paid", [], |r| r.get(0))
        .unwrap();
    assert_eq!(paid, 1);
}

#[test]
fn a_key_past_its_window_is_new_again() {
    let t = TestQueue::new();
    let w = Some(Duration::from_secs(10));
    assert!(see(&t, "k", w));
    t.advance(Duration::from_millis(9_999));
    assert!(!see(&t, "k", w));
    // A duplicate does not extend the window: it ends 10 s after the first sight.
    t.advance(Duration::from_millis(1));
    assert!(see(&t, "k", w));
    assert!(!see(&t, "k", w));
    assert_eq!(inbox_rows(&t), 1);

    // The default window is defaults::INBOX_WINDOW (a week).
    assert!(see(&t, "d", None));
    t.advance(defaults::INBOX_WINDOW - Duration::from_millis(1));
    assert!(!see(&t, "d", None));
    t.advance(Duration::from_millis(1));
    assert!(see(&t, "d", None));
}

#[test]
fn bad_input_is_refused_with_a_named_problem_and_changes_nothing() {
    let t = TestQueue::new();
    assert!(see(&t, "kept", None));
    let before = t.snapshot();
    let long = "x".repeat(ferrymq::limits::MAX_KEY_LEN + 1);
    let cases: [(&str, Option<Duration>, &str); 6] = [
        ("", None, "inbox key"),
        (&long, None, "inbox key"),
        ("a\0b", None, "NUL"),
        ("k", Some(Duration::ZERO), "window"),
        ("k", Some(Duration::from_micros(500)), "window"),
        (
            "k",
            Some(ferrymq::limits::MAX_DURATION + Duration::from_secs(1)),
            "window",
        ),
    ];
    let mut tx = t.q.begin().unwrap();
    for (key, window, names) in cases {
        let err = tx.inbox(key, window).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{key:?} {window:?}");
        assert!(err.to_string().contains(names), "{err}");
    }
    // The refusals left the transaction usable, and wrote nothing in it.
    assert!(!tx.inbox("kept", None).unwrap());
    tx.commit().unwrap();
    assert_eq!(t.snapshot(), before);
    // The longest window allowed works.
    assert!(see(&t, "long", Some(ferrymq::limits::MAX_DURATION)));
}

#[test]
fn purge_acked_deletes_expired_keys_and_keeps_the_others() {
    let t = TestQueue::new();
    // More than one page (500) of expired keys, and a few that are still in their window.
    t.q.transaction(|tx| {
        for i in 0..1_234 {
            assert!(tx.inbox(&format!("old-{i}"), Some(Duration::from_secs(1)))?);
        }
        for i in 0..5 {
            assert!(tx.inbox(&format!("live-{i}"), Some(Duration::from_secs(3600)))?);
        }
        Ok(())
    })
    .unwrap();
    t.publish("t", "keeps the newest id");
    t.advance(Duration::from_secs(2));
    t.q.purge_acked(Duration::from_secs(60)).unwrap();
    let left: Vec<String> = t
        .raw()
        .prepare("SELECT key FROM ferrymq_inbox ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left.len(), 5, "expired keys left: {}", left.len() - 5);
    assert_eq!(
        left,
        (0..5).map(|i| format!("live-{i}")).collect::<Vec<_>>()
    );
    assert!(!see(&t, "live-0", None));
    assert!(see(&t, "old-0", None));
}

#[test]
fn an_inbox_key_and_an_idempotency_key_are_separate() {
    // The publisher's idempotency key dedups publishes per topic; the inbox dedups what a
    // consumer applies. The same text in both does not collide.
    let t = TestQueue::new();
    t.sub("g", "t");
    t.q.publish("t", "a", PublishOptions::new().idempotency_key("k"))
        .unwrap();
    assert!(see(&t, "k", None));
}

#[test]
fn inbox_in_answers_on_the_callers_own_connection_in_its_transaction() {
    let t = TestQueue::new();
    assert!(see(&t, "seen-by-tx", None));
    let mut conn = t.raw();
    conn.execute_batch("CREATE TABLE paid(notify_id TEXT NOT NULL)")
        .unwrap();
    // With the queue (its clock and checks) and without (SQLite's clock), both ways of
    // the library: Queue::inbox_in and sql::inbox_in.
    for with_queue in [true, false] {
        let key = format!("n-{with_queue}");
        let q = with_queue.then_some(&t.q);
        for round in 0..3 {
            let tx = conn.transaction().unwrap();
            let new = if with_queue {
                t.q.inbox_in(&tx, &key, None).unwrap()
            } else {
                ferrymq::sql::inbox_in(&tx, &key, None, q).unwrap()
            };
            assert_eq!(new, round < 2, "{key} round {round}");
            if new {
                tx.execute("INSERT INTO paid VALUES (?1)", [&key]).unwrap();
            }
            // Round 0 rolls back: the key stays unseen, and round 1 takes it again.
            if round == 0 {
                tx.rollback().unwrap();
            } else {
                tx.commit().unwrap();
            }
        }
        // Both ways share the table with Transaction::inbox (on the queue's clock: without
        // a queue it is SQLite's, years after the test's manual clock).
        let tx = conn.transaction().unwrap();
        assert!(!ferrymq::sql::inbox_in(&tx, "seen-by-tx", None, Some(&t.q)).unwrap());
        tx.commit().unwrap();
    }
    let paid: i64 = conn
        .query_row("SELECT count(*) FROM paid", [], |r| r.get(0))
        .unwrap();
    assert_eq!(paid, 2);
    assert!(!see(&t, "n-true", None) && !see(&t, "n-false", None));
}

#[test]
fn inbox_in_refuses_bad_input_and_a_connection_outside_a_transaction() {
    let t = TestQueue::new();
    let conn = t.raw();
    let err = ferrymq::sql::inbox_in(&conn, "k", None, Some(&t.q)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("no transaction"), "{err}");
    assert_eq!(
        t.q.inbox_in(&conn, "k", None).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    conn.execute_batch("BEGIN").unwrap();
    for (key, window) in [("", None), ("k", Some(Duration::ZERO))] {
        let err = ferrymq::sql::inbox_in(&conn, key, window, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{key:?}");
    }
    conn.execute_batch("COMMIT").unwrap();
    assert_eq!(inbox_rows(&t), 0);
}
