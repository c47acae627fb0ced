//! Input checks that run before anything is written. Each check names the argument and
//! the rule it broke, so a caller can fix the call from the message alone.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Topic and consumer-group names: 1-249 chars of `[A-Za-z0-9._-]` (Kafka's rule).
pub const MAX_NAME_LEN: usize = 249;
pub const MAX_TAG_LEN: usize = 128;
/// Keys, ordering keys and idempotency keys.
pub const MAX_KEY_LEN: usize = 1024;
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// All header names and values of one message together.
pub const MAX_HEADERS_BYTES: usize = 64 * 1024;
pub const MAX_ERROR_LEN: usize = 4096;
/// `receive(max=...)` above this is refused: one call never loads an unbounded batch.
pub const MAX_RECEIVE: usize = 1000;
pub const MAX_BATCH: usize = 10_000;
/// Longest lease, wait, or delay accepted (10 years): beyond it a caller has a unit bug.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);
/// SQLite's limit on one string or blob, and on one whole row (SQLITE_MAX_LENGTH of the
/// bundled build): a longer payload fails inside SQLite as a storage error.
pub const SQLITE_MAX_LENGTH: usize = 1_000_000_000;
/// Highest `max_payload` accepted: SQLite's limit less 1 MB for the row's other columns
/// (headers up to 64 KiB, key, ordering key, tag, integers).
pub const MAX_PAYLOAD: usize = SQLITE_MAX_LENGTH - 1_000_000;
/// Highest `SubscribeOptions::max_inflight` and `Options::max_ready`: a claim counts the
/// group's inflight rows and a publish its waiting ones (up to the limit) through an index
/// range, so a limit stays a count SQLite does in well under a second.
pub const MAX_FLOW_LIMIT: u64 = 1_000_000;
/// Highest `SubscribeOptions::rate` (deliveries per second) accepted.
pub const MAX_RATE: f64 = 1_000_000.0;
/// Highest message priority; 0 is the lowest and the default.
pub const MAX_PRIORITY: i32 = 9;
/// Smallest `max_size` accepted: the schema alone takes about 20 pages of 4 KiB.
pub const MIN_MAX_SIZE: u64 = 128 * 1024;

pub fn name(what: &str, value: &str) -> Result<()> {
    const ALLOWED: &str = "A-Z a-z 0-9 . _ -";
    let punct = |c: char| matches!(c, '.' | '_' | '-');
    word(
        format_args!("{what} name"),
        value,
        MAX_NAME_LEN,
        punct,
        ALLOWED,
    )
}

/// Tags: 1-128 chars of `[A-Za-z0-9._:/-]`; `*` and `||` are reserved for filters.
pub fn tag(value: &str) -> Result<()> {
    const ALLOWED: &str = "A-Z a-z 0-9 . _ - : /";
    let punct = |c: char| matches!(c, '.' | '_' | '-' | ':' | '/');
    word(format_args!("tag"), value, MAX_TAG_LEN, punct, ALLOWED)
}

