//! `ferrymq-bridge --config relay.toml`: the relay/ingress command on its own (the same
//! code as `ferrymq relay`).
fn main() {
    std::process::exit(ferrymq_bridge::main_with_args(std::env::args().skip(1)));
}
