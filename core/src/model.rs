//! A delivery and the states the records of `api.rs` name. Plain data; the records
//! themselves are declared once in `api.rs`.

use std::collections::BTreeMap;
use std::time::SystemTime;

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
