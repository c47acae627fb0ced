//! Query-plan regression test: every statement the queue runs against its own tables,
//! captured from real calls, must find its rows through an index, and read them in the
//! order it asks for. A statement that scans a table whose size grows with traffic
//! (messages, deliveries, attempts, checks, idempotency and inbox keys, audit records), or sorts rows of one
//! (`USE TEMP B-TREE FOR ORDER BY`: the cost grows with every matching row, not with the
//! LIMIT), fails `cargo test`. Migrations run once per file and are left out.

use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use std::collections::BTreeSet;
use std::sync::Mutex;

static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Test builds only: remember the text of every statement this connection runs.
pub(crate) fn record(conn: &mut Connection) {
    let _ = conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT,
        Some(|e: TraceEvent<'_>| {
            if let TraceEvent::Stmt(stmt, _) = e {
                let sql = stmt.sql().into_owned();
                if sql.contains("ferrymq_") {
                    SEEN.lock().unwrap_or_else(|p| p.into_inner()).insert(sql);
                }
            }
        }),
    );
}

/// Tables that grow with traffic; the others hold one row per topic or group.
const GROWING: [&str; 9] = [
    "ferrymq_messages",
    "ferrymq_deliveries",
    "ferrymq_attempts",
    "ferrymq_idempotency",
    "ferrymq_checks",
    "ferrymq_subscriptions",
    "ferrymq_schedules",
    "ferrymq_inbox",
    "ferrymq_audit",
];

fn exercise_every_call(dir: &std::path::Path) {
    use crate::*;
    use std::time::Duration;
    let clock = ManualClock::new(1_700_000_000_000);
    let q = Queue::open(
        dir.join("plans.db"),
        Options::default()
            .with_manual_clock(clock.clone())
            .max_ready(1_000_000),
    )
    .unwrap();
    let policy = RetryPolicy::fixed(vec![Duration::ZERO]).unwrap();
    q.subscribe(
        "g",
        "t",
        SubscribeOptions::new().tags("a || b").retry(policy),
    )
    .unwrap();
    q.subscribe("all", "t", SubscribeOptions::new().max_inflight(1_000))
        .unwrap();
    q.subscribe("slow", "t", SubscribeOptions::new().rate(5.0).burst(2))
        .unwrap();
    for i in 0..50 {
        let o = PublishOptions::new()
            .tag("a")
            .key(format!("k{}", i % 5))
            .ordering_key(format!("og{}", i % 3))
            .idempotency_key(format!("i{i}"))
            .header("h", "v");
        q.publish("t", format!("{i}"), o).unwrap();
    }
    q.publish(
        "t",
        "later",
        PublishOptions::new().delay(Duration::from_secs(9)),
    )
    .unwrap();
    q.publish_batch(&[Message::new("t", "b").tag("b")]).unwrap();
    let urgent = PublishOptions::new().priority(7);
    q.publish("t", "p", urgent.clone()).unwrap();
    q.publish_batch(&[Message::new("t", "pb").with_options(urgent.clone())])
        .unwrap();
    q.publish("t", "po", urgent.ordering_key("og1")).unwrap();
    q.receive("slow", ReceiveOptions::new().max(10)).unwrap();
    q.receive("slow", ReceiveOptions::new().wait(Duration::from_millis(5)))
        .unwrap();
    // Past the 1,024th id: the fold of the topic counts runs.
    let filler: Vec<Message> = (0..1024).map(|_| Message::new("t", "f").tag("c")).collect();
    q.publish_batch(&filler).unwrap();
    let mut ds = q.receive("g", ReceiveOptions::new().max(10)).unwrap();
    q.ack(&ds[0]).unwrap();
    q.nack(&ds[1], "x", None).unwrap();
    q.extend(&mut ds[2], Duration::from_secs(60)).unwrap();
    let again = q.receive("g", ReceiveOptions::new().max(10)).unwrap();
    for d in &again {
        q.nack(d, "dead", None).unwrap();
    }
    clock.advance(Duration::from_secs(120));
    let _ = q.receive("g", ReceiveOptions::new().max(10)).unwrap();
    q.dead_letters("g", 10).unwrap();
    q.redrive("g", None).unwrap();
    q.receive("g", ReceiveOptions::new().max(10))
        .unwrap()
        .iter()
        .for_each(|d| q.nack(d, "x", None).unwrap());
    q.redrive("g", Some(&[1, 2])).unwrap();
    q.purge_dead_letters("g", Some(Duration::from_secs(1)))
        .unwrap();
    q.purge_dead_letters("g", None).unwrap();
    // Schedules: fired by the receives below (catch_up, once, skip; one ends by repeat).
    let every = |ms| ScheduleOptions::new().every(Duration::from_millis(ms));
    q.schedule("s1", "t", "tick", every(1_000).missed(Missed::CatchUp))
        .unwrap();
    q.schedule("s2", "t", "tick", every(500).missed(Missed::Once).repeat(3))
        .unwrap();
    let cron = ScheduleOptions::new()
        .cron("*/2 * * * * *")
        .tz("Europe/Paris");
    q.schedule(
        "s3",
        "t",
        "tick",
        cron.missed(Missed::Skip).header("h", "v"),
    )
    .unwrap();
    clock.advance(Duration::from_secs(5));
    q.receive("g", ReceiveOptions::new()).unwrap();
    q.schedules().unwrap();
    q.unschedule("s3").unwrap();
    q.pause("all").unwrap();
    q.receive("all", ReceiveOptions::new()).unwrap();
    q.stats().unwrap();
    q.resume("all").unwrap();
    q.message(3).unwrap();
    q.find("t", "k1").unwrap();
    q.transaction(|tx| {
        tx.publish("t", "tx", PublishOptions::new())?;
        tx.inbox("seen", Some(Duration::from_secs(60)))?;
        tx.inbox("seen", None)?;
        Ok(())
    })
    .unwrap();
    let h = q.prepare("t", "half", PublishOptions::new()).unwrap();
    q.prepare("t", "half2", PublishOptions::new())
        .unwrap()
        .rollback()
        .unwrap();
    q.set_checker("t", |_| Ok(Resolution::Unknown)).unwrap();
    clock.advance(Duration::from_secs(60));
    q.run_checks().unwrap();
    h.commit().unwrap();
    q.half_messages(None, 10).unwrap();
    q.half_messages(Some(MessageState::RolledBack), 10).unwrap();
    // Not the newest message: purge_acked deletes it below.
    q.prepare("t", "half3", PublishOptions::new().idempotency_key("h3"))
        .unwrap()
        .rollback()
        .unwrap();
    q.publish("t", "newest", PublishOptions::new()).unwrap();
    for d in q.receive("all", ReceiveOptions::new().max(100)).unwrap() {
        q.ack(&d).unwrap();
    }
    clock.advance(Duration::from_secs(86_400 * 2));
    q.purge_acked(Duration::from_secs(60)).unwrap();
    q.vacuum(Some(1)).unwrap();
    q.audit(None, 10).unwrap();
    q.audit(Some(2), 10).unwrap();
    q.close().unwrap();
}

