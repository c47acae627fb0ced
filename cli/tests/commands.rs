//! Every command of the built `ferrymq` binary on real files: `--json` shapes against the
//! library's view of the same file, tables, help, exit codes, refusals.

mod common;

use common::{Fixture, command, run, run_bare};
use ferrymq::{PublishOptions, Queue, ReceiveOptions, SubscribeOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn help_of_every_subcommand_is_there_and_names_its_options() {
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["--db", "--json", "--reason", "Exit codes"]),
        (&["audit"], &["[FILE]", "--after", "--limit"]),
        (&["stats"], &["--watch"]),
        (&["topics"], &["--db"]),
        (&["groups"], &["--db"]),
        (&["find"], &["--key", "<TOPIC>"]),
        (&["show"], &["<ID>"]),
        (&["trace"], &["<ID>"]),
        (
            &["tail"],
            &["--group", "--from-id", "--interval", "--count"],
        ),
        (&["dlq"], &["list", "show", "redrive", "purge"]),
        (&["dlq", "list"], &["--group", "--older-than", "--limit"]),
        (&["dlq", "show"], &["--group", "<ID>"]),
        (
            &["dlq", "redrive"],
            &[
                "--group",
                "--ids",
                "--older-than",
                "--rate",
                "--yes",
                "--progress",
            ],
        ),
        (
            &["dlq", "purge"],
            &["--group", "--ids", "--older-than", "--yes", "--progress"],
        ),
        (&["half"], &["list", "commit", "rollback"]),
        (&["half", "list"], &["--state", "--limit"]),
        (&["half", "commit"], &["<ID>"]),
        (&["half", "rollback"], &["<ID>"]),
        (&["purge-acked"], &["--older-than"]),
        (&["vacuum"], &["--pages"]),
        (&["check"], &["--db"]),
        (&["export"], &["--from-id", "--output"]),
        (&["import"], &["--key-prefix", "<FILE>"]),
        (&["pause"], &["<GROUP>"]),
        (&["resume"], &["<GROUP>"]),
        (&["metrics"], &["--db"]),
        (&["schedules"], &["--db"]),
        (&["unschedule"], &["<NAME>", "--yes"]),
        (
            &["serve"],
            &[
                "[FILE]",
                "--bind",
                "--port",
                "--allow-writes",
                "--token",
                "--metrics",
            ],
        ),
    ];
    for (path, options) in cases {
        let mut args = path.to_vec();
        args.push("--help");
        let r = run_bare(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stdout.len() > 40, "{args:?}: {}", r.stdout);
        for o in *options {
            assert!(
                r.stdout.contains(o),
                "{args:?} help lacks {o}:\n{}",
                r.stdout
            );
        }
    }
}

/// Two topics, a fragile group with a dead letter, an in-flight one, a delayed one.
fn busy_file() -> Fixture {
    let f = Fixture::new();
    f.fragile("pay", "payments");
    f.q.subscribe("audit", "payments", SubscribeOptions::new().tags("created"))
        .unwrap();
    f.q.subscribe("mail", "emails", SubscribeOptions::new())
        .unwrap();
    f.publish(
        "payments",
        "p1",
        PublishOptions::new().tag("created").key("order-1"),
    );
    f.publish(
        "payments",
        "p2",
        PublishOptions::new().tag("refunded").key("order-2"),
    );
    f.publish(
        "payments",
        "p3",
        PublishOptions::new().delay(Duration::from_secs(3600)),
    );
    f.publish("emails", "e1", PublishOptions::new());
    f.fail("pay", 1, "card declined");
    f.q.receive("pay", ReceiveOptions::new()).unwrap();
    f.q.prepare("payments", "half", PublishOptions::new())
        .unwrap();
    f
}

