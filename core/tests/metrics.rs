//! The Prometheus exposition of a queue handle: the file's gauges equal `stats()`, and the
//! `_total` counters count what this handle did (each call once, after its commit;
//! failed calls and rolled-back transactions not at all).

mod common;

use common::TestQueue;
use ferrymq::{Message, PublishOptions, Resolution, RetryPolicy, SubscribeOptions};
use std::collections::BTreeMap;
use std::time::Duration;

/// `name{labels}` -> value, for every sample line.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn counters_count_what_this_handle_committed() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![Duration::ZERO]).unwrap()),
    );
    for p in ["a", "b", "c"] {
        t.publish("t", p);
    }
    t.q.publish_batch(&[Message::new("t", "d"), Message::new("u", "e")])
        .unwrap();
    let mut tx = t.q.begin().unwrap();
    tx.publish("t", "rolled back", PublishOptions::new())
        .unwrap();
    tx.rollback().unwrap();
    let mut tx = t.q.begin().unwrap();
    tx.publish("t", "f", PublishOptions::new()).unwrap();
    tx.commit().unwrap();

    let got = t.take("g", 3);
    t.q.ack(&got[0]).unwrap();
    assert!(t.q.ack(&got[0]).is_err(), "a second ack is refused");
    t.q.nack(&got[1], "retry", None).unwrap();
    let again = t.take("g", 10);
    let retried = again.iter().find(|d| d.attempt == 2).unwrap();
    t.q.nack(retried, "dead now", None).unwrap();
    assert_eq!(t.q.redrive("g", None).unwrap(), 1);

    t.q.prepare("half", "h", PublishOptions::new()).unwrap();
    t.q.set_checker("half", |_| Ok(Resolution::Rollback))
        .unwrap();
    t.advance(Duration::from_secs(3_600));
    t.q.run_checks().unwrap();

    let text = ferrymq::metrics::render(&t.q).unwrap();
    let s = samples(&text);
    let at = |k: &str| {
        s.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{text}"))
    };
    assert_eq!(at("ferrymq_messages_published_total{topic=\"t\"}"), 5.0);
    assert_eq!(at("ferrymq_messages_published_total{topic=\"u\"}"), 1.0);
    assert_eq!(
        at("ferrymq_messages_acked_total{topic=\"t\",consumer_group=\"g\"}"),
        1.0
    );
    assert_eq!(
        at("ferrymq_messages_nacked_total{topic=\"t\",consumer_group=\"g\"}"),
        2.0
    );
    assert_eq!(
        at("ferrymq_messages_dead_lettered_total{topic=\"t\",consumer_group=\"g\"}"),
        1.0
    );
    assert_eq!(
        at("ferrymq_messages_redriven_total{consumer_group=\"g\"}"),
        1.0
    );
    assert_eq!(
        at("ferrymq_checkbacks_total{topic=\"half\",outcome=\"rollback\"}"),
        1.0
    );
    // Three single publishes and both acks (the refused one too) went through group
    // commit; nacks do not.
    assert_eq!(at("ferrymq_group_commit_batch_size_sum"), 5.0);
    assert_eq!(
        at("ferrymq_group_commit_batch_size_bucket{le=\"+Inf\"}"),
        at("ferrymq_group_commit_batch_size_count")
    );
    // The file's gauges are stats().
    let stats = t.q.stats().unwrap();
    let g = &stats.groups["g"];
    assert_eq!(
        at("ferrymq_messages_ready{topic=\"t\",consumer_group=\"g\"}"),
        g.ready as f64
    );
    assert_eq!(
        at("ferrymq_messages_inflight{topic=\"t\",consumer_group=\"g\"}"),
        g.inflight as f64
    );

    // Another handle on the same file starts from zero: the counters are per process.
    let other = t.reopen();
    let fresh = samples(&ferrymq::metrics::render(&other).unwrap());
    assert!(!fresh.contains_key("ferrymq_messages_published_total{topic=\"t\"}"));
    assert_eq!(
        fresh["ferrymq_messages_ready{topic=\"t\",consumer_group=\"g\"}"],
        g.ready as f64
    );
}
