//! Consumer groups as cursors (schema 11): a plain message is published without delivery
//! rows; each group's claim writes them. What a user sees must not change: every group
//! gets every message its filter takes, once; stats, `message`, `max_ready` and
//! `purge_acked` count the messages no claim has reached yet.

mod common;

use common::{TestQueue, text};
use ferrymq::{
    DeliveryState, ErrorKind, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions,
};
use std::collections::BTreeSet;
use std::time::Duration;

fn rows(t: &TestQueue) -> i64 {
    t.raw()
        .query_row("SELECT count(*) FROM ferrymq_deliveries", [], |r| r.get(0))
        .unwrap()
}

fn drain(t: &TestQueue, group: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let ds =
            t.q.receive(group, ReceiveOptions::new().max(7).wait(Duration::ZERO))
                .unwrap();
        if ds.is_empty() {
            return got;
        }
        for d in ds {
            got.push(text(&d));
            t.q.ack(&d).unwrap();
        }
    }
}

#[test]
fn a_plain_publish_writes_no_delivery_row_and_every_group_still_gets_every_message_once() {
    let t = TestQueue::new();
    let groups: Vec<String> = (0..8).map(|i| format!("g{i}")).collect();
    for g in &groups {
        t.sub(g, "t");
    }
    let sent: Vec<String> = (0..600).map(|i| format!("m{i}")).collect();
    for m in &sent {
        t.publish("t", m);
    }
    assert_eq!(rows(&t), 0, "a plain publish wrote delivery rows");
    let stats = t.q.stats().unwrap();
    for g in &groups {
        assert_eq!(stats.groups[g].ready, 600, "{g}");
    }
    let info = t.q.message(1).unwrap();
    assert_eq!(info.deliveries.len(), 8);
    assert!(
        info.deliveries
            .values()
            .all(|d| d.state == DeliveryState::Ready && d.attempts == 0)
    );
    for g in &groups {
        assert_eq!(drain(&t, g), sent, "{g}: every message, once, in order");
        assert_eq!(t.q.stats().unwrap().groups[g].ready, 0);
    }
    assert!(
        t.q.message(1)
            .unwrap()
            .deliveries
            .values()
            .all(|d| d.state == DeliveryState::Acked)
    );
}

#[test]
fn a_filter_passes_over_what_it_does_not_take_and_a_new_group_starts_at_the_end() {
    let t = TestQueue::new();
    t.sub_with("a", "t", SubscribeOptions::new().tags("a"));
    for i in 0..10 {
        let tag = if i % 2 == 0 { "a" } else { "b" };
        t.q.publish("t", format!("{tag}{i}"), PublishOptions::new().tag(tag))
            .unwrap();
    }
    t.publish("other", "elsewhere");
    assert_eq!(t.q.stats().unwrap().groups["a"].ready, 5);
    t.sub("late", "t");
    assert_eq!(drain(&t, "a"), ["a0", "a2", "a4", "a6", "a8"]);
    assert!(
        drain(&t, "late").is_empty(),
        "a new group got older messages"
    );
    t.publish("t", "after");
    assert_eq!(drain(&t, "late"), ["after"]);
    assert!(drain(&t, "a").is_empty());
    // Only taken messages got rows of "a"; the untagged one is not taken either.
    let of_a: i64 = t
        .raw()
        .query_row(
            "SELECT count(*) FROM ferrymq_deliveries d JOIN ferrymq_groups g ON g.id = d.group_id
             WHERE g.name = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(of_a, 5);
}

#[test]
fn purge_acked_keeps_what_a_group_has_not_claimed_yet() {
    let t = TestQueue::new();
    t.sub("fast", "t");
    t.sub("slow", "t");
    for i in 0..20 {
        t.publish("t", &format!("m{i}"));
    }
    assert_eq!(drain(&t, "fast").len(), 20);
    t.advance(Duration::from_secs(100));
    t.publish("t", "newest");
    assert_eq!(t.q.purge_acked(Duration::from_secs(50)).unwrap(), 0);
    assert_eq!(drain(&t, "slow").len(), 21);
    assert_eq!(drain(&t, "fast"), ["newest"]);
    t.advance(Duration::from_secs(100));
    // The newest message always stays.
    assert_eq!(t.q.purge_acked(Duration::from_secs(50)).unwrap(), 20);
}

#[test]
fn max_ready_counts_the_messages_above_a_groups_cursor() {
    let t = TestQueue::with(Options::default().max_ready(3));
    t.sub("g", "t");
    t.sub_with("only_x", "t", SubscribeOptions::new().tags("x"));
    for i in 0..3 {
        t.publish("t", &format!("m{i}"));
    }
    let err = t.q.publish("t", "m3", PublishOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Full, "{err}");
    assert!(err.to_string().contains("\"g\""), "{err}");
    let err =
        t.q.publish_batch(&[ferrymq::Message::new("t", "b")])
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Full, "{err}");
    let d = t.take_one("g").unwrap();
    t.q.ack(&d).unwrap();
    t.publish("t", "m3");
    assert_eq!(drain(&t, "g"), ["m1", "m2", "m3"]);
}

