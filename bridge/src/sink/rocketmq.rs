//! RocketMQ over its remoting protocol: the name server says which broker holds a topic's
//! queues, the producer writes to that broker. A write counts as confirmed only when the
//! broker answers `SEND_OK` (a flush or replica timeout is a failure: the message may or
//! may not be there, so it is written again, with the same `ferrymq-id`).
//!
//! Per ordering key one queue: the queue is chosen by the key's Java `hashCode`, as
//! RocketMQ's own `SelectMessageQueueByHash` does, so a Java producer keying by the same
//! string lands on the same queue. The ordering key also goes out as the sharding key, the
//! message group a RocketMQ 5 FIFO consumer orders by.
//!
//! Some messages RocketMQ cannot take as they are, and they fail on every try (down the
//! retry ladder to the dead-letter queue) rather than being sent altered: an empty
//! payload, one over the producer's 4 MiB, a header whose name RocketMQ reserves or that
//! holds its property separators.

use crate::config::RocketMqSinkConfig;
use crate::envelope;
use crate::{BridgeError, BridgeResult};
use ferrymq::Delivery;
use rocketmq_client_rust::{
    ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, MessageQueueSelector,
    SelectMessageQueueByHash, SendStatus,
};
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::topic::TopicValidator;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use std::sync::Arc;
use std::time::Duration;

/// The topic every broker that may create topics serves (`TBW102`): its route answers
/// while such a broker is registered, before the relay's own topic exists.
const AUTO_CREATE_TOPIC: &str = TopicValidator::AUTO_CREATE_TOPIC_KEY_TOPIC;

pub struct RocketMqSink {
    cfg: RocketMqSinkConfig,
    topic: String,
    origin: String,
    client: Option<Client>,
    healthy: bool,
    confirm_timeout: Duration,
}

struct Client {
    producer: DefaultMQProducer,
    runtime: Arc<ClientRuntime>,
    /// Owns the client's background tasks (route refresh, heartbeats): dropped last, as
    /// fields drop in order.
    _owner: RuntimeOwner,
}

/// What every RocketMQ client of this crate runs on (the relay's producer; the tests' and
/// the benchmark's readers): the task owner, to keep for the client's lifetime, and the
/// runtime. No telemetry: the relay reports through its own counters and log lines.
pub fn client_runtime() -> BridgeResult<(RuntimeOwner, Arc<ClientRuntime>)> {
    let owner = RuntimeOwner::plan(RuntimeConfig {
        thread_name: "ferrymq-rocketmq".into(),
        ..Default::default()
    })
    .map_err(|e| err("runtime", e))?
    .build()
    .map_err(|e| err("runtime", e))?;
    let runtime = ClientRuntime::try_new(
        owner.root_context().component("client"),
        ClientRuntimeConfig::default(),
        rocketmq_observability::TelemetryHandle::noop(),
    )
    .map_err(|e| err("client", e))?;
    Ok((owner, runtime))
}

fn err(what: &str, e: impl std::fmt::Display) -> BridgeError {
    BridgeError(format!("rocketmq {what}: {e}"))
}

impl RocketMqSink {
    pub fn new(
        cfg: &RocketMqSinkConfig,
        local_topic: &str,
        origin: &str,
        confirm_timeout: Duration,
    ) -> RocketMqSink {
        RocketMqSink {
            cfg: cfg.clone(),
            topic: cfg.topic_for(local_topic),
            origin: origin.to_string(),
            client: None,
            healthy: false,
            confirm_timeout,
        }
    }

    async fn start(&self) -> BridgeResult<Client> {
        let (owner, runtime) = client_runtime()?;
        let mut producer = DefaultMQProducer::builder(Arc::clone(&runtime))
            .producer_group(self.cfg.producer_group.clone())
            .name_server_addr(self.cfg.namesrv.clone())
            .send_msg_timeout(self.confirm_timeout.as_millis() as u32)
            // The relay's retry ladder retries, once per delivery and in key order; the
            // client's own retries would add writes the ladder does not know about.
            .retry_times_when_send_failed(0)
            .build();
        producer.start().await.map_err(|e| err("producer", e))?;
        Ok(Client {
            producer,
            runtime,
            _owner: owner,
        })
    }

