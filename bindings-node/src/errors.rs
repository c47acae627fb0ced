//! One mapping from a core error to a JS error. The kind travels as the thrown error's
//! `code` property (napi puts an error's status there, and our status is the kind's
//! code), so `index.js` reads a field and never parses a message.

use ferrymq::{Error, ErrorKind};
use napi::Status;
use napi::bindgen_prelude::{Env, JsError, PromiseRaw, ToNapiValue, Unknown};
use napi_derive::napi;
use std::future::Future;

/// An error kind's code (`LEASE_LOST`, ...): the `code` of the JS error it becomes.
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// What every exported function returns: napi throws the error with its `Code`.
pub type Result<T> = napi::Result<T, Code>;

fn error(kind: ErrorKind, reason: impl std::fmt::Display) -> napi::Error<Code> {
    napi::Error::new(Code(kind.code()), reason)
}

pub fn to_js(e: Error) -> napi::Error<Code> {
    error(e.kind(), e)
}

/// A core error as a value, for the calls that hand an error back instead of throwing it
/// (`index.js` makes a `FerrymqError` of it).
#[napi(object)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

pub fn error_info(e: Error) -> ErrorInfo {
    ErrorInfo {
        code: e.kind().code().to_owned(),
        message: e.to_string(),
    }
}

pub fn invalid(msg: impl std::fmt::Display) -> napi::Error<Code> {
    error(ErrorKind::InvalidArgument, msg)
}

/// A failure inside the addon itself (a panicked task): reported as STORAGE, the kind for
/// "ferrymq could not do it", never as the caller's bad input.
pub fn internal(e: impl std::fmt::Display) -> napi::Error<Code> {
    error(
        ErrorKind::Storage,
        format!("internal error in ferrymq (please report): {e}"),
    )
}

/// napi's own failure: a JS value of the wrong type is bad input, anything else is ours.
pub fn from_napi(e: napi::Error) -> napi::Error<Code> {
    let status = e.status.as_ref();
    if e.status == Status::InvalidArg || status.ends_with("Expected") {
        invalid(format!("invalid argument: {}", e.reason))
    } else {
        internal(&e.reason)
    }
}

pub trait OrJs<T> {
    fn js(self) -> Result<T>;
}

impl<T> OrJs<T> for ferrymq::Result<T> {
    fn js(self) -> Result<T> {
        self.map_err(to_js)
    }
}

impl<T> OrJs<T> for napi::Result<T> {
    fn js(self) -> Result<T> {
        self.map_err(from_napi)
    }
}

/// A Promise of `fut`'s value that rejects with the kind's code on `code`. napi's own
/// `spawn_future` would reject with its status (`GenericFailure`) as the code; here the
/// future's error is made into a JS error on the JS thread and rejected as it is.
pub fn promise<'env, T, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + Future<Output = Result<T>>,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r| {
        r.map_err(|e| {
            // SAFETY: called on the JS thread with its env; the value is a fresh JS error.
            let value = unsafe { JsError::from(e).into_value(env.raw()) };
            napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
        })
    })
    .js()
}
