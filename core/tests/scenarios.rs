//! The Rust runner of the shared scenarios in `tests/scenarios/*.json` (format in that
//! folder's README). The Python, Node and Kotlin runners execute the same files.

use ferrymq::{
    Delivery, Error, ManualClock, Message, MessageState, Options, PublishOptions, Queue,
    ReceiveOptions, Resolution, RetryPolicy, ScheduleInfo, ScheduleOptions, SubscribeOptions,
    Value,
};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

const START_MS: i64 = 1_700_000_000_000;

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

struct Runner {
    q: Queue,
    clock: ManualClock,
    dir: tempfile::TempDir,
    /// The passphrase of an encrypted file (`None`: plain).
    key: Option<String>,
    ids: HashMap<String, i64>,
    deliveries: HashMap<String, Delivery>,
}

fn ms(v: &Json) -> Duration {
    Duration::from_millis(v.as_u64().expect("a whole number of ms"))
}

/// Negative values are passed on as they are, so the core's validation is what refuses them.
fn signed_ms(v: &Json) -> std::result::Result<Duration, Error> {
    let n = v.as_f64().expect("a number of ms");
    ferrymq::seconds("ms", n / 1000.0)
}

fn text(v: &Json) -> &str {
    v.as_str().expect("a string")
}

fn retry(v: &Json) -> ferrymq::Result<RetryPolicy> {
    match text(&v["policy"]) {
        "rocketmq" => Ok(RetryPolicy::rocketmq()),
        "alipay" => Ok(RetryPolicy::alipay()),
        "wechat_pay" => Ok(RetryPolicy::wechat_pay()),
        "fixed" => {
            let delays = v["delays_ms"]
                .as_array()
                .unwrap()
                .iter()
                .map(signed_ms)
                .collect::<ferrymq::Result<Vec<_>>>()?;
            RetryPolicy::fixed(delays)
        }
        other => panic!("unknown retry policy {other}"),
    }
}

fn sql_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Number(n) if n.is_i64() => Value::Integer(n.as_i64().unwrap()),
        Json::Number(n) => Value::Real(n.as_f64().unwrap()),
        Json::String(s) => Value::Text(s.clone()),
        other => panic!("unsupported SQL parameter {other}"),
    }
}

fn json_value(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(n) => json!(n),
        Value::Real(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Blob(b) => json!(String::from_utf8_lossy(b)),
    }
}

fn opt_str(v: &Option<String>) -> Json {
    v.as_ref().map_or(Json::Null, |s| json!(s))
}

/// Every field of `expected` must equal the same field of `actual` (objects compared
/// recursively, lists exactly).
fn check_subset(expected: &Json, actual: &Json, at: &str) {
    match (expected, actual) {
        (Json::Object(e), Json::Object(a)) => {
            for (k, v) in e {
                let got = a.get(k).unwrap_or(&Json::Null);
                check_subset(v, got, &format!("{at}.{k}"));
            }
        }
        (Json::Array(e), Json::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{at}: expected {expected}, got {actual}");
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                check_subset(e, a, &format!("{at}[{i}]"));
            }
        }
        (e, a) => assert_eq!(e, a, "{at}"),
    }
}

impl Runner {
    fn new(queue: &Json, key: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let mut o = Options::default().with_manual_clock(clock.clone());
        if let Some(k) = key {
            o = o.key(ferrymq::Key::passphrase(k).unwrap());
        }
        if let Some(v) = queue.get("check_after_ms") {
            o = o.check_after(ms(v));
        }
        if let Some(v) = queue.get("check_interval_ms") {
            o = o.check_interval(ms(v));
        }
        if let Some(v) = queue.get("check_max") {
            o = o.check_max(v.as_u64().unwrap() as u32);
        }
        if let Some(v) = queue.get("max_ready") {
            o = o.max_ready(v.as_u64().unwrap());
        }
        let q = Queue::open(dir.path().join("q.db"), o).unwrap();
        Runner {
            q,
            clock,
            dir,
            key: key.map(str::to_owned),
            ids: HashMap::new(),
            deliveries: HashMap::new(),
        }
    }

    /// `"$name"` is a saved id; a number is itself.
    fn id(&self, v: &Json) -> i64 {
        match v {
            Json::String(s) => {
                let name = s.strip_prefix('$').expect("ids are \"$name\"");
                *self
                    .ids
                    .get(name)
                    .unwrap_or_else(|| panic!("no id saved as {name}"))
            }
            other => other.as_i64().expect("an id"),
        }
    }

