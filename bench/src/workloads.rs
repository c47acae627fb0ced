//! The ferrymq side of the rate workloads (W1, W1x8, W2, W3, W5 with retained rows, and
//! W6 with several groups),
//! through the public API only; plus the fast preparation of retained rows, which writes
//! straight into ferrymq's tables because a million publishes would take minutes.

use crate::child::{BoxResult, Measured};
use crate::job::{Job, Kind};
use ferrymq::{Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions};
use rusqlite::params;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const TOPIC: &str = "bench-topic";
pub const GROUP: &str = "bench-group";
pub const PAYLOAD_LEN: usize = 256;
/// Messages per `publish_batch` in W2.
pub const BATCH: u64 = 1000;
/// Publishing threads in W1x8: 8, or `FERRYMQ_BENCH_THREADS` (to see how group commit
/// scales), inherited by every child process like `FERRYMQ_BENCH_SYNC`.
pub fn threads() -> u64 {
    std::env::var("FERRYMQ_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(8)
}
/// Retained rows written per transaction while preparing W5.
const RETAIN_CHUNK: u64 = 100_000;

/// A 256-byte payload whose first 8 bytes say which message it is.
pub fn payload(i: u64) -> Vec<u8> {
    let mut p = vec![0x5a; PAYLOAD_LEN];
    stamp(&mut p, i);
    p
}

pub fn stamp(payload: &mut [u8], i: u64) {
    payload[..8].copy_from_slice(&i.to_le_bytes());
}

/// Untimed operations before the timed ones: statement caches and pages get warm.
pub fn warmup(n: u64) -> u64 {
    (n / 100).clamp(10, 1000)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `normal` (the default) or `full`, from `FERRYMQ_BENCH_SYNC`: the same for ferrymq and
/// the baseline, and inherited by every child process.
pub fn synchronous() -> String {
    std::env::var("FERRYMQ_BENCH_SYNC").unwrap_or_else(|_| "normal".into())
}

/// `FERRYMQ_BENCH_RATE=r`: the group is subscribed with rate `r` and as large a burst
/// (1e6 never holds a drain back, so what is measured is the bucket's cost).
fn rate() -> Option<f64> {
    std::env::var("FERRYMQ_BENCH_RATE").ok()?.parse().ok()
}

/// `FERRYMQ_BENCH_PRIORITY=1`: message `i` is published with priority `i % 10` (what
/// priority costs when used).
fn priority(i: u64) -> i32 {
    match std::env::var("FERRYMQ_BENCH_PRIORITY") {
        Ok(v) if v == "1" => (i % 10) as i32,
        _ => 0,
    }
}

/// A number from the environment variable `name` (flow-control knobs, like the above).
fn knob(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// `FERRYMQ_BENCH_KEY=1`: every file of the run, ferrymq's and the baseline's, is
/// encrypted with one raw key (SQLCipher's `x'...'` syntax), so that the ratio compares
/// encrypted with encrypted and the run's absolute rates show what encryption costs.
pub fn key() -> Option<String> {
    (knob("FERRYMQ_BENCH_KEY") == Some(1)).then(|| format!("x'{}'", "5A".repeat(32)))
}

/// Keys a raw connection like ferrymq keys its own (before anything reads the file).
pub fn key_connection(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    match key() {
        Some(k) => c.pragma_update(None, "key", k),
        None => Ok(()),
    }
}

/// Opens (creating) the queue at `path` with the defaults and subscribes the group.
/// `FERRYMQ_BENCH_MAX_INFLIGHT=n` subscribes it with `max_inflight(n)`,
/// `FERRYMQ_BENCH_MAX_READY=n` opens with `max_ready(n)`, and `FERRYMQ_BENCH_SCHEDULE=1`
/// adds a schedule whose ticks never come due in a run (hourly), so that what is measured
/// is what a schedule's presence costs a receive.
pub fn open(path: &Path) -> BoxResult<Queue> {
    let sync: ferrymq::Synchronous = synchronous().parse()?;
    let mut options = Options::default().synchronous(sync);
    if let Some(n) = knob("FERRYMQ_BENCH_MAX_READY") {
        options = options.max_ready(n);
    }
    if let Some(k) = key() {
        options = options.key(ferrymq::Key::from_text(&k)?);
    }
    let q = Queue::open(path, options)?;
    let mut sub = SubscribeOptions::new();
    if let Some(r) = rate() {
        sub = sub.rate(r).burst(r.ceil() as u64);
    }
    if let Some(n) = knob("FERRYMQ_BENCH_MAX_INFLIGHT") {
        sub = sub.max_inflight(n);
    }
    q.subscribe(GROUP, TOPIC, sub)?;
    if knob("FERRYMQ_BENCH_SCHEDULE") == Some(1) {
        let hourly = ferrymq::ScheduleOptions::new().every(std::time::Duration::from_secs(3_600));
        q.schedule("bench", "bench-ticks", "tick", hourly)?;
    }
    Ok(q)
}

/// A fresh queue in `dir` with `retained` acked messages already in it; returns how long
/// the preparation took.
fn fresh(dir: &Path, retained: u64) -> BoxResult<(Queue, f64)> {
    let path = dir.join("ferrymq.db");
    let q = open(&path)?;
    if retained == 0 {
        return Ok((q, 0.0));
    }
    q.close()?;
    drop(q);
    let t = Instant::now();
    retain(&path, retained)?;
    let prep = t.elapsed().as_secs_f64();
    Ok((open(&path)?, prep))
}

/// Runs one rate workload on a fresh queue; returns the timed part's measurement.
pub fn run(job: &Job, dir: &Path) -> BoxResult<Measured> {
    let kind = job.kind;
    let (q, prep_secs) = fresh(dir, job.retained)?;
    // W6: the bench group and `groups - 1` more on the same topic.
    let groups: Vec<String> = std::iter::once(GROUP.to_owned())
        .chain((1..job.groups).map(|g| format!("{GROUP}-{g}")))
        .collect();
    for g in &groups[1..] {
        q.subscribe(g, TOPIC, SubscribeOptions::new())?;
    }
    let n = job.n;
    let before = q.group_commit_counts();
    let (ops, secs) = match kind {
        Kind::Publish => (n, publish(&q, n)?),
        Kind::Publish8 => (n, publish_threads(&q, n)?),
        Kind::Batch => batch(&q, n)?,
        Kind::Drain if groups.len() > 1 => (n * job.groups, fan_drain(&q, n, &groups)?),
        Kind::Drain => (n, drain(&q, n)?),
        Kind::LatencyIn | Kind::LatencyCross => return Err("not a rate workload".into()),
    };
    let per_commit = match kind {
        Kind::Publish | Kind::Publish8 => writes_per_commit(before, q.group_commit_counts()),
        _ => 0.0,
    };
    q.close()?;
    Ok(Measured {
        ops,
        secs,
        prep_secs,
        per_commit,
        ..Measured::default()
    })
}

/// Average writes per transaction between two `group_commit_counts` readings (the
/// warm-up included: it runs after the first reading).
fn writes_per_commit(before: (u64, u64), after: (u64, u64)) -> f64 {
    let commits = after.0.saturating_sub(before.0);
    let writes = after.1.saturating_sub(before.1);
    if commits == 0 {
        0.0
    } else {
        writes as f64 / commits as f64
    }
}

fn publish_range(q: &Queue, from: u64, count: u64) -> BoxResult<()> {
    let mut p = payload(from);
    for i in from..from + count {
        stamp(&mut p, i);
        q.publish(TOPIC, &p, PublishOptions::new().priority(priority(i)))?;
    }
    Ok(())
}

/// W1: one durable publish (one commit) after another.
fn publish(q: &Queue, n: u64) -> BoxResult<f64> {
    let warm = warmup(n);
    publish_range(q, 0, warm)?;
    let t = Instant::now();
    publish_range(q, warm, n)?;
    Ok(t.elapsed().as_secs_f64())
}

/// W1x8: the same total from `threads()` threads, each with its own clone of the queue.
fn publish_threads(q: &Queue, n: u64) -> BoxResult<f64> {
    let warm = warmup(n);
    publish_range(q, 0, warm)?;
    let threads = threads();
    let start = Barrier::new(threads as usize + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let (q, start) = (q.clone(), &start);
                let share = n / threads + u64::from(k < n % threads);
                let from = warm + k * (n / threads + 1);
                s.spawn(move || {
                    start.wait();
                    publish_range(&q, from, share)
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        for w in workers {
            w.join().map_err(|_| "a publishing thread panicked")??;
        }
        Ok(t.elapsed().as_secs_f64())
    })
}

/// W2: batches of 1,000 through `publish_batch`, one commit each. Returns (ops, secs).
fn batch(q: &Queue, n: u64) -> BoxResult<(u64, f64)> {
    let batches = (n / BATCH).max(1);
    let messages: Vec<Message> = (0..BATCH)
        .map(|i| Message::new(TOPIC, payload(i)))
        .collect();
    q.publish_batch(&messages)?;
    let t = Instant::now();
    for _ in 0..batches {
        q.publish_batch(&messages)?;
    }
    Ok((batches * BATCH, t.elapsed().as_secs_f64()))
}

/// Publishes `count` messages untimed, in batches.
fn prefill(q: &Queue, count: u64) -> BoxResult<()> {
    let mut left = count;
    while left > 0 {
        let k = left.min(BATCH);
        let messages: Vec<Message> = (0..k)
            .map(|i| {
                let o = PublishOptions::new().priority(priority(i));
                Message::new(TOPIC, payload(i)).with_options(o)
            })
            .collect();
        q.publish_batch(&messages)?;
        left -= k;
    }
    Ok(())
}

fn take_one(q: &Queue) -> BoxResult<()> {
    take_from(q, GROUP)?.ok_or("the queue ran dry")?;
    Ok(())
}

/// receive(max 1) + ack on `group`; None when it had nothing.
fn take_from(q: &Queue, group: &str) -> BoxResult<Option<()>> {
    let Some(d) = q.receive(group, ReceiveOptions::new().max(1))?.pop() else {
        return Ok(None);
    };
    q.ack(&d)?;
    Ok(Some(()))
}

/// W6 drain: `n` messages published untimed to every group, then up to 8 threads, each
/// taking its share of the groups in turns (one delivery from each), until all are empty.
fn fan_drain(q: &Queue, n: u64, groups: &[String]) -> BoxResult<f64> {
    prefill(q, n)?;
    let threads = groups.len().min(8);
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let (q, start) = (q.clone(), &start);
                let mine: Vec<&str> = groups
                    .iter()
                    .skip(k)
                    .step_by(threads)
                    .map(String::as_str)
                    .collect();
                s.spawn(move || -> BoxResult<u64> {
                    start.wait();
                    let mut left = mine;
                    let mut taken = 0;
                    while !left.is_empty() {
                        let mut still = Vec::with_capacity(left.len());
                        for g in left {
                            if take_from(&q, g)?.is_some() {
                                taken += 1;
                                still.push(g);
                            }
                        }
                        left = still;
                    }
                    Ok(taken)
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        let mut taken = 0;
        for w in workers {
            taken += w.join().map_err(|_| "a draining thread panicked")??;
        }
        let secs = t.elapsed().as_secs_f64();
        let want = n * groups.len() as u64;
        if taken != want {
            return Err(format!("drained {taken} deliveries of {want}").into());
        }
        Ok(secs)
    })
}

/// W3: `n` messages published untimed, then receive(max 1) + ack, one at a time.
fn drain(q: &Queue, n: u64) -> BoxResult<f64> {
    let warm = warmup(n);
    prefill(q, n + warm)?;
    for _ in 0..warm {
        take_one(q)?;
    }
    let t = Instant::now();
    for _ in 0..n {
        take_one(q)?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Writes `count` published-and-acked messages of the bench group straight into
/// ferrymq's tables (what a queue that never runs `purge_acked` accumulates).
fn retain(path: &Path, count: u64) -> BoxResult<()> {
    write_rows(path, count, &|tx, group_id, then, before| {
        tx.execute(
            "INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at, attempt, claimed_at)
             SELECT id, ?1, 2, ?2, 1, ?2 FROM ferrymq_messages WHERE id > ?3",
            params![group_id, then, before],
        )?;
        Ok(())
    })
}

/// Writes `count` messages of the bench group, published a day ago, straight into
/// ferrymq's tables in big transactions (untimed preparation), with the rows `rows`
/// adds for each chunk (given the group id, the publish time and the highest message id
/// before the chunk); then checkpoints and syncs so that the timed part starts with an
/// empty WAL and nothing of the preparation left to write.
pub fn write_rows(
    path: &Path,
    count: u64,
    rows: &dyn Fn(&rusqlite::Transaction<'_>, i64, i64, i64) -> rusqlite::Result<()>,
) -> BoxResult<()> {
    let mut c = rusqlite::Connection::open(path)?;
    key_connection(&c)?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.pragma_update(None, "synchronous", "OFF")?;
    let topic_id: i64 = c.query_row(
        "SELECT id FROM ferrymq_topics WHERE name = ?1",
        [TOPIC],
        |r| r.get(0),
    )?;
    let group_id: i64 = c.query_row(
        "SELECT id FROM ferrymq_groups WHERE name = ?1",
        [GROUP],
        |r| r.get(0),
    )?;
    let then = now_ms() - 86_400_000;
    let mut left = count;
    while left > 0 {
        let k = left.min(RETAIN_CHUNK);
        let tx = c.transaction()?;
        let before: i64 = tx.query_row(
            "SELECT coalesce(max(id), 0) FROM ferrymq_messages",
            [],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO ferrymq_messages (topic_id, state, payload, published_at, deliver_at)
             WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
             SELECT ?2, 0, randomblob(?3), ?4, ?4 FROM n",
            params![k as i64, topic_id, PAYLOAD_LEN as i64, then],
        )?;
        rows(&tx, group_id, then, before)?;
        // Counted as migration 0002 keeps counts: in the topic row, up to through_id.
        tx.execute(
            "UPDATE ferrymq_topics SET folded_messages = folded_messages + ?2 WHERE id = ?1",
            params![topic_id, k as i64],
        )?;
        tx.execute(
            "UPDATE ferrymq_counted SET through_id = (SELECT max(id) FROM ferrymq_messages)",
            [],
        )?;
        tx.commit()?;
        left -= k;
    }
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(c);
    // The rows went in with synchronous=OFF: flush them now, or the timed part's first
    // checkpoint (an fsync) would pay for writing the whole preparation to disk.
    std::fs::File::open(path)?.sync_all()?;
    Ok(())
}
