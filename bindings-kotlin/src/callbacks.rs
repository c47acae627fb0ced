//! Kotlin callbacks as core callbacks. The Kotlin adapters catch every exception and hand
//! back its text as a value; the core decides what a failure means (a nack with the text
//! for a handler, an unknown answer for a checker). Should a callback still unwind, the
//! core's own `catch_unwind` around callbacks turns it into the same failure.

use crate::delivery::{self, Received};
use crate::views::{MessageInfo, Resolution, ToHost};
use ferrymq::{Delivery, Queue};
use std::sync::Arc;

/// A worker's handler: `None` acks the delivery, `Some(reason)` nacks it with the reason.
#[uniffi::export(with_foreign)]
pub trait FfiHandler: Send + Sync {
    fn handle(&self, delivery: Received) -> Option<String>;
}

/// A checker's answer: a resolution, or the text of the exception it threw.
#[derive(uniffi::Enum)]
pub enum CheckAnswer {
    Resolved { resolution: Resolution },
    Failed { reason: String },
}

/// The check-back of half messages for one topic.
#[uniffi::export(with_foreign)]
pub trait FfiChecker: Send + Sync {
    fn check(&self, info: MessageInfo) -> CheckAnswer;
}

pub fn handler(
    q: Queue,
    h: Arc<dyn FfiHandler>,
) -> impl Fn(&Delivery) -> Result<(), String> + Send + Sync + 'static {
    move |d| match h.handle(delivery::received(&q, d.clone())) {
        None => Ok(()),
        Some(reason) => Err(reason),
    }
}

pub fn checker(
    c: Arc<dyn FfiChecker>,
) -> impl Fn(&ferrymq::MessageInfo) -> Result<ferrymq::Resolution, String> + Send + Sync + 'static {
    move |info| match c.check(info.clone().to_host()) {
        CheckAnswer::Resolved { resolution } => Ok(resolution.into()),
        CheckAnswer::Failed { reason } => Err(reason),
    }
}
