//! Waiting receives: woken by in-process commits, by other connections' commits, and by
//! scheduled work coming due; blocking and tokio flavours.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, Options, PublishOptions, Queue, ReceiveOptions};
use std::time::{Duration, Instant};

fn real_clock_queue() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", Default::default()).unwrap();
    (dir, q)
}

#[test]
fn a_waiting_receive_gets_a_message_published_meanwhile() {
    let (_dir, q) = real_clock_queue();
    let publisher = q.clone();
    let start = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        publisher
            .publish("t", "hello", PublishOptions::new())
            .unwrap();
    });
    let ds = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(ds.len(), 1);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "woken long after the publish"
    );
}

#[test]
fn a_publish_through_another_handle_is_noticed_by_polling() {
    let (dir, q) = real_clock_queue();
    let other = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        other.publish("t", "hello", PublishOptions::new()).unwrap();
    });
    let ds = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(ds.len(), 1);
}

#[test]
fn a_delayed_message_is_picked_up_when_due_during_the_wait() {
    let (_dir, q) = real_clock_queue();
    let id = q
        .publish(
            "t",
            "later",
            PublishOptions::new().delay(Duration::from_millis(300)),
        )
        .unwrap();
    let start = Instant::now();
    let ds = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(ds[0].message_id, id);
    assert!(start.elapsed() >= Duration::from_millis(290));
}

#[test]
fn a_receive_with_nothing_to_get_returns_empty_after_its_wait() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let start = Instant::now();
    let ds =
        t.q.receive("g", ReceiveOptions::new().wait(Duration::from_millis(150)))
            .unwrap();
    assert!(ds.is_empty());
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[test]
fn closing_the_queue_ends_a_waiting_receive() {
    let (_dir, q) = real_clock_queue();
    let closer = q.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        closer.close().unwrap();
    });
    let err = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[test]
fn many_async_receivers_wait_on_one_thread() {
    let (_dir, q) = real_clock_queue();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let n = 40;
    let got = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                q.receive_async("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
                    .await
            }));
        }
        // Every receiver is waiting now; with two blocking threads, a receiver that held
        // a thread while waiting would starve the others.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..n {
            q.publish_async("t", format!("m{i}").into_bytes(), PublishOptions::new())
                .await
                .unwrap();
        }
        let mut total = 0;
        for t in tasks {
            let ds = t.await.unwrap().unwrap();
            for d in &ds {
                q.ack_async(d.clone()).await.unwrap();
            }
            total += ds.len();
        }
        total
    });
    assert_eq!(got, n);
}

#[test]
fn a_cancelled_async_receive_puts_back_what_it_claimed() {
    let (dir, q) = real_clock_queue();
    let id = q.publish("t", "m", PublishOptions::new()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Hold the write lock so the claim is stuck inside the blocking pool when the
    // receive is cancelled; it completes after the caller is gone.
    let holder = rusqlite::Connection::open(dir.path().join("q.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let q2 = q.clone();
    let timed_out = rt.block_on(async move {
        tokio::time::timeout(
            Duration::from_millis(200),
            q2.receive_async("g", ReceiveOptions::new().wait(Duration::from_secs(5))),
        )
        .await
        .is_err()
    });
    assert!(timed_out);
    holder.execute_batch("COMMIT").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = q.message(id).unwrap();
        let g = &info.deliveries["g"];
        if g.state.as_str() == "ready" && g.attempts == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the claim was not put back: {g:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let d = q.receive("g", ReceiveOptions::new()).unwrap();
    assert_eq!((d[0].message_id, d[0].attempt), (id, 1));
    drop(rt);
}

/// A thread that holds an open `Transaction` and calls a method that needs the write
/// lock would wait on its own lock until busy_timeout and then fail with `Busy`: it must
/// be told `InvalidArgument` at once, blocking or async, and nothing may change.
#[test]
fn calls_that_need_the_write_lock_refuse_inside_the_callers_own_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        dir.path().join("q.db"),
        Options::default().busy_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    q.subscribe("g", "t", Default::default()).unwrap();
    q.publish("t", "held", PublishOptions::new()).unwrap();
    let held = q.receive("g", ReceiveOptions::new()).unwrap().remove(0);
    q.publish("t", "ready", PublishOptions::new()).unwrap();
    let kind = |r: ferrymq::Result<()>| r.map_err(|e| e.kind());
    let invalid = Err(ErrorKind::InvalidArgument);

    let mut tx = q.begin().unwrap();
    let once = ReceiveOptions::new().wait(Duration::from_millis(100));
    assert_eq!(kind(q.receive("g", once.clone()).map(drop)), invalid);
    assert_eq!(
        kind(
            q.receive_interruptible("g", once.clone(), &|| false)
                .map(drop)
        ),
        invalid
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(kind(q.receive_async("g", once).await.map(drop)), invalid);
        assert_eq!(kind(q.ack_async(held.clone()).await), invalid);
        assert_eq!(
            kind(q.nack_async(held.clone(), "no".into(), None).await),
            invalid
        );
        assert_eq!(
            kind(
                q.publish_async("t", b"x".to_vec(), PublishOptions::new())
                    .await
                    .map(drop)
            ),
            invalid
        );
    });
    tx.rollback().unwrap();

    // Nothing changed: the held delivery is still held and the ready one still ready.
    q.ack(&held).unwrap();
    let ready = q.receive("g", ReceiveOptions::new()).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].payload, b"ready");
    assert_eq!(q.stats().unwrap().topics["t"].messages, 2);
}
