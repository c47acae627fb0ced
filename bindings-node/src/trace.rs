//! Trace propagation and the `ferrymq` command. `trace.js` reads and writes
//! OpenTelemetry span contexts; which headers a message gets and which received
//! `traceparent` is valid is `ferrymq::trace`'s. `cliMain` runs the operator command
//! (crate ferrymq-cli) for the package's `ferrymq` bin.

use crate::errors::{Result, to_js};
use napi_derive::napi;
use std::collections::HashMap;

/// `headers` with the caller's span context added (`traceparent`, and `tracestate` when
/// given), unless they carry a `traceparent` already.
#[napi]
pub fn trace_inject(
    headers: Option<HashMap<String, String>>,
    traceparent: String,
    tracestate: Option<String>,
) -> Result<HashMap<String, String>> {
    let mut h = headers.unwrap_or_default().into_iter().collect();
    ferrymq::trace::inject(&mut h, &traceparent, tracestate.as_deref()).map_err(to_js)?;
    Ok(h.into_iter().collect())
}

/// The producer context in a message's headers.
#[napi(object)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub flags: u32,
    pub tracestate: Option<String>,
}

/// The producer context of a message, or null without a valid `traceparent`.
#[napi]
pub fn trace_extract(headers: HashMap<String, String>) -> Option<TraceContext> {
    let h = headers.into_iter().collect();
    ferrymq::trace::extract(&h).map(|(p, tracestate)| TraceContext {
        trace_id: p.trace_id,
        span_id: p.span_id,
        flags: p.flags.into(),
        tracestate,
    })
}

/// Runs the `ferrymq` command with `argv` (without the program name) and returns its exit
/// code. It writes to file descriptors 1 and 2 directly, as the Rust binary does, and
/// blocks the calling thread (the bin script does nothing else).
#[napi]
pub fn cli_main(argv: Vec<String>) -> i32 {
    ferrymq_cli::main(std::iter::once("ferrymq".to_string()).chain(argv))
}
