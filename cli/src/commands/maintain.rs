//! Half messages, pausing groups, schedules, retention, vacuum and the integrity check.

use crate::args::Half;
use crate::exit::{self, Failure, Result};
use crate::output::{self, opt, paint};
use crate::views;
use ferrymq::{MessageState, Queue};
use serde_json::{Value, json};
use std::time::Duration;

pub fn half(q: &Queue, json: bool, cmd: Half) -> Result<()> {
    match cmd {
        Half::List { state, limit } => {
            let state = state.map(|s| s.parse::<MessageState>()).transpose()?;
            let list = q.half_messages(state, limit)?;
            if json {
                output::json(&views::messages(&list));
                return Ok(());
            }
            let mut t = output::table(&["id", "topic", "state", "key", "prepared", "checks"]);
            for m in &list {
                t.add_row(vec![
                    m.id.to_string(),
                    m.topic.clone(),
                    m.state.as_str().to_owned(),
                    opt(&m.key),
                    views::time(m.published_at),
                    m.checks.len().to_string(),
                ]);
            }
            output::print_table(&t);
            Ok(())
        }
        Half::Commit { id } => {
            q.commit_half(id)?;
            decided(json, id, "committed");
            Ok(())
        }
        Half::Rollback { id } => {
            q.rollback_half(id)?;
            decided(json, id, "rolled_back");
            Ok(())
        }
    }
}

fn decided(json: bool, id: i64, state: &str) {
    let text = format!("half message {id} {}", state.replace('_', " "));
    output::outcome(json, json!({ "id": id, "state": state }), text);
}

/// Pauses (`paused`) or resumes a consumer group.
pub fn pause(q: &Queue, json: bool, group: &str, paused: bool) -> Result<()> {
    if paused {
        q.pause(group)?;
    } else {
        q.resume(group)?;
    }
    let what = if paused { "paused" } else { "resumed" };
    let text = format!("consumer group {group} {what}");
    output::outcome(json, json!({ "group": group, "paused": paused }), text);
    Ok(())
}

pub fn schedules(q: &Queue, json: bool) -> Result<()> {
    let list = q.schedules()?;
    if json {
        output::json(&Value::Array(list.iter().map(views::schedule).collect()));
        return Ok(());
    }
    let mut t = output::table(&[
        "name",
        "topic",
        "rule",
        "tz",
        "next tick",
        "fired",
        "left",
        "missed",
    ]);
    for s in &list {
        let rule = match (&s.cron, s.every) {
            (Some(cron), _) => cron.clone(),
            (None, Some(every)) => format!("every {}", views::duration(every)),
            (None, None) => String::new(),
        };
        t.add_row(vec![
            s.name.clone(),
            s.topic.clone(),
            rule,
            s.tz.clone().unwrap_or_default(),
            views::time(s.next_at),
            s.fired.to_string(),
            s.repeat_left.map_or("∞".to_string(), |n| n.to_string()),
            s.missed.as_str().to_string(),
        ]);
    }
    output::print_table(&t);
    Ok(())
}

pub fn unschedule(q: &Queue, json: bool, name: &str) -> Result<()> {
    q.unschedule(name)?;
    let text = format!("schedule {name} removed");
    output::outcome(json, json!({ "schedule": name, "removed": true }), text);
    Ok(())
}

pub fn purge_acked(q: &Queue, json: bool, older_than: Duration) -> Result<()> {
    let n = q.purge_acked(older_than)?;
    output::outcome(json, json!({ "purged": n }), format!("{n} messages purged"));
    Ok(())
}

pub fn vacuum(q: &Queue, json: bool, pages: Option<u64>) -> Result<()> {
    let n = q.vacuum(pages)?;
    output::outcome(
        json,
        json!({ "pages_freed": n }),
        format!("{n} pages freed"),
    );
    Ok(())
}

pub fn check(q: &Queue, json: bool) -> Result<()> {
    let c = q.check_file()?;
    if json {
        output::json(&json!({
            "ok": c.ok(),
            "integrity": c.integrity,
            "schema_version": c.schema_version,
            "expected_schema_version": c.expected_schema_version,
            "application_id": c.application_id,
            "expected_application_id": c.expected_application_id,
        }));
    } else {
        let mut t = output::table(&["check", "found", "expected"]);
        t.add_row(vec![
            "integrity".into(),
            c.integrity.join("\n"),
            "ok".into(),
        ]);
        t.add_row(vec![
            "schema version".into(),
            c.schema_version.to_string(),
            c.expected_schema_version.to_string(),
        ]);
        t.add_row(vec![
            "application id".into(),
            format!("{:#x}", c.application_id),
            format!("{:#x}", c.expected_application_id),
        ]);
        output::print_table(&t);
        let verdict = if c.ok() {
            paint("ok", "32")
        } else {
            paint("NOT OK", "31")
        };
        println!("{verdict}");
    }
    if c.ok() {
        Ok(())
    } else {
        Err(Failure::new(exit::ERROR, "the file failed its check"))
    }
}
