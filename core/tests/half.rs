//! Half messages: invisible until committed, discarded by rollback, resolved by the
//! checker after check_after, rolled back after check_max unknowns, and checked by
//! exactly one of several checkers.

mod common;

use common::{TestQueue, child_role, spawn_child};
use ferrymq::{
    ErrorKind, MessageState, Options, PublishOptions, Queue, ReceiveOptions, Resolution,
    SubscribeOptions,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn a_half_message_is_invisible_until_committed() {
    let t = TestQueue::new();
    t.sub("g", "fund-purchase");
    let h =
        t.q.prepare(
            "fund-purchase",
            "buy 100",
            PublishOptions::new().key("tx-123"),
        )
        .unwrap();
    assert!(t.take_one("g").is_none());
    let s = t.q.stats().unwrap();
    assert_eq!(
        (
            s.topics["fund-purchase"].half,
            s.topics["fund-purchase"].messages
        ),
        (1, 0)
    );
    assert_eq!(t.q.message(h.id).unwrap().state, MessageState::Half);
    h.commit().unwrap();
    h.commit().unwrap();
    let s = t.q.stats().unwrap();
    assert_eq!(
        (
            s.topics["fund-purchase"].half,
            s.topics["fund-purchase"].messages
        ),
        (0, 1)
    );
    let d = t.take_one("g").unwrap();
    assert_eq!((d.message_id, d.key.as_deref()), (h.id, Some("tx-123")));
    assert_eq!(t.q.message(h.id).unwrap().state, MessageState::Committed);
    assert_eq!(h.rollback().unwrap_err().kind(), ErrorKind::InvalidArgument);
}

#[test]
fn a_rolled_back_half_message_is_never_delivered_and_is_kept() {
    let t = TestQueue::new();
    t.sub("g", "fund-purchase");
    let h =
        t.q.prepare("fund-purchase", "buy", PublishOptions::new())
            .unwrap();
    h.rollback().unwrap();
    h.rollback().unwrap();
    let err = h.commit().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert!(t.take_one("g").is_none());
    let kept =
        t.q.half_messages(Some(MessageState::RolledBack), 10)
            .unwrap();
    assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), [h.id]);
    assert_eq!(
        t.q.commit_half(999_999).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn the_checker_is_asked_after_check_after_and_its_commit_delivers() {
    let t = TestQueue::new();
    t.sub("g", "fund-purchase");
    let asked = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&asked);
    t.q.set_checker("fund-purchase", move |info| {
        a.fetch_add(1, Ordering::SeqCst);
        assert_eq!(info.payload, b"buy");
        Ok(Resolution::Commit)
    })
    .unwrap();
    let h =
        t.q.prepare("fund-purchase", "buy", PublishOptions::new())
            .unwrap();
    t.advance(Duration::from_millis(5999));
    assert_eq!(t.q.run_checks().unwrap(), 0);
    assert_eq!(asked.load(Ordering::SeqCst), 0, "asked before check_after");
    t.advance(Duration::from_millis(1));
    assert_eq!(t.q.run_checks().unwrap(), 1);
    assert_eq!(t.take_one("g").unwrap().message_id, h.id);
    let checks = t.q.message(h.id).unwrap().checks;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].resolution, Resolution::Commit);
    assert_eq!(t.q.run_checks().unwrap(), 0);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[test]
