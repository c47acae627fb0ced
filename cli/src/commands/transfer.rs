//! `export` (a topic's committed messages as JSON lines) and `import` (publishing them,
//! idempotently, into another file).

use crate::exit::{self, Failure, Result};
use crate::output;
use crate::views;
use ferrymq::{Message, Options, PublishOptions, Queue};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::Path;

pub fn export(q: &Queue, json: bool, topic: &str, from_id: i64, path: Option<&Path>) -> Result<()> {
    const PAGE: usize = 1_000;
    if !q.stats()?.topics.contains_key(topic) {
        return Err(Failure::new(
            exit::NOT_FOUND,
            format!("topic {topic:?} does not exist"),
        ));
    }
    let mut out: Box<dyn Write> = match path {
        Some(p) => Box::new(BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", p.display())))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let (mut after, mut n) = (from_id, 0u64);
    loop {
        let page = q.messages_after(topic, after, PAGE)?;
        for m in &page {
            writeln!(out, "{}", Value::Object(views::record(m)))?;
            after = m.id;
            n += 1;
        }
        if page.len() < PAGE {
            break;
        }
    }
    out.flush()?;
    if let Some(p) = path {
        let text = format!("{n} messages of {topic} exported to {}", p.display());
        output::outcome(
            json,
            json!({ "topic": topic, "exported": n, "last_id": after }),
            text,
        );
    }
    Ok(())
}

/// One message of an export file, checked before anything is published.
pub struct Record {
    pub id: i64,
    pub message: Message,
}

/// The options an import opens the queue with: idempotency keys that outlive any
/// re-import, and the largest payload the core accepts (the source held it already).
pub fn options() -> Options {
    Options::default()
        .idempotency_window(ferrymq::limits::MAX_DURATION)
        .max_payload(ferrymq::limits::MAX_PAYLOAD)
}

/// Reads and checks every line first, so a bad file changes nothing.
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                exit::NOT_FOUND
            } else {
                exit::ERROR
            };
            Failure::new(code, format!("cannot read {}: {e}", path.display()))
        })?
    };
    let mut records = Vec::new();
    for (i, line) in text.as_bytes().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = parse(&line)
            .map_err(|e| Failure::usage(format!("{}:{}: {e}", path.display(), i + 1)))?;
        records.push(record);
    }
    Ok(records)
}

fn parse(line: &str) -> std::result::Result<Record, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let id = v["id"].as_i64().ok_or("\"id\" must be an integer")?;
    let text = |field: &str| -> std::result::Result<Option<String>, String> {
        match &v[field] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(format!("{field:?} must be a string or null")),
        }
    };
    let topic = text("topic")?.ok_or("\"topic\" is missing")?;
    let payload = text("payload")?.ok_or("\"payload\" is missing")?;
    let encoding = text("payload_encoding")?.unwrap_or_else(|| "utf8".into());
    let payload = views::decode_payload(&payload, &encoding)?;
    let headers: BTreeMap<String, String> = match &v["headers"] {
        Value::Null => BTreeMap::new(),
        h => serde_json::from_value(h.clone())
            .map_err(|_| "\"headers\" must map strings to strings")?,
    };
    let options = PublishOptions {
        tag: text("tag")?,
        key: text("key")?,
        headers,
        ordering_key: text("ordering_key")?,
        ..PublishOptions::default()
    };
    Ok(Record {
        id,
        message: Message::new(topic, payload).with_options(options),
    })
}

/// Publishes every record in one transaction (all or nothing), each with idempotency key
/// `<prefix><original id>`. A message is new when its id is above every id the file held
/// before; a repeated key returns the first message's id, which is not.
pub fn import(q: &Queue, json: bool, records: &[Record], prefix: &str) -> Result<()> {
    let stats = q.stats()?;
    let mut before = 0;
    for topic in stats.topics.keys() {
        before = before.max(q.last_message_id(topic)?.unwrap_or(0));
    }
    let messages: Vec<Message> = records
        .iter()
        .map(|r| {
            let mut m = r.message.clone();
            m.options.idempotency_key = Some(format!("{prefix}{}", r.id));
            m
        })
        .collect();
    let ids = q.transaction(|tx| {
        let mut ids = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(1_000) {
            ids.extend(tx.publish_batch(chunk)?);
        }
        Ok(ids)
    })?;
    let added = ids.iter().filter(|&&id| id > before).count();
    if json {
        output::json(
            &json!({ "records": records.len(), "added": added, "already_there": records.len() - added }),
        );
    } else {
        println!(
            "{} records read, {added} messages added, {} already imported",
            records.len(),
            records.len() - added
        );
    }
    Ok(())
}