    pub(super) async fn connect(&mut self) -> BridgeResult<bool> {
        if self.healthy {
            return Ok(false);
        }
        if self.client.is_none() {
            self.client = Some(self.start().await?);
        }
        let client = self.client.as_mut().expect("started above");
        // Ask the name server for the topic's queues (or, for a topic not yet created,
        // for a broker that creates topics), so that a batch is not started while no
        // broker is registered.
        let timeout = self.confirm_timeout.min(Duration::from_secs(5));
        let producer = &mut client.producer;
        let found = async {
            match producer.fetch_publish_message_queues(&self.topic).await {
                Ok(qs) if !qs.is_empty() => Ok(()),
                _ => producer
                    .fetch_publish_message_queues(AUTO_CREATE_TOPIC)
                    .await
                    .map_err(|e| err(&format!("route of {}", self.topic), e))
                    .and_then(|qs| match qs.is_empty() {
                        true => Err(err("route", "no broker serves the topic")),
                        false => Ok(()),
                    }),
            }
        };
        tokio::time::timeout(timeout, found)
            .await
            .map_err(|_| err("name server", "no answer in time"))??;
        self.healthy = true;
        Ok(true)
    }

    pub(super) fn mark_broken(&mut self) {
        self.healthy = false;
    }

    pub(super) async fn send_batch(&mut self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        let Some(client) = &self.client else {
            return batch
                .iter()
                .map(|_| Err("rocketmq: not connected".to_string()))
                .collect();
        };
        let timeout = self.confirm_timeout.as_millis() as u64;
        let queues = self.cfg.queues;
        let this = &*self;
        let sends = batch.iter().map(|d| async move {
            let msg = this.message_of(d)?;
            let sent = match envelope::record_key(d) {
                Some(key) => {
                    // None (no queue) fails the send: see `RocketMqSinkConfig::queues`.
                    let pick = move |qs: &[MessageQueue], m: &Message, k: &String| match queues {
                        Some(n) if qs.len() != n => None,
                        _ => SelectMessageQueueByHash.select(qs, m, k),
                    };
                    client
                        .producer
                        .send_with_selector_timeout(msg, pick, key.to_string(), timeout)
                        .await
                }
                None => client.producer.send_with_timeout(msg, timeout).await,
            };
            match sent {
                Ok(Some(r)) if r.send_status == SendStatus::SendOk => Ok(()),
                Ok(Some(r)) => Err(format!("rocketmq: {:?}", r.send_status)),
                Ok(None) => Err("rocketmq: no send result".to_string()),
                Err(e) => Err(format!("rocketmq send: {e}")),
            }
        });
        futures_util::future::join_all(sends).await
    }

    /// The broker message of one delivery: ferrymq's names and the message's headers as
    /// user properties, its tag as the RocketMQ tag, its key as the indexed key.
    fn message_of(&self, d: &Delivery) -> Result<Message, String> {
        let mut b = Message::builder()
            .topic(self.topic.as_str())
            .body_slice(&d.payload);
        if let Some(t) = &d.tag {
            b = b.tags(t.as_str());
        }
        if let Some(k) = &d.key {
            b = b.key(k.as_str());
        }
        // Only an ordering key: a RocketMQ 5 consumer orders by the message group.
        if let Some(k) = &d.ordering_key {
            b = b.sharding_key(k.as_str());
        }
        for (k, v) in envelope::headers_of(d, &self.origin) {
            carriable(&k, &v)?;
            b = b
                .raw_property(k.as_str(), v)
                .map_err(|_| format!("rocketmq: header {k:?} is a name RocketMQ reserves"))?;
        }
        b.build().map_err(|e| format!("rocketmq message: {e}"))
    }

    /// Closes the client's connections (a graceful stop; a crash needs none).
    pub(super) async fn shutdown(&mut self) {
        if let Some(mut c) = self.client.take() {
            c.producer.shutdown().await;
            c.runtime.shutdown().await;
        }
    }
}

/// RocketMQ joins properties into one string with \u{1} between name and value and \u{2}
/// between pairs: either in a header would split it.
fn carriable(name: &str, value: &str) -> Result<(), String> {
    let bad = |s: &str| s.contains(['\u{1}', '\u{2}']);
    if bad(name) || bad(value) {
        return Err(format!(
            "rocketmq: header {name:?} holds a \\u0001 or \\u0002, which RocketMQ's properties cannot carry"
        ));
    }
    Ok(())
}
