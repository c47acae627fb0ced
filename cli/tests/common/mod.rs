//! Runs the built `ferrymq` binary on files the tests prepare with the library.
#![allow(dead_code)]

use ferrymq::{Options, PublishOptions, Queue, ReceiveOptions, RetryPolicy, SubscribeOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrymq");

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

pub fn command(db: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--db")
        .arg(db)
        .env_remove("FERRYMQ_DB")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

fn finish(out: Output) -> Run {
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "the command panicked: {}",
        run.stderr
    );
    run
}

/// `ferrymq --db <db> <args>` with stdin closed (not a terminal).
pub fn run(db: &Path, args: &[&str]) -> Run {
    finish(command(db).args(args).output().unwrap())
}

/// Without `--db`.
pub fn run_bare(args: &[&str]) -> Run {
    finish(
        Command::new(BIN)
            .args(args)
            .env_remove("FERRYMQ_DB")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub q: Queue,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
        Fixture { dir, q }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("q.db")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(&self.db(), args)
    }

    /// A group whose first failure is dead.
    pub fn fragile(&self, group: &str, topic: &str) {
        self.q
            .subscribe(
                group,
                topic,
                SubscribeOptions::new().retry(RetryPolicy::fixed(vec![]).unwrap()),
            )
            .unwrap();
    }

    pub fn publish(&self, topic: &str, payload: &str, o: PublishOptions) -> i64 {
        self.q.publish(topic, payload, o).unwrap()
    }

    /// Receives up to `n` deliveries of the group and nacks them all in one
    /// transaction (fast enough for 100,000).
    pub fn fail(&self, group: &str, n: usize, reason: &str) -> usize {
        let mut failed = 0;
        while failed < n {
            let ds = self
                .q
                .receive(group, ReceiveOptions::new().max((n - failed).min(1000)))
                .unwrap();
            if ds.is_empty() {
                break;
            }
            self.q
                .transaction(|tx| {
                    for d in &ds {
                        tx.nack(d, reason, None)?;
                    }
                    Ok(())
                })
                .unwrap();
            failed += ds.len();
        }
        failed
    }

    /// Counts and dead letters: what a refused command must leave as it was.
    pub fn snapshot(&self) -> (ferrymq::Stats, Vec<i64>) {
        let mut stats = self.q.stats().unwrap();
        for g in stats.groups.values_mut() {
            g.oldest_ready_age = None; // moves on with the clock
        }
        let mut dead = Vec::new();
        for g in stats.groups.keys() {
            dead.extend(self.q.dead_letter_ids(g, 0, None, 10_000).unwrap());
        }
        (stats, dead)
    }
}
