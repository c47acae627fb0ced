//! The main job: a small payment flow on one embedded SQLite file, in one process.
//!
//! An order service saves orders and announces them in one transaction; a payment
//! center (two competing workers) pays them through a flaky simulated bank, retrying on a
//! fast schedule; one poison order ends in the dead-letter queue; a fund purchase goes
//! through a half message that a crash left undecided and the checker resolves. The run
//! ends with a reconciliation report and the queue's stats.
//!
//! Run: `cargo run -p ferrymq-examples --bin demo [path.db]` (default `ferrymq-demo.db`).

use ferrymq::{
    Options, PublishOptions, Queue, ReceiveOptions, Resolution, RetryPolicy, SubscribeOptions,
    Value,
};
use std::time::{Duration, Instant};

const ORDERS: i64 = 40;
const POISON: i64 = 13;

fn setup(q: &Queue) -> ferrymq::Result<()> {
    q.transaction(|tx| {
        tx.execute("DROP TABLE IF EXISTS orders", &[])?;
        tx.execute("DROP TABLE IF EXISTS payments", &[])?;
        tx.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, status TEXT NOT NULL)",
            &[],
        )?;
        tx.execute("CREATE TABLE payments(order_id INTEGER NOT NULL, amount INTEGER NOT NULL)", &[])?;
        Ok(())
    })?;
    let fast = RetryPolicy::fixed(vec![Duration::from_millis(50); 4])?;
    q.subscribe(
        "payment-center",
        "orders",
        SubscribeOptions::new()
            .tags("created")
            .retry(fast)
            .lease(Duration::from_secs(5)),
    )?;
    q.subscribe("audit", "funds", SubscribeOptions::new())?;
    Ok(())
}

fn order_service(q: &Queue) -> ferrymq::Result<()> {
    for id in 1..=ORDERS {
        q.transaction(|tx| {
            tx.execute(
                "INSERT INTO orders VALUES (?, ?, 'created')",
                &[Value::Integer(id), Value::Integer(id * 100)],
            )?;
            tx.publish(
                "orders",
                format!("{id}"),
                PublishOptions::new()
                    .tag("created")
                    .key(format!("order-{id}"))
                    .idempotency_key(format!("order-{id}/created")),
            )?;
            Ok(())
        })?;
    }
    Ok(())
}

/// The simulated bank: fails one call in four, and always fails the poison order.
fn bank(order: i64, attempt: u32) -> Result<(), String> {
    if order == POISON {
        return Err(format!("bank rejected order {order}: account frozen"));
    }
    if (order * 7 + i64::from(attempt)) % 4 == 0 {
        return Err("bank timeout".into());
    }
    Ok(())
}

fn payment_worker(q: Queue) -> ferrymq::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ds = q.receive(
            "payment-center",
            ReceiveOptions::new()
                .max(4)
                .wait(Duration::from_millis(300)),
        )?;
        if ds.is_empty() && q.stats()?.groups["payment-center"].retrying == 0 {
            return Ok(());
        }
        for d in ds {
            let order: i64 = String::from_utf8_lossy(&d.payload).parse().unwrap_or(0);
            match bank(order, d.attempt) {
                Ok(()) => q.transaction(|tx| {
                    tx.execute(
                        "INSERT INTO payments VALUES (?, ?)",
                        &[Value::Integer(order), Value::Integer(order * 100)],
                    )?;
                    tx.execute(
                        "UPDATE orders SET status = 'paid' WHERE id = ?",
                        &[Value::Integer(order)],
                    )?;
                    tx.ack(&d)
                })?,
                Err(reason) => q.nack(&d, &reason, None)?,
            }
        }
    }
    Ok(())
}

fn fund_purchase_with_crash(q: &Queue) -> ferrymq::Result<i64> {
    q.set_checker("funds", |info| {
        println!("  checker asked about half message {} -> commit", info.id);
        Ok(Resolution::Commit)
    })?;
    // Prepare, then "crash" before commit: the checker resolves it after check_after.
    let h = q.prepare(
        "funds",
        "buy 1000 units of FUND-A",
        PublishOptions::new().key("tx-123"),
    )?;
    Ok(h.id)
}

fn main() -> ferrymq::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ferrymq-demo.db".into());
    // Each run tells the whole story from an empty queue.
    for suffix in ["", "-wal", "-shm", "-wake"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let q = Queue::open(
        &path,
        Options::default().check_after(Duration::from_millis(200)),
    )?;
    println!("ferrymq demo on {path}");
    setup(&q)?;
    order_service(&q)?;
    println!("order service: {ORDERS} orders saved, each announced in the same transaction");
    let half_id = fund_purchase_with_crash(&q)?;

    let workers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || payment_worker(q))
        })
        .collect();
    for w in workers {
        w.join().expect("payment worker panicked")?;
    }
    let audit = q.receive("audit", ReceiveOptions::new().wait(Duration::from_secs(5)))?;
    for d in &audit {
        q.ack(d)?;
    }

    println!("\nreconciliation");
    let rows = q.transaction(|tx| {
        tx.query(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'paid'),
                    (SELECT count(*) FROM payments),
                    (SELECT count(*) FROM (SELECT order_id FROM payments GROUP BY order_id HAVING count(*) > 1))",
            &[],
        )
    })?;
    let [
        Value::Integer(paid),
        Value::Integer(payments),
        Value::Integer(twice),
    ] = rows[0][..]
    else {
        return Err(ferrymq::Error::Storage(
            "unexpected reconciliation row".into(),
        ));
    };
    let dead = q.dead_letters("payment-center", 100)?;
    println!("  orders paid:          {paid} of {ORDERS}");
    println!("  payments recorded:    {payments}");
    println!("  orders paid twice:    {twice}");
    for dl in &dead {
        println!(
            "  dead letter: {} after {} attempts: {}",
            dl.key.as_deref().unwrap_or("?"),
            dl.attempts,
            dl.last_error.as_deref().unwrap_or("")
        );
    }
    println!(
        "  fund purchase {half_id}: {} and delivered to audit: {}",
        q.message(half_id)?.state.as_str(),
        audit.iter().any(|d| d.message_id == half_id)
    );
    let balanced = paid + dead.len() as i64 == ORDERS && twice == 0 && payments == paid;
    println!(
        "  every order paid exactly once or in the DLQ: {}",
        if balanced { "yes" } else { "NO" }
    );

    println!("\nstats");
    let stats = q.stats()?;
    for (name, t) in &stats.topics {
        println!("  topic {name}: {} messages, {} half", t.messages, t.half);
    }
    for (name, g) in &stats.groups {
        println!(
            "  group {name} ({}): ready {} scheduled {} inflight {} retrying {} dead {}",
            g.topic, g.ready, g.scheduled, g.inflight, g.retrying, g.dead
        );
    }
    q.close()?;
    if !balanced {
        std::process::exit(1);
    }
    Ok(())
}
