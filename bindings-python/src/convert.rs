//! Python values to core types and back: payloads, headers, seconds, datetimes, SQL
//! values. A value of the wrong type is an `InvalidArgumentError` naming the argument.

use crate::errors::{OrPy, invalid};
use ferrymq::Value;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `bytes | bytearray | memoryview | str` (UTF-8).
pub fn payload(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.extract::<String>()?.into_bytes());
    }
    if obj.get_type().name()? == "memoryview" {
        return Ok(obj
            .call_method0("tobytes")?
            .cast::<PyBytes>()?
            .as_bytes()
            .to_vec());
    }
    Err(invalid(format!(
        "{what} must be bytes, bytearray, memoryview or str, not {}",
        obj.get_type().name()?
    )))
}

pub fn headers(obj: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, String>> {
    let Some(obj) = obj else {
        return Ok(BTreeMap::new());
    };
    let dict = obj
        .cast::<PyDict>()
        .map_err(|_| invalid("headers must be a dict[str, str]"))?;
    let mut out = BTreeMap::new();
    for (k, v) in dict.iter() {
        let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
            return Err(invalid("headers must be a dict[str, str]"));
        };
        out.insert(k, v);
    }
    Ok(out)
}

/// Seconds as `int | float` or a `datetime.timedelta`.
pub fn seconds(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        obj.extract()
            .map_err(|_| invalid(format!("{what} is out of range")))?
    } else if obj.hasattr("total_seconds")? && obj.get_type().name()? == "timedelta" {
        obj.call_method0("total_seconds")?.extract()?
    } else {
        return Err(invalid(format!(
            "{what} must be seconds (int or float) or a datetime.timedelta, not {}",
            obj.get_type().name()?
        )));
    };
    ferrymq::seconds(what, secs).py_err()
}

/// A number (int or float) the core checks the range of; anything else is an
/// `InvalidArgumentError`.
pub fn opt_number(what: &str, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<f64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    if obj.is_instance_of::<PyBool>()
        || !(obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>())
    {
        return Err(invalid(format!(
            "{what} must be a number, not {}",
            obj.get_type().name()?
        )));
    }
    obj.extract()
        .map(Some)
        .map_err(|_| invalid(format!("{what} is out of range")))
}

/// Applies to builder `$o` each option the caller gave, through the builder method named
/// like the argument, converted by `convert::$how` (given that name, for its error). An
/// option not given keeps the core's default.
macro_rules! given {
    ($o:ident, $($arg:ident: $how:ident),* $(,)?) => {
        $( if let Some(v) = $crate::convert::$how(stringify!($arg), $arg)? { $o = $o.$arg(v); } )*
    };
}
pub(crate) use given;

/// A value that needs no conversion, for [`given!`].
pub fn opt_value<T>(_what: &str, v: Option<T>) -> PyResult<Option<T>> {
    Ok(v)
}

pub fn opt_seconds(what: &str, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    obj.filter(|o| !o.is_none())
        .map(|o| seconds(what, o))
        .transpose()
}

/// A timezone-aware `datetime`; a naive one is refused (its zone would be a guess).
pub fn aware_datetime(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<SystemTime> {
    let is_datetime = obj.hasattr("utcoffset")? && obj.hasattr("timestamp")?;
    if !is_datetime {
        return Err(invalid(format!("{what} must be a timezone-aware datetime")));
    }
    if obj.call_method0("utcoffset")?.is_none() {
        return Err(invalid(format!(
            "{what} is a naive datetime; give it a tzinfo (e.g. datetime.timezone.utc)"
        )));
    }
    let secs: f64 = obj.call_method0("timestamp")?.extract()?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(invalid(format!("{what} is before 1970")));
    }
    Ok(UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// An aware UTC `datetime`.
pub fn datetime<'py>(py: Python<'py>, t: SystemTime) -> PyResult<Bound<'py, PyAny>> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let dt = py.import("datetime")?;
    let utc = dt.getattr("timezone")?.getattr("utc")?;
    dt.getattr("datetime")?
        .call_method1("fromtimestamp", (secs, utc))
}

pub fn sql_value(i: usize, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.extract::<bool>()
        && obj.get_type().name()? == "bool"
    {
        return Ok(Value::Integer(i64::from(b)));
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map(Value::Integer)
            .map_err(|_| invalid(format!("parameter {i}: integer out of 64-bit range")));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Real(obj.extract()?));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Text(s.extract::<String>()?));
    }
    match payload("parameter", obj) {
        Ok(bytes) => Ok(Value::Blob(bytes)),
        Err(_) => Err(invalid(format!(
            "parameter {i}: SQL values are None, int, float, str or bytes, not {}",
            obj.get_type().name()?
        ))),
    }
}

pub fn sql_params(params: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Value>> {
    let Some(params) = params.filter(|p| !p.is_none()) else {
        return Ok(Vec::new());
    };
    if params.cast::<PyString>().is_ok() {
        return Err(invalid("params must be a sequence of values, not a str"));
    }
    let items = params
        .try_iter()
        .map_err(|_| invalid("params must be a tuple or list of values"))?;
    items.enumerate().map(|(i, v)| sql_value(i, &v?)).collect()
}

pub fn py_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Integer(n) => n.into_pyobject(py)?.into_any(),
        Value::Real(f) => f.into_pyobject(py)?.into_any(),
        Value::Text(s) => s.into_pyobject(py)?.into_any(),
        Value::Blob(b) => PyBytes::new(py, b).into_any(),
    })
}

pub fn row<'py>(py: Python<'py>, row: &[Value]) -> PyResult<Bound<'py, PyTuple>> {
    let items = row
        .iter()
        .map(|v| py_value(py, v))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

/// An integer argument in the range of `T`; anything else is an `InvalidArgumentError`
/// (not Python's OverflowError or TypeError), like every other bad input.
pub fn int<T: TryFrom<i64>>(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<T> {
    if !obj.is_instance_of::<PyInt>() {
        return Err(invalid(format!(
            "{what} must be an int, not {}",
            obj.get_type().name()?
        )));
    }
    let n: i64 = obj
        .extract()
        .map_err(|_| invalid(format!("{what} is out of range")))?;
    T::try_from(n).map_err(|_| invalid(format!("{what} is out of range: {n}")))
}

pub fn opt_int<T: TryFrom<i64>>(what: &str, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<T>> {
    obj.filter(|o| !o.is_none())
        .map(|o| int(what, o))
        .transpose()
}

/// An int argument, kept as i64 until `get` checks it fits the core's type; out of range
/// or not an int is an `InvalidArgumentError`, never OverflowError.
#[derive(Clone, Copy)]
pub struct Int(pub i64);

impl<'a, 'py> FromPyObject<'a, 'py> for Int {
    type Error = PyErr;
    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        int::<i64>("integer argument", &obj).map(Int)
    }
}

impl Int {
    pub fn get<T: TryFrom<i64>>(self, what: &str) -> PyResult<T> {
        T::try_from(self.0).map_err(|_| invalid(format!("{what} is out of range: {}", self.0)))
    }
}
