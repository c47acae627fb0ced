//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>) on messages: the header
//! names, the rule that a caller's own `traceparent` is never replaced, and the one
//! parser of a `traceparent` value. The bindings read and write their language's
//! OpenTelemetry span contexts; what goes into a message's headers, and what a consumer
//! may trust from them, is decided here so every language agrees.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The header holding the producer's span context: `00-<trace id>-<span id>-<flags>`.
pub const TRACEPARENT: &str = "traceparent";
/// The vendor-specific companion of `traceparent`, copied along with it.
pub const TRACESTATE: &str = "tracestate";
/// W3C's limit on a `tracestate` value (32 members of at most 256 bytes, joined).
pub const MAX_TRACESTATE_LEN: usize = 8192;

/// A valid `traceparent`, split into its lowercase-hex fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 hex digits, not all zero.
    pub trace_id: String,
    /// 16 hex digits, not all zero.
    pub span_id: String,
    /// The trace flags byte (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Whether the producer's span was sampled.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The header value, version 00.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

/// Parses a `traceparent` value. Version 00 must have exactly four fields; a later
/// version may append fields (the spec's forward compatibility), version `ff` is
/// invalid. Ids are lowercase hex and not all zero.
pub fn parse_traceparent(value: &str) -> Result<TraceParent> {
    let bad = |why: &str| Error::invalid(format!("traceparent {value:?} is not valid: {why}"));
    let fields: Vec<&str> = value.trim().split('-').collect();
    if fields.len() < 4 {
        return Err(bad("expected version-traceid-spanid-flags"));
    }
    let (version, trace_id, span_id, flags) = (fields[0], fields[1], fields[2], fields[3]);
    if !is_hex(version, 2) || version == "ff" {
        return Err(bad("version must be 2 lowercase hex digits other than ff"));
    }
    if version == "00" && fields.len() != 4 {
        return Err(bad("version 00 has exactly four fields"));
    }
    if !is_hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') {
        return Err(bad(
            "trace id must be 32 lowercase hex digits, not all zero",
        ));
    }
    if !is_hex(span_id, 16) || span_id.bytes().all(|b| b == b'0') {
        return Err(bad("span id must be 16 lowercase hex digits, not all zero"));
    }
    if !is_hex(flags, 2) {
        return Err(bad("flags must be 2 lowercase hex digits"));
    }
    Ok(TraceParent {
        trace_id: trace_id.to_string(),
        span_id: span_id.to_string(),
        flags: u8::from_str_radix(flags, 16).map_err(|_| bad("flags"))?,
    })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Adds the caller's current span context to a message's headers, unless the headers
/// already carry a `traceparent` (the caller's own propagation wins, and its
/// `tracestate` with it). Returns whether the headers changed. An invalid `traceparent`
/// (a binding's bug, not the user's) is refused; an empty or oversized `tracestate` is
/// left out rather than failing the publish.
pub fn inject(
    headers: &mut BTreeMap<String, String>,
    traceparent: &str,
    tracestate: Option<&str>,
) -> Result<bool> {
    if headers.contains_key(TRACEPARENT) {
        return Ok(false);
    }
    let parent = parse_traceparent(traceparent)?;
    headers.insert(TRACEPARENT.to_string(), parent.header());
    if let Some(state) = tracestate.filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN) {
        headers.insert(TRACESTATE.to_string(), state.to_string());
    }
    Ok(true)
}

/// The producer context a consumer may link to: the message's `traceparent` when valid,
/// with its `tracestate`. A missing or malformed header is no context (never an error: a
/// consumer must not fail on another producer's bad header).
pub fn extract(headers: &BTreeMap<String, String>) -> Option<(TraceParent, Option<String>)> {
    let parent = parse_traceparent(headers.get(TRACEPARENT)?).ok()?;
    let state = headers
        .get(TRACESTATE)
        .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN)
        .cloned();
    Some((parent, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let p = parse_traceparent(TP).unwrap();
        assert_eq!(p.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id, "00f067aa0ba902b7");
        assert!(p.sampled());
        assert_eq!(p.header(), TP);
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            let e = parse_traceparent(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
        // A later version may carry more fields.
        assert!(parse_traceparent(&format!("01{}-more", &TP[2..])).is_ok());
    }

    #[test]
    fn inject_keeps_a_callers_traceparent() {
        let mut h = BTreeMap::new();
        h.insert(TRACEPARENT.to_string(), "caller's own".to_string());
        assert!(!inject(&mut h, TP, Some("k=v")).unwrap());
        assert_eq!(h[TRACEPARENT], "caller's own");
        assert!(!h.contains_key(TRACESTATE));
    }

    #[test]
    fn inject_adds_traceparent_and_tracestate() {
        let mut h = BTreeMap::new();
        assert!(inject(&mut h, TP, Some("congo=t61rcWkgMzE")).unwrap());
        assert_eq!(h[TRACEPARENT], TP);
        assert_eq!(h[TRACESTATE], "congo=t61rcWkgMzE");
        let mut h = BTreeMap::new();
        assert!(inject(&mut h, TP, Some("")).unwrap());
        assert!(!h.contains_key(TRACESTATE));
        let mut h = BTreeMap::new();
        assert!(inject(&mut h, "nonsense", None).is_err());
        assert!(h.is_empty());
    }

    #[test]
    fn extract_ignores_bad_headers() {
        let mut h = BTreeMap::new();
        assert_eq!(extract(&h), None);
        h.insert(TRACEPARENT.to_string(), "garbage".to_string());
        assert_eq!(extract(&h), None);
        h.insert(TRACEPARENT.to_string(), TP.to_string());
        h.insert(TRACESTATE.to_string(), "a=b".to_string());
        let (p, s) = extract(&h).unwrap();
        assert_eq!(p.header(), TP);
        assert_eq!(s.as_deref(), Some("a=b"));
    }
}
