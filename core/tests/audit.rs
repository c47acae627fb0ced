//! The audit trail (`Queue::audit`, `ferrymq_audit`): every operator action records one
//! row in its own transaction with who, what and why; a failed action records nothing;
//! the table is append-only for the caller's SQL and for a plain SQLite connection.

mod common;

use common::{TestQueue, child_role, spawn_child};
use ferrymq::{
    AuditRecord, ErrorKind, Options, PublishOptions, Queue, RetryPolicy, ScheduleOptions,
    SubscribeOptions,
};
use serde_json::{Value, json};
use std::time::Duration;

fn all(q: &Queue) -> Vec<AuditRecord> {
    q.audit(None, 10_000).unwrap()
}

fn detail(r: &AuditRecord) -> Value {
    serde_json::from_str(r.detail.as_deref().expect("a detail")).unwrap()
}

/// The one record the call `f` added: exactly one, with the acting process and user.
fn one_new(t: &TestQueue, f: impl FnOnce()) -> AuditRecord {
    let before = all(&t.q).len();
    f();
    let after = all(&t.q);
    assert_eq!(after.len(), before + 1, "{:#?}", &after[before..]);
    let r = after.last().unwrap().clone();
    assert_eq!(r.pid, i64::from(std::process::id()));
    assert!(!r.process.is_empty() && !r.host.is_empty() && !r.user.is_empty());
    assert_eq!(r.at, t.q.now());
    r
}

/// A group "g" on topic "t" with `n` dead letters; their ids.
fn dead_letters(t: &TestQueue, n: usize) -> Vec<i64> {
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
    );
    let ids: Vec<i64> = (0..n).map(|i| t.publish("t", &format!("m{i}"))).collect();
    for d in t.take("g", n) {
        t.q.nack(&d, "poison", None).unwrap();
    }
    ids
}

