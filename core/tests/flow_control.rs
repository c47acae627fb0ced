//! Flow control: pausing a consumer group, a group's limit on deliveries in flight across
//! processes, and backpressure on publishers (`Options::max_ready`, error kind `Full`).
//! Real files; real processes where the property is about processes.

mod common;

use common::{TestQueue, child_role, spawn_child, text};
use ferrymq::{
    ErrorKind, Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions,
};
use std::io::{BufRead, BufReader};
use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name).unwrap()
}

/// Microseconds of CLOCK_MONOTONIC: one clock for every process on the machine.
fn mono_us() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1_000
}

fn publish_n(q: &Queue, topic: &str, n: usize) {
    for i in 0..n {
        q.publish(topic, format!("m{i}"), PublishOptions::new())
            .unwrap();
    }
}

// ---------------------------------------------------------------- pause / resume

#[test]
fn a_paused_group_receives_nothing_while_messages_accumulate_and_resume_hands_them_out() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.sub("other", "t");
    publish_n(&t.q, "t", 3);
    t.q.pause("g").unwrap();
    assert!(
        t.q.receive("g", ReceiveOptions::new().max(10))
            .unwrap()
            .is_empty()
    );
    publish_n(&t.q, "t", 2);
    let stats = t.q.stats().unwrap();
    assert!(stats.groups["g"].paused);
    assert_eq!(stats.groups["g"].ready, 5);
    assert!(!stats.groups["other"].paused);
    // Another group of the topic is not held.
    assert_eq!(
        t.q.receive("other", ReceiveOptions::new().max(10))
            .unwrap()
            .len(),
        5
    );
    // A second queue on the file (another handle, as another process would) sees it.
    let other = t.reopen();
    assert!(
        other
            .receive("g", ReceiveOptions::new().max(10))
            .unwrap()
            .is_empty()
    );
    t.q.pause("g").unwrap(); // pausing twice is fine
    t.q.resume("g").unwrap();
    assert!(!t.q.stats().unwrap().groups["g"].paused);
    let got = other.receive("g", ReceiveOptions::new().max(10)).unwrap();
    assert_eq!(got.len(), 5);
    t.q.resume("g").unwrap(); // resuming twice is fine
}

#[test]
fn a_delivery_held_when_the_group_is_paused_can_still_be_settled() {
    let t = TestQueue::new();
    t.sub("g", "t");
    publish_n(&t.q, "t", 2);
    let held = t.take("g", 2);
    t.q.pause("g").unwrap();
    t.q.ack(&held[0]).unwrap();
    t.q.nack(&held[1], "later", Some(Duration::ZERO)).unwrap();
    assert!(t.take("g", 10).is_empty());
    t.q.resume("g").unwrap();
    assert_eq!(text(&t.take("g", 10)[0]), "m1");
}

#[test]
fn pause_and_resume_of_an_unknown_group_are_not_found_and_a_bad_name_is_invalid() {
    let t = TestQueue::new();
    assert_eq!(t.q.pause("nope").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(t.q.resume("nope").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        t.q.pause("bad name").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(t.q.stats().unwrap().groups.len(), 0);
}

#[test]
fn a_waiting_receive_keeps_waiting_while_paused_and_gets_the_message_once_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    q.pause("g").unwrap();
    q.publish("t", "x", PublishOptions::new()).unwrap();
    // The message is there all along; a paused wait ends empty.
    let waited = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_millis(200)))
        .unwrap();
    assert!(waited.is_empty());
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || {
            q.receive("g", ReceiveOptions::new().wait(Duration::from_secs(60)))
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    q.resume("g").unwrap();
    let got = waiter.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0]), "x");
}

/// Child: 20 times, says READY, waits in receive (up to 60 s) and reports what came with
/// its monotonic time.
fn waiting_receiver() {
    let q = Queue::open(env("FERRYMQ_DB"), Options::default()).unwrap();
    for i in 0..20 {
        println!("READY {i}");
        let got = q
            .receive("g", ReceiveOptions::new().wait(Duration::from_secs(60)))
            .unwrap();
        let at = mono_us();
        let payload = got.first().map(text).unwrap_or_default();
        println!("GOT {i} {payload} {at}");
        for d in &got {
            q.ack(d).unwrap();
        }
    }
}

