//! Retention and file size: purging what is finished (acked messages, rolled-back half
//! messages past their audit period, expired idempotency and inbox keys), a chunk per
//! transaction, and giving free pages back to the file system.

use crate::clock::duration_to_ms;
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::store;
use crate::validate;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows handled per transaction by purges.
const CHUNK: usize = 500;

/// Deletes messages published and acked by every group at least `older_than` ago,
/// half messages rolled back at least `older_than` ago (with their check history),
/// and idempotency and inbox keys past their window. Returns how many messages went.
/// Recorded in the audit trail in its last transaction that deletes messages
/// (`audit::bulk`).
pub(crate) fn purge_acked(
    inner: &Arc<Inner>,
    older_than: Duration,
    reason: Option<&str>,
) -> Result<u64> {
    validate::bounded_duration("older_than", older_than)?;
    let asked = serde_json::json!({ "older_than_ms": duration_to_ms(older_than) });
    let total = crate::audit::bulk(
        inner,
        "purge_acked",
        "",
        asked,
        "count",
        reason,
        |b, total| purge_acked_run(inner, older_than, b, total),
    )?;
    if total > 0 {
        inner.scrub_wal();
    }
    Ok(total)
}

fn purge_acked_run(
    inner: &Arc<Inner>,
    older_than: Duration,
    run: &crate::audit::Bulk<'_>,
    total: &mut u64,
) -> Result<()> {
    let now = inner.now();
    let cutoff = now - duration_to_ms(older_than);
    // Rolled-back half messages first: the last transaction deleting acked messages
    // then records the run with both counts (both phases keep the newest message, so
    // their order changes nothing else). Expired keys go after and are not counted.
    loop {
        let n = inner.write(false, |c| store::purge::rolled_back_chunk(c, cutoff, CHUNK))?;
        *total += n;
        if (n as usize) < CHUNK {
            break;
        }
    }
    let mut after = 0;
    loop {
        let chunk = inner.write(false, |c| {
            let chunk = store::purge::acked_chunk(c, after, cutoff, CHUNK)?;
            if chunk.done {
                run.finish(c, *total + chunk.deleted)?;
            }
            Ok(chunk)
        })?;
        *total += chunk.deleted;
        after = chunk.last_id;
        if chunk.done {
            break;
        }
    }
    while inner.write(false, |c| {
        store::purge::expired_idempotency_keys(c, now, CHUNK)
    })? as usize
        == CHUNK
    {}
    purge_expired_inbox(inner, now, &mut |_, _| {})?;
    Ok(())
}

/// Most expired inbox keys one transaction deletes, `INBOX_STEP` per statement...
const INBOX_PAGE: usize = 500;
const INBOX_STEP: usize = 50;
/// ...and how long it keeps going before it commits. Inbox keys are the caller's text
/// (notification ids, UUIDs), so keys that expire together lie all over the key index and
/// each one deleted dirties a page of its own: with 1,000,000 expired keys a fixed page of
/// 500 held the write lock 31 ms at the median and 190 ms at p99 (docs/reliability.md,
/// "inbox"). The time bound keeps each transaction near the DLQ's (`dlq::DEAD_HOLD`).
const INBOX_HOLD: Duration = Duration::from_millis(2);

/// Deletes the inbox keys whose window ended at or before `now`, a short transaction at
/// a time; calls `between` after each with how long it ran from BEGIN IMMEDIATE granted
/// to its last statement, and to COMMIT done. Returns how many keys went.
pub(crate) fn purge_expired_inbox(
    inner: &Arc<Inner>,
    now: i64,
    between: &mut dyn FnMut(Duration, Duration),
) -> Result<u64> {
    let mut total = 0;
    loop {
        let (mut granted, mut worked) = (None, Duration::ZERO);
        let (n, done) = inner.write(false, |c| {
            let t0 = Instant::now();
            granted = Some(t0);
            let mut n = 0;
            let done = loop {
                let step = store::inbox::expired_keys(c, now, INBOX_STEP)?;
                n += step;
                if (step as usize) < INBOX_STEP {
                    break true;
                }
                if n as usize >= INBOX_PAGE || t0.elapsed() >= INBOX_HOLD {
                    break false;
                }
            };
            worked = t0.elapsed();
            Ok((n, done))
        })?;
        if let Some(t0) = granted {
            between(worked, t0.elapsed());
        }
        total += n;
        if done {
            return Ok(total);
        }
    }
}

