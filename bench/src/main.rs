//! ferrymq-bench: ferrymq and a bare-rusqlite baseline measured side by side in one run,
//! against the targets of docs/DESIGN.md ("Performance targets").
//!
//! ```text
//! cargo run --release -p ferrymq-bench -- [--quick] [--only W1,W1x8,W2,W3,W4,W5,W6,DLQ,IDLE]
//!                                         [--retained N] [--dead N] [--repeat N]
//! ```
//!
//! Each measurement runs in a child process of its own (this binary re-executed with a
//! hidden subcommand, see `child`), on a fresh file in a fresh temp dir, and reports its
//! peak RSS. Modules: `job` (what one child runs), `workloads` (the ferrymq side),
//! `baseline` (the bare-rusqlite side), `latency` (W4, both sides), `report` (rows,
//! targets, the markdown table), `redrive` (DLQ: a redrive of a large dead-letter queue
//! beside a publisher; ferrymq only, a table of its own), `idle` (IDLE: what 50
//! consumer processes waiting in receive cost; its own table too).

mod baseline;
mod child;
mod idle;
mod job;
mod latency;
mod redrive;
mod report;
mod workloads;

use child::{BoxResult, Measured};
use job::Job;
use report::{Counts, thousands};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
usage: ferrymq-bench [--quick] [--only W1,W1x8,W2,W3,W4,W5,W6,DLQ,IDLE] [--retained N] [--dead N]
                     [--repeat N]

  --quick        every count about 10x smaller (CI); W5 keeps 20,000 retained messages,
                 DLQ redrives 20,000 dead letters
  --only LIST    run only these workloads (comma-separated)
  --retained N   acked messages kept in the file for W5 (default 1,000,000; quick 20,000)
  --dead N       dead letters redriven in DLQ (default 1,000,000; quick 20,000)
                 (IDLE: 50 consumer processes wait 10 s; quick 3 s)
  --repeat N     run every measurement N times and keep the best (default 1)

environment:
  FERRYMQ_BENCH_SYNC=full     synchronous=FULL for ferrymq and the baseline (default normal)
  FERRYMQ_BENCH_THREADS=N     publishing threads in W1x8 (default 8)
  FERRYMQ_BENCH_KEY=1         every file encrypted (ferrymq's and the baseline's, one raw key)";

const GROUPS: [&str; 9] = ["W1", "W1x8", "W2", "W3", "W4", "W5", "W6", "DLQ", "IDLE"];

#[derive(Debug, Default)]
struct Args {
    quick: bool,
    only: Option<Vec<String>>,
    retained: Option<u64>,
    dead: Option<u64>,
    repeat: u32,
    help: bool,
}

fn parse_args(args: &[String]) -> BoxResult<Args> {
    let mut a = Args {
        repeat: 1,
        ..Args::default()
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--only" => {
                let list = value("--only")?;
                let mut only = Vec::new();
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let group = GROUPS
                        .iter()
                        .find(|g| g.eq_ignore_ascii_case(name))
                        .ok_or_else(|| format!("unknown workload {name:?}; known: {GROUPS:?}"))?;
                    only.push((*group).to_owned());
                }
                a.only = Some(only);
            }
            "--retained" => a.retained = Some(value("--retained")?.replace('_', "").parse()?),
            "--dead" => a.dead = Some(value("--dead")?.replace('_', "").parse()?),
            "--repeat" => a.repeat = value("--repeat")?.parse::<u32>()?.max(1),
            "-h" | "--help" => a.help = true,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    Ok(a)
}

fn counts(a: &Args) -> Counts {
    let c = if a.quick {
        Counts {
            publish: 2_000,
            batch: 10_000,
            drain: 2_000,
            latency: 1_000,
            retained: 20_000,
            fan_drain: 500,
        }
    } else {
        Counts {
            publish: 20_000,
            batch: 100_000,
            drain: 20_000,
            latency: 3_000,
            retained: 1_000_000,
            fan_drain: 5_000,
        }
    };
    Counts {
        retained: a.retained.unwrap_or(c.retained),
        ..c
    }
}

/// Dead letters redriven in DLQ.
fn dead_count(a: &Args) -> u64 {
    a.dead.unwrap_or(if a.quick { 20_000 } else { 1_000_000 })
}

