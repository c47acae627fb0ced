//! fork(): a parent holding a queue (with a checker thread) forks workers that open their
//! own queues on the same file and publish, while the parent closes. Every publish a
//! worker saw return must be in the file afterwards. Without care, SQLite's per-process
//! lock records copied into the children let the parent's close checkpoint and delete the
//! `-wal` under them (see core/src/fork.rs).
//!
//! The tests of this file run one at a time (`SERIAL`): a fork copies whatever the other
//! tests' threads hold.

#![cfg(unix)]

use ferrymq::{ErrorKind, Options, PublishOptions, Queue, Resolution};
use std::os::raw::c_int;
use std::path::Path;
use std::time::Duration;

unsafe extern "C" {
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
}

const WORKERS: usize = 8;
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forks; the child runs `f` and exits with its code. Returns the child's exit code, or
/// fails the test if the child has not exited after 20 s.
fn in_child(f: impl FnOnce() -> c_int) -> c_int {
    // SAFETY: the child runs `f` (ferrymq and file calls) and then `_exit`.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = f();
        unsafe { _exit(code) };
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut status = 0;
        let done = unsafe {
            waitpid(pid, &mut status, 1 /* WNOHANG */)
        };
        if done == pid {
            assert!(
                status & 0x7f == 0,
                "child killed by signal {}",
                status & 0x7f
            );
            return (status >> 8) & 0xff;
        }
        assert!(std::time::Instant::now() < deadline, "the child hangs");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs in the child: its own queue, `n` publishes, the confirmed ids to a file.
fn worker(db: &Path, out: &Path, n: usize) -> c_int {
    let run = || -> ferrymq::Result<Vec<i64>> {
        let q = Queue::open(db, Options::default())?;
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(q.publish("jobs", format!("{i}"), PublishOptions::new())?);
        }
        q.close()?;
        Ok(ids)
    };
    match run() {
        Ok(ids) => {
            let text: Vec<String> = ids.iter().map(i64::to_string).collect();
            std::fs::write(out, text.join("\n")).map_or(3, |()| 0)
        }
        Err(e) => {
            let _ = std::fs::write(out.with_extension("err"), e.to_string());
            2
        }
    }
}

fn one_round(dir: &Path, round: usize, n: usize) {
    let db = dir.join(format!("fork-{round}.db"));
    let parent = Queue::open(&db, Options::default()).unwrap();
    parent
        .set_checker("jobs", |_| Ok(Resolution::Commit))
        .unwrap();
    parent
        .publish("jobs", b"from the parent", PublishOptions::new())
        .unwrap();

    let mut pids = Vec::new();
    for w in 0..WORKERS {
        let out = dir.join(format!("ids-{round}-{w}"));
        // SAFETY: the child only runs `worker` and then `_exit`.
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = worker(&db, &out, n);
            unsafe { _exit(code) };
        }
        pids.push((pid, out));
    }
    // The parent closes while its children publish (as if it had exited).
    std::thread::sleep(Duration::from_millis(20));
    parent.close().unwrap();
    drop(parent);

    let mut confirmed = Vec::new();
    for (pid, out) in pids {
        let mut status = 0;
        assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
        let err = std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
        assert_eq!(status, 0, "worker {pid} failed: {err}");
        let text = std::fs::read_to_string(&out).unwrap();
        confirmed.extend(text.lines().map(|l| l.parse::<i64>().unwrap()));
    }
    assert_eq!(confirmed.len(), WORKERS * n);

    let q = Queue::open(&db, Options::default()).unwrap();
    let mut lost = 0;
    for id in &confirmed {
        match q.message(*id) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => lost += 1,
            Err(e) => panic!("message {id}: {e}"),
        }
    }
    q.close().unwrap();
    let check = rusqlite_integrity(&db);
    assert_eq!(lost, 0, "round {round}: {lost} confirmed publishes lost");
    assert_eq!(check, "ok", "round {round}");
}

