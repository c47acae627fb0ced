//! Hostile input against a model: arbitrary sequences of publish (with priorities) /
//! receive / ack / nack / extend / pause / resume / schedule / unschedule / inbox
//! transactions / clock steps and junk calls with arbitrary strings, checked after every step against a small
//! in-memory model of the semantics. No panic, no error outside the documented kinds, and
//! every receive, settle, stats, schedule listing, schedule tick and inbox answer equal
//! to the model's.
//!
//! CI runs a fixed seed; `FERRYMQ_MODEL_CASES=5000 cargo test -p ferrymq --test model`
//! runs more cases (`PROPTEST_RNG_SEED` picks another seed).

mod common;

use common::TestQueue;
use ferrymq::{
    Clock, Delivery, ErrorKind, HEADER_SCHEDULE, HEADER_TICK, HEADER_TICKS, Missed, PublishOptions,
    ReceiveOptions, RetryPolicy, SKIP_GRACE, ScheduleOptions, SubscribeOptions,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

const RETRIES: [i64; 2] = [1_000, 2_000];
const GROUPS: [(&str, &str); 2] = [("all", "*"), ("only-a", "a")];
/// Two schedule names, so that one can be replaced or removed while the other runs.
const SCHEDULES: [&str; 2] = ["s0", "s1"];
/// Core's walk limits per firing transaction (`catch_up`, and `once`/`skip`).
const CATCH_UP_CHUNK: usize = 1_000;
const WALK_CHUNK: usize = 100_000;

#[derive(Debug, Clone)]
enum Op {
    Publish {
        tag: Option<&'static str>,
        delay_ms: u64,
        payload: Vec<u8>,
        key: String,
        priority: i32,
    },
    Receive {
        group: usize,
        max: usize,
        lease_ms: u64,
    },
    Ack {
        pick: usize,
    },
    Nack {
        pick: usize,
        delay_ms: Option<u64>,
    },
    Extend {
        pick: usize,
        lease_ms: u64,
    },
    Advance {
        ms: u64,
    },
    /// Pause (or resume) a group: its receives get nothing until it is resumed.
    Pause {
        group: usize,
        on: bool,
    },
    /// Create or replace a schedule (`every`, a start before or after now, maybe a
    /// repeat count) publishing to the model's topic.
    Schedule {
        slot: usize,
        every_ms: u64,
        start_ms: Option<i64>,
        repeat: Option<u64>,
        missed: Missed,
        tag: Option<&'static str>,
    },
    Unschedule {
        slot: usize,
    },
    /// One transaction asking the inbox about a few keys (a key may repeat), then
    /// committed or rolled back.
    Inbox {
        seen: Vec<(usize, Option<u64>)>,
        commit: bool,
    },
    Junk {
        name: String,
        tag: String,
        filter: String,
        header: String,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))], 0u64..3_000, prop::collection::vec(any::<u8>(), 0..64), ".{0,12}", prop_oneof![3 => Just(0), 1 => 1i32..=9])
            .prop_map(|(tag, delay_ms, payload, key, priority)| Op::Publish { tag, delay_ms, payload, key, priority }),
        5 => (0usize..2, 1usize..5, prop_oneof![1u64..50, 50u64..5_000])
            .prop_map(|(group, max, lease_ms)| Op::Receive { group, max, lease_ms }),
        3 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        2 => (any::<usize>(), prop::option::of(0u64..3_000)).prop_map(|(pick, delay_ms)| Op::Nack { pick, delay_ms }),
        1 => (any::<usize>(), 1u64..5_000).prop_map(|(pick, lease_ms)| Op::Extend { pick, lease_ms }),
        // Exact retry delays and +-1 ms, so that boundaries get hit, not just crossed.
        3 => prop_oneof![0u64..4_000, Just(1), Just(999), Just(1_000), Just(1_001), Just(1_999), Just(2_000)]
            .prop_map(|ms| Op::Advance { ms }),
        1 => (0usize..2, any::<bool>()).prop_map(|(group, on)| Op::Pause { group, on }),
        1 => (0usize..2, 300u64..5_000, prop::option::of(-6_000i64..3_000), prop::option::of(1u64..6),
               prop_oneof![Just(Missed::CatchUp), Just(Missed::Once), Just(Missed::Skip)],
               prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))])
            .prop_map(|(slot, every_ms, start_ms, repeat, missed, tag)| Op::Schedule { slot, every_ms, start_ms, repeat, missed, tag }),
        1 => (0usize..2).prop_map(|slot| Op::Unschedule { slot }),
        2 => (prop::collection::vec((0usize..4, prop::option::of(prop_oneof![1u64..5_000, Just(1_000), Just(2_000)])), 1..4), prop::bool::weighted(0.8))
            .prop_map(|(seen, commit)| Op::Inbox { seen, commit }),
        1 => (".{0,300}", ".{0,40}", ".{0,40}", ".{0,40}").prop_map(|(name, tag, filter, header)| Op::Junk { name, tag, filter, header }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Pending,
    Inflight,
    Acked,
    Dead,
}

