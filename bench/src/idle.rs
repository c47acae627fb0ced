//! IDLE: what waiting costs. 50 consumer processes block in `receive` on one file with
//! nothing to receive. Once they all wait (and a settling second has passed), the parent
//! reads their CPU time (user + system, from /proc) at the start and the end of a quiet
//! spell, then publishes one message each, and every consumer says whether a message
//! reached it and when (wall-clock ns, which every process shares): the slowest says
//! whether the wake-up reached every process. ferrymq only, a table of its own: the bare
//! loop has no wait.
//!
//! Runs as `__idle-consumer <db> <secs>` children of this binary, each on its own
//! connection, as separate services on one host would.

use crate::child::{BoxResult, ReadyChild};
use crate::latency::now_ns;
use crate::workloads::{GROUP, TOPIC, open};
use ferrymq::{PublishOptions, ReceiveOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Hidden subcommand: `__idle-consumer <db> <secs>`.
pub const CONSUMER: &str = "__idle-consumer";
pub const CONSUMERS: usize = 50;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Result {
    pub consumers: usize,
    pub quiet_secs: f64,
    /// CPU time of every consumer during the quiet spell, summed, in seconds.
    pub cpu_secs: f64,
    /// Consumers whose receive returned the message published after the quiet spell.
    pub woken: usize,
    /// From the first of the publishes to the last consumer's arrival, in ms.
    pub slowest_ms: f64,
}

impl Result {
    /// The consumers' CPU as a share of one core over the quiet spell, in percent.
    pub fn core_percent(&self) -> f64 {
        100.0 * self.cpu_secs / self.quiet_secs
    }
}

/// The CPU time (user + system) process `pid` has used, in seconds.
fn cpu_secs(pid: u32) -> BoxResult<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th of the whole line.
    let rest = &stat[stat.rfind(')').ok_or("no command name in /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).ok_or("no utime")?.parse::<f64>()?
        + fields.get(12).ok_or("no stime")?.parse::<f64>()?;
    // SAFETY: sysconf reads a constant.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_sec)
}

fn total_cpu_secs(pids: &[u32]) -> BoxResult<f64> {
    pids.iter().map(|&p| cpu_secs(p)).sum()
}

/// The parent's side: `CONSUMERS` waiting children, `quiet` of nothing, then one
/// message each.
pub fn run(quiet: Duration) -> BoxResult<Result> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ferrymq.db");
    let q = open(&path)?;
    let args = [
        CONSUMER.to_owned(),
        path.to_string_lossy().into_owned(),
        // The receive's wait outlasts the quiet spell: it ends with the message.
        (quiet.as_secs() + 60).to_string(),
    ];
    let children = (0..CONSUMERS)
        .map(|_| ReadyChild::start(&args))
        .collect::<BoxResult<Vec<_>>>()?;
    // Past the receives' first claim and their statements' preparation.
    std::thread::sleep(Duration::from_secs(1));
    let pids: Vec<u32> = children.iter().map(ReadyChild::id).collect();
    let (started, cpu_before) = (Instant::now(), total_cpu_secs(&pids)?);
    std::thread::sleep(quiet);
    let cpu_secs = total_cpu_secs(&pids)? - cpu_before;
    let quiet_secs = started.elapsed().as_secs_f64();
    let published = now_ns();
    for i in 0..CONSUMERS {
        q.publish(TOPIC, format!("wake {i}"), PublishOptions::new())?;
    }
    let mut r = Result {
        consumers: CONSUMERS,
        quiet_secs,
        cpu_secs,
        woken: 0,
        slowest_ms: 0.0,
    };
    for c in children {
        let line = c.finish_line("idle ")?;
        let mut fields = line.split_whitespace().skip(1);
        r.woken += fields.next().ok_or("no count")?.parse::<usize>()?;
        let arrived: u64 = fields.next().ok_or("no arrival time")?.parse()?;
        let ms = arrived.saturating_sub(published) as f64 / 1e6;
        r.slowest_ms = r.slowest_ms.max(ms);
    }
    Ok(r)
}

/// The child's side: one receive of at most one message, and how many it got.
pub fn consumer_main(args: &[String]) -> BoxResult<()> {
    let [path, wait] = args else {
        return Err(format!("expected <db> <secs>, got {args:?}").into());
    };
    let q = open(Path::new(path))?;
    println!("ready");
    let got = q.receive(
        GROUP,
        ReceiveOptions::new()
            .max(1)
            .wait(Duration::from_secs(wait.parse()?)),
    )?;
    let arrived = now_ns();
    for d in &got {
        q.ack(d)?;
    }
    println!("idle {} {arrived}", got.len());
    Ok(())
}

/// The markdown section of a result.
pub fn table(r: &Result) -> String {
    format!(
        "## IDLE: {} consumer processes waiting in receive\n\n\
         | measure | value |\n|---|---:|\n\
         | quiet spell (nothing published) | {:.1} s |\n\
         | CPU of all the consumer processes in the spell | {:.3} s |\n\
         | as a share of one core | {:.2} % |\n\
         | consumers woken by the publish that ended it | {} of {} |\n\
         | from the first of the 50 publishes to the last consumer's wake-up | {:.1} ms |\n\n\
         - each consumer is a process of its own with one `receive(max 1)` whose wait \
         outlasts the spell, started a second before it; CPU is user + system time from \
         /proc/<pid>/stat at the spell's start and end (clock ticks).\n",
        r.consumers,
        r.quiet_secs,
        r.cpu_secs,
        r.core_percent(),
        r.woken,
        r.consumers,
        r.slowest_ms,
    )
}
