//! `metrics_listen`: the sections' counters and the file's gauges in Prometheus' text
//! format on `GET /metrics`, served by the relay process itself. Each relay process
//! exports what it moved since it started, as any Prometheus client does; `sum()` adds
//! several relays up. The file's gauges (`ferrymq_messages_ready` per group, ...) show the
//! lag of every relay group whichever process reads them.

use crate::counters::Counters;
use ferrymq::Queue;
use ferrymq::metrics::Family;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// One `[[egress]]` or `[[ingress]]` section as its series name it.
#[derive(Clone)]
pub struct Section {
    pub name: String,
    pub direction: &'static str,
    pub counters: Arc<Counters>,
}

const SENT: &str = "Messages a section moved: egress confirmed by the broker and acked locally, ingress committed locally.";
const FAILED: &str =
    "Writes that failed: nacked locally (egress) or left unacked at the broker (ingress).";
const RECONNECTS: &str = "Broker connections re-established after a failure.";
const LAG: &str =
    "Deliveries of an egress group not yet acked (ready, waiting, in flight, retrying).";
const LAG_AGE: &str = "How long the oldest ready delivery of an egress group has waited.";

/// Reads one number of a section's counters.
type Read = fn(&Counters) -> f64;

/// The sections' families: counters of what each moved, gauges of an egress' lag.
pub fn exposition(sections: &[Section]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, read: Read| {
        let mut f = Family::new(&mut out, name, kind, help);
        // An ingress has no group of its own to lag behind.
        let has = |s: &&Section| kind == "counter" || s.direction == "egress";
        for s in sections.iter().filter(has) {
            let labels = [("section", s.name.as_str()), ("direction", s.direction)];
            f.sample(name, &labels, read(&s.counters));
        }
    };
    let sent: Read = |c| c.sent.load(Relaxed) as f64;
    let failed: Read = |c| c.failed.load(Relaxed) as f64;
    let reconnects: Read = |c| c.reconnects.load(Relaxed) as f64;
    let lag: Read = |c| c.lag_messages.load(Relaxed) as f64;
    let age: Read = |c| c.lag_ms.load(Relaxed) as f64 / 1000.0;
    family("ferrymq_bridge_sent_total", "counter", SENT, sent);
    family("ferrymq_bridge_failed_total", "counter", FAILED, failed);
    family(
        "ferrymq_bridge_reconnects_total",
        "counter",
        RECONNECTS,
        reconnects,
    );
    family("ferrymq_bridge_lag_messages", "gauge", LAG, lag);
    family("ferrymq_bridge_lag_seconds", "gauge", LAG_AGE, age);
    out
}

/// Scrapes answered at once; a connection beyond them is closed unanswered, so that slow
/// or many clients cannot take the descriptors and threads the sections need.
const MAX_CLIENTS: usize = 4;

/// Answers every connection of `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, q: Queue, sections: Arc<Vec<Section>>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, typically: let the sections have them for a while.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let (q, sections) = (q.clone(), sections.clone());
        tokio::spawn(async move {
            // A client that sends nothing, or too slowly, is dropped.
            let _ =
                tokio::time::timeout(Duration::from_secs(10), answer(stream, q, sections)).await;
            drop(slot);
        });
    }
}

/// One request, then the connection is closed: `GET /metrics` is the only page.
async fn answer(
    mut stream: TcpStream,
    q: Queue,
    sections: Arc<Vec<Section>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let wanted = line.starts_with("GET ") && path.split('?').next() == Some("/metrics");
    let (status, body) = if wanted {
        // The file's gauges are a read of the file: off the runtime's threads.
        let file = tokio::task::spawn_blocking(move || ferrymq::metrics::render(&q)).await;
        match file {
            Ok(Ok(text)) => ("200 OK", text + &exposition(&sections)),
            Ok(Err(e)) => ("503 Service Unavailable", format!("{e}\n")),
            Err(e) => ("500 Internal Server Error", format!("{e}\n")),
        }
    } else {
        ("404 Not Found", "GET /metrics\n".to_string())
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}
