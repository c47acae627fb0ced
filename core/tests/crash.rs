//! SIGKILL in the middle of outbox transactions, hundreds of times: every committed
//! business row has exactly its messages, and no message exists without its row.

mod common;

use common::{child_role, spawn_child};
use ferrymq::{Options, PublishOptions, Queue, Value};
use std::time::Duration;

fn messages_for(order: i64) -> i64 {
    1 + order % 3
}

/// Child: writes orders with their messages in one transaction each, forever.
fn write_orders() {
    let q = Queue::open(std::env::var("FERRYMQ_DB").unwrap(), Options::default()).unwrap();
    loop {
        q.transaction(|tx| {
            let next = tx.query("SELECT coalesce(max(id), 0) + 1 FROM orders", &[])?;
            let Value::Integer(id) = next[0][0] else {
                unreachable!()
            };
            tx.execute(
                "INSERT INTO orders(id, amount) VALUES (?, ?)",
                &[Value::Integer(id), Value::Integer(id * 10)],
            )?;
            for k in 0..messages_for(id) {
                tx.publish(
                    "orders",
                    format!("{id}/{k}"),
                    PublishOptions::new().key(format!("order-{id}")),
                )?;
                // Widen the window in which a kill lands inside the transaction.
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn kill_9_inside_outbox_transactions_never_splits_a_row_from_its_messages() {
    if child_role(|_| write_orders()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.transaction(|tx| {
        tx.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER)",
            &[],
        )?;
        Ok(())
    })
    .unwrap();
    let cycles: u64 = std::env::var("FERRYMQ_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..cycles {
        let mut child = spawn_child(
            "kill_9_inside_outbox_transactions_never_splits_a_row_from_its_messages",
            "orders",
            &[("FERRYMQ_DB", path.display().to_string())],
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(5 + seed % 25));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let orders: Vec<i64> = conn
        .prepare("SELECT id FROM orders ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        orders.len() as u64 >= cycles / 4,
        "too few orders written: {}",
        orders.len()
    );
    for &id in &orders {
        let found = q.find("orders", &format!("order-{id}")).unwrap();
        assert_eq!(
            found.len() as i64,
            messages_for(id),
            "order {id} has the wrong messages"
        );
    }
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM ferrymq_messages m
             WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE 'order-' || o.id = m.key)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "messages without their order row");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
