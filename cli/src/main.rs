//! `ferrymq`: the operator command over one queue file. Every command opens the file
//! given by `--db` (or `FERRYMQ_DB`) through the core crate's public API, prints a table
//! for people or `--json` for scripts, and exits with a documented code (`exit.rs`).

mod args;
mod commands;
mod duration;
mod exit;
mod output;
mod progress;
mod serve;
mod views;

use clap::Parser;

fn main() {
    // Die quietly when a reader of stdout goes away (`ferrymq tail t | head`), as other
    // Unix tools do, instead of failing on the next write.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = args::Cli::parse();
    let code = match commands::run(cli) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("ferrymq: {}", e.message);
            e.code
        }
    };
    std::process::exit(code);
}