#[test]
fn a_pause_in_one_process_holds_another_processs_waiting_receive_until_resumed() {
    const TEST: &str =
        "a_pause_in_one_process_holds_another_processs_waiting_receive_until_resumed";
    if child_role(|_| waiting_receiver()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    q.pause("g").unwrap();
    let mut child = spawn_child(
        TEST,
        "receiver",
        &[("FERRYMQ_DB", path.display().to_string())],
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || loop {
        let line = lines.next().unwrap().unwrap();
        if line.starts_with("READY") || line.starts_with("GOT") {
            return line;
        }
    };
    let mut delays = Vec::new();
    for i in 0..20 {
        // Paused, so the message waits although the other process's receive is waiting.
        q.publish("t", format!("m{i}"), PublishOptions::new())
            .unwrap();
        assert_eq!(next(), format!("READY {i}"));
        std::thread::sleep(Duration::from_millis(30));
        let resumed_at = mono_us();
        q.resume("g").unwrap();
        let got = next();
        let parts: Vec<&str> = got.split(' ').collect();
        assert_eq!(parts[..3], ["GOT", &i.to_string(), &format!("m{i}")]);
        let at: i64 = parts[3].parse().unwrap();
        // It came only after the resume: while paused, the waiting receive got nothing.
        assert!(at >= resumed_at, "delivered before the resume");
        delays.push(at - resumed_at);
        q.pause("g").unwrap();
    }
    assert!(child.wait().unwrap().success());
    delays.sort();
    eprintln!(
        "resume -> waiting receive in another process, 20 tries: median {} µs, max {} µs (all: {delays:?})",
        (delays[9] + delays[10]) / 2,
        delays[19]
    );
}

// ---------------------------------------------------------------- max_inflight

#[test]
fn max_inflight_caps_what_receives_hand_out_until_something_is_settled() {
    let t = TestQueue::new();
    t.sub_with("g", "t", SubscribeOptions::new().max_inflight(3));
    publish_n(&t.q, "t", 10);
    assert_eq!(t.take("g", 10).len(), 3);
    let second = t.reopen();
    assert!(
        second
            .receive("g", ReceiveOptions::new().max(10))
            .unwrap()
            .is_empty()
    );
    let stats = t.q.stats().unwrap();
    assert_eq!(
        (stats.groups["g"].inflight, stats.groups["g"].ready),
        (3, 7)
    );
    assert!(t.take("g", 1).is_empty());
}

#[test]
fn settling_frees_slots_and_an_expired_lease_is_taken_over_within_the_limit() {
    let t = TestQueue::new();
    let lease = Duration::from_secs(10);
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().max_inflight(2).lease(lease),
    );
    publish_n(&t.q, "t", 5);
    let held = t.take("g", 10);
    assert_eq!(held.len(), 2);
    t.q.ack(&held[0]).unwrap();
    let more = t.take("g", 10);
    assert_eq!(more.len(), 1);
    assert!(t.take("g", 10).is_empty());
    // Both leases run out: taking them over keeps two inflight, never more.
    t.advance(lease * 2);
    let again = t.take("g", 10);
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|d| d.attempt == 2));
    assert_eq!(t.q.stats().unwrap().groups["g"].inflight, 2);
    // Lifting the limit (subscribe again without it) hands out the rest.
    t.sub_with("g", "t", SubscribeOptions::new().lease(lease));
    assert_eq!(t.take("g", 10).len(), 2);
}

#[test]
fn a_waiting_receive_at_the_limit_gets_a_delivery_when_another_handle_acks() {
    let t = TestQueue::with(Options::default());
    t.sub_with("g", "t", SubscribeOptions::new().max_inflight(1));
    publish_n(&t.q, "t", 2);
    let held = t.take("g", 1);
    let other = t.reopen();
    let waiter = std::thread::spawn(move || {
        other
            .receive("g", ReceiveOptions::new().wait(Duration::from_secs(60)))
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(50));
    t.q.ack(&held[0]).unwrap();
    let got = waiter.join().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0]), "m1");
}

#[test]
fn max_inflight_out_of_range_is_refused_and_changes_nothing() {
    let t = TestQueue::new();
    for n in [0, 1_000_001] {
        let err =
            t.q.subscribe("g", "t", SubscribeOptions::new().max_inflight(n))
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{n}");
        assert!(err.to_string().contains("max_inflight"), "{err}");
    }
    assert!(t.q.stats().unwrap().groups.is_empty());
    t.sub_with("g", "t", SubscribeOptions::new().max_inflight(1_000_000));
}