/// Gives pages freed by purges back to the file system: up to `pages` of them
/// (`None`: every free page), in transactions of at most 4,096 pages so publishers
/// wait little. Returns how many pages were freed; the file shrinks by that much once
/// the WAL is checkpointed (tried at once; a reader in the way delays it). Works on
/// files ferrymq created (`auto_vacuum = INCREMENTAL`); a file created before, or a
/// business database ferrymq adopted, keeps its mode and this returns 0: nothing went
/// wrong, SQLite cannot shrink such a file except by a full `VACUUM`. Recorded in the
/// audit trail in its last transaction, with the pages freed.
pub(crate) fn vacuum(inner: &Arc<Inner>, pages: Option<u64>, reason: Option<&str>) -> Result<u64> {
    if pages == Some(0) {
        return Err(Error::invalid(
            "pages must be at least 1 (leave it out to free every free page)",
        ));
    }
    let asked = serde_json::json!({ "pages_asked": pages });
    crate::audit::bulk(inner, "vacuum", "", asked, "pages", reason, |b, total| {
        vacuum_run(inner, pages, b, total)
    })
}

fn vacuum_run(
    inner: &Arc<Inner>,
    pages: Option<u64>,
    run: &crate::audit::Bulk<'_>,
    total: &mut u64,
) -> Result<()> {
    const VACUUM_CHUNK: u64 = 4096;
    let mut left = pages.unwrap_or(u64::MAX);
    while left > 0 {
        let chunk = left.min(VACUUM_CHUNK);
        let freed = inner.write(false, |c| {
            let freed = store::schema::incremental_vacuum(c, chunk)?;
            // The last transaction: fewer free pages than asked, or all that was asked.
            if freed < chunk || freed >= left {
                run.finish(c, *total + freed)?;
            }
            Ok(freed)
        })?;
        *total += freed;
        left -= freed.min(left);
        if freed < chunk {
            break;
        }
    }
    if *total > 0 {
        store::schema::checkpoint(&*inner.conn()?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, ManualClock, Options, PublishOptions, Queue, SubscribeOptions};
    use std::sync::atomic::{AtomicBool, Ordering};

    fn percentiles(mut v: Vec<Duration>) -> String {
        v.sort();
        let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        )
    }

    /// A measurement, not a check (no timed assertion): how long each transaction of the
    /// inbox purge holds the write lock with many expired keys of random text, and what a
    /// publisher on another handle, one publish per ms, waits meanwhile. Run it in release:
    /// `FERRYMQ_INBOX_PURGE_ROWS=1000000 cargo test -p ferrymq --release --lib
    /// inbox_purge -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement; see its doc"]
    fn inbox_purge_holds_the_write_lock_briefly() {
        let rows: i64 =
            std::env::var("FERRYMQ_INBOX_PURGE_ROWS").map_or(1_000_000, |v| v.parse().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let clock = ManualClock::new(1_700_000_000_000);
        let opts = || Options::default().with_manual_clock(clock.clone());
        let q = Queue::open(&path, opts()).unwrap();
        q.subscribe("g", "other", SubscribeOptions::new()).unwrap();
        let fill = rusqlite::Connection::open(&path).unwrap();
        fill.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO ferrymq_inbox (key, seen_at, expires_at)
             SELECT 'notify:' || lower(hex(randomblob(16))), ?2, ?2 + i FROM n",
            rusqlite::params![rows, clock.now_ms()],
        )
        .unwrap();
        drop(fill);
        clock.advance(Duration::from_secs(86_400));

        let stop = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (p, stop) = (Queue::open(&path, opts()).unwrap(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut waits = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    p.publish("other", b"x", PublishOptions::new()).unwrap();
                    waits.push(t.elapsed());
                    std::thread::sleep(Duration::from_millis(1));
                }
                waits
            })
        };
        let (mut worked, mut held) = (Vec::new(), Vec::new());
        let t = Instant::now();
        let deleted = purge_expired_inbox(&q.inner, q.inner.now(), &mut |w, h| {
            worked.push(w);
            held.push(h);
        })
        .unwrap();
        let total = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let waits = publisher.join().unwrap();
        assert_eq!(deleted, rows as u64);
        println!(
            "inbox purge: {rows} expired keys in {} transactions, {:.1} s; lock held to the \
             last statement {}; to COMMIT done {}; a publisher beside it ({} publishes) {}",
            held.len(),
            total.as_secs_f64(),
            percentiles(worked),
            percentiles(held),
            waits.len(),
            percentiles(waits),
        );
    }
}