    /// Replaces every `"$name"` string in an expectation with its id.
    fn resolve(&self, v: &Json) -> Json {
        match v {
            Json::String(s) if s.starts_with('$') => json!(self.id(v)),
            Json::Array(a) => Json::Array(a.iter().map(|x| self.resolve(x)).collect()),
            Json::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.resolve(x)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }

    fn delivery(&self, step: &Json) -> &Delivery {
        let name = text(&step["delivery"]);
        self.deliveries
            .get(name)
            .unwrap_or_else(|| panic!("no delivery saved as {name}"))
    }

    fn publish_options(step: &Json) -> ferrymq::Result<PublishOptions> {
        let mut o = PublishOptions::new();
        if let Some(v) = step.get("tag") {
            o = o.tag(text(v));
        }
        if let Some(v) = step.get("key") {
            o = o.key(text(v));
        }
        if let Some(Json::Object(h)) = step.get("headers") {
            for (k, v) in h {
                o = o.header(k, text(v));
            }
        }
        if let Some(v) = step.get("ordering_key") {
            o = o.ordering_key(text(v));
        }
        if let Some(v) = step.get("idempotency_key") {
            o = o.idempotency_key(text(v));
        }
        if let Some(v) = step.get("delay_ms") {
            o = o.delay(signed_ms(v)?);
        }
        if let Some(v) = step.get("deliver_at_offset_ms") {
            let at = START_MS as u64 + v.as_u64().unwrap();
            o = o.deliver_at(UNIX_EPOCH + Duration::from_millis(at));
        }
        if let Some(v) = step.get("priority") {
            let p = v.as_i64().unwrap();
            o = o.priority(i32::try_from(p).unwrap_or(i32::MAX));
        }
        Ok(o)
    }

    fn schedule_options(step: &Json) -> ferrymq::Result<ScheduleOptions> {
        let mut o = ScheduleOptions::new();
        if let Some(v) = step.get("cron") {
            o = o.cron(text(v));
        }
        if let Some(v) = step.get("every_ms") {
            o = o.every(signed_ms(v)?);
        }
        if let Some(v) = step.get("tz") {
            o = o.tz(text(v));
        }
        if let Some(v) = step.get("repeat") {
            o = o.repeat(v.as_u64().expect("a count"));
        }
        if let Some(v) = step.get("start_at_offset_ms") {
            let at = START_MS as u64 + v.as_u64().unwrap();
            o = o.start_at(UNIX_EPOCH + Duration::from_millis(at));
        }
        if let Some(v) = step.get("delay_ms") {
            o = o.delay(signed_ms(v)?);
        }
        if let Some(v) = step.get("missed") {
            o = o.missed(text(v).parse()?);
        }
        let p = Self::publish_options(step)?;
        o.tag = p.tag;
        o.key = p.key;
        o.headers = p.headers;
        Ok(o)
    }

    fn schedule_json(s: &ScheduleInfo) -> Json {
        let next = s.next_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        json!({
            "name": s.name,
            "topic": s.topic,
            "cron": opt_str(&s.cron),
            "every_ms": s.every.map(|d| d.as_millis() as u64),
            "tz": opt_str(&s.tz),
            "next_at_offset_ms": next - START_MS,
            "fired": s.fired,
            "repeat_left": s.repeat_left,
            "missed": s.missed.as_str(),
        })
    }

    fn delivery_json(d: &Delivery) -> Json {
        json!({
            "message_id": d.message_id,
            "topic": d.topic,
            "payload": String::from_utf8_lossy(&d.payload),
            "tag": opt_str(&d.tag),
            "key": opt_str(&d.key),
            "headers": d.headers,
            "ordering_key": opt_str(&d.ordering_key),
            "attempt": d.attempt,
            "priority": d.priority,
        })
    }

    /// Runs one step; `Ok(Some(result))` is compared with the step's `expect`.
    fn step(&mut self, s: &Json) -> ferrymq::Result<Option<Json>> {
        let op = text(&s["op"]);
        match op {
            "subscribe" => {
                let mut o = SubscribeOptions::new();
                if let Some(v) = s.get("tags") {
                    o = o.tags(text(v));
                }
                if let Some(v) = s.get("lease_ms") {
                    o = o.lease(signed_ms(v)?);
                }
                if let Some(v) = s.get("retry") {
                    o = o.retry(retry(v)?);
                }
                if let Some(v) = s.get("max_inflight") {
                    o = o.max_inflight(v.as_u64().unwrap());
                }
                if let Some(v) = s.get("rate") {
                    o = o.rate(v.as_f64().unwrap());
                }
                if let Some(v) = s.get("burst") {
                    o = o.burst(v.as_u64().unwrap());
                }
                self.q.subscribe(text(&s["group"]), text(&s["topic"]), o)?;
                Ok(None)
            }
            "publish" => {
                let o = Self::publish_options(s)?;
                let id = self.q.publish(text(&s["topic"]), text(&s["payload"]), o)?;
                if let Some(name) = s.get("as") {
                    self.ids.insert(text(name).to_owned(), id);
                }
                if let Some(want) = s.get("expect_id") {
                    assert_eq!(id, self.id(want), "expect_id");
                }
                Ok(None)
            }
            "publish_batch" => {
                let batch = s["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        Ok(Message::new(text(&m["topic"]), text(&m["payload"]))
                            .with_options(Self::publish_options(m)?))
                    })
                    .collect::<ferrymq::Result<Vec<_>>>()?;
                let ids = self.q.publish_batch(&batch)?;
                if let Some(Json::Array(names)) = s.get("as") {
                    for (n, id) in names.iter().zip(ids) {
                        self.ids.insert(text(n).to_owned(), id);
                    }
                }
                Ok(None)
            }
            "receive" => {
                let mut o = ReceiveOptions::new()
                    .max(s.get("max").map_or(1, |v| v.as_i64().unwrap()) as usize);
                if let Some(v) = s.get("lease_ms") {
                    o = o.lease(signed_ms(v)?);
                }
                let ds = self.q.receive(text(&s["group"]), o)?;
                let out = Json::Array(ds.iter().map(Self::delivery_json).collect());
                if let Some(Json::Array(names)) = s.get("as") {
                    assert!(names.len() <= ds.len(), "fewer deliveries than names");
                    for (n, d) in names.iter().zip(ds) {
                        self.deliveries.insert(text(n).to_owned(), d);
                    }
                }
                Ok(Some(out))
            }
            "ack" => self.q.ack(self.delivery(s)).map(|()| None),
            "nack" => {
                let delay = s.get("delay_ms").map(signed_ms).transpose()?;
                let reason = s.get("reason").map_or("", text);
                self.q.nack(self.delivery(s), reason, delay).map(|()| None)
            }
            "extend" => {
                let lease = signed_ms(&s["lease_ms"])?;
                let name = text(&s["delivery"]).to_owned();
                let mut d = self.deliveries[&name].clone();
                self.q.extend(&mut d, lease)?;
                self.deliveries.insert(name, d);
                Ok(None)
            }
            "advance" => {
                self.clock.advance(ms(&s["ms"]));
                Ok(None)
            }
            "schedule" => {
                let o = Self::schedule_options(s)?;
                let name = text(&s["name"]);
                self.q
                    .schedule(name, text(&s["topic"]), text(&s["payload"]), o)
                    .map(|()| None)
            }
            "unschedule" => self.q.unschedule(text(&s["name"])).map(|()| None),
            "schedules" => Ok(Some(Json::Array(
                self.q
                    .schedules()?
                    .iter()
                    .map(Self::schedule_json)
                    .collect(),
            ))),
            "pause" => self.q.pause(text(&s["group"])).map(|()| None),
            "resume" => self.q.resume(text(&s["group"])).map(|()| None),
            "stats" => {
                let st = self.q.stats()?;
                let topics: Map<String, Json> = st
                    .topics
                    .iter()
                    .map(|(k, t)| (k.clone(), json!({"messages": t.messages, "half": t.half})))
                    .collect();
                let groups: Map<String, Json> = st
                    .groups
                    .iter()
                    .map(|(k, g)| {
                        (
                            k.clone(),
                            json!({"topic": g.topic, "ready": g.ready, "scheduled": g.scheduled,
                                   "inflight": g.inflight, "retrying": g.retrying, "dead": g.dead,
                                   "paused": g.paused}),
                        )
                    })
                    .collect();
                Ok(Some(json!({"topics": topics, "groups": groups})))
            }
            "message" => {
                let m = self.q.message(self.id(&s["id"]))?;
                let deliveries: Map<String, Json> = m
                    .deliveries
                    .iter()
                    .map(|(g, d)| {
                        (
                            g.clone(),
                            json!({"state": d.state.as_str(), "attempts": d.attempts,
                                   "last_error": opt_str(&d.last_error)}),
                        )
                    })
                    .collect();
                Ok(Some(json!({
                    "state": m.state.as_str(), "tag": opt_str(&m.tag), "key": opt_str(&m.key),
                    "payload": String::from_utf8_lossy(&m.payload), "deliveries": deliveries,
                })))
            }
            "find" => {
                let ms = self.q.find(text(&s["topic"]), text(&s["key"]))?;
                Ok(Some(json!(ms.iter().map(|m| m.id).collect::<Vec<_>>())))
            }
            "dead_letters" => {
                let ds = self.q.dead_letters(text(&s["group"]), 1000)?;
                Ok(Some(Json::Array(
                    ds.iter()
                        .map(|d| {
                            json!({"message_id": d.message_id, "attempts": d.attempts,
                                   "last_error": opt_str(&d.last_error)})
                        })
                        .collect(),
                )))
            }
            "redrive" => {
                let ids = s.get("ids").map(|v| {
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| self.id(x))
                        .collect::<Vec<_>>()
                });
                Ok(Some(json!(
                    self.q.redrive(text(&s["group"]), ids.as_deref())?
                )))
            }
            "purge_dead_letters" => Ok(Some(json!(
                self.q.purge_dead_letters(text(&s["group"]), None)?
            ))),
            "transaction" => self.transaction(s).map(|()| None),
            "publish_in" | "ack_in" => self.on_own_connection(s),
            "query" => {
                let params: Vec<Value> = s.get("params").map_or(vec![], |p| {
                    p.as_array().unwrap().iter().map(sql_value).collect()
                });
                let rows = self
                    .q
                    .transaction(|tx| tx.query(text(&s["sql"]), &params))?;
                Ok(Some(Json::Array(
                    rows.iter()
                        .map(|r| Json::Array(r.iter().map(json_value).collect()))
                        .collect(),
                )))
            }
            "prepare" => {
                let o = Self::publish_options(s)?;
                let h = self.q.prepare(text(&s["topic"]), text(&s["payload"]), o)?;
                self.ids.insert(text(&s["as"]).to_owned(), h.id);
                Ok(None)
            }
            "commit_half" => self.q.commit_half(self.id(&s["id"])).map(|()| None),
            "rollback_half" => self.q.rollback_half(self.id(&s["id"])).map(|()| None),
            "set_checker" => {
                let answers: HashMap<String, String> = s["answers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v).to_owned()))
                    .collect();
                self.q.set_checker(text(&s["topic"]), move |info| {
                    match info
                        .key
                        .as_ref()
                        .and_then(|k| answers.get(k))
                        .map(String::as_str)
                    {
                        Some("commit") => Ok(Resolution::Commit),
                        Some("rollback") => Ok(Resolution::Rollback),
                        Some("unknown") => Ok(Resolution::Unknown),
                        _ => Err("the checker failed".into()),
                    }
                })?;
                Ok(None)
            }
            "run_checks" => Ok(Some(json!(self.q.run_checks()?))),
            "half_messages" => {
                let state = s
                    .get("state")
                    .map(|v| text(v).parse::<MessageState>())
                    .transpose()?;
                let ms = self.q.half_messages(state, 1000)?;
                Ok(Some(json!(ms.iter().map(|m| m.id).collect::<Vec<_>>())))
            }
            "close" => self.q.close().map(|()| None),
            "open_foreign" => {
                let path = self.dir.path().join("notes.txt");
                std::fs::write(&path, "not a database ".repeat(100)).unwrap();
                Queue::open(&path, Options::default()).map(|_| None)
            }
            other => panic!("unknown op {other}"),
        }
    }

    /// `publish_in` / `ack_in`: on a connection of the caller's own (here rusqlite), in
    /// its transaction, after the step's `execute` statements; committed, or rolled back
    /// when the step says `rollback` or fails.
    fn on_own_connection(&mut self, s: &Json) -> ferrymq::Result<Option<Json>> {
        let mut conn = rusqlite::Connection::open(self.dir.path().join("q.db")).unwrap();
        // On an encrypted file the caller's connection must be a SQLCipher build keyed
        // as SQLCipher's shell keys it (rusqlite here is one).
        if let Some(k) = &self.key {
            conn.pragma_update(None, "key", k).unwrap();
        }
        let tx = conn.transaction()?;
        for e in s
            .get("execute")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let params: Vec<Value> = e.get("params").map_or(vec![], |p| {
                p.as_array().unwrap().iter().map(sql_value).collect()
            });
            tx.execute(text(&e["sql"]), rusqlite::params_from_iter(params))?;
        }
        let id = if text(&s["op"]) == "publish_in" {
            let o = Self::publish_options(s)?;
            let id = ferrymq::sql::publish_in(
                &tx,
                text(&s["topic"]),
                text(&s["payload"]).as_bytes(),
                &o,
                Some(&self.q),
            )?;
            Some(id)
        } else {
            ferrymq::sql::ack_in(&tx, self.delivery(s), Some(&self.q))?;
            None
        };
        if s.get("rollback").and_then(Json::as_bool) == Some(true) {
            tx.rollback()?;
            return Ok(None);
        }
        tx.commit()?;
        if let Some(id) = id {
            if let Some(name) = s.get("as") {
                self.ids.insert(text(name).to_owned(), id);
            }
            if let Some(want) = s.get("expect_id") {
                assert_eq!(id, self.id(want), "expect_id");
            }
        }
        Ok(None)
    }

    fn transaction(&mut self, s: &Json) -> ferrymq::Result<()> {
        let steps = s["steps"].as_array().unwrap().clone();
        let throws = s.get("throw").and_then(Json::as_bool).unwrap_or(false);
        let deliveries = &self.deliveries;
        self.q
            .transaction(|tx| {
                for t in &steps {
                    match text(&t["op"]) {
                        "execute" => {
                            let params: Vec<Value> = t.get("params").map_or(vec![], |p| {
                                p.as_array().unwrap().iter().map(sql_value).collect()
                            });
                            tx.execute(text(&t["sql"]), &params)?;
                        }
                        "publish" => {
                            let o = Self::publish_options(t)?;
                            tx.publish(text(&t["topic"]), text(&t["payload"]), o)?;
                        }
                        "ack" => tx.ack(&deliveries[text(&t["delivery"])])?,
                        "nack" => tx.nack(
                            &deliveries[text(&t["delivery"])],
                            t.get("reason").map_or("", text),
                            None,
                        )?,
                        "inbox" => {
                            let window = t
                                .get("window_ms")
                                .map(|w| Duration::from_millis(w.as_u64().unwrap()));
                            let new = tx.inbox(text(&t["key"]), window)?;
                            assert_eq!(Some(new), t["expect"].as_bool(), "inbox {t}");
                        }
                        other => panic!("unknown transaction op {other}"),
                    }
                }
                if throws {
                    // The caller's own failure: the whole transaction rolls back.
                    return Err(Error::Callback("the scenario's callback failed".into()));
                }
                Ok(())
            })
            .or_else(|e| match e {
                Error::Callback(_) if throws => Ok(()),
                e => Err(e),
            })
    }
}

