//! Prometheus text exposition (format 0.0.4) of a queue file: the gauges of `stats()` per
//! topic and consumer group, and half messages by state. `ferrymq serve --metrics`
//! serves it on `/metrics`; `ferrymq metrics` prints it.
//!
//! Names follow Prometheus' conventions (`ferrymq_` prefix, base units: seconds) and the
//! labels OpenTelemetry's messaging conventions name (`messaging.destination.name`,
//! `messaging.consumer.group.name`) in their short Prometheus form: `topic` and
//! `consumer_group`.
//!
//! The file keeps no running totals (published, acked, nacked, dead, redriven): it keeps
//! rows, and counts them when asked. So the file's series are gauges of what it holds
//! now, and the `_total` counters (and the group-commit histogram) are what the process
//! that renders did through this handle since it opened (`counters`): each process
//! exports its own, as with any Prometheus client, and `sum()` adds them up.

use crate::api::Stats;
use crate::counters::{BATCH_BUCKETS, Event, Snapshot};
use crate::error::Result;
use crate::queue::Queue;
use crate::store;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The exposition of `q`'s file now: `stats()`, then the rolled-back half messages per
/// topic (a second read transaction, so the two may be a commit apart).
pub fn render(q: &Queue) -> Result<String> {
    let stats = q.stats()?;
    let rolled_back = q.inner.read(store::inspect::rolled_back_per_topic)?;
    let mut out = exposition(&stats, &rolled_back);
    out += &counters_exposition(&q.inner.counters.snapshot());
    Ok(out)
}

/// The counters of one handle (`counters::Snapshot`) in the exposition format.
pub fn counters_exposition(s: &Snapshot) -> String {
    let mut out = String::new();
    let families: [(&str, &str, &[Event]); 5] = [
        (
            "ferrymq_messages_published_total",
            "Messages this process published (publish, batches, transactions; a repeated idempotency key counts again).",
            &[Event::Published],
        ),
        (
            "ferrymq_messages_acked_total",
            "Deliveries this process acked.",
            &[Event::Acked],
        ),
        (
            "ferrymq_messages_nacked_total",
            "Deliveries this process nacked (retried or dead-lettered).",
            &[Event::Nacked],
        ),
        (
            "ferrymq_messages_dead_lettered_total",
            "Deliveries a nack of this process sent to the dead-letter queue.",
            &[Event::DeadLettered],
        ),
        (
            "ferrymq_messages_redriven_total",
            "Dead letters this process put back in line.",
            &[Event::Redriven],
        ),
    ];
    for (name, help, events) in families {
        let mut f = Family::new(&mut out, name, "counter", help);
        for ((event, topic, group), n) in &s.events {
            if !events.contains(event) {
                continue;
            }
            match (*event, group.is_empty()) {
                (Event::Published, _) => f.sample(name, &[("topic", topic)], n),
                (Event::Redriven, _) => f.sample(name, &[("consumer_group", group)], n),
                _ => f.sample(name, &[("topic", topic), ("consumer_group", group)], n),
            }
        }
    }
    let name = "ferrymq_checkbacks_total";
    let mut f = Family::new(
        &mut out,
        name,
        "counter",
        "Answers of this process's checkers about half messages, by outcome.",
    );
    for ((event, topic, _), n) in &s.events {
        let outcome = match event {
            Event::CheckCommit => "commit",
            Event::CheckRollback => "rollback",
            Event::CheckUnknown => "unknown",
            _ => continue,
        };
        f.sample(name, &[("topic", topic), ("outcome", outcome)], n);
    }
    let name = "ferrymq_group_commit_batch_size";
    let mut f = Family::new(
        &mut out,
        name,
        "histogram",
        "Writes (single publishes and acks) per group commit of this process.",
    );
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (i, le) in BATCH_BUCKETS.iter().enumerate() {
        cumulative += s.batches[i];
        f.sample(&bucket, &[("le", &le.to_string())], cumulative);
    }
    let count: u64 = s.batches.iter().sum();
    f.sample(&bucket, &[("le", "+Inf")], count);
    f.sample(&format!("{name}_sum"), &[], s.batch_writes);
    f.sample(&format!("{name}_count"), &[], count);
    let name = "ferrymq_busy_waits_total";
    let mut f = Family::new(
        &mut out,
        name,
        "counter",
        "Times a connection of this process waited for another's lock on a queue file.",
    );
    f.sample(name, &[], s.busy_waits);
    out
}

/// Reads one count of a group's stats.
type GroupCount = fn(&crate::GroupStats) -> u64;

/// One metric family: its HELP and TYPE lines and its samples (public for the bus bridge,
/// whose relays export their counters in the same format).
pub struct Family<'a> {
    out: &'a mut String,
}

impl<'a> Family<'a> {
    /// Writes the HELP and TYPE lines (`kind`: `counter`, `gauge`, `histogram`) to `out`.
    pub fn new(out: &'a mut String, name: &str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    /// One sample line; label values are escaped.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
        }
    }
}