/// Child: claims and acks as fast as it can for a while, checking in SQL, inside a
/// transaction of its own right after each claim, how many of the group are inflight.
/// Prints the highest count it saw and what it acked.
fn inflight_worker() {
    let path = env("FERRYMQ_DB");
    let q = Queue::open(&path, Options::default()).unwrap();
    let check = rusqlite::Connection::open(&path).unwrap();
    check.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut highest = 0i64;
    let mut acked = 0;
    let mut empty = 0;
    while empty < 20 {
        let ds = q
            .receive(
                "g",
                ReceiveOptions::new()
                    .max(3)
                    .wait(Duration::from_millis(100)),
            )
            .unwrap();
        if ds.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let n: i64 = check
            .query_row(
                "SELECT count(*) FROM ferrymq_deliveries d JOIN ferrymq_groups g ON g.id = d.group_id
                 WHERE g.name = 'g' AND d.state = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        highest = highest.max(n);
        std::thread::sleep(Duration::from_micros(300));
        for d in &ds {
            q.ack(d).unwrap();
            acked += 1;
        }
    }
    println!("HIGHEST {highest} ACKED {acked}");
}

#[test]
fn eight_processes_with_max_inflight_3_never_have_more_than_3_inflight() {
    const TEST: &str = "eight_processes_with_max_inflight_3_never_have_more_than_3_inflight";
    if child_role(|_| inflight_worker()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new().max_inflight(3))
        .unwrap();
    // The file itself refuses a fourth inflight row: a trigger that is not ferrymq's
    // (the test's own, on a plain connection) checks every claim's UPDATE, so no
    // interleaving of the children can slip past unseen.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "CREATE TABLE audit (n INTEGER);
         CREATE TRIGGER audit_inflight AFTER UPDATE OF state ON ferrymq_deliveries
         WHEN NEW.state = 1 BEGIN
             INSERT INTO audit SELECT count(*) FROM ferrymq_deliveries
             WHERE group_id = NEW.group_id AND state = 1;
         END;",
    )
    .unwrap();
    drop(raw);
    let n = 1200;
    let batch: Vec<Message> = (0..n).map(|i| Message::new("t", format!("m{i}"))).collect();
    q.publish_batch(&batch).unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            spawn_child(
                TEST,
                "worker",
                &[("FERRYMQ_DB", path.display().to_string())],
            )
        })
        .collect();
    let mut acked = 0;
    let mut highest_seen = 0;
    for mut c in children {
        let out = BufReader::new(c.stdout.take().unwrap());
        for line in out.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("HIGHEST ") {
                let parts: Vec<&str> = rest.split(' ').collect();
                highest_seen = highest_seen.max(parts[0].parse::<i64>().unwrap());
                acked += parts[2].parse::<usize>().unwrap();
            }
        }
        assert!(c.wait().unwrap().success());
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let (claims, most): (i64, i64) = raw
        .query_row("SELECT count(*), max(n) FROM audit", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    eprintln!(
        "8 processes, max_inflight 3: {claims} claims audited, most inflight at a claim {most}, \
         most seen by a worker {highest_seen}, {acked} acked"
    );
    assert_eq!(acked, n);
    assert!(claims >= n as i64);
    assert!(most <= 3, "a claim brought the group to {most} inflight");
    assert!(highest_seen <= 3);
}

// ---------------------------------------------------------------- backpressure

fn full_queue(limit: u64) -> TestQueue {
    let t = TestQueue::with(Options::default().max_ready(limit));
    t.sub("g", "t");
    t
}

#[test]
fn a_publish_past_max_ready_fails_with_full_and_writes_nothing() {
    let t = full_queue(3);
    publish_n(&t.q, "t", 3);
    let before = t.snapshot();
    let err = t.q.publish("t", "x", PublishOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Full);
    assert_eq!(err.kind().code(), "FULL");
    assert!(err.to_string().contains("\"g\""), "{err}");
    assert_eq!(t.snapshot(), before);
    // Scheduled messages count as waiting too; inflight ones do not.
    let d = t.take("g", 1);
    t.q.publish(
        "t",
        "later",
        PublishOptions::new().delay(Duration::from_secs(60)),
    )
    .unwrap();
    assert_eq!(
        t.q.publish("t", "x", PublishOptions::new())
            .unwrap_err()
            .kind(),
        ErrorKind::Full
    );
    t.q.ack(&d[0]).unwrap();
    assert_eq!(
        t.q.publish("t", "x", PublishOptions::new())
            .unwrap_err()
            .kind(),
        ErrorKind::Full
    );
    t.take("g", 1);
    t.q.publish("t", "x", PublishOptions::new()).unwrap();
}

