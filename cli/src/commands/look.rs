//! Read-only commands: stats, topics, groups, find, show, trace, tail. None of them
//! takes the write lock.

use crate::duration;
use crate::exit::{self, Failure, Result};
use crate::output::{self, alarm, opt, paint, short};
use crate::views;
use ferrymq::{MessageInfo, Queue, Stats};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

pub fn stats(q: &Queue, json: bool, watch: Option<f64>) -> Result<()> {
    let Some(secs) = watch else {
        return print_stats(&q.stats()?, json, false);
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(Failure::usage(format!(
            "--watch takes seconds between 0 and 86400, not {secs}"
        )));
    }
    let clear = !json && std::io::stdout().is_terminal();
    loop {
        let s = q.stats()?;
        if clear {
            print!("\x1b[2J\x1b[H");
        }
        print_stats(&s, json, true)?;
        std::thread::sleep(Duration::from_secs_f64(secs));
    }
}

fn print_stats(s: &Stats, json: bool, compact: bool) -> Result<()> {
    if json {
        let v = views::stats(s);
        if compact {
            println!("{v}");
        } else {
            output::json(&v);
        }
        return Ok(());
    }
    print_topics(s);
    println!();
    print_groups(s);
    Ok(())
}

fn print_topics(s: &Stats) {
    let mut t = output::table(&["topic", "messages", "half", "groups"]);
    for (name, ts) in &s.topics {
        let groups: Vec<&str> = s
            .groups
            .iter()
            .filter(|(_, g)| &g.topic == name)
            .map(|(n, _)| n.as_str())
            .collect();
        t.add_row(vec![
            name.clone(),
            ts.messages.to_string(),
            ts.half.to_string(),
            groups.join(", "),
        ]);
    }
    output::print_table(&t);
}

fn print_groups(s: &Stats) {
    let mut t = output::table(&[
        "group",
        "topic",
        "ready",
        "scheduled",
        "inflight",
        "retrying",
        "dead",
        "oldest ready",
    ]);
    for (name, g) in &s.groups {
        t.add_row(vec![
            name.clone(),
            g.topic.clone(),
            g.ready.to_string(),
            g.scheduled.to_string(),
            g.inflight.to_string(),
            g.retrying.to_string(),
            alarm(g.dead),
            g.oldest_ready_age.map_or("-".into(), duration::show),
        ]);
    }
    output::print_table(&t);
}

pub fn topics(q: &Queue, json: bool) -> Result<()> {
    let s = q.stats()?;
    if json {
        output::json(&views::topics(&s));
    } else {
        print_topics(&s);
    }
    Ok(())
}

pub fn groups(q: &Queue, json: bool) -> Result<()> {
    let s = q.stats()?;
    if json {
        let v: Vec<Value> = s
            .groups
            .iter()
            .map(|(n, g)| views::group_stats(n, g))
            .collect();
        output::json(&json!(v));
    } else {
        print_groups(&s);
    }
    Ok(())
}

