//! The record classes of `bindings-python/python/ferrymq/_native.pyi`, rendered from
//! `ferrymq::RECORDS` with the Python type each Rust field type becomes in
//! `bindings-python/src/views.rs` (its `ToHost` impls). Stale stubs fail here; run with
//! `FERRYMQ_WRITE_STUBS=1` to rewrite them.

mod stubs;

use ferrymq::{AttemptOutcome, DeliveryState, MessageState, Missed};

const STUB: &str = "bindings-python/python/ferrymq/_native.pyi";

/// The state enums are their `as_str()` text in Python: a `Literal` of every variant's.
fn literal(texts: &[&str]) -> String {
    let quoted: Vec<String> = texts.iter().map(|t| format!("{t:?}")).collect();
    format!("Literal[{}]", quoted.join(", "))
}

/// One Rust type (as `short_type` writes it, generics split off) in Python.
fn python_type(short: &str) -> String {
    if let Some(inner) = generic(short, "Option") {
        return format!("Optional[{}]", python_type(inner));
    }
    if short == "Vec<u8>" {
        return "bytes".into();
    }
    if let Some(inner) = generic(short, "Vec") {
        return format!("list[{}]", python_type(inner));
    }
    if let Some(inner) = generic(short, "BTreeMap") {
        let (k, v) = inner.split_once(", ").expect("BTreeMap<K, V>");
        return format!("dict[{}, {}]", python_type(k), python_type(v));
    }
    match short {
        "String" => "str".into(),
        "i64" | "i32" | "u32" | "u64" => "int".into(),
        "bool" => "bool".into(),
        "SystemTime" => "datetime.datetime".into(),
        "Duration" => "datetime.timedelta".into(),
        "AttemptOutcome" => literal(
            &[
                AttemptOutcome::Inflight,
                AttemptOutcome::Acked,
                AttemptOutcome::Nacked,
                AttemptOutcome::LeaseExpired,
            ]
            .map(AttemptOutcome::as_str),
        ),
        "DeliveryState" => literal(
            &[
                DeliveryState::Ready,
                DeliveryState::Scheduled,
                DeliveryState::Inflight,
                DeliveryState::Acked,
                DeliveryState::Dead,
            ]
            .map(DeliveryState::as_str),
        ),
        "MessageState" => literal(
            &[
                MessageState::Half,
                MessageState::Committed,
                MessageState::RolledBack,
            ]
            .map(MessageState::as_str),
        ),
        "Missed" => literal(&[Missed::CatchUp, Missed::Once, Missed::Skip].map(Missed::as_str)),
        "Resolution" => "Resolution".into(),
        record if ferrymq::RECORDS.iter().any(|r| r.name == record) => record.into(),
        other => panic!("no Python type for the Rust type {other}: add it here and in views.rs"),
    }
}

/// `inner` of `name<inner>`.
fn generic<'a>(ty: &'a str, name: &str) -> Option<&'a str> {
    ty.strip_prefix(name)?.strip_prefix('<')?.strip_suffix('>')
}

fn docstring(doc: &str, indent: &str) -> String {
    let text = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return String::new();
    }
    format!("{indent}\"\"\"{text}\"\"\"\n")
}

fn render() -> String {
    let mut out = String::new();
    for r in ferrymq::RECORDS {
        out.push_str(&format!("@final\nclass {}:\n", r.name));
        out.push_str(&docstring(r.doc, "    "));
        for (name, ty, doc) in r.fields {
            let py = python_type(&stubs::short_type(ty));
            // Final: read-only to a type checker, as the getter-only attribute is.
            out.push_str(&format!("    {name}: Final[{py}]\n"));
            out.push_str(&docstring(doc, "    "));
        }
        out.push('\n');
    }
    out.push_str("__all__ += [\n");
    for r in ferrymq::RECORDS {
        out.push_str(&format!("    \"{}\",\n", r.name));
    }
    out.push_str("]\n\n");
    out
}

#[test]
fn python_record_stubs_match_the_records() {
    stubs::check_section(STUB, &render());
}

#[test]
fn types_render_as_the_binding_converts_them() {
    assert_eq!(
        python_type(&stubs::short_type(
            ":: std :: option :: Option < :: std :: time :: Duration >"
        )),
        "Optional[datetime.timedelta]"
    );
    assert_eq!(
        python_type("BTreeMap<String, DeliveryInfo>"),
        "dict[str, DeliveryInfo]"
    );
    assert_eq!(python_type("Vec<u8>"), "bytes");
    assert_eq!(
        python_type("Missed"),
        r#"Literal["catch_up", "once", "skip"]"#
    );
}
