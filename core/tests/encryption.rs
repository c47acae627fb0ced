//! Encryption at rest: what reaches the disk, every way of opening a file wrongly (each a
//! typed error that leaves the bytes as they were), rotation while other processes write,
//! conversion, and secure deletion of purged payloads.

mod common;

use common::{child_role, spawn_child};
use ferrymq::{
    ErrorKind, Key, Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PAYLOAD: &str = "IBAN-DE89370400440532013000-amount-4711.00";
const HEADER: &str = "customer-Hildegard-Piepenbrink";
const PASSPHRASE: &str = "correct horse battery staple";

fn passphrase() -> Key {
    Key::passphrase(PASSPHRASE).unwrap()
}

/// The file and its `-wal`, `-shm`, as they are on disk.
fn bytes(path: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let p = PathBuf::from(format!("{}{suffix}", path.display()));
            let b = std::fs::read(&p).ok();
            (p, b)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn grep(path: &Path, needle: &str) -> Vec<PathBuf> {
    bytes(path)
        .into_iter()
        .filter(|(_, b)| b.as_deref().is_some_and(|b| contains(b, needle.as_bytes())))
        .map(|(p, _)| p)
        .collect()
}

fn publish_secrets(q: &Queue, n: usize) {
    q.subscribe("payments", "pay", SubscribeOptions::new())
        .unwrap();
    for i in 0..n {
        q.publish(
            "pay",
            format!("{PAYLOAD}-{i}").as_bytes(),
            PublishOptions::new()
                .key(format!("order-{i}"))
                .header("customer", HEADER),
        )
        .unwrap();
    }
}

#[test]
fn an_encrypted_file_holds_no_plaintext_payload_header_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default().key(passphrase())).unwrap();
    publish_secrets(&q, 200);
    // The WAL holds the pages now; look at it before and after a checkpoint.
    for needle in [
        PAYLOAD,
        HEADER,
        PASSPHRASE,
        "ferrymq_messages",
        "SQLite format 3",
    ] {
        assert_eq!(grep(&path, needle), Vec::<PathBuf>::new(), "{needle}");
    }
    let got = q
        .receive("payments", ReceiveOptions::new().max(10))
        .unwrap();
    assert_eq!(got.len(), 10);
    assert!(String::from_utf8_lossy(&got[0].payload).starts_with(PAYLOAD));
    q.close().unwrap();
    // Closing checkpoints the WAL into the file.
    for needle in [
        PAYLOAD,
        HEADER,
        PASSPHRASE,
        "ferrymq_messages",
        "SQLite format 3",
    ] {
        assert_eq!(grep(&path, needle), Vec::<PathBuf>::new(), "{needle}");
    }
    // The same passphrase opens it again, and everything is there.
    let q = Queue::open(&path, Options::default().key(passphrase())).unwrap();
    assert_eq!(q.stats().unwrap().groups["payments"].ready, 190);
}

#[test]
fn a_raw_key_works_like_a_passphrase_and_is_not_interchangeable_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let raw = Key::raw(&[0x5a; 32]).unwrap();
    let q = Queue::open(&path, Options::default().key(raw.clone())).unwrap();
    publish_secrets(&q, 3);
    q.close().unwrap();
    assert!(grep(&path, PAYLOAD).is_empty());
    let err = Queue::open(&path, Options::default().key(passphrase())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encryption, "{err}");
    let q = Queue::open(&path, Options::default().key(raw)).unwrap();
    assert_eq!(q.stats().unwrap().groups["payments"].ready, 3);
}

/// An encrypted file with a few messages, closed (so it is all in the main file).
fn encrypted_file(dir: &Path) -> PathBuf {
    let path = dir.join("q.db");
    let q = Queue::open(&path, Options::default().key(passphrase())).unwrap();
    publish_secrets(&q, 5);
    q.close().unwrap();
    path
}

