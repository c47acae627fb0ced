//! `Queue::consume`: one delivery per claim, waits while nothing comes, ends on close.

use ferrymq::{ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions};
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
    let wait = ReceiveOptions::new().wait(Duration::from_millis(50));
    let mut it = q.consume("g", wait.clone()).unwrap();
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

#[test]
fn consume_refuses_a_batch_or_a_zero_wait_and_an_unknown_group_fails_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    let refused = |o: ReceiveOptions| q.consume("g", o).err().map(|e| e.kind());
    assert_eq!(
        refused(ReceiveOptions::new().max(2)),
        Some(ErrorKind::InvalidArgument)
    );
    assert_eq!(
        refused(ReceiveOptions::new()),
        Some(ErrorKind::InvalidArgument)
    );
    let mut it = q
        .consume(
            "nobody",
            ReceiveOptions::new().wait(Duration::from_millis(10)),
        )
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap_err().kind(), ErrorKind::NotFound);
}
