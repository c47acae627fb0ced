//! One measurement: what to run (kind), against what (side), how much. A job travels to
//! its child process as five arguments and runs there in a fresh temp dir.

use crate::child::{BoxResult, Measured, peak_rss_kib};
use crate::{baseline, latency, workloads};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `n` durable publishes, one commit each, one consumer group subscribed.
    Publish,
    /// The same from 8 threads (`FERRYMQ_BENCH_THREADS`) sharing one queue.
    Publish8,
    /// `n` messages in batches of 1,000, one commit per batch.
    Batch,
    /// `n` messages published untimed, then a timed receive(max 1) + ack loop.
    Drain,
    /// `n` messages at 1 ms pace to a consumer thread in the same process.
    LatencyIn,
    /// The same to a consumer in another process.
    LatencyCross,
}

impl Kind {
    const ALL: [(Kind, &'static str); 6] = [
        (Kind::Publish, "publish"),
        (Kind::Publish8, "publish8"),
        (Kind::Batch, "batch"),
        (Kind::Drain, "drain"),
        (Kind::LatencyIn, "latency-in"),
        (Kind::LatencyCross, "latency-cross"),
    ];

    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("?", |p| p.1)
    }

    fn parse(s: &str) -> BoxResult<Kind> {
        Kind::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|p| p.0)
            .ok_or_else(|| format!("unknown job kind {s:?}").into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Ferrymq,
    Baseline,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Ferrymq => "ferrymq",
            Side::Baseline => "baseline",
        }
    }

    pub fn parse(s: &str) -> BoxResult<Side> {
        match s {
            "ferrymq" => Ok(Side::Ferrymq),
            "baseline" => Ok(Side::Baseline),
            _ => Err(format!("unknown side {s:?}").into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Job {
    pub kind: Kind,
    pub side: Side,
    /// Messages timed.
    pub n: u64,
    /// Acked messages kept in the file before the timed part (W5); ferrymq only.
    pub retained: u64,
    /// Consumer groups subscribed to the topic (W6; 1 elsewhere); ferrymq only. A drain
    /// then drains every group, and counts each group's delivery.
    pub groups: u64,
}

impl Job {
    pub fn to_args(self) -> Vec<String> {
        vec![
            crate::child::RUN.to_owned(),
            self.kind.name().to_owned(),
            self.side.name().to_owned(),
            self.n.to_string(),
            self.retained.to_string(),
            self.groups.to_string(),
        ]
    }

    /// Parses the arguments after the hidden subcommand.
    pub fn from_args(args: &[String]) -> BoxResult<Job> {
        let [kind, side, n, retained, groups] = args else {
            return Err(
                format!("expected <kind> <side> <n> <retained> <groups>, got {args:?}").into(),
            );
        };
        Ok(Job {
            kind: Kind::parse(kind)?,
            side: Side::parse(side)?,
            n: n.parse()?,
            retained: retained.parse()?,
            groups: groups.parse()?,
        })
    }

    pub fn label(self) -> String {
        let retained = if self.retained > 0 {
            format!(", {} retained", self.retained)
        } else {
            String::new()
        };
        let groups = if self.groups > 1 {
            format!(", {} groups", self.groups)
        } else {
            String::new()
        };
        format!(
            "{} {} n={}{retained}{groups}",
            self.kind.name(),
            self.side.name(),
            self.n
        )
    }
}

/// Runs the job in this process, in a fresh temp dir; called inside the child.
pub fn run(job: &Job) -> BoxResult<Measured> {
    let dir = tempfile::tempdir()?;
    let path = dir.path();
    let mut m = match (job.side, job.kind) {
        (side, Kind::LatencyIn) => latency::in_process(side, job.n, path)?,
        (side, Kind::LatencyCross) => latency::cross_process(side, job.n, path)?,
        (Side::Ferrymq, _) => workloads::run(job, path)?,
        (Side::Baseline, _) if job.retained > 0 || job.groups > 1 => {
            return Err("the baseline has no retained-rows or groups variant".into());
        }
        (Side::Baseline, kind) => baseline::run(kind, job.n, path)?,
    };
    m.rss_kib = m.rss_kib.max(peak_rss_kib());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_its_arguments() {
        let job = Job {
            kind: Kind::LatencyCross,
            side: Side::Baseline,
            n: 3000,
            retained: 7,
            groups: 8,
        };
        let args = job.to_args();
        assert_eq!(Job::from_args(&args[1..]).unwrap(), job);
    }
}
