//! `relay.toml`: the file the command runs from. One `db`, any number of `[[egress]]` and
//! `[[ingress]]` sections, each naming exactly one broker (`kafka` or `amqp`; an egress
//! may also name `rocketmq`).
//!
//! ```toml
//! db = "/var/lib/app/queue.db"
//! metrics_listen = "127.0.0.1:9464"  # GET /metrics (Prometheus); default: not served
//!
//! [[egress]]
//! name = "payments-out"      # for logs and counters
//! group = "relay-kafka"      # the consumer group the relay receives with
//! topic = "payments"         # the local topic it subscribes that group to
//! tags = "paid || refunded"  # tag filter (default "*")
//! kafka = { brokers = "127.0.0.1:19092", topic = "payments" }  # debezium = true: see KafkaSinkConfig
//!
//! [[egress]]
//! group = "relay-rocketmq"
//! topic = "payments"
//! rocketmq = { namesrv = "127.0.0.1:19876", topic = "payments" }
//!
//! [[ingress]]
//! name = "payments-in"
//! topic = "payments"         # the local topic messages are published to
//! amqp = { uri = "amqp://guest:guest@127.0.0.1:5682/%2f", queue = "payments" }
//! ```

use crate::{BridgeError, BridgeResult};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    pub db: PathBuf,
    /// Names this file in `ferrymq-origin` (default `host:path`).
    pub origin: Option<String>,
    /// How often the counters are printed to stderr, in ms (0: only at exit).
    #[serde(default = "default_stats_ms")]
    pub stats_interval_ms: u64,
    /// Where to serve the counters and the file's gauges in Prometheus' text format on
    /// `GET /metrics` (`"127.0.0.1:9464"`; port 0 picks a free one, printed at start).
    /// Default: not served.
    pub metrics_listen: Option<String>,
    #[serde(default)]
    pub egress: Vec<EgressConfig>,
    #[serde(default)]
    pub ingress: Vec<IngressConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    pub name: Option<String>,
    pub group: String,
    pub topic: String,
    #[serde(default = "default_tags")]
    pub tags: String,
    /// Deliveries received (and in flight to the broker) at once.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// The group's lease; a confirmation is waited for at most half of it.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// The retry ladder of a failed write: exponential from this delay...
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// ...up to this one, for up to 1,000 retries (then the delivery is dead, in the DLQ).
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    pub kafka: Option<KafkaSinkConfig>,
    pub amqp: Option<AmqpSinkConfig>,
    pub rocketmq: Option<RocketMqSinkConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    pub brokers: String,
    /// The Kafka topic (default: the local topic's name).
    pub topic: Option<String>,
    /// Records as Debezium's outbox event router writes them, for consumers written
    /// against it: the topic `outbox.event.<local topic>` (unless `topic` is set), the
    /// record key the aggregate id (the ordering key, else the message key: as always),
    /// the value the payload, and a header `id` holding the event's UUID, the same in
    /// every copy of one message (a message's own `id` header is left out). ferrymq's own
    /// headers stay.
    #[serde(default)]
    pub debezium: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkConfig {
    pub uri: String,
    /// The exchange ("" is the default exchange: the routing key names the queue).
    #[serde(default)]
    pub exchange: String,
    /// Default: the local topic's name.
    pub routing_key: Option<String>,
    /// A durable queue to declare (and bind to the exchange with the routing key) before
    /// the first publish, so that a fresh broker routes instead of returning.
    pub declare_queue: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RocketMqSinkConfig {
    /// The name server(s), `host:port;host:port`.
    pub namesrv: String,
    /// The RocketMQ topic (default: the local topic's name). The broker creates it on the
    /// first write only if its `autoCreateTopicEnable` is on; else create it first.
    pub topic: Option<String>,
    /// The producer group the relay registers as.
    #[serde(default = "default_producer_group")]
    pub producer_group: String,
    /// The number of writable queues the topic has. A key's queue is its hash modulo the
    /// number the name server lists; when that number changes (queues added, a broker
    /// made read-only or failed over), keys move, and a key's next message could be read
    /// before its last one on the old queue. Set, a write to a topic listing any other
    /// number fails (and waits on the retry ladder) instead. Default: unchecked, as with
    /// RocketMQ's own ordered producers.
    pub queues: Option<usize>,
}

impl RocketMqSinkConfig {
    pub fn topic_for(&self, local_topic: &str) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| local_topic.to_string())
    }
}

