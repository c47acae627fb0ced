//! The rows of the result table: which two measurements each row compares, on which
//! metric, against which docs/DESIGN.md target; and the markdown that shows them.

use crate::child::Measured;
use crate::job::{Job, Kind, Side};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// ops/s; ratio = ferrymq / baseline, higher is better.
    Rate,
    /// µs; ratio = ferrymq / baseline, lower is better.
    P50,
    P99,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// ratio >= x
    AtLeast(f64),
    /// ratio <= x
    AtMost(f64),
    /// ferrymq's own value below x µs, whatever the baseline does.
    BelowUs(f64),
    None,
}

#[derive(Debug, Clone)]
pub struct Row {
    /// The `--only` name (W1, W1x8, W2, W3, W4, W5, W6).
    pub group: &'static str,
    pub label: String,
    pub ferrymq: Job,
    /// The job of the baseline column: bare rusqlite, or ferrymq itself for W5.
    pub baseline: Job,
    pub metric: Metric,
    pub target: Target,
}

/// How many messages each workload handles.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub publish: u64,
    pub batch: u64,
    pub drain: u64,
    pub latency: u64,
    pub retained: u64,
    /// Messages each W6 drain publishes (every group takes each one).
    pub fan_drain: u64,
}

/// W6's fan-outs: one publish to this many groups.
pub const FAN_OUT: [u64; 3] = [1, 8, 64];

