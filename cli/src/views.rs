//! The JSON shapes `--json` prints (documented in cli/README.md) and the text forms of
//! times, payloads and states that tables share with them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferrymq::{
    AttemptRecord, AuditRecord, DeadLetter, DeliveryInfo, GroupStats, MessageInfo, ScheduleInfo,
    Stats,
};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 in UTC with milliseconds: `2026-12-06T22:37:18.123Z`.
pub fn time(t: SystemTime) -> String {
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Howard Hinnant's days-to-civil (proleptic Gregorian), days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A payload as text: UTF-8 as is (`"utf8"`), anything else base64 (`"base64"`).
pub fn payload(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), "utf8"),
        Err(_) => (B64.encode(bytes), "base64"),
    }
}

pub fn decode_payload(text: &str, encoding: &str) -> Result<Vec<u8>, String> {
    match encoding {
        "utf8" => Ok(text.as_bytes().to_vec()),
        "base64" => B64
            .decode(text)
            .map_err(|e| format!("bad base64 payload: {e}")),
        other => Err(format!(
            "payload_encoding must be \"utf8\" or \"base64\", not {other:?}"
        )),
    }
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_millis() as u64))
}

pub fn schedule(s: &ScheduleInfo) -> Value {
    json!({
        "name": s.name,
        "topic": s.topic,
        "cron": s.cron,
        "every_ms": ms(s.every),
        "tz": s.tz,
        "next_at": time(s.next_at),
        "fired": s.fired,
        "repeat_left": s.repeat_left,
        "missed": s.missed.as_str(),
        "tag": s.tag,
        "key": s.key,
        "headers": s.headers,
    })
}

/// `1h30m`, `250ms`: how an operator writes a period.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    let units = [(3_600_000, "h"), (60_000, "m"), (1_000, "s"), (1, "ms")];
    let mut left = ms;
    let mut out = String::new();
    for (size, unit) in units {
        if left >= size {
            out += &format!("{}{unit}", left / size);
            left %= size;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

pub fn group_stats(name: &str, g: &GroupStats) -> Value {
    json!({
        "name": name,
        "topic": g.topic,
        "ready": g.ready,
        "scheduled": g.scheduled,
        "inflight": g.inflight,
        "retrying": g.retrying,
        "dead": g.dead,
        "oldest_ready_age_ms": ms(g.oldest_ready_age),
        "paused": g.paused,
    })
}

pub fn stats(s: &Stats) -> Value {
    json!({
        "topics": topics(s),
        "groups": s.groups.iter().map(|(n, g)| group_stats(n, g)).collect::<Vec<_>>(),
    })
}

pub fn topics(s: &Stats) -> Value {
    s.topics
        .iter()
        .map(|(name, t)| {
            let groups: Vec<&String> = s
                .groups
                .iter()
                .filter(|(_, g)| &g.topic == name)
                .map(|(n, _)| n)
                .collect();
            json!({ "name": name, "messages": t.messages, "half": t.half, "groups": groups })
        })
        .collect()
}

pub fn attempt(a: &AttemptRecord) -> Value {
    json!({
        "attempt": a.attempt,
        "started_at": time(a.started_at),
        "ended_at": a.ended_at.map(time),
        "outcome": a.outcome.as_str(),
        "error": a.error,
    })
}

fn delivery(d: &DeliveryInfo) -> Value {
    json!({
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "history": d.history.iter().map(attempt).collect::<Vec<_>>(),
    })
}

/// The fields an export line carries, shared by `message` and `tail`.
pub fn record(m: &MessageInfo) -> serde_json::Map<String, Value> {
    let (text, encoding) = payload(&m.payload);
    let mut map = serde_json::Map::new();
    map.insert("id".into(), json!(m.id));
    map.insert("topic".into(), json!(m.topic));
    map.insert("tag".into(), json!(m.tag));
    map.insert("key".into(), json!(m.key));
    map.insert("headers".into(), json!(m.headers));
    map.insert("ordering_key".into(), json!(m.ordering_key));
    map.insert("payload".into(), json!(text));
    map.insert("payload_encoding".into(), json!(encoding));
    map.insert("published_at".into(), json!(time(m.published_at)));
    map
}

/// A list of messages as one JSON array.
pub fn messages(list: &[MessageInfo]) -> Value {
    Value::Array(list.iter().map(message).collect())
}

pub fn message(m: &MessageInfo) -> Value {
    let mut map = record(m);
    map.insert("deliver_at".into(), json!(time(m.deliver_at)));
    map.insert("state".into(), json!(m.state.as_str()));
    let deliveries: serde_json::Map<String, Value> = m
        .deliveries
        .iter()
        .map(|(g, d)| (g.clone(), delivery(d)))
        .collect();
    map.insert("deliveries".into(), Value::Object(deliveries));
    let checks: Vec<Value> = m
        .checks
        .iter()
        .map(|c| json!({"at": time(c.at), "resolution": c.resolution.as_str(), "error": c.error}))
        .collect();
    map.insert("checks".into(), json!(checks));
    Value::Object(map)
}

/// Dead letters of `group` as one JSON array.
pub fn dead_letters(group: &str, list: &[DeadLetter]) -> Value {
    Value::Array(list.iter().map(|d| dead_letter(group, d)).collect())
}

pub fn dead_letter(group: &str, d: &DeadLetter) -> Value {
    let (text, encoding) = payload(&d.payload);
    json!({
        "group": group,
        "message_id": d.message_id,
        "topic": d.topic,
        "tag": d.tag,
        "key": d.key,
        "headers": d.headers,
        "payload": text,
        "payload_encoding": encoding,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "died_at": time(d.died_at),
        "history": d.history.iter().map(attempt).collect::<Vec<_>>(),
    })
}

/// One audit record; `detail` is the JSON the core stored, parsed back.
pub fn audit(r: &AuditRecord) -> Value {
    let detail = r
        .detail
        .as_deref()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| json!(d)));
    json!({
        "id": r.id,
        "at": time(r.at),
        "action": r.action,
        "target": r.target,
        "detail": detail,
        "pid": r.pid,
        "process": r.process,
        "host": r.host,
        "user": r.user,
        "reason": r.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let t = |ms: u64| time(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn payloads_round_trip() {
        for bytes in [&b"hello"[..], &[0xff, 0, 1][..], &b""[..]] {
            let (text, enc) = payload(bytes);
            assert_eq!(decode_payload(&text, enc).unwrap(), bytes);
        }
        assert_eq!(payload(&[0xff]).1, "base64");
        assert!(decode_payload("x", "hex").is_err());
    }
}
