//! Handing out deliveries: pending ones that are due, and inflight ones whose lease
//! expired (a consumer crashed or stalled). An expired lease counts as a failed attempt;
//! past the policy's last retry the delivery goes dead instead of out again.
//!
//! Flow control (migration 0005) is read from the group's row, which every statement
//! here reads anyway: a paused group has nothing claimable and no next due time, and a
//! group with `max_inflight` gets pending deliveries only while fewer than that many are
//! inflight (counted in the write transaction, so exactly, over every process). Taking
//! over an expired lease keeps the count where it was, so it is never held back.
//!
//! A rate limit (migration 0006) is a token bucket in the group's row: a claim hands out
//! at most as many deliveries (pending or expired) as there are whole tokens, and takes
//! them in the same transaction; with none left, the next due time is when one is.
//!
//! Priority (migrations 0007 and 0008): pending deliveries and expired leases of
//! priority > 0 come from their own partial indexes, highest first, before those of
//! priority 0, which come from the due index as before: a group that never sees a
//! priority pays two empty index lookups.
//! Blocked deliveries (an ordering key's later messages) are not candidates at all, so
//! priority never reorders one ordering key.

use super::delivery_state;
use super::groups::{self, GroupRow};
use super::settle;
use super::{INFLIGHT, PENDING, decode_headers};
use crate::clock::ms_to_system_time;
use crate::error::Result;
use crate::model::Delivery;
use crate::retry::AfterFailure;
use rusqlite::{Connection, OptionalExtension, params};

/// A delivery that may be claimed: its own columns only. The message's columns (the
/// payload above all) are read once the delivery is claimed, so a claim of `max` reads
/// `max` payloads although it looks at up to twice as many candidates.
struct Candidate {
    message_id: i64,
    state: i64,
    attempt: i64,
    claimed_at: Option<i64>,
    due_at: i64,
    ordering_group: Option<String>,
    priority: i32,
}

impl Candidate {
    /// Claim order: higher priority first, then due time, then publish order.
    fn rank(&self) -> (std::cmp::Reverse<i32>, i64, i64) {
        (
            std::cmp::Reverse(self.priority),
            self.due_at,
            self.message_id,
        )
    }
}

/// Due deliveries of priority 0 in a state (pending ones, or expired leases), by due
/// time; those of a higher priority are taken first by `PRIORITIZED_*`.
const CANDIDATES: &str = "
    SELECT message_id, state, attempt, claimed_at, due_at, ordering_group, priority
    FROM ferrymq_deliveries
    WHERE group_id = ?1 AND state = ?2 AND due_at <= ?3 AND priority = 0
    ORDER BY due_at, message_id LIMIT ?4";

/// Due deliveries of priority > 0 in one state, highest first. The state is a literal, not
/// a parameter, so that the planner picks that state's partial index; `?2`, the state
/// `candidates` binds, goes unused.
macro_rules! prioritized {
    ($state:ident) => {
        concat!(
            "
    SELECT message_id, state, attempt, claimed_at, due_at, ordering_group, priority
    FROM ferrymq_deliveries
    WHERE group_id = ?1 AND state = ",
            delivery_state!($state),
            " AND priority > 0 AND due_at <= ?3
    ORDER BY priority DESC, due_at, message_id LIMIT ?4"
        )
    };
}

/// Pending ones, through `ferrymq_deliveries_priority` (migration 0007).
const PRIORITIZED_PENDING: &str = prioritized!(pending);
/// Expired leases, through `ferrymq_deliveries_priority_leased` (migration 0008).
const PRIORITIZED_LEASED: &str = prioritized!(inflight);

