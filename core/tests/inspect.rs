//! Introspection: stats, message(id), find, and retention with purge_acked.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, Message, PublishOptions, RetryPolicy, SubscribeOptions};
use std::time::Duration;

#[test]
fn stats_count_each_delivery_in_exactly_one_state() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![Duration::from_secs(60)]).unwrap()),
    );
    t.publish("t", "dies");
    let d = t.take_one("g").unwrap();
    t.q.nack(&d, "x", Some(Duration::ZERO)).unwrap();
    let d = t.take_one("g").unwrap();
    t.q.nack(&d, "dead now", None).unwrap();
    for i in 0..5 {
        t.publish("t", &format!("m{i}"));
    }
    t.q.publish(
        "t",
        "delayed",
        PublishOptions::new().delay(Duration::from_secs(300)),
    )
    .unwrap();
    t.q.publish("t", "o1", PublishOptions::new().ordering_key("k"))
        .unwrap();
    t.q.publish("t", "o2", PublishOptions::new().ordering_key("k"))
        .unwrap();
    let ds = t.take("g", 3);
    t.q.ack(&ds[0]).unwrap();
    t.q.nack(&ds[1], "retry me", None).unwrap();
    t.advance(Duration::from_secs(7));

    let s = t.q.stats().unwrap();
    let g = &s.groups["g"];
    assert_eq!(g.topic, "t");
    // dies: dead; m0 acked, m1 retrying, m2 inflight; m3 m4 o1 ready; delayed, o2 scheduled.
    assert_eq!(
        (g.ready, g.scheduled, g.inflight, g.retrying, g.dead),
        (3, 2, 1, 1, 1),
        "{g:?}"
    );
    assert_eq!(g.oldest_ready_age, Some(Duration::from_secs(7)));
    assert_eq!(s.topics["t"].messages, 9);
    assert_eq!(s.topics["t"].half, 0);
}

/// The topic counts are kept in two parts (folded every 1,024 ids); whichever side of a
/// fold a message is published, committed or purged on, stats must match a recount.
#[test]
fn topic_message_counts_match_a_recount_across_folds_half_commits_and_purges() {
    let t = TestQueue::new();
    t.sub("g", "a");
    let exact = |topic: &str| -> u64 {
        t.raw()
            .query_row(
                "SELECT count(*) FROM ferrymq_messages m JOIN ferrymq_topics t
                 ON t.id = m.topic_id WHERE t.name = ?1 AND m.state = 0",
                [topic],
                |r| r.get::<_, i64>(0),
            )
            .unwrap() as u64
    };
    let check = |when: &str| {
        let s = t.q.stats().unwrap();
        for topic in ["a", "b"] {
            let got = s.topics.get(topic).map_or(0, |c| c.messages);
            assert_eq!(got, exact(topic), "topic {topic} {when}");
        }
    };
    let batch = |n: usize| {
        let ms: Vec<Message> = (0..n)
            .map(|i| Message::new(if i % 3 == 0 { "b" } else { "a" }, "x"))
            .collect();
        t.q.publish_batch(&ms).unwrap();
    };
    let early = t.q.prepare("a", "early", PublishOptions::new()).unwrap();
    batch(1500);
    check("after the first fold");
    let late = t.q.prepare("a", "late", PublishOptions::new()).unwrap();
    t.q.prepare("b", "dropped", PublishOptions::new())
        .unwrap()
        .rollback()
        .unwrap();
    early.commit().unwrap();
    late.commit().unwrap();
    check("after half commits on both sides of the fold");
    // The second fold runs inside a caller's transaction (outbox publishes).
    t.q.transaction(|tx| {
        for i in 0..600 {
            tx.publish(
                if i % 3 == 0 { "b" } else { "a" },
                "x",
                PublishOptions::new(),
            )?;
        }
        Ok(())
    })
    .unwrap();
    check("after the second fold");
    assert_eq!(exact("a") + exact("b"), 2102);
    let through: i64 = t
        .raw()
        .query_row("SELECT through_id FROM ferrymq_counted", [], |r| r.get(0))
        .unwrap();
    assert_eq!(through, 2048, "stats would count ever more rows itself");
    loop {
        let ds = t.take("g", 500);
        if ds.is_empty() {
            break;
        }
        ds.iter().for_each(|d| t.q.ack(d).unwrap());
    }
    t.advance(Duration::from_secs(3600));
    let purged = t.q.purge_acked(Duration::from_secs(60)).unwrap();
    assert!(purged > 1000, "purged only {purged}");
    check("after purging");
    batch(10);
    check("after publishing again");
    drop(t.reopen());
    check("after reopening");
}