/// 1 to `max` characters, each an ASCII letter or digit or one `punct` allows
/// (`allowed` spells the whole set out for the message). `label` is only formatted for
/// a message: names are checked on every publish.
fn word(
    label: std::fmt::Arguments<'_>,
    value: &str,
    max: usize,
    punct: impl Fn(char) -> bool,
    allowed: &str,
) -> Result<()> {
    if value.is_empty() || value.len() > max {
        return Err(Error::invalid(format!(
            "{label} must be 1-{max} characters, got {}",
            value.len()
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || punct(c)))
    {
        return Err(Error::invalid(format!(
            "{label} {value:?} contains {c:?}; allowed are {allowed}"
        )));
    }
    Ok(())
}

pub fn text(what: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max {
        return Err(Error::invalid(format!(
            "{what} must be 1-{max} bytes, got {}",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(Error::invalid(format!("{what} must not contain NUL")));
    }
    Ok(())
}

pub fn headers(headers: &BTreeMap<String, String>) -> Result<()> {
    let mut total = 0;
    for (k, v) in headers {
        text("header name", k, MAX_HEADER_NAME_LEN)?;
        total += k.len() + v.len();
    }
    if total > MAX_HEADERS_BYTES {
        return Err(Error::invalid(format!(
            "headers total {total} bytes, more than the limit of {MAX_HEADERS_BYTES}"
        )));
    }
    Ok(())
}

/// `Options::max_payload`: a payload SQLite refuses would fail a whole group commit.
pub fn max_payload(bytes: usize) -> Result<()> {
    if bytes == 0 || bytes > MAX_PAYLOAD {
        return Err(Error::invalid(format!(
            "max_payload must be between 1 and {MAX_PAYLOAD} bytes (SQLite stores at most \
             {SQLITE_MAX_LENGTH} bytes in one row), got {bytes}"
        )));
    }
    Ok(())
}

/// `Options::max_size`: it becomes a page count, which must neither wrap nor leave no
/// room for the schema.
pub fn max_size(bytes: u64) -> Result<()> {
    if bytes < MIN_MAX_SIZE || bytes > i64::MAX as u64 {
        return Err(Error::invalid(format!(
            "max_size must be between {MIN_MAX_SIZE} and {} bytes, got {bytes}",
            i64::MAX
        )));
    }
    Ok(())
}

/// `max_inflight` and `max_ready`: 1 to `MAX_FLOW_LIMIT` (`None` means no limit, so 0
/// would only be a way to stop a group or topic, which `pause` says better).
pub fn flow_limit(what: &str, n: u64) -> Result<()> {
    if n == 0 || n > MAX_FLOW_LIMIT {
        return Err(Error::invalid(format!(
            "{what} must be between 1 and {MAX_FLOW_LIMIT}, got {n}"
        )));
    }
    Ok(())
}

/// `SubscribeOptions::rate`: a finite number above 0, at most `MAX_RATE`.
pub fn rate(r: f64) -> Result<()> {
    if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
        return Err(Error::invalid(format!(
            "rate must be more than 0 and at most {MAX_RATE} deliveries per second, got {r}"
        )));
    }
    Ok(())
}

pub fn priority(p: i32) -> Result<()> {
    if !(0..=MAX_PRIORITY).contains(&p) {
        return Err(Error::invalid(format!(
            "priority must be an integer from 0 to {MAX_PRIORITY}, got {p}"
        )));
    }
    Ok(())
}

pub fn payload(len: usize, limit: usize) -> Result<()> {
    if len > limit {
        return Err(Error::invalid(format!(
            "payload is {len} bytes, more than max_payload ({limit} bytes)"
        )));
    }
    Ok(())
}

pub fn positive_duration(what: &str, d: Duration) -> Result<()> {
    if d.is_zero() {
        return Err(Error::invalid(format!("{what} must be greater than zero")));
    }
    bounded_duration(what, d)
}

/// Leases are kept in whole milliseconds: anything shorter would be stored as zero.
pub fn lease(d: Duration) -> Result<()> {
    if d < Duration::from_millis(1) {
        return Err(Error::invalid(format!(
            "lease must be at least 1 ms, got {d:?}"
        )));
    }
    bounded_duration("lease", d)
}

/// An inbox window is kept in whole milliseconds, like a lease: shorter would be stored
/// as zero, and a key seen for no time at all dedups nothing.
pub fn inbox_window(d: Duration) -> Result<()> {
    if d < Duration::from_millis(1) {
        return Err(Error::invalid(format!(
            "inbox window must be at least 1 ms, got {d:?}"
        )));
    }
    bounded_duration("inbox window", d)
}

pub fn bounded_duration(what: &str, d: Duration) -> Result<()> {
    if d > MAX_DURATION {
        return Err(Error::invalid(format!(
            "{what} of {}s is longer than the limit of {}s",
            d.as_secs(),
            MAX_DURATION.as_secs()
        )));
    }
    Ok(())
}

/// Converts seconds given by a binding (a float from Python, ms/1000 from Node) into a
/// `Duration`, refusing negative, NaN and infinite values. Bindings call this instead of
/// deciding themselves what a bad number means.
pub fn seconds(what: &str, secs: f64) -> Result<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(Error::invalid(format!(
            "{what} must be a finite number of seconds >= 0, got {secs}"
        )));
    }
    let d = Duration::try_from_secs_f64(secs)
        .map_err(|_| Error::invalid(format!("{what} of {secs}s is out of range")))?;
    bounded_duration(what, d)?;
    Ok(d)
}

pub fn error_text(reason: &str) -> String {
    if reason.len() <= MAX_ERROR_LEN {
        return reason.to_owned();
    }
    let mut end = MAX_ERROR_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &reason[..end])
}

/// Most rows returned by one listing call.
pub const MAX_LIST: usize = 10_000;

/// A listing's `limit`: at least 1, at most `MAX_LIST`, so one call never loads a table.
pub(crate) fn limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_LIST {
        return Err(Error::invalid(format!(
            "limit must be between 1 and {MAX_LIST}, got {limit}"
        )));
    }
    Ok(())
}

