//! What survives `fork()`: a child may open its own queues on any file, even one its parent
//! has open, and the parent's queues refuse every call in the child.
//!
//! The hazard is in SQLite, not in ferrymq's own state. SQLite keeps one record per open
//! inode in process memory, with the lock that the process holds on it, and a connection
//! that asks for a lock the record says is already held takes no real `fcntl` lock. A
//! child inherits those records but none of the parent's locks, so a connection the child
//! opens on the same file would hold no lock at all: the parent's last close then finds
//! itself alone, checkpoints, and deletes the `-wal` that the child is still writing to
//! (confirmed publishes lost). A child that closes an inherited connection normally does
//! the same to everyone else.
//!
//! So every queue registers its connections here, with what each is doing. Around `fork()`
//! (a `pthread_atfork` handler) new work on ferrymq's connections waits, and the fork waits
//! until no thread is inside SQLite (bounded by `busy_timeout`), so the child inherits no
//! lock held by a thread it does not have. In the child, before it opens anything, every
//! inherited connection that was quiet (idle in a pool, or a receive waiting between two
//! polls) is closed without a checkpoint: that removes SQLite's inode records without
//! touching the file, and the child's own connections then take real locks. A connection
//! that was not quiet (a caller's open transaction, a call still running when the wait
//! ran out) is left alone, and the child refuses to open that file (`Storage`), because
//! its connections there could not lock it.
//!
//! This module is the one piece of process-wide state in the crate: fork is process-wide.
//! Outside unix there is no `fork()`; the registry stays, the handlers do not.
#![cfg_attr(not(unix), allow(dead_code))]

use crate::error::{Error, Result};
use crate::inner::lock;
use rusqlite::ffi;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// In a pool, outside any transaction.
pub(crate) const IDLE: u8 = 0;
/// Checked out by a thread that may be inside SQLite right now.
pub(crate) const ACTIVE: u8 = 1;
/// Checked out by a receive that waits between two polls, outside any transaction.
pub(crate) const PARKED: u8 = 2;
/// Checked out by a caller's open transaction, between two of its calls.
pub(crate) const IN_TX: u8 = 3;

/// One queue's connections and the threads working on them, as `fork()` needs to see them.
pub(crate) struct Conns {
    pid: u32,
    real_path: PathBuf,
    wait_limit: Duration,
    /// Threads that may be inside SQLite on these connections, or moving one in or out of
    /// the pool.
    busy: AtomicUsize,
    forking: AtomicBool,
    quiet_at_fork: AtomicBool,
    settled: AtomicBool,
    resume: (Mutex<()>, Condvar),
    slots: Mutex<Vec<Slot>>,
}

struct Slot {
    handle: usize,
    state: Arc<AtomicU8>,
}

impl Conns {
    pub fn new(real_path: &Path, wait_limit: Duration) -> Arc<Conns> {
        let conns = Arc::new(Conns {
            pid: std::process::id(),
            real_path: real_path.to_owned(),
            wait_limit,
            busy: AtomicUsize::new(0),
            forking: AtomicBool::new(false),
            quiet_at_fork: AtomicBool::new(true),
            settled: AtomicBool::new(false),
            resume: (Mutex::new(()), Condvar::new()),
            slots: Mutex::new(Vec::new()),
        });
        register(&conns);
        conns
    }

    /// True in a process forked after these connections were opened.
    pub fn inherited(&self) -> bool {
        self.pid != std::process::id()
    }

    /// Marks the calling thread as working on SQLite; waits while a fork is being prepared.
    pub fn enter(&self) {
        loop {
            self.busy.fetch_add(1, SeqCst);
            if !self.forking.load(SeqCst) {
                return;
            }
            self.busy.fetch_sub(1, SeqCst);
            let (m, cv) = &self.resume;
            let guard = lock(m);
            let _ = cv.wait_timeout_while(guard, Duration::from_millis(10), |_| {
                self.forking.load(SeqCst)
            });
        }
    }

    pub fn leave(&self) {
        self.busy.fetch_sub(1, SeqCst);
    }

    /// Remembers a new connection; its state starts `ACTIVE`.
    pub fn track(&self, conn: &rusqlite::Connection) -> Arc<AtomicU8> {
        let state = Arc::new(AtomicU8::new(ACTIVE));
        // SAFETY: the handle is only read as an address here; it is used only in a forked
        // child, after the Rust owner of the connection can no longer run.
        let handle = unsafe { conn.handle() } as usize;
        lock(&self.slots).push(Slot {
            handle,
            state: Arc::clone(&state),
        });
        state
    }

    pub fn untrack(&self, state: &Arc<AtomicU8>) {
        lock(&self.slots).retain(|s| !Arc::ptr_eq(&s.state, state));
    }

    fn prepare_fork(&self) {
        if self.inherited() || self.settled.load(SeqCst) {
            return;
        }
        self.forking.store(true, SeqCst);
        let deadline = Instant::now() + self.wait_limit;
        while self.busy.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.quiet_at_fork
            .store(self.busy.load(SeqCst) == 0, SeqCst);
    }

    fn resume_after_fork(&self) {
        self.forking.store(false, SeqCst);
        let (m, cv) = &self.resume;
        drop(lock(m));
        cv.notify_all();
    }

