//! Re-exec plumbing. Every measurement runs in a child process of its own: a fresh heap,
//! so the peak RSS (`VmHWM`) it reports is that workload's alone, and no workload's
//! leftovers (page cache, threads, WAL files) disturb the next one. The child is this
//! binary with a hidden subcommand; it ends by printing one `result key=value ...` line,
//! which the parent parses.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

pub type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Hidden subcommand: run one job (`__run <kind> <side> <n> <retained> <groups>`).
pub const RUN: &str = "__run";
/// Hidden subcommand: the consumer of the cross-process W4 run
/// (`__w4-consumer <side> <db> <n>`).
pub const W4_CONSUMER: &str = "__w4-consumer";

/// What one job measured. Rate jobs fill `ops` and `secs`; latency jobs the percentiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub ops: u64,
    pub secs: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Peak resident set of the process(es) that ran the job, in KiB.
    pub rss_kib: u64,
    /// Untimed preparation (retained rows), in seconds.
    pub prep_secs: f64,
    /// Writes per commit in the timed part, from `Queue::group_commit_counts` (ferrymq
    /// publish jobs only; 0 elsewhere).
    pub per_commit: f64,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        }
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn to_line(&self) -> String {
        format!(
            "result ops={} secs={} p50_us={} p99_us={} rss_kib={} prep_secs={} per_commit={}",
            self.ops,
            self.secs,
            self.p50_us,
            self.p99_us,
            self.rss_kib,
            self.prep_secs,
            self.per_commit
        )
    }

    pub fn parse(line: &str) -> BoxResult<Measured> {
        let rest = line
            .strip_prefix("result ")
            .ok_or_else(|| format!("not a result line: {line:?}"))?;
        let mut m = Measured::default();
        for pair in rest.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("bad field {pair:?}"))?;
            match k {
                "ops" => m.ops = v.parse()?,
                "secs" => m.secs = v.parse()?,
                "p50_us" => m.p50_us = v.parse()?,
                "p99_us" => m.p99_us = v.parse()?,
                "rss_kib" => m.rss_kib = v.parse()?,
                "prep_secs" => m.prep_secs = v.parse()?,
                "per_commit" => m.per_commit = v.parse()?,
                _ => return Err(format!("unknown field {k:?}").into()),
            }
        }
        Ok(m)
    }
}

/// This process's peak resident set (`VmHWM` of /proc/self/status), in KiB.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn this_binary(args: &[String]) -> BoxResult<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
    Ok(cmd)
}

/// Finds the last result line of a child's output.
fn result_of(output: &str) -> BoxResult<Measured> {
    let line = output
        .lines()
        .rev()
        .find(|l| l.starts_with("result "))
        .ok_or_else(|| format!("the child printed no result line; its output: {output:?}"))?;
    Measured::parse(line)
}

/// Runs this binary with `args` to its end and returns the result it printed.
pub fn run_to_end(args: &[String]) -> BoxResult<Measured> {
    let out = this_binary(args)?.stdout(Stdio::piped()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("child {args:?} failed ({}); output: {stdout}", out.status).into());
    }
    result_of(&stdout)
}

/// A child that first prints `ready`, then works, then prints its result line.
pub struct ReadyChild {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl ReadyChild {
    /// Starts the child and waits until it printed `ready`.
    pub fn start(args: &[String]) -> BoxResult<ReadyChild> {
        let mut child = this_binary(args)?.stdout(Stdio::piped()).spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                let _ = child.wait();
                return Err(format!("child {args:?} ended before it was ready").into());
            }
            if line.trim() == "ready" {
                return Ok(ReadyChild { child, stdout });
            }
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child's end and returns the result it printed.
    pub fn finish(self) -> BoxResult<Measured> {
        result_of(&self.finish_output()?)
    }

    /// Waits for the child's end and returns its last line starting with `prefix`.
    pub fn finish_line(self, prefix: &str) -> BoxResult<String> {
        let rest = self.finish_output()?;
        rest.lines()
            .rev()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .ok_or_else(|| format!("the child printed no {prefix:?} line: {rest:?}").into())
    }

    fn finish_output(mut self) -> BoxResult<String> {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest)?;
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("child failed ({status}); output: {rest}").into());
        }
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_round_trips() {
        let m = Measured {
            ops: 20_000,
            secs: 0.5,
            p50_us: 120.5,
            p99_us: 900.0,
            rss_kib: 12_345,
            prep_secs: 1.25,
            per_commit: 3.5,
        };
        assert_eq!(Measured::parse(&m.to_line()).unwrap(), m);
        assert!(Measured::parse("nonsense").is_err());
    }

    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_kib() > 0);
    }
}
