//! Plain objects returned by stats(), message(), find(), halfMessages() and
//! deadLetters(). Times are milliseconds here; `index.js` makes `Date`s of the `...Ms`
//! instants.

use crate::convert::epoch_ms;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use std::collections::HashMap;

#[napi(object)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub started_at_ms: f64,
    pub ended_at_ms: Option<f64>,
    /// "inflight" | "acked" | "nacked" | "expired" ...
    pub outcome: String,
    pub error: Option<String>,
}

#[napi(object)]
pub struct DeliveryInfo {
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub history: Vec<AttemptRecord>,
}

#[napi(object)]
pub struct CheckRecord {
    pub at_ms: f64,
    pub resolution: String,
    pub error: Option<String>,
}

#[napi(object)]
pub struct MessageInfo {
    pub id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Buffer,
    pub headers: HashMap<String, String>,
    pub ordering_key: Option<String>,
    pub published_at_ms: f64,
    pub deliver_at_ms: f64,
    pub state: String,
    pub priority: i32,
    pub deliveries: HashMap<String, DeliveryInfo>,
    pub checks: Vec<CheckRecord>,
}

#[napi(object)]
pub struct DeadLetter {
    pub message_id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Buffer,
    pub headers: HashMap<String, String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub died_at_ms: f64,
    pub history: Vec<AttemptRecord>,
}

/// `Queue#topics()`: one topic, its kept messages, ready deliveries and groups.
#[napi(object)]
pub struct TopicInfo {
    pub name: String,
    pub messages: i64,
    pub ready: i64,
    pub groups: Vec<String>,
}

impl From<ferrymq::TopicInfo> for TopicInfo {
    fn from(t: ferrymq::TopicInfo) -> Self {
        TopicInfo {
            name: t.name,
            messages: clamp(t.messages),
            ready: clamp(t.ready),
            groups: t.groups,
        }
    }
}

#[napi(object)]
pub struct TopicStats {
    pub messages: i64,
    pub half: i64,
}

#[napi(object)]
pub struct GroupStats {
    pub topic: String,
    pub ready: i64,
    pub scheduled: i64,
    pub inflight: i64,
    pub retrying: i64,
    pub dead: i64,
    pub oldest_ready_age_ms: Option<f64>,
    pub paused: bool,
}

#[napi(object)]
pub struct Stats {
    pub topics: HashMap<String, TopicStats>,
    pub groups: HashMap<String, GroupStats>,
}

fn attempts(h: Vec<ferrymq::AttemptRecord>) -> Vec<AttemptRecord> {
    h.into_iter()
        .map(|a| AttemptRecord {
            attempt: a.attempt,
            started_at_ms: epoch_ms(a.started_at),
            ended_at_ms: a.ended_at.map(epoch_ms),
            outcome: a.outcome.as_str().to_owned(),
            error: a.error,
        })
        .collect()
}

pub fn message_info(m: ferrymq::MessageInfo) -> MessageInfo {
    MessageInfo {
        id: m.id,
        topic: m.topic,
        tag: m.tag,
        key: m.key,
        payload: m.payload.into(),
        headers: m.headers.into_iter().collect(),
        ordering_key: m.ordering_key,
        published_at_ms: epoch_ms(m.published_at),
        deliver_at_ms: epoch_ms(m.deliver_at),
        state: m.state.as_str().to_owned(),
        priority: m.priority,
        deliveries: m
            .deliveries
            .into_iter()
            .map(|(g, d)| {
                (
                    g,
                    DeliveryInfo {
                        state: d.state.as_str().to_owned(),
                        attempts: d.attempts,
                        last_error: d.last_error,
                        history: attempts(d.history),
                    },
                )
            })
            .collect(),
        checks: m
            .checks
            .into_iter()
            .map(|c| CheckRecord {
                at_ms: epoch_ms(c.at),
                resolution: c.resolution.as_str().to_owned(),
                error: c.error,
            })
            .collect(),
    }
}

pub fn dead_letter(d: ferrymq::DeadLetter) -> DeadLetter {
    DeadLetter {
        message_id: d.message_id,
        topic: d.topic,
        tag: d.tag,
        key: d.key,
        payload: d.payload.into(),
        headers: d.headers.into_iter().collect(),
        attempts: d.attempts,
        last_error: d.last_error,
        died_at_ms: epoch_ms(d.died_at),
        history: attempts(d.history),
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn stats(s: ferrymq::Stats) -> Stats {
    Stats {
        topics: s
            .topics
            .into_iter()
            .map(|(k, t)| {
                (
                    k,
                    TopicStats {
                        messages: clamp(t.messages),
                        half: clamp(t.half),
                    },
                )
            })
            .collect(),
        groups: s
            .groups
            .into_iter()
            .map(|(k, g)| {
                (
                    k,
                    GroupStats {
                        topic: g.topic,
                        ready: clamp(g.ready),
                        scheduled: clamp(g.scheduled),
                        inflight: clamp(g.inflight),
                        retrying: clamp(g.retrying),
                        dead: clamp(g.dead),
                        oldest_ready_age_ms: g.oldest_ready_age.map(|d| d.as_millis() as f64),
                        paused: g.paused,
                    },
                )
            })
            .collect(),
    }
}

#[napi(object)]
pub struct ScheduleInfo {
    pub name: String,
    pub topic: String,
    pub cron: Option<String>,
    pub every_ms: Option<f64>,
    pub tz: Option<String>,
    pub next_at_ms: f64,
    pub fired: f64,
    pub repeat_left: Option<f64>,
    pub missed: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
}

pub fn schedule_info(s: ferrymq::ScheduleInfo) -> ScheduleInfo {
    ScheduleInfo {
        every_ms: s.every.map(|d| d.as_millis() as f64),
        next_at_ms: epoch_ms(s.next_at),
        fired: s.fired as f64,
        repeat_left: s.repeat_left.map(|n| n as f64),
        missed: s.missed.as_str().to_owned(),
        headers: s.headers.into_iter().collect(),
        name: s.name,
        topic: s.topic,
        cron: s.cron,
        tz: s.tz,
        tag: s.tag,
        key: s.key,
    }
}

/// `Queue#audit()`: one operator action of the audit trail.
#[napi(object)]
pub struct AuditRecord {
    pub id: i64,
    pub at_ms: f64,
    pub action: String,
    pub target: String,
    /// JSON text.
    pub detail: Option<String>,
    pub pid: i64,
    pub process: String,
    pub host: String,
    pub user: String,
    pub reason: Option<String>,
}

pub fn audit_record(r: ferrymq::AuditRecord) -> AuditRecord {
    AuditRecord {
        id: r.id,
        at_ms: epoch_ms(r.at),
        action: r.action,
        target: r.target,
        detail: r.detail,
        pid: r.pid,
        process: r.process,
        host: r.host,
        user: r.user,
        reason: r.reason,
    }
}
