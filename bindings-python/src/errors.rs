//! The exception classes, one per `ferrymq::ErrorKind`, and the one mapping from a core
//! error to them (by kind, never by text).

use ferrymq::{Error, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    ferrymq,
    FerrymqError,
    PyException,
    "Base of every ferrymq error."
);
create_exception!(
    ferrymq,
    InvalidArgumentError,
    FerrymqError,
    "Bad input; nothing was changed."
);
create_exception!(
    ferrymq,
    NotFoundError,
    FerrymqError,
    "No such consumer group, message or dead letter."
);
create_exception!(
    ferrymq,
    LeaseLostError,
    FerrymqError,
    "The delivery's lease was taken over."
);
create_exception!(
    ferrymq,
    ClosedError,
    FerrymqError,
    "The queue was closed (or opened before fork())."
);
create_exception!(
    ferrymq,
    BusyError,
    FerrymqError,
    "The file stayed locked past busy_timeout."
);
create_exception!(
    ferrymq,
    StorageError,
    FerrymqError,
    "I/O error, disk full, corrupt, foreign or newer file."
);
create_exception!(
    ferrymq,
    CallbackError,
    FerrymqError,
    "A callback you supplied failed."
);
create_exception!(
    ferrymq,
    FullError,
    FerrymqError,
    "A consumer group already has max_ready messages waiting; nothing was written."
);
create_exception!(
    ferrymq,
    EncryptionError,
    FerrymqError,
    "Wrong, missing or unexpected key, an encrypted file cut short, or a failed key provider; nothing was read or changed."
);

pub fn to_py(e: Error) -> PyErr {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::InvalidArgument => InvalidArgumentError::new_err(text),
        ErrorKind::NotFound => NotFoundError::new_err(text),
        ErrorKind::LeaseLost => LeaseLostError::new_err(text),
        ErrorKind::Closed => ClosedError::new_err(text),
        ErrorKind::Busy => BusyError::new_err(text),
        ErrorKind::Storage => StorageError::new_err(text),
        ErrorKind::Callback => CallbackError::new_err(text),
        ErrorKind::Full => FullError::new_err(text),
        ErrorKind::Encryption => EncryptionError::new_err(text),
        // `ErrorKind` is `#[non_exhaustive]`, so outside the core this arm is required
        // and a new kind cannot be a compile error here: it lands on the base class until
        // it gets its own (tests/test_scenarios.py checks that every code the scenario
        // format lists has its own class).
        _ => FerrymqError::new_err(text),
    }
}

/// `?` on a core result inside a binding method.
pub trait OrPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> OrPy<T> for ferrymq::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

pub fn invalid(text: impl Into<String>) -> PyErr {
    InvalidArgumentError::new_err(text.into())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FerrymqError", py.get_type::<FerrymqError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("LeaseLostError", py.get_type::<LeaseLostError>())?;
    m.add("ClosedError", py.get_type::<ClosedError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("CallbackError", py.get_type::<CallbackError>())?;
    m.add("FullError", py.get_type::<FullError>())?;
    m.add("EncryptionError", py.get_type::<EncryptionError>())?;
    Ok(())
}
