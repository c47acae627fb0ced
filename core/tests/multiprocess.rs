//! Real OS processes on one file: concurrent publishers and consumers lose nothing, a
//! consumer killed with SIGKILL gets its message redelivered, and a publish that returned
//! survives kill -9.

mod common;

use common::{child_role, spawn_child};
use ferrymq::{Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};

use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name).unwrap()
}

fn open(path: &str) -> Queue {
    Queue::open(path, Options::default()).unwrap()
}

/// Child: publishes N messages from one thread while consuming from the main thread;
/// prints one `ACK payload` line per acked message.
fn publish_and_consume() {
    let q = open(&env("FERRYMQ_DB"));
    let n: usize = env("FERRYMQ_N").parse().unwrap();
    let me = env("FERRYMQ_ME");
    let producer = {
        let q = q.clone();
        let me = me.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while i < n {
                if i % 3 == 0 && i + 10 <= n {
                    let batch: Vec<Message> = (i..i + 10)
                        .map(|k| Message::new("t", format!("{me}-{k}")))
                        .collect();
                    q.publish_batch(&batch).unwrap();
                    i += 10;
                } else {
                    q.publish("t", format!("{me}-{i}"), PublishOptions::new())
                        .unwrap();
                    i += 1;
                }
            }
            q.publish("done", me, PublishOptions::new()).unwrap();
        })
    };
    let mut out = String::new();
    loop {
        let ds = q
            .receive(
                "g",
                ReceiveOptions::new()
                    .max(16)
                    .wait(Duration::from_millis(200)),
            )
            .unwrap();
        if ds.is_empty() {
            let stats = q.stats().unwrap();
            let finished = stats.topics.get("done").map_or(0, |t| t.messages) == 2;
            if finished && stats.groups["g"].ready == 0 {
                break;
            }
            continue;
        }
        for d in ds {
            q.ack(&d).unwrap();
            out.push_str(&format!("ACK {}\n", String::from_utf8(d.payload).unwrap()));
        }
    }
    producer.join().unwrap();
    print!("{out}");
}

#[test]
fn two_processes_publish_and_consume_without_loss_or_duplicates() {
    if child_role(|_| publish_and_consume()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let n = 1500;
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|me| {
            spawn_child(
                "two_processes_publish_and_consume_without_loss_or_duplicates",
                "both",
                &[
                    ("FERRYMQ_DB", path.display().to_string()),
                    ("FERRYMQ_N", n.to_string()),
                    ("FERRYMQ_ME", me.to_string()),
                ],
            )
        })
        .collect();
    let mut acked: HashMap<String, usize> = HashMap::new();
    let mut per_child = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        let mut count = 0;
        for line in text.lines().filter_map(|l| l.strip_prefix("ACK ")) {
            *acked.entry(line.to_string()).or_default() += 1;
            count += 1;
        }
        per_child.push(count);
    }
    assert_eq!(acked.len(), 2 * n, "messages lost");
    assert!(acked.values().all(|&c| c == 1), "a message was acked twice");
    for me in ["a", "b"] {
        for i in 0..n {
            assert!(acked.contains_key(&format!("{me}-{i}")), "{me}-{i} lost");
        }
    }
    assert!(
        per_child.iter().all(|&c| c > 0),
        "one process consumed nothing: {per_child:?}"
    );
    let stats = q.stats().unwrap();
    assert_eq!(
        (stats.groups["g"].ready, stats.groups["g"].inflight),
        (0, 0)
    );
}

