//! `ferrymq dlq`: list, show, redrive and purge dead letters of one consumer group.
//! Bulk runs page through the DLQ by message id (`dead_letter_ids`), a transaction per
//! page, so they can show progress and keep to `--rate`.

use super::confirm;
use crate::args::{Bulk, Dlq};
use crate::exit::{self, Failure, Result};
use crate::output::{self, opt, short};
use crate::progress;
use crate::views;
use ferrymq::Queue;
use serde_json::json;
use std::time::{Duration, Instant};

/// Letters per transaction of a bulk run (the core's own bulk runs use 128 too).
const PAGE: usize = 128;

pub fn run(q: &Queue, json: bool, cmd: Dlq) -> Result<()> {
    match cmd {
        Dlq::List {
            group,
            older_than,
            limit,
        } => list(q, json, &group.group, older_than, limit),
        Dlq::Show { group, id } => show(q, json, &group.group, id),
        Dlq::Redrive { group, bulk, rate } => {
            let done = bulk_run(q, &group.group, &bulk, rate, Action::Redrive)?;
            report(json, &group.group, "redriven", done);
            Ok(())
        }
        Dlq::Purge { group, bulk } => {
            let done = bulk_run(q, &group.group, &bulk, None, Action::Purge)?;
            report(json, &group.group, "purged", done);
            Ok(())
        }
    }
}

fn report(json: bool, group: &str, what: &str, n: u64) {
    let text = format!("{n} dead letters of group {group} {what}");
    output::outcome(json, json!({ "group": group, what: n }), text);
}

fn list(
    q: &Queue,
    json: bool,
    group: &str,
    older_than: Option<Duration>,
    limit: usize,
) -> Result<()> {
    let letters = q.dead_letters(group, limit)?;
    let cutoff = older_than.and_then(|d| q.now().checked_sub(d));
    // Oldest death first, so the filter keeps a prefix of the list.
    let letters: Vec<_> = letters
        .into_iter()
        .filter(|d| older_than.is_none() || cutoff.is_some_and(|c| d.died_at <= c))
        .collect();
    if json {
        output::json(&views::dead_letters(group, &letters));
        return Ok(());
    }
    let mut t = output::table(&[
        "id",
        "topic",
        "tag",
        "key",
        "attempts",
        "died",
        "last error",
        "payload",
    ]);
    for d in &letters {
        t.add_row(vec![
            d.message_id.to_string(),
            d.topic.clone(),
            opt(&d.tag),
            opt(&d.key),
            d.attempts.to_string(),
            views::time(d.died_at),
            short(&opt(&d.last_error), 60),
            short(&views::payload(&d.payload).0, 40),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

fn show(q: &Queue, json: bool, group: &str, id: i64) -> Result<()> {
    // Asks for the group first, so an unknown group is "not found" by that name.
    q.dead_letter_ids(group, 0, None, 1)?;
    let m = q.message(id)?;
    let dead = m
        .deliveries
        .get(group)
        .filter(|d| d.state == ferrymq::DeliveryState::Dead)
        .ok_or_else(|| {
            Failure::new(
                exit::NOT_FOUND,
                format!("message {id} is not a dead letter of group {group:?}"),
            )
        })?;
    if json {
        let mut v = views::message(&m);
        v["group"] = json!(group);
        output::json(&v);
        return Ok(());
    }
    super::look::print_message(&m);
    let mut t = output::table(&["attempt", "started", "ended", "outcome", "error"]);
    for a in &dead.history {
        t.add_row(vec![
            a.attempt.to_string(),
            views::time(a.started_at),
            a.ended_at.map_or("-".into(), views::time),
            a.outcome.as_str().to_owned(),
            opt(&a.error),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Redrive,
    Purge,
}

/// Redrives or purges the given ids, or every dead letter (dead for `--older-than`),
/// in pages; asks first unless it is a redrive of named ids.
fn bulk_run(q: &Queue, group: &str, bulk: &Bulk, rate: Option<u64>, action: Action) -> Result<u64> {
    let dead_now = q
        .stats()?
        .groups
        .get(group)
        .map(|g| g.dead)
        .ok_or_else(|| {
            Failure::new(
                exit::NOT_FOUND,
                format!("consumer group {group:?} does not exist"),
            )
        })?;
    let ids = bulk.ids.as_ref().map(|i| i.0.clone());
    let total = ids.as_ref().map_or(dead_now, |i| i.len() as u64);
    let (verb, noun) = match action {
        Action::Redrive => ("Redrive", "redriving"),
        Action::Purge => ("Delete", "purging"),
    };
    if action == Action::Purge || ids.is_none() {
        let which = match (&ids, bulk.older_than) {
            (Some(i), _) => format!("{} given dead letters", i.len()),
            (None, Some(d)) => format!("the dead letters older than {}", crate::duration::show(d)),
            (None, None) => format!("all {dead_now} dead letters"),
        };
        confirm(&format!("{verb} {which} of group {group}?"), bulk.yes)?;
    }
    let bar = progress::bar(total, bulk.progress, noun);
    let page = rate.map_or(PAGE, |r| (r as usize).clamp(1, PAGE));
    let started = Instant::now();
    let mut done = 0;
    let mut apply = |chunk: &[i64]| -> Result<()> {
        let n = match action {
            Action::Redrive => q.redrive(group, Some(chunk))?,
            Action::Purge => q.purge_dead_letter_ids(group, chunk)?,
        };
        done += n;
        bar.inc(chunk.len() as u64);
        if let Some(r) = rate {
            // Paced on letters visited, so skipped ids count against the rate too.
            let due = Duration::from_secs_f64(bar.position() as f64 / r as f64);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
        Ok(())
    };
    match ids {
        Some(ids) => {
            for chunk in ids.chunks(page) {
                apply(chunk)?;
            }
        }
        None => {
            let mut after = 0;
            loop {
                let chunk = q.dead_letter_ids(group, after, bulk.older_than, page)?;
                let Some(&last) = chunk.last() else { break };
                apply(&chunk)?;
                after = last;
            }
        }
    }
    // An --older-than run visits fewer letters than were dead: end the bar full.
    bar.set_length(bar.position());
    bar.finish();
    Ok(done)
}