/// DLQ, when selected: one run (the redrive empties what it measures), its own table.
fn run_dlq(a: &Args) -> Option<String> {
    if a.only
        .as_ref()
        .is_some_and(|o| !o.iter().any(|g| g == "DLQ"))
    {
        return None;
    }
    let n = dead_count(a);
    eprint!(
        "[DLQ] redrive of {} dead letters beside a publisher ... ",
        report::thousands(n)
    );
    match redrive::run_child(n) {
        Ok(r) => {
            eprintln!(
                "{:.2} s, longest hold {:.2} ms",
                r.redrive_secs, r.longest_hold_ms
            );
            Some(redrive::table(&r, n))
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            Some(String::new())
        }
    }
}

/// IDLE, when selected: one run, its own table.
fn run_idle(a: &Args) -> Option<String> {
    if a.only
        .as_ref()
        .is_some_and(|o| !o.iter().any(|g| g == "IDLE"))
    {
        return None;
    }
    let quiet = std::time::Duration::from_secs(if a.quick { 3 } else { 10 });
    eprint!(
        "[IDLE] {} consumer processes waiting {} s ... ",
        idle::CONSUMERS,
        quiet.as_secs()
    );
    match idle::run(quiet) {
        Ok(r) => {
            eprintln!(
                "{:.2} % of one core, {} of {} woken, the last {:.1} ms after the publishes began",
                r.core_percent(),
                r.woken,
                r.consumers,
                r.slowest_ms
            );
            // Every consumer must have had its message: a lost wake-up is a failure.
            Some(if r.woken == r.consumers {
                idle::table(&r)
            } else {
                String::new()
            })
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            Some(String::new())
        }
    }
}

/// Keeps the better of two runs of one job: the higher rate, the lower percentiles, the
/// higher peak RSS.
fn best(a: &Measured, b: &Measured) -> Measured {
    let mut m = if b.rate() > a.rate() { b } else { a }.clone();
    if a.p50_us > 0.0 && b.p50_us > 0.0 {
        m.p50_us = a.p50_us.min(b.p50_us);
        m.p99_us = a.p99_us.min(b.p99_us);
    }
    m.rss_kib = a.rss_kib.max(b.rss_kib);
    m.prep_secs = a.prep_secs.max(b.prep_secs);
    m
}

fn summary(m: &Measured) -> String {
    let what = if m.secs > 0.0 {
        format!(
            "{} ops/s ({:.2} s)",
            thousands(m.rate().round() as u64),
            m.secs
        )
    } else {
        format!("p50 {:.0} µs, p99 {:.0} µs", m.p50_us, m.p99_us)
    };
    let what = if m.per_commit > 0.0 {
        format!("{what}, {:.2} writes/commit", m.per_commit)
    } else {
        what
    };
    let prep = if m.prep_secs > 0.0 {
        format!(", prepared in {:.1} s", m.prep_secs)
    } else {
        String::new()
    };
    format!("{what}, peak RSS {:.1} MiB{prep}", m.rss_mib())
}

fn run_parent(args: &[String]) -> BoxResult<bool> {
    let a = parse_args(args)?;
    if a.help {
        println!("{USAGE}");
        return Ok(true);
    }
    let started = Instant::now();
    let c = counts(&a);
    let rows: Vec<_> = report::rows(&c)
        .into_iter()
        .filter(|r| {
            a.only
                .as_ref()
                .is_none_or(|o| o.iter().any(|g| g == r.group))
        })
        .collect();
    let mut jobs: Vec<Job> = Vec::new();
    for r in &rows {
        for j in [r.ferrymq, r.baseline] {
            if !jobs.contains(&j) {
                jobs.push(j);
            }
        }
    }
    let mut results: HashMap<Job, Measured> = HashMap::new();
    let mut all_ok = true;
    for round in 1..=a.repeat {
        for (i, j) in jobs.iter().enumerate() {
            eprint!("[{round}.{}/{}] {} ... ", i + 1, jobs.len(), j.label());
            match child::run_to_end(&j.to_args()) {
                Ok(m) => {
                    eprintln!("{}", summary(&m));
                    let merged = results
                        .get(j)
                        .map_or_else(|| m.clone(), |old| best(old, &m));
                    results.insert(*j, merged);
                }
                Err(e) => {
                    eprintln!("FAILED: {e}");
                    all_ok = false;
                }
            }
        }
    }
    let dlq = run_dlq(&a);
    all_ok &= dlq.as_ref().is_none_or(|t| !t.is_empty());
    let idle = run_idle(&a);
    all_ok &= idle.as_ref().is_none_or(|t| !t.is_empty());
    if cfg!(debug_assertions) {
        println!("**Debug build: these numbers mean nothing; run with --release.**\n");
    }
    if !rows.is_empty() {
        print_table(&a, &rows, &results);
    }
    for t in [dlq, idle].into_iter().flatten().filter(|t| !t.is_empty()) {
        println!("\n{t}");
    }
    println!("\nTotal time {:.1} s.", started.elapsed().as_secs_f64());
    Ok(all_ok)
}

