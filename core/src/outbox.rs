//! The transactional outbox: one SQLite write transaction on the queue's file in which
//! the caller runs its own SQL, publishes, and acks. Commit makes all of it visible at
//! once; anything else (an error, a panic, a drop) rolls all of it back. The inbox
//! (`inbox`) remembers a consumer's keys in the same transaction.

use crate::counters::Event;
use crate::error::{Error, Result};
use crate::fork;
use crate::inner::{Active, Inner, PooledConn};
use crate::model::Delivery;
use crate::options::{Message, PublishOptions};
use crate::publish;
use crate::store::{self, settle};
use rusqlite::types::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::ThreadId;
use std::time::Duration;

/// An open write transaction. Drop without `commit` rolls back.
pub struct Transaction {
    inner: Arc<Inner>,
    conn: Option<PooledConn>,
    thread: ThreadId,
    /// Something was published or released: wake receivers after commit.
    wakes: bool,
    /// What to count (`counters`) once the commit succeeds.
    events: Vec<(Event, String, String)>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("open", &self.conn.is_some())
            .finish()
    }
}

impl Transaction {
    pub(crate) fn begin(inner: &Arc<Inner>) -> Result<Transaction> {
        inner.check_open()?;
        let thread = inner.enter_transaction()?;
        let started = inner.conn().and_then(|conn| {
            conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            // Between the caller's calls no thread is inside SQLite on it (see `fork`).
            conn.park(fork::IN_TX);
            Ok(conn)
        });
        match started {
            Ok(conn) => Ok(Transaction {
                inner: Arc::clone(inner),
                conn: Some(conn),
                thread,
                wakes: false,
                events: Vec::new(),
            }),
            Err(e) => {
                inner.leave_transaction(thread);
                Err(e)
            }
        }
    }

    fn live(&self) -> Result<Active<'_>> {
        self.inner.check_open()?;
        let conn = self
            .conn
            .as_ref()
            .ok_or_else(|| Error::invalid("the transaction has already ended"))?
            .activate();
        if conn.is_autocommit() {
            // SQLite rolls a whole transaction back on some errors (a full disk, say).
            // Anything run now would commit on its own, outside this transaction.
            return Err(rolled_back_by_sqlite());
        }
        Ok(conn)
    }

    /// The underlying connection, for Rust callers who want rusqlite's full API. Writes
    /// to `ferrymq_*` tables through it bypass the queue's invariants: don't.
    pub fn connection(&self) -> Result<&rusqlite::Connection> {
        drop(self.live()?);
        Ok(self.conn.as_ref().expect("live checked it"))
    }

    /// Runs one statement of the caller's SQL with bound parameters; returns rows changed.
    /// Statements that end the transaction, attach files, set pragmas, write to the
    /// queue's own tables, or create temporary triggers, tables or views (they would stay
    /// on the queue's pooled connection) are refused with `InvalidArgument`.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        let conn = self.live()?;
        // In a savepoint: a trigger refused after it was created goes with the statement.
        store::all_or_nothing(&conn, |c| {
            let n = with_user_sql(&conn, || {
                let mut stmt = c.prepare(sql)?;
                stmt.execute(rusqlite::params_from_iter(params.iter()))
            })?;
            store::schema::check_created_trigger(c)?;
            Ok(n)
        })
    }

    /// Runs one query of the caller's SQL; returns every row.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
        let conn = self.live()?;
        with_user_sql(&conn, || {
            let mut stmt = conn.prepare(sql)?;
            let width = stmt.column_count();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    (0..width).map(|i| r.get::<_, Value>(i)).collect()
                })?
                .collect::<rusqlite::Result<Vec<Vec<Value>>>>()?;
            Ok(rows)
        })
    }

    pub fn publish(
        &mut self,
        topic: &str,
        payload: impl AsRef<[u8]>,
        options: PublishOptions,
    ) -> Result<i64> {
        let payload = payload.as_ref();
        publish::validate(&self.inner, topic, payload, &options)?;
        let id =
            publish::write_in_callers_tx(&self.inner, &**self.live()?, topic, payload, &options)?;
        self.wakes = true;
        self.events
            .push((Event::Published, topic.to_owned(), String::new()));
        Ok(id)
    }

    pub fn publish_batch(&mut self, messages: &[Message]) -> Result<Vec<i64>> {
        publish::validate_batch(&self.inner, messages)?;
        let ids = store::all_or_nothing(&**self.live()?, |c| {
            publish::write_batch(&self.inner, c, messages)
        })?;
        self.wakes = true;
        self.events.extend(
            messages
                .iter()
                .map(|m| (Event::Published, m.topic.clone(), String::new())),
        );
        Ok(ids)
    }

    /// Acks inside this transaction: if the lease was lost, this fails with `LeaseLost`
    /// and the caller's transaction should roll back with it (exactly-once effect).
    pub fn ack(&mut self, delivery: &Delivery) -> Result<()> {
        store::all_or_nothing(&**self.live()?, |c| {
            settle::ack(c, delivery, self.inner.now())
        })?;
        self.wakes |= delivery.ordering_key.is_some();
        self.events.push(settled(Event::Acked, delivery));
        Ok(())
    }

    pub fn nack(
        &mut self,
        delivery: &Delivery,
        reason: &str,
        delay: Option<Duration>,
    ) -> Result<()> {
        crate::validate::nack_delay(delay)?;
        let reason = crate::validate::error_text(reason);
        let delay = delay.map(crate::clock::duration_to_ms);
        let after = store::all_or_nothing(&**self.live()?, |c| {
            settle::nack(
                c,
                delivery,
                &reason,
                delay,
                self.inner.now(),
                self.inner.rng.unit(),
            )
        })?;
        self.wakes = true;
        self.events.push(settled(Event::Nacked, delivery));
        if after == crate::retry::AfterFailure::Dead {
            self.events.push(settled(Event::DeadLettered, delivery));
        }
        Ok(())
    }

    /// The inbox: true the first time `key` is seen (within `window`, default
    /// [`defaults::INBOX_WINDOW`](crate::defaults::INBOX_WINDOW)), false while it is
    /// still remembered (a redelivery, a repeated callback). The key is remembered if and
    /// only if this transaction commits, so "write only when true, then ack" in one
    /// transaction applies each key's effect once. A key past its window counts as new
    /// again. Keys share one namespace per file: prefix them (`"alipay:" + notify_id`).
    pub fn inbox(&mut self, key: &str, window: Option<Duration>) -> Result<bool> {
        let window = inbox_window(key, window)?;
        let conn = self.live()?;
        let (now, window) = (self.inner.now(), crate::clock::duration_to_ms(window));
        store::all_or_nothing(&conn, |c| store::inbox::see(c, key, now, window))
    }

    /// Makes everything done in the transaction durable and visible at once.
    pub fn commit(&mut self) -> Result<()> {
        let conn = self.end()?;
        self.inner.check_open()?;
        let active = conn.activate();
        if active.is_autocommit() {
            return Err(rolled_back_by_sqlite());
        }
        active.prepare_cached("COMMIT")?.execute([])?;
        drop(active);
        drop(conn);
        if self.wakes {
            self.inner.wake.bump();
        }
        self.inner
            .counters
            .add_all(std::mem::take(&mut self.events));
        Ok(())
    }

    /// Discards everything done in the transaction.
    pub fn rollback(&mut self) -> Result<()> {
        let conn = self.end()?;
        let active = conn.activate();
        if !active.is_autocommit() {
            active.prepare_cached("ROLLBACK")?.execute([])?;
        }
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    /// Takes the connection for `commit` or `rollback` to finish on: later calls on this
    /// handle fail, and the thread may begin another transaction.
    fn end(&mut self) -> Result<PooledConn> {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| Error::invalid("the transaction has already ended"))?;
        self.inner.leave_transaction(self.thread);
        Ok(conn)
    }
}

