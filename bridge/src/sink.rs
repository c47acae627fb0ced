//! The brokers' writers. `send_batch` writes every delivery of a batch and answers, per
//! delivery, only once the broker confirmed it (or failed it): the relay acks on `Ok`.
//! An enum rather than a trait object: three brokers, and the futures stay `Send`.

mod rocketmq;

pub use rocketmq::{RocketMqSink, client_runtime as rocketmq_client_runtime};

use crate::config::{AmqpSinkConfig, KafkaSinkConfig};
use crate::envelope;
use crate::{BridgeError, BridgeResult};
use ferrymq::Delivery;
use std::time::Duration;

pub enum Sink {
    Kafka(KafkaSink),
    Amqp(Box<AmqpSink>),
    RocketMq(Box<RocketMqSink>),
}

impl Sink {
    /// Makes sure the sink can write (connects if needed). `Ok(true)`: it had to connect.
    pub async fn connect(&mut self) -> BridgeResult<bool> {
        match self {
            Sink::Kafka(s) => s.connect().await,
            Sink::Amqp(s) => s.connect().await,
            Sink::RocketMq(s) => s.connect().await,
        }
    }

    /// One answer per delivery, in order: `Ok` once the broker confirmed the write.
    pub async fn send_batch(&mut self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        match self {
            Sink::Kafka(s) => s.send_batch(batch).await,
            Sink::Amqp(s) => s.send_batch(batch).await,
            Sink::RocketMq(s) => s.send_batch(batch).await,
        }
    }

    /// After a failed batch: the next `connect` checks the broker again.
    pub fn mark_broken(&mut self) {
        match self {
            Sink::Kafka(s) => s.healthy = false,
            Sink::Amqp(s) => s.conn = None,
            Sink::RocketMq(s) => s.mark_broken(),
        }
    }

    /// At a graceful stop: closes what a client would otherwise leave to the exit.
    pub async fn shutdown(&mut self) {
        if let Sink::RocketMq(s) = self {
            s.shutdown().await;
        }
    }
}

// ---- Kafka -------------------------------------------------------------------------

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    origin: String,
    debezium: bool,
    healthy: bool,
    confirm_timeout: Duration,
}

impl KafkaSink {
    /// `confirm_timeout` bounds librdkafka's own retries (`message.timeout.ms`), so that a
    /// confirmation or a failure comes back while the lease still holds.
    pub fn new(
        cfg: &KafkaSinkConfig,
        local_topic: &str,
        origin: &str,
        confirm_timeout: Duration,
    ) -> BridgeResult<KafkaSink> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.brokers)
            // The broker's confirmation means every in-sync replica has the record, and
            // librdkafka's retries neither duplicate nor reorder it.
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                confirm_timeout.as_millis().to_string(),
            )
            .set("linger.ms", "2")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "2000")
            .create()
            .map_err(|e| BridgeError(format!("kafka producer: {e}")))?;
        let topic = match (&cfg.topic, cfg.debezium) {
            (Some(t), _) => t.clone(),
            (None, true) => format!("outbox.event.{local_topic}"),
            (None, false) => local_topic.to_string(),
        };
        Ok(KafkaSink {
            producer,
            topic,
            origin: origin.to_string(),
            debezium: cfg.debezium,
            healthy: false,
            confirm_timeout,
        })
    }

    async fn connect(&mut self) -> BridgeResult<bool> {
        if self.healthy {
            return Ok(false);
        }
        // librdkafka reconnects by itself; this asks the broker for the topic's metadata
        // so that a batch is not started while nobody answers.
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let timeout = self.confirm_timeout.min(Duration::from_secs(5));
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|_| ())
        })
        .await
        .map_err(|e| BridgeError(format!("kafka metadata: {e}")))?
        .map_err(|e| BridgeError(format!("kafka metadata: {e}")))?;
        self.healthy = true;
        Ok(true)
    }

    async fn send_batch(&mut self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        let sends = batch.iter().map(|d| {
            let mut headers = envelope::headers_of(d, &self.origin);
            if self.debezium {
                // One `id`, the event's: a consumer reading the first would take another.
                headers.retain(|(k, _)| k != envelope::DEBEZIUM_ID);
                let id = envelope::event_uuid(&self.origin, d.message_id);
                headers.push((envelope::DEBEZIUM_ID.into(), id));
            }
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (k, v) in &headers {
                owned = owned.insert(Header {
                    key: k,
                    value: Some(v.as_str()),
                });
            }
            let mut record = FutureRecord::<str, [u8]>::to(&self.topic)
                .payload(&d.payload[..])
                .headers(owned);
            if let Some(k) = envelope::record_key(d) {
                record = record.key(k);
            }
            self.producer.send(record, self.confirm_timeout)
        });
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|(e, _)| format!("kafka: {e}")))
            .collect()
    }
}

