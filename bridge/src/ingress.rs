//! Ingress: a broker topic or queue published into a local topic, each source message
//! once. Per round: read a batch, publish it locally in one transaction with each
//! message's idempotency key = its source id, and only then commit the offsets / ack at
//! the broker. A crash after the local commit makes the broker deliver the batch again;
//! the idempotency keys make those publishes return the first ids and enqueue nothing.
//! A broker failure drops the source and opens it again with backoff.

use crate::config::IngressConfig;
use crate::counters::Counters;
use crate::envelope;
use crate::relay::Backoff;
use crate::source::Source;
use crate::{BridgeError, BridgeResult};
use ferrymq::Queue;
use std::sync::Arc;
use tokio::sync::watch;

pub async fn run(
    q: Queue,
    cfg: IngressConfig,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> BridgeResult<()> {
    let mut source: Option<Source> = None;
    let mut backoff = Backoff::new();
    let mut ever_opened = false;
    while !*stop.borrow() {
        let src = match source.as_mut() {
            Some(s) => s,
            None => match open(&cfg).await {
                Ok(s) => {
                    if ever_opened {
                        counters.add_reconnect();
                    }
                    ever_opened = true;
                    source.insert(s)
                }
                Err(e) => {
                    let who = format!("ingress {}", cfg.label());
                    backoff.unavailable(&who, &e, &mut stop).await;
                    continue;
                }
            },
        };
        match round(&q, &cfg, src, &counters).await {
            Ok(()) => backoff.reset(),
            Err(Round::Broker(e)) => {
                eprintln!("ingress {}: {e}; reopening", cfg.label());
                counters.add_failed(1);
                source = None;
                backoff.wait(&mut stop).await;
            }
            Err(Round::File(e)) => return Err(e),
        }
    }
    Ok(())
}

enum Round {
    Broker(BridgeError),
    File(BridgeError),
}

async fn open(cfg: &IngressConfig) -> BridgeResult<Source> {
    match (&cfg.kafka, &cfg.amqp) {
        (Some(k), _) => Source::open_kafka(k).await,
        (None, Some(a)) => Source::open_amqp(a, cfg.batch).await,
        (None, None) => Err(BridgeError("no broker".into())),
    }
}

async fn round(
    q: &Queue,
    cfg: &IngressConfig,
    src: &mut Source,
    counters: &Counters,
) -> Result<(), Round> {
    let (batch, receipt) = src.next_batch(cfg.batch).await.map_err(Round::Broker)?;
    if batch.is_empty() {
        return Ok(());
    }
    let n = batch.len() as u64;
    let messages: Vec<ferrymq::Message> = batch
        .into_iter()
        .map(
            |m| match envelope::source_id(&m.headers, m.fallback_id.clone()) {
                Some(id) => {
                    envelope::local_message(&cfg.topic, m.payload, &m.headers, &id, m.broker_key)
                }
                // No id to dedupe by: published at least once.
                None => ferrymq::Message::new(&cfg.topic, m.payload),
            },
        )
        .collect();
    let q2 = q.clone();
    tokio::task::spawn_blocking(move || q2.publish_batch(&messages))
        .await
        .map_err(|e| Round::File(BridgeError(format!("publish task: {e}"))))?
        .map_err(|e| match e.kind() {
            // Another writer held the file past busy_timeout: read the batch again later.
            ferrymq::ErrorKind::Busy => Round::Broker(e.into()),
            _ => Round::File(e.into()),
        })?;
    // Only now the broker may forget the batch.
    src.confirm(receipt).await.map_err(Round::Broker)?;
    counters.add_sent(n);
    Ok(())
}