/// Checks an inbox key and window; returns the window to use.
pub(crate) fn inbox_window(key: &str, window: Option<Duration>) -> Result<Duration> {
    crate::validate::text("inbox key", key, crate::validate::MAX_KEY_LEN)?;
    let window = window.unwrap_or(crate::defaults::INBOX_WINDOW);
    crate::validate::inbox_window(window)?;
    Ok(window)
}

fn settled(event: Event, d: &Delivery) -> (Event, String, String) {
    (event, d.topic.clone(), d.consumer_group.clone())
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.inner.inherited() {
            // In a forked child: the connection is the parent's (it forgets itself).
            drop(self.conn.take());
            return;
        }
        if self.conn.take().is_some() {
            // The pooled connection rolls itself back when it goes.
            self.inner.leave_transaction(self.thread);
        }
    }
}

fn rolled_back_by_sqlite() -> Error {
    Error::Storage(
        "the transaction was rolled back after an earlier storage error (SQLite undid all of \
         it); nothing in it was committed, begin a new one"
            .into(),
    )
}

fn with_user_sql<T>(conn: &PooledConn, f: impl FnOnce() -> rusqlite::Result<T>) -> Result<T> {
    let flag = conn.user_sql();
    store::schema::take_refusal();
    store::schema::forget_created_trigger();
    flag.store(true, Ordering::Relaxed);
    let out = f();
    flag.store(false, Ordering::Relaxed);
    out.map_err(|e| Error::from_user_sql(e, store::schema::take_refusal()))
}

/// Publishes inside a transaction the caller opened on its own `rusqlite::Connection` to
/// the same file.
pub(crate) fn check_foreign(inner: &Inner, conn: &rusqlite::Connection) -> Result<()> {
    inner.check_open()?;
    if conn.is_autocommit() {
        return Err(Error::invalid(
            "no transaction is open on this connection; begin one (BEGIN IMMEDIATE) first",
        ));
    }
    let same = conn.path().is_some_and(|p| inner.is_file(p));
    if !same {
        return Err(Error::invalid(format!(
            "the connection is not open on this queue's file ({})",
            inner.path.display()
        )));
    }
    Ok(())
}
