//! DLQ: one `redrive(group, None)` over a large dead-letter queue while a publisher keeps
//! publishing to another topic. Reports the redrive's total time and its longest
//! write-lock hold (each transaction timed by `Queue::redrive_observed`), and the
//! publisher's latency during the redrive beside its latency with nothing else running.
//!
//! The dead letters are written with SQL straight into ferrymq's tables (as W5 writes its
//! retained rows): a dead delivery per message, with the failed attempt that killed it,
//! exactly the rows nack leaves; a million nacks through the API would take many minutes.
//! Runs in a child process of its own (`__redrive <n>`), on a fresh file.

use crate::child::{BoxResult, peak_rss_kib};
use crate::workloads::{GROUP, open, payload, write_rows};
use ferrymq::{PublishOptions, Queue, SubscribeOptions};
use rusqlite::params;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Hidden subcommand: `__redrive <n>`.
pub const RUN: &str = "__redrive";
const OTHER_TOPIC: &str = "bench-other";
const OTHER_GROUP: &str = "bench-other-group";
/// The publisher's pace: one message per ms, like W4.
const PACE: Duration = Duration::from_millis(1);
/// Publishes timed with nothing else running: 3,000 (3 s), fewer for small runs.
fn quiet_publishes(n: u64) -> usize {
    (n / 10).clamp(200, 3000) as usize
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Result {
    pub dead: u64,
    pub redriven: u64,
    pub fill_secs: f64,
    pub redrive_secs: f64,
    pub transactions: u64,
    pub longest_hold_ms: f64,
    pub p99_hold_ms: f64,
    pub p50_hold_ms: f64,
    pub longest_work_ms: f64,
    pub quiet_p50_us: f64,
    pub quiet_p99_us: f64,
    pub during_p50_us: f64,
    pub during_p99_us: f64,
    pub during_max_us: f64,
    pub during_publishes: u64,
    pub rss_kib: u64,
}

const FIELDS: usize = 16;

impl Result {
    fn values(&self) -> [f64; FIELDS] {
        [
            self.dead as f64,
            self.redriven as f64,
            self.fill_secs,
            self.redrive_secs,
            self.transactions as f64,
            self.longest_hold_ms,
            self.p99_hold_ms,
            self.p50_hold_ms,
            self.longest_work_ms,
            self.quiet_p50_us,
            self.quiet_p99_us,
            self.during_p50_us,
            self.during_p99_us,
            self.during_max_us,
            self.during_publishes as f64,
            self.rss_kib as f64,
        ]
    }

    fn to_line(&self) -> String {
        let v: Vec<String> = self.values().iter().map(f64::to_string).collect();
        format!("redrive {}", v.join(" "))
    }

    fn parse(line: &str) -> BoxResult<Result> {
        let v: Vec<f64> = line
            .strip_prefix("redrive ")
            .ok_or_else(|| format!("not a redrive line: {line:?}"))?
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()?;
        let [
            dead,
            redriven,
            fill,
            secs,
            txs,
            longest,
            p99h,
            p50h,
            work,
            qp50,
            qp99,
            dp50,
            dp99,
            dmax,
            dn,
            rss,
        ] = v[..]
        else {
            return Err(format!("expected {FIELDS} values: {line:?}").into());
        };
        Ok(Result {
            dead: dead as u64,
            redriven: redriven as u64,
            fill_secs: fill,
            redrive_secs: secs,
            transactions: txs as u64,
            longest_hold_ms: longest,
            p99_hold_ms: p99h,
            p50_hold_ms: p50h,
            longest_work_ms: work,
            quiet_p50_us: qp50,
            quiet_p99_us: qp99,
            during_p50_us: dp50,
            during_p99_us: dp99,
            during_max_us: dmax,
            during_publishes: dn as u64,
            rss_kib: rss as u64,
        })
    }
}

/// Runs the measurement in a child process and returns what it printed.
pub fn run_child(n: u64) -> BoxResult<Result> {
    let out = Command::new(std::env::current_exe()?)
        .args([RUN.to_owned(), n.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("the redrive child failed ({}): {stdout}", out.status).into());
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("redrive "))
        .ok_or_else(|| format!("the redrive child printed no result: {stdout:?}"))?;
    Result::parse(line)
}

/// The child's side: prepare, measure, print one line.
pub fn child_main(args: &[String]) -> BoxResult<()> {
    let n: u64 = args.first().ok_or("__redrive needs <n>")?.parse()?;
    let dir = tempfile::tempdir()?;
    let r = measure(&dir.path().join("ferrymq.db"), n)?;
    println!("{}", r.to_line());
    Ok(())
}

fn measure(path: &Path, n: u64) -> BoxResult<Result> {
    let q = open(path)?;
    q.close()?;
    drop(q);
    let t = Instant::now();
    fill_dead(path, n)?;
    let fill_secs = t.elapsed().as_secs_f64();
    let q = open(path)?;
    q.subscribe(OTHER_GROUP, OTHER_TOPIC, SubscribeOptions::new())?;
    let dead = q.stats()?.groups[GROUP].dead;

    let (quiet, _) = publisher(&q, Some(quiet_publishes(n)), &AtomicBool::new(false))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (publishing, redriven, holds, redrive_secs) = std::thread::scope(|s| {
        let (q2, stop2) = (q.clone(), Arc::clone(&stop));
        let publishing = s.spawn(move || publisher(&q2, None, &stop2));
        // The publisher is at its pace before the redrive starts.
        std::thread::sleep(Duration::from_millis(200));
        let mut holds = Vec::new();
        let t = Instant::now();
        let redriven = q.redrive_observed(GROUP, &mut |w, d| holds.push((w, d)));
        let secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let publishing = publishing.join().map_err(|_| "the publisher panicked");
        (publishing, redriven, holds, secs)
    });
    let (_, during) = publishing??;
    let redriven = redriven?;
    let mut work_ms: Vec<f64> = holds.iter().map(|h| h.0.as_secs_f64() * 1e3).collect();
    work_ms.sort_by(f64::total_cmp);
    let mut hold_ms: Vec<f64> = holds.iter().map(|h| h.1.as_secs_f64() * 1e3).collect();
    hold_ms.sort_by(f64::total_cmp);
    let (qp50, qp99, _) = percentiles(quiet);
    let during_publishes = during.len() as u64;
    let (dp50, dp99, dmax) = percentiles(during);
    q.close()?;
    Ok(Result {
        dead,
        redriven,
        fill_secs,
        redrive_secs,
        transactions: hold_ms.len() as u64,
        longest_hold_ms: hold_ms.last().copied().unwrap_or(0.0),
        p99_hold_ms: nearest_rank(&hold_ms, 0.99),
        p50_hold_ms: nearest_rank(&hold_ms, 0.5),
        longest_work_ms: work_ms.last().copied().unwrap_or(0.0),
        quiet_p50_us: qp50,
        quiet_p99_us: qp99,
        during_p50_us: dp50,
        during_p99_us: dp99,
        during_max_us: dmax,
        during_publishes,
        rss_kib: peak_rss_kib(),
    })
}

/// Publishes one message per `PACE` to the other topic, `count` of them or until `stop`;
/// returns the latencies (µs) of all of them and of those published after the first
/// 200 ms (the part that overlaps the redrive).
fn publisher(
    q: &Queue,
    count: Option<usize>,
    stop: &AtomicBool,
) -> BoxResult<(Vec<f64>, Vec<f64>)> {
    let started = Instant::now();
    let (mut all, mut late) = (Vec::new(), Vec::new());
    let p = payload(0);
    while count.is_none_or(|c| all.len() < c) && !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        q.publish(OTHER_TOPIC, &p, PublishOptions::new())?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        all.push(us);
        if started.elapsed() >= Duration::from_millis(200) {
            late.push(us);
        }
        std::thread::sleep(PACE.saturating_sub(t.elapsed()));
    }
    Ok((all, late))
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// (p50, p99, max) in the units given.
fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (
        nearest_rank(&v, 0.5),
        nearest_rank(&v, 0.99),
        v.last().copied().unwrap_or(0.0),
    )
}