#[test]
fn a_changed_filter_applies_to_the_messages_no_claim_has_reached() {
    // As a RocketMQ subscription change applies from the consumer's offset on.
    let t = TestQueue::new();
    t.sub_with("g", "t", SubscribeOptions::new().tags("a"));
    for tag in ["a", "b", "a", "b"] {
        t.q.publish("t", tag, PublishOptions::new().tag(tag))
            .unwrap();
    }
    t.sub_with("g", "t", SubscribeOptions::new().tags("b"));
    assert_eq!(drain(&t, "g"), ["b", "b"]);
}

#[test]
fn a_publish_to_a_topic_with_many_groups_costs_one_row_and_claims_stay_exact_across_queues() {
    let t = TestQueue::new();
    for i in 0..64 {
        t.sub(&format!("g{i}"), "t");
    }
    let other = t.reopen();
    let ids: BTreeSet<i64> = (0..300)
        .map(|i| {
            let q = if i % 2 == 0 { &t.q } else { &other };
            q.publish("t", format!("{i}"), PublishOptions::new())
                .unwrap()
        })
        .collect();
    assert_eq!(rows(&t), 0);
    // Two queues take turns on one group: each message once.
    let mut seen = BTreeSet::new();
    for round in 0.. {
        let q = if round % 2 == 0 { &t.q } else { &other };
        let ds = q
            .receive("g7", ReceiveOptions::new().max(13).wait(Duration::ZERO))
            .unwrap();
        if ds.is_empty() {
            break;
        }
        for d in ds {
            assert!(seen.insert(d.message_id), "{} twice", d.message_id);
            q.ack(&d).unwrap();
        }
    }
    assert_eq!(seen, ids);
}

