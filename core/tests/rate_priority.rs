//! A rate limit per consumer group (a token bucket in the file, shared by every process)
//! and message priority. Real files; real processes for the limit across processes.

mod common;

use common::{TestQueue, child_role, spawn_child, text};
use ferrymq::{
    ErrorKind, Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions,
};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name).unwrap()
}

fn publish_n(q: &Queue, topic: &str, n: usize) {
    let batch: Vec<Message> = (0..n)
        .map(|i| Message::new(topic, format!("m{i}")))
        .collect();
    q.publish_batch(&batch).unwrap();
}

// ---------------------------------------------------------------- rate

#[test]
fn a_rate_limit_hands_out_the_burst_then_one_token_per_interval_in_every_handle() {
    let t = TestQueue::new();
    t.sub_with("g", "t", SubscribeOptions::new().rate(4.0).burst(2));
    publish_n(&t.q, "t", 20);
    let other = t.reopen();
    assert_eq!(t.take("g", 10).len(), 2);
    let none = other.receive("g", ReceiveOptions::new().max(10)).unwrap();
    assert!(
        none.is_empty(),
        "the bucket is shared by every queue on the file"
    );
    t.advance(Duration::from_millis(249));
    assert!(t.take("g", 10).is_empty());
    t.advance(Duration::from_millis(1));
    let got = other.receive("g", ReceiveOptions::new().max(10)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0]), "m2");
}

#[test]
fn a_waiting_receive_wakes_when_the_next_token_is_due() {
    let t = TestQueue::new();
    t.sub_with("g", "t", SubscribeOptions::new().rate(1.0).burst(1));
    publish_n(&t.q, "t", 2);
    assert_eq!(t.take("g", 10).len(), 1);
    let other = t.reopen();
    let waiter = std::thread::spawn(move || {
        other
            .receive("g", ReceiveOptions::new().wait(Duration::from_secs(60)))
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !waiter.is_finished(),
        "no token yet: the receive keeps waiting"
    );
    // Nothing is published or settled: only the clock reaching the token wakes it.
    t.advance(Duration::from_secs(1));
    let got = waiter.join().unwrap();
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["m1"]);
}