/// Child: takes one delivery under a 1 s lease, says which, then hangs until killed.
fn hold_one() {
    let q = open(&env("FERRYMQ_DB"));
    let d = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(10)))
        .unwrap();
    println!("HELD {}", d[0].message_id);
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_consumer_killed_while_holding_a_message_gets_it_redelivered() {
    if child_role(|_| hold_one()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe(
        "g",
        "t",
        SubscribeOptions::new().lease(Duration::from_secs(1)),
    )
    .unwrap();
    let id = q.publish("t", "important", PublishOptions::new()).unwrap();
    let mut child = spawn_child(
        "a_consumer_killed_while_holding_a_message_gets_it_redelivered",
        "hold",
        &[("FERRYMQ_DB", path.display().to_string())],
    );
    let held = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("HELD ").map(str::to_owned))
        .expect("the child took the message");
    assert_eq!(held, id.to_string());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let ds = q
        .receive("g", ReceiveOptions::new().wait(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!((ds[0].message_id, ds[0].attempt), (id, 2));
}

/// Child: publishes forever, printing each id once `publish` returned.
fn publish_forever() {
    let q = open(&env("FERRYMQ_DB"));
    let mut i = 0u64;
    loop {
        let id = q
            .publish("t", format!("m{i}"), PublishOptions::new())
            .unwrap();
        println!("PUB {id}");
        i += 1;
    }
}

#[test]
fn a_publish_that_returned_survives_kill_9() {
    if child_role(|_| publish_forever()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    let mut confirmed = Vec::new();
    for round in 0..20 {
        let mut child = spawn_child(
            "a_publish_that_returned_survives_kill_9",
            "publish",
            &[("FERRYMQ_DB", path.display().to_string())],
        );
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut seen = 0;
        while seen < 5 + round * 3 {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(id) = line.trim().strip_prefix("PUB ") {
                confirmed.push(id.parse::<i64>().unwrap());
                seen += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Lines printed before the kill but not yet read are confirmed too.
        for l in reader.lines().map_while(Result::ok) {
            if let Some(id) = l.trim().strip_prefix("PUB ") {
                confirmed.push(id.parse::<i64>().unwrap());
            }
        }
    }
    assert!(confirmed.len() >= 20 * 5);
    for id in confirmed {
        q.message(id)
            .unwrap_or_else(|e| panic!("published message {id} lost: {e}"));
    }
}

/// Child: waits (blocking or async, as `FERRYMQ_FLAVOUR` says) on a queue whose poll
/// is 20 s, then says how long the message took to come.
fn wait_with_a_slow_poll() {
    let opts = Options::default().poll_interval(Duration::from_secs(20));
    let q = Queue::open(env("FERRYMQ_DB"), opts).unwrap();
    let wait = ReceiveOptions::new().wait(Duration::from_secs(60));
    println!("WAITING");
    let t = std::time::Instant::now();
    let ds = if env("FERRYMQ_FLAVOUR") == "async" {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(q.receive_async("g", wait)).unwrap()
    } else {
        q.receive("g", wait).unwrap()
    };
    println!("GOT {} {}", ds.len(), t.elapsed().as_millis());
}

#[cfg(target_os = "linux")]
#[test]
fn a_commit_in_another_process_wakes_a_waiting_receive_without_its_poll() {
    if child_role(|_| wait_with_a_slow_poll()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    for flavour in ["blocking", "async"] {
        let mut child = spawn_child(
            "a_commit_in_another_process_wakes_a_waiting_receive_without_its_poll",
            "wait",
            &[
                ("FERRYMQ_DB", path.display().to_string()),
                ("FERRYMQ_FLAVOUR", flavour.to_owned()),
            ],
        );
        let mut lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok);
        assert!(lines.any(|l| l == "WAITING"));
        // Let the receive settle into its wait (its first claim found nothing).
        std::thread::sleep(Duration::from_millis(500));
        q.publish("t", flavour, PublishOptions::new()).unwrap();
        let got = lines
            .find_map(|l| l.strip_prefix("GOT ").map(str::to_owned))
            .expect("the child reported");
        let (n, ms) = got.split_once(' ').unwrap();
        assert_eq!(n, "1", "{flavour}");
        // The child looks at data_version every 20 s: only the wake word brings the
        // message this early.
        let ms: u64 = ms.parse().unwrap();
        assert!(ms < 10_000, "{flavour}: the message came after {ms} ms");
        assert!(child.wait().unwrap().success());
    }
}
