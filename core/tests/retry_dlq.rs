//! Retry schedules walked with a manual clock, the dead-letter queue, redrive and purge.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, PublishOptions, ReceiveOptions, RetryPolicy, SubscribeOptions};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// Fails one message on every attempt and checks that each retry comes exactly after its
/// delay, then that the delivery is dead after `delays.len() + 1` attempts.
fn walk(policy: RetryPolicy, delays: &[u64]) {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new()
            .retry(policy)
            .lease(Duration::from_secs(1)),
    );
    let id = t.publish("t", "always fails");
    for (i, delay) in delays.iter().enumerate() {
        let d = t
            .take_one("g")
            .unwrap_or_else(|| panic!("attempt {} missing", i + 1));
        assert_eq!(d.attempt, i as u32 + 1);
        t.q.nack(&d, &format!("fail {}", i + 1), None).unwrap();
        t.advance(Duration::from_secs(*delay) - MS);
        assert!(t.take_one("g").is_none(), "retry {} came early", i + 1);
        t.advance(MS);
    }
    let last = t.take_one("g").expect("the last attempt");
    assert_eq!(last.attempt as usize, delays.len() + 1);
    t.q.nack(&last, "final", None).unwrap();
    t.advance(Duration::from_secs(365 * 86_400));
    assert!(t.take_one("g").is_none(), "delivered after the last retry");

    let dead = t.q.dead_letters("g", 10).unwrap();
    assert_eq!(dead.len(), 1);
    let dl = &dead[0];
    assert_eq!(dl.message_id, id);
    assert_eq!(dl.attempts as usize, delays.len() + 1);
    assert_eq!(dl.last_error.as_deref(), Some("final"));
    assert_eq!(dl.history.len(), delays.len() + 1);
    assert_eq!(dl.history[0].error.as_deref(), Some("fail 1"));
    assert_eq!(t.q.stats().unwrap().groups["g"].dead, 1);
    assert_eq!(
        t.q.message(id).unwrap().deliveries["g"].state.as_str(),
        "dead"
    );
}

#[test]
fn rocketmq_schedule_sixteen_retries_then_dead() {
    walk(
        RetryPolicy::rocketmq(),
        &[
            10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
        ],
    );
}

#[test]
fn alipay_schedule() {
    walk(
        RetryPolicy::alipay(),
        &[240, 600, 600, 3600, 7200, 21_600, 54_000],
    );
}

#[test]
fn wechat_pay_schedule() {
    walk(
        RetryPolicy::wechat_pay(),
        &[
            15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600,
            21_600,
        ],
    );
}

#[test]
fn fixed_schedule() {
    walk(
        RetryPolicy::fixed(vec![Duration::from_secs(1), Duration::from_secs(7)]).unwrap(),
        &[1, 7],
    );
}

#[test]
fn exponential_schedule_stays_within_its_jitter() {
    let t = TestQueue::new();
    let policy =
        RetryPolicy::exponential(Duration::from_secs(10), Duration::from_secs(40), 4, 0.1).unwrap();
    t.sub_with("g", "t", SubscribeOptions::new().retry(policy));
    t.publish("t", "m");
    let mut d = t.take_one("g").unwrap();
    for base in [10_000u64, 20_000, 40_000, 40_000] {
        t.q.nack(&d, "x", None).unwrap();
        let (low, high) = (base * 9 / 10, base * 11 / 10);
        t.advance(Duration::from_millis(low - 2));
        assert!(t.take_one("g").is_none(), "retry before {low} ms");
        t.advance(Duration::from_millis(high - low + 2));
        d = t
            .take_one("g")
            .unwrap_or_else(|| panic!("no retry by {high} ms"));
    }
    assert_eq!(d.attempt, 5);
    t.q.nack(&d, "x", None).unwrap();
    assert_eq!(t.q.dead_letters("g", 10).unwrap().len(), 1);
}

#[test]
fn an_explicit_nack_delay_overrides_the_schedule_but_not_the_limit() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![Duration::from_secs(100)]).unwrap()),
    );
    t.publish("t", "m");
    let d = t.take_one("g").unwrap();
    t.q.nack(&d, "soon", Some(Duration::from_secs(2))).unwrap();
    t.advance(Duration::from_secs(2));
    let d = t.take_one("g").unwrap();
    assert_eq!(d.attempt, 2);
    t.q.nack(&d, "again", Some(Duration::ZERO)).unwrap();
    assert!(t.take_one("g").is_none(), "past the last retry it is dead");
    assert_eq!(t.q.dead_letters("g", 10).unwrap().len(), 1);
}