#[derive(Debug, Clone)]
struct Row {
    st: St,
    due: i64,
    attempt: u32,
    token: i64,
    priority: i32,
}

#[derive(Debug, Clone, PartialEq)]
struct Sched {
    every: i64,
    next_at: i64,
    left: Option<i64>,
    fired: i64,
    missed: Missed,
    tag: Option<&'static str>,
}

/// Per schedule slot, the (tick, ticks) of each message a firing publishes.
type Firing = [Vec<(i64, i64)>; 2];

#[derive(Default)]
struct Model {
    now: i64,
    /// Per group: message id -> delivery.
    groups: [BTreeMap<i64, Row>; 2],
    paused: [bool; 2],
    scheds: [Option<Sched>; 2],
    /// The highest id of the topic's messages the model knows; later ones are ticks.
    last_id: i64,
    /// Inbox key -> when it expires: seen again before that, it is a redelivery.
    inbox: BTreeMap<String, i64>,
}

/// Fires every due schedule once, as a receive does: walks its due ticks (at most a
/// chunk), moves it on or ends it, and returns the messages its missed policy gives.
fn fire(scheds: &mut [Option<Sched>; 2], now: i64) -> Firing {
    let mut out: Firing = Default::default();
    for (slot, entry) in scheds.iter_mut().enumerate() {
        let Some(s) = entry.as_mut() else { continue };
        if s.next_at > now {
            continue;
        }
        let chunk = if s.missed == Missed::CatchUp {
            CATCH_UP_CHUNK
        } else {
            WALK_CHUNK
        };
        let (mut ticks, mut t, mut left) = (Vec::new(), s.next_at, s.left);
        let next = loop {
            ticks.push(t);
            if let Some(l) = left.as_mut() {
                *l -= 1;
                if *l <= 0 {
                    break None;
                }
            }
            t += s.every;
            if t > now || ticks.len() >= chunk {
                break Some(t);
            }
        };
        let n = ticks.len() as i64;
        let last = *ticks.last().unwrap();
        let caught_up = next.is_none_or(|t| t > now);
        out[slot] = match s.missed {
            Missed::CatchUp => ticks.iter().map(|&t| (t, 1)).collect(),
            Missed::Once => vec![(last, n)],
            Missed::Skip if caught_up && now - last <= SKIP_GRACE.as_millis() as i64 => {
                vec![(last, 1)]
            }
            Missed::Skip => Vec::new(),
        };
        match next {
            None => *entry = None,
            Some(to) => {
                s.next_at = to;
                s.fired += n;
                s.left = s.left.map(|l| l - n);
            }
        }
    }
    out
}

impl Model {
    fn claim(&mut self, g: usize, max: usize, lease: i64) -> Vec<i64> {
        if self.paused[g] {
            return Vec::new();
        }
        let now = self.now;
        // Every ready delivery (pending and due, or an expired lease), highest priority
        // first, then by due time, then publish order.
        let mut due: Vec<(Reverse<i32>, i64, i64)> = self.groups[g]
            .iter()
            .filter(|(_, r)| matches!(r.st, St::Pending | St::Inflight) && r.due <= now)
            .map(|(id, r)| (Reverse(r.priority), r.due, *id))
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (_, _, id) in due {
            if out.len() == max {
                break;
            }
            let r = self.groups[g].get_mut(&id).unwrap();
            if r.st == St::Inflight && r.attempt as usize > RETRIES.len() {
                r.st = St::Dead;
                continue;
            }
            r.st = St::Inflight;
            r.attempt += 1;
            r.due = now + lease;
            out.push(id);
        }
        out
    }