    /// In a forked child: closes every inherited connection that was quiet at the fork,
    /// without a checkpoint, and marks the file unusable here if any was not. The Rust
    /// owners of these connections never drop them in a child (`PooledConn`, `Inner`).
    pub fn settle_in_child(&self) {
        if !self.inherited() || self.settled.swap(true, SeqCst) {
            return;
        }
        let quiet = self.quiet_at_fork.load(SeqCst);
        let slots = match self.slots.try_lock() {
            Ok(slots) if quiet => slots,
            _ => return taint(&self.real_path),
        };
        for slot in slots.iter() {
            let state = slot.state.load(SeqCst);
            let closed = (state == IDLE || state == PARKED)
                // SAFETY: the handle belongs to a connection whose Rust owner is in the
                // parent's pool or on a thread this process does not have; neither runs
                // again here (their drops forget them in a child).
                && unsafe { close_quietly(slot.handle as *mut ffi::sqlite3) };
            if !closed {
                taint(&self.real_path);
            }
        }
    }
}

/// Closes a connection without checkpointing or deleting anything, if it is outside any
/// transaction and no statement of it is running.
unsafe fn close_quietly(db: *mut ffi::sqlite3) -> bool {
    unsafe {
        if ffi::sqlite3_get_autocommit(db) == 0 {
            return false;
        }
        let mut stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            if ffi::sqlite3_stmt_busy(stmt) != 0 {
                return false;
            }
            stmt = ffi::sqlite3_next_stmt(db, stmt);
        }
        ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        );
        loop {
            let stmt = ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
            if stmt.is_null() {
                break;
            }
            ffi::sqlite3_finalize(stmt);
        }
        ffi::sqlite3_close(db) == ffi::SQLITE_OK
    }
}

/// Every `Conns` of this process (and, in a child, of its parent until settled). Guarded
/// by a spin flag rather than a mutex so that the fork handlers can hold it across
/// `fork()` and release it on both sides.
static REGISTRY: Registry = Registry {
    held: AtomicBool::new(false),
    list: Mutex::new(Vec::new()),
};
/// Files this process may not open (see the module doc).
static TAINTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLERS: Once = Once::new();

struct Registry {
    held: AtomicBool,
    list: Mutex<Vec<Arc<Conns>>>,
}

impl Registry {
    fn acquire(&self) {
        while self
            .held
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_err()
        {
            std::thread::yield_now();
        }
    }

    fn release(&self) {
        self.held.store(false, SeqCst);
    }

    /// Runs `f` on the list while holding the spin flag (the mutex inside is then never
    /// contended, and so never held across a fork).
    fn with<T>(&self, f: impl FnOnce(&mut Vec<Arc<Conns>>) -> T) -> T {
        self.acquire();
        let out = f(&mut lock(&self.list));
        self.release();
        out
    }
}

fn register(conns: &Arc<Conns>) {
    HANDLERS.call_once(install_handlers);
    REGISTRY.with(|list| list.push(Arc::clone(conns)));
}

/// A queue that goes: in its own process it just leaves the registry; in a forked child
/// it first settles what it inherited.
pub(crate) fn unregister(conns: &Arc<Conns>) {
    REGISTRY.with(|list| {
        conns.settle_in_child();
        list.retain(|c| !Arc::ptr_eq(c, conns));
    });
}

/// Called with the registry's flag held (from `before_open`, or a queue's close in a child).
fn taint(path: &Path) {
    let mut tainted = lock(&TAINTED);
    if !tainted.iter().any(|p| p == path) {
        tainted.push(path.to_owned());
    }
}

/// Settles what a forked child inherited (see the module doc), then refuses `path` if an
/// inherited connection to it could not be closed. Call before opening anything.
pub(crate) fn before_open(path: &Path) -> Result<()> {
    // Under the registry's flag, so that TAINTED is never held across a fork either.
    let refused = REGISTRY.with(|list| {
        list.retain(|c| {
            c.settle_in_child();
            !c.inherited()
        });
        lock(&TAINTED).iter().any(|p| p == path)
    });
    if refused {
        return Err(Error::Storage(format!(
            "this process was forked while its parent was inside a transaction or a call on \
             {}; SQLite cannot lock that file correctly here. Fork when no transaction is \
             open, or start the process fresh (spawn)",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(unix)]
unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
}

/// Without `fork()` (Windows) there is nothing to prepare for.
#[cfg(not(unix))]
fn install_handlers() {}

#[cfg(unix)]
fn install_handlers() {
    // SAFETY: registers three functions that only touch this module's statics.
    unsafe {
        pthread_atfork(Some(prepare), Some(in_parent), Some(in_child));
    }
}

/// Holds the registry across the fork and waits until no thread works inside SQLite.
#[cfg(unix)]
unsafe extern "C" fn prepare() {
    REGISTRY.acquire();
    if let Ok(list) = REGISTRY.list.try_lock() {
        for conns in list.iter() {
            conns.prepare_fork();
        }
    }
    crate::lock_isolation::prepare_fork();
}

#[cfg(unix)]
unsafe extern "C" fn in_parent() {
    crate::lock_isolation::after_fork_in_parent();
    if let Ok(list) = REGISTRY.list.try_lock() {
        for conns in list.iter() {
            conns.resume_after_fork();
        }
    }
    REGISTRY.release();
}

/// Only flags and the registry's spin flag: the child settles its inheritance later, at
/// its first open (the child may be a short-lived `exec` helper that never opens one).
#[cfg(unix)]
unsafe extern "C" fn in_child() {
    crate::lock_isolation::after_fork_in_child();
    if let Ok(list) = REGISTRY.list.try_lock() {
        for conns in list.iter() {
            conns.forking.store(false, SeqCst);
        }
    }
    REGISTRY.release();
}
