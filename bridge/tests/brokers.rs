//! The bridge against real brokers and real processes (`make test-brokers` starts Kafka,
//! RabbitMQ and RocketMQ with scripts/brokers/*.sh and sets FERRYMQ_TEST_KAFKA,
//! FERRYMQ_TEST_AMQP and FERRYMQ_TEST_ROCKETMQ).
//! Without those variables the tests say so and pass, unless FERRYMQ_REQUIRE_BROKERS=1.
//!
//! Egress: 100,000 messages over 1,000 ordering keys; the relay process is SIGKILLed
//! FERRYMQ_RELAY_KILLS times (default 50) at random and the broker restarted twice
//! mid-run. At the broker: every message (0 lost), per key in publish order (a duplicate
//! repeats a message before the next one), every copy of a message with the same id.
//! (RocketMQ: egress only.)
//! Ingress: the same schedule on the ingress process; each source message is published
//! locally exactly once and nothing is left unacked/uncommitted at the broker.

// The RocketMQ reader's future holds the client's deep types: proving it `Send` needs
// more depth than the default (as in the library and the bench).
#![recursion_limit = "512"]
use ferrymq::{Message, Options, Queue, ReceiveOptions, SubscribeOptions};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const KEYS: usize = 1_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The broker's address, or None (skip) when the make target did not start it.
fn broker(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("FERRYMQ_REQUIRE_BROKERS").as_deref() != Ok("1"),
                "{var} is not set"
            );
            eprintln!("skipped: {var} not set (make test-brokers sets it)");
            None
        }
    }
}

struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("kill schedule seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{prefix}-{}-{n}", std::process::id())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/brokers")
        .join(name)
}

fn restart_broker(name: &str) {
    let t = Instant::now();
    for verb in ["stop", "start", "wait"] {
        let ok = Command::new("bash")
            .arg(script(name))
            .arg(verb)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{name} {verb} failed");
    }
    eprintln!("{name} restarted in {:?}", t.elapsed());
}