    fn stats(&self, g: usize) -> (u64, u64, u64, u64, u64) {
        let (mut ready, mut scheduled, mut inflight, mut retrying, mut dead) = (0, 0, 0, 0, 0);
        for r in self.groups[g].values() {
            match r.st {
                St::Pending if r.due <= self.now => ready += 1,
                St::Pending if r.attempt > 0 => retrying += 1,
                St::Pending => scheduled += 1,
                St::Inflight if r.due <= self.now => ready += 1,
                St::Inflight => inflight += 1,
                St::Dead => dead += 1,
                St::Acked => {}
            }
        }
        (ready, scheduled, inflight, retrying, dead)
    }
}

impl Model {
    /// A message of the topic: a delivery in every group whose filter matches its tag.
    fn add(&mut self, id: i64, tag: Option<&str>, due: i64, priority: i32) {
        for (g, (_, filter)) in GROUPS.iter().enumerate() {
            if *filter == "*" || Some(*filter) == tag {
                self.groups[g].insert(
                    id,
                    Row {
                        st: St::Pending,
                        due,
                        attempt: 0,
                        token: 0,
                        priority,
                    },
                );
            }
        }
        self.last_id = self.last_id.max(id);
    }
}

/// The messages a firing published (those of the topic the model does not know yet):
/// they must be exactly the expected ticks, and become deliveries due now.
fn discover(t: &TestQueue, m: &mut Model, expected: &Firing) -> Result<(), TestCaseError> {
    let mut found: Firing = Default::default();
    for info in t.q.messages_after("t", m.last_id, 10_000).unwrap() {
        let header = |h: &str| info.headers.get(h).cloned().unwrap_or_default();
        let slot = SCHEDULES.iter().position(|s| *s == header(HEADER_SCHEDULE));
        prop_assert!(slot.is_some(), "message {} is no schedule's", info.id);
        let tick: i64 = header(HEADER_TICK).parse().unwrap();
        let ticks: i64 = header(HEADER_TICKS).parse().unwrap();
        found[slot.unwrap()].push((tick, ticks));
        prop_assert_eq!(info.priority, 0);
        m.add(info.id, info.tag.as_deref(), m.now, 0);
    }
    prop_assert_eq!(&found, expected);
    Ok(())
}

/// The file's schedules as the model holds them (missed policy and tag compared too).
fn schedules_of(t: &TestQueue) -> [Option<Sched>; 2] {
    let mut out: [Option<Sched>; 2] = Default::default();
    for s in t.q.schedules().unwrap() {
        let slot = SCHEDULES.iter().position(|n| *n == s.name).unwrap();
        out[slot] = Some(Sched {
            every: s.every.unwrap().as_millis() as i64,
            next_at: s.next_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64,
            left: s.repeat_left.map(|l| l as i64),
            fired: s.fired as i64,
            missed: s.missed,
            tag: match s.tag.as_deref() {
                Some("a") => Some("a"),
                Some("b") => Some("b"),
                _ => None,
            },
        });
    }
    out
}

