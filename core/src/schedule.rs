//! Recurring messages: `Queue::schedule` keeps a schedule in the file (migration 0006),
//! and every process that receives from the file fires what is due.
//!
//! Who fires: a receive (any group, any topic) fires every due tick of the file before it
//! claims, and a waiting receive wakes for the next tick as it does for a delayed
//! message. There is no scheduler thread and no leader: each tick is handled in one write
//! transaction that moves the schedule on with `WHERE name = ? AND next_at = <that tick>`
//! and publishes the tick's message, so with any number of processes, and kills at any
//! point, a tick gives its message once (or, under `skip`/`once`, as its policy says).
//! A file that nobody receives from fires nothing until a receive comes; the missed-tick
//! policy then decides what those ticks give.
//!
//! Cost when there is no schedule: a receive asks `min(next_at)` through the index at
//! most once per `poll_interval` (remembered per queue; a `schedule` or `unschedule`
//! through this queue forgets it at once, other processes' ones are seen within
//! `poll_interval`), so the hot path stays a clock read and a mutex.

use crate::api::ScheduleInfo;
use crate::clock::{duration_to_ms, ms_to_system_time, system_time_to_ms};
use crate::error::{Error, Result};
use crate::inner::{Inner, lock};
use crate::options::{PublishOptions, setters};
use crate::publish::{self, Matches, Visibility};
use crate::store::{self, schedules::ScheduleRow};
use crate::validate;
use chrono::{TimeZone, Utc};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Header naming the schedule that produced a message.
pub const HEADER_SCHEDULE: &str = "ferrymq-schedule";
/// Header with the tick time the message stands for, in ms since the Unix epoch (under
/// `once`, the latest of the ticks it stands for).
pub const HEADER_TICK: &str = "ferrymq-tick";
/// Header with how many ticks the message stands for (more than 1 only under `once`).
pub const HEADER_TICKS: &str = "ferrymq-ticks";

/// How late the latest due tick may be handled and still count as on time under
/// `Missed::Skip`. An earlier due tick (one whose successor is also due) is always missed.
pub const SKIP_GRACE: Duration = Duration::from_secs(60);

/// Under `catch_up`, at most this many messages of one schedule per transaction; the rest
/// follow in the next ones (a receive fires again while something is due).
const CATCH_UP_CHUNK: usize = 1_000;
/// Under `once` and `skip`, at most this many tick times walked per transaction.
const WALK_CHUNK: usize = 100_000;
/// Schedules handled per firing transaction.
const SCHEDULES_CHUNK: usize = 64;

/// What the ticks that passed while nobody fired them give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// One message per tick, each with its own tick time.
    CatchUp,
    /// One message for all the due ticks, with the latest tick time and their count.
    #[default]
    Once,
    /// None for missed ticks; only a tick handled on time (the latest due one, at most
    /// `SKIP_GRACE` late) gives its message.
    Skip,
}

impl Missed {
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::CatchUp => "catch_up",
            Missed::Once => "once",
            Missed::Skip => "skip",
        }
    }

    fn code(self) -> i64 {
        match self {
            Missed::CatchUp => 0,
            Missed::Once => 1,
            Missed::Skip => 2,
        }
    }

    fn from_code(code: i64) -> Result<Missed> {
        match code {
            0 => Ok(Missed::CatchUp),
            1 => Ok(Missed::Once),
            2 => Ok(Missed::Skip),
            other => Err(Error::Storage(format!(
                "unknown missed policy {other} in the database"
            ))),
        }
    }
}

impl FromStr for Missed {
    type Err = Error;
    fn from_str(s: &str) -> Result<Missed> {
        match s {
            "catch_up" => Ok(Missed::CatchUp),
            "once" => Ok(Missed::Once),
            "skip" => Ok(Missed::Skip),
            other => Err(Error::invalid(format!(
                "missed must be catch_up, once or skip, got {other:?}"
            ))),
        }
    }
}

