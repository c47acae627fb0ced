//! The baseline: a bare-rusqlite queue doing the minimal SQL for each operation, with
//! ferrymq's pragmas (WAL, synchronous=NORMAL, busy_timeout 5 s, temp_store MEMORY),
//! cached statements, and a one-table schema. Publish is one autocommit INSERT; receive
//! is one transaction that selects the oldest ready row and marks it taken with a token;
//! ack is a second transaction that marks it acked (rows are kept, as in ferrymq).

use crate::child::{BoxResult, Measured};
use crate::job::Kind;
use crate::workloads::{BATCH, TOPIC, now_ms, payload, stamp, warmup};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::time::{Duration, Instant};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB,
                                  state INTEGER, token INTEGER, due_at INTEGER);
    CREATE INDEX IF NOT EXISTS q_ready ON q (state, due_at);";

const READY: i64 = 0;
const TAKEN: i64 = 1;
const ACKED: i64 = 2;
const LEASE_MS: i64 = 30_000;

/// One connection to the baseline's file.
pub struct Bare {
    c: Connection,
    next_token: i64,
}

impl Bare {
    pub fn open(path: &Path) -> BoxResult<Bare> {
        let c = Connection::open(path)?;
        crate::workloads::key_connection(&c)?;
        c.busy_timeout(Duration::from_secs(5))?;
        let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("journal_mode is {mode}, not wal").into());
        }
        c.pragma_update(
            None,
            "synchronous",
            crate::workloads::synchronous().to_uppercase(),
        )?;
        c.pragma_update(None, "foreign_keys", false)?;
        c.pragma_update(None, "temp_store", "MEMORY")?;
        c.execute_batch(SCHEMA)?;
        Ok(Bare { c, next_token: 0 })
    }

    fn in_tx<T>(&self, f: impl FnOnce(&Connection) -> BoxResult<T>) -> BoxResult<T> {
        self.c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        match f(&self.c).and_then(|v| {
            self.c.prepare_cached("COMMIT")?.execute([])?;
            Ok(v)
        }) {
            Ok(v) => Ok(v),
            Err(e) => {
                let _ = self.c.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn insert(c: &Connection, payload: &[u8], now: i64) -> BoxResult<()> {
        c.prepare_cached("INSERT INTO q (topic, payload, state, due_at) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![TOPIC, payload, READY, now])?;
        Ok(())
    }

    /// One message, one autocommit INSERT (one commit).
    pub fn publish(&self, payload: &[u8]) -> BoxResult<()> {
        Self::insert(&self.c, payload, now_ms())
    }

    /// The messages in one transaction.
    pub fn publish_batch(&self, payloads: &[Vec<u8>]) -> BoxResult<()> {
        let now = now_ms();
        self.in_tx(|c| {
            for p in payloads {
                Self::insert(c, p, now)?;
            }
            Ok(())
        })
    }

    /// Whether a ready row exists: a plain read, no write lock.
    pub fn has_ready(&self) -> BoxResult<bool> {
        Ok(self
            .c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM q WHERE state = ?1 AND due_at <= ?2)")?
            .query_row(params![READY, now_ms()], |r| r.get(0))?)
    }

    /// Takes the oldest ready row under a fresh token: (id, token, payload).
    pub fn claim(&mut self) -> BoxResult<Option<(i64, i64, Vec<u8>)>> {
        self.next_token += 1;
        let token = self.next_token;
        let now = now_ms();
        self.in_tx(|c| {
            let row: Option<(i64, Vec<u8>)> = c
                .prepare_cached(
                    "SELECT id, payload FROM q WHERE state = ?1 AND due_at <= ?2
                     ORDER BY due_at, id LIMIT 1",
                )?
                .query_row(params![READY, now], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((id, payload)) = row else {
                return Ok(None);
            };
            c.prepare_cached(
                "UPDATE q SET state = ?2, token = ?3, due_at = ?4 WHERE id = ?1 AND state = ?5",
            )?
            .execute(params![id, TAKEN, token, now + LEASE_MS, READY])?;
            Ok(Some((id, token, payload)))
        })
    }

    /// Marks a taken row acked, if the token still holds it (one autocommit UPDATE).
    pub fn ack(&self, id: i64, token: i64) -> BoxResult<()> {
        let changed = self
            .c
            .prepare_cached(
                "UPDATE q SET state = ?3, token = NULL, due_at = ?4
                 WHERE id = ?1 AND token = ?2 AND state = ?5",
            )?
            .execute(params![id, token, ACKED, now_ms(), TAKEN])?;
        if changed != 1 {
            return Err(format!("baseline ack of {id} changed {changed} rows").into());
        }
        Ok(())
    }

    fn take_one(&mut self) -> BoxResult<()> {
        let (id, token, _) = self.claim()?.ok_or("the baseline queue ran dry")?;
        self.ack(id, token)
    }
}

fn publish_range(b: &Bare, from: u64, count: u64) -> BoxResult<()> {
    let mut p = payload(from);
    for i in from..from + count {
        stamp(&mut p, i);
        b.publish(&p)?;
    }
    Ok(())
}

/// Runs one rate workload on a fresh baseline file.
pub fn run(kind: Kind, n: u64, dir: &Path) -> BoxResult<Measured> {
    let mut b = Bare::open(&dir.join("baseline.db"))?;
    let warm = warmup(n);
    let (ops, t) = match kind {
        Kind::Publish => {
            publish_range(&b, 0, warm)?;
            let t = Instant::now();
            publish_range(&b, warm, n)?;
            (n, t)
        }
        Kind::Batch => {
            let batches = (n / BATCH).max(1);
            let payloads: Vec<Vec<u8>> = (0..BATCH).map(payload).collect();
            b.publish_batch(&payloads)?;
            let t = Instant::now();
            for _ in 0..batches {
                b.publish_batch(&payloads)?;
            }
            (batches * BATCH, t)
        }
        Kind::Drain => {
            let payloads: Vec<Vec<u8>> = (0..BATCH).map(payload).collect();
            let mut left = n + warm;
            while left > 0 {
                let k = left.min(BATCH) as usize;
                b.publish_batch(&payloads[..k])?;
                left -= k as u64;
            }
            for _ in 0..warm {
                b.take_one()?;
            }
            let t = Instant::now();
            for _ in 0..n {
                b.take_one()?;
            }
            (n, t)
        }
        Kind::Publish8 | Kind::LatencyIn | Kind::LatencyCross => {
            return Err(format!("the baseline has no {} rate workload", kind.name()).into());
        }
    };
    Ok(Measured {
        ops,
        secs: t.elapsed().as_secs_f64(),
        ..Measured::default()
    })
}
