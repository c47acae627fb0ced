//! The `ferrymq` binary: the command lives in the library (`lib.rs`), shared with the
//! Python and npm packages' `ferrymq` scripts.

fn main() {
    std::process::exit(ferrymq_cli::main(std::env::args_os()));
}
