//! Publishing, fan-out, competing consumers, tag filters, batches, idempotency, delay,
//! and bad input.

mod common;

use common::{TestQueue, text};
use ferrymq::{ErrorKind, Message, Options, PublishOptions, ReceiveOptions, SubscribeOptions};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn a_published_message_arrives_with_every_field_and_is_gone_after_ack() {
    let t = TestQueue::new();
    t.sub("payment-center", "payments");
    let opts = PublishOptions::new()
        .tag("created")
        .key("order-42")
        .header("traceparent", "00-abc-01")
        .ordering_key("account-7");
    let id = t.q.publish("payments", b"pay 100", opts).unwrap();

    let d = t.take_one("payment-center").expect("a delivery");
    assert_eq!(d.message_id, id);
    assert_eq!(d.topic, "payments");
    assert_eq!(d.tag.as_deref(), Some("created"));
    assert_eq!(d.key.as_deref(), Some("order-42"));
    assert_eq!(d.ordering_key.as_deref(), Some("account-7"));
    assert_eq!(
        d.headers.get("traceparent").map(String::as_str),
        Some("00-abc-01")
    );
    assert_eq!(d.payload, b"pay 100");
    assert_eq!(d.attempt, 1);
    assert_eq!(d.consumer_group, "payment-center");
    assert_eq!(
        d.published_at,
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000)
    );
    assert_eq!(d.lease_until, d.published_at + Duration::from_secs(30));

    assert!(
        t.take_one("payment-center").is_none(),
        "delivered twice while leased"
    );
    t.q.ack(&d).unwrap();
    assert!(t.take_one("payment-center").is_none());
    let info = t.q.message(id).unwrap();
    assert_eq!(info.deliveries["payment-center"].state.as_str(), "acked");
}

#[test]
fn every_group_gets_every_message_and_acks_are_per_group() {
    let t = TestQueue::new();
    t.sub("billing", "orders");
    t.sub("shipping", "orders");
    let id = t.publish("orders", "o1");
    let b = t.take_one("billing").unwrap();
    t.q.ack(&b).unwrap();
    let s = t.take_one("shipping").expect("shipping still has its copy");
    assert_eq!(s.message_id, id);
    assert_eq!(
        t.q.message(id).unwrap().deliveries["shipping"]
            .state
            .as_str(),
        "inflight"
    );
}

#[test]
fn only_messages_published_after_subscribe_reach_a_group() {
    let t = TestQueue::new();
    let before = t.publish("orders", "early");
    t.sub("late", "orders");
    let after = t.publish("orders", "later");
    let got: Vec<i64> = t.take("late", 10).iter().map(|d| d.message_id).collect();
    assert_eq!(got, vec![after]);
    // The unmatched message is stored and can be looked up.
    let info = t.q.message(before).unwrap();
    assert_eq!(info.payload, b"early");
    assert!(info.deliveries.is_empty());
    assert_eq!(t.q.stats().unwrap().topics["orders"].messages, 2);
}

#[test]
fn tag_filters_select_messages() {
    let t = TestQueue::new();
    t.sub_with("all", "pay", SubscribeOptions::new().tags("*"));
    t.sub_with("created", "pay", SubscribeOptions::new().tags("created"));
    t.sub_with(
        "either",
        "pay",
        SubscribeOptions::new().tags("created || refunded"),
    );
    for tag in ["created", "refunded", "paid"] {
        t.q.publish("pay", tag, PublishOptions::new().tag(tag))
            .unwrap();
    }
    t.q.publish("pay", "untagged", PublishOptions::new())
        .unwrap();
    let payloads = |g: &str| -> Vec<String> { t.take(g, 10).iter().map(text).collect() };
    assert_eq!(payloads("all"), ["created", "refunded", "paid", "untagged"]);
    assert_eq!(payloads("created"), ["created"]);
    assert_eq!(payloads("either"), ["created", "refunded"]);
}

