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