/// Why RocketMQ's client would refuse every write to `topic` (its own validator: blank,
/// longer than 127, a character outside `%|a-zA-Z0-9_-`, or a system topic), if it would.
fn rocketmq_topic_refused(topic: &str) -> Option<String> {
    use rocketmq_model::common::topic::TopicValidator;
    let checked = TopicValidator::validate_topic(topic);
    if !checked.valid() {
        return Some(checked.remark().to_string());
    }
    let system = TopicValidator::is_system_topic(topic)
        || TopicValidator::is_not_allowed_send_topic(topic)
        || topic == TopicValidator::AUTO_CREATE_TOPIC_KEY_TOPIC;
    system.then(|| "it is one of RocketMQ's system topics".to_string())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    pub name: Option<String>,
    /// The local topic the messages are published to.
    pub topic: String,
    #[serde(default = "default_batch")]
    pub batch: usize,
    pub kafka: Option<KafkaSourceConfig>,
    pub amqp: Option<AmqpSourceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    /// Static membership: a restarted ingress takes its place back without a rebalance
    /// (default: the group's name).
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSourceConfig {
    pub uri: String,
    /// Declared durable if missing.
    pub queue: String,
}

fn default_stats_ms() -> u64 {
    5_000
}
fn default_producer_group() -> String {
    "ferrymq-relay".into()
}
fn default_tags() -> String {
    "*".into()
}
fn default_batch() -> usize {
    256
}
fn default_lease_ms() -> u64 {
    30_000
}
fn default_retry_initial_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    30_000
}

impl BridgeConfig {
    pub fn load(path: &Path) -> BridgeResult<BridgeConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BridgeError(format!("cannot read {}: {e}", path.display())))?;
        let cfg: BridgeConfig =
            toml::from_str(&text).map_err(|e| BridgeError(format!("{}: {e}", path.display())))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Refuses what would run but do nothing useful, naming the section.
    pub fn check(&self) -> BridgeResult<()> {
        if self.egress.is_empty() && self.ingress.is_empty() {
            return Err(BridgeError("no [[egress]] or [[ingress]] section".into()));
        }
        for e in &self.egress {
            let n = e.label();
            let brokers = [e.kafka.is_some(), e.amqp.is_some(), e.rocketmq.is_some()];
            if brokers.iter().filter(|b| **b).count() != 1 {
                return Err(BridgeError(format!(
                    "egress {n}: name exactly one of kafka, amqp, rocketmq"
                )));
            }
            if let Some(r) = &e.rocketmq {
                let topic = r.topic_for(&e.topic);
                if let Some(why) = rocketmq_topic_refused(&topic) {
                    return Err(BridgeError(format!(
                        "egress {n}: RocketMQ refuses the topic {topic:?} ({why}); set rocketmq.topic"
                    )));
                }
                if r.queues == Some(0) {
                    return Err(BridgeError(format!(
                        "egress {n}: rocketmq.queues must be at least 1"
                    )));
                }
            }
            if e.batch == 0 || e.batch > ferrymq::limits::MAX_RECEIVE {
                return Err(BridgeError(format!("egress {n}: batch must be 1-1000")));
            }
            if e.lease_ms < 1_000 {
                return Err(BridgeError(format!(
                    "egress {n}: lease_ms must be at least 1000"
                )));
            }
        }
        for i in &self.ingress {
            let n = i.label();
            if i.kafka.is_some() == i.amqp.is_some() {
                return Err(BridgeError(format!(
                    "ingress {n}: name exactly one of kafka, amqp"
                )));
            }
            if i.batch == 0 || i.batch > ferrymq::limits::MAX_BATCH {
                return Err(BridgeError(format!("ingress {n}: batch must be 1-10000")));
            }
        }
        // Each section's counters are named by its label (logs, JSON lines, /metrics).
        let mut seen = std::collections::BTreeSet::new();
        let labels = self.egress.iter().map(EgressConfig::label);
        for n in labels.chain(self.ingress.iter().map(IngressConfig::label)) {
            if !seen.insert(n.clone()) {
                return Err(BridgeError(format!(
                    "two sections are named {n}: give one a distinct `name`"
                )));
            }
        }
        Ok(())
    }
}

impl EgressConfig {
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}->{}", self.topic, self.group))
    }
}

