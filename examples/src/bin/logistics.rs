//! The logistics service of the payment pipeline (examples/payment-pipeline): ships each
//! `production/done` and publishes `logistics/shipped` in the same transaction as its
//! shipment row and the ack. Stops when its stdin closes.
//!
//! Run: `logistics DB`; with `FERRYMQ_KEY_FILE` set (the pipeline's `--encrypted`), the
//! file is encrypted and its keys are read from that file (one per line, newest first).

use ferrymq::{KeySource, Options, PublishOptions, Queue, ReceiveOptions, Value};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn main() -> ferrymq::Result<()> {
    let db = std::env::args().nth(1).expect("usage: logistics DB");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, Ordering::SeqCst);
    });
    let mut options = Options::default();
    options.key = std::env::var_os("FERRYMQ_KEY_FILE").map(KeySource::file);
    let q = Queue::open(&db, options)?;
    let wait = ReceiveOptions::new()
        .max(10)
        .wait(Duration::from_millis(200));
    while !stop.load(Ordering::SeqCst) {
        for d in q.receive("logistics", wait.clone())? {
            let key = d.key.clone().unwrap_or_default();
            let order_id: i64 = key.trim_start_matches("order-").parse().unwrap_or(-1);
            q.transaction(|tx| {
                tx.execute(
                    "INSERT INTO shipments(order_id) VALUES (?)",
                    &[Value::Integer(order_id)],
                )?;
                tx.publish(
                    "logistics",
                    &d.payload,
                    PublishOptions::new().tag("shipped").key(&key),
                )?;
                tx.ack(&d)
            })?;
        }
    }
    q.close()
}