#[test]
fn every_statement_on_growing_tables_uses_an_index() {
    let dir = tempfile::tempdir().unwrap();
    exercise_every_call(dir.path());
    let seen = SEEN.lock().unwrap().clone();
    assert!(
        seen.len() > 30,
        "too few statements captured: {}",
        seen.len()
    );
    let conn = Connection::open(dir.path().join("plans.db")).unwrap();
    let mut bad = Vec::new();
    for sql in &seen {
        let head = sql.trim_start().to_ascii_uppercase();
        let text = sql.trim().trim_end_matches(';');
        if super::schema::MIGRATIONS.iter().any(|m| m.contains(text)) {
            continue;
        }
        if !["SELECT", "UPDATE", "DELETE", "INSERT"]
            .iter()
            .any(|k| head.starts_with(k))
        {
            continue;
        }
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = stmt
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(
                    rusqlite::types::Null,
                    stmt.parameter_count(),
                )),
                |r| r.get(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for d in details {
            let scans_growing = GROWING.iter().any(|t| {
                d.starts_with(&format!("SCAN {t}"))
                    || d.starts_with(&format!("SCAN {t} "))
                    || d.contains(&format!("SCAN {t} AS"))
            }) || (d.starts_with("SCAN ")
                && GROWING.iter().any(|t| d.contains(t)));
            let sorts_growing =
                d.contains("TEMP B-TREE FOR ORDER BY") && GROWING.iter().any(|t| sql.contains(t));
            if sorts_growing || (scans_growing && !d.contains("ferrymq_messages_undecided")) {
                bad.push(format!(
                    "{d}\n    in: {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "statements scanning or sorting growing tables:\n{}",
        bad.join("\n")
    );
}

/// The migrations are history and keep literal numbers in their partial indexes; the
/// statements splice the same states from `store::{delivery_state, message_state}`. If
/// the two disagreed, the planner would silently stop using those indexes.
#[test]
fn the_partial_indexes_of_the_migrations_name_the_states_the_code_uses() {
    use super::{delivery_state, message_state};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    crate::Queue::open(&path, crate::Options::default())
        .unwrap()
        .close()
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    let index = |name: &str| -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    let wanted = [
        (
            "ferrymq_deliveries_priority",
            concat!("AND state = ", delivery_state!(pending)),
        ),
        (
            "ferrymq_deliveries_priority_leased",
            concat!("AND state = ", delivery_state!(inflight)),
        ),
        (
            "ferrymq_deliveries_dead",
            concat!("WHERE state = ", delivery_state!(dead)),
        ),
        (
            "ferrymq_messages_rolled_back",
            concat!("WHERE state = ", message_state!(rolled_back)),
        ),
        (
            "ferrymq_messages_by_state",
            concat!("WHERE state <> ", message_state!(committed)),
        ),
        (
            "ferrymq_messages_undecided",
            concat!("WHERE state <> ", message_state!(committed)),
        ),
    ];
    for (name, clause) in wanted {
        let sql = index(name);
        assert!(sql.contains(clause), "{name}: {sql:?} lacks {clause:?}");
    }
}