/// How and what a schedule publishes. Exactly one of `cron` and `every`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleOptions {
    /// A cron pattern: 5 fields (minute hour day-of-month month day-of-week) or 6 with
    /// seconds first; names (`MON`, `JAN`) and `@hourly`-style nicknames are accepted.
    pub cron: Option<String>,
    /// A fixed period (at least 1 ms).
    pub every: Option<Duration>,
    /// The IANA time zone `cron` is read in (default UTC); not for `every`.
    pub tz: Option<String>,
    /// Tick times in all, the first included; then the schedule ends (`None`: never).
    pub repeat: Option<u64>,
    /// No tick before this time.
    pub start_at: Option<SystemTime>,
    /// No tick before now plus this (ActiveMQ's `AMQ_SCHEDULED_DELAY`).
    pub delay: Option<Duration>,
    pub tag: Option<String>,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub missed: Missed,
}

impl ScheduleOptions {
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        cron(pattern: impl Into<String>) => some_into;
        every(period: Duration) => Some;
        tz(zone: impl Into<String>) => some_into;
        repeat(ticks: u64) => Some;
        start_at(t: SystemTime) => Some;
        delay(d: Duration) => Some;
        tag(tag: impl Into<String>) => some_into;
        key(key: impl Into<String>) => some_into;
        missed(policy: Missed);
    }
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

/// When the ticks of a schedule are.
enum Rule {
    Cron(Box<croner::Cron>, chrono_tz::Tz),
    Every(i64),
}

fn parse_cron(pattern: &str) -> Result<croner::Cron> {
    use croner::parser::{CronParser, Seconds, Year};
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| Error::invalid(format!("bad cron pattern {pattern:?}: {e}")))
}

fn parse_tz(zone: &str) -> Result<chrono_tz::Tz> {
    zone.parse::<chrono_tz::Tz>().map_err(|_| {
        Error::invalid(format!(
            "unknown time zone {zone:?}; give an IANA name such as Europe/Paris or UTC"
        ))
    })
}

impl Rule {
    fn from_row(row: &ScheduleRow) -> Result<Rule> {
        let broken = |e: Error| Error::Storage(format!("schedule {:?}: {e}", row.name));
        match (&row.cron, row.every_ms) {
            (Some(c), _) => Ok(Rule::Cron(
                Box::new(parse_cron(c).map_err(broken)?),
                parse_tz(row.tz.as_deref().unwrap_or("UTC")).map_err(broken)?,
            )),
            (None, Some(ms)) if ms > 0 => Ok(Rule::Every(ms)),
            _ => Err(Error::Storage(format!(
                "schedule {:?} has neither cron nor a positive every",
                row.name
            ))),
        }
    }

    /// The first tick at or after `t` (cron ticks fall on whole seconds).
    fn first_from(&self, t: i64) -> Option<i64> {
        match self {
            Rule::Every(_) => Some(t),
            Rule::Cron(..) => {
                let whole = t.checked_add(999)?.div_euclid(1000).checked_mul(1000)?;
                self.cron_from(whole, true)
            }
        }
    }

    /// The tick after the tick `t`.
    fn next_after(&self, t: i64) -> Option<i64> {
        match self {
            Rule::Every(ms) => t.checked_add(*ms),
            Rule::Cron(..) => self.cron_from(t, false),
        }
    }

    fn cron_from(&self, t: i64, inclusive: bool) -> Option<i64> {
        let Rule::Cron(cron, tz) = self else {
            return None;
        };
        let at = Utc.timestamp_millis_opt(t).single()?.with_timezone(tz);
        let next = cron.find_next_occurrence(&at, inclusive).ok()?;
        Some(next.timestamp_millis())
    }
}

