//! What a ferrymq message looks like on the bus: the payload as is, and headers naming the
//! message (id, origin, topic, tag, key, ordering key) next to its own headers (which carry
//! `traceparent` when the publisher traced). Ingress reads the same names back.

use ferrymq::Delivery;
use std::collections::BTreeMap;

pub const ID: &str = "ferrymq-id";
/// Which file the id belongs to (ids are per file): `host:path` unless configured.
pub const ORIGIN: &str = "ferrymq-origin";
pub const TOPIC: &str = "ferrymq-topic";
pub const TAG: &str = "ferrymq-tag";
pub const KEY: &str = "ferrymq-key";
pub const ORDERING_KEY: &str = "ferrymq-ordering-key";
/// On an ingress-published local message: the source id its idempotency key was made from.
pub const SOURCE: &str = "ferrymq-source";

/// The header in which Debezium's outbox event router names an event.
pub const DEBEZIUM_ID: &str = "id";

/// The namespace of [`event_uuid`]s (a random UUID, fixed for good: changing it would
/// give every message a new event id).
const EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2b8e_93d4_4a57_b0e2_5c71_d8a3_9f46);

/// The UUID of message `id` of the file `origin` (version 5: SHA-1 of both): every copy
/// of a message carries the same one, and no two messages of any two files share one.
pub fn event_uuid(origin: &str, id: i64) -> String {
    let name = format!("{origin}/{id}");
    uuid::Uuid::new_v5(&EVENT_NAMESPACE, name.as_bytes()).to_string()
}

/// The broker headers of one delivery: the message's own headers, then ferrymq's names.
pub fn headers_of(d: &Delivery, origin: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = d
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.push((ID.into(), d.message_id.to_string()));
    out.push((ORIGIN.into(), origin.to_string()));
    out.push((TOPIC.into(), d.topic.clone()));
    if let Some(t) = &d.tag {
        out.push((TAG.into(), t.clone()));
    }
    if let Some(k) = &d.key {
        out.push((KEY.into(), k.clone()));
    }
    if let Some(k) = &d.ordering_key {
        out.push((ORDERING_KEY.into(), k.clone()));
    }
    out
}

/// Kafka's record key: the ordering key (so one key stays on one partition, in order),
/// else the message key, else none (round robin).
pub fn record_key(d: &Delivery) -> Option<&str> {
    d.ordering_key.as_deref().or(d.key.as_deref())
}

/// The id a redelivery of one source message repeats: `ferrymq:<origin>/<id>` when a
/// ferrymq relay sent it, else what the caller derived from the broker (Kafka
/// `kafka:<topic>/<partition>/<offset>`, AMQP `amqp:<message-id>`).
pub fn source_id(headers: &BTreeMap<String, String>, fallback: Option<String>) -> Option<String> {
    match (headers.get(ID), headers.get(ORIGIN)) {
        (Some(id), Some(origin)) => Some(format!("ferrymq:{origin}/{id}")),
        (Some(id), None) => Some(format!("ferrymq:{id}")),
        _ => fallback,
    }
}

/// The local message for a bus message: the user's headers stay, ferrymq's names become
/// the tag, key and ordering key again, and `ferrymq-source` records the source id.
pub fn local_message(
    topic: &str,
    payload: Vec<u8>,
    headers: &BTreeMap<String, String>,
    source: &str,
    broker_key: Option<String>,
) -> ferrymq::Message {
    let mut o = ferrymq::PublishOptions::new().idempotency_key(source);
    if let Some(t) = headers.get(TAG) {
        o = o.tag(t.clone());
    }
    if let Some(k) = headers.get(KEY).cloned().or(broker_key) {
        o = o.key(k);
    }
    if let Some(k) = headers.get(ORDERING_KEY) {
        o = o.ordering_key(k.clone());
    }
    for (k, v) in headers {
        if !k.starts_with("ferrymq-") {
            o = o.header(k.clone(), v.clone());
        }
    }
    o = o.header(SOURCE, source);
    ferrymq::Message::new(topic, payload).with_options(o)
}

/// `host:path` of the file: what makes a message id unique beyond one file.
pub fn default_origin(path: &std::path::Path) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let host = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".to_string()
    };
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{host}:{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_uuid_is_stable_per_message_and_distinct_across_messages_and_files() {
        let a = event_uuid("h:/a.db", 7);
        assert_eq!(a, event_uuid("h:/a.db", 7));
        assert_ne!(a, event_uuid("h:/a.db", 8));
        assert_ne!(a, event_uuid("h:/b.db", 7));
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 5);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn a_relayed_id_wins_over_the_brokers_position() {
        let mut h = BTreeMap::new();
        assert_eq!(
            source_id(&h, Some("kafka:t/0/7".into())).as_deref(),
            Some("kafka:t/0/7")
        );
        h.insert(ID.to_string(), "42".to_string());
        h.insert(ORIGIN.to_string(), "a:/q.db".to_string());
        assert_eq!(
            source_id(&h, Some("kafka:t/0/7".into())).as_deref(),
            Some("ferrymq:a:/q.db/42")
        );
    }
}