fn run(path: &Path, key: Option<&str>) {
    let scenario: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // A scenario may name the languages whose runners run it (see the README).
    if let Some(Json::Array(langs)) = scenario.get("languages")
        && !langs.iter().any(|l| l == "rust")
    {
        return;
    }
    let mut r = Runner::new(scenario.get("queue").unwrap_or(&json!({})), key);
    for (i, s) in scenario["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!("{} step {i} ({})", path.display(), s["op"]);
        let result = r.step(s);
        match (s.get("error"), result) {
            (Some(code), Err(e)) => assert_eq!(e.kind().code(), text(code), "{at}: {e}"),
            (Some(code), Ok(_)) => panic!("{at}: expected {code}, got success"),
            (None, Err(e)) => panic!("{at}: {e}"),
            (None, Ok(out)) => {
                if let Some(expect) = s.get("expect") {
                    let out = out.unwrap_or_else(|| panic!("{at}: this op has no result"));
                    check_subset(&r.resolve(expect), &out, &at);
                }
            }
        }
    }
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenario_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 13, "scenario files missing: {files:?}");
    files
}

#[test]
fn every_shared_scenario_passes() {
    for f in scenario_files() {
        run(&f, None);
    }
}

/// The same files on an encrypted file (see tests/scenarios/README.md).
#[test]
fn every_shared_scenario_passes_on_an_encrypted_file() {
    for f in scenario_files() {
        run(&f, Some("scenario passphrase"));
    }
}