/// Everything `schedule` checks, before anything is written; the row to store.
pub(crate) fn prepare(
    inner: &Inner,
    name: &str,
    topic: &str,
    payload: &[u8],
    o: &ScheduleOptions,
) -> Result<ScheduleRow> {
    validate::name("schedule", name)?;
    if let Some(h) = o.headers.keys().find(|h| h.starts_with("ferrymq-")) {
        return Err(Error::invalid(format!(
            "header {h:?}: names starting with ferrymq- are set by the schedule"
        )));
    }
    // The message as a tick will publish it, our headers at their longest included.
    let sample = PublishOptions {
        tag: o.tag.clone(),
        key: o.key.clone(),
        headers: tick_headers(&o.headers, name, i64::MAX, i64::MAX),
        ..PublishOptions::default()
    };
    publish::validate(inner, topic, payload, &sample)?;
    let rule = rule_of(o)?;
    if let Some(n) = o.repeat
        && (n < 1 || n > i64::MAX as u64)
    {
        return Err(Error::invalid(format!(
            "repeat must be at least 1 (the number of ticks, the first included), got {n}"
        )));
    }
    let start = start_of(inner, o)?;
    let next_at = match (start, &rule) {
        (Some(s), r) => r.first_from(s),
        (None, Rule::Every(ms)) => inner.now().checked_add(*ms),
        (None, r) => r.first_from(inner.now()),
    }
    .ok_or_else(|| Error::invalid("the schedule has no tick in the future"))?;
    Ok(ScheduleRow {
        name: name.to_owned(),
        topic: topic.to_owned(),
        payload: payload.to_vec(),
        tag: o.tag.clone(),
        key: o.key.clone(),
        headers: store::encode_headers(&o.headers)?,
        cron: o.cron.clone(),
        tz: o
            .cron
            .as_ref()
            .map(|_| o.tz.clone().unwrap_or_else(|| "UTC".into())),
        every_ms: o.every.map(duration_to_ms),
        missed: o.missed.code(),
        next_at,
        fired: 0,
        repeat_left: o.repeat.map(|n| n as i64),
    })
}

/// What the audit trail records of a `schedule` call: the rule and the message a tick
/// publishes (the payload by its size only: it may hold anything).
pub(crate) fn audit_detail(row: &ScheduleRow, o: &ScheduleOptions) -> serde_json::Value {
    serde_json::json!({
        "topic": row.topic,
        "cron": row.cron,
        "tz": row.tz,
        "every_ms": row.every_ms,
        "repeat": row.repeat_left,
        "missed": o.missed.as_str(),
        "first_tick_at": row.next_at,
        "tag": row.tag,
        "key": row.key,
        "headers": o.headers,
        "payload_bytes": row.payload.len(),
    })
}

fn rule_of(o: &ScheduleOptions) -> Result<Rule> {
    match (&o.cron, o.every) {
        (Some(_), Some(_)) => Err(Error::invalid("give either cron or every, not both")),
        (None, None) => Err(Error::invalid("give cron or every")),
        (None, Some(_)) if o.tz.is_some() => Err(Error::invalid(
            "tz applies to cron schedules only, not to every",
        )),
        (None, Some(d)) => {
            if d < Duration::from_millis(1) {
                return Err(Error::invalid(format!(
                    "every must be at least 1 ms, got {d:?}"
                )));
            }
            validate::bounded_duration("every", d)?;
            Ok(Rule::Every(duration_to_ms(d)))
        }
        (Some(c), None) => {
            let tz = parse_tz(o.tz.as_deref().unwrap_or("UTC"))?;
            Ok(Rule::Cron(Box::new(parse_cron(c)?), tz))
        }
    }
}

/// The time before which no tick comes, if the caller set one.
fn start_of(inner: &Inner, o: &ScheduleOptions) -> Result<Option<i64>> {
    match (o.start_at, o.delay) {
        (Some(_), Some(_)) => Err(Error::invalid("give either start_at or delay, not both")),
        (Some(t), None) => system_time_to_ms(t)
            .map(Some)
            .ok_or_else(|| Error::invalid("start_at is before 1970 or too far in the future")),
        (None, Some(d)) => {
            validate::bounded_duration("delay", d)?;
            Ok(Some(inner.now().saturating_add(duration_to_ms(d))))
        }
        (None, None) => Ok(None),
    }
}

fn tick_headers(
    own: &BTreeMap<String, String>,
    name: &str,
    tick: i64,
    ticks: i64,
) -> BTreeMap<String, String> {
    let mut h = own.clone();
    h.insert(HEADER_SCHEDULE.into(), name.into());
    h.insert(HEADER_TICK.into(), tick.to_string());
    h.insert(HEADER_TICKS.into(), ticks.to_string());
    h
}

