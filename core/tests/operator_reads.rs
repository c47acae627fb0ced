//! The calls the `ferrymq` operator command needs beyond the library's own: following a
//! topic by id (`messages_after`), paging dead letters by id (`dead_letter_ids`),
//! purging given dead letters (`purge_dead_letter_ids`) and checking the file.

mod common;

use common::TestQueue;
use ferrymq::{ErrorKind, PublishOptions, RetryPolicy, SubscribeOptions};
use std::time::Duration;

/// A group whose first failure is dead, with `n` dead letters on topic `t`.
fn with_dead(n: usize) -> (TestQueue, Vec<i64>) {
    let t = TestQueue::new();
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    let ids: Vec<i64> = (0..n).map(|i| t.publish("t", &format!("m{i}"))).collect();
    for d in t.take("g", n) {
        t.q.nack(&d, "boom", None).unwrap();
    }
    (t, ids)
}

#[test]
fn messages_after_reads_committed_messages_of_one_topic_in_id_order_and_claims_nothing() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let a = t.publish("t", "a");
    t.publish("other", "x");
    let half = t.q.prepare("t", "h", PublishOptions::new()).unwrap();
    let b = t.publish("t", "b");
    let c = t.publish("t", "c");
    let before = t.snapshot();

    let all: Vec<i64> =
        t.q.messages_after("t", 0, 100)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(
        all,
        vec![a, b, c],
        "half and other topics' messages are left out"
    );
    let page: Vec<i64> =
        t.q.messages_after("t", a, 1)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(page, vec![b]);
    assert!(t.q.messages_after("t", c, 10).unwrap().is_empty());
    assert!(
        t.q.messages_after("no-such-topic", 0, 10)
            .unwrap()
            .is_empty()
    );
    let m = &t.q.messages_after("t", b, 1).unwrap()[0];
    assert_eq!(
        (m.payload.as_slice(), m.deliveries["g"].state.as_str()),
        (&b"c"[..], "ready")
    );
    assert_eq!(t.snapshot(), before, "reading changed the file");

    assert_eq!(t.q.last_message_id("t").unwrap(), Some(c));
    assert_eq!(t.q.last_message_id("no-such-topic").unwrap(), None);
    half.commit().unwrap();
    let all: Vec<i64> =
        t.q.messages_after("t", 0, 100)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
    assert_eq!(all, vec![a, half.id, b, c]);

    for bad in [0, 10_001] {
        let e = t.q.messages_after("t", 0, bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    }
    let e = t.q.messages_after("bad name", 0, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn dead_letter_ids_page_by_id_and_filter_by_age() {
    let (t, ids) = with_dead(5);
    assert_eq!(t.q.dead_letter_ids("g", 0, None, 100).unwrap(), ids);
    assert_eq!(
        t.q.dead_letter_ids("g", ids[1], None, 2).unwrap(),
        ids[2..4].to_vec()
    );
    let hour = Duration::from_secs(3600);
    assert!(
        t.q.dead_letter_ids("g", 0, Some(hour), 100)
            .unwrap()
            .is_empty()
    );
    t.advance(hour);
    assert_eq!(t.q.dead_letter_ids("g", 0, Some(hour), 100).unwrap(), ids);

    let e = t.q.dead_letter_ids("nobody", 0, None, 10).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = t.q.dead_letter_ids("g", 0, None, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
}

#[test]
fn purge_dead_letter_ids_deletes_only_the_given_dead_letters() {
    let (t, ids) = with_dead(4);
    let live = t.publish("t", "live");
    assert_eq!(
        t.q.purge_dead_letter_ids("g", &[ids[0], ids[2], live, 999_999])
            .unwrap(),
        2
    );
    assert_eq!(
        t.q.dead_letter_ids("g", 0, None, 100).unwrap(),
        vec![ids[1], ids[3]]
    );
    assert_eq!(
        t.q.message(live).unwrap().deliveries["g"].state.as_str(),
        "ready"
    );
    assert_eq!(t.q.stats().unwrap().groups["g"].dead, 2);
    let e = t.q.purge_dead_letter_ids("nobody", &[ids[1]]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(t.q.stats().unwrap().groups["g"].dead, 2);
}

#[test]
fn check_file_reports_a_sound_file_and_its_marks() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.publish("t", "a");
    let check = t.q.check_file().unwrap();
    assert_eq!(check.integrity, vec!["ok".to_owned()]);
    assert_eq!(check.application_id, 0x4672_7279);
    assert_eq!(check.schema_version, check.expected_schema_version);
    assert!(check.ok());
    let odd = ferrymq::FileCheck {
        schema_version: 1,
        ..check
    };
    assert!(!odd.ok());
}