fn unknown_answers_are_retried_every_interval_then_rolled_back_and_kept() {
    let t = TestQueue::with(Options::default().check_max(3));
    t.sub("g", "t");
    let errors = Arc::new(AtomicUsize::new(0));
    let e = Arc::clone(&errors);
    t.q.set_checker("t", move |_| match e.fetch_add(1, Ordering::SeqCst) {
        0 => Ok(Resolution::Unknown),
        1 => Err("bank timeout".into()),
        _ => panic!("checker bug"),
    })
    .unwrap();
    let h = t.q.prepare("t", "x", PublishOptions::new()).unwrap();
    t.advance(Duration::from_secs(6));
    assert_eq!(t.q.run_checks().unwrap(), 0);
    t.advance(Duration::from_secs(29));
    t.q.run_checks().unwrap();
    assert_eq!(
        errors.load(Ordering::SeqCst),
        1,
        "asked again before check_interval"
    );
    t.advance(Duration::from_secs(1));
    assert_eq!(t.q.run_checks().unwrap(), 0);
    t.advance(Duration::from_secs(30));
    assert_eq!(
        t.q.run_checks().unwrap(),
        1,
        "the third unknown rolls it back"
    );
    let info = t.q.message(h.id).unwrap();
    assert_eq!(info.state, MessageState::RolledBack);
    let errs: Vec<Option<&str>> = info.checks.iter().map(|c| c.error.as_deref()).collect();
    assert_eq!(errs[0], None);
    assert_eq!(errs[1], Some("bank timeout"));
    assert!(errs[2].unwrap().contains("checker bug"));
    assert!(
        info.checks
            .iter()
            .all(|c| c.resolution == Resolution::Unknown)
    );
    assert!(t.take_one("g").is_none());
    assert_eq!(t.q.half_messages(None, 10).unwrap().len(), 1);
    assert!(
        t.q.half_messages(Some(MessageState::Half), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn several_checkers_on_one_file_answer_each_half_message_once() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let n = 60;
    let ids: Vec<i64> = (0..n)
        .map(|i| {
            t.q.prepare("t", format!("{i}"), PublishOptions::new())
                .unwrap()
                .id
        })
        .collect();
    t.advance(Duration::from_secs(6));
    let asked = Arc::new(AtomicUsize::new(0));
    let queues: Vec<Queue> = (0..3).map(|_| t.reopen()).collect();
    for q in &queues {
        let a = Arc::clone(&asked);
        q.set_checker("t", move |_| {
            a.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            Ok(Resolution::Commit)
        })
        .unwrap();
    }
    let threads: Vec<_> = queues
        .iter()
        .map(|q| {
            let q = q.clone();
            std::thread::spawn(move || q.run_checks().unwrap())
        })
        .collect();
    let resolved: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    // The background checker threads may have answered some of them too.
    assert!(resolved <= n);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        n,
        "a half message was checked twice"
    );
    let got = t.q.receive("g", ReceiveOptions::new().max(100)).unwrap();
    assert_eq!(got.len(), n);
    for q in &queues {
        q.close().unwrap();
    }
    let _ = ids;
}

#[test]
fn the_background_checker_resolves_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        dir.path().join("q.db"),
        Options::default().check_after(Duration::from_millis(100)),
    )
    .unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    q.set_checker("t", |_| Ok(Resolution::Commit)).unwrap();
    let h = q.prepare("t", "x", PublishOptions::new()).unwrap();
    let ds = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(ds[0].message_id, h.id);
    q.close().unwrap();
}

/// Child: prepares a half message, reports its id, and waits to be killed before it
/// could commit.
fn prepare_and_hang() {
    let q = Queue::open(std::env::var("FERRYMQ_DB").unwrap(), Options::default()).unwrap();
    let h = q
        .prepare("t", "crash in between", PublishOptions::new())
        .unwrap();
    println!("PREPARED {}", h.id);
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_crash_between_prepare_and_commit_leaves_the_message_to_the_checker() {
    if child_role(|_| prepare_and_hang()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let clock = ferrymq::ManualClock::starting_now();
    let q = Queue::open(&path, Options::default().with_manual_clock(clock.clone())).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let mut child = spawn_child(
        "a_crash_between_prepare_and_commit_leaves_the_message_to_the_checker",
        "prepare",
        &[("FERRYMQ_DB", path.display().to_string())],
    );
    use std::io::BufRead;
    let id: i64 = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("PREPARED ").map(|s| s.parse().unwrap()))
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        q.receive("g", ReceiveOptions::new()).unwrap().is_empty(),
        "delivered before commit"
    );
    assert_eq!(q.message(id).unwrap().state, MessageState::Half, "lost");
    q.set_checker("t", |_| Ok(Resolution::Commit)).unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(q.run_checks().unwrap(), 1);
    assert_eq!(
        q.receive("g", ReceiveOptions::new()).unwrap()[0].message_id,
        id
    );
}