fn job(kind: Kind, side: Side, n: u64) -> Job {
    Job {
        kind,
        side,
        n,
        retained: 0,
        groups: 1,
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Every row, in table order.
pub fn rows(c: &Counts) -> Vec<Row> {
    use Kind::*;
    use Side::*;
    let (f, b) = (Ferrymq, Baseline);
    let pair = |kind, n| (job(kind, f, n), job(kind, b, n));
    let row = |group, label: String, (ferrymq, baseline), metric, target| Row {
        group,
        label,
        ferrymq,
        baseline,
        metric,
        target,
    };
    let w1 = pair(Publish, c.publish);
    let w3 = pair(Drain, c.drain);
    let w4i = pair(LatencyIn, c.latency);
    let w4x = pair(LatencyCross, c.latency);
    let retained = |j: Job| Job {
        retained: c.retained,
        ..j
    };
    let mut rows = vec![
        row(
            "W1",
            format!(
                "W1 durable publish, 1 commit each ({} msgs)",
                thousands(c.publish)
            ),
            w1,
            Metric::Rate,
            Target::AtLeast(0.8),
        ),
        row(
            "W1x8",
            format!(
                "W1x8 same from {} threads, one Queue (vs W1 baseline loop)",
                crate::workloads::threads()
            ),
            (job(Publish8, f, c.publish), w1.1),
            Metric::Rate,
            Target::AtLeast(3.0),
        ),
        row(
            "W2",
            format!("W2 publish_batch of 1,000 ({} msgs)", thousands(c.batch)),
            pair(Batch, c.batch),
            Metric::Rate,
            Target::AtLeast(0.7),
        ),
        row(
            "W3",
            format!(
                "W3 receive(max 1) + ack drain ({} msgs)",
                thousands(c.drain)
            ),
            w3,
            Metric::Rate,
            Target::AtLeast(0.9),
        ),
        row(
            "W4",
            format!(
                "W4 in-process latency p50 ({} msgs @ 1k/s)",
                thousands(c.latency)
            ),
            w4i,
            Metric::P50,
            Target::AtMost(2.0),
        ),
        row(
            "W4",
            "W4 in-process latency p99".into(),
            w4i,
            Metric::P99,
            Target::AtMost(2.0),
        ),
        row(
            "W4",
            "W4 cross-process latency p50".into(),
            w4x,
            Metric::P50,
            Target::BelowUs(300.0),
        ),
        row(
            "W4",
            "W4 cross-process latency p99".into(),
            w4x,
            Metric::P99,
            Target::None,
        ),
        row(
            "W5",
            format!(
                "W5 W1 with {} acked msgs retained (vs ferrymq W1)",
                thousands(c.retained)
            ),
            (retained(w1.0), w1.0),
            Metric::Rate,
            Target::AtLeast(0.8),
        ),
        row(
            "W5",
            format!(
                "W5 W3 with {} acked msgs retained (vs ferrymq W3)",
                thousands(c.retained)
            ),
            (retained(w3.0), w3.0),
            Metric::Rate,
            Target::AtLeast(0.8),
        ),
    ];
    let fan = |j: Job, groups| Job { groups, ..j };
    let groups = |g: u64| {
        if g == 1 {
            "1 group".to_owned()
        } else {
            format!("{g} groups")
        }
    };
    for g in FAN_OUT {
        rows.push(row(
            "W6",
            format!("W6 W1 with {} subscribed (vs W1 baseline loop)", groups(g)),
            (fan(w1.0, g), w1.1),
            Metric::Rate,
            if g == 8 {
                Target::AtLeast(0.8)
            } else {
                Target::None
            },
        ));
    }
    let w6d = pair(Drain, c.fan_drain);
    for g in FAN_OUT {
        rows.push(row(
            "W6",
            format!(
                "W6 {} draining {} msgs, deliveries/s (vs W3 baseline)",
                groups(g),
                thousands(c.fan_drain)
            ),
            (fan(w6d.0, g), w6d.1),
            Metric::Rate,
            Target::None,
        ));
    }
    rows
}

fn value(m: &Measured, metric: Metric) -> f64 {
    match metric {
        Metric::Rate => m.rate(),
        Metric::P50 => m.p50_us,
        Metric::P99 => m.p99_us,
    }
}

fn show(v: f64, metric: Metric) -> String {
    match metric {
        Metric::Rate => format!("{} ops/s", thousands(v.round() as u64)),
        Metric::P50 | Metric::P99 => format!("{} µs", thousands(v.round() as u64)),
    }
}

fn target_text(t: Target) -> String {
    match t {
        Target::AtLeast(x) => format!(">= {x:.1}"),
        Target::AtMost(x) => format!("<= {x:.1}"),
        Target::BelowUs(x) => format!("ferrymq < {} µs", thousands(x as u64)),
        Target::None => "-".into(),
    }
}

fn met(t: Target, ratio: f64, ferrymq: f64) -> &'static str {
    let ok = match t {
        Target::AtLeast(x) => ratio >= x,
        Target::AtMost(x) => ratio <= x,
        Target::BelowUs(x) => ferrymq < x,
        Target::None => return "-",
    };
    if ok { "yes" } else { "**NO**" }
}

/// The markdown table; a row whose job failed says so.
pub fn table(rows: &[Row], results: &HashMap<Job, Measured>) -> String {
    let mut out = String::from(
        "| workload | ferrymq | baseline | ratio (ferrymq/baseline) | target | met | peak RSS MiB (ferrymq / baseline) |\n\
         |---|---:|---:|---:|---|---|---:|\n",
    );
    for r in rows {
        let (Some(f), Some(b)) = (results.get(&r.ferrymq), results.get(&r.baseline)) else {
            out.push_str(&format!(
                "| {} | error | error | - | {} | - | - |\n",
                r.label,
                target_text(r.target)
            ));
            continue;
        };
        let (fv, bv) = (value(f, r.metric), value(b, r.metric));
        let ratio = if bv > 0.0 { fv / bv } else { f64::NAN };
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {} | {:.1} / {:.1} |\n",
            r.label,
            show(fv, r.metric),
            show(bv, r.metric),
            ratio,
            target_text(r.target),
            met(r.target, ratio, fv),
            f.rss_mib(),
            b.rss_mib(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn targets_are_judged_in_their_direction() {
        assert_eq!(met(Target::AtLeast(0.8), 0.9, 0.0), "yes");
        assert_eq!(met(Target::AtMost(2.0), 2.5, 0.0), "**NO**");
        assert_eq!(met(Target::BelowUs(5000.0), 9.0, 1200.0), "yes");
    }
}
