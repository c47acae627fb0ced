//! Printing: tables for people, JSON for scripts, colours only when stdout is a terminal
//! (and `NO_COLOR` is unset).

use comfy_table::{ContentArrangement, Table, TableComponent, presets};
use serde_json::Value;
use std::io::{IsTerminal, Write};

pub fn colours() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `text` in ANSI colour `code` (31 red, 32 green, 33 yellow, 1 bold) on a terminal.
pub fn paint(text: impl std::fmt::Display, code: &str) -> String {
    if colours() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// A count, red when it is a problem worth a look (dead letters) and not zero.
pub fn alarm(n: u64) -> String {
    if n > 0 { paint(n, "31") } else { n.to_string() }
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    // Columns apart, one rule under the header: readable, and easy to grep or cut.
    t.load_preset(presets::NOTHING)
        .set_style(TableComponent::HeaderLines, '─')
        .set_style(TableComponent::MiddleHeaderIntersections, '─')
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| paint(h, "1")));
    t
}

pub fn print_table(t: &Table) {
    println!("{t}");
}

/// Pretty JSON, one document.
pub fn json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// What an action did: `v` under `--json`, else the sentence `text`.
pub fn outcome(json: bool, v: Value, text: impl std::fmt::Display) {
    if json {
        self::json(&v);
    } else {
        println!("{text}");
    }
}

/// One compact JSON document per line (tail, export), flushed so a reader sees it now.
pub fn json_line(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    writeln!(out, "{}", serde_json::to_string(v).unwrap_or_default())?;
    out.flush()
}

pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

/// A payload cut for a table cell.
pub fn short(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
