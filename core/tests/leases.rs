//! Leases: redelivery after expiry, stale acks, extend, and retry accounting that touches
//! only the row it names and grows attempts by exactly one.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, ReceiveOptions, RetryPolicy, SubscribeOptions};
use std::time::Duration;

fn leased(t: &TestQueue, secs: u64) {
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().lease(Duration::from_secs(secs)),
    );
}

#[test]
fn a_valid_lease_is_never_redelivered() {
    let t = TestQueue::new();
    leased(&t, 30);
    t.publish("t", "m");
    let d = t.take_one("g").unwrap();
    t.advance(Duration::from_millis(29_999));
    assert!(t.take_one("g").is_none());
    assert!(
        t.reopen()
            .receive("g", ReceiveOptions::new())
            .unwrap()
            .is_empty()
    );
    t.q.ack(&d).unwrap();
}

#[test]
fn an_expired_lease_redelivers_with_the_next_attempt_and_the_old_ack_fails() {
    let t = TestQueue::new();
    leased(&t, 10);
    let id = t.publish("t", "m");
    let first = t.take_one("g").unwrap();
    t.advance(Duration::from_secs(10));
    let second = t.take_one("g").expect("redelivered after the lease");
    assert_eq!(second.message_id, id);
    assert_eq!(second.attempt, 2);
    assert_ne!(second.lease_token, first.lease_token);

    let before = t.snapshot();
    let err = t.q.ack(&first).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost);
    assert_eq!(
        t.q.nack(&first, "late", None).unwrap_err().kind(),
        ErrorKind::LeaseLost
    );
    let mut stale = first.clone();
    assert_eq!(
        t.q.extend(&mut stale, Duration::from_secs(5))
            .unwrap_err()
            .kind(),
        ErrorKind::LeaseLost
    );
    assert_eq!(t.snapshot(), before, "a stale settle changed something");

    t.q.ack(&second).unwrap();
    let info = t.q.message(id).unwrap();
    let g = &info.deliveries["g"];
    assert_eq!(g.attempts, 2);
    let outcomes: Vec<&str> = g.history.iter().map(|h| h.outcome.as_str()).collect();
    assert_eq!(outcomes, ["lease_expired", "acked"]);
}

#[test]
fn an_ack_after_expiry_still_works_if_nobody_took_over() {
    let t = TestQueue::new();
    leased(&t, 10);
    t.publish("t", "m");
    let d = t.take_one("g").unwrap();
    t.advance(Duration::from_secs(60));
    t.q.ack(&d).unwrap();
    assert!(t.take_one("g").is_none());
}

#[test]
fn extend_keeps_the_delivery_past_its_first_lease() {
    let t = TestQueue::new();
    leased(&t, 10);
    t.publish("t", "m");
    let mut d = t.take_one("g").unwrap();
    t.advance(Duration::from_secs(8));
    t.q.extend(&mut d, Duration::from_secs(30)).unwrap();
    assert_eq!(d.lease_until, t.q.now() + Duration::from_secs(30));
    t.advance(Duration::from_secs(20));
    assert!(t.take_one("g").is_none());
    t.q.ack(&d).unwrap();
    assert_eq!(
        t.q.extend(&mut d, Duration::from_secs(1))
            .unwrap_err()
            .kind(),
        ErrorKind::LeaseLost
    );
}

#[test]
fn a_receive_lease_overrides_the_group_lease() {
    let t = TestQueue::new();
    leased(&t, 30);
    t.publish("t", "m");
    let d =
        t.q.receive("g", ReceiveOptions::new().lease(Duration::from_secs(2)))
            .unwrap()
            .pop()
            .unwrap();
    assert_eq!(d.lease_until, t.q.now() + Duration::from_secs(2));
    t.advance(Duration::from_secs(2));
    assert_eq!(t.take_one("g").unwrap().attempt, 2);
}

#[test]
fn expired_leases_use_up_retries_and_end_dead() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new()
            .lease(Duration::from_secs(1))
            .retry(RetryPolicy::fixed(vec![Duration::from_secs(5)]).unwrap()),
    );
    let id = t.publish("t", "poison");
    assert_eq!(t.take_one("g").unwrap().attempt, 1);
    t.advance(Duration::from_secs(1));
    assert_eq!(t.take_one("g").unwrap().attempt, 2);
    t.advance(Duration::from_secs(1));
    assert!(t.take_one("g").is_none(), "a third attempt past one retry");
    let dead = t.q.dead_letters("g", 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].last_error.as_deref(), Some("lease expired"));
    assert_eq!(dead[0].history.len(), 2);
}

