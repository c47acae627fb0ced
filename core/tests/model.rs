//! Hostile input against a model: arbitrary sequences of publish / receive / ack / nack /
//! extend / pause / resume / clock steps and junk calls with arbitrary strings, checked
//! after every step against a small in-memory model of the semantics. No panic, no error
//! outside the documented kinds, and every receive, settle and stats equal to the model's.
//!
//! CI runs a fixed seed; `FERRYMQ_MODEL_CASES=5000 cargo test -p ferrymq --test model`
//! runs more cases (`PROPTEST_RNG_SEED` picks another seed).

mod common;

use common::TestQueue;
use ferrymq::{
    Clock, Delivery, ErrorKind, PublishOptions, ReceiveOptions, RetryPolicy, SubscribeOptions,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::collections::BTreeMap;
use std::time::Duration;

const RETRIES: [i64; 2] = [1_000, 2_000];
const GROUPS: [(&str, &str); 2] = [("all", "*"), ("only-a", "a")];

#[derive(Debug, Clone)]
enum Op {
    Publish {
        tag: Option<&'static str>,
        delay_ms: u64,
        payload: Vec<u8>,
        key: String,
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
    Junk {
        name: String,
        tag: String,
        filter: String,
        header: String,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))], 0u64..3_000, prop::collection::vec(any::<u8>(), 0..64), ".{0,12}")
            .prop_map(|(tag, delay_ms, payload, key)| Op::Publish { tag, delay_ms, payload, key }),
        5 => (0usize..2, 1usize..5, prop_oneof![1u64..50, 50u64..5_000])
            .prop_map(|(group, max, lease_ms)| Op::Receive { group, max, lease_ms }),
        3 => any::<usize>().prop_map(|pick| Op::Ack { pick }),
        2 => (any::<usize>(), prop::option::of(0u64..3_000)).prop_map(|(pick, delay_ms)| Op::Nack { pick, delay_ms }),
        1 => (any::<usize>(), 1u64..5_000).prop_map(|(pick, lease_ms)| Op::Extend { pick, lease_ms }),
        // Exact retry delays and +-1 ms, so that boundaries get hit, not just crossed.
        3 => prop_oneof![0u64..4_000, Just(1), Just(999), Just(1_000), Just(1_001), Just(1_999), Just(2_000)]
            .prop_map(|ms| Op::Advance { ms }),
        1 => (0usize..2, any::<bool>()).prop_map(|(group, on)| Op::Pause { group, on }),
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
}

#[derive(Default)]
struct Model {
    now: i64,
    /// Per group: message id -> delivery.
    groups: [BTreeMap<i64, Row>; 2],
    paused: [bool; 2],
}

impl Model {
    fn claim(&mut self, g: usize, max: usize, lease: i64) -> Vec<i64> {
        if self.paused[g] {
            return Vec::new();
        }
        let now = self.now;
        let mut due: Vec<(i64, i64)> = self.groups[g]
            .iter()
            .filter(|(_, r)| matches!(r.st, St::Pending | St::Inflight) && r.due <= now)
            .map(|(id, r)| (r.due, *id))
            .collect();
        due.sort();
        let mut out = Vec::new();
        for (_, id) in due {
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
            } => {
                let mut o = PublishOptions::new().delay(Duration::from_millis(delay_ms));
                if let Some(tag) = tag {
                    o = o.tag(tag);
                }
                if !key.is_empty() && !key.contains('\0') {
                    o = o.key(key);
                }
                let id = t.q.publish("t", &payload, o).unwrap();
                for (g, (_, filter)) in GROUPS.iter().enumerate() {
                    if *filter == "*" || Some(*filter) == tag {
                        m.groups[g].insert(
                            id,
                            Row {
                                st: St::Pending,
                                due: m.now + delay_ms as i64,
                                attempt: 0,
                                token: 0,
                            },
                        );
                    }
                }
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
            Op::Junk {
                name,
                tag,
                filter,
                header,
            } => {
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
                ];
                for r in results {
                    if let Err(e) = r {
                        prop_assert!(documented(e.kind()), "undocumented error {e}");
                    }
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
