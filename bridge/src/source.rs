//! The brokers' readers for ingress. `next_batch` hands out what the broker delivered (not
//! yet committed or acked there); `confirm` commits the Kafka offsets or acks the AMQP
//! deliveries of that batch, and is only called after the local commit. A source that
//! failed is dropped and built again: the broker then redelivers from what was confirmed.

use crate::config::{AmqpSourceConfig, KafkaSourceConfig};
use crate::{BridgeError, BridgeResult};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One message read from the bus.
pub struct Incoming {
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    /// The broker's own identity of the message, used when no `ferrymq-id` header came.
    pub fallback_id: Option<String>,
    pub broker_key: Option<String>,
}

/// What `confirm` needs to settle a batch at the broker.
pub enum Receipt {
    Kafka(rdkafka::TopicPartitionList),
    Amqp(Option<u64>),
}

pub enum Source {
    Kafka(KafkaSource),
    Amqp(Box<AmqpSource>),
}

const FIRST_WAIT: Duration = Duration::from_millis(200);
const MORE_WAIT: Duration = Duration::from_millis(5);

/// How long a batch waits for its next message: `FIRST_WAIT` while it is empty, then
/// only `MORE_WAIT`, so a quiet broker ends a started batch soon.
fn wait<T>(batch: &[T]) -> Duration {
    if batch.is_empty() {
        FIRST_WAIT
    } else {
        MORE_WAIT
    }
}

impl Source {
    pub async fn open_kafka(cfg: &KafkaSourceConfig) -> BridgeResult<Source> {
        Ok(Source::Kafka(KafkaSource::open(cfg)?))
    }
    pub async fn open_amqp(cfg: &AmqpSourceConfig, prefetch: usize) -> BridgeResult<Source> {
        Ok(Source::Amqp(Box::new(
            AmqpSource::open(cfg, prefetch).await?,
        )))
    }

    pub async fn next_batch(&mut self, max: usize) -> BridgeResult<(Vec<Incoming>, Receipt)> {
        match self {
            Source::Kafka(s) => s.next_batch(max).await,
            Source::Amqp(s) => s.next_batch(max).await,
        }
    }

    pub async fn confirm(&mut self, receipt: Receipt) -> BridgeResult<()> {
        match (self, receipt) {
            (Source::Kafka(s), Receipt::Kafka(tpl)) => s.confirm(tpl),
            (Source::Amqp(s), Receipt::Amqp(tag)) => s.confirm(tag).await,
            _ => Err(BridgeError("receipt of another broker".into())),
        }
    }
}

// ---- Kafka -------------------------------------------------------------------------

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub struct KafkaSource {
    consumer: StreamConsumer,
}

impl KafkaSource {
    fn open(cfg: &KafkaSourceConfig) -> BridgeResult<KafkaSource> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.brokers)
            .set("group.id", &cfg.group)
            .set(
                "group.instance.id",
                cfg.instance_id.as_deref().unwrap_or(&cfg.group),
            )
            .set("session.timeout.ms", "10000")
            // Offsets move only through `confirm`, after the local commit.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(|e| BridgeError(format!("kafka consumer: {e}")))?;
        consumer
            .subscribe(&[&cfg.topic])
            .map_err(|e| BridgeError(format!("kafka subscribe {}: {e}", cfg.topic)))?;
        Ok(KafkaSource { consumer })
    }

    async fn next_batch(&mut self, max: usize) -> BridgeResult<(Vec<Incoming>, Receipt)> {
        let mut out = Vec::new();
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        while out.len() < max {
            let m = match tokio::time::timeout(wait(&out), self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(BridgeError(format!("kafka receive: {e}"))),
                Ok(Ok(m)) => m,
            };
            let mut headers = BTreeMap::new();
            if let Some(h) = m.headers() {
                for i in 0..h.count() {
                    let Some(hd) = h.try_get(i) else { continue };
                    if let Some(v) = hd.value {
                        headers.insert(hd.key.to_string(), String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            out.push(Incoming {
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
                fallback_id: Some(format!(
                    "kafka:{}/{}/{}",
                    m.topic(),
                    m.partition(),
                    m.offset()
                )),
                broker_key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            });
            next.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in next {
            tpl.add_partition_offset(&t, p, Offset::Offset(o))
                .map_err(|e| BridgeError(format!("kafka offsets: {e}")))?;
        }
        Ok((out, Receipt::Kafka(tpl)))
    }

    fn confirm(&mut self, tpl: TopicPartitionList) -> BridgeResult<()> {
        if tpl.count() == 0 {
            return Ok(());
        }
        // A synchronous commit: the batch counts as taken only once the broker has it.
        tokio::task::block_in_place(|| self.consumer.commit(&tpl, CommitMode::Sync))
            .map_err(|e| BridgeError(format!("kafka commit: {e}")))
    }
}

// ---- RabbitMQ -----------------------------------------------------------------------

use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};

pub struct AmqpSource {
    _conn: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
}

impl AmqpSource {
    async fn open(cfg: &AmqpSourceConfig, prefetch: usize) -> BridgeResult<AmqpSource> {
        let err = |e: lapin::Error| BridgeError(format!("amqp: {e}"));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect(&cfg.uri, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| BridgeError("amqp: connect timed out".into()))?
        .map_err(err)?;
        let channel = conn.create_channel().await.map_err(err)?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(&cfg.queue, durable, FieldTable::default())
            .await
            .map_err(err)?;
        channel
            .basic_qos(
                prefetch.min(u16::MAX as usize) as u16,
                BasicQosOptions::default(),
            )
            .await
            .map_err(err)?;
        // Manual acks: a delivery stays the broker's until `confirm`.
        let consumer = channel
            .basic_consume(
                &cfg.queue,
                "ferrymq-ingress",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(err)?;
        Ok(AmqpSource {
            _conn: conn,
            channel,
            consumer,
        })
    }

    async fn next_batch(&mut self, max: usize) -> BridgeResult<(Vec<Incoming>, Receipt)> {
        let mut out = Vec::new();
        let mut last = None;
        while out.len() < max {
            let d = match tokio::time::timeout(wait(&out), self.consumer.next()).await {
                Err(_) => break,
                Ok(None) => return Err(BridgeError("amqp: consumer cancelled".into())),
                Ok(Some(Err(e))) => return Err(BridgeError(format!("amqp receive: {e}"))),
                Ok(Some(Ok(d))) => d,
            };
            let mut headers = BTreeMap::new();
            if let Some(t) = d.properties.headers() {
                for (k, v) in t.inner() {
                    if let Some(s) = header_text(v) {
                        headers.insert(k.to_string(), s);
                    }
                }
            }
            out.push(Incoming {
                fallback_id: d
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| format!("amqp:{id}")),
                broker_key: None,
                headers,
                payload: d.data,
            });
            last = Some(d.delivery_tag);
        }
        Ok((out, Receipt::Amqp(last)))
    }

    async fn confirm(&mut self, last: Option<u64>) -> BridgeResult<()> {
        let Some(tag) = last else { return Ok(()) };
        // Delivery tags grow on a channel: `multiple` acks the whole batch at once.
        self.channel
            .basic_ack(tag, BasicAckOptions { multiple: true })
            .await
            .map_err(|e| BridgeError(format!("amqp ack: {e}")))
    }
}

fn header_text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        AMQPValue::LongLongInt(n) => Some(n.to_string()),
        AMQPValue::LongInt(n) => Some(n.to_string()),
        _ => None,
    }
}