#[test]
fn each_operator_action_records_one_row_with_its_target_detail_and_reason() {
    let t = TestQueue::new();
    let ids = dead_letters(&t, 6);
    let q = t.q.with_reason("ticket OPS-7").unwrap();
    assert_eq!(q.reason(), Some("ticket OPS-7"));

    let r = one_new(&t, || q.pause("g").unwrap());
    assert_eq!((r.action.as_str(), r.target.as_str()), ("pause", "g"));
    assert_eq!(detail(&r), json!({"changed": true}));
    assert_eq!(r.reason.as_deref(), Some("ticket OPS-7"));
    // Asked again: nothing changed, and the trail still shows the decision.
    let r = one_new(&t, || q.pause("g").unwrap());
    assert_eq!(detail(&r), json!({"changed": false}));
    let r = one_new(&t, || t.q.resume("g").unwrap());
    assert_eq!((r.action.as_str(), r.reason.as_deref()), ("resume", None));
    assert_eq!(detail(&r), json!({"changed": true}));

    let r = one_new(&t, || {
        q.redrive("g", Some(&[ids[1], ids[0], 999])).unwrap();
    });
    assert_eq!((r.action.as_str(), r.target.as_str()), ("redrive", "g"));
    assert_eq!(
        detail(&r),
        json!({"ids": [ids[1], ids[0], 999], "count": 2})
    );
    let r = one_new(&t, || {
        q.redrive("g", Some(&[])).unwrap();
    });
    assert_eq!(detail(&r), json!({"ids": [], "count": 0}));
    let r = one_new(&t, || {
        q.purge_dead_letter_ids("g", &[ids[2], 999]).unwrap();
    });
    assert_eq!(r.action, "purge_dead_letter_ids");
    assert_eq!(detail(&r), json!({"ids": [ids[2], 999], "count": 1}));
    // Three letters left dead: a whole-DLQ redrive of two transactions' worth is one row.
    let r = one_new(&t, || assert_eq!(q.redrive("g", None).unwrap(), 3));
    assert_eq!(detail(&r), json!({"ids": null, "count": 3}));
    for d in t.take("g", 10) {
        t.q.nack(&d, "poison", None).unwrap();
    }
    let r = one_new(&t, || {
        q.purge_dead_letters("g", Some(Duration::from_secs(60)))
            .unwrap();
    });
    assert_eq!(r.action, "purge_dead_letters");
    assert_eq!(detail(&r), json!({"older_than_ms": 60_000, "count": 0}));
    let r = one_new(&t, || {
        assert_eq!(q.purge_dead_letters("g", None).unwrap(), 5);
    });
    assert_eq!(detail(&r), json!({"older_than_ms": null, "count": 5}));

    let every = ScheduleOptions::new()
        .every(Duration::from_secs(60))
        .repeat(3)
        .tag("tick")
        .header("h", "v");
    let r = one_new(&t, || q.schedule("nightly", "t", "go", every).unwrap());
    assert_eq!(
        (r.action.as_str(), r.target.as_str()),
        ("schedule", "nightly")
    );
    let d = detail(&r);
    assert_eq!(
        (&d["topic"], &d["every_ms"], &d["repeat"], &d["cron"]),
        (&json!("t"), &json!(60_000), &json!(3), &Value::Null)
    );
    assert_eq!(
        (&d["tag"], &d["headers"]),
        (&json!("tick"), &json!({"h": "v"}))
    );
    assert_eq!(
        (&d["missed"], &d["payload_bytes"]),
        (&json!("once"), &json!(2))
    );
    let r = one_new(&t, || q.unschedule("nightly").unwrap());
    assert_eq!(
        (r.action.as_str(), r.target.as_str(), r.detail),
        ("unschedule", "nightly", None)
    );

    let h1 = t.q.prepare("t", "a", PublishOptions::new()).unwrap();
    let h2 = t.q.prepare("t", "b", PublishOptions::new()).unwrap();
    let r = one_new(&t, || q.commit_half(h1.id).unwrap());
    assert_eq!(
        (r.action.as_str(), r.target.clone()),
        ("commit_half", h1.id.to_string())
    );
    assert_eq!(detail(&r), json!({"changed": true}));
    let r = one_new(&t, || q.commit_half(h1.id).unwrap());
    assert_eq!(detail(&r), json!({"changed": false}));
    let r = one_new(&t, || q.rollback_half(h2.id).unwrap());
    assert_eq!(
        (r.action.as_str(), r.target.clone()),
        ("rollback_half", h2.id.to_string())
    );

    t.advance(Duration::from_secs(3600));
    let r = one_new(&t, || {
        q.purge_acked(Duration::from_secs(60)).unwrap();
    });
    assert_eq!((r.action.as_str(), r.target.as_str()), ("purge_acked", ""));
    assert_eq!(detail(&r)["older_than_ms"], json!(60_000));
    assert!(detail(&r)["count"].is_u64());
    let r = one_new(&t, || {
        q.vacuum(Some(10)).unwrap();
    });
    assert_eq!(r.action, "vacuum");
    assert_eq!(detail(&r)["pages_asked"], json!(10));
    assert!(detail(&r)["pages"].is_u64());

    // Ids grow in commit order, and every record of the handle carries its reason.
    let list = all(&t.q);
    assert!(list.windows(2).all(|w| w[0].id < w[1].id));
    let reasons: Vec<_> = list.iter().map(|r| r.reason.is_some()).collect();
    assert_eq!(
        reasons.iter().filter(|&&r| !r).count(),
        1,
        "only resume had none"
    );
}

#[test]
fn what_is_not_an_operator_action_records_nothing() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.publish("t", "x");
    let d = t.take_one("g").unwrap();
    t.q.ack(&d).unwrap();
    // The producer's own half-message decisions and the checker's are not operators'.
    t.q.prepare("t", "a", PublishOptions::new())
        .unwrap()
        .commit()
        .unwrap();
    t.q.prepare("t", "b", PublishOptions::new())
        .unwrap()
        .rollback()
        .unwrap();
    let checked = t.q.prepare("t", "c", PublishOptions::new()).unwrap();
    t.q.set_checker("t", |_| Ok(ferrymq::Resolution::Commit))
        .unwrap();
    t.advance(Duration::from_secs(3600));
    assert_eq!(t.q.run_checks().unwrap(), 1);
    assert_eq!(
        t.q.message(checked.id).unwrap().state,
        ferrymq::MessageState::Committed
    );
    t.q.schedules().unwrap();
    t.q.stats().unwrap();
    assert!(all(&t.q).is_empty());
}

