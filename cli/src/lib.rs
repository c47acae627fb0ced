//! `ferrymq`: the operator command over one queue file. Every command opens the file
//! given by `--db` (or `FERRYMQ_DB`) through the core crate's public API, prints a table
//! for people or `--json` for scripts, and exits with a documented code (`exit.rs`).
//!
//! A library so the same command ships inside the Python wheel and the npm addon (their
//! `ferrymq` scripts call [`main`]); `src/main.rs` is the Rust binary.

mod args;
mod commands;
mod duration;
mod exit;
mod output;
mod progress;
mod serve;
mod views;

use clap::Parser;
use std::ffi::OsString;
use std::io::Write;

/// Runs one command line (`args[0]` is the program name) and returns its exit code.
/// Writes go straight to this process's stdout and stderr (fds 1 and 2), and terminal
/// detection looks at them, as in the binary.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let code = match args::Cli::try_parse_from(args) {
        // --help and --version print to stdout and exit 0; bad arguments print the usage
        // to stderr and exit 2 (exit::USAGE), as clap's own exit does.
        Err(e) => {
            let _ = e.print();
            e.exit_code()
        }
        Ok(cli) => match commands::run(cli) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("ferrymq: {}", e.message);
                e.code
            }
        },
    };
    // A host (Python, Node) exits without running Rust's exit-time flush.
    let _ = std::io::stdout().flush();
    code
}

/// [`run`] for a process that is the command and nothing else (the binary, and the Python
/// and npm `ferrymq` scripts): dies quietly when a reader of stdout goes away
/// (`ferrymq tail t | head`), as other Unix tools do, instead of failing on the next
/// write. Python and Node ignore SIGPIPE, so this restores the default first.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    run(args)
}
