//! ferrymq-bridge: ferrymq as the reliable edge of a host on a message bus.
//!
//! - **Egress** (`relay`): a consumer group of one local topic (with its tag filter) is
//!   forwarded to a broker; each message is acked locally only after the broker confirmed
//!   the write (Kafka `acks=all` with the idempotent producer; RabbitMQ publisher confirms,
//!   persistent, mandatory). A failed write is nacked onto the group's retry ladder; while
//!   the broker is down the relay reconnects with backoff and the messages wait in the file.
//!   Core hands out one message per ordering key at a time and the next only after the ack,
//!   so per key the broker sees publish order (a duplicate after a crash repeats the same
//!   message before the next one, with the same `ferrymq-id`).
//! - **Ingress** (`ingress`): a Kafka topic (consumer group, offsets committed only after
//!   the local commit) or a RabbitMQ queue (acked only after the local commit) is published
//!   into a local topic with core's idempotency key = the source message id, so a
//!   redelivery is published locally once (within the file's `idempotency_window`).
//! - `envelope` names the broker headers, `sink` holds the brokers' writers, `source` their
//!   readers, `config` the `relay.toml` format, `run` the long-running command.
//!
//! Everything goes through ferrymq's public API; no queue semantics live here.

// rocketmq-client-rust's types are deep: proving a relay task `Send` needs more than 128.
#![recursion_limit = "512"]

pub mod config;
pub mod counters;
pub mod envelope;
pub mod ingress;
pub mod metrics;
pub mod relay;
pub mod run;
pub mod sink;
pub mod source;

pub use config::{BridgeConfig, EgressConfig, IngressConfig};
pub use counters::Counters;
pub use run::{main_with_args, run, run_config};

/// What a bridge call can fail with: the broker's or the file's problem, named.
#[derive(Debug)]
pub struct BridgeError(pub String);

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BridgeError {}

impl From<ferrymq::Error> for BridgeError {
    fn from(e: ferrymq::Error) -> Self {
        BridgeError(format!("ferrymq: {e}"))
    }
}

pub type BridgeResult<T> = std::result::Result<T, BridgeError>;