/// A nack's own delay, if it has one.
pub(crate) fn nack_delay(delay: Option<Duration>) -> Result<()> {
    if let Some(d) = delay {
        bounded_duration("nack delay", d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_tag_messages_name_the_argument_and_its_character_set() {
        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert!(msg(name("topic", "")).contains("topic name must be 1-249 characters, got 0"));
        assert!(
            msg(name("consumer group", "a b")).contains(
                r#"consumer group name "a b" contains ' '; allowed are A-Z a-z 0-9 . _ -"#
            )
        );
        assert!(msg(tag(&"t".repeat(129))).contains("tag must be 1-128 characters, got 129"));
        assert!(
            msg(tag("a*")).contains(r#"tag "a*" contains '*'; allowed are A-Z a-z 0-9 . _ - : /"#)
        );
        assert!(tag("a:b/c").is_ok() && name("topic", "a:b").is_err());
    }

    #[test]
    fn names_follow_the_charset_and_length() {
        assert!(name("topic", "payments.v1_eu-2").is_ok());
        assert!(name("topic", "").is_err());
        assert!(name("topic", &"a".repeat(249)).is_ok());
        assert!(name("topic", &"a".repeat(250)).is_err());
        let err = name("topic", "pay ments").unwrap_err().to_string();
        assert!(err.contains("topic") && err.contains("' '"), "{err}");
        assert!(name("group", "x'; DROP TABLE t;--").is_err());
        assert!(name("group", "é").is_err());
    }

    #[test]
    fn max_payload_stays_below_sqlites_row_limit() {
        assert!(max_payload(MAX_PAYLOAD).is_ok());
        let err = max_payload(MAX_PAYLOAD + 1).unwrap_err().to_string();
        assert!(err.contains("1000000000"), "{err}");
        assert!(max_payload(1 << 30).is_err());
        assert!(max_payload(0).is_err());
    }

    #[test]
    fn max_size_must_fit_a_page_count_and_the_schema() {
        assert!(max_size(MIN_MAX_SIZE).is_ok());
        assert!(max_size(i64::MAX as u64).is_ok());
        assert!(max_size(i64::MAX as u64 + 1).is_err());
        assert!(max_size(u64::MAX).is_err());
        assert!(max_size(4096).is_err());
    }

    #[test]
    fn tags_reserve_filter_syntax() {
        assert!(tag("created").is_ok());
        assert!(tag("v1/created:eu").is_ok());
        assert!(tag("*").is_err());
        assert!(tag("a||b").is_err());
        assert!(tag("").is_err());
    }

    #[test]
    fn seconds_refuse_negative_and_nan() {
        assert_eq!(seconds("delay", 1.5).unwrap(), Duration::from_millis(1500));
        assert!(seconds("delay", -0.1).is_err());
        assert!(seconds("delay", f64::NAN).is_err());
        assert!(seconds("delay", f64::INFINITY).is_err());
        assert!(seconds("delay", 1e12).is_err());
    }

    #[test]
    fn headers_are_capped() {
        let mut h = BTreeMap::new();
        h.insert("traceparent".to_string(), "00-abc".to_string());
        assert!(headers(&h).is_ok());
        h.insert("big".to_string(), "x".repeat(MAX_HEADERS_BYTES));
        assert!(headers(&h).is_err());
        let mut empty_name = BTreeMap::new();
        empty_name.insert(String::new(), "v".to_string());
        assert!(headers(&empty_name).is_err());
    }

    #[test]
    fn error_text_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN);
        let t = error_text(&long);
        assert!(t.len() <= MAX_ERROR_LEN + 3);
        assert!(t.ends_with("..."));
    }
}