#[test]
fn bad_rate_or_burst_is_invalid_and_leaves_the_limit_as_it_was() {
    let t = TestQueue::new();
    t.sub_with("g", "t", SubscribeOptions::new().rate(1.0).burst(1));
    publish_n(&t.q, "t", 5);
    let bad = [
        (SubscribeOptions::new().rate(0.0), "rate"),
        (SubscribeOptions::new().rate(-2.0), "rate"),
        (SubscribeOptions::new().rate(f64::NAN), "rate"),
        (SubscribeOptions::new().rate(f64::INFINITY), "rate"),
        (SubscribeOptions::new().rate(2_000_000.0), "rate"),
        (SubscribeOptions::new().rate(5.0).burst(0), "burst"),
        (SubscribeOptions::new().rate(5.0).burst(1_000_001), "burst"),
        (SubscribeOptions::new().burst(3), "burst"),
    ];
    for (o, field) in bad {
        let e = t.q.subscribe("g", "t", o.clone()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{o:?}");
        assert!(e.to_string().contains(field), "{e} should name {field}");
    }
    assert_eq!(t.take("g", 10).len(), 1, "still rate 1, burst 1");
    assert!(t.take("g", 10).is_empty());
    // Subscribing again without a rate lifts the limit.
    t.sub("g", "t");
    assert_eq!(t.take("g", 10).len(), 4);
}

#[test]
fn the_default_burst_is_the_rate_rounded_up_and_resubscribing_keeps_the_bucket() {
    let t = TestQueue::new();
    t.sub_with("g", "t", SubscribeOptions::new().rate(2.5));
    t.sub_with("h", "t", SubscribeOptions::new().rate(0.2));
    publish_n(&t.q, "t", 10);
    assert_eq!(t.take("g", 10).len(), 3);
    assert_eq!(t.take("h", 10).len(), 1);
    // Another process starting up subscribes the same way: no second burst.
    t.sub_with("g", "t", SubscribeOptions::new().rate(2.5));
    assert!(t.take("g", 10).is_empty());
    // A new rate starts with a full bucket.
    t.sub_with("g", "t", SubscribeOptions::new().rate(2.5).burst(4));
    assert_eq!(t.take("g", 10).len(), 4);
}

/// Child: receives and acks from "g" until the stop file appears; prints what it acked.
fn rate_worker() {
    let q = Queue::open(env("FERRYMQ_DB"), Options::default()).unwrap();
    let stop = std::path::PathBuf::from(env("FERRYMQ_STOP"));
    println!("READY");
    let mut acked = 0;
    while !stop.exists() {
        let ds = q
            .receive(
                "g",
                ReceiveOptions::new()
                    .max(5)
                    .wait(Duration::from_millis(100)),
            )
            .unwrap();
        for d in &ds {
            q.ack(d).unwrap();
            acked += 1;
        }
    }
    println!("ACKED {acked}");
}

/// The acceptance test: 8 processes on one group limited to 50/s for 20 s
/// (`FERRYMQ_RATE_SECS`) get 1,000 deliveries, within 5%. The group is paused while the
/// processes start and after the window, so the window is the parent's to measure.
#[test]
fn eight_processes_share_one_rate_limit() {
    const TEST: &str = "eight_processes_share_one_rate_limit";
    if child_role(|_| rate_worker()) {
        return;
    }
    let secs: f64 = std::env::var("FERRYMQ_RATE_SECS")
        .ok()
        .map_or(20.0, |s| s.parse().unwrap());
    let (rate, burst) = (50.0, 5u64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let stop = dir.path().join("stop");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new().rate(rate).burst(burst))
        .unwrap();
    q.pause("g").unwrap();
    publish_n(&q, "t", (rate * secs * 1.5) as usize + 100);
    let envs = [
        ("FERRYMQ_DB", path.display().to_string()),
        ("FERRYMQ_STOP", stop.display().to_string()),
    ];
    let mut children: Vec<_> = (0..8).map(|_| spawn_child(TEST, "worker", &envs)).collect();
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for out in &mut outs {
        while out.next().unwrap().unwrap() != "READY" {}
    }
    let started = Instant::now();
    q.resume("g").unwrap();
    std::thread::sleep(Duration::from_secs_f64(secs));
    q.pause("g").unwrap();
    let window = started.elapsed().as_secs_f64();
    std::fs::write(&stop, b"").unwrap();
    let mut acked = 0u64;
    for (c, out) in children.iter_mut().zip(outs) {
        for line in out {
            if let Some(n) = line.unwrap().strip_prefix("ACKED ") {
                acked += n.parse::<u64>().unwrap();
            }
        }
        assert!(c.wait().unwrap().success());
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let (handed_out, acked_rows): (i64, i64) = raw
        .query_row(
            "SELECT sum(attempt), sum(state = 2) FROM ferrymq_deliveries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let expected = rate * secs;
    eprintln!(
        "8 processes, rate {rate}/s burst {burst}, {window:.2} s window: {handed_out} handed out, \
         {acked} acked (expected {expected} ± 5%)"
    );
    assert_eq!(acked as i64, acked_rows);
    assert_eq!(handed_out, acked_rows, "every delivery was acked once");
    // The bucket's bound holds whatever the timing: burst, plus rate over the window.
    assert!(handed_out as f64 <= burst as f64 + rate * window + 1.0);
    assert!(
        (handed_out as f64 - expected).abs() <= expected * 0.05,
        "{handed_out} deliveries, expected {expected} ± 5%"
    );
}

// ---------------------------------------------------------------- priority

fn payloads(ds: &[ferrymq::Delivery]) -> Vec<String> {
    ds.iter().map(text).collect()
}

#[test]
fn higher_priority_is_received_first_and_fifo_within_a_priority() {
    let t = TestQueue::new();
    t.sub("g", "t");
    for (p, prio) in [("a", 0), ("b", 3), ("c", 9), ("d", 3), ("e", 0)] {
        t.q.publish("t", p, PublishOptions::new().priority(prio))
            .unwrap();
    }
    let got = t.take("g", 10);
    assert_eq!(payloads(&got), ["c", "b", "d", "a", "e"]);
    assert_eq!(
        got.iter().map(|d| d.priority).collect::<Vec<_>>(),
        [9, 3, 3, 0, 0]
    );
}

#[test]
fn an_expired_lease_of_low_priority_waits_behind_ready_high_priority() {
    let t = TestQueue::new();
    let lease = Duration::from_secs(10);
    t.sub_with("g", "t", SubscribeOptions::new().lease(lease));
    t.publish("t", "low");
    assert_eq!(t.take("g", 1).len(), 1);
    t.advance(lease * 2);
    t.q.publish("t", "high", PublishOptions::new().priority(1))
        .unwrap();
    assert_eq!(payloads(&t.take("g", 10)), ["high", "low"]);
}

/// Found by the model test: schema 7 took expired leases by due time only, so with
/// more expired leases than a claim takes, one of priority 9 waited behind those of
/// priority 0 leased before it, and even behind pending ones of priority 0.
#[test]
fn an_expired_lease_of_high_priority_goes_out_before_everything_of_lower_priority() {
    let t = TestQueue::new();
    let lease = Duration::from_secs(10);
    t.sub_with("g", "t", SubscribeOptions::new().lease(lease));
    for (p, prio) in [("low-1", 0), ("low-2", 0), ("high", 9)] {
        t.q.publish("t", p, PublishOptions::new().priority(prio))
            .unwrap();
    }
    // Leased in the order high, low-1, low-2: all expire at the same time.
    assert_eq!(t.take("g", 3).len(), 3);
    t.publish("t", "pending-low");
    t.advance(lease * 2);
    let first = t.take("g", 1);
    assert_eq!(payloads(&first), ["high"]);
    assert_eq!(first[0].attempt, 2);
    assert_eq!(payloads(&t.take("g", 1)), ["pending-low"]);
}

#[test]
fn priority_survives_a_half_message_commit_and_shows_in_message_info() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.publish("t", "plain");
    let h =
        t.q.prepare("t", "half", PublishOptions::new().priority(6))
            .unwrap();
    h.commit().unwrap();
    let got = t.take("g", 10);
    assert_eq!(payloads(&got), ["half", "plain"]);
    assert_eq!(t.q.message(got[0].message_id).unwrap().priority, 6);
    assert_eq!(t.q.message(got[1].message_id).unwrap().priority, 0);
}

#[test]
fn bad_priority_is_invalid_and_publishes_nothing() {
    let t = TestQueue::new();
    t.sub("g", "t");
    for p in [-1, 10, i32::MAX] {
        let e =
            t.q.publish("t", "x", PublishOptions::new().priority(p))
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("priority"), "{e}");
        let e =
            t.q.transaction(|tx| {
                tx.publish("t", "x", PublishOptions::new().priority(p))
                    .map(|_| ())
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(t.q.stats().unwrap().groups["g"].ready, 0);
}

#[test]
fn the_sql_view_takes_a_priority_and_refuses_a_bad_one() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let raw = t.raw();
    let publish = "INSERT INTO ferrymq_publish (topic, payload, priority, published_at)
                   VALUES ('t', ?1, ?2, 1700000000000)";
    raw.execute(publish, rusqlite::params!["low", None::<i64>])
        .unwrap();
    raw.execute(publish, rusqlite::params!["high", 8]).unwrap();
    for bad in [
        rusqlite::types::Value::Integer(10),
        rusqlite::types::Value::Integer(-1),
        rusqlite::types::Value::Text("5".into()),
        rusqlite::types::Value::Real(1.5),
    ] {
        let e = raw
            .execute(publish, rusqlite::params!["bad", bad])
            .unwrap_err();
        assert!(
            e.to_string().contains("ferrymq INVALID_ARGUMENT: priority"),
            "{e}"
        );
    }
    let got = t.take("g", 10);
    assert_eq!(payloads(&got), ["high", "low"]);
    assert_eq!(got[0].priority, 8);
}