#[test]
fn a_checker_answer_that_loses_to_the_producer_is_moot_and_the_rest_still_get_answers() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let h1 = t.q.prepare("t", "one", PublishOptions::new()).unwrap();
    let h2 = t.q.prepare("t", "two", PublishOptions::new()).unwrap();
    t.advance(Duration::from_secs(6));
    let producer = t.reopen();
    let first = h1.id;
    t.q.set_checker("t", move |info| {
        if info.id == first {
            // The producer decides while the checker is still thinking.
            producer.commit_half(first).unwrap();
            return Ok(Resolution::Rollback);
        }
        Ok(Resolution::Commit)
    })
    .unwrap();
    t.q.run_checks().unwrap();
    assert_eq!(t.q.message(h1.id).unwrap().state, MessageState::Committed);
    assert_eq!(t.q.message(h2.id).unwrap().state, MessageState::Committed);
    assert_eq!(t.take("g", 10).len(), 2);
}

#[test]
fn a_rolled_back_half_message_frees_its_idempotency_key_and_purge_takes_its_checks() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let h =
        t.q.prepare(
            "t",
            "try 1",
            PublishOptions::new().idempotency_key("pay-42"),
        )
        .unwrap();
    h.rollback().unwrap();
    let retry =
        t.q.publish(
            "t",
            "try 2",
            PublishOptions::new().idempotency_key("pay-42"),
        )
        .unwrap();
    assert_ne!(retry, h.id);
    assert_eq!(t.take_one("g").unwrap().payload, b"try 2");
    assert_eq!(
        t.q.publish(
            "t",
            "try 3",
            PublishOptions::new().idempotency_key("pay-42")
        )
        .unwrap(),
        retry
    );

    let checked = t.q.prepare("t", "checked", PublishOptions::new()).unwrap();
    t.advance(Duration::from_secs(6));
    t.q.set_checker("t", |_| Ok(Resolution::Commit)).unwrap();
    t.q.run_checks().unwrap();
    for d in t.take("g", 10) {
        t.q.ack(&d).unwrap();
    }
    t.q.publish("t", "newest", PublishOptions::new()).unwrap();
    t.advance(Duration::from_secs(60));
    t.q.purge_acked(Duration::from_secs(1)).unwrap();
    assert!(t.q.message(checked.id).is_err());
    let orphans: i64 = t
        .raw()
        .query_row("SELECT count(*) FROM ferrymq_checks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn commit_half_and_rollback_half_refuse_an_ordinary_message_and_an_unknown_id() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let ordinary = t.publish("t", "plain");
    let before = t.snapshot();
    for result in [t.q.commit_half(ordinary), t.q.rollback_half(ordinary)] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains("not a half message"), "{err}");
    }
    for result in [t.q.commit_half(987_654), t.q.rollback_half(987_654)] {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::NotFound);
    }
    assert_eq!(t.snapshot(), before, "a refused call changed the file");

    // A committed half message: committing again is still a no-op, rolling back an error.
    let h = t.q.prepare("t", "half", PublishOptions::new()).unwrap();
    t.q.commit_half(h.id).unwrap();
    t.q.commit_half(h.id).unwrap();
    assert_eq!(
        t.q.rollback_half(h.id).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // One the checker committed is a half message too.
    let checked = t.q.prepare("t", "checked", PublishOptions::new()).unwrap();
    t.advance(Duration::from_secs(6));
    t.q.set_checker("t", |_| Ok(Resolution::Commit)).unwrap();
    assert_eq!(t.q.run_checks().unwrap(), 1);
    t.q.commit_half(checked.id).unwrap();
}

