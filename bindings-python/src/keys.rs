//! Encryption at rest (`Queue(path, key=...)`, `Queue.rekey`, `encrypt_file`,
//! `decrypt_file`): a Python str, bytes or callable as a core `Key` or key provider.
//! Which key opens a file, when the provider is asked and what a failure means are the
//! core's (core/src/cipher.rs). No message here ever shows a key: only its type or length.

use crate::callbacks::exc_text;
use crate::errors::OrPy;
use ferrymq::{Error, Key, Options};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use std::path::PathBuf;

/// A str (SQLCipher's `x'<64 hex digits>'` is a raw key, anything else a passphrase) or
/// 32 bytes (a raw key). Anything else is an InvalidArgument naming its type.
fn to_key(obj: &Bound<'_, PyAny>) -> ferrymq::Result<Key> {
    if let Ok(s) = obj.cast::<PyString>() {
        let text = s
            .to_cow()
            .map_err(|_| Error::InvalidArgument("a key str must be valid UTF-8".into()))?;
        return Key::from_text(&text);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Key::raw(b.as_bytes());
    }
    Err(Error::InvalidArgument(format!(
        "a key is a str (passphrase, or x'<64 hex digits>') or 32 bytes, not {}",
        type_name(obj)
    )))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "this type".into())
}

/// `key=` of `Queue`: a key, or a callable returning the keys to try.
pub fn with_key(o: Options, key: &Bound<'_, PyAny>) -> PyResult<Options> {
    if key.is_callable() {
        return Ok(o.key_provider(provider(key.clone().unbind())));
    }
    Ok(o.key(to_key(key).py_err()?))
}

/// The argument of `rekey`, `encrypt_file`, `decrypt_file`.
pub fn key(key: &Bound<'_, PyAny>) -> PyResult<Key> {
    to_key(key).py_err()
}

/// A Python callable as the core's key provider. The core calls it from any of its
/// threads (at open, and whenever the key stops opening the file), so it takes the GIL;
/// an exception or a wrong return becomes the provider's Err, which the core reports as
/// an EncryptionError carrying that text.
fn provider(cb: Py<PyAny>) -> impl Fn() -> Result<Vec<Key>, String> + Send + Sync + 'static {
    move || {
        Python::attach(|py| {
            let out = cb.call0(py).map_err(|e| exc_text(py, &e))?;
            provided_keys(out.bind(py))
        })
    }
}

/// What a provider returned: one key, or a list/tuple of them (newest first).
fn provided_keys(out: &Bound<'_, PyAny>) -> Result<Vec<Key>, String> {
    let one = |item: &Bound<'_, PyAny>| {
        to_key(item).map_err(|e| match e {
            Error::InvalidArgument(why) => format!("it returned a bad key: {why}"),
            other => other.to_string(),
        })
    };
    if let Ok(list) = out.cast::<PyList>() {
        return list.iter().map(|k| one(&k)).collect();
    }
    if let Ok(tuple) = out.cast::<PyTuple>() {
        return tuple.iter().map(|k| one(&k)).collect();
    }
    if out.hasattr("__await__").unwrap_or(false) {
        // Nobody will await it: close it so Python does not warn that it never ran.
        let _ = out.call_method0("close");
        return Err("it returned a coroutine; pass a plain function".into());
    }
    one(out).map(|k| vec![k])
}

/// The file conversions of core, one `#[pyfunction]` each under core's name.
macro_rules! conversions {
    ($( $(#[doc = $doc:expr])* $name:ident ),*) => {$(
        $(#[doc = $doc])*
        #[pyfunction]
        fn $name(py: Python<'_>, src: PathBuf, dst: PathBuf, key: &Bound<'_, PyAny>) -> PyResult<()> {
            let key = self::key(key)?;
            py.detach(|| ferrymq::$name(&src, &dst, &key, |_, _| {})).py_err()
        }
    )*};
}
conversions!(
    /// Writes an encrypted copy of the plain file `src` to `dst` (which must not exist).
    encrypt_file,
    /// Writes a plain copy of the encrypted file `src`, opened with `key`, to `dst`.
    decrypt_file
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encrypt_file, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_file, m)?)?;
    Ok(())
}
