//! What calls return: deliveries, message and dead-letter views, statistics. Plain data;
//! the bindings convert these field by field.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// One attempt to hand one message to one consumer group, under a lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub message_id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    /// The ordering key of the message: deliveries of one key reach a consumer group in order.
    pub ordering_key: Option<String>,
    /// 1 for the first delivery, 2 for the first retry, ...
    pub attempt: u32,
    pub published_at: SystemTime,
    pub consumer_group: String,
    /// Identifies this attempt; ack, nack and extend must present it.
    pub lease_token: i64,
    pub lease_until: SystemTime,
    /// The message's priority, 0 to 9.
    pub priority: i32,
    pub(crate) group_id: i64,
}

impl Delivery {
    /// What settling needs (ids, token, ordering key) without the payload and headers,
    /// which may be megabytes: for writes queued behind group commit.
    pub(crate) fn handle(&self) -> Delivery {
        Delivery {
            message_id: self.message_id,
            topic: String::new(),
            tag: None,
            key: None,
            payload: Vec::new(),
            headers: BTreeMap::new(),
            ordering_key: self.ordering_key.clone(),
            attempt: self.attempt,
            published_at: self.published_at,
            consumer_group: self.consumer_group.clone(),
            lease_token: self.lease_token,
            lease_until: self.lease_until,
            priority: self.priority,
            group_id: self.group_id,
        }
    }
}

/// RocketMQ's transaction states for half messages; `Committed` for ordinary messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    Half,
    Committed,
    RolledBack,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Half => "half",
            MessageState::Committed => "committed",
            MessageState::RolledBack => "rolled_back",
        }
    }
}

/// The inverse of [`MessageState::as_str`], for bindings that take the state as text.
impl std::str::FromStr for MessageState {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "half" => Ok(MessageState::Half),
            "committed" => Ok(MessageState::Committed),
            "rolled_back" => Ok(MessageState::RolledBack),
            _ => Err(crate::Error::InvalidArgument(format!(
                "message state must be \"half\", \"committed\" or \"rolled_back\", not {s:?}"
            ))),
        }
    }
}

/// Where one message stands in one consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Deliverable now.
    Ready,
    /// Waiting for `deliver_at`, a retry delay, or its predecessor in an ordered group.
    Scheduled,
    Inflight,
    Acked,
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Ready => "ready",
            DeliveryState::Scheduled => "scheduled",
            DeliveryState::Inflight => "inflight",
            DeliveryState::Acked => "acked",
            DeliveryState::Dead => "dead",
        }
    }
}

/// How one attempt ended (or that it is still running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    Inflight,
    Acked,
    Nacked,
    LeaseExpired,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Inflight => "inflight",
            AttemptOutcome::Acked => "acked",
            AttemptOutcome::Nacked => "nacked",
            AttemptOutcome::LeaseExpired => "lease_expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub started_at: SystemTime,
    pub ended_at: Option<SystemTime>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryInfo {
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// One entry per attempt, oldest first.
    pub history: Vec<AttemptRecord>,
}

/// The answer of a checker about a half message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Commit,
    Rollback,
    Unknown,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Commit => "commit",
            Resolution::Rollback => "rollback",
            Resolution::Unknown => "unknown",
        }
    }
}

/// One check-back of a half message.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRecord {
    pub at: SystemTime,
    pub resolution: Resolution,
    /// Set when the checker failed; the check counted as unknown.
    pub error: Option<String>,
}

/// Everything known about one message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    pub id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    pub ordering_key: Option<String>,
    pub published_at: SystemTime,
    pub deliver_at: SystemTime,
    pub state: MessageState,
    /// 0 to 9 (`PublishOptions::priority`).
    pub priority: i32,
    /// Per consumer group; empty for half messages and messages no group matched.
    pub deliveries: BTreeMap<String, DeliveryInfo>,
    /// Check-backs of a half message, oldest first.
    pub checks: Vec<CheckRecord>,
}

/// A delivery that used up its retries, kept for an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub message_id: i64,
    pub topic: String,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub died_at: SystemTime,
    pub history: Vec<AttemptRecord>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicStats {
    /// Committed messages kept in the file (acked ones stay until `purge_acked`).
    pub messages: u64,
    /// Half messages still undecided.
    pub half: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupStats {
    pub topic: String,
    pub ready: u64,
    /// Delayed first deliveries and ordered messages waiting for their predecessor.
    pub scheduled: u64,
    pub inflight: u64,
    /// Waiting out a retry delay.
    pub retrying: u64,
    pub dead: u64,
    /// How long the oldest ready delivery has been ready.
    pub oldest_ready_age: Option<Duration>,
    /// Whether `pause` holds the group: its receives return nothing until `resume`.
    pub paused: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub topics: BTreeMap<String, TopicStats>,
    pub groups: BTreeMap<String, GroupStats>,
}

/// What `Queue::check_file` found: SQLite's integrity check and the file's marks.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCheck {
    /// The lines of `PRAGMA integrity_check`: `["ok"]` for a sound file.
    pub integrity: Vec<String>,
    /// `PRAGMA user_version`: the schema version the file is at.
    pub schema_version: i64,
    /// The schema version this build writes.
    pub expected_schema_version: i64,
    /// `PRAGMA application_id` ("Frry", 0x46727279, for a ferrymq file).
    pub application_id: i64,
    pub expected_application_id: i64,
}

impl FileCheck {
    /// Sound, at this build's schema version and marked as ferrymq's.
    pub fn ok(&self) -> bool {
        self.integrity == ["ok"]
            && self.schema_version == self.expected_schema_version
            && self.application_id == self.expected_application_id
    }
}