#[test]
fn half_messages_of_both_states_are_the_oldest_in_id_order() {
    let t = TestQueue::new();
    let mut rolled = Vec::new();
    for i in 0..3 {
        let h =
            t.q.prepare("t", format!("r{i}"), PublishOptions::new())
                .unwrap();
        h.rollback().unwrap();
        rolled.push(h.id);
    }
    let half: Vec<i64> = (0..3)
        .map(|i| {
            t.q.prepare("t", format!("h{i}"), PublishOptions::new())
                .unwrap()
                .id
        })
        .collect();
    let ids = |state, limit| -> Vec<i64> {
        t.q.half_messages(state, limit)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    };
    assert_eq!(ids(None, 3), rolled);
    assert_eq!(ids(None, 4), [&rolled[..], &half[..1]].concat());
    assert_eq!(ids(None, 10), [&rolled[..], &half[..]].concat());
    assert_eq!(ids(Some(MessageState::Half), 2), half[..2]);
    assert_eq!(ids(Some(MessageState::RolledBack), 10), rolled);
}

fn count(t: &TestQueue, sql: &str, id: i64) -> i64 {
    t.raw().query_row(sql, [id], |r| r.get(0)).unwrap()
}

#[test]
fn a_rolled_back_half_message_is_kept_for_the_retention_period_then_deleted_with_its_rows() {
    let t = TestQueue::with(Options::default().check_max(2));
    t.sub("g", "t");
    // Rolled back by the checker (two unknown answers), with check rows and a key.
    let by_checker =
        t.q.prepare("t", "a", PublishOptions::new().idempotency_key("pay-1"))
            .unwrap();
    let by_producer = t.q.prepare("t", "b", PublishOptions::new()).unwrap();
    // Past the 1,024th id, so the topic count is partly folded.
    let batch: Vec<ferrymq::Message> = (0..1100)
        .map(|i| ferrymq::Message::new("t", format!("{i}")))
        .collect();
    t.q.publish_batch(&batch).unwrap();
    t.advance(Duration::from_secs(3600));
    t.q.set_checker("t", |_| Ok(Resolution::Unknown)).unwrap();
    t.q.run_checks().unwrap();
    t.advance(Duration::from_secs(60));
    t.q.run_checks().unwrap();
    t.q.remove_checker("t");
    by_producer.rollback().unwrap();
    assert_eq!(
        t.q.message(by_checker.id).unwrap().state,
        MessageState::RolledBack
    );
    t.publish("t", "newest");
    let stats = t.q.stats().unwrap().topics["t"].clone();
    assert_eq!((stats.messages, stats.half), (1101, 0));

    // Published an hour ago, rolled back just now: kept for the retention period.
    t.advance(Duration::from_secs(30));
    assert_eq!(t.q.purge_acked(Duration::from_secs(90)).unwrap(), 0);
    assert_eq!(
        t.q.half_messages(Some(MessageState::RolledBack), 10)
            .unwrap()
            .len(),
        2
    );

    t.advance(Duration::from_secs(120));
    assert_eq!(t.q.purge_acked(Duration::from_secs(90)).unwrap(), 2);
    for id in [by_checker.id, by_producer.id] {
        assert_eq!(t.q.message(id).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM ferrymq_checks WHERE message_id = ?1",
                id
            ),
            0
        );
        assert_eq!(
            count(
                &t,
                "SELECT count(*) FROM ferrymq_idempotency WHERE message_id = ?1",
                id
            ),
            0
        );
    }
    assert!(t.q.half_messages(None, 10).unwrap().is_empty());
    let after = t.q.stats().unwrap().topics["t"].clone();
    assert_eq!((after.messages, after.half), (1101, 0));
    // The key stays free: a retry of the rolled-back payment goes through.
    let retry =
        t.q.publish(
            "t",
            "a again",
            PublishOptions::new().idempotency_key("pay-1"),
        )
        .unwrap();
    assert!(retry > by_checker.id);
    assert_eq!(t.q.purge_acked(Duration::from_secs(90)).unwrap(), 0);
}
