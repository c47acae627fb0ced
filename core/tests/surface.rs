//! Every verb of `ferrymq::VERBS` exists in all four languages under its name (snake_case
//! in Rust and Python, camelCase in Node and Kotlin). The public surface of each binding is
//! read from its source: the Python stubs and package, the Node type declarations, the
//! Kotlin classes. A verb missing anywhere fails this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The lines of the block that starts at the first line containing `header` and ends at
/// the next line that starts at column 0 with `end`.
fn block<'a>(text: &'a str, header: &str, end: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| !l.contains(header));
    let first = lines.next();
    assert!(first.is_some(), "no {header:?}");
    lines.take_while(|l| !l.starts_with(end)).collect()
}

/// The identifier right after `keyword` on a line, if the line is not private.
fn names_after(lines: &[&str], keyword: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| !l.contains("private ") && !l.contains("internal "))
        .filter_map(|l| {
            let at = l.find(keyword)?;
            let before = &l[..at];
            if !before.trim().chars().all(|c| c.is_alphabetic() || c == ' ') {
                return None;
            }
            let rest = l[at + keyword.len()..].trim_start();
            let rest = rest.strip_prefix('<').map_or(rest, |r| {
                r.split_once('>').map_or(r, |(_, after)| after.trim_start())
            });
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Methods of a TypeScript class body: `name(` or `name<T>(` at the start of a line.
fn ts_methods(lines: &[&str]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("static ");
            let name: String = l
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let rest = &l[name.len()..];
            (!name.is_empty() && (rest.starts_with('(') || rest.starts_with('<'))).then_some(name)
        })
        .collect()
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn rust_surface() -> BTreeSet<String> {
    rust_methods("impl Queue {")
}

/// The public methods of every `impl` block of core/src that starts with `header`.
fn rust_methods(header: &str) -> BTreeSet<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(root().join("core/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut inside = false;
            for line in text.lines() {
                if line.starts_with(header) {
                    inside = true;
                } else if line.starts_with('}') {
                    inside = false;
                } else if inside {
                    lines.push(line.to_owned());
                }
            }
        }
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut out = names_after(&lines, "pub fn ");
    out.extend(names_after(&lines, "pub async fn "));
    out
}

fn python_surface() -> BTreeSet<String> {
    let stubs = read("bindings-python/python/ferrymq/_native.pyi");
    let package = read("bindings-python/python/ferrymq/__init__.py");
    let mut out = names_after(&block(&stubs, "class Queue", "class "), "def ");
    out.extend(names_after(
        &block(&stubs, "class Delivery", "class "),
        "def ",
    ));
    out.extend(names_after(
        &block(&package, "class Queue(", "class "),
        "def ",
    ));
    out
}

fn node_surface() -> BTreeSet<String> {
    let types = read("bindings-node/index.d.ts");
    let mut out = ts_methods(&block(&types, "class Queue", "}"));
    out.extend(ts_methods(&block(&types, "class Delivery", "}")));
    out
}

fn kotlin_surface() -> BTreeSet<String> {
    let queue = read("bindings-kotlin/src/main/kotlin/ferrymq/Queue.kt");
    let delivery = read("bindings-kotlin/src/main/kotlin/ferrymq/Delivery.kt");
    let exports = read("bindings-kotlin/src/queue.rs");
    let mut out = names_after(&block(&queue, "class Queue", "}"), "fun ");
    out.extend(names_after(
        &block(&delivery, "class Delivery", "}"),
        "fun ",
    ));
    // FfiQueue's exports taking and returning plain values are members of `Queue` with no
    // Kotlin source (build.sh generates them into QueueCalls.kt, its superclass); the build
    // fails for any other export that Queue.kt does not declare.
    for body in exports.split("\nimpl FfiQueue {").skip(1) {
        let lines: Vec<&str> = body.lines().take_while(|l| !l.starts_with('}')).collect();
        out.extend(names_after(&lines, "pub fn ").iter().map(|n| camel(n)));
    }
    out
}

/// The public methods of each language's transaction (`tx`).
fn tx_surfaces() -> [(&'static str, BTreeSet<String>, bool); 4] {
    let stubs = read("bindings-python/python/ferrymq/_native.pyi");
    let types = read("bindings-node/index.d.ts");
    let kotlin = read("bindings-kotlin/src/main/kotlin/ferrymq/Transaction.kt");
    [
        ("Rust", rust_methods("impl Transaction {"), false),
        (
            "Python",
            names_after(&block(&stubs, "class Transaction", "class "), "def "),
            false,
        ),
        (
            "Node",
            ts_methods(&block(&types, "class Transaction", "}")),
            true,
        ),
        (
            "Kotlin",
            names_after(&block(&kotlin, "class Transaction", "}"), "fun "),
            true,
        ),
    ]
}

#[test]
fn every_transaction_verb_exists_in_every_language() {
    let mut missing = Vec::new();
    for (language, surface, camel_case) in tx_surfaces() {
        assert!(
            surface.contains("publish") && !surface.contains("publishTwice"),
            "{language}: the transaction's surface was not read: {surface:?}"
        );
        for verb in ferrymq::TX_VERBS {
            let name = if camel_case {
                camel(verb)
            } else {
                verb.to_string()
            };
            if !surface.contains(&name) {
                missing.push(format!("{language} lacks tx.{name}"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_verb_exists_in_every_language() {
    let surfaces = [
        ("Rust", rust_surface(), false),
        ("Python", python_surface(), false),
        ("Node", node_surface(), true),
        ("Kotlin", kotlin_surface(), true),
    ];
    let mut missing = Vec::new();
    for (language, surface, camel_case) in &surfaces {
        assert!(
            surface.len() > 10,
            "{language}: the surface was not read: {surface:?}"
        );
        for verb in ferrymq::VERBS {
            let name = if *camel_case {
                camel(verb)
            } else {
                verb.to_string()
            };
            if !surface.contains(&name) {
                missing.push(format!("{language} lacks {name}"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_reader_sees_a_missing_verb() {
    // The parsers above must find methods by name, not by accident: a made-up verb is
    // missing everywhere.
    for surface in [
        rust_surface(),
        python_surface(),
        node_surface(),
        kotlin_surface(),
    ] {
        assert!(!surface.contains("publish_twice") && !surface.contains("publishTwice"));
        assert!(surface.contains("publish"));
    }
}
