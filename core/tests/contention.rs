//! Contention: 8 processes hammer one file with publishes, batches, receives, acks and
//! outbox transactions for a fixed time. No caller may see a busy error, and the ledger
//! must balance: every confirmed publish is acked exactly once by the end.
//!
//! `FERRYMQ_CONTENTION_SECS=60 cargo test -p ferrymq --test contention -- --nocapture`
//! runs longer.

mod common;

use common::{child_role, spawn_child};
use ferrymq::{
    ErrorKind, Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions, Value,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

const TEST: &str = "eight_processes_never_see_busy_and_the_ledger_balances";

fn hammer() {
    let q = Queue::open(std::env::var("FERRYMQ_DB").unwrap(), Options::default()).unwrap();
    let me: u64 = std::env::var("FERRYMQ_ME").unwrap().parse().unwrap();
    let secs: u64 = std::env::var("FERRYMQ_SECS").unwrap().parse().unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut busy = 0u64;
    let mut n = 0u64;
    let mut note = |r: ferrymq::Result<()>| match r {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::Busy => busy += 1,
        Err(e) => panic!("unexpected error: {e}"),
    };
    while Instant::now() < end {
        n += 1;
        match (me + n) % 5 {
            0 => note(
                q.publish("t", format!("{me}-{n}"), PublishOptions::new())
                    .map(|id| println!("PUB {id}")),
            ),
            1 => note(
                q.publish_batch(&[Message::new("t", "b1"), Message::new("t", "b2")])
                    .map(|ids| {
                        for id in ids {
                            println!("PUB {id}");
                        }
                    }),
            ),
            2 => note(
                q.transaction(|tx| {
                    tx.execute(
                        "INSERT INTO ledger(who) VALUES (?)",
                        &[Value::Integer(me as i64)],
                    )?;
                    tx.publish("t", "tx", PublishOptions::new())
                })
                .map(|id| println!("PUB {id}")),
            ),
            _ => note(q.receive("g", ReceiveOptions::new().max(8)).and_then(|ds| {
                for d in ds {
                    q.ack(&d)?;
                    println!("ACK {}", d.message_id);
                }
                Ok(())
            })),
        }
    }
    println!("BUSY {busy}");
}

#[test]
fn eight_processes_never_see_busy_and_the_ledger_balances() {
    if child_role(|_| hammer()) {
        return;
    }
    let secs: u64 = std::env::var("FERRYMQ_CONTENTION_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    q.transaction(|tx| {
        tx.execute("CREATE TABLE ledger(who INTEGER)", &[])
            .map(|_| ())
    })
    .unwrap();
    let children: Vec<_> = (0..8)
        .map(|me| {
            spawn_child(
                TEST,
                "hammer",
                &[
                    ("FERRYMQ_DB", path.display().to_string()),
                    ("FERRYMQ_ME", me.to_string()),
                    ("FERRYMQ_SECS", secs.to_string()),
                ],
            )
        })
        .collect();
    let (mut published, mut acked, mut busy) = (Vec::new(), HashMap::<i64, u32>::new(), 0u64);
    for mut child in children {
        let out = BufReader::new(child.stdout.take().unwrap());
        for line in out.lines().map_while(Result::ok) {
            let mut parts = line.split_whitespace();
            match (
                parts.next(),
                parts.next().and_then(|v| v.parse::<i64>().ok()),
            ) {
                (Some("PUB"), Some(id)) => published.push(id),
                (Some("ACK"), Some(id)) => *acked.entry(id).or_default() += 1,
                (Some("BUSY"), Some(n)) => busy += n as u64,
                _ => {}
            }
        }
        assert!(child.wait().unwrap().success(), "a child failed");
    }
    // Drain what the children left, then check the ledger.
    loop {
        let ds = q.receive("g", ReceiveOptions::new().max(500)).unwrap();
        if ds.is_empty() {
            break;
        }
        for d in ds {
            q.ack(&d).unwrap();
            *acked.entry(d.message_id).or_default() += 1;
        }
    }
    assert_eq!(busy, 0, "callers saw busy errors");
    assert!(acked.values().all(|&n| n == 1), "a message was acked twice");
    let mut sorted = published.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), published.len(), "an id was handed out twice");
    assert_eq!(acked.len(), published.len(), "published and acked differ");
    eprintln!(
        "contention: 8 processes for {secs} s, {} messages published and acked once each, {busy} busy errors",
        published.len()
    );
}
