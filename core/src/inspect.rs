//! Looking at the file: statistics, the topics (`Queue::topics` and its record live here), one
//! message, messages by key, messages after an id (following a topic), half messages, the
//! integrity check of the file. Each is one read transaction (a consistent snapshot; no write lock).

use crate::api::{FileCheck, MessageInfo, Stats, TopicInfo};
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::model::MessageState;
use crate::queue::Queue;
use crate::store;
use crate::validate;
use std::sync::Arc;

/// Counts per topic and per consumer group.
pub(crate) fn stats(inner: &Arc<Inner>) -> Result<Stats> {
    let now = inner.now();
    inner.read(|c| {
        let mut stats = Stats::default();
        for (id, name) in store::inspect::topics(c)? {
            stats
                .topics
                .insert(name, store::inspect::topic_stats(c, id)?);
        }
        for (id, name, topic) in store::groups::all(c)? {
            stats
                .groups
                .insert(name, store::inspect::group_stats(c, id, topic, now)?);
        }
        Ok(stats)
    })
}

// A read-only verb and its record live with their capability; `queue.rs` keeps the
// verbs that need more than one module.
impl Queue {
    /// Every topic of the file by name, with its kept messages, the deliveries ready
    /// over its consumer groups, and those groups.
    pub fn topics(&self) -> Result<Vec<TopicInfo>> {
        topics(&self.inner)
    }
}

/// `stats` folded per topic, in name order: one read, the same counts.
fn topics(inner: &Arc<Inner>) -> Result<Vec<TopicInfo>> {
    let stats = stats(inner)?;
    let mut out: Vec<TopicInfo> = stats
        .topics
        .into_iter()
        .map(|(name, t)| TopicInfo {
            name,
            messages: t.messages,
            ready: 0,
            groups: Vec::new(),
        })
        .collect();
    for (group, g) in stats.groups {
        if let Some(t) = out.iter_mut().find(|t| t.name == g.topic) {
            t.ready += g.ready;
            t.groups.push(group);
        }
    }
    Ok(out)
}

/// One message with its state in every group and its attempt and check history.
pub(crate) fn message(inner: &Arc<Inner>, id: i64) -> Result<MessageInfo> {
    let now = inner.now();
    inner.read(|c| store::inspect::message(c, id, now))
}

/// Messages of `topic` with business key `key`, oldest first (at most 10,000).
pub(crate) fn find(inner: &Arc<Inner>, topic: &str, key: &str) -> Result<Vec<MessageInfo>> {
    validate::name("topic", topic)?;
    validate::text("key", key, validate::MAX_KEY_LEN)?;
    let now = inner.now();
    inner.read(|c| {
        let Some(topic_id) = store::publish::find_topic(c, topic)? else {
            return Ok(Vec::new());
        };
        store::inspect::ids_by_key(c, topic_id, key, validate::MAX_LIST)?
            .into_iter()
            .map(|id| store::inspect::message(c, id, now))
            .collect()
    })
}

/// Half messages still undecided (`Some(Half)`), rolled back (`Some(RolledBack)`), or
/// both (`None`): the `limit` oldest (lowest ids) of those, oldest first. With `None`
/// both states are one list in id order, so an old rolled-back message comes before a
/// newer undecided one. Rolled-back messages stay listed until `purge_acked` removes
/// them after its retention period.
pub(crate) fn half_messages(
    inner: &Arc<Inner>,
    state: Option<MessageState>,
    limit: usize,
) -> Result<Vec<MessageInfo>> {
    validate::limit(limit)?;
    let states = match state {
        None => vec![store::HALF, store::ROLLED_BACK],
        Some(MessageState::Half) => vec![store::HALF],
        Some(MessageState::RolledBack) => vec![store::ROLLED_BACK],
        Some(MessageState::Committed) => {
            return Err(Error::invalid(
                "half_messages lists half or rolled_back messages",
            ));
        }
    };
    let now = inner.now();
    inner.read(|c| {
        // The `limit` oldest of the union are among the `limit` oldest of each state.
        let mut ids = Vec::new();
        for s in states {
            ids.extend(store::half::ids_in_state(c, s, limit)?);
        }
        ids.sort_unstable();
        ids.truncate(limit);
        ids.into_iter()
            .map(|id| store::inspect::message(c, id, now))
            .collect()
    })
}

/// The committed messages of `topic` with ids above `after`, oldest first, at most
/// `limit`: how a reader follows a topic (or exports it) without claiming anything.
/// A half message committed later keeps its lower id, so a reader already past it does
/// not see it.
pub(crate) fn messages_after(
    inner: &Arc<Inner>,
    topic: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<MessageInfo>> {
    validate::name("topic", topic)?;
    validate::limit(limit)?;
    let now = inner.now();
    inner.read(|c| {
        let Some(topic_id) = store::publish::find_topic(c, topic)? else {
            return Ok(Vec::new());
        };
        store::inspect::ids_after(c, topic_id, after, limit)?
            .into_iter()
            .map(|id| store::inspect::message(c, id, now))
            .collect()
    })
}

/// The highest message id of `topic` (`None` for a topic without messages): where a
/// reader that follows only new messages starts.
pub(crate) fn last_message_id(inner: &Arc<Inner>, topic: &str) -> Result<Option<i64>> {
    validate::name("topic", topic)?;
    inner.read(|c| match store::publish::find_topic(c, topic)? {
        Some(topic_id) => store::inspect::last_id(c, topic_id),
        None => Ok(None),
    })
}

/// SQLite's integrity check of the whole file, with its schema version and application
/// id. One read transaction; a large file takes a while (it reads every page).
pub(crate) fn check_file(inner: &Arc<Inner>) -> Result<FileCheck> {
    let (integrity, schema_version, application_id) = inner.read(store::schema::integrity)?;
    Ok(FileCheck {
        integrity,
        schema_version,
        expected_schema_version: i64::from(store::schema::VERSION),
        application_id,
        expected_application_id: i64::from(store::schema::APPLICATION_ID),
    })
}