fn plain_file(dir: &Path) -> PathBuf {
    let path = dir.join("plain.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    publish_secrets(&q, 5);
    q.close().unwrap();
    path
}

/// Opening `path` with `options` fails with an `Encryption` error naming `says`, and the
/// file (with its -wal and -shm) is byte for byte what it was.
fn refused_unchanged(path: &Path, options: Options, says: &str) {
    refused_as(ErrorKind::Encryption, path, options, says);
}

fn refused_as(kind: ErrorKind, path: &Path, options: Options, says: &str) {
    let before = bytes(path);
    let err = Queue::open(path, options).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.to_string().contains(says), "{err}");
    assert!(bytes(path) == before, "the open changed the file");
}

#[test]
fn a_wrong_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    refused_unchanged(
        &path,
        Options::default().key(Key::passphrase("wrong").unwrap()),
        "wrong key",
    );
    refused_unchanged(
        &path,
        Options::default().key(Key::raw(&[1; 32]).unwrap()),
        "wrong key",
    );
}

#[test]
fn an_encrypted_file_opened_without_a_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    refused_unchanged(&path, Options::default(), "is encrypted");
}

#[test]
fn a_plain_file_opened_with_a_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = plain_file(dir.path());
    refused_unchanged(&path, Options::default().key(passphrase()), "plain");
}

#[test]
fn a_truncated_encrypted_file_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    let whole = std::fs::read(&path).unwrap();
    for len in [10, 4096 + 100, whole.len() - 1] {
        std::fs::write(&path, &whole[..len]).unwrap();
        refused_unchanged(&path, Options::default().key(passphrase()), "cut short");
        // Without a key it could be anything: not a database.
        refused_as(ErrorKind::Storage, &path, Options::default(), "cut short");
    }
}

#[test]
fn a_provider_is_asked_for_keys_and_its_failures_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    let q = Queue::open(
        &path,
        Options::default().key_provider(|| Ok(vec![Key::passphrase("old").unwrap(), passphrase()])),
    )
    .unwrap();
    assert_eq!(q.stats().unwrap().groups["payments"].ready, 5);
    q.close().unwrap();
    let failures: Vec<(Options, &str)> = vec![
        (
            Options::default().key_provider(|| Err("KMS unreachable".into())),
            "KMS unreachable",
        ),
        (
            Options::default().key_provider(|| panic!("provider bug")),
            "provider bug",
        ),
        (Options::default().key_provider(|| Ok(vec![])), "no key"),
        (
            Options::default().key_provider(|| {
                Ok(vec![
                    Key::passphrase("a").unwrap(),
                    Key::passphrase("b").unwrap(),
                ])
            }),
            "none of the 2 keys",
        ),
    ];
    for (options, says) in failures {
        refused_unchanged(&path, options, says);
    }
}

#[test]
fn rekey_moves_this_queue_and_a_provider_moves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    let keys = Arc::new(Mutex::new(vec![passphrase()]));
    let source = Arc::clone(&keys);
    let follower = Queue::open(
        &path,
        Options::default().key_provider(move || Ok(source.lock().unwrap().clone())),
    )
    .unwrap();
    let stuck = Queue::open(&path, Options::default().key(passphrase())).unwrap();
    let q = Queue::open(&path, Options::default().key(passphrase())).unwrap();
    // Every queue has a pooled connection keyed with the old key.
    for x in [&follower, &stuck, &q] {
        x.stats().unwrap();
    }
    let new = Key::raw(&[9; 32]).unwrap();
    keys.lock().unwrap().insert(0, new.clone());
    q.rekey(new.clone()).unwrap();
    q.publish("pay", b"after rekey".as_slice(), PublishOptions::new())
        .unwrap();
    // The follower's provider lists the new key: it reopens without an error.
    assert_eq!(follower.stats().unwrap().groups["payments"].ready, 6);
    let err = stuck.stats().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Encryption, "{err}");
    drop((q, follower, stuck));
    refused_unchanged(&path, Options::default().key(passphrase()), "wrong key");
    let q = Queue::open(&path, Options::default().key(new)).unwrap();
    assert_eq!(q.stats().unwrap().groups["payments"].ready, 6);
}

