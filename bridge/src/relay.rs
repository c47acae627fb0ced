//! Egress: one consumer group of one local topic, forwarded to a broker.
//!
//! Per round: receive up to `batch` deliveries, write them all to the sink, wait for each
//! confirmation, ack the confirmed ones, nack the others onto the group's retry ladder.
//! An ack only ever follows the broker's confirmation, so a crash anywhere loses nothing:
//! an unconfirmed or unacked delivery comes back when its lease ends and is written again
//! (same `ferrymq-id`). After a failed batch the relay stops receiving and reconnects with
//! backoff; the messages wait in the file meanwhile. A stop request ends the loop between
//! batches (the one in flight is confirmed and settled first).

use crate::BridgeResult;
use crate::config::EgressConfig;
use crate::counters::Counters;
use crate::sink::{AmqpSink, KafkaSink, RocketMqSink, Sink};
use ferrymq::{Delivery, Queue, ReceiveOptions, RetryPolicy, SubscribeOptions};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const LAG_EVERY: Duration = Duration::from_secs(1);

/// Subscribes the group (its tag filter, lease and retry ladder) and builds the sink.
pub fn prepare(q: &Queue, cfg: &EgressConfig, origin: &str) -> BridgeResult<Sink> {
    let retry = RetryPolicy::exponential(
        Duration::from_millis(cfg.retry_initial_ms),
        Duration::from_millis(cfg.retry_max_ms.max(cfg.retry_initial_ms)),
        1_000,
        0.1,
    )?;
    let lease = Duration::from_millis(cfg.lease_ms);
    q.subscribe(
        &cfg.group,
        &cfg.topic,
        SubscribeOptions::new()
            .tags(cfg.tags.clone())
            .lease(lease)
            .retry(retry),
    )?;
    let confirm = lease / 2;
    Ok(match (&cfg.kafka, &cfg.amqp, &cfg.rocketmq) {
        (Some(k), _, _) => Sink::Kafka(KafkaSink::new(k, &cfg.topic, origin, confirm)?),
        (None, Some(a), _) => Sink::Amqp(Box::new(AmqpSink::new(a, &cfg.topic, origin, confirm))),
        (None, None, Some(r)) => {
            Sink::RocketMq(Box::new(RocketMqSink::new(r, &cfg.topic, origin, confirm)))
        }
        (None, None, None) => unreachable!("BridgeConfig::check requires a broker"),
    })
}

/// Runs until `stop` turns true. Errors of the file end it (the command exits non-zero);
/// the broker's are retried forever. Boxed: that the future is `Send` is proven here,
/// once, where RocketMQ's client types are known to be deep (see the crate's
/// `recursion_limit`), so a caller spawning it needs no attribute of its own.
pub fn run(
    q: Queue,
    cfg: EgressConfig,
    sink: Sink,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> Pin<Box<dyn Future<Output = BridgeResult<()>> + Send>> {
    Box::pin(forward(q, cfg, sink, counters, stop))
}

async fn forward(
    q: Queue,
    cfg: EgressConfig,
    mut sink: Sink,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> BridgeResult<()> {
    let mut backoff = Backoff::new();
    let mut ever_connected = false;
    let mut lag_at = Instant::now() - LAG_EVERY;
    let receive = ReceiveOptions::new()
        .max(cfg.batch)
        .wait(Duration::from_millis(200));
    while !*stop.borrow() {
        if lag_at.elapsed() >= LAG_EVERY {
            update_lag(&q, &cfg.group, &counters)?;
            lag_at = Instant::now();
        }
        match sink.connect().await {
            Ok(connected) => {
                if connected && ever_connected {
                    counters.add_reconnect();
                }
                ever_connected |= connected;
            }
            Err(e) => {
                let who = format!("relay {}", cfg.label());
                backoff.unavailable(&who, &e, &mut stop).await;
                continue;
            }
        }
        let batch = q.receive_async(&cfg.group, receive.clone()).await?;
        if batch.is_empty() {
            continue;
        }
        let results = sink.send_batch(&batch).await;
        let failed = settle(&q, batch, results, &counters).await?;
        if failed {
            sink.mark_broken();
        } else {
            backoff.reset();
        }
    }
    sink.shutdown().await;
    Ok(())
}

/// Acks the confirmed deliveries and nacks the rest (all at once: group commit joins
/// them). A lost lease on ack means the delivery went to another relay meanwhile: it will
/// be written again there, so it is neither an error nor a loss. Returns whether any write
/// failed.
async fn settle(
    q: &Queue,
    batch: Vec<Delivery>,
    results: Vec<Result<(), String>>,
    counters: &Counters,
) -> BridgeResult<bool> {
    let mut acks = Vec::new();
    let mut nacks = Vec::new();
    for (d, r) in batch.into_iter().zip(results) {
        match r {
            Ok(()) => acks.push(q.ack_async(d)),
            Err(reason) => nacks.push(async move { q.nack_async(d, reason, None).await }),
        }
    }
    let (n_ok, n_failed) = (acks.len() as u64, nacks.len() as u64);
    let (acked, nacked) = tokio::join!(
        futures_util::future::join_all(acks),
        futures_util::future::join_all(nacks)
    );
    for r in acked.into_iter().chain(nacked) {
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == ferrymq::ErrorKind::LeaseLost => {}
            Err(e) => return Err(e.into()),
        }
    }
    counters.add_sent(n_ok);
    counters.add_failed(n_failed);
    Ok(n_failed > 0)
}

fn update_lag(q: &Queue, group: &str, counters: &Counters) -> BridgeResult<()> {
    let stats = q.stats()?;
    if let Some(g) = stats.groups.get(group) {
        let waiting = g.ready + g.scheduled + g.inflight + g.retrying;
        let age = g.oldest_ready_age.unwrap_or_default();
        counters.set_lag(waiting, age.as_millis() as u64);
    }
    Ok(())
}

/// The wait before the next try at a broker: from 100 ms, doubling after each failure up
/// to 5 s, and back to 100 ms after a success. A stop request cuts a wait short.
pub(crate) struct Backoff(Duration);

impl Backoff {
    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Backoff(Self::MIN)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Self::MIN;
    }

    /// Waits (until a stop request at the most), and longer next time.
    pub(crate) async fn wait(&mut self, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.0) => {}
            _ = stop.changed() => {}
        }
        self.0 = (self.0 * 2).min(Self::MAX);
    }

    /// Says that `who` could not reach its broker, then waits.
    pub(crate) async fn unavailable(
        &mut self,
        who: &str,
        e: &(dyn std::fmt::Display + Sync),
        stop: &mut watch::Receiver<bool>,
    ) {
        eprintln!("{who}: broker unavailable ({e}); retrying in {:?}", self.0);
        self.wait(stop).await;
    }
}
