//! W4, publish-to-receive latency at 1,000 msg/s: a publisher sends one message every
//! millisecond (on an absolute schedule) with its send time in the payload; a consumer
//! blocked in receive records arrival time minus send time, then acks. The consumer is a
//! thread of the same process (in-process) or a child process (cross-process), so times
//! are wall-clock nanoseconds, which every process on the machine shares.
//!
//! ferrymq's consumer blocks in `receive(max 1, wait)`. The baseline's polls: a plain
//! `SELECT EXISTS` for a ready row, sleeping 100 µs between empty polls; on a hit it runs
//! the baseline's claim transaction, records the arrival, and acks.

use crate::baseline::Bare;
use crate::child::{BoxResult, Measured, ReadyChild, W4_CONSUMER, peak_rss_kib};
use crate::job::Side;
use crate::workloads::{self, GROUP, TOPIC, payload, stamp};
use ferrymq::{PublishOptions, Queue, ReceiveOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Pause between two empty polls of the baseline consumer.
pub const BASELINE_POLL: Duration = Duration::from_micros(100);
/// Gap between two sends: 1,000 msg/s.
const PACE: Duration = Duration::from_millis(1);

trait Publisher: Send {
    fn send(&mut self, payload: &[u8]) -> BoxResult<()>;
}

trait Consumer: Send {
    /// Blocks until one message arrives (or `give_up`); returns its payload and its
    /// arrival time, and acks it.
    fn take(&mut self, give_up: Instant) -> BoxResult<Option<(Vec<u8>, u64)>>;
}

/// Wall-clock ns: every process on the machine reads the same clock.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Publisher for Queue {
    fn send(&mut self, payload: &[u8]) -> BoxResult<()> {
        self.publish(TOPIC, payload, PublishOptions::new())?;
        Ok(())
    }
}

impl Consumer for Queue {
    fn take(&mut self, give_up: Instant) -> BoxResult<Option<(Vec<u8>, u64)>> {
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let wait = left.min(Duration::from_secs(1));
            if let Some(d) = self
                .receive(GROUP, ReceiveOptions::new().max(1).wait(wait))?
                .pop()
            {
                let at = now_ns();
                self.ack(&d)?;
                return Ok(Some((d.payload, at)));
            }
        }
    }
}

impl Publisher for Bare {
    fn send(&mut self, payload: &[u8]) -> BoxResult<()> {
        self.publish(payload)
    }
}

impl Consumer for Bare {
    fn take(&mut self, give_up: Instant) -> BoxResult<Option<(Vec<u8>, u64)>> {
        while Instant::now() < give_up {
            if self.has_ready()? {
                if let Some((id, token, payload)) = self.claim()? {
                    let at = now_ns();
                    self.ack(id, token)?;
                    return Ok(Some((payload, at)));
                }
            }
            std::thread::sleep(BASELINE_POLL);
        }
        Ok(None)
    }
}

fn publisher(side: Side, path: &Path) -> BoxResult<Box<dyn Publisher>> {
    Ok(match side {
        Side::Ferrymq => Box::new(workloads::open(path)?),
        Side::Baseline => Box::new(Bare::open(path)?),
    })
}

fn consumer(side: Side, path: &Path) -> BoxResult<Box<dyn Consumer>> {
    Ok(match side {
        Side::Ferrymq => Box::new(workloads::open(path)?),
        Side::Baseline => Box::new(Bare::open(path)?),
    })
}

fn publish_paced(p: &mut dyn Publisher, n: u64) -> BoxResult<()> {
    let mut buf = payload(0);
    let start = Instant::now();
    for i in 0..n {
        let due = start + PACE * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        stamp(&mut buf, now_ns());
        p.send(&buf)?;
    }
    Ok(())
}

/// Takes `n` messages; returns each one's latency in microseconds.
fn consume(c: &mut dyn Consumer, n: u64) -> BoxResult<Vec<f64>> {
    let give_up = Instant::now() + PACE * n as u32 + Duration::from_secs(30);
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (p, at) = c.take(give_up)?.ok_or("W4 consumer gave up waiting")?;
        let sent = u64::from_le_bytes(p[..8].try_into()?);
        out.push(at.saturating_sub(sent) as f64 / 1000.0);
    }
    Ok(out)
}

/// Nearest-rank percentiles p50 and p99.
fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (rank(0.50), rank(0.99))
}

fn measured(n: u64, latencies: Vec<f64>) -> Measured {
    let (p50_us, p99_us) = percentiles(latencies);
    Measured {
        ops: n,
        p50_us,
        p99_us,
        rss_kib: peak_rss_kib(),
        ..Measured::default()
    }
}

/// Publisher and consumer threads in this process; for ferrymq, one `Queue` shared.
pub fn in_process(side: Side, n: u64, dir: &Path) -> BoxResult<Measured> {
    let path = dir.join(format!("{}.db", side.name()));
    let (mut p, mut c): (Box<dyn Publisher>, Box<dyn Consumer>) = match side {
        Side::Ferrymq => {
            let q = workloads::open(&path)?;
            (Box::new(q.clone()), Box::new(q))
        }
        Side::Baseline => (Box::new(Bare::open(&path)?), Box::new(Bare::open(&path)?)),
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let latencies = std::thread::scope(|s| {
        let h = s.spawn(move || {
            let _ = ready_tx.send(());
            consume(&mut *c, n)
        });
        ready_rx.recv()?;
        std::thread::sleep(Duration::from_millis(20));
        publish_paced(&mut *p, n)?;
        h.join().map_err(|_| "the W4 consumer thread panicked")?
    })?;
    Ok(measured(n, latencies))
}

/// The publisher here, the consumer in a child process on the same file.
pub fn cross_process(side: Side, n: u64, dir: &Path) -> BoxResult<Measured> {
    let path = dir.join(format!("{}.db", side.name()));
    let mut p = publisher(side, &path)?;
    let args = [
        W4_CONSUMER.to_owned(),
        side.name().to_owned(),
        path.to_string_lossy().into_owned(),
        n.to_string(),
    ];
    let child = ReadyChild::start(&args)?;
    std::thread::sleep(Duration::from_millis(20));
    publish_paced(&mut *p, n)?;
    let m = child.finish()?;
    Ok(Measured {
        rss_kib: m.rss_kib.max(peak_rss_kib()),
        ..m
    })
}

/// The hidden `__w4-consumer <side> <db> <n>` subcommand: prints `ready`, takes `n`
/// messages, prints its result line.
pub fn consumer_main(args: &[String]) -> BoxResult<()> {
    let [side, path, n] = args else {
        return Err(format!("expected <side> <db> <n>, got {args:?}").into());
    };
    let n: u64 = n.parse()?;
    let mut c = consumer(Side::parse(side)?, Path::new(path))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let latencies = consume(&mut *c, n)?;
    writeln!(out, "{}", measured(n, latencies).to_line())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(v), (50.0, 99.0));
        assert_eq!(percentiles(vec![7.0]), (7.0, 7.0));
    }
}