#[test]
fn an_open_that_read_its_keys_before_a_rotation_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    let new = Key::raw(&[7; 32]).unwrap();
    Queue::open(&path, Options::default().key(passphrase()))
        .unwrap()
        .rekey(new.clone())
        .unwrap();
    // The provider's first answer was read just before the rotation: only the old key.
    let asked = Arc::new(Mutex::new(0));
    let count = Arc::clone(&asked);
    let q = Queue::open(
        &path,
        Options::default().key_provider(move || {
            let mut n = count.lock().unwrap();
            *n += 1;
            Ok(if *n == 1 {
                vec![passphrase()]
            } else {
                vec![new.clone(), passphrase()]
            })
        }),
    )
    .unwrap();
    assert_eq!(q.stats().unwrap().groups["payments"].ready, 5);
    assert_eq!(*asked.lock().unwrap(), 2);
}

#[test]
fn rekey_of_a_plain_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path().join("q.db"), Options::default()).unwrap();
    let err = q.rekey(passphrase()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn encrypt_and_decrypt_copy_everything_and_report_progress() {
    let dir = tempfile::tempdir().unwrap();
    let plain = plain_file(dir.path());
    let enc = dir.path().join("enc.db");
    let mut seen = Vec::new();
    ferrymq::encrypt_file(&plain, &enc, &passphrase(), |done, total| {
        seen.push((done, total))
    })
    .unwrap();
    let (done, total) = *seen.last().unwrap();
    assert!(total > 0 && done == total, "{seen:?}");
    assert!(grep(&enc, PAYLOAD).is_empty());
    let q = Queue::open(&enc, Options::default().key(passphrase())).unwrap();
    assert_eq!(q.stats().unwrap().groups["payments"].ready, 5);
    let d = q.receive("payments", ReceiveOptions::new()).unwrap();
    assert!(String::from_utf8_lossy(&d[0].payload).starts_with(PAYLOAD));
    q.close().unwrap();

    let back = dir.path().join("back.db");
    let wrong =
        ferrymq::decrypt_file(&enc, &back, &Key::passphrase("x").unwrap(), |_, _| {}).unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Encryption, "{wrong}");
    assert!(!back.exists());
    ferrymq::decrypt_file(&enc, &back, &passphrase(), |_, _| {}).unwrap();
    assert!(!grep(&back, PAYLOAD).is_empty());
    let q = Queue::open(&back, Options::default()).unwrap();
    let group = &q.stats().unwrap().groups["payments"];
    assert_eq!((group.ready, group.inflight), (4, 1));

    for (src, dst) in [(&plain, &back), (&enc, &plain)] {
        let err = ferrymq::encrypt_file(src, dst, &passphrase(), |_, _| {}).unwrap_err();
        assert_ne!(err.kind(), ErrorKind::Storage, "{err}");
    }
}

#[test]
fn purged_payloads_are_not_in_the_file_or_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = Queue::open(&path, Options::default()).unwrap();
    q.subscribe(
        "payments",
        "pay",
        SubscribeOptions::new().retry(ferrymq::RetryPolicy::Fixed(vec![])),
    )
    .unwrap();
    let secret = "SECRET-ACCOUNT-77441100";
    let filler = "x".repeat(3000);
    q.publish(
        "pay",
        format!("{secret}{filler}").as_bytes(),
        PublishOptions::new(),
    )
    .unwrap();
    q.publish(
        "pay",
        b"the newest message stays".as_slice(),
        PublishOptions::new(),
    )
    .unwrap();
    let d = q.receive("payments", ReceiveOptions::new()).unwrap();
    q.nack(&d[0], "declined", None).unwrap();
    assert_eq!(q.dead_letters("payments", 10).unwrap().len(), 1);
    assert!(!grep(&path, secret).is_empty(), "the payload was written");
    assert_eq!(q.purge_dead_letters("payments", None).unwrap(), 1);
    assert!(q.purge_acked(Duration::ZERO).unwrap() >= 1);
    assert_eq!(grep(&path, secret), Vec::<PathBuf>::new());
    q.close().unwrap();
    assert_eq!(grep(&path, secret), Vec::<PathBuf>::new());
}

