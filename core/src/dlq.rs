//! The dead-letter queue of a consumer group: listing (letters, or just their ids page by
//! page), redrive (replay with fresh retries) and purge, of all letters or given ids. Bulk runs page by message id, cover what was dead when they
//! started, and keep each write transaction short so publishers are not held behind them.
//! Each redrive and purge is recorded in the audit trail: given ids in their own
//! transaction, a whole run in its last (`audit::bulk`).

use crate::api::DeadLetter;
use crate::audit;
use crate::clock::duration_to_ms;
use crate::error::Result;
use crate::inner::Inner;
use crate::store;
use crate::validate;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most dead letters one redrive or purge transaction handles...
const DEAD_PAGE: usize = 128;
/// ...and how long it keeps going before it commits. Measured (docs/benchmarks.md, "DLQ"):
/// with 128 and 2 ms a transaction held the lock 2.4-4.2 ms at the median, and
/// publishers waited less than with 256 and 4 ms at the same redrive speed; the time
/// bound keeps a slow disk or a busy CPU from stretching one transaction much.
const DEAD_HOLD: Duration = Duration::from_millis(2);

/// The group's dead letters, oldest death first.
pub(crate) fn dead_letters(
    inner: &Arc<Inner>,
    group: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>> {
    validate::name("consumer group", group)?;
    validate::limit(limit)?;
    inner.read(|c| {
        let g = store::groups::by_name(c, group)?;
        store::dlq::list(c, g.id, limit)
    })
}

/// Puts dead letters back in line with fresh retries: all of them (`None`) or the
/// given message ids. Returns how many were dead and are now replayed. `None` covers
/// the letters dead when the call started, each at most once, oldest message first,
/// a short transaction at a time: a letter that dies again meanwhile stays dead.
pub(crate) fn redrive(
    inner: &Arc<Inner>,
    group: &str,
    ids: Option<&[i64]>,
    reason: Option<&str>,
) -> Result<u64> {
    validate::name("consumer group", group)?;
    let group_id = inner.read(|c| store::groups::by_name(c, group))?.id;
    match ids {
        Some(ids) => inner.write(true, |c| {
            let mut sorted = ids.to_vec();
            sorted.sort_unstable();
            let mut n = 0;
            for &id in &sorted {
                n += u64::from(store::dlq::redrive_one(c, group_id, id, inner.now())?);
            }
            let detail = json!({ "ids": ids, "count": n });
            audit::record(c, inner, "redrive", group, Some(detail), reason)?;
            Ok(n)
        }),
        None => redrive_all(inner, group, group_id, &mut |_, _| {}, reason),
    }
}

/// `redrive(group, None)` that calls `between` after each of its transactions, before
/// the next begins, with how long that one ran from BEGIN IMMEDIATE granted to its
/// last statement, and to COMMIT done (which includes a WAL auto-checkpoint when one
/// is due): for the benchmark, and for tests that act between two transactions.
#[doc(hidden)]
pub(crate) fn redrive_observed(
    inner: &Arc<Inner>,
    group: &str,
    between: &mut dyn FnMut(Duration, Duration),
    reason: Option<&str>,
) -> Result<u64> {
    validate::name("consumer group", group)?;
    let group_id = inner.read(|c| store::groups::by_name(c, group))?.id;
    redrive_all(inner, group, group_id, between, reason)
}

fn redrive_all(
    inner: &Arc<Inner>,
    group: &str,
    group_id: i64,
    hold: &mut dyn FnMut(Duration, Duration),
    reason: Option<&str>,
) -> Result<u64> {
    let run = DeadRun {
        action: "redrive",
        asked: json!({ "ids": null }),
        reason,
        group,
        group_id,
        wake: true,
        cutoff: i64::MAX,
    };
    dead_in_chunks(inner, run, hold, store::dlq::redrive_one)
}

/// Deletes dead letters (all, or those dead for at least `older_than`) that were
/// dead when the call started, a short transaction at a time.
pub(crate) fn purge_dead_letters(
    inner: &Arc<Inner>,
    group: &str,
    older_than: Option<Duration>,
    reason: Option<&str>,
) -> Result<u64> {
    validate::name("consumer group", group)?;
    if let Some(d) = older_than {
        validate::bounded_duration("older_than", d)?;
    }
    let group_id = inner.read(|c| store::groups::by_name(c, group))?.id;
    let run = DeadRun {
        action: "purge_dead_letters",
        asked: json!({ "older_than_ms": older_than.map(duration_to_ms) }),
        reason,
        group,
        group_id,
        wake: false,
        cutoff: older_than.map_or(i64::MAX, |d| inner.now() - duration_to_ms(d)),
    };
    let n = dead_in_chunks(inner, run, &mut |_, _| {}, |c, g, id, _| {
        store::dlq::purge_one(c, g, id)
    })?;
    if n > 0 {
        inner.scrub_wal();
    }
    Ok(n)
}

/// A bulk run over a group's dead letters, as the audit trail records it.
struct DeadRun<'a> {
    action: &'static str,
    /// What the caller asked for, recorded with the count.
    asked: Value,
    reason: Option<&'a str>,
    group: &'a str,
    group_id: i64,
    /// Whether the run's commits wake waiting receives (redriven letters are ready).
    wake: bool,
    /// Letters that died after this (ms since the epoch) are left alone.
    cutoff: i64,
}