fn documented(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidArgument | ErrorKind::NotFound | ErrorKind::LeaseLost
    )
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let t = TestQueue::new();
    let policy = RetryPolicy::fixed(
        RETRIES
            .iter()
            .map(|&ms| Duration::from_millis(ms as u64))
            .collect(),
    )
    .unwrap();
    for (name, filter) in GROUPS {
        t.sub_with(
            name,
            "t",
            SubscribeOptions::new().tags(filter).retry(policy.clone()),
        );
    }
    let mut m = Model {
        now: t.clock.now_ms(),
        ..Default::default()
    };
    let mut held: Vec<(usize, Delivery)> = Vec::new();
    for op in ops {
        match op {
            Op::Publish {
                tag,
                delay_ms,
                payload,
                key,
                priority,
            } => {
                let mut o = PublishOptions::new()
                    .delay(Duration::from_millis(delay_ms))
                    .priority(priority);
                if let Some(tag) = tag {
                    o = o.tag(tag);
                }
                if !key.is_empty() && !key.contains('\0') {
                    o = o.key(key);
                }
                let id = t.q.publish("t", &payload, o).unwrap();
                m.add(id, tag, m.now + delay_ms as i64, priority);
            }
            Op::Receive {
                group,
                max,
                lease_ms,
            } => {
                let got =
                    t.q.receive(
                        GROUPS[group].0,
                        ReceiveOptions::new()
                            .max(max)
                            .lease(Duration::from_millis(lease_ms)),
                    )
                    .unwrap();
                // A receive fires the due schedule ticks first, so it may take them.
                let ticks = fire(&mut m.scheds, m.now);
                discover(&t, &mut m, &ticks)?;
                let expected = m.claim(group, max, lease_ms as i64);
                let ids: Vec<i64> = got.iter().map(|d| d.message_id).collect();
                prop_assert_eq!(&ids, &expected);
                for d in got {
                    let row = m.groups[group].get_mut(&d.message_id).unwrap();
                    prop_assert_eq!(d.attempt, row.attempt);
                    row.token = d.lease_token;
                    held.push((group, d));
                }
            }
            Op::Ack { pick } | Op::Nack { pick, .. } | Op::Extend { pick, .. }
                if held.is_empty() =>
            {
                let _ = pick;
            }
            Op::Ack { pick } => {
                let (g, d) = held.remove(pick % held.len());
                let r = m.groups[g].get_mut(&d.message_id).unwrap();
                let live = r.st == St::Inflight && r.token == d.lease_token;
                match t.q.ack(&d) {
                    Ok(()) => {
                        prop_assert!(live, "ack of a stale delivery succeeded");
                        r.st = St::Acked;
                    }
                    Err(e) => {
                        prop_assert!(!live, "ack of a live delivery failed: {e}");
                        prop_assert_eq!(e.kind(), ErrorKind::LeaseLost);
                    }
                }
            }
            Op::Nack { pick, delay_ms } => {
                let (g, d) = held.remove(pick % held.len());
                let r = m.groups[g].get_mut(&d.message_id).unwrap();
                let live = r.st == St::Inflight && r.token == d.lease_token;
                match t.q.nack(&d, "model", delay_ms.map(Duration::from_millis)) {
                    Ok(()) => {
                        prop_assert!(live, "nack of a stale delivery succeeded");
                        let n = r.attempt as usize;
                        if n > RETRIES.len() {
                            r.st = St::Dead;
                        } else {
                            r.st = St::Pending;
                            r.due = m.now + delay_ms.map_or(RETRIES[n - 1], |d| d as i64);
                        }
                    }
                    Err(e) => {
                        prop_assert!(!live, "nack of a live delivery failed: {e}");
                        prop_assert_eq!(e.kind(), ErrorKind::LeaseLost);
                    }
                }
            }
            Op::Extend { pick, lease_ms } => {
                let i = pick % held.len();
                let (g, d) = &mut held[i];
                let r = m.groups[*g].get_mut(&d.message_id).unwrap();
                let live = r.st == St::Inflight && r.token == d.lease_token;
                match t.q.extend(d, Duration::from_millis(lease_ms)) {
                    Ok(()) => {
                        prop_assert!(live, "extend of a stale delivery succeeded");
                        r.due = m.now + lease_ms as i64;
                    }
                    Err(e) => {
                        prop_assert!(!live, "extend of a live delivery failed: {e}");
                        prop_assert_eq!(e.kind(), ErrorKind::LeaseLost);
                    }
                }
            }
            Op::Advance { ms } => {
                t.advance(Duration::from_millis(ms));
                m.now += ms as i64;
            }
            Op::Pause { group, on } => {
                let name = GROUPS[group].0;
                if on {
                    t.q.pause(name).unwrap();
                } else {
                    t.q.resume(name).unwrap();
                }
                m.paused[group] = on;
            }
            Op::Schedule {
                slot,
                every_ms,
                start_ms,
                repeat,
                missed,
                tag,
            } => {
                let mut o = ScheduleOptions::new()
                    .every(Duration::from_millis(every_ms))
                    .missed(missed);
                o.key = Some(format!("sched-{slot}"));
                o.tag = tag.map(str::to_owned);
                if let Some(n) = repeat {
                    o = o.repeat(n);
                }
                let first = match start_ms {
                    Some(ms) => {
                        o = o.start_at(UNIX_EPOCH + Duration::from_millis((m.now + ms) as u64));
                        m.now + ms
                    }
                    None => m.now + every_ms as i64,
                };
                t.q.schedule(SCHEDULES[slot], "t", "tick", o).unwrap();
                m.scheds[slot] = Some(Sched {
                    every: every_ms as i64,
                    next_at: first,
                    left: repeat.map(|n| n as i64),
                    fired: 0,
                    missed,
                    tag,
                });
            }
            Op::Inbox { seen, commit } => {
                let mut tx = t.q.begin().unwrap();
                let mut after = m.inbox.clone();
                for (k, window_ms) in seen {
                    let key = format!("inbox-{k}");
                    let window = window_ms.map(Duration::from_millis);
                    let first = tx.inbox(&key, window).unwrap();
                    let lasts = window.unwrap_or(ferrymq::defaults::INBOX_WINDOW);
                    let expected = after.get(&key).is_none_or(|&expires| expires <= m.now);
                    prop_assert_eq!(first, expected, "inbox {}", key);
                    if expected {
                        after.insert(key, m.now + lasts.as_millis() as i64);
                    }
                }
                if commit {
                    tx.commit().unwrap();
                    m.inbox = after;
                } else {
                    tx.rollback().unwrap();
                }
            }
            Op::Unschedule { slot } => match t.q.unschedule(SCHEDULES[slot]) {
                Ok(()) => {
                    prop_assert!(m.scheds[slot].is_some(), "unschedule of nothing succeeded");
                    m.scheds[slot] = None;
                }
                Err(e) => {
                    prop_assert!(m.scheds[slot].is_none(), "unschedule failed: {e}");
                    prop_assert_eq!(e.kind(), ErrorKind::NotFound);
                }
            },
            Op::Junk {
                name,
                tag,
                filter,
                header,
            } => {
                // A junk group subscribed here and received from fires the due ticks.
                let mut if_fired = m.scheds.clone();
                let ticks = fire(&mut if_fired, m.now);
                let results = [
                    t.q.publish(&name, "x", PublishOptions::new().tag(tag.clone()))
                        .map(|_| ()),
                    t.q.publish(
                        "t-junk",
                        "x",
                        PublishOptions::new().header(header.clone(), name.clone()),
                    )
                    .map(|_| ()),
                    t.q.subscribe(
                        &name,
                        &format!("{name}-t"),
                        SubscribeOptions::new().tags(filter.clone()),
                    ),
                    t.q.receive(&name, ReceiveOptions::new()).map(|_| ()),
                    t.q.find(&name, &tag).map(|_| ()),
                    t.q.dead_letters(&name, 10).map(|_| ()),
                    t.q.redrive(&name, Some(&[1, -1, i64::MAX])).map(|_| ()),
                    t.q.pause(&name),
                    t.q.resume(&name),
                    // A zero window is refused whatever the key, before anything is seen.
                    t.q.transaction(|tx| tx.inbox(&name, Some(Duration::ZERO)))
                        .map(|_| ()),
                ];
                for r in results {
                    if let Err(e) = r {
                        prop_assert!(documented(e.kind()), "undocumented error {e}");
                    }
                }
                let listed = schedules_of(&t);
                if listed != m.scheds && listed == if_fired {
                    m.scheds = if_fired;
                    discover(&t, &mut m, &ticks)?;
                } else {
                    discover(&t, &mut m, &Firing::default())?;
                }
            }
        }
        let stats = t.q.stats().unwrap();
        for (g, (name, _)) in GROUPS.iter().enumerate() {
            let s = &stats.groups[*name];
            prop_assert_eq!(
                (s.ready, s.scheduled, s.inflight, s.retrying, s.dead),
                m.stats(g),
                "group {}",
                name
            );
            prop_assert_eq!(s.paused, m.paused[g], "group {} paused", name);
        }
        prop_assert_eq!(schedules_of(&t), m.scheds.clone());
    }
    Ok(())
}

#[test]
fn arbitrary_operation_sequences_match_the_model() {
    let cases: u32 = std::env::var("FERRYMQ_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_122);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&prop::collection::vec(op(), 1..150), run)
        .unwrap_or_else(|e| panic!("{e}"));
}
