//! I/O errors at every point: each operation of the queue is run once per read, write,
//! sync and truncate it makes, with that one failing (`SQLITE_IOERR_*`, or `SQLITE_FULL`
//! for a write), through the fault VFS (`faultvfs`). Each time:
//! - the call fails with the `Storage` kind, or succeeds (a failure after the commit,
//!   such as a checkpoint's, loses nothing and is not reported);
//! - what the file shows afterwards is exactly the state before the call (it failed) or
//!   the state a call without the fault leaves (it succeeded): nothing partial;
//! - the same holds after every handle is closed and the file opened again (a commit
//!   whose sync failed must not come back from the WAL);
//! - the queue works again once the fault clears, and `integrity_check` is ok.
//!
//! Read faults are tried at every 7th read (`FERRYMQ_READ_FAULT_STEP` for another step;
//! 1 tries them all).

mod faultvfs;

use faultvfs::Op;
use ferrymq::{
    Delivery, ErrorKind, ManualClock, Message, Options, PublishOptions, Queue, ReceiveOptions,
    SubscribeOptions, Synchronous,
};
use rusqlite::ffi;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

struct Case {
    name: &'static str,
    /// Brings a fresh queue to the state the operation starts from; may hand it a
    /// delivery to settle.
    setup: fn(&Queue, &ManualClock) -> ferrymq::Result<Option<Delivery>>,
    op: fn(&Queue, Option<Delivery>) -> ferrymq::Result<()>,
}

const CASES: &[Case] = &[
    Case {
        name: "publish",
        setup: two_groups,
        op: |q, _| {
            q.publish("t", "x", PublishOptions::new().key("k"))
                .map(drop)
        },
    },
    Case {
        name: "publish_batch",
        setup: two_groups,
        op: |q, _| {
            let batch: Vec<Message> = (0..3).map(|i| Message::new("t", format!("{i}"))).collect();
            q.publish_batch(&batch).map(drop)
        },
    },
    Case {
        name: "receive",
        setup: three_ready,
        op: |q, _| q.receive("g", ReceiveOptions::new().max(2)).map(drop),
    },
    Case {
        name: "ack",
        setup: one_inflight,
        op: |q, d| q.ack(&d.unwrap()),
    },
    Case {
        name: "nack",
        setup: one_inflight,
        op: |q, d| q.nack(&d.unwrap(), "try later", None),
    },
    Case {
        name: "outbox transaction",
        setup: two_groups,
        op: |q, _| {
            let mut tx = q.begin()?;
            tx.execute("INSERT INTO orders (id) VALUES (1)", &[])?;
            tx.publish("t", "order 1", PublishOptions::new())?;
            tx.commit()
        },
    },
    Case {
        name: "half commit",
        setup: one_half,
        op: |q, _| q.commit_half(first_half(q)),
    },
    Case {
        name: "half rollback",
        setup: one_half,
        op: |q, _| q.rollback_half(first_half(q)),
    },
    Case {
        name: "redrive",
        setup: one_dead,
        op: |q, _| q.redrive("g", None).map(drop),
    },
    Case {
        name: "purge dead letters",
        setup: one_dead,
        op: |q, _| q.purge_dead_letters("g", None).map(drop),
    },
    Case {
        name: "purge acked",
        setup: two_acked,
        op: |q, _| q.purge_acked(Duration::ZERO).map(drop),
    },
];

fn two_groups(q: &Queue, _: &ManualClock) -> ferrymq::Result<Option<Delivery>> {
    q.subscribe("g", "t", SubscribeOptions::new())?;
    q.subscribe("audit", "t", SubscribeOptions::new())?;
    let mut tx = q.begin()?;
    tx.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)", &[])?;
    tx.commit()?;
    Ok(None)
}

fn three_ready(q: &Queue, c: &ManualClock) -> ferrymq::Result<Option<Delivery>> {
    two_groups(q, c)?;
    for p in ["a", "b", "c"] {
        q.publish("t", p, PublishOptions::new())?;
    }
    Ok(None)
}