/// Four writer processes publish with idempotency keys while the file is rekeyed under
/// them three times; their provider lists the new key before each rotation. Every
/// message is there exactly once.
#[test]
fn rotation_under_four_writer_processes_loses_nothing() {
    const PER_WRITER: usize = 300;
    if child_role(|role| writer(role, PER_WRITER)) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let keyfile = dir.path().join("keys");
    let gens = |n: u8| (0..=n).rev().map(|g| format!("{g}")).collect::<Vec<_>>();
    // A key file is replaced by a rename, never rewritten in place: a writer that reads it
    // halfway through a rewrite would see no key or only the one not in use yet.
    let publish_keys = |g: u8| {
        let next = dir.path().join("keys.next");
        std::fs::write(&next, gens(g).join("\n")).unwrap();
        std::fs::rename(&next, &keyfile).unwrap();
    };
    publish_keys(0);
    let q = Queue::open(&path, Options::default().key(gen_key("0"))).unwrap();
    q.subscribe("audit", "pay", SubscribeOptions::new())
        .unwrap();
    let envs = [
        ("FERRYMQ_TEST_DB", path.display().to_string()),
        ("FERRYMQ_TEST_KEYS", keyfile.display().to_string()),
    ];
    let children: Vec<_> = (0..4)
        .map(|w| {
            spawn_child(
                "rotation_under_four_writer_processes_loses_nothing",
                &w.to_string(),
                &envs,
            )
        })
        .collect();
    for g in 1..=3u8 {
        std::thread::sleep(Duration::from_millis(300));
        publish_keys(g);
        q.rekey(gen_key(&g.to_string())).unwrap();
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(out.status.success());
    }
    let mut seen = HashSet::new();
    let mut after = 0;
    loop {
        let page = q.messages_after("pay", after, 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        for m in &page {
            assert!(seen.insert(m.key.clone().unwrap()), "twice: {:?}", m.key);
        }
    }
    assert_eq!(seen.len(), 4 * PER_WRITER);
    println!("{} messages, each once, across 3 rotations", seen.len());
    // Only the last key opens the file now.
    drop(q);
    refused_unchanged(&path, Options::default().key(gen_key("2")), "wrong key");
}

fn gen_key(generation: &str) -> Key {
    Key::passphrase(format!("generation-{generation}")).unwrap()
}

/// A writer: publishes `n` messages with idempotency keys, retrying each until it lands
/// (an error says nothing about whether a publish happened; the key makes a retry safe).
fn writer(role: &str, n: usize) {
    let keyfile = std::env::var("FERRYMQ_TEST_KEYS").unwrap();
    let q = Queue::open(
        std::env::var("FERRYMQ_TEST_DB").unwrap(),
        Options::default().key_provider(move || {
            let text = std::fs::read_to_string(&keyfile).map_err(|e| e.to_string())?;
            Ok(text.lines().map(gen_key).collect())
        }),
    )
    .unwrap();
    let mut errors = 0;
    for i in 0..n {
        let key = format!("w{role}-{i}");
        let msg = Message::new("pay", key.as_bytes().to_vec())
            .key(key.clone())
            .with_options(PublishOptions::new().key(key.clone()).idempotency_key(key));
        loop {
            match q.publish_batch(std::slice::from_ref(&msg)) {
                Ok(_) => break,
                Err(e) => {
                    errors += 1;
                    assert!(errors < 1000, "writer {role}: {e}");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    println!("writer {role}: {n} published, {errors} retried");
}

#[test]
fn many_queues_creating_one_encrypted_file_at_once_all_open_it() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let start = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let q = Queue::open(&path, Options::default().key(passphrase()))?;
                    q.publish("t", b"x".as_slice(), PublishOptions::new())
                })
            })
            .collect();
        for o in openers {
            if let Err(e) = o.join().unwrap() {
                panic!("round {round}: {e}");
            }
        }
    }
}

#[test]
fn a_rekey_is_in_the_audit_trail_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = encrypted_file(dir.path());
    let q = Queue::open(&path, Options::default().key(passphrase())).unwrap();
    q.with_reason("SEC-12 yearly rotation")
        .unwrap()
        .rekey(Key::raw(&[3; 32]).unwrap())
        .unwrap();
    let trail = q.audit(None, 10).unwrap();
    let last = trail.last().unwrap();
    assert_eq!(last.action, "rekey");
    assert_eq!(last.reason.as_deref(), Some("SEC-12 yearly rotation"));
    assert_eq!(last.pid, i64::from(std::process::id()));
}
