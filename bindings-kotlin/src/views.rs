//! Read-only snapshots (stats, message info, dead letters) and the enums they use, as
//! uniffi records: built once from the core's structs, field by field. The Kotlin layer
//! re-exports them under the same names in package `ferrymq`.

use crate::convert::count;
use std::collections::HashMap;
use std::time::SystemTime;

#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Resolution {
    Commit,
    Rollback,
    Unknown,
}

impl From<Resolution> for ferrymq::Resolution {
    fn from(r: Resolution) -> Self {
        match r {
            Resolution::Commit => ferrymq::Resolution::Commit,
            Resolution::Rollback => ferrymq::Resolution::Rollback,
            Resolution::Unknown => ferrymq::Resolution::Unknown,
        }
    }
}

impl From<ferrymq::Resolution> for Resolution {
    fn from(r: ferrymq::Resolution) -> Self {
        match r {
            ferrymq::Resolution::Commit => Resolution::Commit,
            ferrymq::Resolution::Rollback => Resolution::Rollback,
            ferrymq::Resolution::Unknown => Resolution::Unknown,
        }
    }
}

/// RocketMQ's transaction states; `Committed` for ordinary messages.
#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum MessageState {
    Half,
    Committed,
    RolledBack,
}

impl From<ferrymq::MessageState> for MessageState {
    fn from(s: ferrymq::MessageState) -> Self {
        match s {
            ferrymq::MessageState::Half => MessageState::Half,
            ferrymq::MessageState::Committed => MessageState::Committed,
            ferrymq::MessageState::RolledBack => MessageState::RolledBack,
        }
    }
}

impl From<MessageState> for ferrymq::MessageState {
    fn from(s: MessageState) -> Self {
        match s {
            MessageState::Half => ferrymq::MessageState::Half,
            MessageState::Committed => ferrymq::MessageState::Committed,
            MessageState::RolledBack => ferrymq::MessageState::RolledBack,
        }
    }
}

#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeliveryState {
    Ready,
    Scheduled,
    Inflight,
    Acked,
    Dead,
}

impl From<ferrymq::DeliveryState> for DeliveryState {
    fn from(s: ferrymq::DeliveryState) -> Self {
        match s {
            ferrymq::DeliveryState::Ready => DeliveryState::Ready,
            ferrymq::DeliveryState::Scheduled => DeliveryState::Scheduled,
            ferrymq::DeliveryState::Inflight => DeliveryState::Inflight,
            ferrymq::DeliveryState::Acked => DeliveryState::Acked,
            ferrymq::DeliveryState::Dead => DeliveryState::Dead,
        }
    }
}

#[derive(uniffi::Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AttemptOutcome {
    Inflight,
    Acked,
    Nacked,
    LeaseExpired,
}

impl From<ferrymq::AttemptOutcome> for AttemptOutcome {
    fn from(s: ferrymq::AttemptOutcome) -> Self {
        match s {
            ferrymq::AttemptOutcome::Inflight => AttemptOutcome::Inflight,
            ferrymq::AttemptOutcome::Acked => AttemptOutcome::Acked,
            ferrymq::AttemptOutcome::Nacked => AttemptOutcome::Nacked,
            ferrymq::AttemptOutcome::LeaseExpired => AttemptOutcome::LeaseExpired,
        }
    }
}

#[derive(uniffi::Record)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub started_at: SystemTime,
    pub ended_at: Option<SystemTime>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
}

fn history(h: Vec<ferrymq::AttemptRecord>) -> Vec<AttemptRecord> {
    h.into_iter()
        .map(|a| AttemptRecord {
            attempt: a.attempt,
            started_at: a.started_at,
            ended_at: a.ended_at,
            outcome: a.outcome.into(),
            error: a.error,
        })
        .collect()
}

/// Where one message stands in one consumer group.
#[derive(uniffi::Record)]
pub struct DeliveryInfo {
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub history: Vec<AttemptRecord>,
}

#[derive(uniffi::Record)]
pub struct CheckRecord {
    pub at: SystemTime,
    pub resolution: Resolution,
    pub error: Option<String>,
}

/// Everything known about one message.
#[derive(uniffi::Record)]
pub struct MessageInfo {
    pub id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub ordering_key: Option<String>,
    pub published_at: SystemTime,
    pub deliver_at: SystemTime,
    pub state: MessageState,
    /// 0 to 9.
    pub priority: i32,
    pub deliveries: HashMap<String, DeliveryInfo>,
    pub checks: Vec<CheckRecord>,
}

