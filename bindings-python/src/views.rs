//! Read-only snapshots returned by stats(), message(), find(), half_messages(),
//! dead_letters(), schedules(), topics() and audit(): one frozen class per record of
//! `ferrymq::for_each_record!`, declared and converted by the macro below. A record added
//! to core therefore needs no code here; a field of a type never seen before needs one
//! `ToHost` impl.
//!
//! One Python idiom per Rust type: `SystemTime` is an aware UTC `datetime`, `Duration` a
//! `timedelta`, payload bytes `bytes`, the state enums their text, `Resolution` the
//! `Resolution` class.

use crate::convert::datetime;
use crate::types::PyResolution;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// A core value as the Python value a record's attribute holds.
pub trait ToHost {
    type Host;
    fn to_host(self, py: Python<'_>) -> PyResult<Self::Host>;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl ToHost for $t {
            type Host = $t;
            fn to_host(self, _py: Python<'_>) -> PyResult<$t> { Ok(self) }
        }
    )*};
}
same!(String, i64, i32, u32, u64, bool);

macro_rules! text {
    ($($t:ty),*) => {$(
        impl ToHost for $t {
            type Host = &'static str;
            fn to_host(self, _py: Python<'_>) -> PyResult<&'static str> { Ok(self.as_str()) }
        }
    )*};
}
text!(
    ferrymq::AttemptOutcome,
    ferrymq::DeliveryState,
    ferrymq::MessageState,
    ferrymq::Missed
);

impl ToHost for ferrymq::Resolution {
    type Host = PyResolution;
    fn to_host(self, _py: Python<'_>) -> PyResult<PyResolution> {
        Ok(self.into())
    }
}

impl ToHost for SystemTime {
    type Host = Py<PyAny>;
    fn to_host(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(datetime(py, self)?.unbind())
    }
}

impl ToHost for Duration {
    type Host = Py<PyAny>;
    fn to_host(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        // `PyDelta` is not in the stable ABI (abi3): build it through the module.
        let kw = PyDict::new(py);
        kw.set_item("seconds", self.as_secs())?;
        kw.set_item("microseconds", self.subsec_micros())?;
        let delta = py.import("datetime")?.getattr("timedelta")?;
        Ok(delta.call((), Some(&kw))?.unbind())
    }
}

impl ToHost for Vec<u8> {
    type Host = Py<PyBytes>;
    fn to_host(self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        Ok(PyBytes::new(py, &self).unbind())
    }
}

impl<T: ToHost> ToHost for Option<T> {
    type Host = Option<T::Host>;
    fn to_host(self, py: Python<'_>) -> PyResult<Self::Host> {
        self.map(|v| v.to_host(py)).transpose()
    }
}

impl<T: ToHost> ToHost for Vec<T> {
    type Host = Vec<T::Host>;
    fn to_host(self, py: Python<'_>) -> PyResult<Self::Host> {
        self.into_iter().map(|v| v.to_host(py)).collect()
    }
}

impl<T: ToHost> ToHost for BTreeMap<String, T> {
    type Host = BTreeMap<String, T::Host>;
    fn to_host(self, py: Python<'_>) -> PyResult<Self::Host> {
        self.into_iter()
            .map(|(k, v)| Ok((k, v.to_host(py)?)))
            .collect()
    }
}

/// `Name(field=repr, ...)` over the attributes of a record.
fn repr(obj: &Bound<'_, PyAny>, name: &str, fields: &[&str]) -> PyResult<String> {
    let parts = fields
        .iter()
        .map(|f| Ok(format!("{f}={}", obj.getattr(*f)?.repr()?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(format!("{name}({})", parts.join(", ")))
}

macro_rules! py_records {
    ($( $(#[doc = $doc:expr])* $name:ident { $( $(#[doc = $fdoc:expr])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[doc = $doc])*
            #[pyclass(module = "ferrymq", frozen, get_all)]
            pub struct $name {
                $( $(#[doc = $fdoc])* $field: <$ty as ToHost>::Host, )*
            }

            impl ToHost for ferrymq::$name {
                type Host = Py<$name>;
                fn to_host(self, py: Python<'_>) -> PyResult<Py<$name>> {
                    let ferrymq::$name { $($field),* } = self;
                    Py::new(py, $name { $( $field: $field.to_host(py)?, )* })
                }
            }

            #[pymethods]
            impl $name {
                fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                    repr(slf.as_any(), stringify!($name), &[$(stringify!($field)),*])
                }
            }
        )*

        /// Adds every record class to the module.
        pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_class::<$name>()?; )*
            Ok(())
        }
    };
}

ferrymq::for_each_record!(py_records);
