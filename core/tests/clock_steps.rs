//! What a step of the queue's clock does to leases and delays (the wall clock may jump:
//! NTP, a suspended VM, an operator). Every schedule is an absolute time in the file,
//! compared with the clock of whoever looks, so:
//! - a forward step makes everything due at once: every lease it passed expires (the
//!   message goes out again as the next attempt, and the old holder's ack fails with
//!   `LeaseLost` once it has), every delay it passed ends early;
//! - a backward step postpones everything scheduled before it by the step: a delivery
//!   becomes due after at most its remaining time plus the step, never later, never lost.

mod common;

use common::{TestQueue, text};
use ferrymq::{Clock, ErrorKind, PublishOptions, RetryPolicy, SubscribeOptions};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3_600);

/// Group "g" with a 30 s lease and ten immediate retries (so that no step kills a
/// message); "held" inflight, "delayed" due in 10 minutes, "retrying" nacked for 5
/// minutes, "ready" pending now. Returns the held delivery.
fn a_run_in_progress(t: &TestQueue) -> ferrymq::Delivery {
    t.sub_with(
        "g",
        "t",
        SubscribeOptions::new()
            .lease(Duration::from_secs(30))
            .retry(RetryPolicy::fixed(vec![Duration::ZERO; 10]).unwrap()),
    );
    t.publish("t", "held");
    t.publish("t", "retrying");
    let mut two = t.take("g", 2);
    let retrying = two.pop().unwrap();
    t.q.nack(&retrying, "later", Some(Duration::from_secs(300)))
        .unwrap();
    t.q.publish(
        "t",
        "delayed",
        PublishOptions::new().delay(Duration::from_secs(600)),
    )
    .unwrap();
    t.publish("t", "ready");
    two.pop().unwrap()
}

fn step_back_an_hour(t: &TestQueue) {
    t.clock.set_ms(t.clock.now_ms() - HOUR.as_millis() as i64);
}

fn payloads(t: &TestQueue) -> Vec<(String, u32)> {
    let mut got: Vec<(String, u32)> = t
        .take("g", 100)
        .iter()
        .map(|d| {
            t.q.ack(d).unwrap();
            (text(d), d.attempt)
        })
        .collect();
    got.sort();
    got
}

fn nothing_left(t: &TestQueue) {
    let g = &t.q.stats().unwrap().groups["g"];
    assert_eq!(
        (g.ready, g.scheduled, g.inflight, g.retrying, g.dead),
        (0, 0, 0, 0, 0),
        "{g:?}"
    );
}

#[test]
fn a_forward_step_expires_every_lease_and_delay_it_passes_and_loses_nothing() {
    let t = TestQueue::new();
    let held = a_run_in_progress(&t);
    t.advance(HOUR);
    // Everything is due now: the held message again (its lease ran out on the queue's
    // clock), and the delayed and retrying ones early.
    let got = payloads(&t);
    let want = [("delayed", 1), ("held", 2), ("ready", 1), ("retrying", 2)];
    let want: Vec<(String, u32)> = want.iter().map(|(p, a)| (p.to_string(), *a)).collect();
    assert_eq!(got, want);
    // The first holder lost its lease to the redelivery: its ack changes nothing.
    assert_eq!(t.q.ack(&held).unwrap_err().kind(), ErrorKind::LeaseLost);
    nothing_left(&t);
}

#[test]
fn after_a_forward_step_a_holder_keeps_its_message_until_someone_takes_it_over() {
    let t = TestQueue::new();
    let mut held = a_run_in_progress(&t);
    t.advance(HOUR);
    // The lease is over on the queue's clock, but nobody claimed the message yet: an
    // extend (the worker's heartbeat) or an ack by the holder still counts.
    t.q.extend(&mut held, Duration::from_secs(30)).unwrap();
    let got = payloads(&t);
    assert!(!got.iter().any(|(p, _)| p == "held"), "{got:?}");
    t.q.ack(&held).unwrap();
    nothing_left(&t);
}

#[test]
fn a_backward_step_postpones_what_was_scheduled_before_it_by_at_most_the_step() {
    let t = TestQueue::new();
    let held = a_run_in_progress(&t);
    step_back_an_hour(&t);
    // Scheduled before the step, everything waits for the clock to come back: even the
    // message that was ready (published "later" than the clock now says).
    assert!(t.take("g", 100).is_empty());
    // A message published after the step is due on the new clock, at once.
    t.publish("t", "after");
    assert_eq!(payloads(&t), [("after".to_string(), 1)]);

    // Back to the moment of the step, less 1 ms: still nothing of the old ones.
    t.advance(HOUR - Duration::from_millis(1));
    assert!(t.take("g", 100).is_empty());
    // Each comes due at its own original remaining time plus the step, not later.
    t.advance(Duration::from_millis(1));
    assert_eq!(payloads(&t), [("ready".to_string(), 1)]);
    t.advance(Duration::from_secs(30));
    assert_eq!(payloads(&t), [("held".to_string(), 2)]);
    assert_eq!(t.q.ack(&held).unwrap_err().kind(), ErrorKind::LeaseLost);
    t.advance(Duration::from_secs(270));
    assert_eq!(payloads(&t), [("retrying".to_string(), 2)]);
    t.advance(Duration::from_secs(300));
    assert_eq!(payloads(&t), [("delayed".to_string(), 1)]);
    nothing_left(&t);
}

#[test]
fn during_a_backward_step_a_held_lease_lasts_longer_and_nobody_else_gets_the_message() {
    let t = TestQueue::new();
    let held = a_run_in_progress(&t);
    step_back_an_hour(&t);
    t.advance(HOUR + Duration::from_secs(29));
    let got = payloads(&t);
    assert!(!got.iter().any(|(p, _)| p == "held"), "{got:?}");
    // The holder still has it, 1 h 29 s after it took it.
    t.q.ack(&held).unwrap();
}
