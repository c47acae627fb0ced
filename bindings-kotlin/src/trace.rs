//! W3C trace propagation: `Tracing.kt` reads and writes OpenTelemetry span contexts;
//! which headers a message gets and which received `traceparent` is valid is
//! `ferrymq::trace`'s.

use crate::error::FfiError;
use std::collections::HashMap;

/// `headers` with the caller's span context added, unless they carry a `traceparent`.
#[uniffi::export]
pub fn trace_inject(
    headers: HashMap<String, String>,
    traceparent: String,
    tracestate: Option<String>,
) -> Result<HashMap<String, String>, FfiError> {
    let mut h = headers.into_iter().collect();
    ferrymq::trace::inject(&mut h, &traceparent, tracestate.as_deref())?;
    Ok(h.into_iter().collect())
}

/// The producer context in a message's headers.
#[derive(uniffi::Record)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub flags: u8,
    pub tracestate: Option<String>,
}

/// The producer context of a message, or null without a valid `traceparent`.
#[uniffi::export]
pub fn trace_extract(headers: HashMap<String, String>) -> Option<TraceContext> {
    let h = headers.into_iter().collect();
    ferrymq::trace::extract(&h).map(|(p, tracestate)| TraceContext {
        trace_id: p.trace_id,
        span_id: p.span_id,
        flags: p.flags,
        tracestate,
    })
}