fn rusqlite_integrity(db: &Path) -> String {
    let c = ferrymq::rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn workers_forked_from_a_parent_with_an_open_queue_lose_nothing() {
    let _serial = serial();
    let rounds = env_usize("FERRYMQ_FORK_ROUNDS", 5);
    let n = env_usize("FERRYMQ_FORK_PUBLISHES", 2_000);
    let dir = tempfile::tempdir().unwrap();
    for round in 0..rounds {
        one_round(dir.path(), round, n);
    }
}

#[test]
fn the_parents_queue_in_a_child_refuses_calls_and_closes_at_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.set_checker("jobs", |_| Ok(Resolution::Commit)).unwrap();
    let code = in_child(|| {
        let refused = q
            .publish("jobs", b"x", PublishOptions::new())
            .is_err_and(|e| e.kind() == ErrorKind::Closed);
        // Before the fix this joined a checker thread that the child does not have.
        q.close().unwrap();
        if refused { 0 } else { 1 }
    });
    assert_eq!(code, 0);
    q.publish("jobs", b"parent still works", PublishOptions::new())
        .unwrap();
    q.close().unwrap();
}

#[test]
fn stopping_the_parents_worker_in_a_child_returns_at_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    q.subscribe("g", "jobs", ferrymq::SubscribeOptions::new())
        .unwrap();
    let mut worker = q
        .worker("g", |_| Ok(()), 2, ferrymq::ReceiveOptions::new())
        .unwrap();
    let mut slot = Some(worker);
    let code = in_child(|| {
        // Its threads are the parent's: before the fix, stop() waited for them forever.
        let mut w = slot.take().unwrap();
        w.stop();
        drop(w);
        0
    });
    assert_eq!(code, 0);
    worker = slot.take().unwrap();
    let id = q.publish("jobs", b"x", PublishOptions::new()).unwrap();
    while q.message(id).unwrap().deliveries["g"].state != ferrymq::DeliveryState::Acked {
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.stop();
    q.close().unwrap();
}

#[test]
fn a_receive_waiting_in_the_parent_does_not_stop_a_child_from_using_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let q = Queue::open(&db, Options::default()).unwrap();
    q.subscribe("g", "jobs", ferrymq::SubscribeOptions::new())
        .unwrap();
    let waiting = {
        let q = q.clone();
        std::thread::spawn(move || {
            q.receive(
                "g",
                ferrymq::ReceiveOptions::new().wait(Duration::from_secs(2)),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let out = dir.path().join("ids");
    let code = in_child(|| worker(&db, &out, 200));
    assert_eq!(code, 0);
    // The parent's waiting receive saw the child's first publish.
    assert_eq!(waiting.join().unwrap().unwrap().len(), 1);
    q.close().unwrap();
    drop(q);
    let q = Queue::open(&db, Options::default()).unwrap();
    for id in std::fs::read_to_string(&out).unwrap().lines() {
        q.message(id.parse().unwrap()).unwrap();
    }
    assert_eq!(rusqlite_integrity(&db), "ok");
}

#[test]
fn a_transaction_open_in_the_parent_makes_the_child_refuse_that_file_only() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (db, other) = (dir.path().join("q.db"), dir.path().join("other.db"));
    let q = Queue::open(&db, Options::default()).unwrap();
    let mut tx = q.begin().unwrap();
    tx.publish(
        "jobs",
        b"in the parent's transaction",
        PublishOptions::new(),
    )
    .unwrap();
    let mut slot = Some(tx);
    let code = in_child(|| {
        let refused = Queue::open(&db, Options::default())
            .is_err_and(|e| e.kind() == ErrorKind::Storage && e.to_string().contains("forked"));
        let other_ok = Queue::open(&other, Options::default())
            .and_then(|o| o.publish("jobs", b"x", PublishOptions::new()))
            .is_ok();
        // Dropping the inherited transaction must not roll back the parent's.
        drop(slot.take());
        match (refused, other_ok) {
            (true, true) => 0,
            (false, _) => 1,
            (true, false) => 2,
        }
    });
    assert_eq!(code, 0);
    let mut tx = slot.take().unwrap();
    let id = tx
        .publish("jobs", b"still the parent's", PublishOptions::new())
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(q.message(id).unwrap().id, id);
    q.close().unwrap();
}