fn one_inflight(q: &Queue, c: &ManualClock) -> ferrymq::Result<Option<Delivery>> {
    three_ready(q, c)?;
    Ok(q.receive("g", ReceiveOptions::new())?.pop())
}

fn one_half(q: &Queue, c: &ManualClock) -> ferrymq::Result<Option<Delivery>> {
    two_groups(q, c)?;
    q.prepare("t", "half", PublishOptions::new())?;
    Ok(None)
}

fn first_half(q: &Queue) -> i64 {
    faultvfs::disarm();
    let id = q.half_messages(None, 10).unwrap()[0].id;
    faultvfs::arm();
    id
}

fn one_dead(q: &Queue, _: &ManualClock) -> ferrymq::Result<Option<Delivery>> {
    q.subscribe(
        "g",
        "t",
        SubscribeOptions::new().retry(ferrymq::RetryPolicy::fixed(vec![]).unwrap()),
    )?;
    q.publish("t", "doomed", PublishOptions::new())?;
    let d = q.receive("g", ReceiveOptions::new())?.remove(0);
    q.nack(&d, "no", None)?;
    Ok(None)
}

fn two_acked(q: &Queue, c: &ManualClock) -> ferrymq::Result<Option<Delivery>> {
    three_ready(q, c)?;
    for group in ["g", "audit"] {
        for d in q.receive(group, ReceiveOptions::new().max(2))? {
            q.ack(&d)?;
        }
    }
    c.advance(Duration::from_secs(1));
    Ok(None)
}

/// Everything a caller could see of the file's state, as text to compare.
fn observe(q: &Queue) -> String {
    let mut seen = format!("{:?}\n", q.stats().unwrap());
    for id in 1..=8 {
        match q.message(id) {
            Ok(m) => {
                let deliveries: Vec<String> = m
                    .deliveries
                    .iter()
                    .map(|(g, d)| format!("{g}:{}:{}", d.state.as_str(), d.attempts))
                    .collect();
                seen += &format!("{id} {} {deliveries:?}\n", m.state.as_str());
            }
            Err(e) => seen += &format!("{id} {:?}\n", e.kind()),
        }
    }
    let mut tx = q.begin().unwrap();
    let orders = tx
        .query(
            "SELECT count(*) FROM sqlite_master WHERE name = 'orders'",
            &[],
        )
        .unwrap();
    seen += &format!("orders table: {orders:?}\n");
    if orders[0][0] == rusqlite::types::Value::Integer(1) {
        let rows = tx.query("SELECT id FROM orders", &[]).unwrap();
        seen += &format!("orders: {rows:?}\n");
    }
    tx.rollback().unwrap();
    seen
}

fn open(path: &Path, clock: &ManualClock) -> ferrymq::Result<Queue> {
    Queue::open(
        path,
        Options::default()
            .synchronous(Synchronous::Full)
            .with_manual_clock(clock.clone()),
    )
}

