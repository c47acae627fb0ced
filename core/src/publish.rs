//! Publishing: validate everything first, then write the message, its idempotency key and
//! its fan-out in the caller's transaction. Used by `Queue::publish`, batches, the outbox
//! (`Transaction::publish`, `publish_in`) and half messages.

use crate::clock::{duration_to_ms, system_time_to_ms};
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::options::PublishOptions;
use crate::options::{Message, Options};
pub(crate) use crate::store::publish::Matches;
use crate::store::{self, publish::NewMessage};
use crate::validate;
use rusqlite::Connection;
use std::collections::BTreeSet;

/// Stored as committed (deliverable) or half (invisible until committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    Committed,
    Half,
}

pub(crate) fn validate(
    inner: &Inner,
    topic: &str,
    payload: &[u8],
    o: &PublishOptions,
) -> Result<()> {
    validate_with(&inner.opts, topic, payload.len(), o)
}

/// `validate` under a queue's options, or the defaults (`sql::PublishRow`).
pub(crate) fn validate_with(
    opts: &Options,
    topic: &str,
    payload_len: usize,
    o: &PublishOptions,
) -> Result<()> {
    validate::name("topic", topic)?;
    validate::payload(payload_len, opts.max_payload)?;
    if let Some(tag) = &o.tag {
        validate::tag(tag)?;
    }
    if let Some(key) = &o.key {
        validate::text("key", key, validate::MAX_KEY_LEN)?;
    }
    if let Some(ordering_key) = &o.ordering_key {
        validate::text("ordering_key", ordering_key, validate::MAX_KEY_LEN)?;
    }
    if let Some(k) = &o.idempotency_key {
        validate::text("idempotency_key", k, validate::MAX_KEY_LEN)?;
    }
    validate::headers(&o.headers)?;
    validate::priority(o.priority)?;
    if let Some(d) = o.delay {
        validate::bounded_duration("delay", d)?;
    }
    if o.delay.is_some() && o.deliver_at.is_some() {
        return Err(Error::invalid("give either delay or deliver_at, not both"));
    }
    if let Some(at) = o.deliver_at
        && system_time_to_ms(at).is_none()
    {
        return Err(Error::invalid(
            "deliver_at is before 1970 or too far in the future",
        ));
    }
    Ok(())
}

fn deliver_at(o: &PublishOptions, now: i64) -> i64 {
    match (o.delay, o.deliver_at.and_then(system_time_to_ms)) {
        (Some(d), _) => now.saturating_add(duration_to_ms(d)),
        (None, Some(at)) => at,
        (None, None) => now,
    }
}

/// Writes one validated, committed message inside a transaction the caller owns
/// (`Transaction::publish`, `publish_in`): all of it, or nothing if it fails partway.
pub(crate) fn write_in_callers_tx(
    inner: &Inner,
    conn: &Connection,
    topic: &str,
    payload: &[u8],
    o: &PublishOptions,
) -> Result<i64> {
    store::all_or_nothing(conn, |c| {
        let mut matches = Matches::default();
        write(
            inner,
            c,
            &mut matches,
            topic,
            payload,
            o,
            Visibility::Committed,
        )
    })
}

/// Writes validated messages in order, in the caller's transaction. The deliveries of
/// unordered messages are written for the whole batch at its end, in one statement (W2:
/// +15%); ordered ones one by one, since each may be blocked behind the one before.
pub(crate) fn write_batch(
    inner: &Inner,
    conn: &Connection,
    messages: &[Message],
) -> Result<Vec<i64>> {
    let mut matches = Matches::default();
    let mut ids = Vec::with_capacity(messages.len());
    // Groups the batch wrote to, checked against max_ready once every row is in.
    let mut touched = BTreeSet::new();
    // Ids of one transaction grow one by one, so the batch's new unordered messages are
    // exactly the unordered rows between the first and the last of them.
    let mut unordered: Option<(i64, i64)> = None;
    for m in messages {
        let fan_out = if m.options.ordering_key.is_none() {
            FanOut::ByCaller
        } else {
            FanOut::Now
        };
        let (id, new) = write_one(
            inner,
            conn,
            &mut matches,
            (&m.topic, &m.payload, &m.options),
            Visibility::Committed,
            fan_out,
            Some(&mut touched),
        )?;
        if new && fan_out == FanOut::ByCaller {
            unordered = Some(unordered.map_or((id, id), |(first, _)| (first, id)));
        }
        ids.push(id);
    }
    if let Some((first, last)) = unordered {
        store::publish::fan_out_range(conn, first, last)?;
    }
    if let Some(limit) = inner.opts.max_ready {
        // The caller's transaction (or savepoint) undoes the batch on this error.
        let groups: Vec<i64> = touched.into_iter().collect();
        store::publish::refuse_if_full(conn, &groups, limit, limit)?;
    }
    Ok(ids)
}

