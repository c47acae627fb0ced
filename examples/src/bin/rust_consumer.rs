//! A Rust consumer for cross-language tests: receives N messages of a group from a file
//! other processes (Python, Node, JVM) publish to, prints each payload on a line, acks.
//!
//! Run: `cargo run -p ferrymq-examples --bin rust_consumer -- <db> <group> <topic> <n>`

use ferrymq::{Options, Queue, ReceiveOptions, SubscribeOptions};
use std::time::Duration;

fn main() -> ferrymq::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, group, topic, n] = &args[..] else {
        eprintln!("usage: rust_consumer <db> <group> <topic> <n>");
        std::process::exit(2);
    };
    let n: usize = n.parse().unwrap_or(0);
    let q = Queue::open(db, Options::default())?;
    q.subscribe(group, topic, SubscribeOptions::new())?;
    println!("READY");
    let mut got = 0;
    while got < n {
        let ds = q.receive(
            group,
            ReceiveOptions::new().max(16).wait(Duration::from_secs(20)),
        )?;
        if ds.is_empty() {
            eprintln!("timed out after {got} of {n} messages");
            std::process::exit(1);
        }
        for d in ds {
            println!("{}", String::from_utf8_lossy(&d.payload));
            q.ack(&d)?;
            got += 1;
        }
    }
    q.close()
}
