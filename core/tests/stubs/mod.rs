//! Type declarations generated from `ferrymq::RECORDS`: a binding's stub file keeps its
//! records between two marker lines, and a test renders them anew and compares. Run the
//! test with `FERRYMQ_WRITE_STUBS=1` to rewrite the section instead of failing.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub const BEGIN: &str = "records: generated from ferrymq::RECORDS";
pub const END: &str = "end of generated records";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compares the lines between the markers of `rel` with `generated`, or rewrites them
/// when `FERRYMQ_WRITE_STUBS` is set. The marker lines stay as the file has them (each
/// language comments them its own way).
pub fn check_section(rel: &str, generated: &str) {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let begin = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("{rel} has no line with {BEGIN:?}"));
    let start = begin
        + text[begin..]
            .find('\n')
            .expect("a line after the begin marker")
        + 1;
    let end_marker = text[start..]
        .find(END)
        .unwrap_or_else(|| panic!("{rel} has no line with {END:?}"))
        + start;
    let end = text[..end_marker].rfind('\n').map_or(start, |i| i + 1);
    let current = &text[start..end];
    if current == generated {
        return;
    }
    if std::env::var_os("FERRYMQ_WRITE_STUBS").is_some() {
        let updated = format!("{}{}{}", &text[..start], generated, &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "{rel}: the generated records are stale; run \
         FERRYMQ_WRITE_STUBS=1 cargo test -p ferrymq --test <this test> and commit"
    );
}

/// The last segment of a type as `stringify!` wrote it, generics kept:
/// `:: std :: option :: Option < :: std :: string :: String >` → `Option<String>`.
pub fn short_type(ty: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let spaced = ty
        .replace('<', " < ")
        .replace('>', " > ")
        .replace(',', " , ");
    for token in spaced.split_whitespace() {
        match token {
            "::" => word.clear(),
            "<" | ">" | "," => {
                out.push_str(&word);
                word.clear();
                out.push_str(token);
            }
            "$crate" | "crate" => {}
            t => word = t.to_string(),
        }
    }
    out.push_str(&word);
    out.replace(',', ", ")
}

#[test]
fn short_types_read_as_written() {
    assert_eq!(
        short_type(":: std :: option :: Option < :: std :: string :: String >"),
        "Option<String>"
    );
    assert_eq!(
        short_type(
            ":: std :: collections :: BTreeMap < :: std :: string :: String, $crate :: DeliveryInfo >"
        ),
        "BTreeMap<String, DeliveryInfo>"
    );
    assert_eq!(short_type("u64"), "u64");
}