fn spawn_bridge(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_ferrymq-bridge"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The process left running by `kill_schedule`, and where its lines start in the log.
struct Running {
    child: Child,
    log: PathBuf,
    from: u64,
}

/// Kills the process at random moments, restarting it each time, and restarts the broker
/// under the running process after a third and two thirds of the kills.
fn kill_schedule(config: &Path, log: &Path, broker_script: &str) -> Running {
    let kills = env_usize("FERRYMQ_RELAY_KILLS", 50);
    let mut rng = Rng::new();
    let mut child = spawn_bridge(config, log);
    let mut from = 0;
    for i in 0..kills {
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        from = std::fs::metadata(log).map_or(0, |m| m.len());
        child = spawn_bridge(config, log);
        if i == kills / 3 || i == 2 * kills / 3 {
            // With the process running: its batch in flight meets the broker going away.
            std::thread::sleep(Duration::from_millis(300 + rng.below(300)));
            restart_broker(broker_script);
        }
    }
    Running {
        child,
        log: log.to_owned(),
        from,
    }
}

/// SIGTERM once the process says it handles it (a process killed before it installed its
/// handler dies of the signal, as any would), then a clean exit is required.
fn sigterm_and_wait(mut r: Running) {
    let t = Instant::now();
    loop {
        let text = std::fs::read(&r.log).unwrap_or_default();
        let own = String::from_utf8_lossy(&text[(r.from as usize).min(text.len())..]).into_owned();
        if own.contains("relay: running") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the last process never said it was running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
    let status = r.child.wait().unwrap();
    assert!(status.success(), "graceful stop failed: {status:?}");
}

/// Publishes `n` messages, `seq` counting per key, payload `key:seq`.
fn publish_backlog(q: &Queue, topic: &str, n: usize) {
    let mut batch = Vec::new();
    for i in 0..n {
        let (key, seq) = (i % KEYS, i / KEYS);
        let k = format!("k{key}");
        batch.push(
            Message::new(topic, format!("{k}:{seq}"))
                .key(k.clone())
                .ordering_key(k),
        );
        if batch.len() == 10_000 {
            q.publish_batch(&batch).unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        q.publish_batch(&batch).unwrap();
    }
}

/// Waits until the group has nothing left (all acked), failing on dead letters.
fn wait_drained(q: &Queue, group: &str, deadline: Duration) {
    let t = Instant::now();
    loop {
        let g = q.stats().unwrap().groups.get(group).cloned().unwrap();
        assert_eq!(g.dead, 0, "dead letters in {group}");
        if g.ready + g.scheduled + g.inflight + g.retrying == 0 {
            return;
        }
        assert!(t.elapsed() < deadline, "not drained: {g:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What the broker holds, in its order (per partition for Kafka): (ferrymq-id, payload).
fn check_at_broker(records: &[(String, String)], n: usize) {
    let mut id_of_payload: HashMap<&str, &str> = HashMap::new();
    let mut last_seq: HashMap<&str, usize> = HashMap::new();
    let mut dups = 0;
    for (id, payload) in records {
        if let Some(prev) = id_of_payload.insert(payload, id) {
            assert_eq!(prev, id, "two ids for {payload}");
            dups += 1;
        }
        let (key, seq) = payload.split_once(':').unwrap();
        let seq: usize = seq.parse().unwrap();
        let last = last_seq.entry(key).or_insert(0);
        // Non-decreasing: a duplicate repeats the current message, never an older one.
        assert!(
            seq >= *last && seq <= *last + 1,
            "key {key}: {seq} after {last}"
        );
        *last = seq;
    }
    assert_eq!(id_of_payload.len(), n, "messages lost");
    eprintln!(
        "at the broker: {} records, {} distinct, {dups} duplicates",
        records.len(),
        n
    );
}

// ---- Kafka ------------------------------------------------------------------------

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn kafka_records(
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    topic: &str,
    n: usize,
) -> Vec<(String, String)> {
    rt.block_on(async {
        let c: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("check"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        c.subscribe(&[topic]).unwrap();
        // Per partition, in offset order; then concatenated (each key lives on one).
        let mut parts: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
        let mut distinct = HashSet::new();
        let t = Instant::now();
        loop {
            let wait = if distinct.len() >= n {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(30)
            };
            let Ok(m) = tokio::time::timeout(wait, c.recv()).await else {
                break;
            };
            let m = m.unwrap();
            let id = header(&m, "ferrymq-id").unwrap_or_default();
            let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            distinct.insert(id.clone());
            parts.entry(m.partition()).or_default().push((id, payload));
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "reading the topic took too long"
            );
        }
        parts.into_values().flatten().collect()
    })
}

fn header<M: rdkafka::Message>(m: &M, name: &str) -> Option<String> {
    let h = m.headers()?;
    (0..h.count())
        .filter_map(|i| h.try_get(i))
        .find(|hd| hd.key == name)
        .and_then(|hd| hd.value.map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// The egress run both brokers share: a backlog of `n` messages in a fresh file, the relay
/// under the kill schedule until its group is drained, then a graceful stop. `sink` is the
/// `relay.toml` line naming the broker, given the local topic. Returns the topic.
fn run_egress(name: &str, script: &str, n: usize, sink: impl Fn(&str) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let (topic, group) = (unique("egress"), format!("relay-{name}"));
    let q = Queue::open(&db, Options::default()).unwrap();
    q.subscribe(
        &group,
        &topic,
        SubscribeOptions::new().lease(Duration::from_secs(2)),
    )
    .unwrap();
    publish_backlog(&q, &topic, n);
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "db = {db:?}\nstats_interval_ms = 2000\n[[egress]]\ngroup = \"{group}\"\ntopic = \"{topic}\"\nbatch = 500\nlease_ms = 2000\n{}\n",
            sink(&topic)
        ),
    )
    .unwrap();
    let t = Instant::now();
    let child = kill_schedule(&config, &dir.path().join("relay.log"), script);
    wait_drained(&q, &group, Duration::from_secs(600));
    sigterm_and_wait(child);
    eprintln!("{name} egress of {n}: {:?}", t.elapsed());
    topic
}

/// The ingress run both brokers share, once the source holds `n` messages: the ingress
/// (`source` is its `relay.toml` line) under the kill schedule until `n` distinct
/// messages arrived in a fresh file, a graceful stop, and the exactly-once check.
fn run_ingress(name: &str, script: &str, n: usize, source: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let local = "inbound";
    let q = Queue::open(&db, Options::default()).unwrap();
    q.subscribe("check", local, SubscribeOptions::new())
        .unwrap();
    let config = dir.path().join("ingress.toml");
    std::fs::write(
        &config,
        format!(
            "db = {db:?}\nstats_interval_ms = 2000\n[[ingress]]\ntopic = \"{local}\"\nbatch = 1000\n{source}\n"
        ),
    )
    .unwrap();
    let t = Instant::now();
    let child = kill_schedule(&config, &dir.path().join("ingress.log"), script);
    let payloads = wait_local(&q, n);
    std::thread::sleep(Duration::from_secs(3));
    sigterm_and_wait(child);
    eprintln!("{name} ingress of {n}: {:?}", t.elapsed());
    assert_exactly_once(&q, payloads, n);
}

#[test]
fn kafka_egress_survives_relay_kills_and_broker_restarts() {
    let Some(brokers) = broker("FERRYMQ_TEST_KAFKA") else {
        return;
    };
    let n = env_usize("FERRYMQ_RELAY_MESSAGES", 100_000);
    let topic = run_egress("kafka", "kafka.sh", n, |_| {
        format!("kafka = {{ brokers = \"{brokers}\" }}")
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    check_at_broker(&kafka_records(&rt, &brokers, &topic, n), n);
}

/// `metrics_listen`: while the relay runs, `GET /metrics` has what each section sent and
/// the file's gauges; any other path is 404.
#[test]
fn kafka_relay_serves_its_counters_on_metrics() {
    let Some(brokers) = broker("FERRYMQ_TEST_KAFKA") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let topic = unique("metrics");
    let q = Queue::open(&db, Options::default()).unwrap();
    q.subscribe("relay-m", &topic, SubscribeOptions::new())
        .unwrap();
    publish_backlog(&q, &topic, 30);
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "db = {db:?}\nmetrics_listen = \"127.0.0.1:0\"\n[[egress]]\nname = \"out\"\ngroup = \"relay-m\"\ntopic = \"{topic}\"\nkafka = {{ brokers = \"{brokers}\" }}\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("relay.log");
    let child = spawn_bridge(&config, &log);
    wait_drained(&q, "relay-m", Duration::from_secs(120));
    let t = Instant::now();
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("relay: metrics on http://").nth(1) {
            break rest.split("/metrics").next().unwrap().to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no metrics line: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // The counter follows the local ack: poll until it has caught up.
    let sent = "ferrymq_bridge_sent_total{section=\"out\",direction=\"egress\"} 30\n";
    let body = loop {
        let body = http_get(&addr, "/metrics");
        if body.contains(sent) {
            break body;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.contains("ferrymq_bridge_failed_total{section=\"out\",direction=\"egress\"} 0\n"));
    assert!(body.contains("# TYPE ferrymq_bridge_lag_seconds gauge\n"));
    let ready =
        format!("ferrymq_messages_ready{{topic=\"{topic}\",consumer_group=\"relay-m\"}} 0\n");
    assert!(body.contains(&ready), "{body}");
    assert!(http_get(&addr, "/").starts_with("HTTP/1.1 404"));
    sigterm_and_wait(Running {
        child,
        log,
        from: 0,
    });
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Relays with `debezium = true`, read back as a consumer of Debezium's outbox router
/// reads: the topic `outbox.event.<topic>`, the key the aggregate id, the value the
/// payload, the header `id` a UUID per message. Two groups of the file relay every message,
/// as a relay killed before its acks sends it again: both copies carry the same `id`.
#[test]
fn kafka_debezium_envelope_is_the_outbox_routers() {
    let Some(brokers) = broker("FERRYMQ_TEST_KAFKA") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let topic = unique("orders");
    let q = Queue::open(&db, Options::default()).unwrap();
    let groups = ["relay-a", "relay-b"];
    for g in groups {
        q.subscribe(g, &topic, SubscribeOptions::new()).unwrap();
    }
    let n = 40;
    for i in 0..n {
        let m = match i % 4 {
            // The aggregate id is the ordering key, else the message key.
            3 => Message::new(&topic, format!("p{i}")).key(format!("order-{i}")),
            a => Message::new(&topic, format!("p{i}")).ordering_key(format!("order-{a}")),
        };
        q.publish_batch(&[m]).unwrap();
    }
    let config = dir.path().join("relay.toml");
    let mut toml = format!("db = {db:?}\n");
    for g in groups {
        toml += &format!(
            "[[egress]]\ngroup = \"{g}\"\ntopic = \"{topic}\"\nkafka = {{ brokers = \"{brokers}\", debezium = true }}\n"
        );
    }
    std::fs::write(&config, toml).unwrap();
    let log = dir.path().join("relay.log");
    let child = spawn_bridge(&config, &log);
    for g in groups {
        wait_drained(&q, g, Duration::from_secs(120));
    }
    sigterm_and_wait(Running {
        child,
        log,
        from: 0,
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let records = rt.block_on(async {
        let c: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", unique("debezium-check"))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        c.subscribe(&[&format!("outbox.event.{topic}")]).unwrap();
        let mut out = Vec::new();
        while out.len() < 2 * n {
            let m = tokio::time::timeout(Duration::from_secs(60), c.recv())
                .await
                .expect("records missing from outbox.event.<topic>")
                .unwrap();
            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
            let payload = String::from_utf8_lossy(m.payload().unwrap()).into_owned();
            out.push((payload, key, header(&m, "id").expect("no id header")));
        }
        out
    });
    let mut id_of: HashMap<String, String> = HashMap::new();
    for (payload, key, id) in records {
        let i: usize = payload[1..].parse().unwrap();
        let aggregate = match i % 4 {
            3 => format!("order-{i}"),
            a => format!("order-{a}"),
        };
        assert_eq!(key.as_deref(), Some(aggregate.as_str()), "key of {payload}");
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(uuid.get_version_num(), 5, "{id}");
        if let Some(first) = id_of.insert(payload.clone(), id.clone()) {
            assert_eq!(first, id, "two ids for {payload}");
        }
    }
    assert_eq!(id_of.len(), n, "a message missing");
    let distinct: HashSet<&String> = id_of.values().collect();
    assert_eq!(distinct.len(), n, "two messages with one id");
}

#[test]
fn kafka_ingress_publishes_each_source_message_once_across_kills() {
    let Some(brokers) = broker("FERRYMQ_TEST_KAFKA") else {
        return;
    };
    let n = env_usize("FERRYMQ_RELAY_MESSAGES", 100_000);
    let src = unique("ingress-src");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Half carry a relay's id headers, half only their Kafka position.
    rt.block_on(async {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("acks", "all")
            .create()
            .unwrap();
        let sends = (0..n).map(|i| {
            let payload = format!("src-{i}");
            let key = format!("k{}", i % KEYS);
            let p = p.clone();
            let src = src.clone();
            async move {
                let mut r = FutureRecord::<str, str>::to(&src)
                    .payload(&payload)
                    .key(&key);
                if i % 2 == 0 {
                    let id = i.to_string();
                    r = r.headers(
                        rdkafka::message::OwnedHeaders::new()
                            .insert(rdkafka::message::Header {
                                key: "ferrymq-id",
                                value: Some(id.as_str()),
                            })
                            .insert(rdkafka::message::Header {
                                key: "ferrymq-origin",
                                value: Some("host-a:/a.db"),
                            }),
                    );
                }
                p.send(r, Duration::from_secs(30))
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e)
            }
        });
        let results: Vec<_> = futures_util::stream::iter(sends)
            .buffer_unordered(5_000)
            .collect()
            .await;
        assert!(results.iter().all(|r| r.is_ok()));
    });
    let source = format!(
        "kafka = {{ brokers = \"{brokers}\", topic = \"{src}\", group = \"{}\" }}",
        unique("ingress")
    );
    run_ingress("kafka", "kafka.sh", n, &source);
}

// ---- RabbitMQ ---------------------------------------------------------------------

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

fn amqp_records(
    rt: &tokio::runtime::Runtime,
    uri: &str,
    queue: &str,
    n: usize,
) -> Vec<(String, String)> {
    rt.block_on(async {
        let conn = Connection::connect(uri, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let opts = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let mut consumer = ch
            .basic_consume(queue, "check", opts, FieldTable::default())
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut distinct = HashSet::new();
        loop {
            let wait = if distinct.len() >= n {
                Duration::from_secs(2)
            } else {
                Duration::from_secs(30)
            };
            let Ok(Some(d)) = tokio::time::timeout(wait, consumer.next()).await else {
                break;
            };
            let d = d.unwrap();
            let id = d
                .properties
                .headers()
                .as_ref()
                .and_then(|h| match h.inner().get("ferrymq-id") {
                    Some(AMQPValue::LongString(s)) => {
                        Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
                    }
                    _ => None,
                })
                .unwrap_or_default();
            distinct.insert(id.clone());
            out.push((id, String::from_utf8_lossy(&d.data).into_owned()));
        }
        out
    })
}

#[test]
fn rabbitmq_egress_survives_relay_kills_and_broker_restarts() {
    let Some(uri) = broker("FERRYMQ_TEST_AMQP") else {
        return;
    };
    let n = env_usize("FERRYMQ_RELAY_MESSAGES", 100_000);
    let topic = run_egress("amqp", "rabbitmq.sh", n, |topic| {
        format!("amqp = {{ uri = \"{uri}\", declare_queue = \"{topic}\" }}")
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    check_at_broker(&amqp_records(&rt, &uri, &topic, n), n);
}

#[test]
fn rabbitmq_ingress_publishes_each_source_message_once_across_kills() {
    let Some(uri) = broker("FERRYMQ_TEST_AMQP") else {
        return;
    };
    let n = env_usize("FERRYMQ_RELAY_MESSAGES", 100_000);
    let src = unique("ingress-src");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Half carry a relay's id headers, half only an AMQP message-id.
    rt.block_on(async {
        let conn = Connection::connect(&uri, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(&src, durable, FieldTable::default())
            .await
            .unwrap();
        let mut confirms = Vec::new();
        for i in 0..n {
            let mut props = BasicProperties::default().with_delivery_mode(2);
            if i % 2 == 0 {
                let mut h = FieldTable::default();
                h.insert(
                    ShortString::from("ferrymq-id"),
                    AMQPValue::LongString(LongString::from(i.to_string())),
                );
                h.insert(
                    ShortString::from("ferrymq-origin"),
                    AMQPValue::LongString(LongString::from("host-a:/a.db")),
                );
                props = props.with_headers(h);
            } else {
                props = props.with_message_id(ShortString::from(format!("m-{i}")));
            }
            let payload = format!("src-{i}");
            confirms.push(
                ch.basic_publish(
                    "",
                    &src,
                    BasicPublishOptions::default(),
                    payload.as_bytes(),
                    props,
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
    });
    let source = format!("amqp = {{ uri = \"{uri}\", queue = \"{src}\" }}");
    run_ingress("rabbitmq", "rabbitmq.sh", n, &source);
    // Everything was acked at the broker (the ingress stopped: nothing is held unacked).
    rt.block_on(async {
        let conn = Connection::connect(&uri, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        };
        let left = ch
            .queue_declare(&src, passive, FieldTable::default())
            .await
            .unwrap()
            .message_count();
        assert_eq!(left, 0, "messages left unacked at the broker");
    });
}

// ---- ingress checks ----------------------------------------------------------------

/// Receives (and acks) from the check group until `n` distinct messages arrived.
fn wait_local(q: &Queue, n: usize) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut distinct = HashSet::new();
    let t = Instant::now();
    while distinct.len() < n {
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "only {} of {n} arrived",
            distinct.len()
        );
        let wait = ReceiveOptions::new()
            .max(1000)
            .wait(Duration::from_millis(500));
        for d in q.receive("check", wait).unwrap() {
            let p = String::from_utf8(d.payload.clone()).unwrap();
            distinct.insert(p.clone());
            payloads.push(p);
            q.ack(&d).unwrap();
        }
    }
    payloads
}

/// Nothing more arrived after the ingress stopped, and no payload twice.
fn assert_exactly_once(q: &Queue, mut payloads: Vec<String>, n: usize) {
    for d in q.receive("check", ReceiveOptions::new().max(1000)).unwrap() {
        payloads.push(String::from_utf8(d.payload.clone()).unwrap());
    }
    let distinct: HashSet<&String> = payloads.iter().collect();
    assert_eq!(distinct.len(), n, "source messages missing");
    assert_eq!(payloads.len() - n, 0, "source messages published twice");
}

// ---- RocketMQ ------------------------------------------------------------------------

use rocketmq_client_rust::DefaultLitePullConsumer;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;

/// What the broker holds for `topic`, read from the first offset of every queue:
/// (ferrymq-id, payload), per queue in offset order, then concatenated (each ordering key
/// lives on one queue).
fn rocketmq_records(
    rt: &tokio::runtime::Runtime,
    namesrv: &str,
    topic: &str,
    n: usize,
) -> Vec<(String, String)> {
    rt.block_on(async {
        let (_owner, client) = ferrymq_bridge::sink::rocketmq_client_runtime().unwrap();
        let c = DefaultLitePullConsumer::builder(client.clone())
            .consumer_group(unique("check"))
            .name_server_addr(namesrv)
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .auto_commit(false)
            .build()
            .unwrap();
        c.start().await.unwrap();
        // Assigned, not subscribed: a subscription waits for the group's rebalance
        // (tens of seconds) before its first pull.
        let assigned = c.fetch_message_queues(topic).await.unwrap();
        c.assign(assigned.clone()).await.unwrap();
        for q in &assigned {
            c.seek_to_begin(q).await.unwrap();
        }
        let mut queues: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
        let mut distinct = HashSet::new();
        let t = Instant::now();
        loop {
            let wait = if distinct.len() >= n { 2_000 } else { 30_000 };
            let got = c.poll_with_timeout(wait).await;
            if got.is_empty() {
                break;
            }
            for m in got {
                let id = m.property("ferrymq-id").unwrap_or_default().to_string();
                let payload = String::from_utf8_lossy(m.body_slice()).into_owned();
                distinct.insert(id.clone());
                queues.entry(m.queue_id()).or_default().push((id, payload));
            }
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "reading the topic took too long"
            );
        }
        // Dropped, not shut down: the lite pull consumer's shutdown takes 20 s here, and
        // its tasks end with this runtime.
        drop((c, client));
        queues.into_values().flatten().collect()
    })
}

#[test]
fn rocketmq_egress_survives_relay_kills_and_broker_restarts() {
    let Some(namesrv) = broker("FERRYMQ_TEST_ROCKETMQ") else {
        return;
    };
    let n = env_usize("FERRYMQ_RELAY_MESSAGES", 100_000);
    let topic = run_egress("rocketmq", "rocketmq.sh", n, |_| {
        format!("rocketmq = {{ namesrv = \"{namesrv}\" }}")
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    check_at_broker(&rocketmq_records(&rt, &namesrv, &topic, n), n);
}

/// Runs the relay of `sink` (a `relay.toml` line) in this process over the backlog `msgs`
/// until `sent` messages are confirmed and `failed` writes failed (within 60 s), then a
/// further second, and returns the counters' (sent, failed) and the group's stats.
fn relay_in_process(
    sink: &str,
    msgs: Vec<Message>,
    want: (u64, u64),
) -> (u64, u64, ferrymq::GroupStats) {
    use ferrymq_bridge::{Counters, config::EgressConfig, relay};
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("a.db"), Options::default()).unwrap();
    let topic = msgs[0].topic.clone();
    let cfg: EgressConfig = toml::from_str(&format!(
        "group = \"relay\"\ntopic = \"{topic}\"\nlease_ms = 2000\nretry_initial_ms = 60000\n{sink}\n"
    ))
    .unwrap();
    let sink = relay::prepare(&q, &cfg, "test:/a.db").unwrap();
    q.publish_batch(&msgs).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let counters = std::sync::Arc::new(Counters::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = rt.spawn(relay::run(q.clone(), cfg, sink, counters.clone(), rx));
    let t = Instant::now();
    let seen = || (counters.sent.load(Relaxed), counters.failed.load(Relaxed));
    while seen().0 < want.0 || seen().1 < want.1 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "only {:?} of {want:?}",
            seen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.send(true).unwrap();
    rt.block_on(task).unwrap().unwrap();
    let stats = q.stats().unwrap().groups.get("relay").cloned().unwrap();
    (seen().0, seen().1, stats)
}

#[test]
fn rocketmq_relay_keeps_what_rocketmq_cannot_take() {
    let Some(namesrv) = broker("FERRYMQ_TEST_ROCKETMQ") else {
        return;
    };
    let topic = unique("untakeable");
    let sink = format!("rocketmq = {{ namesrv = \"{namesrv}\" }}");
    let msgs = vec![
        Message::new(&topic, "fine").ordering_key("a"),
        Message::new(&topic, "reserved header")
            .ordering_key("b")
            .with_options(
                ferrymq::PublishOptions::new()
                    .ordering_key("b")
                    .header("KEYS", "x"),
            ),
        Message::new(&topic, "").ordering_key("c"),
    ];
    // One sent; the other two fail and wait on the retry ladder, nothing sent altered.
    let (sent, failed, g) = relay_in_process(&sink, msgs, (1, 2));
    assert_eq!((sent, failed), (1, 2));
    assert_eq!((g.retrying, g.dead), (2, 0), "{g:?}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let at_broker = rocketmq_records(&rt, &namesrv, &topic, 1);
    let payloads: Vec<&str> = at_broker.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(payloads, ["fine"]);
}

#[test]
fn rocketmq_relay_with_queues_set_refuses_a_topic_listing_another_number() {
    let Some(namesrv) = broker("FERRYMQ_TEST_ROCKETMQ") else {
        return;
    };
    // The test broker gives a new topic 4 queues.
    let topic = unique("queues");
    let msgs: Vec<Message> = (0..3)
        .map(|i| Message::new(&topic, format!("m{i}")).ordering_key(format!("k{i}")))
        .collect();
    let three = format!("rocketmq = {{ namesrv = \"{namesrv}\", queues = 3 }}");
    let (sent, failed, g) = relay_in_process(&three, msgs.clone(), (0, 3));
    assert_eq!((sent, failed, g.retrying), (0, 3, 3), "{g:?}");
    let four = format!("rocketmq = {{ namesrv = \"{namesrv}\", queues = 4 }}");
    let (sent, failed, _) = relay_in_process(&four, msgs, (3, 0));
    assert_eq!((sent, failed), (3, 0));
}