// ---- RabbitMQ (AMQP 0-9-1) -------------------------------------------------------------

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

pub struct AmqpSink {
    cfg: AmqpSinkConfig,
    routing_key: String,
    origin: String,
    conn: Option<(Connection, Channel)>,
    confirm_timeout: Duration,
}

impl AmqpSink {
    pub fn new(
        cfg: &AmqpSinkConfig,
        local_topic: &str,
        origin: &str,
        confirm_timeout: Duration,
    ) -> AmqpSink {
        AmqpSink {
            cfg: cfg.clone(),
            routing_key: cfg
                .routing_key
                .clone()
                .unwrap_or_else(|| local_topic.to_string()),
            origin: origin.to_string(),
            conn: None,
            confirm_timeout,
        }
    }

    async fn connect(&mut self) -> BridgeResult<bool> {
        if let Some((c, ch)) = &self.conn
            && c.status().connected()
            && ch.status().connected()
        {
            return Ok(false);
        }
        self.conn = None;
        let err = |e: lapin::Error| BridgeError(format!("amqp: {e}"));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(&self.cfg.uri, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| BridgeError("amqp: connect timed out".into()))?
        .map_err(err)?;
        let ch = conn.create_channel().await.map_err(err)?;
        // Publisher confirms: the broker acks a persistent message once it is on disk (or
        // handed to a consumer), nacks it when it could not take it.
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(err)?;
        if let Some(q) = &self.cfg.declare_queue {
            let durable = QueueDeclareOptions {
                durable: true,
                ..Default::default()
            };
            ch.queue_declare(q, durable, FieldTable::default())
                .await
                .map_err(err)?;
            if !self.cfg.exchange.is_empty() {
                ch.queue_bind(
                    q,
                    &self.cfg.exchange,
                    &self.routing_key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(err)?;
            }
        }
        self.conn = Some((conn, ch));
        Ok(true)
    }

    async fn send_batch(&mut self, batch: &[Delivery]) -> Vec<Result<(), String>> {
        let Some((_, ch)) = &self.conn else {
            return batch
                .iter()
                .map(|_| Err("amqp: not connected".to_string()))
                .collect();
        };
        // Publish the whole batch, then wait for every confirmation: one round trip per
        // batch, and core never puts two messages of one ordering key in one batch.
        let mut pending = Vec::with_capacity(batch.len());
        for d in batch {
            let mut table = FieldTable::default();
            for (k, v) in envelope::headers_of(d, &self.origin) {
                table.insert(
                    ShortString::from(k),
                    AMQPValue::LongString(LongString::from(v)),
                );
            }
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(d.message_id.to_string()))
                .with_headers(table);
            // mandatory: an unroutable message comes back (basic.return) instead of
            // being dropped, and counts as a failure below.
            let opts = BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            pending.push(
                ch.basic_publish(
                    &self.cfg.exchange,
                    &self.routing_key,
                    opts,
                    &d.payload,
                    props,
                )
                .await,
            );
        }
        let mut out = Vec::with_capacity(batch.len());
        for p in pending {
            let r = match p {
                Err(e) => Err(format!("amqp publish: {e}")),
                Ok(confirm) => match tokio::time::timeout(self.confirm_timeout, confirm).await {
                    Err(_) => Err("amqp: no confirmation in time".to_string()),
                    Ok(Err(e)) => Err(format!("amqp confirm: {e}")),
                    Ok(Ok(Confirmation::Ack(None))) => Ok(()),
                    Ok(Ok(Confirmation::Ack(Some(_)))) => {
                        Err("amqp: unroutable (returned)".to_string())
                    }
                    Ok(Ok(Confirmation::Nack(_))) => Err("amqp: nacked by the broker".to_string()),
                    Ok(Ok(Confirmation::NotRequested)) => {
                        Err("amqp: confirms not enabled".to_string())
                    }
                },
            };
            out.push(r);
        }
        out
    }
}
