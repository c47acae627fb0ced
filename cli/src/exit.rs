//! Exit codes, and the one error type every command returns: a message for stderr and
//! the code it exits with.

/// Done.
pub const OK: i32 = 0;
/// The file or the queue failed (storage, busy, a failed check).
pub const ERROR: i32 = 1;
/// Bad input: arguments clap refused, or values the queue refused (`InvalidArgument`).
pub const USAGE: i32 = 2;
/// The file, consumer group, message or half message does not exist.
pub const NOT_FOUND: i32 = 3;
/// A destructive command was refused (no `--yes` off a terminal) or declined.
pub const REFUSED: i32 = 4;

/// The text shown in `ferrymq --help`.
pub const HELP: &str = "Exit codes: 0 ok, 1 error (storage, busy, a failed check), \
2 usage (bad arguments or values), 3 not found (file, group, message), \
4 refused or aborted (a destructive command without --yes off a terminal, or declined).";

#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }
}

impl From<ferrymq::Error> for Failure {
    fn from(e: ferrymq::Error) -> Self {
        use ferrymq::ErrorKind as K;
        let code = match e.kind() {
            K::InvalidArgument => USAGE,
            K::NotFound => NOT_FOUND,
            _ => ERROR,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(ERROR, e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Failure>;