impl IngressConfig {
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("->{}", self.topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> BridgeResult<BridgeConfig> {
        let cfg: BridgeConfig = toml::from_str(text).map_err(|e| BridgeError(e.to_string()))?;
        cfg.check().map(|()| cfg)
    }

    #[test]
    fn two_sections_of_one_name_are_refused() {
        let section = "[[ingress]]\ntopic = \"t\"\nkafka = { brokers = \"b\", topic = \"x\", group = \"g\" }\n";
        let twice = format!("db = \"q.db\"\n{section}{section}");
        assert!(
            parse(&twice)
                .unwrap_err()
                .0
                .contains("two sections are named ->t")
        );
        let named = format!("db = \"q.db\"\n{section}name = \"a\"\n{section}");
        parse(&named).unwrap();
    }

    #[test]
    fn a_section_names_exactly_one_broker() {
        let none = "db = \"q.db\"\n[[egress]]\ngroup = \"g\"\ntopic = \"t\"\n";
        assert!(
            parse(none)
                .unwrap_err()
                .0
                .contains("exactly one of kafka, amqp")
        );
        let both = "db = \"q.db\"\n[[ingress]]\ntopic = \"t\"\nkafka = { brokers = \"b\", topic = \"x\", group = \"g\" }\namqp = { uri = \"u\", queue = \"q\" }\n";
        assert!(
            parse(both)
                .unwrap_err()
                .0
                .contains("exactly one of kafka, amqp")
        );
        assert!(
            parse("db = \"q.db\"\n")
                .unwrap_err()
                .0
                .contains("no [[egress]]")
        );
    }

    #[test]
    fn a_topic_rocketmq_would_refuse_is_refused_up_front() {
        let sink = |local: &str, topic: &str| {
            format!(
                "db = \"q.db\"\n[[egress]]\ngroup = \"g\"\ntopic = \"{local}\"\nrocketmq = {{ namesrv = \"n:9876\"{topic} }}\n"
            )
        };
        let dotted = parse(&sink("orders.paid", "")).unwrap_err().0;
        assert!(
            dotted.contains(
                "refuses the topic \"orders.paid\" (The specified topic contains illegal characters"
            ),
            "{dotted}"
        );
        let system = parse(&sink("t", ", topic = \"TBW102\"")).unwrap_err().0;
        assert!(system.contains("system topics"), "{system}");
        let none = parse(&sink("t", ", queues = 0")).unwrap_err().0;
        assert!(
            none.contains("rocketmq.queues must be at least 1"),
            "{none}"
        );
        let system = parse(&sink("t", ", topic = \"RMQ_SYS_TRACE_TOPIC\""))
            .unwrap_err()
            .0;
        assert!(system.contains("system topics"), "{system}");
        let renamed = parse(&sink("orders.paid", ", topic = \"orders_paid\"")).unwrap();
        let r = renamed.egress[0].rocketmq.as_ref().unwrap();
        assert_eq!(
            (r.topic_for("orders.paid"), r.producer_group.as_str()),
            ("orders_paid".to_string(), "ferrymq-relay")
        );
        let long = format!(", topic = \"{}\"", "t".repeat(128));
        assert!(parse(&sink("t", &long)).is_err());
        let two = "db = \"q.db\"\n[[egress]]\ngroup = \"g\"\ntopic = \"t\"\namqp = { uri = \"u\" }\nrocketmq = { namesrv = \"n\" }\n";
        assert!(
            parse(two)
                .unwrap_err()
                .0
                .contains("exactly one of kafka, amqp, rocketmq")
        );
    }

    #[test]
    fn unknown_keys_and_bad_limits_are_refused() {
        let typo = "db = \"q.db\"\n[[egress]]\ngroup = \"g\"\ntopic = \"t\"\nbatchh = 5\nkafka = { brokers = \"b\" }\n";
        assert!(parse(typo).unwrap_err().0.contains("batchh"));
        let lease = "db = \"q.db\"\n[[egress]]\ngroup = \"g\"\ntopic = \"t\"\nlease_ms = 10\nkafka = { brokers = \"b\" }\n";
        assert!(parse(lease).unwrap_err().0.contains("lease_ms"));
        let ok =
            "db = \"q.db\"\n[[egress]]\ngroup = \"g\"\ntopic = \"t\"\namqp = { uri = \"u\" }\n";
        let cfg = parse(ok).unwrap();
        assert_eq!(
            (cfg.egress[0].batch, cfg.egress[0].tags.as_str()),
            (256, "*")
        );
    }
}
