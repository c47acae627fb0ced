//! Node.js bindings for ferrymq (napi-rs). This native module converts types and errors
//! only; `index.js` gives it the idiomatic JavaScript surface (options objects, `Date`s,
//! `FerrymqError`, async iteration), and every queue decision lives in the core.

mod checker;
mod convert;
mod delivery;
mod errors;
mod queue;
mod sql;
mod testing;
mod tx;
mod views;
