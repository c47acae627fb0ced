//! One contender of the mixed-language contention test (bindings-node/test/contention.test.js):
//! for `secs` seconds it mixes publishes, outbox transactions and receive+ack on group
//! `g` of topic `t`, then prints its ledger: `PUB id`, `ACK id`, and `BUSY n` (the busy
//! errors it saw, which must be 0).
//!
//! Run: `hammer DB ME SECS`

use ferrymq::{ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, Value};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (db, me, secs): (&str, u64, f64) = (
        &args[1],
        args[2].parse().expect("ME"),
        args[3].parse().expect("SECS"),
    );
    let q = Queue::open(db, Options::default()).expect("open");
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let (mut busy, mut n, mut out) = (0, 0u64, Vec::new());
    while Instant::now() < end {
        n += 1;
        let step = match (me + n) % 4 {
            0 => q
                .publish("t", format!("rust-{me}-{n}"), PublishOptions::new())
                .map(|id| out.push(format!("PUB {id}"))),
            1 => q
                .transaction(|tx| {
                    tx.execute(
                        "INSERT INTO ledger(who) VALUES (?)",
                        &[Value::Text(format!("rust-{me}"))],
                    )?;
                    tx.publish("t", "tx", PublishOptions::new())
                })
                .map(|id| out.push(format!("PUB {id}"))),
            _ => q.receive("g", ReceiveOptions::new().max(8)).and_then(|ds| {
                for d in ds {
                    q.ack(&d)?;
                    out.push(format!("ACK {}", d.message_id));
                }
                Ok(())
            }),
        };
        match step {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Busy => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    out.push(format!("BUSY {busy}"));
    println!("{}", out.join("\n"));
}
