//! Ordered message groups: one in flight per group, strictly in publish order, and a
//! failing head pauses only its own group.

mod common;

use common::{TestQueue, text};
use ferrymq::{PublishOptions, ReceiveOptions, RetryPolicy, SubscribeOptions};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn publish_in(t: &TestQueue, group: &str, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| {
            t.q.publish(
                "t",
                format!("{group}-{i}"),
                PublishOptions::new().ordering_key(group),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn one_message_per_group_in_flight_in_publish_order() {
    let t = TestQueue::new();
    t.sub("g", "t");
    publish_in(&t, "acct-7", 3);
    publish_in(&t, "acct-8", 2);
    t.publish("t", "unordered");
    let first: Vec<String> = t.take("g", 10).iter().map(text).collect();
    assert_eq!(first, ["acct-7-0", "acct-8-0", "unordered"]);
    assert!(
        t.take("g", 10).is_empty(),
        "a second message of a group while one is in flight"
    );
}

#[test]
fn acks_release_the_next_message_of_the_group() {
    let t = TestQueue::new();
    t.sub("g", "t");
    publish_in(&t, "a", 3);
    for i in 0..3 {
        let ds = t.take("g", 10);
        assert_eq!(ds.iter().map(text).collect::<Vec<_>>(), [format!("a-{i}")]);
        t.q.ack(&ds[0]).unwrap();
    }
    assert!(t.take("g", 10).is_empty());
}

#[test]
fn a_failing_head_pauses_only_its_group_until_it_is_dead() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![Duration::from_secs(10)]).unwrap()),
    );
    publish_in(&t, "a", 2);
    publish_in(&t, "b", 2);
    let ds = t.take("g", 10);
    let head_a = ds.iter().find(|d| text(d) == "a-0").unwrap();
    let head_b = ds.iter().find(|d| text(d) == "b-0").unwrap();
    t.q.nack(head_a, "bank down", None).unwrap();
    t.q.ack(head_b).unwrap();
    let next: Vec<String> = t.take("g", 10).iter().map(text).collect();
    assert_eq!(next, ["b-1"], "group a must wait for its head");
    assert_eq!(
        t.q.stats().unwrap().groups["g"].scheduled,
        1,
        "a-1 waits behind a-0"
    );

    t.advance(Duration::from_secs(10));
    let retry = t.take("g", 10);
    assert_eq!(retry.iter().map(text).collect::<Vec<_>>(), ["a-0"]);
    assert_eq!(retry[0].attempt, 2);
    t.q.nack(&retry[0], "still down", None).unwrap();
    // The head is dead now: the group moves on.
    let after = t.take("g", 10);
    assert_eq!(after.iter().map(text).collect::<Vec<_>>(), ["a-1"]);
}

#[test]
fn an_expired_head_is_redelivered_before_its_successor() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().lease(Duration::from_secs(5)),
    );
    publish_in(&t, "a", 2);
    assert_eq!(text(&t.take_one("g").unwrap()), "a-0");
    t.advance(Duration::from_secs(5));
    let again = t.take("g", 10);
    assert_eq!(again.iter().map(text).collect::<Vec<_>>(), ["a-0"]);
}

#[test]
fn redriving_a_dead_head_puts_it_behind_the_unfinished_group() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    let ids = publish_in(&t, "a", 2);
    let d = t.take_one("g").unwrap();
    t.q.nack(&d, "poison", None).unwrap();
    let a1 = t.take_one("g").unwrap();
    assert_eq!(a1.message_id, ids[1]);
    assert_eq!(t.q.redrive("g", None).unwrap(), 1);
    assert!(t.take("g", 10).is_empty(), "two of group a in flight");
    t.q.ack(&a1).unwrap();
    assert_eq!(t.take_one("g").unwrap().message_id, ids[0]);
}

#[test]
fn concurrent_consumers_keep_every_group_in_order() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let groups = 8;
    let per_group = 30;
    for i in 0..per_group {
        for g in 0..groups {
            t.q.publish(
                "t",
                format!("{i}"),
                PublishOptions::new().ordering_key(format!("k{g}")),
            )
            .unwrap();
        }
    }
    let inflight: Arc<Mutex<HashSet<String>>> = Default::default();
    let acked: Arc<Mutex<HashMap<String, Vec<usize>>>> = Default::default();
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let q = if k % 2 == 0 { t.q.clone() } else { t.reopen() };
            let (inflight, acked) = (Arc::clone(&inflight), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut idle = 0;
                while idle < 20 {
                    let ds = q.receive("g", ReceiveOptions::new().max(3)).unwrap();
                    if ds.is_empty() {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    idle = 0;
                    for d in ds {
                        let group = d.ordering_key.clone().unwrap();
                        assert!(
                            inflight.lock().unwrap().insert(group.clone()),
                            "two messages of {group} in flight"
                        );
                        let seq: usize = common::text(&d).parse().unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .entry(group.clone())
                            .or_default()
                            .push(seq);
                        inflight.lock().unwrap().remove(&group);
                        q.ack(&d).unwrap();
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), groups);
    for (g, seqs) in acked.iter() {
        assert_eq!(
            seqs,
            &(0..per_group).collect::<Vec<_>>(),
            "group {g} out of order"
        );
    }
}

#[test]
fn a_bulk_redrive_replays_an_ordering_group_in_publish_order() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    let ids = publish_in(&t, "a", 2);
    // N dies, N+1 dies; N is redriven and dies again, so it died last.
    let n = t.take_one("g").unwrap();
    t.q.nack(&n, "x", None).unwrap();
    let n1 = t.take_one("g").unwrap();
    t.q.nack(&n1, "x", None).unwrap();
    t.q.redrive("g", Some(&[ids[0]])).unwrap();
    let n = t.take_one("g").unwrap();
    t.q.nack(&n, "x", None).unwrap();
    assert_eq!(t.q.redrive("g", None).unwrap(), 2);
    let first = t.take("g", 10);
    assert_eq!(
        first.iter().map(|d| d.message_id).collect::<Vec<_>>(),
        [ids[0]]
    );
    t.q.ack(&first[0]).unwrap();
    assert_eq!(t.take_one("g").unwrap().message_id, ids[1]);
}
