//! The `ferrymq_uniffi` cdylib: the ferrymq core exported through uniffi (proc-macros,
//! library mode). `uniffi-bindgen` generates the Kotlin layer (`ferrymq.ffi`) from this
//! library; the hand-written idiomatic layer (`src/main/kotlin`, package `ferrymq`) sits on
//! top, beside the part of package `ferrymq` that `uniffi-bindgen ferrymq-layer` generates
//! (the records' typealiases and `QueueCalls`, the plain methods of `Queue`). Every queue
//! decision lives in the core: this crate converts types and errors only.
//!
//! Conventions at the boundary:
//! - durations go in as `f64` seconds and are checked by `ferrymq::seconds` (negative,
//!   NaN and infinite values are `InvalidArgument`, never a panic);
//! - counts and limits go in as `i64` and are range-checked here;
//! - times come out as `SystemTime` (Kotlin `java.time.Instant`);
//! - callbacks (checker, worker handler, key provider) report failure as a value, never
//!   by unwinding.

uniffi::setup_scaffolding!();

mod callbacks;
mod consumer;
mod convert;
mod delivery;
mod error;
mod fast;
mod handles;
mod keys;
mod queue;
mod sql;
mod trace;
mod tx;
mod views;

pub use callbacks::{CheckAnswer, FfiChecker, FfiHandler};
pub use consumer::FfiConsumer;
pub use delivery::{FfiDelivery, FfiHalfMessage, FfiReceiveSlot, FfiWorker, Received};
pub use error::FfiError;
pub use keys::{FfiKey, FfiKeyProvider, KeysAnswer};
pub use queue::{FfiManualClock, FfiQueue, FfiRetryPolicy};
pub use trace::TraceContext;
pub use tx::FfiTransaction;
pub use views::*;
