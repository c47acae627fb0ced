//! `Queue::consume`: the consumer's deliveries as an iterator, waits while nothing comes,
//! ends on close.

use ferrymq::{
    ConsumerOptions, ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, Settled,
    SubscribeOptions,
};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn consume_yields_each_delivery_and_ends_when_the_queue_closes() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let ids: Vec<i64> = (0..3)
        .map(|i| {
            q.publish("t", format!("m{i}"), PublishOptions::new())
                .unwrap()
        })
        .collect();
    let mut it = q.consume("g", wait(50)).unwrap();
    for id in &ids {
        let d = it.next().unwrap().unwrap();
        assert_eq!((d.message_id, d.attempt), (*id, 1));
        q.ack(&d).unwrap();
    }
    // Nothing left: the iterator waits; closing the queue ends it.
    let closer = {
        let q = q.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            q.close().unwrap();
        })
    };
    assert!(it.next().is_none());
    closer.join().unwrap();
}

fn wait(ms: u64) -> ConsumerOptions {
    ConsumerOptions {
        wait: Some(Duration::from_millis(ms)),
        ..ConsumerOptions::default()
    }
}

#[test]
fn consume_takes_what_a_consumer_takes_and_an_unknown_group_fails_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    for i in 0..3 {
        q.publish("t", format!("m{i}"), PublishOptions::new())
            .unwrap();
    }
    // A batch claim of 2 hands its deliveries out one by one, and a zero wait is the
    // default wait, as for `Queue::consumer`.
    let batch = ConsumerOptions {
        max: Some(2),
        wait: Some(Duration::ZERO),
        ..ConsumerOptions::default()
    };
    let mut it = q.consume("g", batch).unwrap();
    let payloads: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let d = it.next().unwrap().unwrap();
            q.ack(&d).unwrap();
            d.payload
        })
        .collect();
    assert_eq!(payloads, [b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()]);
    let mut it = q.consume("nobody", wait(10)).unwrap();
    assert_eq!(it.next().unwrap().unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn a_renewal_the_file_refuses_is_kept_as_the_consumers_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = Queue::open(
        &db,
        Options::default().busy_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    q.subscribe(
        "g",
        "t",
        SubscribeOptions::new().lease(Duration::from_millis(300)),
    )
    .unwrap();
    q.publish("t", "held", PublishOptions::new()).unwrap();
    let consumer = q.consumer("g", wait(50)).unwrap();
    let d = consumer.next().unwrap().unwrap();
    assert!(consumer.last_error().is_none());
    // Another connection holds the write lock across several renewal times.
    let other = ferrymq::rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(
        consumer.last_error().map(|e| e.kind()),
        Some(ErrorKind::Busy)
    );
    consumer.done(&d);
}

fn lease_queue(lease: Duration) -> (tempfile::TempDir, Queue, i64) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new().lease(lease))
        .unwrap();
    let id = q.publish("t", "slow", PublishOptions::new()).unwrap();
    (dir, q, id)
}

#[test]
fn a_handler_slower_than_the_lease_keeps_its_message() {
    let (_dir, q, id) = lease_queue(Duration::from_millis(150));
    let mut it = q.consume("g", wait(50)).unwrap();
    let d = it.next().unwrap().unwrap();
    assert_eq!(d.message_id, id);
    // The handler runs for several leases; the consumer's heartbeat renews meanwhile.
    std::thread::sleep(Duration::from_millis(700));
    let other = q.receive("g", ReceiveOptions::new()).unwrap();
    assert!(other.is_empty(), "redelivered while its handler ran");
    q.ack(&d).unwrap();
}

#[test]
fn closing_a_consumer_puts_back_what_it_holds_without_counting_an_attempt() {
    let (_dir, q, id) = lease_queue(Duration::from_secs(60));
    q.publish("t", "second", PublishOptions::new()).unwrap();
    let consumer = q
        .consumer(
            "g",
            ferrymq::ConsumerOptions {
                max: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
    let d = consumer.next().unwrap().unwrap();
    assert_eq!(d.message_id, id);
    // The second delivery of the batch waits in the buffer; breaking off returns both.
    drop(consumer);
    let back = q.receive("g", ReceiveOptions::new().max(10)).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!((back[0].message_id, back[0].attempt), (id, 1));
    // A settled delivery is left alone by close.
    let consumer = q.consumer("g", Default::default()).unwrap();
    for d in &back {
        q.ack(d).unwrap();
    }
    let third = q.publish("t", "third", PublishOptions::new()).unwrap();
    let d = consumer.next().unwrap().unwrap();
    assert_eq!(d.message_id, third);
    consumer.settle(&d, Ok(())).unwrap();
    consumer.close();
    assert!(q.receive("g", ReceiveOptions::new()).unwrap().is_empty());
    assert_eq!(
        consumer.next().unwrap_err().kind(),
        ErrorKind::Closed,
        "next after close"
    );
}

#[test]
fn a_consumer_without_a_wait_takes_the_core_default_and_try_next_does_not_wait() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let zero = ferrymq::ConsumerOptions {
        wait: Some(Duration::ZERO),
        ..Default::default()
    };
    let c = q.consumer("g", zero).unwrap();
    assert!(c.try_next().unwrap().is_none());
    let id = q.publish("t", "x", PublishOptions::new()).unwrap();
    assert_eq!(c.try_next().unwrap().unwrap().message_id, id);
    assert_eq!(
        q.consumer("bad name!", Default::default())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn an_event_loop_workers_concurrency_is_bounded_as_a_threaded_workers() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let loops = |n: Option<usize>| {
        q.consumer(
            "g",
            ConsumerOptions {
                concurrency: n,
                ..ConsumerOptions::default()
            },
        )
        .map(|c| c.concurrency())
        .map_err(|e| e.kind())
    };
    assert_eq!(loops(None), Ok(1));
    assert_eq!(loops(Some(256)), Ok(256));
    assert_eq!(loops(Some(0)), Err(ErrorKind::InvalidArgument));
    assert_eq!(loops(Some(257)), Err(ErrorKind::InvalidArgument));
}

#[test]
fn settle_async_acks_and_nacks_as_settle_does() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    for p in ["a", "b"] {
        q.publish("t", p, PublishOptions::new()).unwrap();
    }
    let c = Arc::new(q.consumer("g", Default::default()).unwrap());
    let (a, b) = (c.next().unwrap().unwrap(), c.next().unwrap().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = rt.block_on(c.clone().settle_async(a, Ok(())));
    assert_eq!(acked.unwrap(), Settled::Acked);
    let nacked = rt.block_on(c.clone().settle_async(b, Err("boom".into())));
    assert_eq!(nacked.unwrap(), Settled::Retrying);
    let g = q.stats().unwrap().groups["g"].clone();
    assert_eq!((g.inflight, g.retrying), (0, 1));
    // Settled: close puts nothing back.
    c.close();
    assert_eq!(q.stats().unwrap().groups["g"].retrying, 1);
}