#[test]
fn a_failed_action_records_nothing() {
    let t = TestQueue::new();
    dead_letters(&t, 1);
    let q = t.q.with_reason("fails").unwrap();
    let kinds = [
        q.pause("nobody").unwrap_err().kind(),
        q.resume("nobody").unwrap_err().kind(),
        q.unschedule("nothing").unwrap_err().kind(),
        q.commit_half(12_345).unwrap_err().kind(),
        q.rollback_half(12_345).unwrap_err().kind(),
        q.redrive("nobody", Some(&[1])).unwrap_err().kind(),
        q.redrive("nobody", None).unwrap_err().kind(),
        q.purge_dead_letters("nobody", None).unwrap_err().kind(),
        q.purge_dead_letter_ids("nobody", &[1]).unwrap_err().kind(),
        q.vacuum(Some(0)).unwrap_err().kind(),
        q.purge_acked(Duration::MAX).unwrap_err().kind(),
        q.schedule("s", "t", "x", ScheduleOptions::new())
            .unwrap_err()
            .kind(),
    ];
    assert!(
        kinds[..9].iter().all(|&k| k == ErrorKind::NotFound),
        "{kinds:?}"
    );
    assert!(
        kinds[9..].iter().all(|&k| k == ErrorKind::InvalidArgument),
        "{kinds:?}"
    );
    // A committed message is no half message: InvalidArgument, after the write began.
    let committed = t.publish("t", "c");
    assert_eq!(
        q.rollback_half(committed).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert!(all(&t.q).is_empty());
}

#[test]
fn with_reason_refuses_bad_reasons_and_changes_nothing() {
    let t = TestQueue::new();
    t.sub("g", "t");
    let before = t.snapshot();
    let long = "x".repeat(ferrymq::limits::MAX_REASON_LEN + 1);
    for bad in ["", "   ", "a\0b", long.as_str()] {
        let e = t.q.with_reason(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    assert_eq!(t.snapshot(), before);
    assert!(all(&t.q).is_empty());
    // The longest reason allowed, multi-byte text included, is kept as given.
    let most = "é".repeat(ferrymq::limits::MAX_REASON_LEN / 2);
    let q = t.q.with_reason(most.clone()).unwrap();
    q.pause("g").unwrap();
    assert_eq!(all(&t.q)[0].reason.as_deref(), Some(most.as_str()));
    // The handle shares the queue: closing it closes the original too.
    q.close().unwrap();
    assert!(t.q.is_closed());
}

#[test]
fn audit_pages_by_id_and_checks_its_limit() {
    let t = TestQueue::new();
    t.sub("g", "t");
    for _ in 0..5 {
        t.q.pause("g").unwrap();
    }
    let first = t.q.audit(None, 2).unwrap();
    let next = t.q.audit(Some(first[1].id), 10).unwrap();
    assert_eq!((first.len(), next.len()), (2, 3));
    assert!(next.iter().all(|r| r.id > first[1].id));
    assert!(t.q.audit(Some(next[2].id), 10).unwrap().is_empty());
    for bad in [0, 10_001] {
        let e = t.q.audit(None, bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn the_callers_sql_cannot_change_or_unprotect_the_trail() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.q.pause("g").unwrap();
    for sql in [
        "UPDATE ferrymq_audit SET reason = 'forged'",
        "DELETE FROM ferrymq_audit",
        "INSERT INTO ferrymq_audit (at, action, target, pid, process, host, user) VALUES (0, 'pause', 'g', 1, 'x', 'x', 'x')",
        "DROP TRIGGER ferrymq_audit_no_update",
        "DROP TRIGGER ferrymq_audit_no_delete",
        "DROP TABLE ferrymq_audit",
    ] {
        let e = t.q.transaction(|tx| tx.execute(sql, &[])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{sql}: {e}");
    }
    let list = all(&t.q);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason, None);
}

#[test]
fn a_plain_sqlite_connection_cannot_change_or_delete_records() {
    let t = TestQueue::new();
    t.sub("g", "t");
    t.q.with_reason("real").unwrap().pause("g").unwrap();
    let raw = t.raw();
    for sql in [
        "UPDATE ferrymq_audit SET reason = 'forged'",
        "DELETE FROM ferrymq_audit",
    ] {
        let e = raw.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    let list = all(&t.q);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason.as_deref(), Some("real"));
}

#[test]
fn concurrent_actions_from_threads_get_distinct_ids_and_none_is_lost() {
    let t = TestQueue::new();
    for g in 0..4 {
        t.sub(&format!("g{g}"), "t");
    }
    let per = 50;
    std::thread::scope(|s| {
        for g in 0..4 {
            let q = t.reopen().with_reason(format!("thread {g}")).unwrap();
            s.spawn(move || {
                for i in 0..per {
                    let group = format!("g{g}");
                    if i % 2 == 0 {
                        q.pause(&group)
                    } else {
                        q.resume(&group)
                    }
                    .unwrap();
                }
            });
        }
    });
    let list = all(&t.q);
    assert_eq!(list.len(), 4 * per);
    let ids: std::collections::BTreeSet<_> = list.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), list.len());
    for g in 0..4 {
        let mine: Vec<_> = list
            .iter()
            .filter(|r| r.reason.as_deref() == Some(&format!("thread {g}")))
            .collect();
        assert_eq!(mine.len(), per);
        assert!(mine.iter().all(|r| r.target == format!("g{g}")));
        // Each thread's actions alternate, in its order: none lost or reordered.
        let actions: Vec<_> = mine.iter().map(|r| r.action.as_str()).collect();
        let expected: Vec<_> = (0..per)
            .map(|i| if i % 2 == 0 { "pause" } else { "resume" })
            .collect();
        assert_eq!(actions, expected);
    }
}

const PROCESS_ACTIONS: usize = 40;

fn pause_and_resume_in_a_child(path: &str, group: &str) {
    let q = Queue::open(path, Options::default())
        .unwrap()
        .with_reason(format!("child {group}"))
        .unwrap();
    for i in 0..PROCESS_ACTIONS {
        if i % 2 == 0 {
            q.pause(group)
        } else {
            q.resume(group)
        }
        .unwrap();
    }
}

#[test]
fn concurrent_actions_from_processes_get_distinct_ids_and_none_is_lost() {
    if child_role(|group| pause_and_resume_in_a_child(&std::env::var("FERRYMQ_DB").unwrap(), group))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("a", "t", SubscribeOptions::new()).unwrap();
    q.subscribe("b", "t", SubscribeOptions::new()).unwrap();
    let db = path.display().to_string();
    let name = "concurrent_actions_from_processes_get_distinct_ids_and_none_is_lost";
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|g| spawn_child(name, g, &[("FERRYMQ_DB", db.clone())]))
        .collect();
    let mut pids = Vec::new();
    for c in children {
        pids.push(i64::from(c.id()));
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    let list = q.audit(None, 10_000).unwrap();
    assert_eq!(list.len(), 2 * PROCESS_ACTIONS);
    let ids: std::collections::BTreeSet<_> = list.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), list.len());
    for (g, pid) in ["a", "b"].iter().zip(&pids) {
        let mine: Vec<_> = list.iter().filter(|r| r.target == *g).collect();
        assert_eq!(mine.len(), PROCESS_ACTIONS);
        assert!(mine.iter().all(|r| r.pid == *pid));
        assert!(
            mine.iter()
                .all(|r| r.reason.as_deref() == Some(&format!("child {g}")))
        );
    }
}