fn candidates(
    conn: &Connection,
    sql: &str,
    group_id: i64,
    state: i64,
    now: i64,
    limit: usize,
) -> Result<Vec<Candidate>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params![group_id, state, now, limit as i64], |r| {
            Ok(Candidate {
                message_id: r.get(0)?,
                state: r.get(1)?,
                attempt: r.get(2)?,
                claimed_at: r.get(3)?,
                due_at: r.get(4)?,
                ordering_group: r.get(5)?,
                priority: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Up to `limit` due deliveries in `state` (pending, or expired leases) in claim order:
/// every prioritized one first; those of priority 0 only when the prioritized ones do
/// not fill the claim, so a backlog of high priority never makes a claim walk the
/// priority-0 index past it.
fn due(
    conn: &Connection,
    state: i64,
    group_id: i64,
    now: i64,
    limit: usize,
) -> Result<Vec<Candidate>> {
    let prioritized = if state == PENDING {
        PRIORITIZED_PENDING
    } else {
        PRIORITIZED_LEASED
    };
    let mut found = candidates(conn, prioritized, group_id, state, now, limit)?;
    let rest = limit - found.len();
    found.extend(candidates(conn, CANDIDATES, group_id, state, now, rest)?);
    Ok(found)
}

/// The message columns a delivery carries.
struct Body {
    tag: Option<String>,
    key: Option<String>,
    headers: Option<String>,
    payload: Vec<u8>,
    published_at: i64,
}

fn body(conn: &Connection, message_id: i64) -> Result<Body> {
    note_payload_read();
    Ok(conn
        .prepare_cached(
            "SELECT tag, key, headers, payload, published_at FROM ferrymq_messages WHERE id = ?1",
        )?
        .query_row([message_id], |r| {
            Ok(Body {
                tag: r.get(0)?,
                key: r.get(1)?,
                headers: r.get(2)?,
                payload: r.get(3)?,
                published_at: r.get(4)?,
            })
        })?)
}

/// Whether `claim` would find anything now; a read that takes no write lock, so idle
/// receivers never queue behind publishers. A plain message above the cursor counts
/// whatever its tag: the claim that moves the cursor past it is how a filtered group
/// learns it was not for it. The group's row comes with it (one
/// statement): paused, nothing; at `max_inflight`, only expired leases. The inflight
/// count runs only for a group that has a limit.
pub(crate) fn has_claimable(conn: &Connection, group_id: i64, now: i64) -> Result<bool> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT g.paused = 0 AND (
                 ((EXISTS (SELECT 1 FROM ferrymq_deliveries
                           WHERE group_id = ?1 AND state = ",
            delivery_state!(pending),
            " AND due_at <= ?2)
                   OR EXISTS (SELECT 1 FROM ferrymq_messages
                              WHERE topic_id = g.topic_id AND via_cursor = 1
                                AND id > g.delivered_through))
                  AND (g.max_inflight IS NULL
                       OR (SELECT count(*) FROM ferrymq_deliveries
                           WHERE group_id = ?1 AND state = ",
            delivery_state!(inflight),
            ") < g.max_inflight))
                 OR EXISTS (SELECT 1 FROM ferrymq_deliveries
                            WHERE group_id = ?1 AND state = ",
            delivery_state!(inflight),
            " AND due_at <= ?2)),
                    g.rate, g.burst, g.tokens, g.tokens_at
             FROM ferrymq_groups g WHERE g.id = ?1"
        ))?
        .query_row(params![group_id, now], |r| {
            Ok((r.get::<_, bool>(0)?, groups::bucket(r, 1)?))
        })
        .optional()?;
    Ok(match row {
        Some((found, bucket)) => found && bucket.is_none_or(|b| b.whole(now) > 0),
        None => false,
    })
}

/// When something of the group becomes claimable next, as `next_due` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NextDue {
    /// The earliest time, if anything is waiting.
    pub at: Option<i64>,
    /// The group is at its `max_inflight`: a settle frees a slot with a commit that wakes
    /// nobody (acks do not bump the wake-up counter), so a waiting receive must look.
    pub at_capacity: bool,
}

/// The earliest time something of the group becomes claimable, if anything is waiting:
/// nothing while it is paused, and only the first lease end while it is at
/// `max_inflight` (a settle frees a slot with a commit, which a waiting receive sees by
/// polling); under a rate limit, not before the bucket holds a token again.
pub(crate) fn next_due(conn: &Connection, group_id: i64) -> Result<NextDue> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT g.paused <> 0,
                    g.max_inflight IS NOT NULL
                    AND (SELECT count(*) FROM ferrymq_deliveries
                         WHERE group_id = ?1 AND state = ",
            delivery_state!(inflight),
            ") >= g.max_inflight,
                    min(coalesce(x.p, x.c), coalesce(x.c, x.p)), x.i,
                    g.rate, g.burst, g.tokens, g.tokens_at
             FROM ferrymq_groups g, (
                 SELECT (SELECT min(due_at) FROM ferrymq_deliveries
                         WHERE group_id = ?1 AND state = ",
            delivery_state!(pending),
            ") AS p,
                        (SELECT m.deliver_at FROM ferrymq_messages m, ferrymq_groups h
                         WHERE h.id = ?1 AND m.topic_id = h.topic_id AND m.via_cursor = 1
                           AND m.id > h.delivered_through
                         ORDER BY m.id LIMIT 1) AS c,
                        (SELECT min(due_at) FROM ferrymq_deliveries
                         WHERE group_id = ?1 AND state = ",
            delivery_state!(inflight),
            ") AS i) x
             WHERE g.id = ?1"
        ))?
        .query_row([group_id], |r| {
            Ok((
                r.get::<_, bool>(0)?,
                r.get::<_, Option<bool>>(1)?.unwrap_or(false),
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
                groups::bucket(r, 4)?,
            ))
        })
        .optional()?;
    Ok(match row {
        Some((paused, at_capacity, pending, inflight, bucket)) => {
            // Paused: nothing comes due. At capacity: only a lease end frees a slot.
            let due = if paused {
                None
            } else if at_capacity {
                inflight
            } else {
                [pending, inflight].into_iter().flatten().min()
            };
            NextDue {
                at: match (due, bucket) {
                    (Some(due), Some(bucket)) => Some(due.max(bucket.next_token_at())),
                    (due, _) => due,
                },
                at_capacity,
            }
        }
        None => NextDue::default(),
    })
}

/// How many more deliveries the group may have inflight (`usize::MAX`: no limit).
fn inflight_room(conn: &Connection, group: &GroupRow) -> Result<usize> {
    let Some(limit) = group.max_inflight else {
        return Ok(usize::MAX);
    };
    let inflight: i64 = conn
        .prepare_cached(concat!(
            "SELECT count(*) FROM ferrymq_deliveries WHERE group_id = ?1 AND state = ",
            delivery_state!(inflight)
        ))?
        .query_row([group.id], |r| r.get(0))?;
    Ok(usize::try_from(limit - inflight).unwrap_or(0))
}

pub(crate) struct ClaimSpec<'a> {
    pub group: &'a GroupRow,
    pub max: usize,
    pub lease_ms: i64,
    pub now: i64,
}

/// Claims up to `max` deliveries. Must run inside a write transaction.
pub(crate) fn claim(
    conn: &Connection,
    spec: &ClaimSpec<'_>,
    mut next_token: impl FnMut() -> i64,
) -> Result<Vec<Delivery>> {
    let ClaimSpec {
        group,
        max,
        lease_ms,
        now,
    } = *spec;
    let lease_until = now.saturating_add(lease_ms);
    let mut out = Vec::new();
    if group.paused {
        return Ok(out);
    }
    let full = super::cursor::catch_up(conn, group.id, max)?;
    // Pending deliveries this claim may still make inflight; an expired lease taken over
    // stays inflight (no change), and one that goes dead frees a slot.
    let mut room = inflight_room(conn, group)?;
    // Under a rate limit, one token per delivery handed out (pending or expired alike).
    let tokens = group.rate.map_or(usize::MAX, |b| b.whole(now));
    let max = max.min(tokens);
    loop {
        let want = max - out.len();
        if want == 0 {
            break;
        }
        let mut found = due(conn, PENDING, group.id, now, want.min(room))?;
        found.extend(due(conn, INFLIGHT, group.id, now, want)?);
        found.sort_by_key(Candidate::rank);
        found.truncate(want);
        let exhausted = found.len() < want;
        if found.is_empty() {
            break;
        }
        for c in found {
            if c.state == INFLIGHT {
                let started = c.claimed_at.unwrap_or(c.due_at);
                settle::record_attempt(
                    conn,
                    c.message_id,
                    group.id,
                    c.attempt,
                    started,
                    c.due_at,
                    "lease_expired",
                    Some("lease expired"),
                )?;
                // An expired lease is redelivered at once; only whether retries are left
                // matters here, so no jitter and no delay.
                let next = group
                    .retry
                    .after_failure(c.attempt as u32, Some(0), now, 0.0);
                if next == AfterFailure::Dead {
                    settle::kill_expired(conn, c.message_id, group.id, c.attempt, now)?;
                    room = room.saturating_add(1);
                    if let Some(og) = &c.ordering_group {
                        settle::unblock_next(conn, group.id, og)?;
                    }
                    continue;
                }
            }
            let token = next_token();
            let changed = conn
                .prepare_cached(concat!(
                    "UPDATE ferrymq_deliveries
                     SET state = ",
                    delivery_state!(inflight),
                    ", attempt = attempt + 1, lease_token = ?3, due_at = ?4, claimed_at = ?5,
                         last_error = CASE WHEN ?6 = 1 THEN 'lease expired' ELSE last_error END
                     WHERE message_id = ?1 AND group_id = ?2 AND state = ?6 AND attempt = ?7"
                ))?
                .execute(params![
                    c.message_id,
                    group.id,
                    token,
                    lease_until,
                    now,
                    c.state,
                    c.attempt
                ])?;
            if changed == 0 {
                continue;
            }
            if c.state == PENDING {
                room -= 1;
            }
            let m = body(conn, c.message_id)?;
            out.push(Delivery {
                message_id: c.message_id,
                topic: group.topic.clone(),
                tag: m.tag,
                key: m.key,
                payload: m.payload,
                headers: decode_headers(m.headers)?,
                ordering_key: c.ordering_group,
                attempt: (c.attempt + 1) as u32,
                published_at: ms_to_system_time(m.published_at),
                consumer_group: group.name.clone(),
                lease_token: token,
                lease_until: ms_to_system_time(lease_until),
                priority: c.priority,
                group_id: group.id,
            });
        }
        if exhausted || out.len() >= max {
            break;
        }
    }
    if let Some(bucket) = &group.rate
        && !out.is_empty()
    {
        groups::take_tokens(conn, group.id, bucket, out.len(), now)?;
    }
    match full {
        // A full file, and nothing this claim could hand out instead.
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

// Test builds count the message rows whose payload a claim read, per thread.
#[cfg(test)]
thread_local! {
    static PAYLOADS_READ: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn note_payload_read() {
    #[cfg(test)]
    PAYLOADS_READ.with(|n| n.set(n.get() + 1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{groups, schema, write_tx};
    use crate::{ManualClock, Options, Queue, ReceiveOptions, SubscribeOptions};
    use std::time::Duration;

    #[test]
    fn a_claim_reads_the_payloads_of_what_it_claims_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let clock = ManualClock::new(1_700_000_000_000);
        let opts = Options::default().with_manual_clock(clock.clone());
        let q = Queue::open(&path, opts.clone()).unwrap();
        let lease = Duration::from_secs(10);
        q.subscribe("g", "t", SubscribeOptions::new().lease(lease))
            .unwrap();
        for i in 0..10 {
            q.publish("t", format!("{i}"), Default::default()).unwrap();
        }
        assert_eq!(
            q.receive("g", ReceiveOptions::new().max(10)).unwrap().len(),
            10
        );
        clock.advance(lease * 2);
        for i in 10..20 {
            q.publish("t", format!("{i}"), Default::default()).unwrap();
        }
        // Ten expired leases and ten pending deliveries are candidates; five are taken.
        let c = schema::connect(&path, &opts).unwrap();
        let group = groups::by_name(&c.conn, "g").unwrap();
        let now =
            crate::clock::duration_to_ms(q.now().duration_since(std::time::UNIX_EPOCH).unwrap());
        PAYLOADS_READ.with(|n| n.set(0));
        let spec = ClaimSpec {
            group: &group,
            max: 5,
            lease_ms: 10_000,
            now,
        };
        let got = write_tx(&c.conn, |conn| claim(conn, &spec, || 7)).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(
            PAYLOADS_READ.with(|n| n.get()),
            5,
            "payloads read for 5 claimed"
        );
    }

    #[test]
    fn under_a_rate_limit_the_next_due_time_is_when_the_bucket_holds_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let clock = ManualClock::new(1_700_000_000_000);
        let opts = Options::default().with_manual_clock(clock.clone());
        let q = Queue::open(&path, opts.clone()).unwrap();
        q.subscribe("g", "t", SubscribeOptions::new().rate(4.0).burst(1))
            .unwrap();
        for i in 0..3 {
            q.publish("t", format!("{i}"), Default::default()).unwrap();
        }
        assert_eq!(
            q.receive("g", ReceiveOptions::new().max(10)).unwrap().len(),
            1
        );
        let c = schema::connect(&path, &opts).unwrap();
        let id = groups::by_name(&c.conn, "g").unwrap().id;
        let now = 1_700_000_000_000;
        // Messages are due now, but the next token is due in 250 ms.
        assert!(!has_claimable(&c.conn, id, now).unwrap());
        assert_eq!(next_due(&c.conn, id).unwrap().at, Some(now + 250));
        assert!(has_claimable(&c.conn, id, now + 250).unwrap());
        // A token is due, but nothing is waiting: no due time at all.
        for _ in 0..2 {
            clock.advance(Duration::from_millis(500));
            // The bucket holds one token at most (burst 1), however long it waited.
            assert_eq!(
                q.receive("g", ReceiveOptions::new().max(10)).unwrap().len(),
                1
            );
        }
        assert_eq!(next_due(&c.conn, id).unwrap().at, Some(now + 30_000));
    }
}