pub fn find(q: &Queue, json: bool, topic: &str, key: &str) -> Result<()> {
    let found = q.find(topic, key)?;
    if json {
        output::json(&views::messages(&found));
        return Ok(());
    }
    let mut t = output::table(&["id", "published", "tag", "state", "groups", "payload"]);
    for m in &found {
        let groups: Vec<String> = m
            .deliveries
            .iter()
            .map(|(g, d)| format!("{g}: {}", state(d.state.as_str())))
            .collect();
        t.add_row(vec![
            m.id.to_string(),
            views::time(m.published_at),
            opt(&m.tag),
            m.state.as_str().to_owned(),
            groups.join(", "),
            short(&views::payload(&m.payload).0, 40),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn state(s: &str) -> String {
    match s {
        "dead" => paint(s, "31"),
        "acked" => paint(s, "32"),
        "inflight" | "scheduled" => paint(s, "33"),
        _ => s.to_owned(),
    }
}

pub fn show(q: &Queue, json: bool, id: i64) -> Result<()> {
    let m = q.message(id)?;
    if json {
        output::json(&views::message(&m));
        return Ok(());
    }
    print_message(&m);
    let mut t = output::table(&["group", "state", "attempts", "last error"]);
    for (g, d) in &m.deliveries {
        t.add_row(vec![
            g.clone(),
            state(d.state.as_str()),
            d.attempts.to_string(),
            opt(&d.last_error),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

pub fn print_message(m: &MessageInfo) {
    let (payload, encoding) = views::payload(&m.payload);
    let headers: Vec<String> = m.headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut t = output::table(&["field", "value"]);
    let rows = [
        ("id", m.id.to_string()),
        ("topic", m.topic.clone()),
        ("state", m.state.as_str().to_owned()),
        ("tag", opt(&m.tag)),
        ("key", opt(&m.key)),
        ("ordering key", opt(&m.ordering_key)),
        ("headers", headers.join(", ")),
        ("published", views::time(m.published_at)),
        ("deliver at", views::time(m.deliver_at)),
        ("payload", format!("({encoding}) {}", short(&payload, 200))),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    output::print_table(&t);
}

/// One line of a message's timeline.
struct Event {
    at: Option<SystemTime>,
    what: &'static str,
    group: Option<String>,
    attempt: Option<u32>,
    detail: Option<String>,
    error: Option<String>,
}

impl Event {
    fn new(at: Option<SystemTime>, what: &'static str) -> Self {
        Event {
            at,
            what,
            group: None,
            attempt: None,
            detail: None,
            error: None,
        }
    }
}

/// The timeline, from the message's history: published (or prepared), check-backs,
/// every attempt per group with its outcome, dead, redriven. A redrive leaves no time
/// of its own: it is placed just before the attempt that followed it (or last).
fn timeline(m: &MessageInfo) -> Vec<Event> {
    let first = if m.state == ferrymq::MessageState::Committed {
        "published"
    } else {
        "prepared"
    };
    let mut events = vec![Event::new(Some(m.published_at), first)];
    if m.deliver_at > m.published_at {
        let mut e = Event::new(Some(m.deliver_at), "due");
        e.detail = Some("delayed delivery".into());
        events.push(e);
    }
    for c in &m.checks {
        let mut e = Event::new(Some(c.at), "check");
        e.detail = Some(c.resolution.as_str().into());
        e.error = c.error.clone();
        events.push(e);
    }
    for (g, d) in &m.deliveries {
        let mut previous = 0;
        let mut last_end = None;
        for a in &d.history {
            if a.attempt <= previous {
                let mut e = Event::new(Some(a.started_at), "redriven");
                e.group = Some(g.clone());
                events.push(e);
            }
            let mut e = Event::new(Some(a.started_at), "attempt");
            e.group = Some(g.clone());
            e.attempt = Some(a.attempt);
            e.detail = Some(a.outcome.as_str().into());
            e.error = a.error.clone();
            events.push(e);
            previous = a.attempt;
            last_end = a.ended_at;
        }
        let redriven_since = d.attempts == 0 && !d.history.is_empty();
        let what = match d.state.as_str() {
            "dead" => Some(("dead", last_end)),
            _ if redriven_since => Some(("redriven", None)),
            _ => None,
        };
        if let Some((what, at)) = what {
            let mut e = Event::new(at, what);
            e.group = Some(g.clone());
            e.error = if what == "dead" {
                d.last_error.clone()
            } else {
                None
            };
            events.push(e);
        }
    }
    // Stable: same-time events keep the order above; unknown times go last.
    events.sort_by_key(|e| (e.at.is_none(), e.at));
    events
}

/// The `trace --json` document of a message (the console's timeline shows the same).
pub fn trace_json(m: &MessageInfo) -> Value {
    let v: Vec<Value> = timeline(m)
        .iter()
        .map(|e| {
            json!({
                "at": e.at.map(views::time),
                "event": e.what,
                "group": e.group,
                "attempt": e.attempt,
                "outcome": e.detail,
                "error": e.error,
            })
        })
        .collect();
    json!({ "id": m.id, "topic": m.topic, "state": m.state.as_str(), "events": v })
}

pub fn trace(q: &Queue, json: bool, id: i64) -> Result<()> {
    let m = q.message(id)?;
    if json {
        output::json(&trace_json(&m));
        return Ok(());
    }
    let events = timeline(&m);
    let mut t = output::table(&["at", "event", "group", "attempt", "outcome", "error"]);
    for e in &events {
        t.add_row(vec![
            e.at.map_or("(time not kept)".into(), views::time),
            state(e.what),
            e.group.clone().unwrap_or_default(),
            e.attempt.map_or(String::new(), |a| a.to_string()),
            e.detail.as_deref().map(state).unwrap_or_default(),
            e.error.clone().unwrap_or_default(),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

pub struct Follow {
    pub topic: String,
    pub group: Option<String>,
    pub from_id: Option<i64>,
    pub interval: Duration,
    pub count: Option<u64>,
}

/// Polls for messages with ids above the last one seen, read-only. Ends on Ctrl-C
/// (the default SIGINT action) or after `--count` messages.
pub fn tail(q: &Queue, json: bool, f: &Follow) -> Result<()> {
    const PAGE: usize = 1_000;
    if f.interval.is_zero() {
        return Err(Failure::usage("--interval must be more than 0"));
    }
    if let Some(g) = &f.group {
        let stats = q.stats()?;
        let Some(gs) = stats.groups.get(g) else {
            return Err(Failure::new(
                exit::NOT_FOUND,
                format!("consumer group {g:?} does not exist"),
            ));
        };
        if gs.topic != f.topic {
            return Err(Failure::usage(format!(
                "consumer group {g:?} subscribes to topic {:?}, not {:?}",
                gs.topic, f.topic
            )));
        }
    }
    let mut last = match f.from_id {
        Some(id) => id,
        None => q.last_message_id(&f.topic)?.unwrap_or(0),
    };
    let mut shown = 0;
    let mut out = std::io::stdout().lock();
    loop {
        let page = q.messages_after(&f.topic, last, PAGE)?;
        for m in &page {
            last = m.id;
            if f.group
                .as_ref()
                .is_some_and(|g| !m.deliveries.contains_key(g))
            {
                continue;
            }
            if json {
                output::json_line(&mut out, &Value::Object(views::record(m)))?;
            } else {
                writeln!(
                    out,
                    "{}  {}  tag={}  key={}  {}",
                    m.id,
                    views::time(m.published_at),
                    opt(&m.tag),
                    opt(&m.key),
                    short(&views::payload(&m.payload).0, 120)
                )?;
                out.flush()?;
            }
            shown += 1;
            if f.count.is_some_and(|n| shown >= n) {
                return Ok(());
            }
        }
        if page.len() < PAGE {
            std::thread::sleep(f.interval);
        }
    }
}

/// The audit trail, oldest first, from `--after`.
pub fn audit(q: &Queue, json: bool, after: Option<i64>, limit: usize) -> Result<()> {
    let list = q.audit(after, limit)?;
    if json {
        output::json(&Value::Array(list.iter().map(views::audit).collect()));
        return Ok(());
    }
    let mut t = output::table(&[
        "id", "at", "action", "target", "detail", "user", "host", "process", "reason",
    ]);
    for r in &list {
        t.add_row(vec![
            r.id.to_string(),
            views::time(r.at),
            r.action.clone(),
            r.target.clone(),
            short(&opt(&r.detail), 60),
            r.user.clone(),
            r.host.clone(),
            format!("{} ({})", r.process, r.pid),
            short(&opt(&r.reason), 60),
        ]);
    }
    output::print_table(&t);
    Ok(())
}