#[test]
fn stats_topics_and_groups_print_what_the_library_sees() {
    let f = busy_file();
    let s = f.q.stats().unwrap();
    assert_eq!((s.groups["pay"].dead, s.groups["pay"].inflight), (1, 1));

    let mut j = f.run(&["--json", "stats"]).json();
    let groups = j["groups"].as_array().unwrap();
    assert_eq!(groups.len(), s.groups.len());
    for g in groups {
        let lib = &s.groups[g["name"].as_str().unwrap()];
        assert_eq!(g["topic"], json!(lib.topic));
        for (field, n) in [
            ("ready", lib.ready),
            ("scheduled", lib.scheduled),
            ("inflight", lib.inflight),
            ("retrying", lib.retrying),
            ("dead", lib.dead),
        ] {
            assert_eq!(g[field], json!(n), "{g}");
        }
        assert_eq!(
            g["oldest_ready_age_ms"].is_null(),
            lib.oldest_ready_age.is_none(),
            "{g}"
        );
    }
    let topics = f.run(&["--json", "topics"]).json();
    assert_eq!(topics, j["topics"]);
    for t in topics.as_array().unwrap() {
        let lib = &s.topics[t["name"].as_str().unwrap()];
        assert_eq!(
            (t["messages"].as_u64(), t["half"].as_u64()),
            (Some(lib.messages), Some(lib.half))
        );
    }
    assert_eq!(topics[1]["groups"], json!(["audit", "pay"]));
    // Ages move on between two runs: compare the rest.
    let without_ages = |mut v: Value| {
        for g in v.as_array_mut().unwrap() {
            g.as_object_mut().unwrap().remove("oldest_ready_age_ms");
        }
        v
    };
    let groups = without_ages(f.run(&["--json", "groups"]).json());
    assert_eq!(groups, without_ages(j["groups"].take()));

    let table = f.run(&["stats"]);
    assert_eq!(table.code, 0);
    for word in [
        "payments",
        "emails",
        "pay",
        "audit",
        "mail",
        "dead",
        "oldest ready",
    ] {
        assert!(table.stdout.contains(word), "{word}: {}", table.stdout);
    }
    assert!(!table.stdout.contains('\x1b'), "colours off a terminal");
    assert!(f.run(&["groups"]).stdout.contains("retrying"));
    assert!(f.run(&["topics"]).stdout.contains("half"));
}