#[test]
fn message_shows_each_group_with_history_and_find_looks_up_by_key() {
    let t = TestQueue::new();
    t.sub("a", "orders");
    t.sub("b", "orders");
    let id =
        t.q.publish(
            "orders",
            "o",
            PublishOptions::new().key("order-1").tag("created"),
        )
        .unwrap();
    t.q.publish("orders", "other", PublishOptions::new().key("order-2"))
        .unwrap();
    let id3 =
        t.q.publish("orders", "o again", PublishOptions::new().key("order-1"))
            .unwrap();
    let d = t.take_one("a").unwrap();
    t.q.nack(&d, "first try failed", Some(Duration::ZERO))
        .unwrap();
    let d = t.take_one("a").unwrap();
    t.q.ack(&d).unwrap();

    let info = t.q.message(id).unwrap();
    assert_eq!(info.state.as_str(), "committed");
    assert_eq!(info.key.as_deref(), Some("order-1"));
    let a = &info.deliveries["a"];
    assert_eq!(a.state.as_str(), "acked");
    assert_eq!(a.attempts, 2);
    assert_eq!(a.last_error.as_deref(), Some("first try failed"));
    let outcomes: Vec<&str> = a.history.iter().map(|h| h.outcome.as_str()).collect();
    assert_eq!(outcomes, ["nacked", "acked"]);
    assert_eq!(info.deliveries["b"].state.as_str(), "ready");
    assert!(info.deliveries["b"].history.is_empty());

    let found: Vec<i64> =
        t.q.find("orders", "order-1")
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(found, [id, id3]);
    assert!(t.q.find("nowhere", "order-1").unwrap().is_empty());
    assert_eq!(t.q.message(-1).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn purge_acked_deletes_only_old_fully_acked_messages() {
    let t = TestQueue::new();
    t.sub("a", "t");
    t.sub("b", "t");
    let ids: Vec<i64> = (0..5).map(|i| t.publish("t", &format!("m{i}"))).collect();
    for d in t.take("a", 10) {
        t.q.ack(&d).unwrap();
    }
    for d in t.take("b", 10) {
        if d.message_id != ids[2] {
            t.q.ack(&d).unwrap();
        }
    }
    t.advance(Duration::from_secs(100));
    let newest = t.publish("t", "new");
    assert_eq!(
        t.q.purge_acked(Duration::from_secs(200)).unwrap(),
        0,
        "nothing old enough"
    );
    assert_eq!(t.q.purge_acked(Duration::from_secs(50)).unwrap(), 4);
    assert!(t.q.message(ids[0]).is_err());
    assert!(t.q.message(ids[2]).is_ok(), "still inflight in b");
    assert!(t.q.message(newest).is_ok());
    let left: i64 = t
        .raw()
        .query_row("SELECT count(*) FROM ferrymq_deliveries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        left, 2,
        "m2 in a and b (new waits above both cursors, without rows)"
    );
    assert_eq!(
        t.q.stats().unwrap().topics["t"].messages,
        2,
        "the count follows the purge"
    );
}

#[test]
fn retention_keeps_the_file_from_growing() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let payload = vec![7u8; 2000];
    let mut sizes = Vec::new();
    for _round in 0..12 {
        for _ in 0..200 {
            t.q.publish("t", &payload, PublishOptions::new()).unwrap();
        }
        loop {
            let ds = t.take("g", 100);
            if ds.is_empty() {
                break;
            }
            for d in ds {
                t.q.ack(&d).unwrap();
            }
        }
        t.advance(Duration::from_secs(10));
        t.q.purge_acked(Duration::from_secs(5)).unwrap();
        let pages: i64 = t
            .raw()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        sizes.push(pages);
    }
    // Freed pages are reused: the file stops growing after the first rounds.
    assert!(
        sizes[11] <= sizes[2] + sizes[2] / 5,
        "file keeps growing: {sizes:?}"
    );
}

#[test]
fn topics_lists_each_topic_with_its_messages_ready_deliveries_and_groups() {
    let t = TestQueue::new();
    assert_eq!(t.q.topics().unwrap(), vec![]);
    t.sub_with("billing", "payments", SubscribeOptions::new());
    t.sub_with("audit", "payments", SubscribeOptions::new());
    t.sub_with("ship", "orders", SubscribeOptions::new());
    for i in 0..3 {
        t.publish("payments", &format!("p{i}"));
    }
    t.publish("orders", "o");
    let held = t.take_one("billing").unwrap();
    t.publish("logs", "nobody listens");
    let topics = t.q.topics().unwrap();
    let row = |name: &str| topics.iter().find(|x| x.name == name).cloned().unwrap();
    assert_eq!(
        topics.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["logs", "orders", "payments"]
    );
    // 3 ready for audit, 2 for billing (one is held).
    assert_eq!((row("payments").messages, row("payments").ready), (3, 5));
    assert_eq!(row("payments").groups, ["audit", "billing"]);
    assert_eq!((row("orders").messages, row("orders").ready), (1, 1));
    assert_eq!((row("logs").messages, row("logs").ready), (1, 0));
    assert!(row("logs").groups.is_empty());
    t.q.ack(&held).unwrap();
}