pub(crate) fn info(row: ScheduleRow) -> Result<ScheduleInfo> {
    Ok(ScheduleInfo {
        missed: Missed::from_code(row.missed)?,
        headers: store::decode_headers(row.headers)?,
        name: row.name,
        topic: row.topic,
        cron: row.cron,
        every: row
            .every_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64)),
        tz: row.tz,
        next_at: ms_to_system_time(row.next_at),
        fired: row.fired.max(0) as u64,
        repeat_left: row.repeat_left.map(|n| n.max(0) as u64),
        tag: row.tag,
        key: row.key,
    })
}

/// The earliest tick of the file as last read, and when it was read (per queue).
#[derive(Default)]
pub(crate) struct DueCache {
    seen: Mutex<Option<(Instant, Option<i64>)>>,
}

impl DueCache {
    /// Forgets what was read: the next look reads the file again.
    pub fn forget(&self) {
        *lock(&self.seen) = None;
    }

    /// The earliest tick, read again if the last read is older than `max_age`.
    fn earliest(&self, conn: &Connection, max_age: Duration) -> Result<Option<i64>> {
        if let Some((at, next)) = *lock(&self.seen)
            && at.elapsed() < max_age
        {
            return Ok(next);
        }
        let next = store::schedules::earliest(conn)?;
        *lock(&self.seen) = Some((Instant::now(), next));
        Ok(next)
    }

    /// The earliest tick as last read, if it was read.
    pub fn next_tick(&self) -> Option<i64> {
        lock(&self.seen).and_then(|(_, next)| next)
    }

    /// Whether a tick is due at `now`, as far as the remembered read knows.
    pub fn due(&self, conn: &Connection, max_age: Duration, now: i64) -> Result<bool> {
        Ok(self.earliest(conn, max_age)?.is_some_and(|t| t <= now))
    }
}

/// Fires every due tick of the file (called by receives, on their connection, outside
/// any transaction). Cheap when nothing is due: see the module header.
pub(crate) fn fire_due(inner: &Inner, conn: &Connection) -> Result<()> {
    let poll = inner.opts.poll_interval;
    if !inner.schedules.due(conn, poll, inner.now())? {
        return Ok(());
    }
    // The remembered tick may have been handled by another process meanwhile: a read
    // says so without queueing for the write lock.
    inner.schedules.forget();
    if !inner.schedules.due(conn, poll, inner.now())? {
        return Ok(());
    }
    let fired = store::write_tx(conn, |c| {
        let now = inner.now();
        let mut matches = Matches::default();
        let mut fired = 0;
        for row in store::schedules::due(c, now, SCHEDULES_CHUNK)? {
            fired += fire_one(inner, c, &mut matches, &row, now)?;
        }
        Ok(fired)
    })?;
    inner.schedules.forget();
    if fired > 0 {
        inner.wake.bump();
    }
    Ok(())
}

/// The tick times of `row` handled now, and the schedule after them.
struct Walk {
    ticks: Vec<i64>,
    /// The next tick after those, or `None` when the schedule ends with them.
    next: Option<i64>,
}

fn walk(rule: &Rule, row: &ScheduleRow, now: i64, chunk: usize) -> Walk {
    let mut ticks = Vec::new();
    let mut t = row.next_at;
    let mut left = row.repeat_left;
    loop {
        ticks.push(t);
        if let Some(l) = left.as_mut() {
            *l -= 1;
            if *l <= 0 {
                return Walk { ticks, next: None };
            }
        }
        match rule.next_after(t) {
            Some(n) => t = n,
            None => return Walk { ticks, next: None },
        }
        if t > now || ticks.len() >= chunk {
            return Walk {
                ticks,
                next: Some(t),
            };
        }
    }
}

