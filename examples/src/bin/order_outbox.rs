//! The order-service outbox in Rust: the service owns an `orders` table in the queue's
//! file; saving an order and publishing `orders/created` is one transaction, so either
//! both happen or neither does. A payment consumer debits an account and acks in one
//! transaction, so a redelivered message is never applied twice.
//!
//! Run: `cargo run -p ferrymq-examples --bin order_outbox [path.db]`

use ferrymq::{Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions, Value};
use std::time::Duration;

fn main() -> ferrymq::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "order-outbox.db".into());
    let q = Queue::open(&path, Options::default())?;
    q.transaction(|tx| {
        tx.execute(
            "CREATE TABLE IF NOT EXISTS orders(
                 id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL,
                 status TEXT NOT NULL DEFAULT 'new')",
            &[],
        )?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS wallet(customer TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
            &[],
        )?;
        tx.execute("INSERT OR IGNORE INTO wallet VALUES ('alice', 1000)", &[])?;
        Ok(())
    })?;
    q.subscribe(
        "payment-center",
        "orders",
        SubscribeOptions::new().tags("created"),
    )?;

    // The order service: one transaction for the row and its message.
    let order_id = q.transaction(|tx| {
        tx.execute(
            "INSERT INTO orders(customer, amount) VALUES (?, ?)",
            &[Value::Text("alice".into()), Value::Integer(120)],
        )?;
        let rows = tx.query("SELECT last_insert_rowid()", &[])?;
        let Value::Integer(id) = rows[0][0] else {
            return Err(ferrymq::Error::Storage("no order id".into()));
        };
        tx.publish(
            "orders",
            format!("{{\"order\": {id}, \"amount\": 120}}"),
            PublishOptions::new()
                .tag("created")
                .key(format!("order-{id}")),
        )?;
        Ok(id)
    })?;
    println!("order {order_id} saved and announced in one commit");

    // A failing order service: the row and the message vanish together.
    let failed = q.transaction(|tx| {
        tx.execute(
            "INSERT INTO orders(customer, amount) VALUES ('bob', 5)",
            &[],
        )?;
        tx.publish(
            "orders",
            "bob's order",
            PublishOptions::new().tag("created"),
        )?;
        Err::<(), _>(ferrymq::Error::Callback("inventory check failed".into()))
    });
    println!("bob's order rolled back: {}", failed.unwrap_err());

    // The payment center: debit and ack in one transaction (exactly-once effect).
    for d in q.receive(
        "payment-center",
        ReceiveOptions::new().max(10).wait(Duration::from_secs(1)),
    )? {
        q.transaction(|tx| {
            tx.execute(
                "UPDATE wallet SET balance = balance - 120 WHERE customer = 'alice'",
                &[],
            )?;
            tx.execute(
                "UPDATE orders SET status = 'paid' WHERE id = ?",
                &[Value::Integer(order_id)],
            )?;
            tx.ack(&d)
        })?;
        println!(
            "paid {} (attempt {})",
            d.key.as_deref().unwrap_or("?"),
            d.attempt
        );
    }
    let balance =
        q.transaction(|tx| tx.query("SELECT balance FROM wallet WHERE customer = 'alice'", &[]))?;
    println!("alice's balance: {:?}", balance[0][0]);
    q.close()
}