fn print_table(a: &Args, rows: &[report::Row], results: &HashMap<Job, Measured>) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "## ferrymq vs bare rusqlite ({} run{})\n",
        if a.quick { "quick" } else { "full" },
        if a.repeat > 1 {
            format!(", best of {}", a.repeat)
        } else {
            String::new()
        }
    );
    println!(
        "SQLite {}, {cpus} CPUs, 256-byte payloads, synchronous={}, WAL; one child process \
         and one fresh file per measurement.\n",
        rusqlite::version(),
        workloads::synchronous().to_uppercase()
    );
    print!("{}", report::table(rows, results));
    println!(
        "\n- ratio = ferrymq / baseline in every row: for rates (ops/s) higher is better, for \
         latencies (µs) lower is better.\n\
         - baseline: bare rusqlite, one table `q` with an index on (state, due_at), cached \
         statements, the same pragmas. Publish = one autocommit INSERT; W2 = 1,000 INSERTs \
         per transaction; receive = one transaction (SELECT oldest ready row, UPDATE it \
         taken with a token), ack = a second one (UPDATE to acked, rows kept).\n\
         - W1x8 compares {} threads publishing through one cloned `Queue` against the \
         baseline's single-thread single-commit W1 loop.\n\
         - W4: a publisher sends one message per ms with its send time in the payload; \
         latency = arrival - send, arrival taken when receive (or the claim) returns, before the ack. ferrymq's consumer blocks in receive(max 1, wait); the \
         baseline's polls with SELECT EXISTS and sleeps {} µs between empty polls, then \
         claims + acks. Cross-process: the consumer is a child process.\n\
         - W5: the baseline column is ferrymq itself on an empty file; the retained acked \
         rows are written with SQL straight into ferrymq's tables before the timed part.\n\
         - W6: the topic has 1, 8 or 64 consumer groups. Publish: W1 one commit each, every \
         group gets each message. Drain: the messages published untimed, then up to 8 \
         threads take the groups in turns, receive(max 1) + ack, until every group is \
         empty; the rate counts deliveries (messages x groups), the baseline is W3's loop.\n\
         - peak RSS: VmHWM of the child process(es) that ran that column's measurement.",
        workloads::threads(),
        latency::BASELINE_POLL.as_micros()
    );
    for r in rows.iter().filter(|r| r.group.starts_with("W1")) {
        if let Some(m) = results.get(&r.ferrymq) {
            println!(
                "- {}: {:.2} publishes per commit on average (ferrymq's group commit counters).",
                r.group, m.per_commit
            );
        }
    }
    for r in rows.iter().filter(|r| r.group == "W5") {
        if let Some(m) = results.get(&r.ferrymq) {
            println!(
                "- {}: {} retained rows prepared in {:.2} s (untimed).",
                r.ferrymq.kind.name(),
                thousands(r.ferrymq.retained),
                m.prep_secs
            );
        }
    }
}

fn run_child(args: &[String]) -> BoxResult<bool> {
    let job = Job::from_args(args)?;
    println!("{}", job::run(&job)?.to_line());
    Ok(true)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some(child::RUN) => run_child(&args[1..]),
        Some(child::W4_CONSUMER) => latency::consumer_main(&args[1..]).map(|()| true),
        Some(redrive::RUN) => redrive::child_main(&args[1..]).map(|()| true),
        Some(idle::CONSUMER) => idle::consumer_main(&args[1..]).map(|()| true),
        _ => run_parent(&args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ferrymq-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn arguments_parse() {
        let a = parse_args(&args(
            "--quick --only w1,W4,dlq --retained 1_000 --dead 2_000 --repeat 3",
        ))
        .unwrap();
        assert!(a.quick);
        assert_eq!(
            a.only,
            Some(vec!["W1".to_owned(), "W4".to_owned(), "DLQ".to_owned()])
        );
        assert_eq!(dead_count(&a), 2000);
        assert_eq!(counts(&a).retained, 1000);
        assert_eq!(a.repeat, 3);
        assert!(parse_args(&args("--only W9")).is_err());
        assert!(parse_args(&args("--retained")).is_err());
        assert_eq!(counts(&parse_args(&[]).unwrap()).retained, 1_000_000);
    }
}
