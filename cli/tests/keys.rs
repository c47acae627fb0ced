//! The CLI on encrypted files: keys from a file or a variable (never the command line),
//! rekey, and encrypt/decrypt copies.

mod common;

use common::{command, run};
use ferrymq::{Key, Options, PublishOptions, Queue, SubscribeOptions};
use std::path::Path;

fn with_key(db: &Path, keyfile: &Path, args: &[&str]) -> common::Run {
    let mut all = vec!["--key-file", keyfile.to_str().unwrap()];
    all.extend_from_slice(args);
    run(db, &all)
}

#[test]
fn the_cli_opens_rekeys_and_converts_encrypted_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let keyfile = dir.path().join("key");
    std::fs::write(&keyfile, "first passphrase\n").unwrap();
    let q = Queue::open(
        &db,
        Options::default().key(Key::passphrase("first passphrase").unwrap()),
    )
    .unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    q.publish("t", b"secret".as_slice(), PublishOptions::new())
        .unwrap();
    q.close().unwrap();

    let r = run(&db, &["stats"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("encrypted"), "{}", r.stderr);
    let r = with_key(&db, &keyfile, &["--json", "groups"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()[0]["ready"], 1);

    // The key may come from a variable too.
    let out = command(&db)
        .args(["--key-env", "MY_KEY", "groups"])
        .env("MY_KEY", "first passphrase")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let newfile = dir.path().join("new");
    let raw = format!("x'{}'", "0F".repeat(32));
    std::fs::write(&newfile, format!("{raw}\n")).unwrap();
    let r = with_key(
        &db,
        &keyfile,
        &["rekey", "--new-key-file", newfile.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = with_key(&db, &keyfile, &["groups"]);
    assert_eq!(r.code, 1, "the old key still opens it: {}", r.stdout);
    assert!(r.stderr.contains("wrong key"), "{}", r.stderr);
    // During a rotation the key file lists the new key first, then the old one.
    std::fs::write(&keyfile, format!("{raw}\nfirst passphrase\n")).unwrap();
    assert_eq!(with_key(&db, &keyfile, &["groups"]).code, 0);

    let plain = dir.path().join("plain.db");
    let r = with_key(
        &db,
        &keyfile,
        &["decrypt", plain.to_str().unwrap(), "--progress"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(run(&plain, &["--json", "groups"]).json()[0]["ready"], 1);
    let again = dir.path().join("again.db");
    let r = run(
        &plain,
        &[
            "encrypt",
            again.to_str().unwrap(),
            "--new-key-file",
            keyfile.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        with_key(&again, &keyfile, &["--json", "groups"]).json()[0]["ready"],
        1
    );
    let r = run(
        &plain,
        &[
            "encrypt",
            again.to_str().unwrap(),
            "--new-key-file",
            keyfile.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 2, "an existing output is refused: {}", r.stderr);
    let r = run(&plain, &["rekey", "--new-key-env", "X"]);
    assert_ne!(r.code, 0);
}