impl From<ferrymq::MessageInfo> for MessageInfo {
    fn from(m: ferrymq::MessageInfo) -> Self {
        MessageInfo {
            id: m.id,
            topic: m.topic,
            tag: m.tag,
            key: m.key,
            payload: m.payload,
            headers: m.headers.into_iter().collect(),
            ordering_key: m.ordering_key,
            published_at: m.published_at,
            deliver_at: m.deliver_at,
            state: m.state.into(),
            priority: m.priority,
            deliveries: m
                .deliveries
                .into_iter()
                .map(|(g, d)| {
                    let info = DeliveryInfo {
                        state: d.state.into(),
                        attempts: d.attempts,
                        last_error: d.last_error,
                        history: history(d.history),
                    };
                    (g, info)
                })
                .collect(),
            checks: m
                .checks
                .into_iter()
                .map(|c| CheckRecord {
                    at: c.at,
                    resolution: c.resolution.into(),
                    error: c.error,
                })
                .collect(),
        }
    }
}

/// A delivery that used up its retries, kept for an operator.
#[derive(uniffi::Record)]
pub struct DeadLetter {
    pub message_id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub died_at: SystemTime,
    pub history: Vec<AttemptRecord>,
}

impl From<ferrymq::DeadLetter> for DeadLetter {
    fn from(d: ferrymq::DeadLetter) -> Self {
        DeadLetter {
            message_id: d.message_id,
            topic: d.topic,
            tag: d.tag,
            key: d.key,
            payload: d.payload,
            headers: d.headers.into_iter().collect(),
            attempts: d.attempts,
            last_error: d.last_error,
            died_at: d.died_at,
            history: history(d.history),
        }
    }
}

/// `Queue.topics()`: one topic, its kept messages, ready deliveries and groups.
#[derive(uniffi::Record)]
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
            messages: count(t.messages),
            ready: count(t.ready),
            groups: t.groups,
        }
    }
}

#[derive(uniffi::Record)]
pub struct TopicStats {
    pub messages: i64,
    pub half: i64,
}

#[derive(uniffi::Record)]
pub struct GroupStats {
    pub topic: String,
    pub ready: i64,
    pub scheduled: i64,
    pub inflight: i64,
    pub retrying: i64,
    pub dead: i64,
    /// Milliseconds; the Kotlin layer adds `oldestReadyAge: kotlin.time.Duration?`.
    pub oldest_ready_age_ms: Option<i64>,
    /// Set by `pause`: receives of the group claim nothing until `resume`.
    pub paused: bool,
}

#[derive(uniffi::Record)]
pub struct Stats {
    pub topics: HashMap<String, TopicStats>,
    pub groups: HashMap<String, GroupStats>,
}

impl From<ferrymq::Stats> for Stats {
    fn from(s: ferrymq::Stats) -> Self {
        Stats {
            topics: s
                .topics
                .into_iter()
                .map(|(k, t)| {
                    let v = TopicStats {
                        messages: count(t.messages),
                        half: count(t.half),
                    };
                    (k, v)
                })
                .collect(),
            groups: s
                .groups
                .into_iter()
                .map(|(k, g)| {
                    let v = GroupStats {
                        topic: g.topic,
                        ready: count(g.ready),
                        scheduled: count(g.scheduled),
                        inflight: count(g.inflight),
                        retrying: count(g.retrying),
                        dead: count(g.dead),
                        oldest_ready_age_ms: g.oldest_ready_age.map(|d| count(d.as_millis())),
                        paused: g.paused,
                    };
                    (k, v)
                })
                .collect(),
        }
    }
}

/// One schedule as `schedules()` lists it; the Kotlin layer adds `every: Duration?`.
#[derive(uniffi::Record)]
pub struct ScheduleInfo {
    pub name: String,
    pub topic: String,
    pub cron: Option<String>,
    pub every_ms: Option<i64>,
    pub tz: Option<String>,
    pub next_at: SystemTime,
    pub fired: i64,
    pub repeat_left: Option<i64>,
    pub missed: crate::convert::Missed,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: HashMap<String, String>,
}

impl From<ferrymq::ScheduleInfo> for ScheduleInfo {
    fn from(s: ferrymq::ScheduleInfo) -> Self {
        ScheduleInfo {
            every_ms: s.every.map(|d| crate::convert::count(d.as_millis())),
            fired: crate::convert::count(s.fired),
            repeat_left: s.repeat_left.map(crate::convert::count),
            missed: s.missed.into(),
            headers: s.headers.into_iter().collect(),
            name: s.name,
            topic: s.topic,
            cron: s.cron,
            tz: s.tz,
            next_at: s.next_at,
            tag: s.tag,
            key: s.key,
        }
    }
}

/// One operator action of the audit trail, as `audit()` lists it.
#[derive(uniffi::Record)]
pub struct AuditRecord {
    pub id: i64,
    pub at: SystemTime,
    pub action: String,
    /// The consumer group, schedule name or message id; empty for the whole file.
    pub target: String,
    /// JSON text: what was asked and what changed.
    pub detail: Option<String>,
    pub pid: i64,
    pub process: String,
    pub host: String,
    pub user: String,
    pub reason: Option<String>,
}

impl From<ferrymq::AuditRecord> for AuditRecord {
    fn from(r: ferrymq::AuditRecord) -> Self {
        AuditRecord {
            id: r.id,
            at: r.at,
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
}