#[test]
fn a_repeated_idempotency_key_is_not_full_and_other_groups_and_tags_are_not_held() {
    let t = full_queue(1);
    t.sub_with("blue", "t", SubscribeOptions::new().tags("blue"));
    let first =
        t.q.publish("t", "a", PublishOptions::new().idempotency_key("k"))
            .unwrap();
    // Nothing would be written: the first id comes back.
    assert_eq!(
        t.q.publish("t", "a", PublishOptions::new().idempotency_key("k"))
            .unwrap(),
        first
    );
    // g ("*") is full, so a message for g and blue is refused, although blue is empty.
    assert_eq!(
        t.q.publish("t", "b", PublishOptions::new().tag("blue"))
            .unwrap_err()
            .kind(),
        ErrorKind::Full
    );
    // A topic nobody is behind on is not held.
    t.sub("h", "u");
    t.q.publish("u", "c", PublishOptions::new()).unwrap();
    // A queue handle without the limit is bound by none (the limit is the handle's).
    t.reopen().publish("t", "d", PublishOptions::new()).unwrap();
}

#[test]
fn a_batch_past_max_ready_fails_whole_and_a_transaction_with_a_full_publish_rolls_back() {
    let t = full_queue(4);
    t.sub_with("ordered", "t", SubscribeOptions::new());
    publish_n(&t.q, "t", 2);
    let before = t.snapshot();
    let batch: Vec<Message> = (0..3).map(|i| Message::new("t", format!("b{i}"))).collect();
    assert_eq!(
        t.q.publish_batch(&batch).unwrap_err().kind(),
        ErrorKind::Full
    );
    let ordered: Vec<Message> = (0..3)
        .map(|i| Message::new("t", format!("o{i}")).ordering_key("k"))
        .collect();
    assert_eq!(
        t.q.publish_batch(&ordered).unwrap_err().kind(),
        ErrorKind::Full
    );
    assert_eq!(t.snapshot(), before);
    t.q.publish_batch(&batch[..2]).unwrap();

    // The outbox: the business row and the refused message roll back together.
    let t = full_queue(1);
    publish_n(&t.q, "t", 1);
    let before = t.snapshot();
    let err =
        t.q.transaction(|tx| {
            tx.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER)", &[])?;
            tx.execute("INSERT INTO orders VALUES (1)", &[])?;
            tx.publish("t", "x", PublishOptions::new())?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Full);
    let tables: i64 = t
        .raw()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'orders'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    assert_eq!(t.snapshot(), before);
    // So is a half message.
    assert_eq!(
        t.q.prepare("t", "h", PublishOptions::new())
            .unwrap_err()
            .kind(),
        ErrorKind::Full
    );
    assert_eq!(t.snapshot(), before);
}

#[test]
fn a_full_publish_in_a_shared_commit_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default().max_ready(50)).unwrap();
    q.subscribe("g", "full", SubscribeOptions::new()).unwrap();
    publish_n(&q, "full", 50);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for k in 0..50 {
                    let topic = if (i + k) % 2 == 0 { "full" } else { "free" };
                    let r = q.publish(topic, "x", PublishOptions::new());
                    results.push((topic, r.map_err(|e| e.kind())));
                }
                results
            })
        })
        .collect();
    for th in threads {
        for (topic, r) in th.join().unwrap() {
            match topic {
                "full" => assert_eq!(r, Err(ErrorKind::Full)),
                _ => assert!(r.is_ok(), "{r:?}"),
            }
        }
    }
    let stats = q.stats().unwrap();
    assert_eq!(stats.groups["g"].ready, 50);
    assert_eq!(stats.topics["free"].messages, 200);
    assert!(
        q.group_commit_counts().1 > q.group_commit_counts().0,
        "no commit was shared"
    );
}

#[test]
fn max_ready_out_of_range_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for n in [0, 1_000_001] {
        let err =
            Queue::open(dir.path().join("q.db"), Options::default().max_ready(n)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("max_ready"), "{err}");
    }
}