#[test]
fn a_nack_touches_only_its_own_row_and_attempts_grow_by_one() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![Duration::ZERO; 20]).unwrap()),
    );
    t.sub("other", "t");
    let ids: Vec<i64> = (0..3).map(|i| t.publish("t", &format!("m{i}"))).collect();
    let ds = t.take("g", 3);
    assert_eq!(ds.len(), 3);
    // Plain messages get a group's rows when it claims: "other" holds them inflight.
    assert_eq!(t.take("other", 3).len(), 3);
    let rows_before: Vec<_> = [ids[0], ids[2]]
        .iter()
        .map(|&id| t.delivery_row(id, "g"))
        .chain(ids.iter().map(|&id| t.delivery_row(id, "other")))
        .collect();
    let middle = ds.iter().find(|d| d.message_id == ids[1]).unwrap();
    t.q.nack(middle, "boom", None).unwrap();
    let rows_after: Vec<_> = [ids[0], ids[2]]
        .iter()
        .map(|&id| t.delivery_row(id, "g"))
        .chain(ids.iter().map(|&id| t.delivery_row(id, "other")))
        .collect();
    assert_eq!(rows_before, rows_after, "a nack changed other rows");
    assert_eq!(t.delivery_row(ids[1], "g").1, 1);

    // Nack the same message over and over: the attempt grows by exactly one each time.
    for expected in 2..=10u32 {
        let d = t.take_one("g").unwrap();
        assert_eq!(d.message_id, ids[1]);
        assert_eq!(d.attempt, expected);
        t.q.nack(&d, &format!("boom {expected}"), None).unwrap();
        let (state, attempt, _, token, err) = t.delivery_row(ids[1], "g");
        assert_eq!((state, attempt, token), (0, expected as i64, None));
        assert_eq!(err.as_deref(), Some(format!("boom {expected}").as_str()));
    }
    let history = &t.q.message(ids[1]).unwrap().deliveries["g"].history;
    assert_eq!(history.len(), 10);
    assert!(
        history
            .iter()
            .enumerate()
            .all(|(i, h)| h.attempt == i as u32 + 1)
    );
}

#[test]
fn a_lease_under_a_millisecond_is_refused() {
    let t = TestQueue::new();
    leased(&t, 30);
    let err =
        t.q.receive("g", ReceiveOptions::new().lease(Duration::from_micros(500)))
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err =
        t.q.subscribe(
            "g",
            "t",
            SubscribeOptions::new().lease(Duration::from_micros(999)),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// Child: holds the write lock of the file in `FERRYMQ_DB` for `FERRYMQ_HOLD_MS`, from
/// another process, and says when it has it.
fn hold_write_lock() {
    let conn = rusqlite::Connection::open(std::env::var("FERRYMQ_DB").unwrap()).unwrap();
    let ms: u64 = std::env::var("FERRYMQ_HOLD_MS").unwrap().parse().unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    println!("HELD");
    std::thread::sleep(Duration::from_millis(ms));
    conn.execute_batch("COMMIT").unwrap();
}

/// Spawns `test` as a child holding the write lock for 2.5 s; returns once it holds it.
fn lock_held_elsewhere(test: &str, path: &std::path::Path) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = common::spawn_child(
        test,
        "hold",
        &[
            ("FERRYMQ_DB", path.display().to_string()),
            ("FERRYMQ_HOLD_MS", "2500".into()),
        ],
    );
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep reading to the end: a closed pipe would fail the child's last prints.
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if l == "HELD" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the child never took the write lock");
    child
}

/// A queue on the wall clock (the lock wait is real time), group "g" with a 1 s lease.
fn wall_clock_queue() -> (tempfile::TempDir, ferrymq::Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = ferrymq::Queue::open(dir.path().join("q.db"), ferrymq::Options::default()).unwrap();
    q.subscribe(
        "g",
        "t",
        SubscribeOptions::new().lease(Duration::from_secs(1)),
    )
    .unwrap();
    (dir, q)
}

fn ms_after(later: std::time::SystemTime, earlier: std::time::SystemTime) -> i128 {
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i128
    };
    ms(later) - ms(earlier)
}

#[test]
fn a_lease_starts_when_the_write_lock_is_had_not_before_the_wait() {
    const TEST: &str = "a_lease_starts_when_the_write_lock_is_had_not_before_the_wait";
    if common::child_role(|_| hold_write_lock()) {
        return;
    }
    let (dir, q) = wall_clock_queue();
    q.publish("t", "m", ferrymq::PublishOptions::new()).unwrap();
    let mut child = lock_held_elsewhere(TEST, &dir.path().join("q.db"));
    let got = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(5)))
        .unwrap();
    let returned = std::time::SystemTime::now();
    assert_eq!(got.len(), 1);
    // The whole second of lease is still ahead (less the moments since the claim).
    let left = ms_after(got[0].lease_until, returned);
    assert!(
        left > 500,
        "the lease had {left} ms left when receive returned"
    );
    assert!(
        q.receive("g", ReceiveOptions::new()).unwrap().is_empty(),
        "a second consumer got the message while the first still held it"
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn extend_and_nack_delay_count_from_when_the_write_lock_is_had() {
    const TEST: &str = "extend_and_nack_delay_count_from_when_the_write_lock_is_had";
    if common::child_role(|_| hold_write_lock()) {
        return;
    }
    let (dir, q) = wall_clock_queue();
    q.publish("t", "m", ferrymq::PublishOptions::new()).unwrap();
    let mut d = q.receive("g", ReceiveOptions::new()).unwrap().remove(0);
    let mut child = lock_held_elsewhere(TEST, &dir.path().join("q.db"));
    q.extend(&mut d, Duration::from_secs(1)).unwrap();
    let left = ms_after(d.lease_until, std::time::SystemTime::now());
    assert!(left > 500, "the extended lease had {left} ms left");
    assert!(child.wait().unwrap().success());

    let mut child = lock_held_elsewhere(TEST, &dir.path().join("q.db"));
    q.nack(&d, "again", Some(Duration::from_secs(1))).unwrap();
    let nacked = std::time::SystemTime::now();
    let due: i64 = rusqlite::Connection::open(dir.path().join("q.db"))
        .unwrap()
        .query_row("SELECT due_at FROM ferrymq_deliveries", [], |r| r.get(0))
        .unwrap();
    let due = std::time::UNIX_EPOCH + Duration::from_millis(due as u64);
    let left = ms_after(due, nacked);
    assert!(
        left > 500,
        "the retry was due {left} ms after the nack returned"
    );
    assert!(child.wait().unwrap().success());
}
