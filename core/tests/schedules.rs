//! Schedules (recurring messages): exactly one message per tick under SIGKILLs of the
//! processes that fire them, validation that changes nothing, and a waiting receive that
//! wakes for a tick. The shared scenario `tests/scenarios/schedule.json` covers the
//! policies, repeat, time zones and the listing in every language.

mod common;

use common::{child_role, spawn_child};
use ferrymq::{
    ErrorKind, ManualClock, Missed, Options, Queue, ReceiveOptions, ScheduleOptions,
    SubscribeOptions,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Child: runs the queue (receives and acks) until killed.
fn run_queue() {
    let q = Queue::open(std::env::var("FERRYMQ_DB").unwrap(), Options::default()).unwrap();
    loop {
        let wait = ReceiveOptions::new()
            .max(10)
            .wait(Duration::from_millis(300));
        for d in q.receive("g", wait).unwrap() {
            // A lost lease is fine: the kill test counts messages, not acks.
            let _ = q.ack(&d);
        }
    }
}

fn ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A cron schedule ticking every second for `FERRYMQ_CRON_SECS` seconds (default 20;
/// 60 for the long run), fired by 4 processes that are SIGKILLed and restarted at
/// random: under `catch_up` every tick from the first to the last gives exactly one
/// message.
#[test]
fn every_tick_gives_one_message_while_the_firing_processes_are_killed() {
    if child_role(|_| run_queue()) {
        return;
    }
    let secs: u64 = std::env::var("FERRYMQ_CRON_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cron.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe(
        "g",
        "cron",
        SubscribeOptions::new().lease(Duration::from_secs(5)),
    )
    .unwrap();
    let every_second = ScheduleOptions::new()
        .cron("* * * * * *")
        .missed(Missed::CatchUp);
    q.schedule("sec", "cron", "tick", every_second).unwrap();
    let first = ms(q.schedules().unwrap()[0].next_at);
    let spawn = || {
        spawn_child(
            "every_tick_gives_one_message_while_the_firing_processes_are_killed",
            "queue",
            &[("FERRYMQ_DB", path.display().to_string())],
        )
    };
    let mut children: Vec<_> = (0..4).map(|_| spawn()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = 0;
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 400));
        let victim = (seed >> 32) as usize % children.len();
        children[victim].kill().unwrap();
        children[victim].wait().unwrap();
        children[victim] = spawn();
        kills += 1;
    }
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    // Fires what came due since the last child died.
    q.receive("g", ReceiveOptions::new()).unwrap();
    let next = ms(q.schedules().unwrap()[0].next_at);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut per_tick: BTreeMap<i64, i64> = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT CAST(json_extract(headers, '$.\"ferrymq-tick\"') AS INTEGER), count(*)
             FROM ferrymq_messages GROUP BY 1",
        )
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (tick, n) = row.unwrap();
        per_tick.insert(tick, n);
    }
    let expected: Vec<i64> = (first..next).step_by(1000).collect();
    assert!(
        expected.len() as u64 >= secs - 1,
        "only {} ticks in {secs} s",
        expected.len()
    );
    let wrong: Vec<_> = expected
        .iter()
        .filter(|t| per_tick.get(t) != Some(&1))
        .map(|t| (t, per_tick.get(t).copied().unwrap_or(0)))
        .collect();
    assert!(
        wrong.is_empty(),
        "ticks without exactly one message: {wrong:?}"
    );
    assert_eq!(
        per_tick.len(),
        expected.len(),
        "messages for ticks outside {first}..{next}: {per_tick:?}"
    );
    eprintln!("{} ticks, {kills} kills, one message each", expected.len());
}

fn manual() -> (tempfile::TempDir, Queue, ManualClock) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let q = Queue::open(
        dir.path().join("q.db"),
        Options::default().with_manual_clock(clock.clone()),
    )
    .unwrap();
    (dir, q, clock)
}

#[test]
fn bad_schedules_are_refused_by_name_and_change_nothing() {
    let (_dir, q, _clock) = manual();
    let every = |ms| ScheduleOptions::new().every(Duration::from_millis(ms));
    q.schedule("keep", "t", "x", every(1000)).unwrap();
    let before = q.schedules().unwrap();
    let cases: Vec<(&str, ScheduleOptions, &str)> = vec![
        ("", every(1000), "schedule name"),
        ("keep", ScheduleOptions::new().cron("61 * * * *"), "cron"),
        ("keep", ScheduleOptions::new().cron("* * *"), "cron"),
        (
            "keep",
            ScheduleOptions::new().cron("0 * * * *").tz("Mars/Olympus"),
            "time zone",
        ),
        ("keep", every(1000).cron("0 * * * *"), "not both"),
        ("keep", ScheduleOptions::new(), "cron or every"),
        ("keep", every(0), "every"),
        ("keep", every(1000).repeat(0), "repeat"),
        ("keep", every(1000).tz("UTC"), "tz"),
        ("keep", every(1000).header("ferrymq-tick", "1"), "ferrymq-"),
        (
            "keep",
            every(1000)
                .delay(Duration::from_secs(1))
                .start_at(UNIX_EPOCH),
            "not both",
        ),
    ];
    for (name, o, says) in cases {
        let e = q.schedule(name, "t", "y", o.clone()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{o:?}: {e}");
        assert!(e.to_string().contains(says), "{o:?}: {e} should say {says}");
    }
    let e = q.schedule("keep", "bad topic", "y", every(5)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(q.schedules().unwrap(), before);
    assert_eq!(
        q.unschedule("nope").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        q.unschedule("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn a_waiting_receive_wakes_for_the_next_tick() {
    let (_dir, q, clock) = manual();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let hourly = ScheduleOptions::new().every(Duration::from_secs(3600));
    q.schedule("hourly", "t", "tick", hourly).unwrap();
    let waiter = {
        let q = q.clone();
        std::thread::spawn(move || {
            q.receive("g", ReceiveOptions::new().wait(Duration::from_secs(30)))
                .unwrap()
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    clock.advance(Duration::from_secs(3600));
    let got = waiter.join().unwrap();
    assert_eq!(
        got.len(),
        1,
        "the tick was not fired for the waiting receive"
    );
    assert_eq!(got[0].headers["ferrymq-schedule"], "hourly");
}

#[test]
fn many_handles_receiving_at_once_fire_each_tick_once() {
    let (dir, q, clock) = manual();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let o = ScheduleOptions::new()
        .every(Duration::from_secs(1))
        .missed(Missed::CatchUp);
    q.schedule("s", "t", "tick", o).unwrap();
    clock.advance(Duration::from_secs(100));
    // Eight handles (eight connection pools, as eight processes have) fire at once.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let path = dir.path().join("q.db");
            let c = clock.clone();
            std::thread::spawn(move || {
                let q = Queue::open(path, Options::default().with_manual_clock(c)).unwrap();
                q.receive("g", ReceiveOptions::new().max(5)).unwrap().len()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = q.stats().unwrap();
    assert_eq!(stats.topics["t"].messages, 100);
    assert_eq!(q.schedules().unwrap()[0].fired, 100);
}
