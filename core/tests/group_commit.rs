//! Group commit: concurrent publishes and acks share transactions, each caller still
//! gets its own result, and one failing write does not fail the others in its batch.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, PublishOptions, ReceiveOptions};
use std::collections::HashSet;
use std::time::Duration;

#[test]
fn concurrent_publishes_share_commits_and_each_gets_its_own_id() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let q = t.q.clone();
            std::thread::spawn(move || {
                (0..200)
                    .map(|i| {
                        let id = q
                            .publish("t", format!("{k}-{i}"), PublishOptions::new())
                            .unwrap();
                        (id, format!("{k}-{i}"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<(i64, String)> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let ids: HashSet<i64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 1600);
    for (id, payload) in &all {
        assert_eq!(
            t.q.message(*id).unwrap().payload,
            payload.as_bytes(),
            "id {id} points at another message"
        );
    }
    let (commits, writes) = t.q.group_commit_counts();
    assert_eq!(writes, 1600);
    assert!(
        commits < writes,
        "no commit was shared: {commits} commits for {writes} writes"
    );
}

#[test]
fn a_stale_ack_fails_alone_inside_a_shared_commit() {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        ferrymq::SubscribeOptions::new().lease(Duration::from_secs(1)),
    );
    for i in 0..400 {
        t.publish("t", &format!("{i}"));
    }
    let stale = t.q.receive("g", ReceiveOptions::new().max(200)).unwrap();
    t.advance(Duration::from_secs(1));
    let fresh_a = t.q.receive("g", ReceiveOptions::new().max(200)).unwrap();
    let fresh_b = t.q.receive("g", ReceiveOptions::new().max(200)).unwrap();
    assert_eq!((stale.len(), fresh_a.len() + fresh_b.len()), (200, 400));
    let spawn = |ds: Vec<ferrymq::Delivery>| {
        let q = t.q.clone();
        std::thread::spawn(move || {
            ds.iter()
                .map(|d| q.ack(d).map_err(|e| e.kind()))
                .collect::<Vec<_>>()
        })
    };
    let (s, a, b) = (spawn(stale), spawn(fresh_a), spawn(fresh_b));
    assert!(
        s.join()
            .unwrap()
            .iter()
            .all(|r| *r == Err(ErrorKind::LeaseLost))
    );
    assert!(
        a.join()
            .unwrap()
            .iter()
            .chain(b.join().unwrap().iter())
            .all(|r| r.is_ok())
    );
    assert_eq!(t.q.stats().unwrap().groups["g"].inflight, 0);
    assert!(t.take_one("g").is_none());
}
