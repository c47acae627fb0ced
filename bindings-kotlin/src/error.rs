//! One error enum with a variant per `ferrymq::ErrorKind`, mapped by kind (never by
//! text). uniffi turns it into the sealed `FfiException` that the Kotlin layer maps to
//! `FerrymqException`. The field is `reason`: a field named `message` would collide with
//! `Throwable.message` in the generated Kotlin.

use ferrymq::ErrorKind;

#[derive(Debug, uniffi::Error)]
pub enum FfiError {
    InvalidArgument {
        reason: String,
    },
    NotFound {
        reason: String,
    },
    LeaseLost {
        reason: String,
    },
    Closed {
        reason: String,
    },
    Busy {
        reason: String,
    },
    Storage {
        reason: String,
    },
    Callback {
        reason: String,
    },
    /// Last so that the earlier variants keep their index in uniffi's wire format.
    Full {
        reason: String,
    },
    /// After `Full`, for the same reason.
    Encryption {
        reason: String,
    },
}

impl FfiError {
    pub fn invalid(reason: impl Into<String>) -> Self {
        FfiError::InvalidArgument {
            reason: reason.into(),
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            FfiError::InvalidArgument { reason }
            | FfiError::NotFound { reason }
            | FfiError::LeaseLost { reason }
            | FfiError::Closed { reason }
            | FfiError::Busy { reason }
            | FfiError::Storage { reason }
            | FfiError::Callback { reason }
            | FfiError::Full { reason }
            | FfiError::Encryption { reason } => reason,
        }
    }
}

impl std::fmt::Display for FfiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for FfiError {}

impl From<ferrymq::Error> for FfiError {
    fn from(e: ferrymq::Error) -> Self {
        let reason = e.to_string();
        match e.kind() {
            ErrorKind::InvalidArgument => FfiError::InvalidArgument { reason },
            ErrorKind::NotFound => FfiError::NotFound { reason },
            ErrorKind::LeaseLost => FfiError::LeaseLost { reason },
            ErrorKind::Closed => FfiError::Closed { reason },
            ErrorKind::Busy => FfiError::Busy { reason },
            ErrorKind::Callback => FfiError::Callback { reason },
            ErrorKind::Full => FfiError::Full { reason },
            ErrorKind::Encryption => FfiError::Encryption { reason },
            // Storage, and any kind a newer core adds, until this binding names it.
            _ => FfiError::Storage { reason },
        }
    }
}

/// A Kotlin callback that threw although its adapter catches everything (should not
/// happen): reported as a callback failure.
impl From<uniffi::UnexpectedUniFFICallbackError> for FfiError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        FfiError::Callback { reason: e.reason }
    }
}

pub type FfiResult<T> = Result<T, FfiError>;
