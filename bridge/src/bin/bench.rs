//! `ferrymq-bridge-bench`: the relay's figures for docs/benchmarks.md, against a running
//! broker (scripts/brokers/*.sh). Release build:
//!
//! ```sh
//! cargo run --release -p ferrymq-bridge --bin ferrymq-bridge-bench -- kafka 127.0.0.1:19092
//! cargo run --release -p ferrymq-bridge --bin ferrymq-bridge-bench -- amqp 'amqp://guest:guest@127.0.0.1:5682/%2f'
//! cargo run --release -p ferrymq-bridge --bin ferrymq-bridge-bench -- rocketmq 127.0.0.1:19876
//! ```
//!
//! 1. Throughput: a backlog of FERRYMQ_BENCH_BACKLOG messages (100,000) over 1,000
//!    ordering keys, drained by one relay (batch 500): messages per second, broker
//!    confirmation and local ack included.
//! 2. Lag: a publisher at FERRYMQ_BENCH_RATE msg/s (5,000) for FERRYMQ_BENCH_SECS (20) s,
//!    (one `publish_batch` per millisecond), the relay forwarding, a consumer reading the
//!    broker: publish-to-broker-read latency p50/p99 (the payload carries the publish
//!    time), after one warm-up message (topic creation, the reader's assignment).

