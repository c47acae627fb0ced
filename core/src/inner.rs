//! The state one `Queue` owns: its connections, its wake-up signal, the threads that hold
//! an open transaction, and the checker thread. Nothing here is global: two queues on
//! one file in one process share nothing but the file.

use crate::cipher::{self, Keyring};
use crate::error::{Error, Result};
use crate::fork::{self, ACTIVE, Conns, IDLE};
use crate::options::Options;
use crate::store::{self, schema};
use crate::wake::Wake;
use rusqlite::Connection;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::ErrorKind as IoKind;
use std::ops::Deref;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

/// Idle connections kept for reuse; more are opened on demand and closed when returned.
const POOL_KEEP: usize = 16;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; the data it
    // guards (a list, a map) is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Inner {
    pub path: PathBuf,
    /// The canonical path, to recognise the file in `publish_in`.
    pub real_path: PathBuf,
    pub opts: Options,
    pool: Mutex<Vec<Tracked>>,
    /// Every open connection and what it is doing, for `fork()` (see `fork`).
    conns: Arc<Conns>,
    closed: AtomicBool,
    pub rng: Rng,
    topics: Mutex<HashMap<String, i64>>,
    groups: Mutex<HashMap<String, i64>>,
    pub wake: Wake,
    open_txs: AtomicUsize,
    tx_threads: Mutex<Vec<ThreadId>>,
    pub checks: crate::half::CheckerRegistry,
    pub group_commit: crate::commit::GroupCommit,
    pub counters: crate::counters::Counters,
    /// The earliest schedule tick as last read (see `schedule`).
    pub schedules: crate::schedule::DueCache,
    /// The key of an encrypted file (`None`: plain).
    pub keyring: Option<Keyring>,
}

/// A connection known to `fork`: closing it in the parent forgets it there too.
struct Tracked {
    c: schema::Connected,
    state: Arc<AtomicU8>,
    conns: Arc<Conns>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.conns.untrack(&self.state);
    }
}

/// A connection borrowed from the pool; rolls back anything left open and returns itself.
/// While borrowed it is `ACTIVE` (a thread may be inside SQLite) unless parked.
pub(crate) struct PooledConn {
    inner: Arc<Inner>,
    c: Option<Tracked>,
}

impl PooledConn {
    fn tracked(&self) -> &Tracked {
        self.c.as_ref().expect("present until drop")
    }

    /// See `schema::scrub_wal`.
    pub fn scrub_wal(&self) {
        schema::scrub_wal(&self.tracked().c);
    }

    pub fn user_sql(&self) -> &AtomicBool {
        &self.tracked().c.user_sql
    }

    /// Says that no thread will use the connection until `activate`, so a fork need not
    /// wait for it. `state` is `fork::PARKED` (outside any transaction) or `fork::IN_TX`.
    pub fn park(&self, state: u8) {
        let t = self.tracked();
        if t.state.swap(state, Ordering::SeqCst) == ACTIVE {
            t.conns.leave();
        }
    }

    /// Takes a parked connection back for a while (waits if a fork is being prepared).
    pub fn activate(&self) -> Active<'_> {
        let t = self.tracked();
        t.conns.enter();
        let parked = t.state.swap(ACTIVE, Ordering::SeqCst);
        Active { conn: self, parked }
    }
}

/// A parked connection taken back; parks it again when dropped.
pub(crate) struct Active<'a> {
    conn: &'a PooledConn,
    parked: u8,
}

impl Deref for Active<'_> {
    type Target = PooledConn;
    fn deref(&self) -> &PooledConn {
        self.conn
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.conn.park(self.parked);
    }
}

impl Deref for PooledConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.tracked().c.conn
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(t) = self.c.take() else { return };
        if self.inner.conns.inherited() {
            // The parent's connection: closing it here would act on the parent's file
            // state (see `fork`).
            std::mem::forget(t);
            return;
        }
        if t.state.swap(ACTIVE, Ordering::SeqCst) != ACTIVE {
            t.conns.enter();
        }
        if !t.c.conn.is_autocommit() {
            let _ = t.c.conn.execute_batch("ROLLBACK");
        }
        t.c.user_sql.store(false, Ordering::Relaxed);
        t.state.store(IDLE, Ordering::SeqCst);
        let conns = Arc::clone(&t.conns);
        if !self.inner.closed.load(Ordering::Acquire) && self.inner.current_key(&t) {
            let mut pool = lock(&self.inner.pool);
            if pool.len() < POOL_KEEP {
                pool.push(t);
            }
        } else {
            drop(t);
        }
        conns.leave();
    }
}

