//! Node.js bindings for ferrymq (napi-rs). This native module converts types and errors
//! only; `index.js` gives it the idiomatic JavaScript surface (options objects, `Date`s,
//! `FerrymqError`, async iteration), and every queue decision lives in the core.

mod checker;
mod consumer;
mod convert;
mod delivery;
mod errors;
mod keys;
mod queue;
// Free `#[napi]` functions are registered with Node only outside `cfg(test)`, so the
// (empty) test build of this crate would call them unused.
#[cfg_attr(test, allow(dead_code))]
mod sql;
mod testing;
#[cfg_attr(test, allow(dead_code))]
mod trace;
mod tx;
mod views;
