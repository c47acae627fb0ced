//! One error type for the whole crate, with a stable [`ErrorKind`] that every binding maps
//! to its own exception or error code. Bindings match the kind, never the text.

use std::fmt;

/// The result type of every fallible ferrymq call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with a message naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something ferrymq refuses; nothing was changed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A consumer group, message or dead letter that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The delivery's lease token no longer matches: it was acked, nacked, or taken over
    /// by another consumer after the lease expired.
    #[error("lease lost: message {message_id} in group {group} is no longer held by this delivery")]
    LeaseLost { message_id: i64, group: String },
    /// The queue was closed (or opened in a parent process before `fork`).
    #[error("closed: {0}")]
    Closed(String),
    /// Another writer held the file for longer than `busy_timeout`.
    #[error("busy: {0}")]
    Busy(String),
    /// I/O error, disk full, a corrupt or foreign file, or a schema from a newer version.
    #[error("storage: {0}")]
    Storage(String),
    /// A callback supplied by the caller failed (returned an error or panicked).
    #[error("callback failed: {0}")]
    Callback(String),
    /// A publish was refused because a consumer group it goes to already has
    /// `Options::max_ready` messages waiting; nothing was written.
    #[error("full: {0}")]
    Full(String),
    /// An encrypted file opened without its key or with a wrong one, a plain file opened
    /// with a key, an encrypted file cut short, or a key provider that failed. Nothing in
    /// the file was read or changed.
    #[error("encryption: {0}")]
    Encryption(String),
}

/// The stable taxonomy of [`Error`], shared by every binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    LeaseLost,
    Closed,
    Busy,
    Storage,
    Callback,
    Full,
    Encryption,
}

impl ErrorKind {
    /// The code used by the Node binding and the CLI (`INVALID_ARGUMENT`, ...).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::LeaseLost => "LEASE_LOST",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::Busy => "BUSY",
            ErrorKind::Storage => "STORAGE",
            ErrorKind::Callback => "CALLBACK",
            ErrorKind::Full => "FULL",
            ErrorKind::Encryption => "ENCRYPTION",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::LeaseLost { .. } => ErrorKind::LeaseLost,
            Error::Closed(_) => ErrorKind::Closed,
            Error::Busy(_) => ErrorKind::Busy,
            Error::Storage(_) => ErrorKind::Storage,
            Error::Callback(_) => ErrorKind::Callback,
            Error::Full(_) => ErrorKind::Full,
            Error::Encryption(_) => ErrorKind::Encryption,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Maps an error raised by SQL the caller wrote (`Transaction::execute`/`query`):
    /// syntax errors, missing tables and constraint violations are the caller's input.
    /// `refused` is why the statement guard refused it, when it did.
    pub(crate) fn from_user_sql(err: rusqlite::Error, refused: Option<&str>) -> Self {
        use rusqlite::ErrorCode as C;
        match &err {
            rusqlite::Error::SqliteFailure(e, _)
                if e.code == C::AuthorizationForStatementDenied =>
            {
                let why = refused.unwrap_or(
                    "it would end the transaction, attach a file, set a pragma, write to \
                     ferrymq's own tables, or create a temporary trigger, table or view",
                );
                Error::InvalidArgument(format!(
                    "statement refused inside a ferrymq transaction: {why} ({err})"
                ))
            }
            rusqlite::Error::SqliteFailure(e, _)
                if matches!(
                    e.code,
                    C::Unknown
                        | C::ConstraintViolation
                        | C::TypeMismatch
                        | C::ApiMisuse
                        | C::TooBig
                ) =>
            {
                Error::InvalidArgument(format!("SQL failed: {err}"))
            }
            rusqlite::Error::SqlInputError { .. }
            | rusqlite::Error::InvalidParameterCount(..)
            | rusqlite::Error::InvalidParameterName(_)
            | rusqlite::Error::MultipleStatement
            | rusqlite::Error::ExecuteReturnedResults
            | rusqlite::Error::InvalidColumnType(..) => {
                Error::InvalidArgument(format!("SQL failed: {err}"))
            }
            _ => Error::from(err),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match &err {
            rusqlite::Error::SqliteFailure(e, _) => match e.code {
                C::DatabaseBusy | C::DatabaseLocked => Error::Busy(format!(
                    "the database file stayed locked past busy_timeout ({err})"
                )),
                // SQLCipher's answer to a page its key does not authenticate, too.
                C::NotADatabase => Error::Storage(format!(
                    "not a SQLite database, or not readable with this connection's key \
                     (rekeyed by another process?): {err}"
                )),
                C::DatabaseCorrupt => Error::Storage(format!("database file is corrupt: {err}")),
                C::DiskFull => Error::Storage(format!("disk full: {err}")),
                C::ReadOnly => Error::Storage(format!("database is read-only: {err}")),
                C::CannotOpen => Error::Storage(format!("cannot open database file: {err}")),
                _ => Error::Storage(err.to_string()),
            },
            _ => Error::Storage(err.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Storage(err.to_string())
    }
}

/// The text of a caught panic, for the error that reports it.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_maps_to_busy_and_io_to_storage() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(Error::from(busy).kind(), ErrorKind::Busy);
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(Error::from(full).kind(), ErrorKind::Storage);
    }

    #[test]
    fn user_sql_syntax_error_is_invalid_argument() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err = conn.execute("this is not sql", []).unwrap_err();
        assert_eq!(
            Error::from_user_sql(err, None).kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(ErrorKind::LeaseLost.code(), "LEASE_LOST");
        assert_eq!(Error::Full("x".into()).kind().code(), "FULL");
        assert_eq!(
            Error::Closed("x".into()).kind().to_string(),
            "CLOSED".to_string()
        );
    }
}