#[test]
fn stats_watch_repeats_until_killed() {
    let f = busy_file();
    let mut child = command(&f.db())
        .args(["--json", "stats", "--watch", "0.05"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["groups"].as_array().unwrap().len(), 3);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn find_show_and_trace_match_the_message_history() {
    let f = Fixture::new();
    f.q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    f.fragile("h", "t");
    let id = f.publish(
        "t",
        "hello",
        PublishOptions::new()
            .tag("a")
            .key("k1")
            .header("trace", "x")
            .ordering_key("o"),
    );
    let d = f.q.receive("g", ReceiveOptions::new()).unwrap().remove(0);
    f.q.nack(&d, "try again", Some(Duration::from_millis(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let d = f.q.receive("g", ReceiveOptions::new()).unwrap().remove(0);
    f.q.ack(&d).unwrap();
    f.fail("h", 1, "poison");
    f.q.redrive("h", Some(&[id])).unwrap();
    f.fail("h", 1, "poison again");
    f.publish("t", "other", PublishOptions::new().key("k2"));
    let lib = f.q.message(id).unwrap();

    let found = f.run(&["--json", "find", "t", "--key", "k1"]).json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    let shown = f.run(&["--json", "show", &id.to_string()]).json();
    assert_eq!(found[0], shown);
    assert_eq!(shown["id"], json!(id));
    assert_eq!(shown["payload"], json!("hello"));
    assert_eq!(shown["payload_encoding"], json!("utf8"));
    assert_eq!(shown["headers"], json!({"trace": "x"}));
    assert_eq!(shown["ordering_key"], json!("o"));
    assert_eq!(shown["state"], json!("committed"));
    for (group, info) in &lib.deliveries {
        let d = &shown["deliveries"][group];
        assert_eq!(d["state"], json!(info.state.as_str()));
        assert_eq!(d["attempts"], json!(info.attempts));
        assert_eq!(d["last_error"], json!(info.last_error));
        assert_eq!(d["history"].as_array().unwrap().len(), info.history.len());
    }
    assert_eq!(shown["deliveries"]["g"]["state"], json!("acked"));
    assert_eq!(shown["deliveries"]["h"]["state"], json!("dead"));

    let trace = f.run(&["--json", "trace", &id.to_string()]).json();
    let events: Vec<(String, String, String)> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["group"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let has = |what: &str, group: &str, outcome: &str| {
        events.contains(&(what.into(), group.into(), outcome.into()))
    };
    assert_eq!(events[0].0, "published");
    assert!(
        has("attempt", "g", "nacked") && has("attempt", "g", "acked"),
        "{events:?}"
    );
    assert!(
        has("attempt", "h", "nacked") && has("redriven", "h", "") && has("dead", "h", ""),
        "{events:?}"
    );
    let errors: Vec<&str> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["error"].as_str())
        .collect();
    assert!(
        errors.contains(&"try again") && errors.contains(&"poison again"),
        "{errors:?}"
    );

    let table = f.run(&["trace", &id.to_string()]);
    assert!(
        table.stdout.contains("redriven") && table.stdout.contains("poison"),
        "{}",
        table.stdout
    );
    let table = f.run(&["show", &id.to_string()]);
    assert!(
        table.stdout.contains("hello") && table.stdout.contains("acked"),
        "{}",
        table.stdout
    );
    assert!(
        f.run(&["find", "t", "--key", "k2"])
            .stdout
            .contains("other")
    );
    assert_eq!(
        f.run(&["--json", "find", "t", "--key", "none"]).json(),
        json!([])
    );
}

#[test]
fn tail_follows_new_messages_of_a_group_and_claims_nothing() {
    let f = Fixture::new();
    f.q.subscribe("g", "t", SubscribeOptions::new().tags("keep"))
        .unwrap();
    let before = f.publish("t", "old", PublishOptions::new().tag("keep"));
    let child = command(&f.db())
        .args([
            "--json",
            "tail",
            "t",
            "--group",
            "g",
            "--count",
            "2",
            "--interval",
            "10ms",
        ])
        .args(["--from-id", &before.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let a = f.publish("t", "one", PublishOptions::new().tag("keep").key("k"));
    f.publish("t", "skipped", PublishOptions::new().tag("other"));
    f.publish("elsewhere", "x", PublishOptions::new());
    let b = f.publish(
        "t",
        &"\u{1F600}".repeat(3),
        PublishOptions::new().tag("keep"),
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["id"].as_i64(), lines[1]["id"].as_i64()),
        (Some(a), Some(b))
    );
    assert_eq!(lines[0]["key"], json!("k"));
    let g = &f.q.stats().unwrap().groups["g"];
    assert_eq!((g.ready, g.inflight), (3, 0), "tail claimed something");

    // Without --from-id it starts at the newest message, so it shows nothing old.
    let mut child = command(&f.db())
        .args(["tail", "t", "--interval", "10ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn dlq_list_show_redrive_ids_and_purge() {
    let f = Fixture::new();
    f.fragile("g", "t");
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            f.publish(
                "t",
                &format!("m{i}"),
                PublishOptions::new().key(format!("k{i}")),
            )
        })
        .collect();
    f.fail("g", 5, "boom");
    let lib = f.q.dead_letters("g", 100).unwrap();

    let list = f.run(&["--json", "dlq", "list", "--group", "g"]).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), lib.len());
    for (j, d) in list.iter().zip(&lib) {
        assert_eq!(j["message_id"], json!(d.message_id));
        assert_eq!(j["key"], json!(d.key));
        assert_eq!(j["attempts"], json!(d.attempts));
        assert_eq!(j["last_error"], json!("boom"));
        assert_eq!(
            j["payload"],
            json!(String::from_utf8(d.payload.clone()).unwrap())
        );
    }
    assert_eq!(
        f.run(&["--json", "dlq", "list", "-g", "g", "--limit", "2"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        f.run(&["--json", "dlq", "list", "-g", "g", "--older-than", "1h"])
            .json(),
        json!([])
    );
    assert!(f.run(&["dlq", "list", "-g", "g"]).stdout.contains("boom"));

    let shown = f
        .run(&["--json", "dlq", "show", "-g", "g", &ids[0].to_string()])
        .json();
    assert_eq!(
        (shown["id"].as_i64(), shown["group"].as_str()),
        (Some(ids[0]), Some("g"))
    );
    assert_eq!(shown["deliveries"]["g"]["state"], json!("dead"));
    assert!(
        f.run(&["dlq", "show", "-g", "g", &ids[0].to_string()])
            .stdout
            .contains("boom")
    );

    // Named ids need no confirmation.
    let r = f.run(&[
        "--json",
        "dlq",
        "redrive",
        "-g",
        "g",
        "--ids",
        &format!("{},{}", ids[0], ids[1]),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json(), json!({"group": "g", "redriven": 2}));
    assert_eq!(f.q.stats().unwrap().groups["g"].ready, 2);
    // Not dead any more: "not found" as a dead letter.
    assert_eq!(
        f.run(&["dlq", "show", "-g", "g", &ids[0].to_string()]).code,
        3
    );

    let r = f.run(&[
        "--json",
        "dlq",
        "purge",
        "-g",
        "g",
        "--ids",
        &ids[2].to_string(),
        "--yes",
    ]);
    assert_eq!(r.json(), json!({"group": "g", "purged": 1}));
    let r = f.run(&[
        "--json",
        "dlq",
        "purge",
        "-g",
        "g",
        "--older-than",
        "1h",
        "--yes",
    ]);
    assert_eq!(r.json(), json!({"group": "g", "purged": 0}));
    let r = f.run(&["dlq", "purge", "-g", "g", "--yes"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("2 dead letters of group g purged"),
        "{}",
        r.stdout
    );
    assert_eq!(f.q.stats().unwrap().groups["g"].dead, 0);
}

#[test]
fn destructive_runs_are_refused_without_yes_off_a_terminal() {
    let f = Fixture::new();
    f.fragile("g", "t");
    for i in 0..3 {
        f.publish("t", &format!("m{i}"), PublishOptions::new());
    }
    f.fail("g", 3, "boom");
    let before = f.snapshot();
    for args in [
        &["dlq", "redrive", "-g", "g"][..],
        &["dlq", "redrive", "-g", "g", "--older-than", "1s"],
        &["dlq", "purge", "-g", "g"],
        &["dlq", "purge", "-g", "g", "--ids", "1"],
    ] {
        let r = f.run(args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--yes"), "{args:?}: {}", r.stderr);
        assert_eq!(f.snapshot(), before, "{args:?} changed the file");
    }
}

#[test]
fn a_large_dlq_is_redriven_with_a_progress_bar() {
    const N: usize = 100_000;
    let f = Fixture::new();
    f.fragile("g", "t");
    let batch: Vec<ferrymq::Message> = (0..10_000)
        .map(|i| ferrymq::Message::new("t", format!("m{i}")))
        .collect();
    for _ in 0..N / 10_000 {
        f.q.publish_batch(&batch).unwrap();
    }
    assert_eq!(f.fail("g", N, "boom"), N);
    assert_eq!(f.q.stats().unwrap().groups["g"].dead, N as u64);

    let r = f.run(&["--json", "dlq", "redrive", "-g", "g", "--yes", "--progress"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json(), json!({"group": "g", "redriven": N}));
    assert!(
        r.stderr.contains("redriving") && r.stderr.contains(&format!("{N}/{N}")),
        "{}",
        r.stderr
    );
    let g = &f.q.stats().unwrap().groups["g"];
    assert_eq!(
        (g.ready, g.dead, g.retrying, g.scheduled),
        (N as u64, 0, 0, 0)
    );
}

#[test]
fn redrive_keeps_to_its_rate_in_whole_pages() {
    // --rate 2 with 3 letters: pages of 2; the run asks for the next page only after
    // the first page's second has passed. Asserted on the outcome, not on time.
    let f = Fixture::new();
    f.fragile("g", "t");
    for i in 0..3 {
        f.publish("t", &format!("m{i}"), PublishOptions::new());
    }
    f.fail("g", 3, "boom");
    let r = f.run(&[
        "--json", "dlq", "redrive", "-g", "g", "--yes", "--rate", "2",
    ]);
    assert_eq!(r.json(), json!({"group": "g", "redriven": 3}));
    assert_eq!(
        f.run(&["dlq", "redrive", "-g", "g", "--yes", "--rate", "0"])
            .code,
        2
    );
}

#[test]
fn half_messages_are_listed_committed_and_rolled_back() {
    let f = Fixture::new();
    f.q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    let a =
        f.q.prepare("t", "a", PublishOptions::new().key("ka"))
            .unwrap();
    let b = f.q.prepare("t", "b", PublishOptions::new()).unwrap();
    let list = f.run(&["--json", "half", "list"]).json();
    let lib = f.q.half_messages(None, 1000).unwrap();
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, lib.iter().map(|m| m.id).collect::<Vec<_>>());
    assert_eq!(list[0]["state"], json!("half"));
    assert!(f.run(&["half", "list"]).stdout.contains("ka"));

    let r = f.run(&["--json", "half", "commit", &a.id.to_string()]);
    assert_eq!(r.json(), json!({"id": a.id, "state": "committed"}));
    assert_eq!(f.run(&["half", "rollback", &b.id.to_string()]).code, 0);
    assert_eq!(f.q.stats().unwrap().groups["g"].ready, 1);
    let rolled = f
        .run(&["--json", "half", "list", "--state", "rolled_back"])
        .json();
    assert_eq!(rolled[0]["id"], json!(b.id));
    // Deciding the other way is refused and changes nothing.
    assert_eq!(f.run(&["half", "rollback", &a.id.to_string()]).code, 2);
    assert_eq!(f.run(&["half", "commit", "999"]).code, 3);
    assert_eq!(f.run(&["half", "list", "--state", "committed"]).code, 2);
}

#[test]
fn purge_acked_vacuum_and_check() {
    let f = Fixture::new();
    f.q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    for i in 0..50 {
        f.publish("t", &"x".repeat(2000 + i), PublishOptions::new());
    }
    for d in f.q.receive("g", ReceiveOptions::new().max(50)).unwrap() {
        f.q.ack(&d).unwrap();
    }
    assert_eq!(
        f.run(&["--json", "purge-acked", "--older-than", "1h"])
            .json(),
        json!({"purged": 0})
    );
    std::thread::sleep(Duration::from_millis(20));
    let r = f
        .run(&["--json", "purge-acked", "--older-than", "10ms"])
        .json();
    // The newest message is always kept, so SQLite never reuses its id.
    assert_eq!(r, json!({"purged": 49}));
    let freed = f.run(&["--json", "vacuum", "--pages", "1"]).json();
    assert_eq!(freed, json!({"pages_freed": 1}));
    assert!(
        f.run(&["--json", "vacuum"]).json()["pages_freed"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(f.run(&["vacuum", "--pages", "0"]).code, 2);

    let c = f.run(&["--json", "check"]);
    assert_eq!(c.code, 0);
    let lib = f.q.check_file().unwrap();
    assert_eq!(
        c.json(),
        json!({
            "ok": true,
            "integrity": ["ok"],
            "schema_version": lib.schema_version,
            "expected_schema_version": lib.expected_schema_version,
            "application_id": 0x4672_7279,
            "expected_application_id": 0x4672_7279,
        })
    );
    assert!(f.run(&["check"]).stdout.contains("0x46727279"));
}

#[test]
fn check_fails_on_a_file_that_is_not_a_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let c = ferrymq::rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("PRAGMA application_id = 7; CREATE TABLE x(a);")
        .unwrap();
    drop(c);
    let bytes = std::fs::read(&path).unwrap();
    let r = run(&path, &["check"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stderr.is_empty());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the foreign file changed"
    );
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![7u8; 8192]).unwrap();
    assert_eq!(run(&garbage, &["check"]).code, 1);
}

#[test]
fn bad_input_gets_a_message_and_its_exit_code_and_changes_nothing() {
    let f = busy_file();
    let before = f.snapshot();
    let cases: &[(&[&str], i32)] = &[
        (&["show", "abc"], 2),
        (&["show", "999999"], 3),
        (&["trace", "999999"], 3),
        (&["nonsense"], 2),
        (&["stats", "--watch", "0"], 2),
        (&["stats", "--watch", "-1"], 2),
        (&["find", "bad topic", "--key", "k"], 2),
        (&["tail", "payments", "--group", "nobody"], 3),
        (&["tail", "payments", "--group", "mail"], 2),
        (&["dlq", "list", "-g", "nobody"], 3),
        (&["dlq", "list", "-g", "pay", "--limit", "0"], 2),
        (&["dlq", "redrive", "-g", "nobody", "--yes"], 3),
        (&["dlq", "redrive", "-g", "pay", "--ids", "x,2", "--yes"], 2),
        (
            &[
                "dlq",
                "redrive",
                "-g",
                "pay",
                "--ids",
                "1",
                "--older-than",
                "1d",
            ],
            2,
        ),
        (
            &["dlq", "purge", "-g", "pay", "--older-than", "7y", "--yes"],
            2,
        ),
        (&["purge-acked", "--older-than", "soon"], 2),
        (&["purge-acked"], 2),
        (&["export", "nope"], 3),
        (&["import", "/no/such/file.jsonl"], 3),
    ];
    for (args, code) in cases {
        let r = f.run(args);
        assert_eq!(r.code, *code, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(!r.stderr.trim().is_empty(), "{args:?}: no message");
        assert_eq!(f.snapshot(), before, "{args:?} changed the file");
    }
    let missing = f.dir.path().join("missing.db");
    let r = run(&missing, &["stats"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("does not exist"));
    assert!(!missing.exists(), "a missing file was created");
    assert_eq!(run_bare(&["stats"]).code, 2);
    let r = common::command(&f.db())
        .env("FERRYMQ_DB", "/x")
        .arg("topics")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "--db wins over the environment");

    // A bad line anywhere in an import file: nothing is published.
    let file = f.dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"id\":1,\"topic\":\"emails\",\"payload\":\"ok\"}\n{\"id\":2,\"topic\":\"emails\"}\n",
    )
    .unwrap();
    let r = f.run(&["import", file.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(":2:") && r.stderr.contains("payload"),
        "{}",
        r.stderr
    );
    std::fs::write(&file, "{\"id\":1,\"topic\":\"emails\",\"payload\":\"ok\"}\n{\"id\":2,\"topic\":\"bad topic\",\"payload\":\"x\"}\n").unwrap();
    assert_eq!(f.run(&["import", file.to_str().unwrap()]).code, 2);
    assert_eq!(f.snapshot(), before, "a refused import changed the file");
}

#[test]
fn export_then_import_into_a_fresh_file_is_equal_message_for_message() {
    let f = Fixture::new();
    f.q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    f.publish("t", "plain", PublishOptions::new());
    f.q.publish(
        "t",
        [0u8, 159, 146, 150, 255],
        PublishOptions::new().tag("bin"),
    )
    .unwrap();
    f.publish(
        "t",
        "{\"order\": 7}\nline two",
        PublishOptions::new()
            .tag("a")
            .key("k")
            .header("h1", "v1")
            .header("h2", "")
            .ordering_key("o"),
    );
    f.publish("other", "not exported", PublishOptions::new());
    for i in 0..1_200 {
        f.publish(
            "t",
            &format!("bulk {i}"),
            PublishOptions::new().key(format!("k{i}")),
        );
    }
    let file = f.dir.path().join("t.jsonl");
    let r = f.run(&["--json", "export", "t", "--output", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["exported"], json!(1_203));
    // The same lines on stdout; refused over an existing file.
    assert_eq!(
        f.run(&["export", "t"]).stdout,
        std::fs::read_to_string(&file).unwrap()
    );
    assert_eq!(
        f.run(&["export", "t", "-o", file.to_str().unwrap()]).code,
        2
    );
    let from = f.run(&["export", "t", "--from-id", "2"]).stdout;
    assert_eq!(from.lines().count(), 1_201);

    let fresh = f.dir.path().join("fresh.db");
    let r = run(&fresh, &["--json", "import", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json(),
        json!({"records": 1_203, "added": 1_203, "already_there": 0})
    );
    let again = run(&fresh, &["--json", "import", file.to_str().unwrap()]);
    assert_eq!(
        again.json(),
        json!({"records": 1_203, "added": 0, "already_there": 1_203})
    );

    let q = Queue::open(&fresh, ferrymq::Options::default()).unwrap();
    let all = |q: &Queue| {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = q.messages_after("t", after, 1_000).unwrap();
            let Some(last) = page.last() else { break };
            after = last.id;
            out.extend(page);
        }
        out
    };
    let (src, dst) = (all(&f.q), all(&q));
    assert_eq!(src.len(), dst.len());
    for (a, b) in src.iter().zip(&dst) {
        assert_eq!(
            (
                &a.topic,
                &a.tag,
                &a.key,
                &a.headers,
                &a.ordering_key,
                &a.payload
            ),
            (
                &b.topic,
                &b.tag,
                &b.key,
                &b.headers,
                &b.ordering_key,
                &b.payload
            )
        );
    }
    assert_eq!(q.stats().unwrap().topics["t"].messages, 1_203);
    assert!(!q.stats().unwrap().topics.contains_key("other"));
}

#[test]
fn pause_and_resume_hold_and_release_a_group() {
    let f = busy_file();
    let j = f.run(&["--json", "pause", "mail"]).json();
    assert_eq!(j, json!({"group": "mail", "paused": true}));
    assert!(f.q.stats().unwrap().groups["mail"].paused);
    assert!(
        f.q.receive("mail", ReceiveOptions::new())
            .unwrap()
            .is_empty()
    );
    let groups = f.run(&["--json", "groups"]).json();
    let mail = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "mail");
    assert_eq!(mail.unwrap()["paused"], json!(true));
    // Pausing twice is not an error.
    assert_eq!(f.run(&["pause", "mail"]).code, 0);

    let r = f.run(&["resume", "mail"]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "consumer group mail resumed")
    );
    assert!(!f.q.stats().unwrap().groups["mail"].paused);
    assert_eq!(f.q.receive("mail", ReceiveOptions::new()).unwrap().len(), 1);

    let before = f.snapshot();
    let r = f.run(&["pause", "nobody"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nobody"), "{}", r.stderr);
    let r = f.run(&["--json", "resume", "bad name"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(f.run(&["pause"]).code, 2);
    assert_eq!(f.snapshot(), before);
}

#[test]
fn schedules_are_listed_and_removed_with_a_confirmation() {
    let f = busy_file();
    f.q.schedule(
        "nightly",
        "reports",
        "run",
        ferrymq::ScheduleOptions::new()
            .cron("0 2 * * *")
            .tz("Europe/Paris")
            .repeat(3),
    )
    .unwrap();
    f.q.schedule(
        "poll",
        "mail",
        "tick",
        ferrymq::ScheduleOptions::new().every(std::time::Duration::from_secs(90)),
    )
    .unwrap();
    let list = f.run(&["--json", "schedules"]).json();
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap()
    };
    let nightly = by_name("nightly");
    assert_eq!(nightly["cron"], json!("0 2 * * *"));
    assert_eq!(nightly["tz"], json!("Europe/Paris"));
    assert_eq!(nightly["repeat_left"], json!(3));
    assert_eq!(nightly["missed"], json!("once"));
    assert_eq!(by_name("poll")["every_ms"], json!(90_000));
    let table = f.run(&["schedules"]);
    assert!(table.stdout.contains("every 1m30s"), "{}", table.stdout);
    assert!(table.stdout.contains("Europe/Paris"), "{}", table.stdout);

    // Destructive: refused off a terminal without --yes, and nothing changes.
    let r = f.run(&["unschedule", "nightly"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(f.q.schedules().unwrap().len(), 2);
    let j = f.run(&["--json", "unschedule", "nightly", "--yes"]).json();
    assert_eq!(j, json!({"schedule": "nightly", "removed": true}));
    let names: Vec<String> =
        f.q.schedules()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
    assert_eq!(names, ["poll"]);
    let r = f.run(&["unschedule", "nightly", "--yes"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
}

#[test]
fn metrics_prints_the_exposition_of_the_file() {
    let f = busy_file();
    f.q.pause("mail").unwrap();
    let r = f.run(&["metrics"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = f.q.stats().unwrap();
    for (name, g) in &s.groups {
        let labels = format!("{{topic=\"{}\",consumer_group=\"{name}\"}}", g.topic);
        for (metric, n) in [
            ("ferrymq_messages_ready", g.ready),
            ("ferrymq_messages_dead", g.dead),
            ("ferrymq_messages_inflight", g.inflight),
            ("ferrymq_group_paused", u64::from(g.paused)),
        ] {
            let line = format!("{metric}{labels} {n}\n");
            assert!(r.stdout.contains(&line), "{line} in\n{}", r.stdout);
        }
    }
    assert!(
        r.stdout
            .contains("ferrymq_half_messages{topic=\"payments\",state=\"half\"} 1\n")
    );
}

#[test]
fn reason_is_recorded_with_the_action_and_audit_lists_the_trail() {
    let f = busy_file();
    let dead = f.q.dead_letters("pay", 10).unwrap()[0]
        .message_id
        .to_string();
    let r = f.run(&["--reason", "incident 42", "pause", "mail"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The global flag also goes after the subcommand.
    let r = f.run(&[
        "dlq", "redrive", "--group", "pay", "--ids", &dead, "--reason", "replay",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(f.run(&["resume", "mail"]).code, 0);

    let db = f.db().display().to_string();
    let j = run_bare(&["audit", &db, "--json"]).json();
    let list = j.as_array().unwrap();
    assert_eq!(list.len(), 3, "{j:#}");
    let lib = f.q.audit(None, 10).unwrap();
    assert_eq!(list[0]["id"], json!(lib[0].id));
    assert_eq!(
        (&list[0]["action"], &list[0]["target"], &list[0]["reason"]),
        (&json!("pause"), &json!("mail"), &json!("incident 42"))
    );
    assert_eq!(list[0]["detail"], json!({"changed": true}));
    assert_eq!(list[0]["process"], json!("ferrymq"));
    assert_eq!(list[0]["user"], json!(lib[0].user));
    assert_ne!(list[0]["pid"], json!(std::process::id()));
    assert_eq!(list[1]["action"], json!("redrive"));
    assert_eq!(list[1]["reason"], json!("replay"));
    assert_eq!(list[1]["detail"]["count"], json!(1));
    assert_eq!(
        (&list[2]["action"], &list[2]["reason"]),
        (&json!("resume"), &Value::Null)
    );

    let after = lib[0].id.to_string();
    let j = f
        .run(&["--json", "audit", "--after", &after, "--limit", "1"])
        .json();
    assert_eq!(j.as_array().unwrap().len(), 1);
    assert_eq!(j[0]["id"], json!(lib[1].id));
    let table = f.run(&["audit"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("incident 42"), "{}", table.stdout);
    assert!(table.stdout.contains("redrive"), "{}", table.stdout);
    assert_eq!(f.run(&["audit", "--limit", "0"]).code, 2);

    // A reason with a command the trail does not record, or a blank one: refused, and
    // nothing changes.
    let before = f.snapshot();
    for args in [
        &["--reason", "why", "stats"][..],
        &["--reason", "why", "audit"],
        &["--reason", "  ", "pause", "mail"],
    ] {
        let r = f.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("reason"), "{args:?}: {}", r.stderr);
    }
    assert_eq!(f.snapshot(), before);
    assert_eq!(f.q.audit(None, 10).unwrap().len(), 3);
}