/// A file of schema 10 (before cursors) with `FERRYMQ_MIGRATION_ROWS` messages waiting
/// (100,000 by default; the figure is millions) upgrades: every waiting message
/// is delivered once, and plain messages published after the upgrade too.
#[test]
fn a_schema_10_file_with_waiting_messages_upgrades_and_delivers_each_once() {
    let n: i64 = std::env::var("FERRYMQ_MIGRATION_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v10.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for sql in [
            include_str!("../migrations/0001_init.sql"),
            include_str!("../migrations/0002_counted.sql"),
            include_str!("../migrations/0003_retention.sql"),
            include_str!("../migrations/0004_sql_producers.sql"),
            include_str!("../migrations/0005_flow_control.sql"),
            include_str!("../migrations/0006_schedules.sql"),
            include_str!("../migrations/0007_rate_priority.sql"),
            include_str!("../migrations/0008_priority_leases.sql"),
            include_str!("../migrations/0009_inbox.sql"),
            include_str!("../migrations/0010_audit.sql"),
        ] {
            c.execute_batch(sql).unwrap();
        }
        // As schema 10 wrote them: one pending delivery row per message and group.
        c.execute_batch(&format!(
            "PRAGMA application_id = {};
             PRAGMA user_version = 10;
             BEGIN;
             INSERT INTO ferrymq_topics (id, name) VALUES (1, 't');
             INSERT INTO ferrymq_groups (id, name, topic_id, tag_filter, retry_policy, lease_ms, created_at)
                 VALUES (1, 'g', 1, '*', 'rocketmq', 30000, 0);
             INSERT INTO ferrymq_subscriptions VALUES (1, '*', 1);
             WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < {n})
             INSERT INTO ferrymq_messages (id, topic_id, state, payload, published_at, deliver_at)
                 SELECT x, 1, 0, CAST(x AS BLOB), 1000 + x, 1000 + x FROM i;
             INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at)
                 SELECT id, 1, 0, deliver_at FROM ferrymq_messages;
             COMMIT;",
            0x4672_7279
        ))
        .unwrap();
    }
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    assert_eq!(q.stats().unwrap().groups["g"].ready, n as u64);
    let fresh = q
        .publish("t", "after the upgrade", PublishOptions::new())
        .unwrap();
    assert_eq!(fresh, n + 1);
    assert_eq!(q.stats().unwrap().groups["g"].ready, n as u64 + 1);
    let mut next = 1;
    loop {
        let ds = q
            .receive("g", ReceiveOptions::new().max(1000).wait(Duration::ZERO))
            .unwrap();
        if ds.is_empty() {
            break;
        }
        for d in &ds {
            assert_eq!(d.message_id, next, "out of order or twice");
            next += 1;
        }
        for d in &ds {
            q.ack(d).unwrap();
        }
    }
    assert_eq!(next, n + 2);
}

#[test]
fn a_filter_that_takes_few_of_a_busy_topics_messages_still_reaches_them() {
    let t = TestQueue::new();
    t.sub_with("only_x", "t", SubscribeOptions::new().tags("x"));
    // More than one claim passes over (16,384), then the one message the filter takes.
    for _ in 0..20 {
        let batch: Vec<ferrymq::Message> = (0..1000)
            .map(|_| ferrymq::Message::new("t", "y").tag("y"))
            .collect();
        t.q.publish_batch(&batch).unwrap();
    }
    t.q.publish("t", "x", PublishOptions::new().tag("x"))
        .unwrap();
    assert_eq!(t.q.stats().unwrap().groups["only_x"].ready, 1);
    let got =
        t.q.receive(
            "only_x",
            ReceiveOptions::new().wait(Duration::from_secs(30)),
        )
        .unwrap();
    assert_eq!(got.iter().map(text).collect::<Vec<_>>(), ["x"]);
    assert_eq!(rows(&t), 1, "rows for what the filter passed over");
}

/// A process of an older build that opened the file before the upgrade keeps writing to
/// it with its own SQL: its purge and its subscribe would break the cursors, so they fail.
#[test]
fn an_older_builds_purge_and_subscribe_fail_on_a_schema_11_file() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let id = t.publish("t", "waiting");
    t.publish("t", "newest");
    let old = t.raw();
    // Schema 10's acked_chunk saw no unacked row of this message and deleted it.
    let err = old
        .execute("DELETE FROM ferrymq_messages WHERE id = ?1", [id])
        .unwrap_err();
    assert!(err.to_string().contains("schema 11"), "{err}");
    // Schema 10's subscribe left the cursor at its default.
    let err = old
        .execute(
            "INSERT INTO ferrymq_groups (name, topic_id, tag_filter, retry_policy, lease_ms, created_at)
             VALUES ('old', 1, '*', 'rocketmq', 30000, 0)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("schema 11"), "{err}");
    assert_eq!(drain(&t, "g"), ["waiting", "newest"]);
    // Once every group has passed it, the message may go.
    assert_eq!(
        old.execute("DELETE FROM ferrymq_messages WHERE id = ?1", [id])
            .unwrap(),
        1
    );
}
