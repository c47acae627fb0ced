//! The numbers a relay or an ingress reports: sent, failed, reconnects and lag. Shared
//! between the loop that moves messages and whoever prints them (atomics, no lock).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Counters {
    /// Egress: confirmed by the broker and acked locally. Ingress: committed locally (a
    /// redelivery the idempotency key dropped counts too: it is settled).
    pub sent: AtomicU64,
    /// Writes that failed (nacked locally, or left unacked at the broker).
    pub failed: AtomicU64,
    /// Connections re-established after a failure.
    pub reconnects: AtomicU64,
    /// Egress: deliveries of the group not yet acked (ready, waiting, in flight, retrying).
    pub lag_messages: AtomicU64,
    /// Egress: how long the oldest ready delivery has waited, in milliseconds.
    pub lag_ms: AtomicU64,
}

impl Counters {
    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Relaxed);
    }
    pub fn add_failed(&self, n: u64) {
        self.failed.fetch_add(n, Relaxed);
    }
    pub fn add_reconnect(&self) {
        self.reconnects.fetch_add(1, Relaxed);
    }
    pub fn set_lag(&self, messages: u64, ms: u64) {
        self.lag_messages.store(messages, Relaxed);
        self.lag_ms.store(ms, Relaxed);
    }

    /// One JSON object, as the command prints it.
    pub fn to_json(&self, name: &str) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "sent": self.sent.load(Relaxed),
            "failed": self.failed.load(Relaxed),
            "reconnects": self.reconnects.load(Relaxed),
            "lag_messages": self.lag_messages.load(Relaxed),
            "lag_seconds": self.lag_ms.load(Relaxed) as f64 / 1000.0,
        })
    }
}
