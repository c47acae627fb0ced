//! bindings-node/index.d.ts declares the records the addon returns (src/views.rs expands
//! them from `ferrymq::for_each_record!`); this renders their interfaces from
//! `ferrymq::RECORDS` and fails when the file's section differs.
//! `FERRYMQ_WRITE_STUBS=1 cargo test -p ferrymq --test stubs_node` rewrites it.

mod stubs;

use stubs::{check_section, short_type};

/// The TypeScript type of a field type as `short_type` writes it, the way views.rs
/// converts it: `Option` becomes `| null` (napi sets `null`, the key is always there).
fn ts_type(rust: &str) -> String {
    if let Some(inner) = generic(rust, "Option") {
        return format!("{} | null", ts_type(inner));
    }
    if let Some(inner) = generic(rust, "Vec") {
        if inner == "u8" {
            return "Buffer".into();
        }
        let t = ts_type(inner);
        return if t.contains(' ') {
            format!("Array<{t}>")
        } else {
            format!("{t}[]")
        };
    }
    if let Some(inner) = generic(rust, "BTreeMap") {
        let value = inner
            .strip_prefix("String, ")
            .unwrap_or_else(|| panic!("a map keyed by String, not {rust}"));
        return format!("Record<string, {}>", ts_type(value));
    }
    match rust {
        "u32" | "i32" | "i64" | "u64" | "Duration" => "number",
        "String" => "string",
        "bool" => "boolean",
        "SystemTime" => "Date",
        // The state enums as their text; the aliases are declared above the section.
        "AttemptOutcome" => "AttemptOutcome",
        "DeliveryState" => "DeliveryState",
        "MessageState" => "MessageState",
        "Resolution" => "Resolution",
        "Missed" => "MissedPolicy",
        record if ferrymq::RECORDS.iter().any(|r| r.name == record) => record,
        other => panic!("no TypeScript type for {other}: add it to ts_type"),
    }
    .into()
}

fn generic<'a>(ty: &'a str, name: &str) -> Option<&'a str> {
    ty.strip_prefix(name)?.strip_prefix('<')?.strip_suffix('>')
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A doc comment on one line, indented by `indent`; nothing for an empty doc.
fn doc(indent: &str, text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return String::new();
    }
    format!("{indent}/** {} */\n", words.join(" "))
}

fn render() -> String {
    let mut out = String::new();
    for r in ferrymq::RECORDS {
        out.push_str(&doc("", r.doc));
        out.push_str(&format!("export interface {} {{\n", r.name));
        for (name, ty, fdoc) in r.fields {
            let short = short_type(ty);
            let mut text = fdoc.trim().to_string();
            if short.contains("Duration") {
                text.push_str(" In milliseconds.");
            }
            out.push_str(&doc("  ", &text));
            out.push_str(&format!("  {}: {}\n", camel(name), ts_type(&short)));
        }
        out.push_str("}\n\n");
    }
    out
}

#[test]
fn index_d_ts_declares_every_record() {
    check_section("bindings-node/index.d.ts", &render());
}

#[test]
fn types_read_as_the_addon_returns_them() {
    assert_eq!(ts_type("Option<SystemTime>"), "Date | null");
    assert_eq!(ts_type("Vec<u8>"), "Buffer");
    assert_eq!(
        ts_type("BTreeMap<String, DeliveryInfo>"),
        "Record<string, DeliveryInfo>"
    );
    assert_eq!(ts_type("Option<Duration>"), "number | null");
    assert_eq!(camel("oldest_ready_age"), "oldestReadyAge");
}