/// Applies `apply` to every delivery of the group that is dead now (died at or
/// before `cutoff`), in message id order. The run is bounded by what it sees at the
/// start (the highest dead id, the clock) and visits each id once, so letters that die
/// again while it runs (a consumer failing the redriven ones) cannot keep it going.
/// Each transaction stops after `DEAD_PAGE` rows or `DEAD_HOLD`, whichever comes
/// first, so publishers never wait long for the write lock. Counts as each transaction
/// commits, so a run that fails midway has counted what it did, and records the run in
/// its last transaction (`audit::bulk`). Returns the count.
fn dead_in_chunks(
    inner: &Arc<Inner>,
    run: DeadRun<'_>,
    hold: &mut dyn FnMut(Duration, Duration),
    apply: impl Fn(&rusqlite::Connection, i64, i64, i64) -> Result<bool>,
) -> Result<u64> {
    let DeadRun {
        action,
        asked,
        reason,
        group,
        group_id,
        wake,
        cutoff,
    } = run;
    audit::bulk(inner, action, group, asked, "count", reason, |b, total| {
        let cutoff = cutoff.min(inner.now());
        let Some(through) = inner.read(|c| store::dlq::last_dead_id(c, group_id))? else {
            return Ok(());
        };
        let mut after = 0;
        loop {
            let (mut granted, mut worked) = (None, Duration::ZERO);
            let (last, n, done) = inner.write(wake, |c| {
                let t0 = Instant::now();
                granted = Some(t0);
                let ids = store::dlq::dead_page(c, group_id, after, through, cutoff, DEAD_PAGE)?;
                let (mut last, mut n) = (after, 0);
                for &id in &ids {
                    n += u64::from(apply(c, group_id, id, inner.now())?);
                    last = id;
                    if t0.elapsed() >= DEAD_HOLD {
                        break;
                    }
                }
                let done = ids.len() < DEAD_PAGE && ids.last().is_none_or(|&l| l == last);
                if done {
                    b.finish(c, *total + n)?;
                }
                worked = t0.elapsed();
                Ok((last, n, done))
            })?;
            if let Some(t0) = granted {
                hold(worked, t0.elapsed());
            }
            *total += n;
            after = last;
            if done {
                return Ok(());
            }
        }
    })
}

/// Ids of the group's dead letters above `after` (that died at least `older_than` ago,
/// if given), in id order, at most `limit`: for callers that page through a large DLQ,
/// say to redrive it at a rate or show progress.
pub(crate) fn dead_letter_ids(
    inner: &Arc<Inner>,
    group: &str,
    after: i64,
    older_than: Option<Duration>,
    limit: usize,
) -> Result<Vec<i64>> {
    validate::name("consumer group", group)?;
    validate::limit(limit)?;
    if let Some(d) = older_than {
        validate::bounded_duration("older_than", d)?;
    }
    let now = inner.now();
    let cutoff = older_than.map_or(now, |d| now - duration_to_ms(d));
    inner.read(|c| {
        let g = store::groups::by_name(c, group)?;
        store::dlq::dead_page(c, g.id, after, i64::MAX, cutoff, limit)
    })
}

/// Deletes the given dead letters of the group (ids that are not dead there are
/// skipped) in one transaction; returns how many went.
pub(crate) fn purge_dead_letter_ids(
    inner: &Arc<Inner>,
    group: &str,
    ids: &[i64],
    reason: Option<&str>,
) -> Result<u64> {
    validate::name("consumer group", group)?;
    let group_id = inner.read(|c| store::groups::by_name(c, group))?.id;
    let n = inner.write(false, |c| {
        let mut n = 0;
        for &id in ids {
            n += u64::from(store::dlq::purge_one(c, group_id, id)?);
        }
        let detail = json!({ "ids": ids, "count": n });
        audit::record(
            c,
            inner,
            "purge_dead_letter_ids",
            group,
            Some(detail),
            reason,
        )?;
        Ok(n)
    })?;
    if n > 0 {
        inner.scrub_wal();
    }
    Ok(n)
}