/// Creates the file readable by its owner only (on unix; elsewhere with the directory's
/// default permissions), unless it exists.
fn create_private(path: &Path) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == IoKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Storage(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

impl Inner {
    pub fn open(path: &Path, opts: Options) -> Result<Arc<Inner>> {
        opts.validate()?;
        let text = path.to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file:") {
            return Err(Error::invalid(format!(
                "path must name a file on disk, got {text:?}: processes share the queue through the file"
            )));
        }
        // Before anything may create or touch the file: a key for a plain file, or none for
        // an encrypted one, is refused with the bytes unchanged.
        let kind = cipher::inspect(path)?;
        cipher::check_kind(path, kind, opts.key.is_some())?;
        let keyring = match &opts.key {
            Some(source) => Some(Keyring::open(source.clone(), path, kind)?),
            None => None,
        };
        create_private(path)?;
        let real_path = path.canonicalize()?;
        fork::before_open(&real_path)?;
        let first = schema::connect_keyed(path, &opts, keyring.as_ref())?;
        schema::prepare_file(&first.conn, opts.busy_timeout)?;
        if let Some(k) = &keyring {
            k.settle(path)?;
        }
        let conns = Conns::new(&real_path, opts.busy_timeout);
        let wake = Wake::open(&real_path);
        let state = conns.track(&first.conn);
        state.store(IDLE, Ordering::SeqCst);
        let first = Tracked {
            c: first,
            state,
            conns: Arc::clone(&conns),
        };
        Ok(Arc::new(Inner {
            path: path.to_owned(),
            real_path,
            opts,
            pool: Mutex::new(vec![first]),
            conns,
            closed: AtomicBool::new(false),
            rng: Rng::seeded(),
            topics: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            wake,
            open_txs: AtomicUsize::new(0),
            tx_threads: Mutex::new(Vec::new()),
            checks: Default::default(),
            group_commit: Default::default(),
            counters: Default::default(),
            schedules: Default::default(),
            keyring,
        }))
    }

    /// Whether `path` (a connection's file) names this queue's file.
    pub fn is_file(&self, path: &str) -> bool {
        std::path::Path::new(path)
            .canonicalize()
            .is_ok_and(|p| p == self.real_path)
    }

    pub fn now(&self) -> i64 {
        self.opts.clock.now_ms()
    }

    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the queue was closed".into()));
        }
        if self.conns.inherited() {
            return Err(Error::Closed(
                "the queue was opened before fork(); open a new Queue in the child process".into(),
            ));
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the queue closed and drops its idle connections. Returns false if it was
    /// closed already.
    pub fn mark_closed(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        if self.conns.inherited() {
            self.forget_inherited();
            return true;
        }
        self.conns.enter();
        lock(&self.pool).clear();
        self.conns.leave();
        self.wake.bump();
        true
    }

    /// Marks the queue closed, then stops its checker thread (in a forked child, which
    /// does not have that thread, only forgets it).
    pub fn close(&self) {
        if !self.mark_closed() {
            return;
        }
        if self.inherited() {
            self.checks.forget_thread();
        } else {
            self.checks.stop_and_join();
        }
    }

    /// True in a process forked after this queue was opened.
    pub fn inherited(&self) -> bool {
        self.conns.inherited()
    }

    /// In a forked child: closes what may be closed safely (see `fork`) and makes sure the
    /// Rust side never closes the parent's connections.
    fn forget_inherited(&self) {
        fork::unregister(&self.conns);
        if let Ok(mut pool) = self.pool.try_lock() {
            std::mem::forget(std::mem::take(&mut *pool));
        }
    }

    pub fn conn(self: &Arc<Self>) -> Result<PooledConn> {
        self.check_open()?;
        self.conns.enter();
        let t = match self.checked_out() {
            Ok(t) => t,
            Err(e) => {
                self.conns.leave();
                return Err(e);
            }
        };
        t.state.store(ACTIVE, Ordering::SeqCst);
        Ok(PooledConn {
            inner: Arc::clone(self),
            c: Some(t),
        })
    }

    /// A pooled connection, or a new one. On an encrypted file, one whose key no longer
    /// opens it (another process rekeyed the file) is dropped, the key source asked again,
    /// and a connection opened with the key found.
    fn checked_out(&self) -> Result<Tracked> {
        let pooled = lock(&self.pool).pop();
        let Some(keyring) = &self.keyring else {
            return match pooled {
                Some(t) => Ok(t),
                None => self.connect(),
            };
        };
        let seen = keyring.epoch();
        if let Some(t) = pooled {
            if t.c.epoch == seen && cipher::opens(&t.c.conn)? {
                return Ok(t);
            }
        }
        match self.connect() {
            Err(e) if e.kind() == crate::ErrorKind::Encryption => {
                lock(&self.pool).clear();
                keyring.refresh(&self.path, seen)?;
                self.connect()
            }
            other => other,
        }
    }

    fn connect(&self) -> Result<Tracked> {
        let c = schema::connect_keyed(&self.path, &self.opts, self.keyring.as_ref())?;
        Ok(Tracked {
            state: self.conns.track(&c.conn),
            c,
            conns: Arc::clone(&self.conns),
        })
    }

    /// Whether a connection returned to the pool is keyed with the current key.
    fn current_key(&self, t: &Tracked) -> bool {
        self.keyring.as_ref().is_none_or(|k| k.epoch() == t.c.epoch)
    }

    /// Rewrites the file under `key` and moves this queue's connections to it; then
    /// records it in the audit trail.
    pub fn rekey(self: &Arc<Self>, key: &crate::Key, reason: Option<&str>) -> Result<()> {
        let Some(keyring) = &self.keyring else {
            return Err(Error::invalid(format!(
                "{} is not encrypted: rekey changes the key of an encrypted file; encrypt a \
                 copy of a plain one with `ferrymq encrypt`",
                self.path.display()
            )));
        };
        self.refuse_inside_transaction()?;
        let conn = self.conn()?;
        keyring.rekey(&conn, &self.path, key)?;
        lock(&self.pool).clear();
        // SQLCipher's rekey commits by itself, so its record follows in a transaction of
        // its own, through the same connection (keyed with the new key now).
        store::write_tx(&conn, |c| {
            crate::audit::record(c, self, "rekey", "", None, reason).map(|_| ())
        })
    }

    /// After a purge (see `schema::scrub_wal`); a failure to get a connection loses nothing.
    pub fn scrub_wal(self: &Arc<Self>) {
        if let Ok(c) = self.conn() {
            c.scrub_wal();
        }
    }

    /// Runs `f` in a write transaction of its own. `wake` tells waiting receivers that
    /// something may have become deliverable.
    pub fn write<T>(
        self: &Arc<Self>,
        wake: bool,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.refuse_inside_transaction()?;
        let conn = self.conn()?;
        let out = store::write_tx(&conn, f)?;
        if wake {
            self.wake.bump();
        }
        Ok(out)
    }

    /// Runs a single write through group commit: it may share its transaction with other
    /// threads' writes, and returns once that transaction committed.
    pub fn write_shared(self: &Arc<Self>, wake: bool, job: crate::commit::Job) -> Result<i64> {
        self.refuse_inside_transaction()?;
        self.check_open()?;
        self.group_commit.run(self, wake, job)
    }

    /// Runs `f` in a read transaction: one consistent snapshot, no write lock.
    pub fn read<T>(self: &Arc<Self>, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        conn.prepare_cached("BEGIN")?.execute([])?;
        let out = f(&conn);
        let _ = conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        out
    }

    /// A thread that holds an open `Transaction` would wait on its own write lock until
    /// busy_timeout; tell it what to do instead. Every public call that may take the
    /// write lock asks this on the caller's thread: `write`, `write_shared`, a receive,
    /// and the async calls before they hand their work to another thread.
    pub(crate) fn refuse_inside_transaction(&self) -> Result<()> {
        if self.open_txs.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let me = std::thread::current().id();
        if lock(&self.tx_threads).contains(&me) {
            return Err(Error::invalid(
                "this thread has an open transaction on this queue: use the transaction's own \
                 methods (tx.publish, tx.ack, ...) or finish it first",
            ));
        }
        Ok(())
    }

    pub fn enter_transaction(&self) -> Result<ThreadId> {
        let me = std::thread::current().id();
        let mut threads = lock(&self.tx_threads);
        if threads.contains(&me) {
            return Err(Error::invalid(
                "a transaction is already open on this thread; nested transactions are not supported",
            ));
        }
        threads.push(me);
        self.open_txs.fetch_add(1, Ordering::AcqRel);
        Ok(me)
    }

    pub fn leave_transaction(&self, thread: ThreadId) {
        let mut threads = lock(&self.tx_threads);
        if let Some(i) = threads.iter().position(|t| *t == thread) {
            threads.swap_remove(i);
            self.open_txs.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The id of an existing consumer group (ids never change once committed).
    pub fn group_id(&self, conn: &Connection, name: &str) -> Result<i64> {
        if let Some(id) = lock(&self.groups).get(name) {
            return Ok(*id);
        }
        let id = store::groups::by_name(conn, name)?.id;
        lock(&self.groups).insert(name.to_owned(), id);
        Ok(id)
    }

    /// The topic's id, creating the topic if needed (inside the caller's transaction).
    pub fn topic_id(&self, conn: &Connection, name: &str) -> Result<i64> {
        if let Some(id) = lock(&self.topics).get(name) {
            return Ok(*id);
        }
        let (id, existed) = store::publish::ensure_topic(conn, name)?;
        if existed {
            lock(&self.topics).insert(name.to_owned(), id);
        }
        Ok(id)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.conns.inherited() {
            // The checker thread is the parent's; this process does not have it.
            self.checks.forget_thread();
            self.forget_inherited();
            let pool = self.pool.get_mut().unwrap_or_else(|e| e.into_inner());
            std::mem::forget(std::mem::take(pool));
            return;
        }
        self.checks.stop();
        fork::unregister(&self.conns);
    }
}

/// splitmix64 over a counter: unique-per-queue lease tokens and jitter, no dependency.
pub(crate) struct Rng {
    state: AtomicU64,
}

impl Rng {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Rng {
            state: AtomicU64::new(
                nanos ^ (u64::from(std::process::id()) << 32) ^ addr.rotate_left(17),
            ),
        }
    }

    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A positive token; zero is never handed out.
    pub fn token(&self) -> i64 {
        ((self.next_u64() >> 1) as i64).max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_positive_and_distinct() {
        let rng = Rng::seeded();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = rng.token();
            assert!(t > 0);
            assert!(seen.insert(t));
        }
        let u = rng.unit();
        assert!((0.0..1.0).contains(&u));
    }
}
