//! settle, the threaded worker, and interruptible waits.

mod common;

use common::{TestQueue, text};
use ferrymq::{ErrorKind, ReceiveOptions, RetryPolicy, Settled, SubscribeOptions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn settle_acks_nacks_and_reports_a_lost_lease() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new()
            .lease(Duration::from_secs(5))
            .retry(RetryPolicy::fixed(vec![Duration::ZERO; 2]).unwrap()),
    );
    t.publish("t", "ok");
    t.publish("t", "bad");
    let ds = t.take("g", 2);
    assert_eq!(t.q.settle(&ds[0], Ok(())).unwrap(), Settled::Acked);
    assert_eq!(
        t.q.settle(&ds[1], Err("boom".into())).unwrap(),
        Settled::Retrying
    );
    let again = t.take_one("g").unwrap();
    t.advance(Duration::from_secs(5));
    let taken_over = t.take_one("g").unwrap();
    assert_eq!(
        t.q.settle(&again, Err("late".into())).unwrap(),
        Settled::LeaseLost
    );
    assert_eq!(
        t.q.settle(&taken_over, Err("final".into())).unwrap(),
        Settled::Dead
    );
    assert_eq!(
        t.q.dead_letters("g", 10).unwrap()[0].last_error.as_deref(),
        Some("final")
    );
}

#[test]
fn a_worker_acks_successes_and_nacks_errors_and_panics_with_their_text() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    for i in 0..30 {
        t.publish("t", &format!("{i}"));
    }
    t.publish("t", "fail");
    t.publish("t", "panic");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let mut w =
        t.q.worker(
            "g",
            move |d| {
                let p = text(d);
                s.lock().unwrap().push(p.clone());
                match p.as_str() {
                    "fail" => Err("bank said no".into()),
                    "panic" => panic!("handler bug"),
                    _ => Ok(()),
                }
            },
            3,
            ReceiveOptions::new().max(4).wait(Duration::from_millis(50)),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 32 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    w.stop();
    assert!(!w.is_running());
    assert_eq!(seen.lock().unwrap().len(), 32);
    let mut dead: Vec<String> =
        t.q.dead_letters("g", 10)
            .unwrap()
            .into_iter()
            .map(|d| d.last_error.unwrap())
            .collect();
    dead.sort();
    assert_eq!(dead, ["bank said no", "handler panicked: handler bug"]);
    let g = &t.q.stats().unwrap().groups["g"];
    assert_eq!((g.ready, g.inflight, g.dead), (0, 0, 2));
}

#[test]
fn a_worker_refuses_a_missing_group_and_silly_concurrency() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let ok = |_: &ferrymq::Delivery| Ok(());
    let err =
        t.q.worker("nobody", ok, 1, ReceiveOptions::new())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = t.q.worker("g", ok, 0, ReceiveOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err =
        t.q.worker("g", ok, 1, ReceiveOptions::new().max(0))
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn an_interrupted_wait_returns_early() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let start = Instant::now();
    let ds =
        t.q.receive_interruptible(
            "g",
            ReceiveOptions::new().wait(Duration::from_secs(30)),
            &|| start.elapsed() > Duration::from_millis(200),
        )
        .unwrap();
    assert!(ds.is_empty());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_handler_may_stop_its_own_worker() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.publish("t", "stop");
    let slot: Arc<Mutex<Option<ferrymq::Worker>>> = Arc::default();
    let s = Arc::clone(&slot);
    let w =
        t.q.worker(
            "g",
            move |_| {
                if let Some(mut w) = s.lock().unwrap().take() {
                    w.stop();
                }
                Ok(())
            },
            1,
            ReceiveOptions::new().wait(Duration::from_millis(20)),
        )
        .unwrap();
    *slot.lock().unwrap() = Some(w);
    let deadline = Instant::now() + Duration::from_secs(10);
    while slot.lock().unwrap().is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let info = t.q.message(1).unwrap();
    assert_eq!(info.deliveries["g"].state.as_str(), "acked", "{info:?}");
}

/// Leases are real time here: the handler really is slower than the lease.
fn wall_clock_queue(lease: Duration) -> (tempfile::TempDir, ferrymq::Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = ferrymq::Queue::open(dir.path().join("q.db"), ferrymq::Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new().lease(lease))
        .unwrap();
    (dir, q)
}

#[test]
fn a_handler_slower_than_the_lease_handles_each_message_once_in_batches_of_four() {
    let (_dir, q) = wall_clock_queue(Duration::from_secs(1));
    for i in 0..6 {
        q.publish("t", format!("{i}"), ferrymq::PublishOptions::new())
            .unwrap();
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    // Three threads for six messages: one of them is free to take over any lease that
    // runs out while the others work through their batches.
    let mut w = q
        .worker(
            "g",
            move |d| {
                s.lock().unwrap().push((text(d), d.attempt));
                std::thread::sleep(Duration::from_millis(1_200));
                Ok(())
            },
            3,
            ReceiveOptions::new().max(4).wait(Duration::from_millis(50)),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let g = q.stats().unwrap().groups["g"].clone();
        let settled = g.ready + g.inflight + g.retrying == 0;
        if settled && seen.lock().unwrap().len() >= 6 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    w.stop();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let once: Vec<(String, u32)> = (0..6).map(|i| (format!("{i}"), 1)).collect();
    assert_eq!(
        seen, once,
        "each message handled once, on its first attempt"
    );
    assert_eq!(w.last_error(), None);
}

#[test]
fn a_worker_on_a_file_that_becomes_unusable_reports_the_error_and_stops() {
    let (dir, q) = wall_clock_queue(Duration::from_secs(30));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e = Arc::clone(&errors);
    let w = q
        .worker_with(
            "g",
            |_| Ok(()),
            ferrymq::WorkerOptions::new()
                .concurrency(2)
                .receive(ReceiveOptions::new().wait(Duration::from_millis(20)))
                .on_error(move |err| e.lock().unwrap().push(err.kind())),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Another program writes over the whole file (and its WAL and shared index).
    for name in ["q.db", "q.db-wal", "q.db-shm"] {
        let path = dir.path().join(name);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len()).max(8192);
        std::fs::write(&path, vec![0x5a; len as usize]).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!w.is_running(), "the worker kept retrying a broken file");
    let last = w.last_error().expect("the error that stopped it");
    assert_eq!(last.kind(), ErrorKind::Storage, "{last}");
    let seen = errors.lock().unwrap().clone();
    assert!(seen.contains(&ErrorKind::Storage), "{seen:?}");
    // Each thread gave up after a few tries instead of spinning.
    assert!(seen.len() <= 2 * 3, "{seen:?}");
}