fn integrity(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A fresh file with the case's starting state; the clock is shared so that every run
/// sees the same times.
fn start(case: &Case) -> (tempfile::TempDir, ManualClock, Queue, Option<Delivery>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let q = open(&dir.path().join("q.db"), &clock).unwrap();
    let d = (case.setup)(&q, &clock).unwrap();
    (dir, clock, q, d)
}

/// The state after the case's operation with no fault, and how many operations of each
/// kind it made.
fn clean_run(case: &Case) -> (String, [u64; 4]) {
    let (_dir, _clock, q, d) = start(case);
    faultvfs::count_from_zero();
    (case.op)(&q, d).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let counts = [Op::Read, Op::Write, Op::Sync, Op::Truncate].map(faultvfs::count);
    (observe(&q), counts)
}

fn run_case(case: &Case, step: u64) -> u64 {
    let (after_ok, counts) = clean_run(case);
    let mut injected = 0;
    for (i, op) in [Op::Read, Op::Write, Op::Sync, Op::Truncate]
        .into_iter()
        .enumerate()
    {
        let codes: &[i32] = match op {
            Op::Read => &[ffi::SQLITE_IOERR_READ],
            Op::Write => &[ffi::SQLITE_IOERR_WRITE, ffi::SQLITE_FULL],
            Op::Sync => &[ffi::SQLITE_IOERR_FSYNC],
            Op::Truncate => &[ffi::SQLITE_IOERR_TRUNCATE],
        };
        let every = if op == Op::Read { step } else { 1 };
        for &code in codes {
            for n in (1..=counts[i]).step_by(every as usize) {
                let context = format!("{}: {op:?} #{n} fails with {code}", case.name);
                let (dir, clock, q, d) = start(case);
                let before = observe(&q);
                faultvfs::fail_at(op, n, code);
                let result = (case.op)(&q, d);
                let fired = faultvfs::fired();
                faultvfs::clear_fault();
                faultvfs::arm();
                injected += fired;
                let now = observe(&q);
                match &result {
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Storage, "{context}: {e}");
                        assert_eq!(now, before, "{context}: failed, yet changed the file");
                    }
                    Ok(()) => assert_eq!(now, after_ok, "{context}: succeeded, but partly"),
                }
                drop(q);
                let path = dir.path().join("q.db");
                assert_eq!(integrity(&path), "ok", "{context}");
                let q = open(&path, &clock).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
                assert_eq!(observe(&q), now, "{context}: the file changed on reopening");
                // Usable again.
                let id = q.publish("t", "after", PublishOptions::new()).unwrap();
                assert!(q.message(id).is_ok(), "{context}");
            }
        }
    }
    injected
}

fn read_step() -> u64 {
    std::env::var("FERRYMQ_READ_FAULT_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1)
}

#[test]
fn an_io_error_anywhere_fails_the_call_whole_and_leaves_the_queue_usable() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    faultvfs::install();
    faultvfs::reset();
    let step = read_step();
    let mut total = 0;
    for case in CASES {
        let injected = run_case(case, step);
        eprintln!("{}: {injected} faults injected", case.name);
        assert!(
            injected > 0,
            "{}: no fault reached the operation",
            case.name
        );
        total += injected;
    }
    eprintln!("total: {total} faults injected");
}

/// Creating the schema on a new file (every migration) under a fault: the open fails
/// with `Storage` or succeeds; either way the next open finds a whole, current file.
#[test]
fn an_io_error_during_migration_leaves_a_file_the_next_open_completes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    faultvfs::install();
    faultvfs::reset();
    let clock = ManualClock::new(1_700_000_000_000);
    let counts = {
        let dir = tempfile::tempdir().unwrap();
        faultvfs::count_from_zero();
        drop(open(&dir.path().join("q.db"), &clock).unwrap());
        [Op::Write, Op::Sync, Op::Truncate].map(faultvfs::count)
    };
    let mut injected = 0;
    for (i, op) in [Op::Write, Op::Sync, Op::Truncate].into_iter().enumerate() {
        for n in 1..=counts[i] {
            let context = format!("migration: {op:?} #{n} fails");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("q.db");
            faultvfs::fail_at(op, n, ffi::SQLITE_IOERR);
            let result = open(&path, &clock);
            injected += faultvfs::fired();
            faultvfs::clear_fault();
            if let Err(e) = &result {
                assert_eq!(e.kind(), ErrorKind::Storage, "{context}: {e}");
            }
            drop(result);
            let q = open(&path, &clock).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
            let check = q.check_file().unwrap();
            assert_eq!(check.integrity, ["ok"], "{context}");
            assert_eq!(
                check.schema_version, check.expected_schema_version,
                "{context}"
            );
            q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
            q.publish("t", "x", PublishOptions::new()).unwrap();
            assert_eq!(
                q.receive("g", ReceiveOptions::new()).unwrap().len(),
                1,
                "{context}"
            );
        }
    }
    eprintln!("migration: {injected} faults injected");
    assert!(injected > 0);
}