/// Writes `n` dead letters of the bench group: messages published a day ago, each with a
/// dead delivery (one attempt, its error) and the failed attempt that killed it.
fn fill_dead(path: &Path, n: u64) -> BoxResult<()> {
    write_rows(path, n, &|tx, group_id, then, before| {
        tx.execute(
            "INSERT INTO ferrymq_deliveries (message_id, group_id, state, due_at, attempt, last_error)
             SELECT id, ?1, 3, ?2 + id % 1000, 1, 'bench: poison' FROM ferrymq_messages WHERE id > ?3",
            params![group_id, then, before],
        )?;
        tx.execute(
            "INSERT INTO ferrymq_attempts (message_id, group_id, attempt, started_at, ended_at, outcome, error)
             SELECT id, ?1, 1, ?2, ?2, 'nack', 'bench: poison' FROM ferrymq_messages WHERE id > ?3",
            params![group_id, then, before],
        )?;
        Ok(())
    })
}

/// The markdown section of a result.
pub fn table(r: &Result, n: u64) -> String {
    format!(
        "## DLQ: redrive(group, None) of {} dead letters while a publisher runs\n\n\
         | measure | value |\n|---|---:|\n\
         | dead letters at the start | {} |\n\
         | redriven | {} |\n\
         | redrive total time | {:.2} s |\n\
         | write transactions of the redrive | {} |\n\
         | write-lock hold per transaction, p50 / p99 / longest | {:.2} / {:.2} / {:.2} ms |\n\
         | longest of them to its last statement (before COMMIT) | {:.2} ms |\n\
         | publisher p50 / p99, nothing else running | {:.0} / {:.0} µs |\n\
         | publisher p50 / p99 / max during the redrive ({} publishes) | {:.0} / {:.0} / {:.0} µs |\n\
         | peak RSS | {:.1} MiB |\n\n\
         - the dead letters (message, dead delivery, failed attempt) were written with SQL in \
         {:.1} s (untimed); the publisher sends one single message per ms to another topic \
         with its own group; a hold is one redrive transaction from BEGIN IMMEDIATE granted \
         to COMMIT done (a COMMIT may run a WAL auto-checkpoint, which other writers do not \
         wait for).\n",
        crate::report::thousands(n),
        crate::report::thousands(r.dead),
        crate::report::thousands(r.redriven),
        r.redrive_secs,
        r.transactions,
        r.p50_hold_ms,
        r.p99_hold_ms,
        r.longest_hold_ms,
        r.longest_work_ms,
        r.quiet_p50_us,
        r.quiet_p99_us,
        r.during_publishes,
        r.during_p50_us,
        r.during_p99_us,
        r.during_max_us,
        r.rss_kib as f64 / 1024.0,
        r.fill_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redrive_line_round_trips() {
        let r = Result {
            dead: 1000,
            redriven: 1000,
            fill_secs: 1.5,
            redrive_secs: 2.25,
            transactions: 7,
            longest_hold_ms: 8.5,
            p99_hold_ms: 8.25,
            p50_hold_ms: 1.5,
            longest_work_ms: 4.25,
            quiet_p50_us: 100.0,
            quiet_p99_us: 300.0,
            during_p50_us: 120.0,
            during_p99_us: 9000.0,
            during_max_us: 9500.0,
            during_publishes: 2000,
            rss_kib: 1234,
        };
        assert_eq!(Result::parse(&r.to_line()).unwrap(), r);
    }

    #[test]
    fn a_small_redrive_runs() {
        let dir = tempfile::tempdir().unwrap();
        let r = measure(&dir.path().join("q.db"), 2000).unwrap();
        assert_eq!((r.dead, r.redriven), (2000, 2000));
        assert!(r.transactions >= 4);
    }
}
