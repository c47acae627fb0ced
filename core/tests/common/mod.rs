//! Helpers shared by the integration tests: a queue on a real file in a temp dir, with a
//! manual clock, and raw access to the file for asserting what changed.
#![allow(dead_code)]

use ferrymq::{
    Delivery, ManualClock, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions,
};
use std::time::Duration;

pub struct TestQueue {
    pub q: Queue,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
}

impl TestQueue {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_700_000_000_000);
        let q = Queue::open(
            dir.path().join("q.db"),
            options.with_manual_clock(clock.clone()),
        )
        .unwrap();
        TestQueue { q, clock, dir }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("q.db")
    }

    /// Another queue on the same file and clock.
    pub fn reopen(&self) -> Queue {
        Queue::open(
            self.path(),
            Options::default().with_manual_clock(self.clock.clone()),
        )
        .unwrap()
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub fn sub(&self, group: &str, topic: &str) {
        self.q
            .subscribe(group, topic, SubscribeOptions::new())
            .unwrap();
    }

    pub fn sub_with(&self, group: &str, topic: &str, o: SubscribeOptions) {
        self.q.subscribe(group, topic, o).unwrap();
    }

    pub fn publish(&self, topic: &str, payload: &str) -> i64 {
        self.q
            .publish(topic, payload, PublishOptions::new())
            .unwrap()
    }

    pub fn take(&self, group: &str, max: usize) -> Vec<Delivery> {
        self.q
            .receive(group, ReceiveOptions::new().max(max))
            .unwrap()
    }

    pub fn take_one(&self, group: &str) -> Option<Delivery> {
        self.take(group, 1).pop()
    }

    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path()).unwrap()
    }

    /// Every queue row, as text: compared before and after a call that must change nothing.
    pub fn snapshot(&self) -> Vec<String> {
        let conn = self.raw();
        let mut out = Vec::new();
        for table in [
            "ferrymq_topics",
            "ferrymq_groups",
            "ferrymq_subscriptions",
            "ferrymq_messages",
            "ferrymq_deliveries",
            "ferrymq_attempts",
            "ferrymq_idempotency",
            "ferrymq_checks",
            "ferrymq_counted",
            "ferrymq_inbox",
        ] {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let cols: Vec<String> = (0..n)
                        .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                        .collect();
                    Ok(format!("{table}: {}", cols.join(", ")))
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            out.extend(rows);
        }
        out.sort();
        out
    }

    /// (state, attempt, due_at, lease_token, last_error) of one delivery row.
    pub fn delivery_row(
        &self,
        message_id: i64,
        group: &str,
    ) -> (i64, i64, i64, Option<i64>, Option<String>) {
        self.raw()
            .query_row(
                "SELECT d.state, d.attempt, d.due_at, d.lease_token, d.last_error
                 FROM ferrymq_deliveries d JOIN ferrymq_groups g ON g.id = d.group_id
                 WHERE d.message_id = ?1 AND g.name = ?2",
                rusqlite::params![message_id, group],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    }
}

/// Every delivery as (payload, group name, state, due_at, attempt, ordering key): the
/// rows, and a pending one for each plain message above a group's cursor, which gets its
/// row when the group claims (schema 11).
pub const DELIVERIES: &str = "
    SELECT m.payload, g.name, d.state, d.due_at, d.attempt, d.ordering_group
    FROM ferrymq_deliveries d JOIN ferrymq_messages m ON m.id = d.message_id
    JOIN ferrymq_groups g ON g.id = d.group_id
    UNION ALL
    SELECT m.payload, g.name, 0, m.deliver_at, 0, NULL
    FROM ferrymq_messages m JOIN ferrymq_groups g ON g.topic_id = m.topic_id
    WHERE m.via_cursor = 1 AND m.id > g.delivered_through
      AND EXISTS (SELECT 1 FROM ferrymq_subscriptions s
                  WHERE s.topic_id = m.topic_id AND s.tag IN ('*', m.tag) AND s.group_id = g.id)";

pub fn text(d: &Delivery) -> String {
    String::from_utf8(d.payload.clone()).unwrap()
}

/// Runs `f` as this test's child role when the parent spawned us with `FERRYMQ_ROLE`.
/// Returns true in the child.
pub fn child_role(f: impl FnOnce(&str)) -> bool {
    match std::env::var("FERRYMQ_ROLE") {
        Ok(role) => {
            f(&role);
            true
        }
        Err(_) => false,
    }
}

/// Spawns this test binary to run only `test` as a child with `role`.
pub fn spawn_child(test: &str, role: &str, envs: &[(&str, String)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("FERRYMQ_ROLE", role)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}
