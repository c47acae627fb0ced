//! One mapping from a core error to a JS error. The kind travels as a `CODE: ` prefix of
//! the message, which `index.js` turns into a `FerrymqError` with that `code`; native
//! errors are never seen by callers without passing through it.

use ferrymq::{Error, ErrorKind};

pub fn to_js(e: Error) -> napi::Error {
    napi::Error::from_reason(format!("{}: {e}", e.kind().code()))
}

pub fn invalid(msg: impl std::fmt::Display) -> napi::Error {
    napi::Error::from_reason(format!("{}: {msg}", ErrorKind::InvalidArgument.code()))
}

pub trait OrJs<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> OrJs<T> for ferrymq::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_js)
    }
}

/// A failure inside the addon itself (a panicked task): reported as STORAGE, the kind for
/// "ferrymq could not do it", never as the caller's bad input.
pub fn internal(e: impl std::fmt::Display) -> napi::Error {
    napi::Error::from_reason(format!(
        "{}: internal error in ferrymq (please report): {e}",
        ErrorKind::Storage.code()
    ))
}