/// Handles the due ticks of one schedule: moves it on (or ends it) and publishes what its
/// policy says, all or nothing. A tick whose message a full group refuses (`max_ready`)
/// stays due. Returns the messages published.
fn fire_one(
    inner: &Inner,
    conn: &Connection,
    matches: &mut Matches,
    row: &ScheduleRow,
    now: i64,
) -> Result<usize> {
    let rule = Rule::from_row(row)?;
    let missed = Missed::from_code(row.missed)?;
    let chunk = if missed == Missed::CatchUp {
        CATCH_UP_CHUNK
    } else {
        WALK_CHUNK
    };
    let w = walk(&rule, row, now, chunk);
    let (Some(&first), Some(&last)) = (w.ticks.first(), w.ticks.last()) else {
        return Ok(0);
    };
    let n = w.ticks.len() as i64;
    // Whether `last` is the latest due tick (a later one is not due, or there is none).
    let caught_up = w.next.is_none_or(|t| t > now);
    let messages: Vec<(i64, i64)> = match missed {
        Missed::CatchUp => w.ticks.iter().map(|&t| (t, 1)).collect(),
        Missed::Once => vec![(last, n)],
        Missed::Skip if caught_up && now - last <= duration_to_ms(SKIP_GRACE) => vec![(last, 1)],
        Missed::Skip => Vec::new(),
    };
    let out = store::all_or_nothing(conn, |c| {
        let moved = match w.next {
            Some(to) => store::schedules::advance(c, &row.name, first, to, n)?,
            None => store::schedules::finish(c, &row.name, first)?,
        };
        if !moved {
            return Ok(0);
        }
        for &(tick, ticks) in &messages {
            let o = PublishOptions {
                tag: row.tag.clone(),
                key: row.key.clone(),
                headers: tick_headers(
                    &store::decode_headers(row.headers.clone())?,
                    &row.name,
                    tick,
                    ticks,
                ),
                ..PublishOptions::default()
            };
            publish::write(
                inner,
                c,
                matches,
                &row.topic,
                &row.payload,
                &o,
                Visibility::Committed,
            )?;
        }
        Ok(messages.len())
    });
    match out {
        Err(e) if e.kind() == crate::ErrorKind::Full => Ok(0),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_row(next_at: i64, every: i64, left: Option<i64>) -> ScheduleRow {
        ScheduleRow {
            name: "s".into(),
            topic: "t".into(),
            payload: vec![],
            tag: None,
            key: None,
            headers: None,
            cron: None,
            tz: None,
            every_ms: Some(every),
            missed: 0,
            next_at,
            fired: 0,
            repeat_left: left,
        }
    }

    #[test]
    fn a_walk_stops_at_the_first_future_tick_or_the_last_repeat() {
        let rule = Rule::Every(10);
        let w = walk(&rule, &every_row(100, 10, None), 125, 1000);
        assert_eq!((w.ticks, w.next), (vec![100, 110, 120], Some(130)));
        let w = walk(&rule, &every_row(100, 10, Some(2)), 125, 1000);
        assert_eq!((w.ticks, w.next), (vec![100, 110], None));
        let w = walk(&rule, &every_row(100, 10, None), 10_000, 5);
        assert_eq!(w.ticks.len(), 5);
        assert_eq!(w.next, Some(150));
    }

    #[test]
    fn cron_reads_its_time_zone_and_seconds() {
        // 2023-11-14T22:13:20Z is 23:13:20 in Paris (CET, UTC+1).
        let start = 1_700_000_000_000;
        let paris = Rule::Cron(
            Box::new(parse_cron("0 0 * * *").unwrap()),
            parse_tz("Europe/Paris").unwrap(),
        );
        // Next local midnight: 2023-11-14T23:00:00Z.
        assert_eq!(paris.first_from(start), Some(1_700_002_800_000));
        let every_5s = Rule::Cron(
            Box::new(parse_cron("*/5 * * * * *").unwrap()),
            chrono_tz::UTC,
        );
        assert_eq!(every_5s.first_from(start + 1), Some(1_700_000_005_000));
        assert_eq!(
            every_5s.next_after(1_700_000_005_000),
            Some(1_700_000_010_000)
        );
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("* * *").is_err());
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