fn kill_all(t: &TestQueue, n: usize) -> Vec<i64> {
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    let ids: Vec<i64> = (0..n).map(|i| t.publish("t", &format!("m{i}"))).collect();
    for d in t.take("g", n) {
        t.q.nack(&d, "poison", None).unwrap();
    }
    ids
}

#[test]
fn redrive_by_id_and_all_replays_with_fresh_retries() {
    let t = TestQueue::new();
    let ids = kill_all(&t, 3);
    assert_eq!(t.q.dead_letters("g", 10).unwrap().len(), 3);
    assert_eq!(t.q.redrive("g", Some(&[ids[1], 987_654])).unwrap(), 1);
    let d = t.take_one("g").unwrap();
    assert_eq!((d.message_id, d.attempt), (ids[1], 1));
    t.q.ack(&d).unwrap();
    assert_eq!(
        t.q.redrive("g", Some(&[ids[1]])).unwrap(),
        0,
        "no longer dead"
    );
    assert_eq!(t.q.redrive("g", None).unwrap(), 2);
    let mut got: Vec<i64> = t.take("g", 10).iter().map(|d| d.message_id).collect();
    got.sort();
    assert_eq!(got, [ids[0], ids[2]]);
    assert!(t.q.dead_letters("g", 10).unwrap().is_empty());
    let history = &t.q.message(ids[0]).unwrap().deliveries["g"].history;
    assert_eq!(history.len(), 2, "the old attempt stays in the history");
    assert_eq!(
        t.q.redrive("missing", None).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn purge_dead_letters_by_age() {
    let t = TestQueue::new();
    kill_all(&t, 2);
    t.advance(Duration::from_secs(3600));
    t.q.publish("t", "late", PublishOptions::new()).unwrap();
    let d = t.take_one("g").unwrap();
    t.q.nack(&d, "poison", None).unwrap();
    assert_eq!(
        t.q.purge_dead_letters("g", Some(Duration::from_secs(1800)))
            .unwrap(),
        2
    );
    let left = t.q.dead_letters("g", 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].payload, b"late");
    assert_eq!(t.q.purge_dead_letters("g", None).unwrap(), 1);
    assert_eq!(t.q.stats().unwrap().groups["g"].dead, 0);
}

#[test]
fn a_dead_letter_in_one_group_leaves_the_other_group_alone() {
    let t = TestQueue::new();
    t.sub("healthy", "t");
    let ids = kill_all(&t, 1);
    let d = t.take_one("healthy").unwrap();
    assert_eq!(d.message_id, ids[0]);
    t.q.ack(&d).unwrap();
    let info = t.q.message(ids[0]).unwrap();
    assert_eq!(info.deliveries["g"].state.as_str(), "dead");
    assert_eq!(info.deliveries["healthy"].state.as_str(), "acked");
}

#[test]
fn redrive_all_replays_each_letter_dead_at_its_start_once_though_they_die_again() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    const DEAD: usize = 3000;
    let batch: Vec<ferrymq::Message> = (0..DEAD)
        .map(|i| ferrymq::Message::new("t", format!("m{i}")))
        .collect();
    for chunk in batch.chunks(1000) {
        t.q.publish_batch(chunk).unwrap();
    }
    let kill = |q: &ferrymq::Queue| -> usize {
        let mut n = 0;
        loop {
            let ds = q.receive("g", ReceiveOptions::new().max(500)).unwrap();
            if ds.is_empty() {
                return n;
            }
            for d in &ds {
                q.nack(d, "poison", None).unwrap();
            }
            n += ds.len();
        }
    };
    assert_eq!(kill(&t.q), DEAD);

    // A consumer that fails whatever it gets, between every two transactions of the
    // redrive: each redriven letter dies again before the redrive goes on. Bounded, so
    // that a redrive that chases them still ends.
    let q = t.q.clone();
    let mut died_again = 0;
    let redriven =
        t.q.redrive_observed("g", &mut |_, _| {
            if died_again < 4 * DEAD {
                died_again += kill(&q);
            }
        })
        .unwrap();
    assert_eq!(
        redriven, DEAD as u64,
        "{redriven} redriven of {DEAD} dead at the start ({died_again} died again)"
    );
    assert_eq!(
        died_again, DEAD,
        "every letter was redriven once and died again"
    );
    assert_eq!(t.q.stats().unwrap().groups["g"].dead, DEAD as u64);
}