#[test]
fn subscribe_again_updates_settings_but_not_the_topic() {
    let t = TestQueue::new();
    t.sub_with("g", "pay", SubscribeOptions::new().tags("a"));
    t.sub_with(
        "g",
        "pay",
        SubscribeOptions::new()
            .tags("b")
            .lease(Duration::from_secs(5)),
    );
    t.q.publish("pay", "a", PublishOptions::new().tag("a"))
        .unwrap();
    t.q.publish("pay", "b", PublishOptions::new().tag("b"))
        .unwrap();
    let got = t.take("g", 10);
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["b"]);
    assert_eq!(got[0].lease_until, t.q.now() + Duration::from_secs(5));
    let err =
        t.q.subscribe("g", "other", SubscribeOptions::new())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("pay"), "{err}");
}

#[test]
fn consumers_in_one_group_compete_and_each_message_goes_to_one() {
    let t = TestQueue::new();
    t.sub("workers", "jobs");
    let n = 400;
    let ids: Vec<i64> = (0..n)
        .map(|i| t.publish("jobs", &format!("job {i}")))
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..4)
        .map(|k| {
            // Half the consumers share the test's queue, half open their own.
            let q = if k % 2 == 0 { t.q.clone() } else { t.reopen() };
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                loop {
                    let ds = q.receive("workers", ReceiveOptions::new().max(7)).unwrap();
                    if ds.is_empty() {
                        return;
                    }
                    for d in ds {
                        seen.lock().unwrap().push(d.message_id);
                        q.ack(&d).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ids, "each message exactly once");
}

/// `publish_batch` writes the deliveries of unordered messages in one statement at the
/// end; the rows must be exactly those that one `publish` per message writes.
#[test]
fn a_batch_writes_the_same_deliveries_as_one_publish_per_message() {
    let messages: Vec<Message> = (0..60)
        .map(|i| {
            let mut m = Message::new(if i % 7 == 0 { "other" } else { "t" }, format!("m{i}"));
            match i % 4 {
                0 => m = m.tag("a"),
                1 => m = m.tag("b"),
                2 => m = m.tag("c"),
                _ => {}
            }
            if i % 5 == 0 {
                m = m.ordering_key(format!("og{}", i % 3));
            }
            if i % 6 == 0 {
                // Every third of these repeats an earlier key of the same batch.
                let o = m.options.clone().idempotency_key(format!("k{}", i % 18));
                m = m.with_options(o);
            }
            if i % 9 == 0 {
                let o = m.options.clone().delay(Duration::from_secs(i as u64));
                m = m.with_options(o);
            }
            m
        })
        .collect();
    let rows = |batch: bool| -> Vec<String> {
        let t = TestQueue::new();
        t.sub_with("ab", "t", SubscribeOptions::new().tags("a || b"));
        t.sub("all", "t");
        t.sub_with("c", "t", SubscribeOptions::new().tags("c"));
        t.sub("o", "other");
        if batch {
            t.q.publish_batch(&messages).unwrap();
        } else {
            for m in &messages {
                t.q.publish(&m.topic, &m.payload, m.options.clone())
                    .unwrap();
            }
        }
        fan_out_rows(&t)
    };
    let one_by_one = rows(false);
    assert!(
        one_by_one.len() > 80,
        "only {} deliveries",
        one_by_one.len()
    );
    let blocked = |r: &&String| r.split(' ').nth(2) == Some("4");
    assert!(one_by_one.iter().any(|r| blocked(&r)), "nothing blocked");
    assert_eq!(rows(true), one_by_one);
}

#[test]
fn a_batch_commits_all_or_nothing() {
    let t = TestQueue::new();
    t.sub("g", "a");
    let ids =
        t.q.publish_batch(&[
            Message::new("a", "1").tag("x"),
            Message::new("b", "2"),
            Message::new("a", "3").key("k"),
        ])
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(t.take("g", 10).len(), 2);

    let before = t.snapshot();
    let err =
        t.q.publish_batch(&[Message::new("a", "ok"), Message::new("bad topic", "no")])
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("message 1"), "{err}");
    assert_eq!(t.snapshot(), before);
}

#[test]
fn an_idempotency_key_enqueues_once_per_topic_and_window() {
    let t = TestQueue::with(Options::default().idempotency_window(Duration::from_secs(3600)));
    t.sub("g", "pay");
    let o = || PublishOptions::new().idempotency_key("order-42/pay");
    let first = t.q.publish("pay", "one", o()).unwrap();
    let again = t.q.publish("pay", "two", o()).unwrap();
    assert_eq!(first, again);
    let other_topic = t.q.publish("refunds", "x", o()).unwrap();
    assert_ne!(other_topic, first);
    let ds = t.take("g", 10);
    assert_eq!(ds.len(), 1);
    assert_eq!(text(&ds[0]), "one");

    t.advance(Duration::from_secs(3601));
    let later = t.q.publish("pay", "three", o()).unwrap();
    assert_ne!(later, first, "the window has passed");
    // The same key twice inside one batch also enqueues once.
    let ids =
        t.q.publish_batch(&[
            Message::new("pay", "b1").with_options(PublishOptions::new().idempotency_key("k2")),
            Message::new("pay", "b2").with_options(PublishOptions::new().idempotency_key("k2")),
        ])
        .unwrap();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn a_delayed_message_waits_for_its_time() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let id =
        t.q.publish(
            "t",
            "later",
            PublishOptions::new().delay(Duration::from_secs(5)),
        )
        .unwrap();
    let at = t.q.now() + Duration::from_secs(60);
    let id2 =
        t.q.publish("t", "at", PublishOptions::new().deliver_at(at))
            .unwrap();
    let past = t.q.now() - Duration::from_secs(60);
    let id3 =
        t.q.publish("t", "past", PublishOptions::new().deliver_at(past))
            .unwrap();

    let now = t.take("g", 10);
    assert_eq!(now.iter().map(|d| d.message_id).collect::<Vec<_>>(), [id3]);
    t.q.ack(&now[0]).unwrap();
    t.advance(Duration::from_millis(4999));
    assert!(t.take_one("g").is_none());
    t.advance(Duration::from_millis(1));
    let d = t.take_one("g").unwrap();
    assert_eq!(d.message_id, id);
    t.q.ack(&d).unwrap();
    t.advance(Duration::from_secs(54));
    assert!(t.take_one("g").is_none());
    t.advance(Duration::from_secs(1));
    assert_eq!(t.take_one("g").unwrap().message_id, id2);
    assert_eq!(t.q.message(id2).unwrap().deliver_at, at);
}

#[test]
fn bad_input_is_refused_with_a_named_problem_and_changes_nothing() {
    let t = TestQueue::with(Options::default().max_payload(1024));
    t.sub("g", "pay");
    t.publish("pay", "keep");
    let before = t.snapshot();
    let q = &t.q;
    let injection = "x'); DROP TABLE ferrymq_messages; --";
    let cases: Vec<(&str, ferrymq::Error)> = vec![
        (
            "topic",
            q.publish("", "p", PublishOptions::new()).unwrap_err(),
        ),
        (
            "topic",
            q.publish(&"t".repeat(250), "p", PublishOptions::new())
                .unwrap_err(),
        ),
        (
            "topic",
            q.publish("pay ments", "p", PublishOptions::new())
                .unwrap_err(),
        ),
        (
            "topic",
            q.publish(injection, "p", PublishOptions::new())
                .unwrap_err(),
        ),
        (
            "tag",
            q.publish("pay", "p", PublishOptions::new().tag("*"))
                .unwrap_err(),
        ),
        (
            "tag",
            q.publish("pay", "p", PublishOptions::new().tag(injection))
                .unwrap_err(),
        ),
        (
            "payload",
            q.publish("pay", vec![0u8; 1025], PublishOptions::new())
                .unwrap_err(),
        ),
        (
            "key",
            q.publish("pay", "p", PublishOptions::new().key(""))
                .unwrap_err(),
        ),
        (
            "ordering_key",
            q.publish(
                "pay",
                "p",
                PublishOptions::new().ordering_key("x".repeat(2000)),
            )
            .unwrap_err(),
        ),
        (
            "either delay or deliver_at",
            q.publish(
                "pay",
                "p",
                PublishOptions::new()
                    .delay(Duration::from_secs(1))
                    .deliver_at(q.now()),
            )
            .unwrap_err(),
        ),
        (
            "deliver_at",
            q.publish(
                "pay",
                "p",
                PublishOptions::new().deliver_at(UNIX_EPOCH - Duration::from_secs(1)),
            )
            .unwrap_err(),
        ),
        (
            "delay",
            q.publish(
                "pay",
                "p",
                PublishOptions::new().delay(Duration::from_secs(u64::MAX / 4)),
            )
            .unwrap_err(),
        ),
        (
            "headers",
            q.publish(
                "pay",
                "p",
                PublishOptions::new().header("h", "v".repeat(70_000)),
            )
            .unwrap_err(),
        ),
        (
            "lease",
            q.subscribe("g2", "pay", SubscribeOptions::new().lease(Duration::ZERO))
                .unwrap_err(),
        ),
        (
            "tag filter",
            q.subscribe("g2", "pay", SubscribeOptions::new().tags("a ||"))
                .unwrap_err(),
        ),
        (
            "consumer group",
            q.subscribe(injection, "pay", SubscribeOptions::new())
                .unwrap_err(),
        ),
        (
            "max",
            q.receive("g", ReceiveOptions::new().max(0)).unwrap_err(),
        ),
        (
            "max",
            q.receive("g", ReceiveOptions::new().max(1_000_000))
                .unwrap_err(),
        ),
        (
            "lease",
            q.receive("g", ReceiveOptions::new().lease(Duration::ZERO))
                .unwrap_err(),
        ),
        ("limit", q.dead_letters("g", 0).unwrap_err()),
    ];
    for (needle, err) in &cases {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err:?} should name {needle}"
        );
    }
    let missing = q.receive("nobody", ReceiveOptions::new()).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(q.message(999_999).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(t.snapshot(), before, "a refused call changed the file");
    assert_eq!(
        ferrymq::seconds("delay", -1.0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn strings_that_look_like_sql_are_stored_as_data() {
    let t = TestQueue::new();
    t.sub("g", "pay");
    let evil = "'; DROP TABLE ferrymq_messages; --";
    let mut headers = BTreeMap::new();
    headers.insert(evil.to_string(), evil.to_string());
    let mut o = PublishOptions::new()
        .key(evil)
        .ordering_key(evil)
        .idempotency_key(evil);
    o.headers = headers.clone();
    let id = t.q.publish("pay", evil, o).unwrap();
    let found = t.q.find("pay", evil).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id);
    assert_eq!(found[0].headers, headers);
    assert_eq!(t.take_one("g").unwrap().payload, evil.as_bytes());
}

#[test]
fn ids_are_unique_across_queues_on_one_file() {
    let t = TestQueue::new();
    let other = t.reopen();
    let mut ids = HashSet::new();
    for i in 0..50 {
        let q = if i % 2 == 0 { &t.q } else { &other };
        assert!(ids.insert(q.publish("t", "x", PublishOptions::new()).unwrap()));
    }
}

/// Every delivery as text (`common::DELIVERIES`: rows, and the pending one of each plain
/// message above a cursor), sorted: ids may differ between runs that publish in another
/// order.
fn fan_out_rows(t: &TestQueue) -> Vec<String> {
    let conn = t.raw();
    let mut stmt = conn.prepare(common::DELIVERIES).unwrap();
    let mut rows: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "{} {} {} {} {} {:?}",
                String::from_utf8(r.get::<_, Vec<u8>>(0)?).unwrap(),
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

/// Three topics with 300 tags each, groups that take all, some or none of the tags.
fn many_tags_queue() -> TestQueue {
    let t = TestQueue::new();
    for topic in ["t0", "t1", "t2"] {
        t.sub(&format!("{topic}-all"), topic);
        for k in 0..5 {
            let tags: Vec<String> = (0..20).map(|j| format!("x{}", k * 37 + j * 11)).collect();
            t.sub_with(
                &format!("{topic}-some{k}"),
                topic,
                SubscribeOptions::new().tags(tags.join(" || ")),
            );
        }
    }
    t
}

/// 1,800 messages over 900 distinct (topic, tag) pairs and untagged ones; a third of
/// them ordered (those go through the subscription memo one by one in a batch), in four
/// ordering groups.
fn many_tags_messages() -> Vec<Message> {
    (0..1_800)
        .map(|i| {
            let mut m = Message::new(format!("t{}", i % 3), format!("m{i}"));
            if i % 10 != 9 {
                m = m.tag(format!("x{}", (i / 3) % 300));
            }
            if i % 3 == 1 {
                m = m.ordering_key(format!("og{}", i % 4));
            }
            m
        })
        .collect()
}

/// The subscription memo is hashed by (topic, tag): a batch, concurrent single publishes
/// (sharing group-commit transactions) and one publish at a time write the same rows.
#[test]
fn many_distinct_topic_tag_pairs_fan_out_alike_in_a_batch_concurrently_and_one_by_one() {
    let messages = many_tags_messages();
    let one_by_one = {
        let t = many_tags_queue();
        for m in &messages {
            t.q.publish(&m.topic, &m.payload, m.options.clone())
                .unwrap();
        }
        fan_out_rows(&t)
    };
    assert!(one_by_one.len() > 2_000, "only {} rows", one_by_one.len());
    assert!(
        one_by_one.iter().any(|r| r.contains(" 4 ")),
        "nothing blocked"
    );

    let batch = {
        let t = many_tags_queue();
        t.q.publish_batch(&messages).unwrap();
        fan_out_rows(&t)
    };
    assert_eq!(batch, one_by_one);

    // Each ordering group from one thread, in order, so that the same ones are blocked.
    let concurrent = {
        let t = many_tags_queue();
        std::thread::scope(|s| {
            for lane in 0..4 {
                let (q, messages) = (t.q.clone(), &messages);
                s.spawn(move || {
                    for m in messages.iter().skip(lane).step_by(4) {
                        q.publish(&m.topic, &m.payload, m.options.clone()).unwrap();
                    }
                });
            }
        });
        fan_out_rows(&t)
    };
    assert_eq!(concurrent, one_by_one);
}

/// Measures (no assertion on time) a 10,000-message batch over 2,000 distinct tags,
/// all ordered so that every message goes through the subscription memo:
/// `cargo test --release -p ferrymq --test publish_receive -- --ignored --nocapture measure_`
#[test]
#[ignore]
fn measure_a_batch_of_10000_over_2000_distinct_tags() {
    let t = TestQueue::new();
    t.sub("all", "t");
    t.sub_with("some", "t", SubscribeOptions::new().tags("x1 || x2 || x3"));
    let messages: Vec<Message> = (0..10_000)
        .map(|i| {
            Message::new("t", format!("m{i}"))
                .tag(format!("x{}", i % 2_000))
                .ordering_key(format!("og{i}"))
        })
        .collect();
    let start = std::time::Instant::now();
    t.q.publish_batch(&messages).unwrap();
    println!(
        "publish_batch: 10000 messages, 2000 distinct tags: {:?}",
        start.elapsed()
    );
}