/// Whether a committed message's deliveries are written with it, or by the caller for a
/// range of messages at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FanOut {
    Now,
    ByCaller,
}

/// Writes one validated message; returns its id, or the first id for a repeated
/// idempotency key. Must run inside a write transaction; `matches` remembers the
/// subscription lookups of that transaction.
pub(crate) fn write(
    inner: &Inner,
    conn: &Connection,
    matches: &mut Matches,
    topic: &str,
    payload: &[u8],
    o: &PublishOptions,
    visibility: Visibility,
) -> Result<i64> {
    let message = (topic, payload, o);
    write_one(inner, conn, matches, message, visibility, FanOut::Now, None).map(|(id, _)| id)
}

/// `write`, also saying whether the message is new (false: an idempotent repeat).
/// Under `max_ready`, a message is refused with `Full` before anything is written, or,
/// with `touched` (a batch), its groups are noted there for the batch to check at its end.
fn write_one(
    inner: &Inner,
    conn: &Connection,
    matches: &mut Matches,
    (topic, payload, o): (&str, &[u8], &PublishOptions),
    visibility: Visibility,
    fan_out: FanOut,
    touched: Option<&mut BTreeSet<i64>>,
) -> Result<(i64, bool)> {
    let now = inner.now();
    let topic_id = inner.topic_id(conn, topic)?;
    if let Some(k) = &o.idempotency_key
        && let Some(first) = store::publish::find_idempotent(conn, topic_id, k, now)?
    {
        return Ok((first, false));
    }
    if let Some(limit) = inner.opts.max_ready {
        // Nothing is written yet (a new topic's row at most, and a new topic has no
        // groups to be full), so a shared commit's other writes go on without this one.
        let groups = matches.groups(conn, topic_id, o.tag.as_deref())?;
        match touched {
            Some(set) => set.extend(groups.iter().copied()),
            None => store::publish::refuse_if_full(conn, groups, limit - 1, limit)?,
        }
    }
    let deliver_at = deliver_at(o, now);
    let (state, check_at) = match visibility {
        Visibility::Committed => (store::COMMITTED, None),
        Visibility::Half => (
            store::HALF,
            Some(now.saturating_add(duration_to_ms(inner.opts.check_after))),
        ),
    };
    // A plain message's groups write their delivery rows when they claim (schema 11);
    // ordered, prioritized, delayed and half messages get theirs now.
    let via_cursor = visibility == Visibility::Committed
        && o.ordering_key.is_none()
        && o.priority == 0
        && deliver_at <= now;
    let id = store::publish::insert_message(
        conn,
        &NewMessage {
            topic_id,
            state,
            tag: o.tag.as_deref(),
            key: o.key.as_deref(),
            headers: store::encode_headers(&o.headers)?,
            ordering_group: o.ordering_key.as_deref(),
            payload,
            published_at: now,
            deliver_at,
            check_at,
            priority: o.priority,
            via_cursor,
        },
    )?;
    if visibility == Visibility::Committed && fan_out == FanOut::Now && !via_cursor {
        store::publish::fan_out(
            conn,
            matches,
            id,
            topic_id,
            o.tag.as_deref(),
            o.ordering_key.as_deref(),
            (deliver_at, o.priority),
        )?;
    }
    if let Some(k) = &o.idempotency_key {
        let expires = now.saturating_add(duration_to_ms(inner.opts.idempotency_window));
        store::publish::remember_idempotent(conn, topic_id, k, id, expires)?;
    }
    Ok((id, true))
}

/// Every message of a batch, before any is written; the error names the message.
pub(crate) fn validate_batch(inner: &Inner, messages: &[Message]) -> Result<()> {
    if messages.len() > validate::MAX_BATCH {
        return Err(Error::invalid(format!(
            "a batch holds at most {} messages, got {}",
            validate::MAX_BATCH,
            messages.len()
        )));
    }
    for (i, m) in messages.iter().enumerate() {
        validate(inner, &m.topic, &m.payload, &m.options)
            .map_err(|e| Error::invalid(format!("message {i} of the batch: {e}")))?;
    }
    Ok(())
}