// Spawning the RocketMQ reader proves its deep client types `Send` (as in the library).
#![recursion_limit = "512"]
use ferrymq::{Message, Options, PublishOptions, Queue, SubscribeOptions};
use ferrymq_bridge::config::EgressConfig;
use ferrymq_bridge::{Counters, relay};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn egress(kind: &str, addr: &str, topic: &str) -> EgressConfig {
    let toml = match kind {
        "kafka" => format!(
            "group = \"bench\"\ntopic = \"{topic}\"\nbatch = 500\nkafka = {{ brokers = \"{addr}\" }}\n"
        ),
        "rocketmq" => format!(
            "group = \"bench\"\ntopic = \"{topic}\"\nbatch = 500\nrocketmq = {{ namesrv = \"{addr}\" }}\n"
        ),
        _ => format!(
            "group = \"bench\"\ntopic = \"{topic}\"\nbatch = 500\namqp = {{ uri = \"{addr}\", declare_queue = \"{topic}\" }}\n"
        ),
    };
    toml::from_str(&toml).expect("bench config")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, addr] = args.as_slice() else {
        eprintln!("usage: ferrymq-bridge-bench kafka BROKERS | amqp URI | rocketmq NAMESRV");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stamp = now_us();
    let dir = std::env::temp_dir().join(format!("ferrymq-bridge-bench-{stamp}"));
    std::fs::create_dir_all(&dir).unwrap();
    rt.block_on(throughput(
        kind,
        addr,
        &dir.join("t.db"),
        &format!("bench-t-{stamp}"),
    ));
    rt.block_on(lag(
        kind,
        addr,
        &dir.join("l.db"),
        &format!("bench-l-{stamp}"),
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

type Relay = tokio::task::JoinHandle<ferrymq_bridge::BridgeResult<()>>;

async fn start_relay(q: &Queue, cfg: &EgressConfig) -> (watch::Sender<bool>, Relay, Arc<Counters>) {
    let sink = relay::prepare(q, cfg, "bench:/bench.db").unwrap();
    let counters = Arc::new(Counters::default());
    let (tx, rx) = watch::channel(false);
    let h = tokio::spawn(relay::run(
        q.clone(),
        cfg.clone(),
        sink,
        counters.clone(),
        rx,
    ));
    (tx, h, counters)
}

async fn throughput(kind: &str, addr: &str, db: &std::path::Path, topic: &str) {
    let n = env_u64("FERRYMQ_BENCH_BACKLOG", 100_000) as usize;
    let q = Queue::open(db, Options::default()).unwrap();
    let cfg = egress(kind, addr, topic);
    q.subscribe("bench", topic, SubscribeOptions::new())
        .unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let batch: Vec<Message> = chunk
            .iter()
            .map(|i| {
                let k = format!("k{}", i % 1000);
                Message::new(topic, vec![b'x'; 200])
                    .key(k.clone())
                    .ordering_key(k)
            })
            .collect();
        q.publish_batch(&batch).unwrap();
    }
    let t = Instant::now();
    let (stop, handle, counters) = start_relay(&q, &cfg).await;
    while counters.sent.load(std::sync::atomic::Ordering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    stop.send(true).unwrap();
    handle.await.unwrap().unwrap();
    println!(
        "{{\"broker\":\"{kind}\",\"bench\":\"throughput\",\"messages\":{n},\"secs\":{secs:.2},\"msg_per_s\":{:.0}}}",
        n as f64 / secs
    );
}

async fn lag(kind: &str, addr: &str, db: &std::path::Path, topic: &str) {
    let rate = env_u64("FERRYMQ_BENCH_RATE", 5_000);
    let secs = env_u64("FERRYMQ_BENCH_SECS", 20);
    let total = rate * secs;
    let q = Queue::open(db, Options::default()).unwrap();
    let cfg = egress(kind, addr, topic);
    q.subscribe("bench", topic, SubscribeOptions::new())
        .unwrap();
    let (stop, handle, counters) = start_relay(&q, &cfg).await;
    // Warm-up: one message through relay, broker and reader first, so the topic's creation
    // and the reader's assignment are not in the figures (the reader drops it).
    let (warm_tx, warm_rx) = tokio::sync::oneshot::channel();
    if kind == "rocketmq" {
        // A RocketMQ reader finds a topic's queues only once it exists: the warm-up
        // message creates it before the reader starts (and reads it from the first offset).
        q.publish(topic, now_us().to_string(), PublishOptions::new())
            .unwrap();
        while counters.sent.load(std::sync::atomic::Ordering::Relaxed) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let reader = match kind {
        "rocketmq" => tokio::spawn(read_rocketmq(
            addr.to_string(),
            topic.to_string(),
            total,
            warm_tx,
        )),
        "kafka" => tokio::spawn(read_kafka(
            addr.to_string(),
            topic.to_string(),
            total,
            warm_tx,
        )),
        _ => tokio::spawn(read_amqp(
            addr.to_string(),
            topic.to_string(),
            total,
            warm_tx,
        )),
    };
    if kind != "rocketmq" {
        q.publish(topic, now_us().to_string(), PublishOptions::new())
            .unwrap();
    }
    warm_rx.await.unwrap();
    // The publisher: every millisecond, what the rate owes by then, as one batch.
    let q2 = q.clone();
    let topic2 = topic.to_string();
    let publisher = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < total {
            let owed = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            let batch: Vec<Message> = (sent..owed)
                .map(|i| {
                    let k = format!("k{}", i % 1000);
                    Message::new(&topic2, now_us().to_string())
                        .key(k.clone())
                        .ordering_key(k)
                })
                .collect();
            if !batch.is_empty() {
                q2.publish_batch(&batch).unwrap();
            }
            sent = owed;
            std::thread::sleep(Duration::from_millis(1));
        }
        start.elapsed()
    });
    let published_in = publisher.await.unwrap();
    let mut lat = reader.await.unwrap();
    stop.send(true).unwrap();
    handle.await.unwrap().unwrap();
    lat.sort_unstable();
    let p = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "{{\"broker\":\"{kind}\",\"bench\":\"lag\",\"rate\":{rate},\"messages\":{},\"published_in_s\":{:.2},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1}}}",
        lat.len(),
        published_in.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

/// Microseconds from publish to read, one per distinct message (first copy).
async fn read_rocketmq(
    namesrv: String,
    topic: String,
    total: u64,
    warm: tokio::sync::oneshot::Sender<()>,
) -> Vec<u64> {
    use rocketmq_client_rust::DefaultLitePullConsumer;
    use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
    let (_owner, client) = ferrymq_bridge::sink::rocketmq_client_runtime().unwrap();
    let c = DefaultLitePullConsumer::builder(client)
        .consumer_group(format!("bench-{}", now_us()))
        .name_server_addr(namesrv)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build()
        .unwrap();
    c.subscribe(&topic).await.unwrap();
    c.start().await.unwrap();
    let mut warm = Some(warm);
    let mut out = Vec::with_capacity(total as usize);
    while (out.len() as u64) < total {
        for m in c.poll_with_timeout(1_000).await {
            if let Some(w) = warm.take() {
                let _ = w.send(());
                continue;
            }
            let sent: u64 = std::str::from_utf8(m.body_slice())
                .unwrap()
                .parse()
                .unwrap();
            out.push(now_us().saturating_sub(sent));
        }
    }
    // Not shut down: the lite pull consumer's shutdown takes 20 s, and its tasks end
    // with the runtime.
    out
}

/// The same, read from Kafka.
async fn read_kafka(
    brokers: String,
    topic: String,
    total: u64,
    warm: tokio::sync::oneshot::Sender<()>,
) -> Vec<u64> {
    use rdkafka::ClientConfig;
    use rdkafka::Message as _;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("bench-{}", now_us()))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "5")
        .create()
        .unwrap();
    c.subscribe(&[&topic]).unwrap();
    let mut warm = Some(warm);
    let mut out = Vec::with_capacity(total as usize);
    while (out.len() as u64) < total {
        // The topic appears with the relay's first write: errors before that are expected.
        let Ok(m) = c.recv().await else { continue };
        if let Some(w) = warm.take() {
            let _ = w.send(());
            continue;
        }
        let sent: u64 = std::str::from_utf8(m.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        out.push(now_us().saturating_sub(sent));
    }
    out
}

async fn read_amqp(
    uri: String,
    queue: String,
    total: u64,
    warm: tokio::sync::oneshot::Sender<()>,
) -> Vec<u64> {
    use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{Connection, ConnectionProperties};
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(&queue, durable, FieldTable::default())
        .await
        .unwrap();
    let opts = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut consumer = ch
        .basic_consume(&queue, "bench", opts, FieldTable::default())
        .await
        .unwrap();
    let mut warm = Some(warm);
    let mut out = Vec::with_capacity(total as usize);
    while (out.len() as u64) < total {
        let d = consumer.next().await.unwrap().unwrap();
        if let Some(w) = warm.take() {
            let _ = w.send(());
            continue;
        }
        let sent: u64 = std::str::from_utf8(&d.data).unwrap().parse().unwrap();
        out.push(now_us().saturating_sub(sent));
    }
    out
}