/// Label values escape backslash, double quote and line feed (the format's rule).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition of given counts: what `render` prints, for callers that already hold
/// a `Stats`.
pub fn exposition(stats: &Stats, rolled_back: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    let gauges: [(&str, &str, GroupCount); 5] = [
        (
            "ferrymq_messages_ready",
            "Deliveries of the consumer group deliverable now.",
            |g| g.ready,
        ),
        (
            "ferrymq_messages_inflight",
            "Deliveries of the consumer group under a lease.",
            |g| g.inflight,
        ),
        (
            "ferrymq_messages_scheduled",
            "Deliveries waiting for their deliver-at time or an earlier message of their ordering key.",
            |g| g.scheduled,
        ),
        (
            "ferrymq_messages_retrying",
            "Deliveries waiting out a retry delay.",
            |g| g.retrying,
        ),
        (
            "ferrymq_messages_dead",
            "Dead letters of the consumer group.",
            |g| g.dead,
        ),
    ];
    for (name, help, value) in gauges {
        let mut f = Family::new(&mut out, name, "gauge", help);
        for (group, g) in &stats.groups {
            f.sample(name, &group_labels(group, g), value(g));
        }
    }
    let name = "ferrymq_oldest_ready_age_seconds";
    let mut f = Family::new(
        &mut out,
        name,
        "gauge",
        "How long the oldest ready delivery of the consumer group has been ready (0 if none).",
    );
    for (group, g) in &stats.groups {
        let age = g.oldest_ready_age.map_or(0.0, |d| d.as_secs_f64());
        f.sample(name, &group_labels(group, g), age);
    }
    let name = "ferrymq_group_paused";
    let mut f = Family::new(
        &mut out,
        name,
        "gauge",
        "1 while the consumer group is paused, else 0.",
    );
    for (group, g) in &stats.groups {
        f.sample(name, &group_labels(group, g), u8::from(g.paused));
    }
    let name = "ferrymq_topic_messages";
    let mut f = Family::new(
        &mut out,
        name,
        "gauge",
        "Committed messages of the topic kept in the file (acked ones stay until purge-acked).",
    );
    for (topic, t) in &stats.topics {
        f.sample(name, &[("topic", topic)], t.messages);
    }
    let name = "ferrymq_half_messages";
    let mut f = Family::new(
        &mut out,
        name,
        "gauge",
        "Half messages of the topic by state: undecided (half) or rolled back and kept for audit.",
    );
    for (topic, t) in &stats.topics {
        f.sample(name, &[("topic", topic), ("state", "half")], t.half);
        let rb = rolled_back.get(topic).copied().unwrap_or(0);
        f.sample(name, &[("topic", topic), ("state", "rolled_back")], rb);
    }
    out
}

fn group_labels<'a>(group: &'a str, g: &'a crate::GroupStats) -> [(&'a str, &'a str); 2] {
    [("topic", &g.topic), ("consumer_group", group)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupStats, TopicStats};
    use std::time::Duration;

    #[test]
    fn families_have_help_and_type_and_labels_are_escaped() {
        let mut s = Stats::default();
        s.topics.insert(
            "t".into(),
            TopicStats {
                messages: 3,
                half: 1,
            },
        );
        s.groups.insert(
            "g".into(),
            GroupStats {
                topic: "t".into(),
                ready: 2,
                oldest_ready_age: Some(Duration::from_millis(1500)),
                paused: true,
                scheduled: 0,
                inflight: 0,
                retrying: 0,
                dead: 0,
            },
        );
        let text = exposition(&s, &BTreeMap::from([("t".to_string(), 4)]));
        assert!(text.contains("# TYPE ferrymq_messages_ready gauge\n"));
        assert!(text.contains("ferrymq_messages_ready{topic=\"t\",consumer_group=\"g\"} 2\n"));
        assert!(
            text.contains(
                "ferrymq_oldest_ready_age_seconds{topic=\"t\",consumer_group=\"g\"} 1.5\n"
            )
        );
        assert!(text.contains("ferrymq_group_paused{topic=\"t\",consumer_group=\"g\"} 1\n"));
        assert!(text.contains("ferrymq_half_messages{topic=\"t\",state=\"rolled_back\"} 4\n"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
    }

    #[test]
    fn counters_are_counters_and_the_histogram_is_cumulative() {
        let mut s = Snapshot {
            batches: vec![3, 1, 0, 0, 0, 0, 0, 0, 2],
            batch_writes: 3 + 2 + 400,
            busy_waits: 7,
            ..Default::default()
        };
        s.events.insert((Event::Acked, "t".into(), "g".into()), 5);
        s.events
            .insert((Event::Published, "t".into(), String::new()), 9);
        s.events
            .insert((Event::CheckRollback, "t".into(), String::new()), 1);
        let text = counters_exposition(&s);
        assert!(text.contains("# TYPE ferrymq_messages_acked_total counter\n"));
        assert!(
            text.contains("ferrymq_messages_acked_total{topic=\"t\",consumer_group=\"g\"} 5\n")
        );
        assert!(text.contains("ferrymq_messages_published_total{topic=\"t\"} 9\n"));
        assert!(text.contains("ferrymq_checkbacks_total{topic=\"t\",outcome=\"rollback\"} 1\n"));
        assert!(text.contains("ferrymq_group_commit_batch_size_bucket{le=\"1\"} 3\n"));
        assert!(text.contains("ferrymq_group_commit_batch_size_bucket{le=\"2\"} 4\n"));
        assert!(text.contains("ferrymq_group_commit_batch_size_bucket{le=\"+Inf\"} 6\n"));
        assert!(text.contains("ferrymq_group_commit_batch_size_count 6\n"));
        assert!(text.contains("ferrymq_busy_waits_total 7\n"));
    }
}
